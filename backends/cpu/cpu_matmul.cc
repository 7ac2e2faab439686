// Matmul: the backend's own kernels for the products of a model: prefill-sized ones (more
// than kStreamMaxRows rows of A) through panels of the weights converted to f32 and
// register tiles of A (cpu_panel_kernels.inc), decode-shaped ones (few rows of A against a
// large weight matrix, memory-bound) through streaming kernels that read the weights once,
// in their stored dtype, one contiguous stream per core; OpenBLAS sgemm for what neither
// takes (weights with no unit stride, an empty K), awkward strides packed into f32 first.
#include <algorithm>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "cpu_blas.h"
#include "cpu_isa.h"
#include "cpu_ops.h"
#include "cpu_quant.h"
#include "cpu_simd.h"
#include "cpu_threading.h"

namespace hal::cpu {

namespace {

// Decode with B as [K, N]: each core reads a contiguous range of B's rows as long
// sequential streams (rows_kernel), not a slice of every row. Measured (BM_DecodeMatmul,
// tb:0, two alternating runs each): [768, 768] f32 16.7-17.5 -> 24.8-25.4 GB/s, f16
// 10.5-11.0 -> 20.4-20.9; [3072, 768] f32 14.3-18.8 -> 30.0-35.2, f16 11.3-12.2 ->
// 25.2-27.1. HAL_CPU_ROWS_STREAMS=1 goes back to the slices, to repeat the comparison.
bool rows_in_streams() {
  static const bool on = !env_equals("HAL_CPU_ROWS_STREAMS", "1");
  return on;
}

// How many sequential streams one core reads at once in a decode product (both layouts:
// rows_streams and cols_range's one-row path): 4, or HAL_CPU_DECODE_STREAMS = 2, 4 or 8.
// Why 4: each stream is one hardware-prefetcher stream; eight (the earlier choice, from a
// comparison against neighbouring rows, not against fewer streams) pulled less from
// memory on the AVX-512 Zen 4 of the issue-14 runs. Paired rounds of the same product
// in one process, 2 threads, [3072, 768] weights cycled over 160 MB: f16 4 streams
// 1.04-1.10x the rate of 8, f32 1.04-1.12x; 2 streams about as 4.
int decode_streams() {
  static const int n = env_equals("HAL_CPU_DECODE_STREAMS", "2")   ? 2
                       : env_equals("HAL_CPU_DECODE_STREAMS", "8") ? 8
                                                                   : 4;
  return n;
}

// fn(std::integral_constant<int, S>{}) for S = decode_streams(), so the stream loops are
// compiled for each count.
template <class Fn>
void with_decode_streams(Fn&& fn) {
  switch (decode_streams()) {
    case 2:
      return fn(std::integral_constant<int, 2>{});
    case 8:
      return fn(std::integral_constant<int, 8>{});
    default:
      return fn(std::integral_constant<int, 4>{});
  }
}

// A 2-D strided view (element strides) of a float tensor.
struct Mat {
  const char* p = nullptr;
  DType t = DType::kF32;
  int64_t rs = 0;  // step between rows
  int64_t cs = 0;  // step between columns
  const char* at(int64_t r, int64_t c) const {
    return p + (r * rs + c * cs) * int64_t(dtype_size(t));
  }
};
struct OutMat {
  char* p = nullptr;
  DType t = DType::kF32;
  int64_t rs = 0, cs = 0;
  char* at(int64_t r, int64_t c) const { return p + (r * rs + c * cs) * int64_t(dtype_size(t)); }
};

// One product: C[M,N] = alpha * A[M,K] @ B[K,N] + bias[N].
struct Gemm {
  int64_t m = 0, n = 0, k = 0;
  Mat a, b;
  OutMat c;
  const float* bias = nullptr;  // dense f32 [N] or null
  float alpha = 1.0f;
};

// Decode-shaped products up to this many rows use the streaming kernels (measured on a
// 2-core AVX-512 Xeon: faster than OpenBLAS sgemm up to 8 rows at K,N >= 768; see
// benchmarks/cpu/matmul_benchmark.cc, BM_DecodeMatmul).
constexpr int64_t kStreamMaxRows = 8;

// ---- streaming kernels (cpu_stream_kernels.inc, one copy per ISA level) -----------------

namespace isa_base {
#define HAL_STREAM_ISA 0
#include "cpu_stream_kernels.inc"
#undef HAL_STREAM_ISA
}  // namespace isa_base

#if defined(__x86_64__) && !defined(HAL_CPU_NO_MULTIVERSION)
// GCC 12's intrinsic headers start results from _mm512_undefined_*(), which
// -Wmaybe-uninitialized reports inside inlined code; the values are fully written.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
namespace isa_v3 {
#define HAL_STREAM_ISA 3
#include "cpu_panel_kernels.inc"
#include "cpu_stream_kernels.inc"
#undef HAL_STREAM_ISA
}  // namespace isa_v3
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4")
namespace isa_v4 {
#define HAL_STREAM_ISA 4
#include "cpu_panel_kernels.inc"
#include "cpu_stream_kernels.inc"
#undef HAL_STREAM_ISA
}  // namespace isa_v4
#pragma GCC pop_options
#pragma GCC diagnostic pop
#endif

struct StreamKernels {
  decltype(&isa_base::rows_kernel) rows = &isa_base::rows_kernel;
  decltype(&isa_base::cols_kernel) cols = &isa_base::cols_kernel;
  // Prefill panels (cpu_panel_kernels.inc): none on the baseline ISA.
  void (*panel)(DType, int64_t, const float*, int64_t, const char*, int64_t, int64_t, int64_t,
                int64_t, float*, float*, int64_t, int64_t, const float*) = nullptr;
};

// The widest copy the running CPU supports (cpu_isa.h), chosen once.
const StreamKernels& stream_kernels() {
  static const StreamKernels k = [] {
    StreamKernels s;
#if defined(__x86_64__) && !defined(HAL_CPU_NO_MULTIVERSION)
    const IsaLevel level = cpu_isa_level();
    if (level >= IsaLevel::kV4) {
      s.rows = &isa_v4::rows_kernel;
      s.cols = &isa_v4::cols_kernel;
      s.panel = &isa_v4::panel_gemm;
    } else if (level == IsaLevel::kV3) {
      s.rows = &isa_v3::rows_kernel;
      s.cols = &isa_v3::cols_kernel;
      s.panel = &isa_v3::panel_gemm;
    }
#endif
    return s;
  }();
  return k;
}

void rows_kernel(DType t, int m, const float* a, int64_t lda, const char* b, int64_t ldb_bytes,
                 int64_t k0, int64_t k1, int64_t nc, float* acc, int64_t ld_acc) {
  stream_kernels().rows(t, m, a, lda, b, ldb_bytes, k0, k1, nc, acc, ld_acc);
}
void cols_kernel(DType t, int m, const float* a, int64_t lda, const char* b, int64_t bn_bytes,
                 int64_t k, int64_t nc, float* res, int64_t ldr) {
  stream_kernels().cols(t, m, a, lda, b, bn_bytes, k, nc, res, ldr);
}

// ---- shared pieces -------------------------------------------------------------------------

// A [M, K] as f32 rows the kernels read with row stride `ld`.
struct F32Rows {
  const float* p;
  int64_t ld;
};
// A itself when its rows are already f32 with unit column stride (the usual activation),
// else a dense copy in the scratch slot `slot`: the kernels take a row stride, so the
// copy (on one thread, before the parallel part) served nothing.
F32Rows f32_rows_of_a(const Gemm& g, Scratch slot) {
  if (g.a.t == DType::kF32 && (g.a.cs == 1 || g.k == 1) && (g.a.rs >= g.k || g.m == 1))
    return {reinterpret_cast<const float*>(g.a.p), g.m == 1 ? g.k : g.a.rs};
  float* dst = scratch_floats(slot, size_t(g.m * g.k));
  for (int64_t r = 0; r < g.m; ++r) load_f32(g.a.at(r, 0), g.a.t, g.a.cs, g.k, dst + r * g.k);
  return {dst, g.k};
}

// row[0..nc) = alpha * row[j], then + bias[n0 + j]: two roundings, in this order.
HAL_CPU_INLINE void apply_alpha_and_bias(float* row, const Gemm& g, int64_t n0, int64_t nc) {
  if (g.alpha != 1.0f)
    for (int64_t j = 0; j < nc; ++j) row[j] *= g.alpha;
  if (g.bias)
    for (int64_t j = 0; j < nc; ++j) row[j] += g.bias[n0 + j];
}

// Writes alpha * acc[r][0..nc) + bias into C rows [r0, r0 + rows), columns [n0, n0 + nc).
void store_rows(const Gemm& g, int64_t r0, int64_t rows, int64_t n0, int64_t nc, float* acc,
                int64_t ld_acc) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = acc + r * ld_acc;
    apply_alpha_and_bias(row, g, n0, nc);
    store_f32(g.c.at(r0 + r, n0), g.c.t, g.c.cs, nc, row);
  }
}

