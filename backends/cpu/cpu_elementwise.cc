// Elementwise kernels: add, mul, scale, gelu, silu, cast, transpose; and the strided
// iteration and scratch helpers of cpu_ops.h.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "cpu_kernels.h"
#include "cpu_ops.h"
#include "cpu_simd.h"
#include "cpu_threading.h"

namespace hal::cpu {

// ---- helpers ---------------------------------------------------------------------------

namespace {

struct ScratchBlock {
  float* data = nullptr;
  size_t size = 0;
  ~ScratchBlock() { std::free(data); }
};
thread_local ScratchBlock scratch_blocks[int(Scratch::kCount)];

}  // namespace

float* scratch_floats(Scratch slot, size_t count) {
  ScratchBlock& b = scratch_blocks[int(slot)];
  if (b.size < count) {
    std::free(b.data);
    const size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
    b.data = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!b.data) {
      b.size = 0;
      throw std::bad_alloc();
    }
    b.size = count;
  }
  return b.data;
}

void prepare_kernel_thread() {
  ScratchBlock* blocks = scratch_blocks;  // this use sets them up on this thread
  asm volatile("" : : "r"(blocks) : "memory");
}

void trim_outer_scratch(size_t keep_bytes) {
  for (int i = int(Scratch::kOuter0); i < int(Scratch::kCount); ++i) {
    ScratchBlock& b = scratch_blocks[i];
    if (b.size * sizeof(float) > keep_bytes) {
      std::free(b.data);
      b.data = nullptr;
      b.size = 0;
    }
  }
}

StridedLoop StridedLoop::make(const Shape& shape, const TensorDesc* const* operands, int count) {
  StridedLoop l;
  l.num_operands = count;
  // Right-align each operand; drop dims of size 1 (they contribute nothing).
  for (int i = 0; i < shape.rank; ++i) {
    if (shape.dims[i] == 1) continue;
    const int d = l.rank++;
    l.shape[d] = shape.dims[i];
    for (int j = 0; j < count; ++j) {
      const TensorDesc& t = *operands[j];
      const int od = t.shape.rank - shape.rank + i;
      l.strides[j][d] = (od < 0 || t.shape.dims[od] == 1) ? 0 : t.strides[od];
    }
  }
  // Merge dim i into i+1 where every operand steps through both as one.
  int out = l.rank == 0 ? 0 : 1;
  for (int i = 1; i < l.rank; ++i) {
    const int prev = out - 1;
    bool mergeable = true;
    for (int j = 0; j < count; ++j)
      if (l.strides[j][prev] != l.strides[j][i] * l.shape[i]) mergeable = false;
    if (mergeable) {
      l.shape[prev] *= l.shape[i];
      for (int j = 0; j < count; ++j) l.strides[j][prev] = l.strides[j][i];
    } else {
      l.shape[out] = l.shape[i];
      for (int j = 0; j < count; ++j) l.strides[j][out] = l.strides[j][i];
      ++out;
    }
  }
  l.rank = out;
  return l;
}

void StridedLoop::offsets(int64_t o, int64_t* out) const {
  for (int j = 0; j < num_operands; ++j) out[j] = 0;
  for (int d = rank - 2; d >= 0; --d) {
    const int64_t i = o % shape[d];
    o /= shape[d];
    for (int j = 0; j < num_operands; ++j) out[j] += i * strides[j][d];
  }
}

