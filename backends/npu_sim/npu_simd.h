// backends/npu_sim/npu_simd.h: the few vector loops the simulator's kernels share,
// written with GCC vector extensions so they vectorise without -ffast-math (eight
// fp32 partial sums, combined at the end, as a vector unit's lanes would).
//
// Hot functions are compiled twice with NPU_SIM_MULTIVERSION (baseline x86-64 and
// x86-64-v3 = AVX2+FMA); the loader picks the one the CPU supports (ifunc). The helpers
// here are always_inline so they take the ISA of the function they land in.
//
// Threading: pure inline functions.
#pragma once

#include <cstdint>
#include <cstring>

// Sanitizer runtimes break ifunc resolvers: sanitized builds use the baseline only.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(HAL_NPU_SIM_NO_MULTIVERSION)
#define NPU_SIM_MULTIVERSION __attribute__((target_clones("default", "arch=x86-64-v3")))
#else
#define NPU_SIM_MULTIVERSION
#endif
#define NPU_SIM_INLINE [[gnu::always_inline]] inline

namespace hal::npu_sim {

typedef float v8f __attribute__((vector_size(32)));

NPU_SIM_INLINE v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
NPU_SIM_INLINE void store8(float* p, v8f v) { std::memcpy(p, &v, sizeof(v)); }
NPU_SIM_INLINE float hsum8(v8f v) {
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
}

NPU_SIM_INLINE float dot(const float* a, const float* b, int64_t n) {
  v8f acc0 = {}, acc1 = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 += load8(a + i) * load8(b + i);
    acc1 += load8(a + i + 8) * load8(b + i + 8);
  }
  for (; i + 8 <= n; i += 8) acc0 += load8(a + i) * load8(b + i);
  float s = hsum8(acc0 + acc1);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// y += a * x
NPU_SIM_INLINE void axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store8(y + i, load8(y + i) + a * load8(x + i));
  for (; i < n; ++i) y[i] += a * x[i];
}

NPU_SIM_INLINE float sum(const float* x, int64_t n) {
  v8f acc = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc += load8(x + i);
  float s = hsum8(acc);
  for (; i < n; ++i) s += x[i];
  return s;
}

}  // namespace hal::npu_sim
