#include "cpu_blas.h"

#include <dlfcn.h>

#include <cstdlib>
#include <vector>

#include "cpu_threading.h"

#ifndef HAL_OPENBLAS_LIBRARY
#define HAL_OPENBLAS_LIBRARY ""
#endif

namespace hal::cpu {

namespace {

// CBLAS enum values (cblas.h): row-major and the transpose flags.
constexpr int kCblasRowMajor = 101;
constexpr int kCblasNoTrans = 111;
constexpr int kCblasTrans = 112;

BlasLibrary load() {
  BlasLibrary lib;
  std::vector<std::string> candidates = {"libopenblas.so.0"};
  if (std::string(HAL_OPENBLAS_LIBRARY).size() > 0) candidates.push_back(HAL_OPENBLAS_LIBRARY);
  candidates.push_back("libopenblas.so");

  void* handle = nullptr;
  for (const std::string& c : candidates) {
    handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (handle) {
      lib.path = c;
      lib.note = "OpenBLAS was already loaded by the process; its kernel choice is kept";
      break;
    }
  }
  if (!handle) {
    const char* user_core = std::getenv("OPENBLAS_CORETYPE");
    const std::string core = preferred_openblas_core();
    if (user_core && *user_core) {
      lib.note = std::string("kernels chosen by OPENBLAS_CORETYPE=") + user_core;
    } else if (!core.empty()) {
      // Read by OpenBLAS's initialiser when dlopen() runs it; see the header for why.
      setenv("OPENBLAS_CORETYPE", core.c_str(), 0);
      lib.note =
          "kernels chosen from CPU features (OPENBLAS_CORETYPE=" + core + " set before loading)";
    } else {
      lib.note = "kernels chosen by OpenBLAS's own CPU detection";
    }
    std::string errors;
    for (const std::string& c : candidates) {
      handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle) {
        lib.path = c;
        break;
      }
      const char* e = dlerror();
      errors += (errors.empty() ? "" : "; ") + std::string(e ? e : c);
    }
    if (!handle) {
      lib.note = "OpenBLAS could not be loaded (" + errors + "); matmul uses the backend's kernels";
      return lib;
    }
  }
  lib.cblas_sgemm = reinterpret_cast<decltype(lib.cblas_sgemm)>(dlsym(handle, "cblas_sgemm"));
  lib.set_num_threads =
      reinterpret_cast<decltype(lib.set_num_threads)>(dlsym(handle, "openblas_set_num_threads"));
  auto get_config = reinterpret_cast<const char* (*)()>(dlsym(handle, "openblas_get_config"));
  auto get_core = reinterpret_cast<const char* (*)()>(dlsym(handle, "openblas_get_corename"));
  if (!lib.cblas_sgemm) {
    lib.note = lib.path + " has no cblas_sgemm; matmul uses the backend's kernels";
    return lib;
  }
  if (get_config) lib.config = get_config();
  if (get_core) lib.core = get_core();
  lib.threads = thread_budget();
  if (lib.set_num_threads) lib.set_num_threads(lib.threads);
  lib.available = true;
  return lib;
}

}  // namespace

std::string preferred_openblas_core() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return __builtin_cpu_is("amd") ? "Zen" : "Haswell";
  if (__builtin_cpu_supports("avx")) return "Sandybridge";
  return "";
}

void BlasLibrary::sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                        const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                        float* c, int64_t ldc) const {
  cblas_sgemm(kCblasRowMajor, trans_a ? kCblasTrans : kCblasNoTrans,
              trans_b ? kCblasTrans : kCblasNoTrans, int(m), int(n), int(k), alpha, a, int(lda), b,
              int(ldb), beta, c, int(ldc));
}

const BlasLibrary& blas() {
  static const BlasLibrary lib = load();
  return lib;
}

}  // namespace hal::cpu