namespace {

constexpr int64_t kChunk = 2048;           // elements converted at once (fits L1 x3)
constexpr int64_t kParallelGrain = 32768;  // elements per task, at least

const char* at(const void* base, const TensorDesc& t, int64_t elem) {
  return static_cast<const char*>(base) + elem * int64_t(dtype_size(t.dtype));
}
char* at(void* base, const TensorDesc& t, int64_t elem) {
  return static_cast<char*>(base) + elem * int64_t(dtype_size(t.dtype));
}

// Runs body(offsets, start, n) over an iteration space in pieces of at most `chunk` (<=
// kChunk) inner elements, at least `grain` elements per task, in parallel. offsets[] are
// each operand's element offsets at (row, start).
template <typename Body>
void for_each_piece(const StridedLoop& loop, Body&& body, int64_t chunk = kChunk,
                    int64_t grain = kParallelGrain) {
  const int64_t inner = loop.inner();
  const int64_t pieces = (inner + chunk - 1) / chunk;
  const int64_t units = loop.outer() * pieces;
  const int64_t per_unit = std::min(inner, chunk);
  parallel_for(units, std::max<int64_t>(1, grain / std::max<int64_t>(per_unit, 1)),
               [&](int64_t u0, int64_t u1) {
                 int64_t base[StridedLoop::kMaxOperands];
                 int64_t off[StridedLoop::kMaxOperands];
                 int64_t row = -1;
                 for (int64_t u = u0; u < u1; ++u) {
                   const int64_t o = u / pieces;
                   const int64_t start = (u % pieces) * chunk;
                   if (o != row) {
                     loop.offsets(o, base);
                     row = o;
                   }
                   for (int j = 0; j < loop.num_operands; ++j)
                     off[j] = base[j] + start * loop.inner_stride(j);
                   body(off, start, std::min(chunk, inner - start));
                 }
               });
}

// An input piece as f32: a pointer into the tensor when it is f32 and unit-stride,
// a broadcast scalar when the stride is 0, else converted into scratch.
struct F32Piece {
  const float* data = nullptr;
  bool scalar = false;
  float value = 0;
};

HAL_CPU_INLINE F32Piece input_piece(const void* base, const TensorDesc& t, int64_t off,
                                    int64_t stride, int64_t n, Scratch slot) {
  F32Piece p;
  if (stride == 0 || n == 1) {
    p.scalar = true;
    p.value = load_as_float(base, t.dtype, off);
  } else if (t.dtype == DType::kF32 && stride == 1) {
    p.data = static_cast<const float*>(base) + off;
  } else {
    float* buf = scratch_floats(slot, size_t(kChunk));
    load_f32(at(base, t, off), t.dtype, stride, n, buf);
    p.data = buf;
  }
  return p;
}

enum class BinaryKind { kAdd, kMul };

HAL_CPU_MULTIVERSION
void binary_piece(BinaryKind kind, const float* a, float as, bool a_scalar, const float* b,
                  float bs, bool b_scalar, float* o, int64_t n) {
  if (kind == BinaryKind::kAdd) {
    if (a_scalar && b_scalar) {
      for (int64_t i = 0; i < n; ++i) o[i] = as + bs;
    } else if (a_scalar) {
      for (int64_t i = 0; i < n; ++i) o[i] = as + b[i];
    } else if (b_scalar) {
      for (int64_t i = 0; i < n; ++i) o[i] = a[i] + bs;
    } else {
      for (int64_t i = 0; i < n; ++i) o[i] = a[i] + b[i];
    }
  } else {
    if (a_scalar && b_scalar) {
      for (int64_t i = 0; i < n; ++i) o[i] = as * bs;
    } else if (a_scalar) {
      for (int64_t i = 0; i < n; ++i) o[i] = as * b[i];
    } else if (b_scalar) {
      for (int64_t i = 0; i < n; ++i) o[i] = a[i] * bs;
    } else {
      for (int64_t i = 0; i < n; ++i) o[i] = a[i] * b[i];
    }
  }
}

enum class UnaryKind { kScale, kGeluErf, kGeluTanh, kSilu };

template <UnaryKind K, class F>
HAL_CPU_INLINE F activation(F x) {
  if constexpr (K == UnaryKind::kGeluErf) return gelu_erf(x);
  if constexpr (K == UnaryKind::kGeluTanh) return gelu_tanh(x);
  if constexpr (K == UnaryKind::kSilu) return silu(x);
  return x;
}

// o[i] = activation(x[i]): 8 elements at a time through its v8f form, the tail through
// its float form (the same values). No lambdas: they would not take the caller's ISA.
template <UnaryKind K>
HAL_CPU_INLINE void map8(const float* x, float* o, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store8(o + i, activation<K>(load8(x + i)));
  for (; i < n; ++i) o[i] = activation<K>(x[i]);
}

HAL_CPU_MULTIVERSION
void unary_piece(UnaryKind kind, float alpha, float beta, const float* x, float* o, int64_t n) {
  switch (kind) {
    case UnaryKind::kScale:
      for (int64_t i = 0; i < n; ++i) o[i] = alpha * x[i] + beta;
      break;
    case UnaryKind::kGeluErf:
      map8<UnaryKind::kGeluErf>(x, o, n);
      break;
    case UnaryKind::kGeluTanh:
      map8<UnaryKind::kGeluTanh>(x, o, n);
      break;
    case UnaryKind::kSilu:
      map8<UnaryKind::kSilu>(x, o, n);
      break;
  }
}

// Output piece: write straight into an f32 unit-stride output, else via scratch.
HAL_CPU_INLINE float* output_piece(void* base, const TensorDesc& t, int64_t off, int64_t stride) {
  if (t.dtype == DType::kF32 && stride == 1) return static_cast<float*>(base) + off;
  return scratch_floats(Scratch::kLeaf2, size_t(kChunk));
}
HAL_CPU_INLINE void finish_output(void* base, const TensorDesc& t, int64_t off, int64_t stride,
                                  const float* piece, int64_t n) {
  if (t.dtype == DType::kF32 && stride == 1) return;
  store_f32(at(base, t, off), t.dtype, stride, n, piece);
}

}  // namespace

