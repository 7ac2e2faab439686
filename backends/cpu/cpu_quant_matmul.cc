// Matmul with a quantized B (cpu_quant.h): A's rows quantized to int8 blocks, the
// per-ISA kernels of cpu_quant_kernels.inc over column ranges, one contiguous range of
// weight rows per core (decode reads each weight once, at memory bandwidth).
#include <algorithm>
#include <array>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cpu_blas.h"
#include "cpu_isa.h"
#include "cpu_ops.h"
#include "cpu_quant.h"
#include "cpu_simd.h"
#include "cpu_threading.h"
#include "cpu_weight_cache.h"
#include "hal/quant_reference.h"

namespace hal::cpu {

namespace {

namespace isa_base {
#define HAL_QUANT_ISA 0
#include "cpu_quant_kernels.inc"
#undef HAL_QUANT_ISA
}  // namespace isa_base

#if defined(__x86_64__) && !defined(HAL_CPU_NO_MULTIVERSION)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
namespace isa_v3 {
#define HAL_QUANT_ISA 3
#include "cpu_quant_kernels.inc"
#undef HAL_QUANT_ISA
}  // namespace isa_v3
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4,avx512vnni")
namespace isa_vnni {
#define HAL_QUANT_ISA 5
#include "cpu_quant_kernels.inc"
#undef HAL_QUANT_ISA
}  // namespace isa_vnni
#pragma GCC pop_options
#pragma GCC diagnostic pop
#endif

struct QuantKernels {
  decltype(&isa_base::qgemm) qgemm = &isa_base::qgemm;
  decltype(&isa_base::lane_offset) lane_offset = &isa_base::lane_offset;
  decltype(&isa_base::dequant) dequant = &isa_base::dequant;
  decltype(&isa_base::quantize_rows) quantize_rows = &isa_base::quantize_rows;
  decltype(&isa_base::q4_0x8_gemv) q4_0x8_gemv = &isa_base::q4_0x8_gemv;
  decltype(&isa_base::q8_0x8_gemv) q8_0x8_gemv = &isa_base::q8_0x8_gemv;
  decltype(&isa_base::q4_kx8_gemv) q4_kx8_gemv = &isa_base::q4_kx8_gemv;
  decltype(&isa_base::q5_kx8_gemv) q5_kx8_gemv = &isa_base::q5_kx8_gemv;
  decltype(&isa_base::q6_kx8_gemv) q6_kx8_gemv = &isa_base::q6_kx8_gemv;
  // Prefill panels (cpu_quant_tiles.inc): none on the baseline ISA.
  bool (*tile_format)(DType) = nullptr;
  void (*tile_gemm)(DType, const QuantActs&, const int32_t*, int64_t, const uint8_t*, uint64_t,
                    int64_t, int64_t, int64_t, float*, int64_t, uint8_t*) = nullptr;
  int64_t panel_block_bytes = 0;
  int signed_quant_offset = 0;  // added to q8_0's quants in its copy (kSignedQuantOffset)
  std::string isa = "scalar";
  bool tiles(DType t) const { return tile_format && tile_format(t); }
};

// The widest version the running CPU supports (cpu_isa.h), chosen once.
const QuantKernels& kernels() {
  static const QuantKernels k = [] {
    QuantKernels s;
#if defined(__x86_64__) && !defined(HAL_CPU_NO_MULTIVERSION)
    const IsaLevel level = cpu_isa_level();
    if (level == IsaLevel::kV4Vnni) {
      s.qgemm = &isa_vnni::qgemm;
      s.lane_offset = &isa_vnni::lane_offset;
      s.signed_quant_offset = isa_vnni::kSignedQuantOffset;
      s.dequant = &isa_vnni::dequant;
      s.quantize_rows = &isa_vnni::quantize_rows;
      s.q4_0x8_gemv = &isa_vnni::q4_0x8_gemv;
      s.q8_0x8_gemv = &isa_vnni::q8_0x8_gemv;
      s.q4_kx8_gemv = &isa_vnni::q4_kx8_gemv;
      s.q5_kx8_gemv = &isa_vnni::q5_kx8_gemv;
      s.q6_kx8_gemv = &isa_vnni::q6_kx8_gemv;
      s.tile_format = &isa_vnni::tile_format;
      s.tile_gemm = &isa_vnni::tile_gemm;
      s.panel_block_bytes = isa_vnni::kPanelBlockBytes;
      s.isa = "avx512-vnni";
    } else if (level >= IsaLevel::kV3) {
      s.qgemm = &isa_v3::qgemm;
      s.lane_offset = &isa_v3::lane_offset;
      s.signed_quant_offset = isa_v3::kSignedQuantOffset;
      s.dequant = &isa_v3::dequant;
      s.quantize_rows = &isa_v3::quantize_rows;
      s.q4_0x8_gemv = &isa_v3::q4_0x8_gemv;
      s.q8_0x8_gemv = &isa_v3::q8_0x8_gemv;
      s.q4_kx8_gemv = &isa_v3::q4_kx8_gemv;
      s.q5_kx8_gemv = &isa_v3::q5_kx8_gemv;
      s.q6_kx8_gemv = &isa_v3::q6_kx8_gemv;
      s.tile_format = &isa_v3::tile_format;
      s.tile_gemm = &isa_v3::tile_gemm;
      s.panel_block_bytes = isa_v3::kPanelBlockBytes;
      s.isa = "avx2";
    }
#endif
    return s;
  }();
  return k;
}

// fp8 e4m3 byte -> float, for the fp8 kernels' table lookups.
const float* fp8_table() {
  static const auto table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[size_t(i)] = reference::fp8_e4m3_to_float(uint8_t(i));
    return t;
  }();
  return table.data();
}

// Quantizes `rows` rows of f32 (row stride k) into `acts` storage; `lanes` (may be null)
// gets each block's partial sums over 4 elements times `offset`.
void quantize_acts(const float* x, int64_t rows, int64_t k, int8_t* q, float* d, float* ds,
                   float* dsum, int32_t* lanes, int offset) {
  const QuantKernels& kern = kernels();
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(k, 1)),
               [&](int64_t r0, int64_t r1) {
                 kern.quantize_rows(x, r0, r1, k, q, d, ds, dsum, lanes, offset);
               });
}