bool b_is_rows(const Gemm& g) { return g.b.cs == 1 || g.n == 1; }
bool b_is_cols(const Gemm& g) { return g.b.rs == 1 || g.k == 1; }

// The streaming product for up to kStreamMaxRows rows of A. B must be "rows" or "cols".
// `parallel`: spread over the thread budget (false inside an already parallel loop).
void stream_gemm(const Gemm& g, bool parallel) {
  const int m = int(g.m);
  const auto [a, lda] = f32_rows_of_a(g, parallel ? Scratch::kOuter1 : Scratch::kLeaf1);
  const int64_t esz = dtype_size(g.b.t);
  auto run = [&](int64_t items, auto&& item) {
    if (parallel) {
      parallel_for_static(items, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) item(i);
      });
    } else {
      for (int64_t i = 0; i < items; ++i) item(i);
    }
  };
  const int threads = parallel ? thread_budget() : 1;

  if (!b_is_rows(g)) {
    // "cols": each item is a range of output columns (B rows), read once. One row of A
    // (decode): one range per thread, so each of its streams (cols_range) runs the whole
    // range; in items of 64 rows a stream of f16 rows restarted every 24 KB, and paired
    // rounds in one process read f16 [3072, 768] weights 11% slower that way (f32, whose
    // rows are twice as long, the same). HAL_CPU_COLS_ITEMS=64 goes back to the items.
    static const bool decode_items = env_equals("HAL_CPU_COLS_ITEMS", "64");
    const int64_t items = m == 1 && !decode_items
                              ? std::max<int64_t>(1, std::min<int64_t>(threads, g.n / 64))
                              : std::min<int64_t>(std::max<int64_t>(1, g.n / 64), 64 * threads);
    run(items, [&](int64_t i) {
      const int64_t n0 = g.n * i / items, n1 = g.n * (i + 1) / items;
      const int64_t nc = n1 - n0;
      float* res = scratch_floats(Scratch::kLeaf2, size_t(g.m * nc));
      cols_kernel(g.b.t, m, a, lda, g.b.at(0, n0), g.b.cs * esz, g.k, nc, res, nc);
      store_rows(g, 0, g.m, n0, nc, res, nc);
    });
    return;
  }

  // "rows": column tiles sized so the accumulators (m x tile) stay in L1, equal in width
  // and as many as a multiple of the threads, so every core streams the same share. A
  // narrow output (under 256 columns a thread) splits K instead and reduces partial sums.
  const int64_t max_tile = std::max<int64_t>(64, (8192 / g.m) / 16 * 16);
  int64_t tiles = (g.n + max_tile - 1) / max_tile;
  int64_t k_splits = 1;
  if (g.m == 1 && rows_in_streams() && g.n <= 16384) {
    // Decode: each core reads a contiguous range of B's rows, all columns (a few streams
    // in it, rows_kernel), instead of a slice of every row.
    tiles = 1;
    k_splits = std::max<int64_t>(1, std::min<int64_t>(threads, g.k / 64));
  } else if (threads > 1 && g.n >= 256 * threads) {
    tiles = (tiles + threads - 1) / threads * threads;
  } else if (threads > 1 && g.k >= 64 * threads) {
    k_splits = threads;
  }
  const int64_t tile = ((g.n + tiles - 1) / tiles + 15) / 16 * 16;
  tiles = (g.n + tile - 1) / tile;
  const int64_t ldb_bytes = g.b.rs * esz;
  if (k_splits == 1) {
    run(tiles, [&](int64_t t) {
      const int64_t n0 = t * tile, nc = std::min(tile, g.n - n0);
      float* acc = scratch_floats(Scratch::kLeaf2, size_t(g.m * tile));
      rows_kernel(g.b.t, m, a, lda, g.b.at(0, n0), ldb_bytes, 0, g.k, nc, acc, tile);
      store_rows(g, 0, g.m, n0, nc, acc, tile);
    });
    return;
  }
  // partial[s][m][n] for split s; reduced into split 0.
  const int64_t plane = g.m * g.n;
  float* partial =
      scratch_floats(parallel ? Scratch::kOuter2 : Scratch::kLeaf3, size_t(plane * k_splits));
  run(tiles * k_splits, [&](int64_t i) {
    const int64_t s = i % k_splits, t = i / k_splits;
    const int64_t n0 = t * tile, nc = std::min(tile, g.n - n0);
    const int64_t k0 = g.k * s / k_splits, k1 = g.k * (s + 1) / k_splits;
    rows_kernel(g.b.t, m, a, lda, g.b.at(0, n0), ldb_bytes, k0, k1, nc, partial + s * plane + n0,
                g.n);
  });
  for (int64_t s = 1; s < k_splits; ++s)
    for (int64_t j = 0; j < plane; ++j) partial[j] += partial[s * plane + j];
  store_rows(g, 0, g.m, 0, g.n, partial, g.n);
}

