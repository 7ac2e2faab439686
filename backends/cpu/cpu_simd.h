// backends/cpu/cpu_simd.h: portable SIMD building blocks for the CPU kernels.
//
// Kernels are written with GCC vector extensions (16 floats per vector) and compiled
// several times with HAL_CPU_MULTIVERSION (baseline x86-64, x86-64-v3 = AVX2+FMA+F16C,
// x86-64-v4 = AVX-512); the loader picks the best version for the running CPU (ifunc).
// One source therefore runs on any x86-64 machine and uses AVX-512 where it exists.
// Helpers here are always_inline so they take the ISA of the kernel they land in.
//
// Numerics: exp/erf/tanh are branch-free polynomial approximations (relative error a few
// float ulps; erf absolute error < 2e-7), so loops vectorise. f16/bf16 conversions round
// to nearest even and keep NaN/Inf like hal/dtype.h.
//
// Threading: pure functions.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "hal/dtype.h"

#if defined(__x86_64__) && !defined(HAL_CPU_NO_MULTIVERSION)
#define HAL_CPU_MULTIVERSION \
  __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define HAL_CPU_MULTIVERSION
#endif
#define HAL_CPU_INLINE [[gnu::always_inline]] inline

namespace hal::cpu {

inline constexpr int kLanes = 16;
typedef float v16f __attribute__((vector_size(64)));
typedef float v16f_u __attribute__((vector_size(64), aligned(4)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef uint32_t v16u __attribute__((vector_size(64)));
typedef uint16_t v16h_bits_u __attribute__((vector_size(32), aligned(2)));

// 8-float vectors: comparisons and selects on them stay whole instructions on AVX2
// (GCC lowers a v16f comparison to scalar ones there), so branch-free math runs on these.
typedef float v8f __attribute__((vector_size(32)));
typedef float v8f_u __attribute__((vector_size(32), aligned(4)));
typedef int32_t v8i __attribute__((vector_size(32)));
HAL_CPU_INLINE v8f load8(const float* p) { return *reinterpret_cast<const v8f_u*>(p); }
HAL_CPU_INLINE void store8(float* p, v8f v) { *reinterpret_cast<v8f_u*>(p) = v; }

HAL_CPU_INLINE v16f load16(const float* p) { return *reinterpret_cast<const v16f_u*>(p); }
HAL_CPU_INLINE void store16(float* p, v16f v) { *reinterpret_cast<v16f_u*>(p) = v; }
HAL_CPU_INLINE v16f splat(float x) { return v16f{} + x; }

// ---- a run-time row count as a template argument ----------------------------------------
//
// with_rows<Max>(rows, fn) calls fn(std::integral_constant<int, R>{}) with R = rows clamped
// to [1, Max], so a kernel whose row count is a template argument (its accumulators held in
// registers) runs for a count known only at run time. Always inlined, so `fn` (a lambda
// written inside a kernel's target region) keeps that region's instruction set. Not for
// HAL_CPU_MULTIVERSION (target_clones) functions: a lambda there is compiled once, for the
// baseline, so their switches (cpu_attention.cc) stay written out.
template <int R, int Max, class Fn>
HAL_CPU_INLINE void with_rows_from(int rows, Fn& fn) {
  if constexpr (R < Max) {
    if (rows <= R) return fn(std::integral_constant<int, R>{});
    return with_rows_from<R + 1, Max>(rows, fn);
  } else {
    return fn(std::integral_constant<int, Max>{});
  }
}
template <int Max, class Fn>
HAL_CPU_INLINE void with_rows(int rows, Fn&& fn) {
  static_assert(Max >= 1);
  with_rows_from<1, Max>(rows, fn);
}

// f16 -> f32 with integer and float ops only (GCC 12 turns _Float16 vector conversions
// into 16 scalar ones). Exact: normals and subnormals are rebased by one multiply by
// 2^112, Inf/NaN keep their payload.
HAL_CPU_INLINE v16f load16_f16(const uint16_t* p) {
  const v16u h = __builtin_convertvector(*reinterpret_cast<const v16h_bits_u*>(p), v16u);
  const v16u em = h & 0x7fffu;
  const v16u scaled = reinterpret_cast<v16u>(reinterpret_cast<v16f>(em << 13) * 0x1p112f);
  const v16u bits = em >= 0x7c00u ? ((em << 13) | 0x7f800000u) : scaled;
  return reinterpret_cast<v16f>(bits | ((h & 0x8000u) << 16));
}
HAL_CPU_INLINE v16f load16_bf16(const uint16_t* p) {
  const v16u wide = __builtin_convertvector(*reinterpret_cast<const v16h_bits_u*>(p), v16u);
  return reinterpret_cast<v16f>(wide << 16);
}
HAL_CPU_INLINE float hsum(v16f v) {
  float s = 0;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}
HAL_CPU_INLINE float hmax(v16f v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

// The same conversion for one element, written so loops over it vectorise.
HAL_CPU_INLINE float half_to_float(uint16_t h) {
  const uint32_t em = h & 0x7fffu;
  const uint32_t scaled = std::bit_cast<uint32_t>(std::bit_cast<float>(em << 13) * 0x1p112f);
  const uint32_t bits = em >= 0x7c00u ? ((em << 13) | 0x7f800000u) : scaled;
  return std::bit_cast<float>(bits | (uint32_t(h & 0x8000u) << 16));
}

// f32 -> f16, round to nearest even, branch-free (so loops vectorise); the same results
// as hal::float_to_f16: overflow to Inf, subnormals rounded by a float add of 0.5
// (which aligns the f16 subnormal ulp with the f32 one), NaN -> quiet NaN 0x7e00.
HAL_CPU_INLINE uint16_t float_to_half(float x) {
  uint32_t f = std::bit_cast<uint32_t>(x);
  const uint32_t sign = f & 0x80000000u;
  f ^= sign;
  const uint32_t special = f > 0x7f800000u ? 0x7e00u : 0x7c00u;
  const uint32_t sub = std::bit_cast<uint32_t>(std::bit_cast<float>(f) + 0.5f) - 0x3f000000u;
  const uint32_t norm = (f + 0xc8000fffu + ((f >> 13) & 1u)) >> 13;  // rebias by (15 - 127) << 23
  const uint32_t o = f >= 0x47800000u ? special : (f < 0x38800000u ? sub : norm);
  return uint16_t(o | (sign >> 16));
}

// Loads 16 consecutive elements of a float tensor of dtype `t` as f32.
HAL_CPU_INLINE v16f load16_as_f32(const void* p, DType t) {
  if (t == DType::kF16) return load16_f16(static_cast<const uint16_t*>(p));
  if (t == DType::kBF16) return load16_bf16(static_cast<const uint16_t*>(p));
  return load16(static_cast<const float*>(p));
}

// ---- math on one float or 16 at once (branch-free) ------------------------------------
//
// Each function is a template over F = float or v8f (GCC vector extensions take the same
// operators, scalar operands and ?: selects), so the elementwise loops call the v8f form
// explicitly (GCC does not vectorise the scalar form's selects by itself) and the scalar
// form gives the same values for tails and single elements.

HAL_CPU_INLINE int32_t to_i32(float x) { return int32_t(x); }
HAL_CPU_INLINE v8i to_i32(v8f x) { return __builtin_convertvector(x, v8i); }
HAL_CPU_INLINE float f32_from_bits(int32_t b) { return std::bit_cast<float>(b); }
HAL_CPU_INLINE v8f f32_from_bits(v8i b) { return reinterpret_cast<v8f>(b); }

// e^x: 0 below -87.5 (true value < 1e-38), +inf above 88.72, NaN stays NaN.
template <class F>
HAL_CPU_INLINE F fast_exp(F x) {
  const F xc = x < -87.5f ? -87.5f : (x > 88.72f ? 88.72f : x);
  const F kf = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x/ln2)
  const F r = (xc - kf * 0.693145751953125f) - kf * 1.428606765330187e-06f;
  F p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = (p * r) * r + r + 1.0f;
  // 2^k in two factors so k in [-127, 128] never leaves the normal exponent range
  // (k1 + 127 and k - k1 + 127 lie in [63, 192], so the shifts stay positive).
  const auto k = to_i32(kf);
  const auto k1 = k >> 1;
  const F s1 = f32_from_bits((k1 + 127) << 23);
  const F s2 = f32_from_bits((k - k1 + 127) << 23);
  F y = (p * s1) * s2;
  y = x < -87.5f ? 0.0f : y;
  y = x > 88.72f ? __builtin_inff() : y;
  return x != x ? x : y;
}

// erfc(|x|) * (sign handled by caller): Abramowitz & Stegun 7.1.26 form, which keeps
// relative accuracy in the tail because it is a polynomial times exp(-x^2).
template <class F>
HAL_CPU_INLINE F erfc_abs(F ax) {
  const F t = 1.0f / (ax * 0.3275911f + 1.0f);
  F p = t * 1.061405429f - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  return p * t * fast_exp<F>(-ax * ax);
}

// Phi-style gelu: 0.5 x (1 + erf(x / sqrt 2)).
template <class F>
HAL_CPU_INLINE F gelu_erf(F x) {
  const F ax = (x < 0 ? -x : x) * 0.70710678118654752f;
  const F c = erfc_abs<F>(ax);  // erfc(|x|/sqrt2)
  return x < 0 ? 0.5f * x * c : x - 0.5f * x * c;
}

// 0.5 x (1 + tanh(u)) written as x * sigmoid(2u) = x / (1 + e^(-2u)): one exp and one
// division, and no cancellation where tanh(u) nears -1 (the earlier tanh form lost 13% of
// the value at x = -4.77; this one stays within 2e-6 relative of the f64 value wherever
// that value exceeds 1e-6 in size), and ~30% fewer cycles per element.
template <class F>
HAL_CPU_INLINE F gelu_tanh(F x) {
  const F u = 0.79788456080286536f * (x + 0.044715f * x * x * x);
  return x / (1.0f + fast_exp<F>(-2.0f * u));
}

template <class F>
HAL_CPU_INLINE F silu(F x) {
  return x / (1.0f + fast_exp<F>(-x));
}

// ---- reductions over f32 rows (16 lanes x 2 accumulators, scalar tail) ---------------

HAL_CPU_INLINE float row_sum(const float* x, int64_t n) {
  v16f a0{}, a1{};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 += load16(x + i);
    a1 += load16(x + i + 16);
  }
  for (; i + 16 <= n; i += 16) a0 += load16(x + i);
  float s = hsum(a0 + a1);
  for (; i < n; ++i) s += x[i];
  return s;
}

// sum((x - c)^2)
HAL_CPU_INLINE float row_sum_sq_diff(const float* x, int64_t n, float c) {
  const v16f vc = splat(c);
  v16f a0{}, a1{};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const v16f d0 = load16(x + i) - vc, d1 = load16(x + i + 16) - vc;
    a0 += d0 * d0;
    a1 += d1 * d1;
  }
  for (; i + 16 <= n; i += 16) {
    const v16f d = load16(x + i) - vc;
    a0 += d * d;
  }
  float s = hsum(a0 + a1);
  for (; i < n; ++i) s += (x[i] - c) * (x[i] - c);
  return s;
}

// Largest element ignoring NaN; -inf when none.
HAL_CPU_INLINE float row_max(const float* x, int64_t n) {
  v16f m = splat(-__builtin_inff());
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const v16f v = load16(x + i);
    m = v > m ? v : m;
  }
  float r = hmax(m);
  for (; i < n; ++i) r = x[i] > r ? x[i] : r;
  return r;
}

// ---- row conversions (contiguous or strided, any float or integer dtype) -------------

// dst[i] = element i*stride of src (dtype t) as f32, i < n.
void load_f32(const void* src, DType t, int64_t stride, int64_t n, float* dst);
// element i*stride of dst (dtype t) = src[i] rounded to t (f16/bf16 nearest even; integers
// truncated toward zero and saturated as hal::reference does), i < n.
void store_f32(void* dst, DType t, int64_t stride, int64_t n, const float* src);

}  // namespace hal::cpu
