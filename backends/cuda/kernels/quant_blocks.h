// backends/cuda/kernels/quant_blocks.h: decoding the quantized weight formats of hal/op.h
// (one 32-element block at a time) and the per-lane part of the decode matrix-vector
// product, written once for the GPU kernels (cuda_quant.cu) and the host: compiled by nvcc
// as __host__ __device__ code, and by the host compiler for tests/cuda/quant_blocks_test.cc,
// which checks them against hal/reference on a machine without a GPU.
//
// Values: each element is computed in f32 with separately rounded multiplies and adds in
// hal/op.h's order (no fused multiply-add: quant_mul/quant_add round each step), so the
// blocks decode to exactly hal::reference's values; the dot products accumulate in f32.
//
// Formats are hal::DType values (10 q8_0 .. 22 fp8e4m3_channel); rows are
// row_bytes(fmt, k) bytes long.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define HAL_QB __host__ __device__ __forceinline__
#else
#define HAL_QB inline
#endif

namespace hal::cuda::quant {

enum Format : int32_t {
  kQ8_0 = 10,
  kQ4_0 = 11,
  kQ4_1 = 12,
  kQ5_0 = 13,
  kQ5_1 = 14,
  kQ4_K = 15,
  kQ5_K = 16,
  kQ6_K = 17,
  kI8Channel = 18,
  kI4G32 = 19,
  kI4G64 = 20,
  kI4G128 = 21,
  kFP8E4M3Channel = 22,
};

HAL_QB bool is_format(int32_t f) { return f >= kQ8_0 && f <= kFP8E4M3Channel; }

// Elements per block, bytes per block, bytes before the first block (hal/dtype.h).
HAL_QB int32_t block_elems(int32_t f) {
  return (f == kQ4_K || f == kQ5_K || f == kQ6_K) ? 256 : f == kI4G64 ? 64 : f == kI4G128 ? 128 : 32;
}
HAL_QB int32_t block_bytes(int32_t f) {
  switch (f) {
    case kQ8_0: return 34;
    case kQ4_0: return 18;
    case kQ4_1: return 20;
    case kQ5_0: return 22;
    case kQ5_1: return 24;
    case kQ4_K: return 144;
    case kQ5_K: return 176;
    case kQ6_K: return 210;
    case kI4G32: return 20;
    case kI4G64: return 36;
    case kI4G128: return 68;
    default: return 32;  // the per-channel formats: 32 bytes per 32 elements
  }
}
HAL_QB int32_t row_header(int32_t f) { return (f == kI8Channel || f == kFP8E4M3Channel) ? 4 : 0; }
HAL_QB uint64_t row_bytes(int32_t f, int64_t k) {
  return uint64_t(row_header(f)) + uint64_t(k / block_elems(f)) * uint64_t(block_bytes(f));
}

// Rounded-once f32 arithmetic (no contraction into FMA).
HAL_QB float quant_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  volatile float r = a * b;
  return r;
#endif
}
HAL_QB float quant_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  volatile float r = a + b;
  return r;
#endif
}

HAL_QB float bits_to_float(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

HAL_QB float half_bits_to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(h));
#else
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return bits_to_float(bits);
#endif
}

HAL_QB float f16_at(const uint8_t* p) { return half_bits_to_float(uint16_t(p[0] | (p[1] << 8))); }
HAL_QB float f32_at(const uint8_t* p) {
  uint32_t u = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
  return bits_to_float(u);
}

// fp8 e4m3fn (hal::reference::fp8_e4m3_to_float): exact.
HAL_QB float fp8_e4m3(uint8_t b) {
  const int exp = (b >> 3) & 15, mant = b & 7;
  float v;
  if (exp == 15 && mant == 7) {
    const uint8_t nan[4] = {0, 0, 0xc0, 0x7f};  // quiet NaN
    v = f32_at(nan);
  } else if (exp == 0) {
    v = float(mant) * (1.0f / 512.0f);
  } else {
    // (1 + mant/8) * 2^(exp-7): exact in f32.
    float p = 1.0f;
    for (int e = 7; e < exp; ++e) p *= 2.0f;
    for (int e = exp; e < 7; ++e) p *= 0.5f;
    v = (1.0f + float(mant) * 0.125f) * p;
  }
  return (b & 0x80) ? -v : v;
}