// Prefill with f32, f16 or bf16 weights stored [N, K] or [K, N]: panels of 16 weight
// columns converted once into f32 and multiplied by register tiles of A
// (cpu_panel_kernels.inc). For f16/bf16 this replaced an f32 copy of all of B for sgemm
// (the copy took a third of the product's time). For f32 it beats OpenBLAS's sgemm on a
// model's prefill products up to ~512 rows of A (BM_PrefillHalVsBlas: GPT-2-small's
// layers at 128 and 512 tokens 1.03-1.40x, Llama-7B's MLP up stored [N, K] 1.03-1.25x),
// while sgemm, which also blocks A for the caches, wins on longer prompts (2048 tokens:
// 0.88-1.00x); and it keeps the hot team's threads (sgemm runs on OpenBLAS's own).
// Weights stored [K, N] are packed from one 16-value piece of each of their K rows: rows
// longer than kPanelMaxRowBytes cost a TLB miss per piece (Llama-7B's MLP up stored
// [K, N]: 0.82-0.90x sgemm), so those stay with sgemm.
constexpr int64_t kPanelMaxRowsF32 = 512;
constexpr int64_t kPanelMaxRowBytes = 16 << 10;

bool panel_applies(const Gemm& g) {
  if (g.m <= kStreamMaxRows || g.k <= 0 || stream_kernels().panel == nullptr) return false;
  if (g.b.t == DType::kF32) {
    if (g.m > kPanelMaxRowsF32) return false;
  } else if (g.b.t != DType::kF16 && g.b.t != DType::kBF16) {
    return false;
  }
  if (g.b.rs == 1 || g.k == 1) return true;  // stored [N, K]
  return g.b.cs == 1 && g.b.rs * int64_t(dtype_size(g.b.t)) <= kPanelMaxRowBytes;
}