struct Product {
  int64_t m = 0, n = 0, k = 0;
  const char* a = nullptr;  // A[m, k] at a + (r * a_rs + c * a_cs) * esz
  DType a_t = DType::kF32;
  int64_t a_rs = 0, a_cs = 1;
  const uint8_t* w = nullptr;  // N rows of row_bytes
  DType w_t = DType::kQ8_0;
  uint64_t w_rs = 0;  // bytes between weight rows
  char* c = nullptr;
  DType c_t = DType::kF32;
  int64_t c_rs = 0, c_cs = 1;
  const float* bias = nullptr;  // dense f32 [N] or null
  float alpha = 1.0f;
};

// Rows of A from which a product dequantizes B into f32 panels and runs OpenBLAS sgemm
// (prefill): the integer kernels re-unpack each weight block for every 4 rows of A, while
// sgemm's register-blocked f32 FMA does more multiply-adds per instruction on AVX2 once
// the unpacking is paid once per panel. Decode-sized products stay integer (they are
// bound by reading the weights, which the compact formats minimise).
constexpr int64_t kPanelMinRows = 9;

// C = alpha * A @ dequant(B)^T + bias through f32 panels of B and sgemm.
void run_product_sgemm(const Product& p) {
  const QuantKernels& kern = kernels();
  const BlasLibrary& lib = blas();
  const int64_t asz = dtype_size(p.a_t);
  float* af = scratch_floats(Scratch::kOuter0, size_t(p.m * p.k));
  parallel_for(p.m, std::max<int64_t>(1, 16384 / std::max<int64_t>(p.k, 1)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r)
                   load_f32(p.a + r * p.a_rs * asz, p.a_t, p.a_cs, p.k, af + r * p.k);
               });
  // Panels of up to 16 MiB of f32 weights.
  const int64_t panel =
      std::clamp<int64_t>((int64_t(16) << 20) / (4 * std::max<int64_t>(p.k, 1)), 64, p.n);
  float* wf = scratch_floats(Scratch::kOuter1, size_t(panel * p.k));
  const bool direct = p.c_t == DType::kF32 && p.c_cs == 1;
  float* res =
      direct ? reinterpret_cast<float*>(p.c) : scratch_floats(Scratch::kOuter2, size_t(p.m * p.n));
  const int64_t ldr = direct ? p.c_rs : p.n;
  const float* lut = fp8_table();
  for (int64_t n0 = 0; n0 < p.n; n0 += panel) {
    const int64_t nb = std::min(panel, p.n - n0);
    parallel_for(
        nb, std::max<int64_t>(1, 8192 / std::max<int64_t>(p.k, 1)), [&](int64_t r0, int64_t r1) {
          kern.dequant(p.w_t, p.w + uint64_t(n0) * p.w_rs, p.w_rs, r0, r1, p.k, wf + r0 * p.k, lut);
        });
    float* c = res + n0;
    float beta = 0.0f;
    if (p.bias) {
      for (int64_t r = 0; r < p.m; ++r)
        std::memcpy(c + r * ldr, p.bias + n0, size_t(nb) * sizeof(float));
      beta = 1.0f;
    }
    lib.sgemm(false, true, p.m, nb, p.k, p.alpha, af, p.k, wf, p.k, beta, c, ldr);
  }
  if (direct) return;
  for (int64_t r = 0; r < p.m; ++r)
    store_f32(p.c + r * p.c_rs * int64_t(dtype_size(p.c_t)), p.c_t, p.c_cs, p.n, res + r * p.n);
}

