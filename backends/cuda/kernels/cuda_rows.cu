// Row kernels: layer_norm, rms_norm, softmax (scale, causal mask) and argmax over the last
// dim. A warp per row for rows up to 1024 elements, a block per row beyond; reductions in
// f32 with two passes for the variance (as the reference: mean first, then squared
// deviations), the row re-read from cache rather than held in registers so any length works.
#include <cfloat>
#include <cmath>

#include "kernel_common.cuh"

namespace hal::cuda::kernels {
namespace {

constexpr int kBlockRowThreads = 512;
constexpr int kWarpRowBlock = 256;  // threads per block in warp-per-row mode (8 rows)

template <int kRowThreads>
__device__ __forceinline__ int row_thread() {
  return kRowThreads == 32 ? int(threadIdx.x % 32) : int(threadIdx.x);
}

// Sum over the threads of one row (a warp, or the whole block).
template <int kRowThreads>
__device__ __forceinline__ float row_sum(float v, float* smem) {
  v = warp_sum(v);
  if constexpr (kRowThreads == 32) {
    return v;
  } else {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    v = lane < kRowThreads / 32 ? smem[lane] : 0.0f;
    return warp_sum(v);
  }
}

template <int kRowThreads>
__device__ __forceinline__ float row_max(float v, float* smem) {
  v = warp_max(v);
  if constexpr (kRowThreads == 32) {
    return v;
  } else {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    v = lane < kRowThreads / 32 ? smem[lane] : -INFINITY;
    return warp_max(v);
  }
}

// The best (value, index) of argmax: NaN never wins, ties keep the lower index.
struct Best {
  float v;
  int64_t i;  // -1: nothing seen yet
};
__device__ __forceinline__ Best better(Best a, Best b) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  if (a.v > b.v) return a;
  if (b.v > a.v) return b;
  return a.i < b.i ? a : b;
}
__device__ __forceinline__ Best warp_best(Best b) {
  for (int o = 16; o > 0; o >>= 1) {
    Best other;
    other.v = __shfl_xor_sync(0xffffffffu, b.v, o);
    other.i = __shfl_xor_sync(0xffffffffu, b.i, o);
    b = better(b, other);
  }
  return b;
}

template <int kRowThreads>
__device__ __forceinline__ Best row_best(Best b, float* fsmem, int64_t* ismem) {
  b = warp_best(b);
  if constexpr (kRowThreads == 32) {
    return b;
  } else {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();
    if (lane == 0) {
      fsmem[warp] = b.v;
      ismem[warp] = b.i;
    }
    __syncthreads();
    Best r{0.0f, -1};
    if (lane < kRowThreads / 32) r = Best{fsmem[lane], ismem[lane]};
    return warp_best(r);
  }
}

template <int kRowThreads>
__global__ void rows_kernel(RowArgs a) {
  __shared__ float fsmem[32];
  __shared__ int64_t ismem[32];
  if (stream_failed(a.err)) return;
  const int t = row_thread<kRowThreads>();
  const int64_t rows_per_block = kRowThreads == 32 ? kWarpRowBlock / 32 : 1;
  const int64_t first = int64_t(blockIdx.x) * rows_per_block +
                        (kRowThreads == 32 ? int64_t(threadIdx.x / 32) : 0);
  const int64_t step = int64_t(gridDim.x) * rows_per_block;
  const int64_t n = a.n;
  for (int64_t row = first; row < a.rows; row += step) {
    // Offsets of the row in x and out, and its index along the last leading dim.
    int64_t xo = 0, oo = 0, inner_coord = 0, r = row;
    for (int d = a.lead_rank - 1; d >= 0; --d) {
      const int64_t c = r % a.lead_shape[d];
      r /= a.lead_shape[d];
      xo += c * a.x_lead_strides[d];
      oo += c * a.out_lead_strides[d];
      if (d == a.lead_rank - 1) inner_coord = c;
    }
    auto x_at = [&](int64_t j) { return load_f(a.x, a.x_dtype, xo + j * a.x_stride); };

    if (a.op == RowOp::kArgmax) {
      Best b{0.0f, -1};
      for (int64_t j = t; j < n; j += kRowThreads) {
        const float v = x_at(j);
        if (!isnan(v) && (b.i < 0 || v > b.v)) b = Best{v, j};
      }
      b = row_best<kRowThreads>(b, fsmem, ismem);
      if (t == 0) static_cast<int32_t*>(a.out)[oo] = int32_t(b.i < 0 ? 0 : b.i);
      continue;
    }

    if (a.op == RowOp::kSoftmax) {
      int64_t visible = n;
      if (a.causal) {
        visible = inner_coord + (n - a.sq) + 1;
        visible = visible < 0 ? 0 : (visible > n ? n : visible);
      }
      float mx = -INFINITY;
      for (int64_t j = t; j < visible; j += kRowThreads) mx = fmaxf(mx, a.scale * x_at(j));
      mx = row_max<kRowThreads>(mx, fsmem);
      float sum = 0.0f;
      for (int64_t j = t; j < visible; j += kRowThreads) sum += expf(a.scale * x_at(j) - mx);
      sum = row_sum<kRowThreads>(sum, fsmem);
      const float inv = 1.0f / sum;
      for (int64_t j = t; j < n; j += kRowThreads) {
        const float y = j < visible ? expf(a.scale * x_at(j) - mx) * inv : 0.0f;
        store_f(a.out, a.out_dtype, oo + j * a.out_stride, y);
      }
      continue;
    }

    // layer_norm / rms_norm
    float mean = 0.0f;
    float denom;
    if (a.op == RowOp::kLayerNorm) {
      float s = 0.0f;
      for (int64_t j = t; j < n; j += kRowThreads) s += x_at(j);
      mean = row_sum<kRowThreads>(s, fsmem) / float(n);
      float v = 0.0f;
      for (int64_t j = t; j < n; j += kRowThreads) {
        const float dlt = x_at(j) - mean;
        v += dlt * dlt;
      }
      const float var = row_sum<kRowThreads>(v, fsmem) / float(n);
      denom = sqrtf(var + a.epsilon);
    } else {
      float s = 0.0f;
      for (int64_t j = t; j < n; j += kRowThreads) {
        const float xv = x_at(j);
        s += xv * xv;
      }
      denom = sqrtf(row_sum<kRowThreads>(s, fsmem) / float(n) + a.epsilon);
    }
    const float inv = 1.0f / denom;
    for (int64_t j = t; j < n; j += kRowThreads) {
      float y = (x_at(j) - mean) * inv * load_f(a.gamma, a.gamma_dtype, j * a.gamma_stride);
      if (a.beta) y += load_f(a.beta, a.beta_dtype, j * a.beta_stride);
      store_f(a.out, a.out_dtype, oo + j * a.out_stride, y);
    }
  }
}

}  // namespace
}  // namespace hal::cuda::kernels

namespace hal::cuda {

cudaError_t launch_rows(const RowArgs& a, int num_sms, cudaStream_t stream) {
  using namespace kernels;
  if (a.rows <= 0) return cudaSuccess;
  const int64_t cap = int64_t(num_sms > 0 ? num_sms : 132) * 32;
  if (a.n <= 1024) {
    const int64_t blocks = (a.rows + kWarpRowBlock / 32 - 1) / (kWarpRowBlock / 32);
    rows_kernel<32><<<unsigned(blocks < cap ? blocks : cap), kWarpRowBlock, 0, stream>>>(a);
  } else {
    rows_kernel<kBlockRowThreads>
        <<<unsigned(a.rows < cap ? a.rows : cap), kBlockRowThreads, 0, stream>>>(a);
  }
  return cudaGetLastError();
}

}  // namespace hal::cuda
