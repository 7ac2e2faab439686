// Kernels for quantized weights (cuda_kernels.h): the decode matrix-vector product with
// the weights dequantized in registers, and dequantization into f16 for prefill (the
// embedding gather from quantized tables is the embedding kernel's, cuda_misc.cu). The block
// decoding is quant_blocks.h, shared with the host test that checks it against hal/reference
// without a GPU.
#include "kernel_common.cuh"
#include "quant_blocks.h"

namespace hal::cuda::kernels {
namespace {

constexpr int kWarps = 4;  // rows per thread block of 128 threads

// One warp per weight row: each lane takes blocks lane, lane + 32, ...; the row's
// partial sums are then reduced across the warp.
__global__ void __launch_bounds__(32 * kWarps) quant_gemv_kernel(QuantGemvArgs a) {
  if (stream_failed(a.err)) return;
  const int lane = threadIdx.x % 32;
  const int64_t n = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  // A rows staged once per block in shared memory as f32 (k <= the launch's bound).
  extern __shared__ float xs[];
  for (int64_t i = threadIdx.x; i < a.rows * a.k; i += blockDim.x) {
    const int64_t m = i / a.k, kk = i % a.k;
    xs[i] = load_f(a.a, a.a_dtype, m * a.a_sm + kk * a.a_sk);
  }
  __syncthreads();
  if (n >= a.n) return;
  const uint8_t* row = static_cast<const uint8_t*>(a.w) + uint64_t(n) * a.w_row_bytes;
  float acc[kQuantGemvMaxRows] = {};
  quant::gemv_lane<kQuantGemvMaxRows>(a.format, row, a.k, xs, a.k, int(a.rows), lane, 32, acc);
  for (int m = 0; m < a.rows; ++m) {
    const float s = warp_sum(acc[m]);
    if (lane == 0) {
      float v = s * a.alpha;
      if (a.bias) v += load_f(a.bias, a.bias_dtype, n * a.bias_stride);
      store_f(a.out, a.out_dtype, m * a.o_sm + n * a.o_sn, v);
    }
  }
}

// One thread per 32-element block.
__global__ void quant_dequant_kernel(QuantDequantArgs a) {
  if (stream_failed(a.err)) return;
  const int64_t blocks_per_row = a.k / 32;
  const int64_t total = a.n * blocks_per_row;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / blocks_per_row, b = i % blocks_per_row;
    float w[32];
    quant::dequant_block32(a.format, static_cast<const uint8_t*>(a.w) + uint64_t(n) * a.w_row_bytes,
                           b, w);
    __half* o = static_cast<__half*>(a.out) + n * a.k + 32 * b;
    for (int j = 0; j < 32; ++j) o[j] = __float2half_rn(w[j]);
  }
}

}  // namespace
}  // namespace hal::cuda::kernels

namespace hal::cuda {

cudaError_t launch_quant_gemv(const QuantGemvArgs& a, cudaStream_t stream) {
  if (a.n <= 0 || a.rows <= 0) return cudaSuccess;
  if (a.rows > kQuantGemvMaxRows || !quant::is_format(a.format)) return cudaErrorInvalidValue;
  const size_t shared = size_t(a.rows * a.k) * sizeof(float);
  if (shared > 48 * 1024) {
    // Beyond the default dynamic shared memory: opt in (up to the device's limit).
    const cudaError_t e = cudaFuncSetAttribute(
        kernels::quant_gemv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared));
    if (e != cudaSuccess) return e;
  }
  const int64_t blocks = (a.n + kernels::kWarps - 1) / kernels::kWarps;
  if (blocks > 2147483647) return cudaErrorInvalidValue;
  kernels::quant_gemv_kernel<<<unsigned(blocks), 32 * kernels::kWarps, shared, stream>>>(a);
  return cudaGetLastError();
}

cudaError_t launch_quant_dequant(const QuantDequantArgs& a, cudaStream_t stream) {
  if (a.n <= 0 || a.k <= 0) return cudaSuccess;
  kernels::quant_dequant_kernel<<<kernels::grid_for(a.n * (a.k / 32), 256), 256, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace hal::cuda