// Prefill with the integer panels where the format has them (q8_0, q4_0, int8 on AVX2 and
// up): A rounded to int8 blocks as in decode, so a prompt's tokens and generated ones go
// through the same arithmetic (llama.cpp's too). GPT-2-small pp128, side by side with
// llama.cpp: q4_0 1,191-1,294 tokens/s against 814-864 through exact f32 panels,
// llama.cpp 795-821; q8_0 983-1,000 against 789-843, llama.cpp 661-691. The rounding
// moves hal_quant_accuracy's prefill error against f32 from 1.21e-2 to 1.68e-2 (q8_0)
// and leaves q4_0's at 1.90e-1 (its weights' own error); argmax agreement and greedy
// tokens unchanged. HAL_CPU_INT8_PREFILL=0 keeps A exact (f32 panels). Read once.
bool int8_prefill() {
  static const bool on = !env_equals("HAL_CPU_INT8_PREFILL", "0");
  return on;
}

// How a product with `rows` rows of A and weights `t` runs.
enum class Path { kDecode, kInt8Panels, kF32Panels, kSgemm };
Path path_of(DType t, int64_t rows) {
  if (rows < kPanelMinRows) return Path::kDecode;
  if (int8_prefill() && kernels().tiles(t)) return Path::kInt8Panels;
  if (panel_kernels_available()) return Path::kF32Panels;
  return blas().available ? Path::kSgemm : Path::kDecode;
}

// res[r * ldr + n] = A row r . dequantized weight row n, through 16 weight rows at a time
// dequantized into f32 and the panel tile of cpu_panel_kernels.inc (A used exactly).
void f32_panel_products(const Product& p, const float* af, float* res, int64_t ldr) {
  const QuantKernels& kern = kernels();
  const float* lut = fp8_table();
  const int64_t panels = (p.n + 15) / 16;
  parallel_for(panels, 1, [&](int64_t q0, int64_t q1) {
    float* rows = scratch_floats(Scratch::kLeaf0, size_t(16 * p.k));
    float* wp = scratch_floats(Scratch::kLeaf1, size_t(16 * p.k));
    float* tile = scratch_floats(Scratch::kLeaf2, size_t(16 * p.m));
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n0 = 16 * q, nc = std::min<int64_t>(16, p.n - n0);
      kern.dequant(p.w_t, p.w + uint64_t(n0) * p.w_rs, p.w_rs, 0, nc, p.k, rows, lut);
      panel_product16(DType::kF32, p.m, af, p.k, reinterpret_cast<const char*>(rows), 4 * p.k, p.k,
                      nc, wp, tile, 16);
      for (int64_t r = 0; r < p.m; ++r)
        std::memcpy(res + r * ldr + n0, tile + r * 16, size_t(nc) * sizeof(float));
    }
  });
}

