// The matmul fallback: a tiled f32-accumulating GEMM over arbitrary strides, broadcast batch
// dims and mixed float dtypes, for the matmuls cuBLASLt cannot express (see cuda_matmul.cc).
// 64x64 output tiles, 16-deep K slices in shared memory, 4x4 results per thread.
#include "kernel_common.cuh"

namespace hal::cuda::kernels {
namespace {

constexpr int kTile = 64;
constexpr int kDepth = 16;

__global__ void __launch_bounds__(256) gemm_kernel(GemmArgs a, int64_t batches) {
  __shared__ float as[kDepth][kTile + 1];
  __shared__ float bs[kDepth][kTile + 1];
  if (stream_failed(a.err)) return;
  const int tid = threadIdx.x;
  const int tx = tid % 16, ty = tid / 16;
  const int64_t m0 = int64_t(blockIdx.y) * kTile, n0 = int64_t(blockIdx.x) * kTile;
  for (int64_t batch = blockIdx.z; batch < batches; batch += gridDim.z) {
    int64_t ao = 0, bo = 0, oo = 0, rest = batch;
    for (int d = a.batch_rank - 1; d >= 0; --d) {
      const int64_t c = rest % a.batch_shape[d];
      rest /= a.batch_shape[d];
      ao += c * a.a_batch_strides[d];
      bo += c * a.b_batch_strides[d];
      oo += c * a.out_batch_strides[d];
    }
    float acc[4][4] = {};
    for (int64_t k0 = 0; k0 < a.k; k0 += kDepth) {
      for (int l = tid; l < kTile * kDepth; l += 256) {
        const int mm = l / kDepth, kk = l % kDepth;
        const int64_t m = m0 + mm, k = k0 + kk;
        as[kk][mm] = (m < a.m && k < a.k) ? load_f(a.a, a.a_dtype, ao + m * a.a_sm + k * a.a_sk) : 0.0f;
      }
      for (int l = tid; l < kTile * kDepth; l += 256) {
        const int kk = l / kTile, nn = l % kTile;
        const int64_t n = n0 + nn, k = k0 + kk;
        bs[kk][nn] = (n < a.n && k < a.k) ? load_f(a.b, a.b_dtype, bo + k * a.b_sk + n * a.b_sn) : 0.0f;
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < kDepth; ++kk) {
        float av[4], bv[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) av[i] = as[kk][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) bv[j] = bs[kk][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t m = m0 + ty + 16 * i;
      if (m >= a.m) continue;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int64_t n = n0 + tx + 16 * j;
        if (n >= a.n) continue;
        float y = a.alpha * acc[i][j];
        if (a.bias) y += load_f(a.bias, a.bias_dtype, n * a.bias_stride);
        store_f(a.out, a.out_dtype, oo + m * a.o_sm + n * a.o_sn, y);
      }
    }
  }
}

}  // namespace
}  // namespace hal::cuda::kernels

namespace hal::cuda {

cudaError_t launch_gemm(const GemmArgs& a, cudaStream_t stream) {
  int64_t batches = 1;
  for (int i = 0; i < a.batch_rank; ++i) batches *= a.batch_shape[i];
  if (a.m <= 0 || a.n <= 0 || batches <= 0) return cudaSuccess;
  const int64_t gx = (a.n + kernels::kTile - 1) / kernels::kTile;
  const int64_t gy = (a.m + kernels::kTile - 1) / kernels::kTile;
  if (gx > 2147483647 || gy > 65535) return cudaErrorInvalidConfiguration;
  const dim3 grid(unsigned(gx), unsigned(gy), unsigned(batches < 65535 ? batches : 65535));
  kernels::gemm_kernel<<<grid, 256, 0, stream>>>(a, batches);
  return cudaGetLastError();
}

}  // namespace hal::cuda