void panel_product(const Gemm& g, bool parallel) {
  const auto [a, lda] = f32_rows_of_a(g, parallel ? Scratch::kOuter1 : Scratch::kLeaf1);
  const int64_t panels = (g.n + 15) / 16;
  const int64_t esz = int64_t(dtype_size(g.b.t));
  const int64_t bn_bytes = g.b.cs * esz;
  const int64_t bk_bytes = g.k == 1 ? esz : g.b.rs * esz;  // esz: stored [N, K]
  // An f32 output with unit column stride takes the kernel's rows directly: copying each
  // panel's 16 columns out of scratch was a memcpy call per row of every panel (3-7% of a
  // GPT-2 f16 prefill's perf profile), then a bias pass over them. Paired runs, GPT-2 f16
  // pp128 (`halctl bench -p 128 -r 3`, 8 pairs): +2.1% median.
  const bool direct = g.c.t == DType::kF32 && g.c.cs == 1 && g.c.rs >= g.n;  // M > 8 here
  auto body = [&](int64_t p0, int64_t p1) {
    float* wp = scratch_floats(Scratch::kLeaf2, size_t(16 * g.k));
    float* res = scratch_floats(Scratch::kLeaf3, size_t(16 * g.m));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n0 = 16 * p, nc = std::min<int64_t>(16, g.n - n0);
      // The next panel of this range is read next: its rows are prefetched meanwhile.
      const int64_t next_rows = p + 1 < p1 ? std::min<int64_t>(16, g.n - n0 - 16) : 0;
      if (direct && nc == 16) {
        // Full panels of an f32 output land in place, the bias added by the kernel (when
        // no alpha comes between; else both after it, as store_rows would).
        float* c = reinterpret_cast<float*>(g.c.at(0, n0));
        const bool kernel_bias = g.bias && g.alpha == 1.0f;
        stream_kernels().panel(g.b.t, g.m, a, lda, g.b.at(0, n0), bn_bytes, bk_bytes, g.k, nc, wp,
                               c, g.c.rs, next_rows, kernel_bias ? g.bias + n0 : nullptr);
        if (!kernel_bias && (g.alpha != 1.0f || g.bias))
          for (int64_t r = 0; r < g.m; ++r) apply_alpha_and_bias(c + r * g.c.rs, g, n0, 16);
        continue;
      }
      stream_kernels().panel(g.b.t, g.m, a, lda, g.b.at(0, n0), bn_bytes, bk_bytes, g.k, nc, wp,
                             res, 16, next_rows, nullptr);
      store_rows(g, 0, g.m, n0, nc, res, 16);
    }
  };
  if (parallel)
    parallel_for(panels, 1, body);
  else
    body(0, panels);
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