// The K-quant copies' walk: fn(g, r, sb, blk) for every group g in [0, groups), row r of
// it and super-block sb of that row (blk: its bytes, `super_bytes` long), the groups
// shared among the cores.
template <class F>
void for_each_row_super_block(const Product& p, int64_t groups, uint64_t super_bytes, F&& fn) {
  const int64_t supers = p.k / 256;
  parallel_for(groups, 16, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      for (int r = 0; r < 8; ++r) {
        const uint8_t* row = p.w + uint64_t(8 * g + r) * p.w_rs;
        for (int64_t sb = 0; sb < supers; ++sb) fn(g, r, sb, row + uint64_t(sb) * super_bytes);
      }
  });
}

// Row r's 32 quants of a block (q: in element order) written as the copies' nibbles: their
// low 4 bits in q4_0's chunk layout (element 4c + i low, 16 + 4c + i high, at
// out[32c + 4r + i]).
void put_nibbles(uint8_t* out, int r, const uint8_t* q) {
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 4; ++i)
      out[32 * c + 4 * r + i] = uint8_t((q[4 * c + i] & 15) | (q[16 + 4 * c + i] & 15) << 4);
}

// q4_K's and q5_K's copies (X8Q4_K, X8Q5_K in cpu_quant_x8_kernels.inc): 176 or 208 bytes
// per group and sub-block.
void fill_k_quant_x8(const Product& p, int64_t groups, uint8_t* dst) {
  const bool five = p.w_t == DType::kQ5_K;
  const uint64_t block_bytes = five ? 208 : 176;
  const int64_t subs = p.k / 32;
  for_each_row_super_block(
      p, groups, five ? 176 : 144, [&](int64_t g, int r, int64_t sb, const uint8_t* blk) {
        // hal/op.h: d, dmin, 12 bytes of 6-bit scales and mins; q5_K then 32 bytes of fifth
        // bits (bit j of byte i: element i of sub-block j); then the nibbles.
        uint8_t scale[8], min[8];
        isa_base::k_scale_ints(blk, scale, min);
        const uint8_t* qh = blk + 16;
        const uint8_t* qs = blk + (five ? 48 : 16);
        for (int j = 0; j < 8; ++j) {
          uint8_t* out = dst + (uint64_t(g) * uint64_t(subs) + uint64_t(sb * 8 + j)) * block_bytes;
          std::memcpy(out + 2 * r, blk, 2);  // d and dmin, as stored
          std::memcpy(out + 16 + 2 * r, blk + 2, 2);
          out[32 + r] = scale[j];
          out[40 + r] = min[j];
          // Sub-block j's quants: nibbles (j odd: high) of qs[32 (j / 2) ..], q5_K's fifth bit
          // above them.
          uint8_t q[32];
          for (int i = 0; i < 32; ++i) {
            const uint8_t b = qs[32 * (j / 2) + i];
            q[i] = (j % 2) ? uint8_t(b >> 4) : uint8_t(b & 15);
            if (five) q[i] = uint8_t(q[i] | ((qh[i] >> j) & 1) << 4);
          }
          put_nibbles(out + 48, r, q);
          if (!five) continue;
          for (int i = 0; i < 4; ++i) {
            uint8_t top = 0;
            for (int c = 0; c < 4; ++c)
              top = uint8_t(top | (q[4 * c + i] >> 4) << c | (q[16 + 4 * c + i] >> 4) << (4 + c));
            out[176 + 4 * r + i] = top;
          }
        }
      });
}

