// backends/cuda/cuda_blaslt.h: cuBLASLt, opened with dlopen when the first GPU is opened.
//
// Why not link it: libcublasLt is a 540 MB library whose loading costs ~70 ms. Every
// process that creates a hal::Platform loads every plugin, so linking it would tax each
// test process of the suite on machines without a GPU, where it is never used. The types
// and prototypes come from the toolkit's <cublasLt.h>; only the symbols are resolved here.
//
// Contract: load() is idempotent and thread-safe; after it succeeded every pointer is set
// and stays valid for the process lifetime (the library is never closed: cuBLASLt keeps
// per-process state that must not be unmapped while handles may exist).
#pragma once

#include <cublasLt.h>

#include <string>

#include "hal/status.h"

namespace hal::cuda {

struct BlasLt {
  decltype(&cublasLtCreate) create = nullptr;
  decltype(&cublasLtDestroy) destroy = nullptr;
  decltype(&cublasLtGetVersion) get_version = nullptr;
  decltype(&cublasLtMatmulDescCreate) desc_create = nullptr;
  decltype(&cublasLtMatmulDescDestroy) desc_destroy = nullptr;
  decltype(&cublasLtMatmulDescSetAttribute) desc_set = nullptr;
  decltype(&cublasLtMatrixLayoutCreate) layout_create = nullptr;
  decltype(&cublasLtMatrixLayoutDestroy) layout_destroy = nullptr;
  decltype(&cublasLtMatrixLayoutSetAttribute) layout_set = nullptr;
  decltype(&cublasLtMatmulPreferenceCreate) pref_create = nullptr;
  decltype(&cublasLtMatmulPreferenceDestroy) pref_destroy = nullptr;
  decltype(&cublasLtMatmulPreferenceSetAttribute) pref_set = nullptr;
  decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
  decltype(&cublasLtMatmul) matmul = nullptr;
  std::string library;  // the path or soname that was opened
};

// The process-wide table, loading the library on first use. Fails with UNAVAILABLE naming
// what was tried when the library or a symbol is missing.
Result<const BlasLt*> load_blaslt();

// "CUBLAS_STATUS_NOT_SUPPORTED (15)".
std::string blas_status_name(cublasStatus_t status);

}  // namespace hal::cuda