// A BLAS operand: the layout cblas accepts for a [rows, cols] view, or none.
struct BlasLayout {
  bool ok = false;
  bool trans = false;
  int64_t ld = 0;
};
BlasLayout blas_layout(const Mat& v, int64_t rows, int64_t cols) {
  BlasLayout l;
  if (v.t != DType::kF32) return l;
  if (v.cs == 1 || cols == 1) {
    l.ld = rows == 1 ? std::max<int64_t>(cols, 1) : v.rs;
    if (l.ld >= std::max<int64_t>(cols, 1) && fits_int(l.ld)) l.ok = true;
    if (l.ok) return l;
  }
  if (v.rs == 1 || rows == 1) {
    l.trans = true;
    l.ld = cols == 1 ? std::max<int64_t>(rows, 1) : v.cs;
    l.ok = l.ld >= std::max<int64_t>(rows, 1) && fits_int(l.ld);
  }
  return l;
}

// Dense f32 copy of a [rows, cols] view, row-major (or column-major when `by_cols`, which
// keeps reads sequential for views whose rows are strided).
void pack(const Mat& v, int64_t rows, int64_t cols, bool by_cols, float* dst, bool parallel) {
  const int64_t lines = by_cols ? cols : rows, len = by_cols ? rows : cols;
  auto body = [&](int64_t l0, int64_t l1) {
    for (int64_t l = l0; l < l1; ++l)
      load_f32(by_cols ? v.at(0, l) : v.at(l, 0), v.t, by_cols ? v.rs : v.cs, len, dst + l * len);
  };
  if (parallel)
    parallel_for(lines, std::max<int64_t>(1, 65536 / std::max<int64_t>(len, 1)), body);
  else
    body(0, lines);
}