// q6_K's copy (X8Q6_K in cpu_quant_x8_kernels.inc): 224 bytes per group and block.
void fill_q6_kx8(const Product& p, int64_t groups, uint8_t* dst) {
  const int64_t blocks = p.k / 32;
  for_each_row_super_block(p, groups, 210, [&](int64_t g, int r, int64_t sb, const uint8_t* blk) {
    // The super-block's 256 quants (0..63) in element order (hal/op.h's layout: per 128
    // elements, 64 bytes of low nibbles, then 32 of top bits).
    uint8_t q[256];
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blk + 64 * h;
      const uint8_t* qh = blk + 128 + 32 * h;
      for (int l = 0; l < 32; ++l) {
        q[128 * h + l] = uint8_t((ql[l] & 15) | ((qh[l] & 3) << 4));
        q[128 * h + l + 32] = uint8_t((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4));
        q[128 * h + l + 64] = uint8_t((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
        q[128 * h + l + 96] = uint8_t((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
      }
    }
    for (int j = 0; j < 8; ++j) {
      uint8_t* out = dst + (uint64_t(g) * uint64_t(blocks) + uint64_t(sb * 8 + j)) * 224;
      const uint8_t* e = q + 32 * j;
      std::memcpy(out + 2 * r, blk + 208, 2);  // d, as stored
      out[16 + r] = blk[192 + 2 * j];          // the int8 scales of the block's halves
      out[24 + r] = blk[192 + 2 * j + 1];
      put_nibbles(out + 32, r, e);
      for (int i = 0; i < 4; ++i) {
        uint8_t top_lo = 0, top_hi = 0;
        for (int c = 0; c < 4; ++c) {
          top_lo = uint8_t(top_lo | (e[4 * c + i] >> 4) << (2 * c));
          top_hi = uint8_t(top_hi | (e[16 + 4 * c + i] >> 4) << (2 * c));
        }
        out[160 + 4 * r + i] = top_lo;
        out[192 + 4 * r + i] = top_hi;
      }
    }
  });
}

// q4_0's and q8_0's copies: per group and block, the 8 rows' f16 scales, then each row's
// quants in 4-byte chunks (`block_bytes`: the format's 18 or 34 bytes per block).
// plus_128: the quants are stored plus 128 as unsigned bytes (q8_0 for the VNNI kernels:
// flipping a signed byte's top bit adds 128).
void fill_simple_x8(const Product& p, int64_t groups, uint64_t block_bytes, bool plus_128,
                    uint8_t* dst) {
  const int64_t blocks = p.k / 32;
  const int64_t chunks = int64_t(block_bytes - 2) / 4;
  const uint32_t flip = plus_128 ? 0x80808080u : 0;
  parallel_for(groups, 16, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g)
      for (int64_t b = 0; b < blocks; ++b) {
        uint8_t* out = dst + (uint64_t(g) * uint64_t(blocks) + uint64_t(b)) * 8 * block_bytes;
        for (int r = 0; r < 8; ++r) {
          const uint8_t* blk = p.w + uint64_t(8 * g + r) * p.w_rs + uint64_t(b) * block_bytes;
          std::memcpy(out + 2 * r, blk, 2);
          for (int64_t c = 0; c < chunks; ++c) {
            uint32_t four;
            std::memcpy(&four, blk + 2 + 4 * c, 4);
            four ^= flip;
            std::memcpy(out + 16 + 32 * c + 4 * r, &four, 4);
          }
        }
      }
  });
}

// q4_0, q8_0, q4_K, q5_K or q6_K weights as groups of 8 rows (the x8 layouts of
// cpu_quant_x8_kernels.inc), made once per weight and kept by cpu_weight_cache.h; null when
// there is no copy (other formats, rows not tracked, fewer than 8 rows,
// HAL_CPU_WEIGHT_COPIES=0, no memory for it).
constexpr uint32_t kLayoutInterleaved8 = 1;
constexpr uint32_t kLayoutInterleaved8Offset = 2;  // q8_0's quants plus 128
std::shared_ptr<const uint8_t> interleaved8_copy(const Product& p) {
  uint64_t group_block_bytes = 0, block_bytes = 0;  // per group and 32 elements; q4_0/q8_0's
  switch (p.w_t) {
    case DType::kQ4_0:
    case DType::kQ8_0:
      block_bytes = dtype_row_bytes(p.w_t, 32);  // 18, 34
      group_block_bytes = 8 * block_bytes;
      break;
    case DType::kQ4_K:
      group_block_bytes = 176;
      break;
    case DType::kQ5_K:
      group_block_bytes = 208;
      break;
    case DType::kQ6_K:
      group_block_bytes = 224;
      break;
    default:
      return nullptr;
  }
  const int64_t groups = p.n / 8, blocks = p.k / 32;
  if (groups == 0 || blocks == 0) return nullptr;
  const bool plus_128 = p.w_t == DType::kQ8_0 && kernels().signed_quant_offset;
  const WeightCopyKey key{p.w_t, p.n, p.k, p.w_rs,
                          plus_128 ? kLayoutInterleaved8Offset : kLayoutInterleaved8};
  const uint64_t original = uint64_t(p.n - 1) * p.w_rs + dtype_row_bytes(p.w_t, p.k);
  const uint64_t bytes = uint64_t(groups) * uint64_t(blocks) * group_block_bytes;
  return weight_cache_get(p.w, key, original, bytes, [&](uint8_t* dst) {
    if (p.w_t == DType::kQ4_K || p.w_t == DType::kQ5_K)
      fill_k_quant_x8(p, groups, dst);
    else if (p.w_t == DType::kQ6_K)
      fill_q6_kx8(p, groups, dst);
    else
      fill_simple_x8(p, groups, block_bytes, plus_128, dst);
  });
}

void run_product(const Product& p) {
  if (p.m == 0 || p.n == 0) return;
  const QuantKernels& kern = kernels();
  const bool fits = p.m <= INT_MAX && p.n <= INT_MAX && p.k <= INT_MAX && p.c_rs <= INT_MAX;
  const Path path = path_of(p.w_t, p.m);
  if (path == Path::kSgemm && fits) return run_product_sgemm(p);
  const bool tiles = path == Path::kInt8Panels;
  const int64_t blocks = p.k / 32;
  const int64_t asz = dtype_size(p.a_t);
  // A as dense f32, then int8 blocks.
  float* af = scratch_floats(Scratch::kOuter0, size_t(p.m * p.k));
  for (int64_t r = 0; r < p.m; ++r)
    load_f32(p.a + r * p.a_rs * asz, p.a_t, p.a_cs, p.k, af + r * p.k);
  QuantActs acts;
  acts.k = p.k;
  acts.blocks = blocks;
  acts.f = af;
  if (p.w_t != DType::kFP8E4M3Channel && path != Path::kF32Panels) {
    // One scratch block: q (m*k bytes), then d and ds (3 floats per block), then the
    // lanes (8 ints per block) when the format takes them.
    const int offset = kern.lane_offset(p.w_t);
    const size_t q_floats = size_t((p.m * p.k + 3) / 4);
    float* mem = scratch_floats(Scratch::kOuter1, q_floats + size_t(4 * p.m * blocks) +
                                                      (offset ? size_t(8 * p.m * blocks) : 0));
    int8_t* q = reinterpret_cast<int8_t*>(mem);
    float* d = mem + q_floats;
    float* ds = d + p.m * blocks;
    float* dsum = ds + 2 * p.m * blocks;
    int32_t* lanes = offset ? reinterpret_cast<int32_t*>(dsum + p.m * blocks) : nullptr;
    quantize_acts(af, p.m, p.k, q, d, ds, dsum, lanes, offset);
    acts.q = q;
    acts.d = d;
    acts.ds = ds;
    acts.dsum = dsum;
    acts.lanes = lanes;
  }
  // Results as f32 [m, n] (in C itself when C is f32 with unit column stride), then alpha,
  // bias and the output dtype over columns [j0, j1): the decode path runs this on each
  // part's own columns, inside the parallel loop; the others after it, over all of C.
  const bool in_place = p.c_t == DType::kF32 && p.c_cs == 1;
  const bool direct = in_place && p.alpha == 1.0f && !p.bias;
  float* res = in_place ? reinterpret_cast<float*>(p.c)
                        : scratch_floats(Scratch::kOuter2, size_t(p.m * p.n));
  const int64_t ldr = in_place ? p.c_rs : p.n;
  auto finish_columns = [&](int64_t j0, int64_t j1) {
    if (direct || j1 <= j0) return;
    for (int64_t r = 0; r < p.m; ++r) {
      float* row = res + r * ldr;
      if (p.alpha != 1.0f)
        for (int64_t j = j0; j < j1; ++j) row[j] *= p.alpha;
      if (p.bias)
        for (int64_t j = j0; j < j1; ++j) row[j] += p.bias[j];
      if (!in_place)
        store_f32(p.c + (r * p.c_rs + j0 * p.c_cs) * int64_t(dtype_size(p.c_t)), p.c_t, p.c_cs,
                  j1 - j0, row + j0);
    }
  };
  // The offset x each block's activation sum (q6_K: each half's), from the lanes, for the
  // kernels of the copies and panels (x8_gemv, tile_gemm): q4_0 8 x, q6_K 32 x, signed
  // quants with VNNI 128 x; null when the format takes none.
  auto lane_sums = [&](int per_block) -> int32_t* {
    if (!acts.lanes) return nullptr;
    const int lanes = 8 / per_block;
    int32_t* sums = reinterpret_cast<int32_t*>(
        scratch_floats(Scratch::kOuter3, size_t(p.m * blocks * per_block)));
    for (int64_t i = 0; i < p.m * blocks * per_block; ++i) {
      int32_t s = 0;
      for (int l = 0; l < lanes; ++l) s += acts.lanes[lanes * i + l];
      sums[i] = s;
    }
    return sums;
  };
  const float* lut = fp8_table();
  if (path == Path::kF32Panels) {
    f32_panel_products(p, af, res, ldr);
  } else if (tiles) {
    // Panels of 8 weight rows, dealt out to the cores in small runs (load balance; each
    // panel is unpacked once for all of A's rows).
    const int64_t panels = (p.n + 7) / 8;
    const int32_t* sums = lane_sums(1);
    parallel_for(panels, 1, [&](int64_t q0, int64_t q1) {
      uint8_t* panel = reinterpret_cast<uint8_t*>(
          scratch_floats(Scratch::kLeaf0, size_t(blocks * kern.panel_block_bytes / 4 + 1)));
      kern.tile_gemm(p.w_t, acts, sums, p.m, p.w, p.w_rs, q0, q1, p.n, res, ldr, panel);
    });
  } else {
    // One contiguous range of weight rows per task; several per core when the product is
    // large enough that load balance matters more than one stream per core.
    // The copy (interleaved8_copy says which formats have one) serves one row of A; with
    // several, the one-row kernels unpack a block once for 4 rows and q8_0's is faster
    // (BM_QuantDecode M=4, [3072, 768]: 13.2 GB/s against 10.7 from the copy), while q4_0's
    // copy stays faster there too (9.2 against 4.1).
    const std::shared_ptr<const uint8_t> x8 =
        p.w_t == DType::kQ4_0 || p.m == 1 ? interleaved8_copy(p) : std::shared_ptr<const uint8_t>();
    const int64_t units = x8 ? p.n / 8 : p.n;  // groups of 8 rows, or rows
    const int64_t work = p.m * p.n * p.k;
    const int64_t tasks = work >= (int64_t(1) << 24) ? std::min<int64_t>(units, 8 * thread_budget())
                                                     : thread_budget();
    int32_t* sums = x8 ? lane_sums(p.w_t == DType::kQ6_K ? 2 : 1) : nullptr;
    parallel_for_static(std::max<int64_t>(tasks, 1), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t u0 = units * t / tasks, u1 = units * (t + 1) / tasks;
        if (u1 <= u0) continue;
        if (x8 && p.w_t == DType::kQ4_0)
          kern.q4_0x8_gemv(x8.get(), acts, p.m, u0, u1, res, ldr, sums);
        else if (x8 && p.w_t == DType::kQ8_0)
          kern.q8_0x8_gemv(x8.get(), acts, p.m, u0, u1, res, ldr, sums);
        else if (x8 && p.w_t == DType::kQ4_K)
          kern.q4_kx8_gemv(x8.get(), acts, p.m, u0, u1, res, ldr);
        else if (x8 && p.w_t == DType::kQ5_K)
          kern.q5_kx8_gemv(x8.get(), acts, p.m, u0, u1, res, ldr);
        else if (x8)
          kern.q6_kx8_gemv(x8.get(), acts, p.m, u0, u1, res, ldr, sums);
        else
          kern.qgemm(p.w_t, acts, p.m, p.w, p.w_rs, u0, u1, res, ldr, lut);
      }
      const int64_t per_unit = x8 ? 8 : 1;
      finish_columns(per_unit * (units * t0 / tasks), per_unit * (units * t1 / tasks));
    });
    // Rows past the last whole group: the one-row kernel on the original bytes.
    if (x8 && units * 8 < p.n) {
      kern.qgemm(p.w_t, acts, p.m, p.w, p.w_rs, units * 8, p.n, res, ldr, lut);
      finish_columns(units * 8, p.n);
    }
    return;
  }
  finish_columns(0, p.n);
}

}  // namespace

