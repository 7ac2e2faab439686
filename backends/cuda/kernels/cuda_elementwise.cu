// Elementwise kernels: add, mul (numpy broadcasting), scale, gelu (erf, tanh), silu, cast
// and the strided copy behind transpose, over the collapsed iteration space of EwArgs.
#include <cmath>

#include "kernel_common.cuh"

namespace hal::cuda::kernels {
namespace {

struct Offsets {
  int64_t o[3];
};

// Element offsets of every operand at flat index `i` of the iteration space.
__device__ __forceinline__ Offsets offsets_at(const EwArgs& a, int64_t i) {
  Offsets r{{0, 0, 0}};
  const int operands = a.num_inputs + 1;
  if (a.rank == 1) {
    for (int p = 0; p < operands; ++p) r.o[p] = i * a.strides[p][0];
    return r;
  }
  for (int d = a.rank - 1; d >= 0; --d) {
    const int64_t extent = a.shape[d];
    const int64_t c = i % extent;
    i /= extent;
    for (int p = 0; p < operands; ++p) r.o[p] += c * a.strides[p][d];
  }
  return r;
}

__device__ __forceinline__ float gelu_erf(float x) {
  return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}
__device__ __forceinline__ float gelu_tanh(float x) {
  const float c = 0.79788456080286536f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

template <EwOp kOp>
__global__ void elementwise_kernel(EwArgs a) {
  if (stream_failed(a.err)) return;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < a.numel; i += stride) {
    const Offsets off = offsets_at(a, i);
    if constexpr (kOp == EwOp::kCopy) {
      switch (a.dtype[0]) {
        case kKF32:
        case kKI32:
          static_cast<uint32_t*>(a.ptr[0])[off.o[0]] =
              static_cast<const uint32_t*>(a.ptr[1])[off.o[1]];
          break;
        case kKF16:
        case kKBF16:
          static_cast<uint16_t*>(a.ptr[0])[off.o[0]] =
              static_cast<const uint16_t*>(a.ptr[1])[off.o[1]];
          break;
        case kKI64:
          static_cast<uint64_t*>(a.ptr[0])[off.o[0]] =
              static_cast<const uint64_t*>(a.ptr[1])[off.o[1]];
          break;
        default:  // 1-byte types (i8, u8, fp8)
          static_cast<uint8_t*>(a.ptr[0])[off.o[0]] =
              static_cast<const uint8_t*>(a.ptr[1])[off.o[1]];
          break;
      }
    } else if constexpr (kOp == EwOp::kCast) {
      if (is_int_dtype(a.dtype[0]) && is_int_dtype(a.dtype[1]))
        store_i64(a.ptr[0], a.dtype[0], off.o[0], load_i64(a.ptr[1], a.dtype[1], off.o[1]));
      else
        store_d(a.ptr[0], a.dtype[0], off.o[0], load_d(a.ptr[1], a.dtype[1], off.o[1]));
    } else {
      const float x = load_f(a.ptr[1], a.dtype[1], off.o[1]);
      float y;
      if constexpr (kOp == EwOp::kAdd) {
        y = x + load_f(a.ptr[2], a.dtype[2], off.o[2]);
      } else if constexpr (kOp == EwOp::kMul) {
        y = x * load_f(a.ptr[2], a.dtype[2], off.o[2]);
      } else if constexpr (kOp == EwOp::kScale) {
        y = a.alpha * x + a.beta;
      } else if constexpr (kOp == EwOp::kGeluErf) {
        y = gelu_erf(x);
      } else if constexpr (kOp == EwOp::kGeluTanh) {
        y = gelu_tanh(x);
      } else {  // silu
        y = x / (1.0f + expf(-x));
      }
      store_f(a.ptr[0], a.dtype[0], off.o[0], y);
    }
  }
}

// Dense f32 binary/unary ops on 16-byte vectors: the common case of activations and
// residual adds, at full memory bandwidth.
template <EwOp kOp>
__global__ void dense_f32_kernel(EwArgs a) {
  if (stream_failed(a.err)) return;
  const int64_t n4 = a.numel / 4;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const float4* x = static_cast<const float4*>(a.ptr[1]);
  const float4* z = static_cast<const float4*>(a.ptr[2]);
  float4* out = static_cast<float4*>(a.ptr[0]);
  auto f = [&](float u, float w) {
    if constexpr (kOp == EwOp::kAdd) return u + w;
    if constexpr (kOp == EwOp::kMul) return u * w;
    if constexpr (kOp == EwOp::kScale) return a.alpha * u + a.beta;
    if constexpr (kOp == EwOp::kGeluErf) return gelu_erf(u);
    if constexpr (kOp == EwOp::kGeluTanh) return gelu_tanh(u);
    return u / (1.0f + expf(-u));
  };
  const bool binary = kOp == EwOp::kAdd || kOp == EwOp::kMul;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n4; i += stride) {
    const float4 u = x[i];
    const float4 w = binary ? z[i] : u;
    out[i] = make_float4(f(u.x, w.x), f(u.y, w.y), f(u.z, w.z), f(u.w, w.w));
  }
  // The tail (< 4 elements).
  const int64_t tail = n4 * 4 + int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (tail < a.numel) {
    const float* xs = static_cast<const float*>(a.ptr[1]);
    const float* zs = static_cast<const float*>(a.ptr[2]);
    static_cast<float*>(a.ptr[0])[tail] = f(xs[tail], binary ? zs[tail] : xs[tail]);
  }
}

template <EwOp kOp>
cudaError_t launch_op(const EwArgs& a, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const bool dense_f32 = kOp != EwOp::kCast && kOp != EwOp::kCopy && a.rank <= 1 &&
                         a.dtype[0] == kKF32 && a.dtype[1] == kKF32 &&
                         (a.num_inputs < 2 || a.dtype[2] == kKF32);
  bool unit = true;
  for (int p = 0; p <= a.num_inputs; ++p) {
    if (a.rank == 1 && a.strides[p][0] != 1) unit = false;
    if ((reinterpret_cast<uintptr_t>(a.ptr[p]) & 15) != 0) unit = false;
  }
  if (dense_f32 && unit && a.numel >= 4) {
    dense_f32_kernel<kOp><<<grid_for(a.numel / 4, kThreads), kThreads, 0, stream>>>(a);
  } else {
    elementwise_kernel<kOp><<<grid_for(a.numel, kThreads), kThreads, 0, stream>>>(a);
  }
  return cudaGetLastError();
}

}  // namespace
}  // namespace hal::cuda::kernels

namespace hal::cuda {

cudaError_t launch_elementwise(const EwArgs& a, cudaStream_t stream) {
  using namespace kernels;
  if (a.numel <= 0) return cudaSuccess;
  switch (a.op) {
    case EwOp::kAdd: return launch_op<EwOp::kAdd>(a, stream);
    case EwOp::kMul: return launch_op<EwOp::kMul>(a, stream);
    case EwOp::kScale: return launch_op<EwOp::kScale>(a, stream);
    case EwOp::kGeluErf: return launch_op<EwOp::kGeluErf>(a, stream);
    case EwOp::kGeluTanh: return launch_op<EwOp::kGeluTanh>(a, stream);
    case EwOp::kSilu: return launch_op<EwOp::kSilu>(a, stream);
    case EwOp::kCast: return launch_op<EwOp::kCast>(a, stream);
    case EwOp::kCopy: return launch_op<EwOp::kCopy>(a, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace hal::cuda
