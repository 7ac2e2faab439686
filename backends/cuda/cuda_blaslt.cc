// Opens cuBLASLt at run time (cuda_blaslt.h says why).
#include "cuda_blaslt.h"

#include <dlfcn.h>

#include <mutex>

namespace hal::cuda {
namespace {

template <typename Fn>
bool resolve(void* lib, const char* name, Fn* out, std::string* missing) {
  *out = reinterpret_cast<Fn>(::dlsym(lib, name));
  if (!*out) *missing += std::string(missing->empty() ? "" : ", ") + name;
  return *out != nullptr;
}

Result<const BlasLt*> open_blaslt() {
  static BlasLt table;
  std::string tried;
  void* lib = nullptr;
  for (const char* candidate : {HAL_CUBLASLT_SONAME, HAL_CUBLASLT_LIBRARY}) {
    if (!candidate[0]) continue;
    lib = ::dlopen(candidate, RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      table.library = candidate;
      break;
    }
    const char* why = ::dlerror();
    tried += std::string(tried.empty() ? "" : "; ") + candidate + ": " + (why ? why : "not found");
  }
  if (!lib) return unavailable("cannot load cuBLASLt (" + tried + ")");
  std::string missing;
  resolve(lib, "cublasLtCreate", &table.create, &missing);
  resolve(lib, "cublasLtDestroy", &table.destroy, &missing);
  resolve(lib, "cublasLtGetVersion", &table.get_version, &missing);
  resolve(lib, "cublasLtMatmulDescCreate", &table.desc_create, &missing);
  resolve(lib, "cublasLtMatmulDescDestroy", &table.desc_destroy, &missing);
  resolve(lib, "cublasLtMatmulDescSetAttribute", &table.desc_set, &missing);
  resolve(lib, "cublasLtMatrixLayoutCreate", &table.layout_create, &missing);
  resolve(lib, "cublasLtMatrixLayoutDestroy", &table.layout_destroy, &missing);
  resolve(lib, "cublasLtMatrixLayoutSetAttribute", &table.layout_set, &missing);
  resolve(lib, "cublasLtMatmulPreferenceCreate", &table.pref_create, &missing);
  resolve(lib, "cublasLtMatmulPreferenceDestroy", &table.pref_destroy, &missing);
  resolve(lib, "cublasLtMatmulPreferenceSetAttribute", &table.pref_set, &missing);
  resolve(lib, "cublasLtMatmulAlgoGetHeuristic", &table.heuristic, &missing);
  resolve(lib, "cublasLtMatmul", &table.matmul, &missing);
  if (!missing.empty())
    return unavailable(table.library + " lacks " + missing +
                       " (a cuBLASLt older than the headers?)");
  return static_cast<const BlasLt*>(&table);
}

}  // namespace

Result<const BlasLt*> load_blaslt() {
  static std::once_flag once;
  static Result<const BlasLt*> loaded = unavailable("not loaded");
  std::call_once(once, [] { loaded = open_blaslt(); });
  return loaded;
}

std::string blas_status_name(cublasStatus_t s) {
  const char* name = "unknown cuBLAS status";
  switch (s) {
    case CUBLAS_STATUS_SUCCESS:
      name = "CUBLAS_STATUS_SUCCESS";
      break;
    case CUBLAS_STATUS_NOT_INITIALIZED:
      name = "CUBLAS_STATUS_NOT_INITIALIZED";
      break;
    case CUBLAS_STATUS_ALLOC_FAILED:
      name = "CUBLAS_STATUS_ALLOC_FAILED";
      break;
    case CUBLAS_STATUS_INVALID_VALUE:
      name = "CUBLAS_STATUS_INVALID_VALUE";
      break;
    case CUBLAS_STATUS_ARCH_MISMATCH:
      name = "CUBLAS_STATUS_ARCH_MISMATCH";
      break;
    case CUBLAS_STATUS_MAPPING_ERROR:
      name = "CUBLAS_STATUS_MAPPING_ERROR";
      break;
    case CUBLAS_STATUS_EXECUTION_FAILED:
      name = "CUBLAS_STATUS_EXECUTION_FAILED";
      break;
    case CUBLAS_STATUS_INTERNAL_ERROR:
      name = "CUBLAS_STATUS_INTERNAL_ERROR";
      break;
    case CUBLAS_STATUS_NOT_SUPPORTED:
      name = "CUBLAS_STATUS_NOT_SUPPORTED";
      break;
    case CUBLAS_STATUS_LICENSE_ERROR:
      name = "CUBLAS_STATUS_LICENSE_ERROR";
      break;
    default:
      break;
  }
  return std::string(name) + " (" + std::to_string(int(s)) + ")";
}

}  // namespace hal::cuda
