// Matmul on the host with the matrix engines' numerics (npu_kernels.h): operands
// staged to fp32 (rounded to bf16 in device-faithful mode), fp32 accumulation, the
// alpha/bias epilogue in fp32, one rounding to the output dtype.
//
// Packed GEMM: A in blocks of kMr rows interleaved by k, B in panels of kNr columns,
// a kMr x kNr register tile per step (GCC vector extensions; an AVX2+FMA clone is
// picked at run time on CPUs that have it, npu_simd.h). Operands are packed straight from their
// strided views, converting dtype on the way, so each is read once per product.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "npu_kernels.h"

#include "hal/quant_reference.h"
#include "npu_numerics.h"
#include "npu_parallel.h"
#include "npu_simd.h"

namespace hal::npu_sim {

namespace {

constexpr int64_t kMr = 4;    // rows of the register tile
constexpr int64_t kNr = 16;   // columns of the register tile (two 8-float vectors)
constexpr int64_t kKc = 256;  // depth of one pass over packed panels (fits L1 with B's panel)
constexpr int64_t kMb = 64;   // rows per parallel task

// c[kMr][kNr] (+)= ap[kc][kMr] * bp[kc][kNr]; c is row-major with stride ldc.
NPU_SIM_MULTIVERSION
void micro_kernel(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                  bool accumulate) {
  v8f c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {};
  for (int64_t k = 0; k < kc; ++k) {
    const v8f b0 = load8(bp + k * kNr), b1 = load8(bp + k * kNr + 8);
    const float* a = ap + k * kMr;
    c00 += a[0] * b0;
    c01 += a[0] * b1;
    c10 += a[1] * b0;
    c11 += a[1] * b1;
    c20 += a[2] * b0;
    c21 += a[2] * b1;
    c30 += a[3] * b0;
    c31 += a[3] * b1;
  }
  const v8f tile[kMr][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
  for (int64_t r = 0; r < kMr; ++r) {
    float* row = c + r * ldc;
    if (accumulate) {
      store8(row, load8(row) + tile[r][0]);
      store8(row + 8, load8(row + 8) + tile[r][1]);
    } else {
      store8(row, tile[r][0]);
      store8(row + 8, tile[r][1]);
    }
  }
}

// A strided 2-D view (rows x cols) of a tensor, element (i, j) at base[i*rs + j*cs].
struct View2d {
  const void* base;
  DType dtype;
  int64_t rs, cs;
};

template <typename Load>
void pack_a_block(Load&& load, const View2d& v, int64_t m, int64_t k, int64_t block, float* dst,
                  Rounding rnd) {
  // Block `block` holds rows [block*kMr, +kMr) as dst[k][kMr]; rows past m are zero.
  for (int64_t p = 0; p < k; ++p)
    for (int64_t r = 0; r < kMr; ++r) {
      const int64_t i = block * kMr + r;
      dst[p * kMr + r] = i < m ? round_operand(load(i * v.rs + p * v.cs), rnd) : 0.0f;
    }
}

template <typename Load>
void pack_b_panel(Load&& load, const View2d& v, int64_t k, int64_t n, int64_t panel, float* dst,
                  Rounding rnd) {
  // Panel `panel` holds columns [panel*kNr, +kNr) as dst[k][kNr]; columns past n are zero.
  const int64_t j0 = panel * kNr;
  const int64_t cols = std::min(kNr, n - j0);
  for (int64_t p = 0; p < k; ++p) {
    float* d = dst + p * kNr;
    const int64_t off = p * v.rs + j0 * v.cs;
    for (int64_t j = 0; j < cols; ++j) d[j] = round_operand(load(off + j * v.cs), rnd);
    for (int64_t j = cols; j < kNr; ++j) d[j] = 0.0f;
  }
}

// Calls fn(loader) with a loader for the view's dtype (fast paths for the common ones).
template <typename Fn>
void with_loader(const View2d& v, Fn&& fn) {
  switch (v.dtype) {
    case DType::kF32: {
      const float* p = static_cast<const float*>(v.base);
      fn([p](int64_t i) { return p[i]; });
      break;
    }
    case DType::kBF16: {
      const uint16_t* p = static_cast<const uint16_t*>(v.base);
      fn([p](int64_t i) { return bf16_to_float(p[i]); });
      break;
    }
    case DType::kF16: {
      const uint16_t* p = static_cast<const uint16_t*>(v.base);
      fn([p](int64_t i) { return f16_to_float(p[i]); });
      break;
    }
    default: {
      const void* b = v.base;
      const DType t = v.dtype;
      fn([b, t](int64_t i) { return load_element(b, t, i); });
      break;
    }
  }
}

// Only f32 operands are rounded: 16-bit and fp8 operands enter the engines as they are.
Rounding operand_rounding(const View2d& v, Rounding rnd) {
  return v.dtype == DType::kF32 ? rnd : Rounding::kNone;
}

void pack_a(const View2d& v, int64_t m, int64_t k, float* dst, Rounding requested) {
  const Rounding rnd = operand_rounding(v, requested);
  const int64_t blocks = (m + kMr - 1) / kMr;
  with_loader(v, [&](auto load) {
    parallel_for(blocks, std::max<int64_t>(1, 4096 / std::max<int64_t>(k, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t blk = b; blk < e; ++blk)
                     pack_a_block(load, v, m, k, blk, dst + blk * k * kMr, rnd);
                 });
  });
}

void pack_b(const View2d& v, int64_t k, int64_t n, float* dst, Rounding requested) {
  const Rounding rnd = operand_rounding(v, requested);
  const int64_t panels = (n + kNr - 1) / kNr;
  with_loader(v, [&](auto load) {
    parallel_for(panels, std::max<int64_t>(1, 4096 / std::max<int64_t>(k, 1)),
                 [&](int64_t b, int64_t e) {
                   for (int64_t pn = b; pn < e; ++pn)
                     pack_b_panel(load, v, k, n, pn, dst + pn * k * kNr, rnd);
                 });
  });
}

// C[mpad x npad] = packed A x packed B.
void gemm_packed(const float* ap, const float* bp, int64_t m, int64_t n, int64_t k, float* c,
                 int64_t ldc) {
  const int64_t panels = (n + kNr - 1) / kNr;
  const int64_t mblocks = (m + kMb - 1) / kMb;
  const int64_t tasks = panels * mblocks;
  const double work_per_task = double(std::min(m, kMb)) * double(kNr) * double(k);
  const int64_t grain = std::max<int64_t>(1, int64_t(65536.0 / std::max(work_per_task, 1.0)));
  parallel_for(tasks, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t pn = t % panels, mb = t / panels;
      const int64_t row0 = mb * kMb;
      const int64_t row1 = std::min(m, row0 + kMb);
      const float* bpanel = bp + pn * k * kNr;
      for (int64_t k0 = 0; k0 < k; k0 += kKc) {
        const int64_t kc = std::min(kKc, k - k0);
        for (int64_t i = row0; i < row1; i += kMr) {
          const float* ablock = ap + (i / kMr) * k * kMr + k0 * kMr;
          micro_kernel(kc, ablock, bpanel + k0 * kNr, c + i * ldc + pn * kNr, ldc, k0 > 0);
        }
      }
    }
  });
}

}  // namespace