// The general product through OpenBLAS. Operands cblas cannot take as they are (f16/bf16,
// two non-unit strides) are packed into f32 first; so is C when it is not dense f32.
void blas_gemm(const Gemm& g, bool parallel) {
  const BlasLibrary& lib = blas();
  auto slot = [&](int i) {
    return Scratch(int(parallel ? Scratch::kOuter0 : Scratch::kLeaf0) + i);
  };
  BlasLayout la = blas_layout(g.a, g.m, g.k);
  const float* a = reinterpret_cast<const float*>(g.a.p);
  if (!la.ok) {
    const bool by_cols = g.a.rs == 1 && g.a.cs != 1;
    float* buf = scratch_floats(slot(0), size_t(g.m * g.k));
    pack(g.a, g.m, g.k, by_cols, buf, parallel);
    a = buf;
    la = {true, by_cols, by_cols ? g.m : g.k};
  }
  BlasLayout lb = blas_layout(g.b, g.k, g.n);
  const float* b = reinterpret_cast<const float*>(g.b.p);
  if (!lb.ok) {
    const bool by_cols = g.b.rs == 1 && g.b.cs != 1;
    float* buf = scratch_floats(slot(1), size_t(g.k * g.n));
    pack(g.b, g.k, g.n, by_cols, buf, parallel);
    b = buf;
    lb = {true, by_cols, by_cols ? g.k : g.n};
  }
  const bool c_direct = g.c.t == DType::kF32 && (g.c.cs == 1 || g.n == 1) &&
                        (g.m == 1 || g.c.rs >= g.n) && fits_int(g.m == 1 ? g.n : g.c.rs);
  float* c =
      c_direct ? reinterpret_cast<float*>(g.c.p) : scratch_floats(slot(2), size_t(g.m * g.n));
  const int64_t ldc = c_direct ? (g.m == 1 ? std::max<int64_t>(g.n, 1) : g.c.rs) : g.n;
  float beta = 0.0f;
  if (g.bias) {
    for (int64_t r = 0; r < g.m; ++r) std::memcpy(c + r * ldc, g.bias, size_t(g.n) * sizeof(float));
    beta = 1.0f;
  }
  if (g.k == 0) {
    if (!g.bias)
      for (int64_t r = 0; r < g.m; ++r) std::memset(c + r * ldc, 0, size_t(g.n) * sizeof(float));
  } else {
    PauseHotTeam pause;  // OpenBLAS computes on threads of its own
    lib.sgemm(la.trans, lb.trans, g.m, g.n, g.k, g.alpha, a, la.ld, b, lb.ld, beta, c, ldc);
  }
  if (!c_direct)
    for (int64_t r = 0; r < g.m; ++r) store_f32(g.c.at(r, 0), g.c.t, g.c.cs, g.n, c + r * g.n);
}

// Without BLAS (or beyond its int range): the streaming kernels over groups of rows.
void fallback_gemm(const Gemm& g, bool parallel) {
  Gemm part = g;
  Gemm packed_b = g;
  if (!b_is_rows(g) && !b_is_cols(g)) {
    float* buf = scratch_floats(parallel ? Scratch::kOuter3 : Scratch::kLeaf0, size_t(g.k * g.n));
    pack(g.b, g.k, g.n, false, buf, parallel);
    packed_b.b = Mat{reinterpret_cast<const char*>(buf), DType::kF32, g.n, 1};
  }
  for (int64_t r0 = 0; r0 < g.m; r0 += kStreamMaxRows) {
    part = packed_b;
    part.m = std::min(kStreamMaxRows, g.m - r0);
    part.a.p = g.a.at(r0, 0);
    part.c.p = g.c.at(r0, 0);
    stream_gemm(part, parallel);
  }
}

void run_gemm(const Gemm& g, bool parallel) {
  if (g.m == 0 || g.n == 0) return;
  if (panel_applies(g)) return panel_product(g, parallel);
  if (g.k == 0 || g.m > kStreamMaxRows || (!b_is_rows(g) && !b_is_cols(g))) {
    const bool blas_ok = blas().available && fits_int(g.m) && fits_int(g.n) && fits_int(g.k);
    if (blas_ok) return blas_gemm(g, parallel);
    if (g.k == 0) {
      // alpha * (empty sum) + bias
      float* row = scratch_floats(parallel ? Scratch::kOuter0 : Scratch::kLeaf0, size_t(g.n));
      for (int64_t r = 0; r < g.m; ++r) {
        for (int64_t j = 0; j < g.n; ++j) row[j] = 0.0f;
        store_rows(g, r, 1, 0, g.n, row, g.n);
      }
      return;
    }
    return fallback_gemm(g, parallel);
  }
  stream_gemm(g, parallel);
}

}  // namespace

bool panel_kernels_available() { return stream_kernels().panel != nullptr; }

void panel_product16(DType t, int64_t m, const float* a, int64_t lda, const char* b,
                     int64_t bn_bytes, int64_t k, int64_t nc, float* wp, float* res, int64_t ldr) {
  stream_kernels().panel(t, m, a, lda, b, bn_bytes, int64_t(dtype_size(t)), k, nc, wp, res, ldr, 0,
                         nullptr);
}