std::string quant_kernel_isa() { return kernels().isa; }

bool quant_uses_panels(DType weights, int64_t rows) {
  const Path p = path_of(weights, rows);
  return p == Path::kF32Panels || p == Path::kSgemm;
}

// The gather copies a few rows per token: the reference's exact values, not the fused
// multiply-add of the panel code.
void dequantize_row_fast(DType t, const void* row, float* out, int64_t n) {
  reference::dequantize_row(t, row, out, n);
}

Status quant_matmul(const OpSpec& spec, const void* const* in, void* out) {
  const TensorDesc& ad = spec.inputs[0];
  const TensorDesc& bd = spec.inputs[1];
  const TensorDesc& od = spec.output;
  const OpAttributes& at = spec.attrs;
  const int r = od.shape.rank, ra = ad.shape.rank, rb = bd.shape.rank;
  const int nb = r - 2;
  if (od.numel() == 0) return ok_status();

  Product p;
  p.m = od.shape[r - 2];
  p.n = od.shape[r - 1];
  p.k = bd.shape[rb - 1];
  p.alpha = at.alpha;
  p.a_t = ad.dtype;
  p.a_rs = at.transpose_a ? ad.strides[ra - 1] : ad.strides[ra - 2];
  p.a_cs = at.transpose_a ? ad.strides[ra - 2] : ad.strides[ra - 1];
  p.w_t = bd.dtype;
  const uint64_t row_bytes = dtype_row_bytes(bd.dtype, p.k);
  p.w_rs = uint64_t(bd.strides[rb - 2] / p.k) * row_bytes;
  p.c_t = od.dtype;
  p.c_rs = od.strides[r - 2];
  p.c_cs = od.strides[r - 1];
  if (spec.num_inputs == 3) {
    float* buf = scratch_floats(Scratch::kOuter4, size_t(p.n));
    load_f32(in[2], spec.inputs[2].dtype, spec.inputs[2].strides[0], p.n, buf);
    p.bias = buf;
  }
  // Batch dims: A and C step by elements, B by whole rows; broadcast dims step 0.
  int64_t dims[kMaxRank], sa[kMaxRank], sb[kMaxRank], sc[kMaxRank];
  int64_t batches = 1;
  for (int d = 0; d < nb; ++d) {
    dims[d] = od.shape[d];
    batches *= dims[d];
    const int da = ra - 2 - nb + d, db = rb - 2 - nb + d;
    sa[d] = (da < 0 || ad.shape[da] == 1) ? 0 : ad.strides[da];
    sb[d] = (db < 0 || bd.shape[db] == 1) ? 0 : bd.strides[db];
    sc[d] = od.strides[d];
  }
  // B shared by every batch and A, C rows evenly spaced: one product over all rows.
  bool fold = true;
  int64_t rows = p.m;
  for (int d = nb - 1; d >= 0 && fold; --d) {
    if (dims[d] == 1) continue;
    if (sb[d] != 0 || sa[d] != p.a_rs * rows || sc[d] != p.c_rs * rows) fold = false;
    rows *= dims[d];
  }
  const int64_t asz = dtype_size(ad.dtype), csz = dtype_size(od.dtype);
  if (fold) {
    p.m = rows;
    batches = 1;
  }
  for (int64_t i = 0; i < batches; ++i) {
    Product bp = p;
    int64_t rem = i, oa = 0, ob = 0, oc = 0;
    for (int d = nb - 1; d >= 0 && batches > 1; --d) {
      const int64_t idx = rem % dims[d];
      rem /= dims[d];
      oa += idx * sa[d];
      ob += idx * sb[d];
      oc += idx * sc[d];
    }
    bp.a = static_cast<const char*>(in[0]) + oa * asz;
    bp.w = static_cast<const uint8_t*>(in[1]) + uint64_t(ob / p.k) * row_bytes;
    bp.c = static_cast<char*>(out) + oc * csz;
    run_product(bp);
  }
  return ok_status();
}

}  // namespace hal::cpu