Status execute_matmul(const OpSpec& s, const void* const* in, void* out,
                      ComputePrecision precision) {
  if (is_quantized(s.inputs[1].dtype)) {
    // The engines take the weights dequantized (then rounded like any f32 operand in
    // bf16 mode), as the device's weight decompression would feed them.
    const TensorDesc& b = s.inputs[1];
    const int64_t k = b.shape.back();
    const uint64_t row_bytes = dtype_row_bytes(b.dtype, k);
    Shape rows = b.shape;
    rows.rank -= 1;
    const int64_t n_rows = rows.numel();
    std::vector<float> dense(size_t(b.numel()));
    parallel_for(
        n_rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(k, 1)), [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) {
            int64_t rem = r, off = 0;
            for (int d = rows.rank - 1; d >= 0; --d) {
              off += (rem % rows.dims[d]) * b.strides[d];
              rem /= rows.dims[d];
            }
            reference::dequantize_row(
                b.dtype, static_cast<const uint8_t*>(in[1]) + uint64_t(off / k) * row_bytes,
                dense.data() + r * k, k);
          }
        });
    OpSpec f = s;
    f.inputs[1] = TensorDesc::contiguous(DType::kF32, b.shape);
    const void* fin[kMaxOpInputs] = {in[0], dense.data(), s.num_inputs > 2 ? in[2] : nullptr,
                                     nullptr};
    return execute_matmul(f, fin, out, precision);
  }
  const TensorDesc& a = s.inputs[0];
  const TensorDesc& b = s.inputs[1];
  const TensorDesc& o = s.output;
  const int ra = a.shape.rank, rb = b.shape.rank, ro = o.shape.rank;
  const int64_t m = o.shape[ro - 2], n = o.shape[ro - 1];
  const int64_t k = s.attrs.transpose_a ? a.shape.back(2) : a.shape.back(1);
  if (o.numel() <= 0) return ok_status();
  const Rounding rnd = precision == ComputePrecision::kBf16 ? Rounding::kBf16 : Rounding::kNone;

  const int64_t mpad = (m + kMr - 1) / kMr * kMr;
  const int64_t npad = (n + kNr - 1) / kNr * kNr;
  // Packed operands and accumulators: every element is written before it is read.
  float* ap = scratch_floats(ScratchSlot::kMatmulA, size_t(mpad * std::max<int64_t>(k, 1)));
  float* bp = scratch_floats(ScratchSlot::kMatmulB, size_t(npad * std::max<int64_t>(k, 1)));
  float* c = scratch_floats(ScratchSlot::kMatmulC, size_t(mpad * npad));
  std::vector<float> bias;
  if (s.num_inputs == 3) {
    bias.resize(size_t(n));
    gather_f32(in[2], s.inputs[2], Shape{n}, bias.data());
  }
  // Strides of the matrix dims: element (i, p) of op(A) and (p, j) of op(B).
  const int64_t a_rs = s.attrs.transpose_a ? a.strides[ra - 1] : a.strides[ra - 2];
  const int64_t a_cs = s.attrs.transpose_a ? a.strides[ra - 2] : a.strides[ra - 1];
  const int64_t b_rs = s.attrs.transpose_b ? b.strides[rb - 1] : b.strides[rb - 2];
  const int64_t b_cs = s.attrs.transpose_b ? b.strides[rb - 2] : b.strides[rb - 1];

  // Iterate the output's batch dims; A and B broadcast into them (right-aligned).
  const int batch_rank = ro - 2;
  int64_t batch = 1;
  for (int d = 0; d < batch_rank; ++d) batch *= o.shape[d];
  int64_t last_a = -1, last_b = -1;
  const float alpha = s.attrs.alpha;
  for (int64_t bi = 0; bi < batch; ++bi) {
    int64_t rem = bi, a_off = 0, b_off = 0, o_off = 0;
    for (int d = batch_rank - 1; d >= 0; --d) {
      const int64_t idx = rem % o.shape[d];
      rem /= o.shape[d];
      o_off += idx * o.strides[d];
      const int da = d - (batch_rank - (ra - 2)), db = d - (batch_rank - (rb - 2));
      if (da >= 0 && a.shape[da] != 1) a_off += idx * a.strides[da];
      if (db >= 0 && b.shape[db] != 1) b_off += idx * b.strides[db];
    }
    const size_t ea = dtype_size(a.dtype), eb = dtype_size(b.dtype);
    if (k > 0) {
      if (a_off != last_a) {
        pack_a(View2d{static_cast<const char*>(in[0]) + a_off * int64_t(ea), a.dtype, a_rs, a_cs},
               m, k, ap, rnd);
        last_a = a_off;
      }
      if (b_off != last_b) {
        pack_b(View2d{static_cast<const char*>(in[1]) + b_off * int64_t(eb), b.dtype, b_rs, b_cs},
               k, n, bp, rnd);
        last_b = b_off;
      }
      gemm_packed(ap, bp, m, n, k, c, npad);
    } else {
      std::fill(c, c + mpad * npad, 0.0f);
    }
    // Epilogue in fp32 (the vector unit on the accumulator drain), then one rounding.
    float* tile = scratch_floats(ScratchSlot::kMatmulOut, size_t(m * n));
    parallel_for(m, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)),
                 [&](int64_t r0, int64_t r1) {
                   for (int64_t i = r0; i < r1; ++i)
                     for (int64_t j = 0; j < n; ++j) {
                       float v = c[size_t(i * npad + j)];
                       if (alpha != 1.0f) v *= alpha;
                       if (!bias.empty()) v += bias[size_t(j)];
                       tile[size_t(i * n + j)] = v;
                     }
                 });
    TensorDesc view;
    view.dtype = o.dtype;
    view.shape = Shape{m, n};
    view.strides[0] = o.strides[ro - 2];
    view.strides[1] = o.strides[ro - 1];
    scatter_f32(tile, static_cast<char*>(out) + o_off * int64_t(dtype_size(o.dtype)), view);
  }
  return ok_status();
}

}  // namespace hal::npu_sim