Status matmul(const OpSpec& spec, const void* const* in, void* out) {
  if (is_quantized(spec.inputs[1].dtype)) return quant_matmul(spec, in, out);
  const TensorDesc& ad = spec.inputs[0];
  const TensorDesc& bd = spec.inputs[1];
  const TensorDesc& od = spec.output;
  const OpAttributes& at = spec.attrs;
  const int r = od.shape.rank, ra = ad.shape.rank, rb = bd.shape.rank;
  const int nb = r - 2;  // batch rank of the output

  Gemm g;
  g.m = od.shape[r - 2];
  g.n = od.shape[r - 1];
  g.k = at.transpose_a ? ad.shape[ra - 2] : ad.shape[ra - 1];
  g.alpha = at.alpha;
  g.a = Mat{static_cast<const char*>(in[0]), ad.dtype,
            at.transpose_a ? ad.strides[ra - 1] : ad.strides[ra - 2],
            at.transpose_a ? ad.strides[ra - 2] : ad.strides[ra - 1]};
  g.b = Mat{static_cast<const char*>(in[1]), bd.dtype,
            at.transpose_b ? bd.strides[rb - 1] : bd.strides[rb - 2],
            at.transpose_b ? bd.strides[rb - 2] : bd.strides[rb - 1]};
  g.c = OutMat{static_cast<char*>(out), od.dtype, od.strides[r - 2], od.strides[r - 1]};
  if (od.numel() == 0) return ok_status();
  if (spec.num_inputs == 3) {
    const TensorDesc& bias = spec.inputs[2];
    if (bias.dtype == DType::kF32 && (bias.strides[0] == 1 || g.n == 1)) {
      g.bias = static_cast<const float*>(in[2]);
    } else {
      float* buf = scratch_floats(Scratch::kOuter4, size_t(g.n));
      load_f32(in[2], bias.dtype, bias.strides[0], g.n, buf);
      g.bias = buf;
    }
  }

  // Batch strides of A, B and C over the output's batch dims (broadcast dims step 0).
  int64_t dims[kMaxRank], sa[kMaxRank], sb[kMaxRank], sc[kMaxRank];
  int64_t batches = 1;
  bool b_shared = true;
  for (int d = 0; d < nb; ++d) {
    dims[d] = od.shape[d];
    batches *= dims[d];
    const int da = ra - 2 - nb + d, db = rb - 2 - nb + d;
    sa[d] = (da < 0 || ad.shape[da] == 1) ? 0 : ad.strides[da];
    sb[d] = (db < 0 || bd.shape[db] == 1) ? 0 : bd.strides[db];
    sc[d] = od.strides[d];
    if (sb[d] != 0 && dims[d] != 1) b_shared = false;
  }
  const int64_t asz = dtype_size(ad.dtype), bsz = dtype_size(bd.dtype), csz = dtype_size(od.dtype);

  // B shared by every batch and rows of A and C evenly spaced across the batch: one
  // product with M = batches * M (a linear layer over [B, S, K]).
  if (batches > 1 && b_shared) {
    int64_t rows = g.m;
    bool fold = true;
    for (int d = nb - 1; d >= 0 && fold; --d) {
      if (dims[d] == 1) continue;
      if (sa[d] != g.a.rs * rows || sc[d] != g.c.rs * rows) fold = false;
      rows *= dims[d];
    }
    if (fold) {
      g.m = rows;
      batches = 1;
    }
  }
  if (batches == 1) {
    run_gemm(g, true);
    return ok_status();
  }

  auto batch_gemm = [&](int64_t i) {
    Gemm bg = g;
    int64_t rem = i, oa = 0, ob = 0, oc = 0;
    for (int d = nb - 1; d >= 0; --d) {
      const int64_t idx = rem % dims[d];
      rem /= dims[d];
      oa += idx * sa[d];
      ob += idx * sb[d];
      oc += idx * sc[d];
    }
    bg.a.p += oa * asz;
    bg.b.p += ob * bsz;
    bg.c.p += oc * csz;
    return bg;
  };
  // Small products (OpenBLAS runs these single-threaded) go in parallel over the batch;
  // large ones one after another, each using every core.
  const double work = double(g.m) * double(g.n) * double(std::max<int64_t>(g.k, 1));
  if (work <= 262144.0) {
    parallel_for(batches, std::max<int64_t>(1, int64_t(262144.0 / work)),
                 [&](int64_t i0, int64_t i1) {
                   for (int64_t i = i0; i < i1; ++i) run_gemm(batch_gemm(i), false);
                 });
  } else {
    for (int64_t i = 0; i < batches; ++i) run_gemm(batch_gemm(i), true);
  }
  return ok_status();
}

}  // namespace hal::cpu
