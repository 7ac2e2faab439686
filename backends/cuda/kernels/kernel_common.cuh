// backends/cuda/kernels/kernel_common.cuh: device helpers the CUDA kernels share: element
// loads and stores by dtype code (rounding as hal/dtype.h and hal::reference do), the
// error-slot protocol of cuda_kernels.h, warp reductions, and launch sizing.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_kernels.h"

namespace hal::cuda::kernels {

__device__ __forceinline__ float load_f(const void* p, int32_t dtype, int64_t off) {
  switch (dtype) {
    case kKF32: return static_cast<const float*>(p)[off];
    case kKF16: return __half2float(static_cast<const __half*>(p)[off]);
    case kKBF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[off]);
    case kKI32: return float(static_cast<const int32_t*>(p)[off]);
    case kKI64: return float(double(static_cast<const int64_t*>(p)[off]));
    case kKI8: return float(static_cast<const int8_t*>(p)[off]);
    case kKU8: return float(static_cast<const uint8_t*>(p)[off]);
    default: return 0.0f;
  }
}

__device__ __forceinline__ void store_f(void* p, int32_t dtype, int64_t off, float v) {
  switch (dtype) {
    case kKF32: static_cast<float*>(p)[off] = v; break;
    case kKF16: static_cast<__half*>(p)[off] = __float2half_rn(v); break;
    case kKBF16: static_cast<__nv_bfloat16*>(p)[off] = __float2bfloat16_rn(v); break;
    default: break;  // float ops have float outputs (validated)
  }
}

__device__ __forceinline__ bool is_int_dtype(int32_t t) { return t >= kKI32 && t <= kKU8; }

__device__ __forceinline__ int64_t load_i64(const void* p, int32_t dtype, int64_t off) {
  switch (dtype) {
    case kKI32: return static_cast<const int32_t*>(p)[off];
    case kKI64: return static_cast<const int64_t*>(p)[off];
    case kKI8: return static_cast<const int8_t*>(p)[off];
    case kKU8: return static_cast<const uint8_t*>(p)[off];
    default: return 0;
  }
}

// Loads as double exactly as hal::reference::load does.
__device__ __forceinline__ double load_d(const void* p, int32_t dtype, int64_t off) {
  if (is_int_dtype(dtype)) return double(load_i64(p, dtype, off));
  return double(load_f(p, dtype, off));
}

__device__ __forceinline__ double clamp_d(double v, double lo, double hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// Stores a double exactly as hal::reference::store does: floats round through f32,
// integers truncate toward zero and saturate (NaN -> 0).
__device__ __forceinline__ void store_d(void* p, int32_t dtype, int64_t off, double v) {
  if (!is_int_dtype(dtype)) {
    store_f(p, dtype, off, float(v));
    return;
  }
  const double t = isnan(v) ? 0.0 : trunc(v);
  switch (dtype) {
    case kKI32:
      static_cast<int32_t*>(p)[off] = int32_t(clamp_d(t, -2147483648.0, 2147483647.0));
      break;
    case kKI64:
      static_cast<int64_t*>(p)[off] =
          int64_t(clamp_d(t, -9.2233720368547758e18, 9.2233720368547748e18));
      break;
    case kKI8: static_cast<int8_t*>(p)[off] = int8_t(clamp_d(t, -128.0, 127.0)); break;
    case kKU8: static_cast<uint8_t*>(p)[off] = uint8_t(clamp_d(t, 0.0, 255.0)); break;
    default: break;
  }
}

// Integer to integer, saturating, without going through a float.
__device__ __forceinline__ void store_i64(void* p, int32_t dtype, int64_t off, int64_t v) {
  auto sat = [](int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); };
  switch (dtype) {
    case kKI32: static_cast<int32_t*>(p)[off] = int32_t(sat(v, INT32_MIN, INT32_MAX)); break;
    case kKI64: static_cast<int64_t*>(p)[off] = v; break;
    case kKI8: static_cast<int8_t*>(p)[off] = int8_t(sat(v, -128, 127)); break;
    case kKU8: static_cast<uint8_t*>(p)[off] = uint8_t(sat(v, 0, 255)); break;
    default: break;
  }
}

// ---- the error slot (cuda_kernels.h) ---------------------------------------------------

// True when an earlier command of the stream failed: the caller returns at once. The first
// thread of the grid counts the skip.
__device__ __forceinline__ bool stream_failed(const ErrorRef& err) {
  if (err.device == nullptr) return false;
  const int32_t code = *reinterpret_cast<volatile const int32_t*>(&err.device->code);
  if (code == 0) return false;
  if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0 && blockIdx.x == 0 &&
      blockIdx.y == 0 && blockIdx.z == 0)
    atomicAdd(&err.device->skipped, 1);
  return true;
}

// Records a failure; the first one of the stream wins.
__device__ __forceinline__ void record_failure(const ErrorRef& err, int32_t op, int64_t value,
                                               int64_t index, int64_t limit) {
  if (err.device == nullptr) return;
  if (atomicCAS(&err.device->code, 0, -1) != 0) return;  // another thread won
  err.device->op = op;
  err.device->value = value;
  err.device->index = index;
  err.device->limit = limit;
  if (err.host_mirror) {
    volatile ErrorSlot* h = err.host_mirror;
    h->op = op;
    h->value = value;
    h->index = index;
    h->limit = limit;
    __threadfence_system();
    h->code = 1;  // HAL_STATUS_INVALID_ARGUMENT
    __threadfence_system();
  }
  __threadfence();
  atomicExch(&err.device->code, 1);
}

// ---- reductions -------------------------------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Grid size for a grid-stride loop over `n` items in blocks of `threads`.
inline unsigned grid_for(int64_t n, int threads, int64_t cap = 65535LL * 16) {
  int64_t blocks = (n + threads - 1) / threads;
  if (blocks < 1) blocks = 1;
  if (blocks > cap) blocks = cap;
  return unsigned(blocks);
}

}  // namespace hal::cuda::kernels