Status binary(const OpSpec& spec, const void* const* in, void* out) {
  const TensorDesc& o = spec.output;
  if (o.numel() == 0) return ok_status();
  const TensorDesc* ops[3] = {&o, &spec.inputs[0], &spec.inputs[1]};
  const StridedLoop loop = StridedLoop::make(o.shape, ops, 3);
  const BinaryKind kind = spec.kind == OpKind::kAdd ? BinaryKind::kAdd : BinaryKind::kMul;
  const int64_t so = loop.inner_stride(0), sa = loop.inner_stride(1), sb = loop.inner_stride(2);
  for_each_piece(loop, [&](const int64_t* off, int64_t, int64_t n) {
    const F32Piece a = input_piece(in[0], spec.inputs[0], off[1], sa, n, Scratch::kLeaf0);
    const F32Piece b = input_piece(in[1], spec.inputs[1], off[2], sb, n, Scratch::kLeaf1);
    float* dst = output_piece(out, o, off[0], so);
    binary_piece(kind, a.data, a.value, a.scalar, b.data, b.value, b.scalar, dst, n);
    finish_output(out, o, off[0], so, dst, n);
  });
  return ok_status();
}

Status unary(const OpSpec& spec, const void* const* in, void* out) {
  const TensorDesc& o = spec.output;
  if (o.numel() == 0) return ok_status();
  const TensorDesc* ops[2] = {&o, &spec.inputs[0]};
  const StridedLoop loop = StridedLoop::make(o.shape, ops, 2);
  UnaryKind kind = UnaryKind::kScale;
  if (spec.kind == OpKind::kGelu)
    kind = spec.attrs.gelu_approximation == GeluApproximation::kTanh ? UnaryKind::kGeluTanh
                                                                     : UnaryKind::kGeluErf;
  if (spec.kind == OpKind::kSilu) kind = UnaryKind::kSilu;
  const float alpha = spec.attrs.alpha, beta = spec.attrs.beta;
  const int64_t so = loop.inner_stride(0), sx = loop.inner_stride(1);
  // An activation costs an exp and a division per element, ~20x an add: pieces of 512,
  // shared by the cores from 1,025 elements on (a decode step's MLP row of 3,072 took
  // ~2.6 us on one core).
  const bool costly = kind != UnaryKind::kScale;
  const int64_t chunk = costly ? 512 : kChunk, grain = costly ? 1024 : kParallelGrain;
  for_each_piece(
      loop,
      [&](const int64_t* off, int64_t, int64_t n) {
        const TensorDesc& x = spec.inputs[0];
        const float* src;
        if (x.dtype == DType::kF32 && sx == 1) {
          src = static_cast<const float*>(in[0]) + off[1];
        } else {
          float* buf = scratch_floats(Scratch::kLeaf0, size_t(kChunk));
          load_f32(at(in[0], x, off[1]), x.dtype, sx, n, buf);
          src = buf;
        }
        float* dst = output_piece(out, o, off[0], so);
        unary_piece(kind, alpha, beta, src, dst, n);
        finish_output(out, o, off[0], so, dst, n);
      },
      chunk, grain);
  return ok_status();
}

// ---- cast --------------------------------------------------------------------------------

