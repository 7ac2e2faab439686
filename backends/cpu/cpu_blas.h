// backends/cpu/cpu_blas.h: OpenBLAS, loaded at run time with the right kernels and the
// backend's thread budget.
//
// Why loaded with dlopen instead of linked: OpenBLAS picks its kernels once, when the
// library initialises, from a CPUID table. Releases older than the CPU (Debian 12 ships
// 0.3.21) do not know newer cores and fall back to SSE3 "Prescott" kernels, 5-7x slower
// (measured 37 vs 250 GFLOP/s on a Xeon of family 6 model 207). The backend therefore
// loads the library itself and, when the user has not chosen with OPENBLAS_CORETYPE,
// first names the kernel family the CPU's features support (Cooperlake/SkylakeX for
// AVX-512, Haswell/Zen for AVX2+FMA, Sandybridge for AVX). For f32 GEMM these are the
// same kernels OpenBLAS would pick for a core it knows.
//
// Contract
// - blas() loads once. When OpenBLAS is already in the process (the host linked it),
//   that instance is used as it is, and `note` says so.
// - OpenBLAS runs with thread_budget() threads (process-wide: OpenBLAS has one pool).
// - When no OpenBLAS can be loaded, available is false and matmul uses the backend's
//   own kernels (correct, slower); `note` says why.
//
// Threading: blas() is thread-safe; OpenBLAS calls may come from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace hal::cpu {

struct BlasLibrary {
  bool available = false;
  std::string path;    // the library file loaded
  std::string config;  // openblas_get_config()
  std::string core;    // openblas_get_corename(): the kernel family in use
  std::string note;    // how the core was chosen, or why BLAS is unavailable
  int threads = 0;

  // Row-major single-precision GEMM: C = alpha * op(A) @ op(B) + beta * C.
  void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
             int64_t ldc) const;

  // Function pointers into the library (set when available).
  void (*cblas_sgemm)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                      float, float*, int) = nullptr;
  void (*set_num_threads)(int) = nullptr;
};

const BlasLibrary& blas();

// The OpenBLAS core name the CPU's features call for ("Cooperlake", "SkylakeX", "Haswell",
// "Zen", "Sandybridge"), or "" when none applies.
std::string preferred_openblas_core();

}  // namespace hal::cpu