// The six-bit scale and min of q4_K/q5_K sub-block j.
HAL_QB void k_scale_min(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// The 32 values of 32-element block `b` (0-based along the row) of a row of format `f`.
HAL_QB void dequant_block32(int32_t f, const uint8_t* row, int64_t b, float* out) {
  if (f == kI8Channel || f == kFP8E4M3Channel) {
    const float scale = f32_at(row);
    const uint8_t* q = row + 4 + 32 * b;
    for (int i = 0; i < 32; ++i)
      out[i] = quant_mul(scale, f == kI8Channel ? float(int8_t(q[i])) : fp8_e4m3(q[i]));
    return;
  }
  const int32_t be = block_elems(f);
  const int64_t super = b * 32 / be;
  const int sub = int(b * 32 % be) / 32;
  const uint8_t* p = row + super * block_bytes(f);
  switch (f) {
    case kQ8_0: {
      const float d = f16_at(p);
      for (int i = 0; i < 32; ++i) out[i] = quant_mul(float(int8_t(p[2 + i])), d);
      return;
    }
    case kQ4_0:
    case kQ4_1:
    case kQ5_0:
    case kQ5_1: {
      const bool min = f == kQ4_1 || f == kQ5_1, five = f == kQ5_0 || f == kQ5_1;
      const float d = f16_at(p), m = min ? f16_at(p + 2) : 0.0f;
      const uint8_t* hb = p + (min ? 4 : 2);
      const uint32_t qh = five ? uint32_t(hb[0]) | uint32_t(hb[1]) << 8 | uint32_t(hb[2]) << 16 | uint32_t(hb[3]) << 24 : 0;
      const uint8_t* qs = p + (min ? 4 : 2) + (five ? 4 : 0);
      for (int j = 0; j < 16; ++j) {
        int lo = qs[j] & 15, hi = qs[j] >> 4;
        if (five) {
          lo |= int((qh >> j) & 1) << 4;
          hi |= int((qh >> (j + 16)) & 1) << 4;
        }
        if (min) {
          out[j] = quant_add(quant_mul(float(lo), d), m);
          out[j + 16] = quant_add(quant_mul(float(hi), d), m);
        } else {
          const int off = five ? 16 : 8;
          out[j] = quant_mul(float(lo - off), d);
          out[j + 16] = quant_mul(float(hi - off), d);
        }
      }
      return;
    }
    case kQ4_K:
    case kQ5_K: {
      const bool five = f == kQ5_K;
      const float d = f16_at(p), dmin = f16_at(p + 2);
      int sc, m;
      k_scale_min(p + 4, sub, &sc, &m);
      const float d1 = quant_mul(d, float(sc)), m1 = quant_mul(dmin, float(m));
      const int pair = sub / 2, high = sub % 2;
      const uint8_t* qs = p + (five ? 48 : 16) + 32 * pair;
      for (int l = 0; l < 32; ++l) {
        int q = high ? qs[l] >> 4 : qs[l] & 15;
        if (five) q |= ((p[16 + l] >> (2 * pair + high)) & 1) << 4;
        out[l] = quant_add(quant_mul(d1, float(q)), -m1);
      }
      return;
    }
    case kQ6_K: {
      const float d = f16_at(p + 208);
      const int h = sub / 4, c = sub % 4;
      const uint8_t* ql = p + 64 * h;
      const uint8_t* qh = p + 128 + 32 * h;
      const int8_t* sc = reinterpret_cast<const int8_t*>(p + 192) + 8 * h;
      for (int l = 0; l < 32; ++l) {
        const uint8_t lo = (c == 0 || c == 2) ? ql[l] : ql[l + 32];
        const int q = ((c < 2) ? (lo & 15) : (lo >> 4)) | (((qh[l] >> (2 * c)) & 3) << 4);
        const int e = 32 * c + l;
        out[l] = quant_mul(quant_mul(d, float(sc[e / 16])), float(q - 32));
      }
      return;
    }
    case kI4G32:
    case kI4G64:
    case kI4G128: {
      const float s = f16_at(p);
      const int zero = p[2];
      const uint8_t* q = p + 4 + 16 * sub;
      for (int i = 0; i < 16; ++i) {
        out[2 * i] = quant_mul(s, float((q[i] & 15) - zero));
        out[2 * i + 1] = quant_mul(s, float((q[i] >> 4) - zero));
      }
      return;
    }
    default:
      for (int i = 0; i < 32; ++i) out[i] = 0.0f;
      return;
  }
}

// Lane `lane` of `lanes`'s share of rows . a: blocks lane, lane + lanes, ... of a row of
// `k` elements against `m_rows` activation rows (f32, row stride lda), added to acc[0..m).
template <int kMaxRows>
HAL_QB void gemv_lane(int32_t f, const uint8_t* row, int64_t k, const float* a, int64_t lda, int m_rows,
                      int lane, int lanes, float* acc) {
  float w[32];
  for (int64_t b = lane; b < k / 32; b += lanes) {
    dequant_block32(f, row, b, w);
    for (int m = 0; m < kMaxRows && m < m_rows; ++m) {
      const float* x = a + m * lda + 32 * b;
      float s = 0.0f;
      for (int i = 0; i < 32; ++i) s += w[i] * x[i];
      acc[m] += s;
    }
  }
}

}  // namespace hal::cuda::quant

#undef HAL_QB