namespace {

bool is_float_kernel_type(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

int64_t load_int(const void* p, DType t) {
  switch (t) {
    case DType::kI32:
      return *static_cast<const int32_t*>(p);
    case DType::kI64:
      return *static_cast<const int64_t*>(p);
    case DType::kI8:
      return *static_cast<const int8_t*>(p);
    case DType::kU8:
      return *static_cast<const uint8_t*>(p);
    default:
      return 0;
  }
}

void store_int(void* p, DType t, int64_t v) {
  switch (t) {
    case DType::kI32:
      *static_cast<int32_t*>(p) = int32_t(std::clamp<int64_t>(v, INT32_MIN, INT32_MAX));
      break;
    case DType::kI64:
      *static_cast<int64_t*>(p) = v;
      break;
    case DType::kI8:
      *static_cast<int8_t*>(p) = int8_t(std::clamp<int64_t>(v, -128, 127));
      break;
    case DType::kU8:
      *static_cast<uint8_t*>(p) = uint8_t(std::clamp<int64_t>(v, 0, 255));
      break;
    default:
      break;
  }
}

// One element through double, exactly as hal::reference converts (integers beyond 2^53
// and float->int saturation included).
void cast_element(const void* src, DType st, void* dst, DType dt) {
  if (is_integer(st) && is_integer(dt)) {
    store_int(dst, dt, load_int(src, st));
    return;
  }
  double v;
  switch (st) {
    case DType::kF32:
      v = *static_cast<const float*>(src);
      break;
    case DType::kF16:
      v = f16_to_float(*static_cast<const uint16_t*>(src));
      break;
    case DType::kBF16:
      v = bf16_to_float(*static_cast<const uint16_t*>(src));
      break;
    default:
      v = double(load_int(src, st));
      break;
  }
  auto sat = [&](double lo, double hi) {
    return std::isnan(v) ? 0.0 : std::clamp(std::trunc(v), lo, hi);
  };
  switch (dt) {
    case DType::kF32:
      *static_cast<float*>(dst) = float(v);
      break;
    case DType::kF16:
      *static_cast<uint16_t*>(dst) = float_to_f16(float(v));
      break;
    case DType::kBF16:
      *static_cast<uint16_t*>(dst) = float_to_bf16(float(v));
      break;
    case DType::kI32:
      *static_cast<int32_t*>(dst) = int32_t(sat(-2147483648.0, 2147483647.0));
      break;
    case DType::kI64:
      *static_cast<int64_t*>(dst) = int64_t(sat(-9.2233720368547758e18, 9.2233720368547748e18));
      break;
    case DType::kI8:
      *static_cast<int8_t*>(dst) = int8_t(sat(-128, 127));
      break;
    case DType::kU8:
      *static_cast<uint8_t*>(dst) = uint8_t(sat(0, 255));
      break;
    default:
      break;
  }
}

}  // namespace

Status cast(const OpSpec& spec, const void* const* in, void* out) {
  const TensorDesc& o = spec.output;
  const TensorDesc& x = spec.inputs[0];
  if (o.numel() == 0) return ok_status();
  if (x.dtype == o.dtype) return transpose(spec, in, out);  // identity perm: strided copy
  const TensorDesc* ops[2] = {&o, &x};
  const StridedLoop loop = StridedLoop::make(o.shape, ops, 2);
  const int64_t so = loop.inner_stride(0), sx = loop.inner_stride(1);
  if (is_float_kernel_type(x.dtype) && is_float_kernel_type(o.dtype)) {
    for_each_piece(loop, [&](const int64_t* off, int64_t, int64_t n) {
      float* buf = scratch_floats(Scratch::kLeaf0, size_t(kChunk));
      load_f32(at(in[0], x, off[1]), x.dtype, sx, n, buf);
      store_f32(at(out, o, off[0]), o.dtype, so, n, buf);
    });
    return ok_status();
  }
  const int64_t xsz = dtype_size(x.dtype), osz = dtype_size(o.dtype);
  for_each_piece(loop, [&](const int64_t* off, int64_t, int64_t n) {
    const char* s = at(in[0], x, off[1]);
    char* d = at(out, o, off[0]);
    for (int64_t i = 0; i < n; ++i)
      cast_element(s + i * sx * xsz, x.dtype, d + i * so * osz, o.dtype);
  });
  return ok_status();
}

// ---- transpose (also the strided copy behind same-dtype casts) ---------------------------

namespace {

template <typename T>
void copy_strided(const char* src, int64_t ss, char* dst, int64_t ds, int64_t n) {
  const T* s = reinterpret_cast<const T*>(src);
  T* d = reinterpret_cast<T*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i * ds] = s[i * ss];
}

void copy_run(const char* src, int64_t ss, char* dst, int64_t ds, int64_t n, int64_t esz) {
  if (ss == 1 && ds == 1) {
    std::memcpy(dst, src, size_t(n * esz));
    return;
  }
  switch (esz) {
    case 1:
      copy_strided<uint8_t>(src, ss, dst, ds, n);
      break;
    case 2:
      copy_strided<uint16_t>(src, ss, dst, ds, n);
      break;
    case 4:
      copy_strided<uint32_t>(src, ss, dst, ds, n);
      break;
    default:
      copy_strided<uint64_t>(src, ss, dst, ds, n);
      break;
  }
}

}  // namespace

Status transpose(const OpSpec& spec, const void* const* in, void* out) {
  const TensorDesc& o = spec.output;
  const TensorDesc& x = spec.inputs[0];
  if (o.numel() == 0) return ok_status();
  // x seen in output order: output dim i walks x's dim perm[i].
  TensorDesc xp = o;
  xp.dtype = x.dtype;
  const bool is_transpose = spec.kind == OpKind::kTranspose;
  for (int i = 0; i < o.shape.rank; ++i)
    xp.strides[i] = x.strides[is_transpose ? spec.attrs.perm[i] : i];
  const TensorDesc* ops[2] = {&o, &xp};
  StridedLoop loop = StridedLoop::make(o.shape, ops, 2);
  const int64_t esz = dtype_size(o.dtype);
  const char* src = static_cast<const char*>(in[0]);
  char* dst = static_cast<char*>(out);

  // A real transpose (x's unit-stride dim is not the inner one): copy 32x32 tiles so both
  // sides touch whole cache lines. Move x's unit-stride dim next to the inner dim.
  int unit = -1;
  for (int d = 0; d + 1 < loop.rank; ++d)
    if (loop.strides[1][d] == 1) unit = d;
  if (unit >= 0 && loop.inner_stride(1) != 1 && loop.rank >= 2) {
    const int r = loop.rank;
    std::rotate(loop.shape + unit, loop.shape + unit + 1, loop.shape + r - 1);
    for (int j = 0; j < 2; ++j)
      std::rotate(loop.strides[j] + unit, loop.strides[j] + unit + 1, loop.strides[j] + r - 1);
    constexpr int64_t kTile = 32;
    const int64_t rows = loop.shape[r - 2], cols = loop.shape[r - 1];
    int64_t outer = 1;
    for (int d = 0; d < r - 2; ++d) outer *= loop.shape[d];
    const int64_t row_tiles = (rows + kTile - 1) / kTile;
    const int64_t ro = loop.strides[0][r - 2], rx = loop.strides[1][r - 2];
    const int64_t co = loop.strides[0][r - 1], cx = loop.strides[1][r - 1];
    parallel_for(outer * row_tiles, std::max<int64_t>(1, kParallelGrain / (kTile * cols)),
                 [&](int64_t u0, int64_t u1) {
                   for (int64_t u = u0; u < u1; ++u) {
                     const int64_t o_idx = u / row_tiles;
                     const int64_t r0 = (u % row_tiles) * kTile;
                     const int64_t r1 = std::min(rows, r0 + kTile);
                     int64_t base[2] = {0, 0};
                     int64_t rem = o_idx;
                     for (int d = r - 3; d >= 0; --d) {
                       const int64_t i = rem % loop.shape[d];
                       rem /= loop.shape[d];
                       base[0] += i * loop.strides[0][d];
                       base[1] += i * loop.strides[1][d];
                     }
                     for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
                       const int64_t c1 = std::min(cols, c0 + kTile);
                       for (int64_t rr = r0; rr < r1; ++rr)
                         copy_run(src + (base[1] + rr * rx + c0 * cx) * esz, cx,
                                  dst + (base[0] + rr * ro + c0 * co) * esz, co, c1 - c0, esz);
                     }
                   }
                 });
    return ok_status();
  }
  const int64_t so = loop.inner_stride(0), sx = loop.inner_stride(1);
  for_each_piece(loop, [&](const int64_t* off, int64_t, int64_t n) {
    copy_run(src + off[1] * esz, sx, dst + off[0] * esz, so, n, esz);
  });
  return ok_status();
}

}  // namespace hal::cpu
