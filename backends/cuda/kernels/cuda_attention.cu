// Fused causal attention (flash-attention style): scores are computed a chunk of keys at a
// time and folded into a running softmax (max, sum, weighted values), so memory stays
// O(queries x head dim) at any context length.
//
// Work decomposition: a block owns one (batch, kv head, key split) and a tile of 16 "query
// slots"; a slot is a (query position, query head) pair of that kv head's group, so the
// query heads that share a kv head (grouped-query attention) share every K/V chunk the
// block stages in shared memory. Each of the 4 warps advances 4 slots at once: lane j
// scores key j of the chunk against the warp's 4 queries, the warp reduces max and sum,
// then every lane accumulates its slice of the value dims. Decode (few slots, long keys)
// splits the keys across blocks (flash-decoding) and a second kernel merges the partial
// (max, sum, values) of the splits.
#include <cmath>

#include "kernel_common.cuh"

namespace hal::cuda::kernels {
namespace {

constexpr int kSlotsPerWarp = 4;
constexpr int kWarps = 4;
constexpr int kSlots = kSlotsPerWarp * kWarps;  // per block
constexpr int kChunk = 32;                      // keys per shared-memory chunk

struct SplitInfo {
  int32_t splits;
  int64_t keys_per_split;
};

__device__ __forceinline__ int64_t kv_len_of(const AttentionArgs& a, int64_t b) {
  if (a.kv_lengths) return int64_t(a.kv_lengths[b * a.kv_lengths_stride]);
  return a.kv_length > 0 ? a.kv_length : a.skv;
}

template <int kDvPerLane>
__global__ void __launch_bounds__(kWarps * 32)
    attention_kernel(AttentionArgs a, SplitInfo split_info, float* workspace) {
  extern __shared__ float smem[];
  if (stream_failed(a.err)) return;
  const int64_t group = a.hq / a.hkv;
  const int64_t slots_total = a.sq * group;
  const int64_t hk = blockIdx.y % a.hkv;
  const int32_t split = int32_t(blockIdx.y / a.hkv);
  const int64_t b = blockIdx.z;
  const int64_t slot0 = int64_t(blockIdx.x) * kSlots;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t D = a.d, Dv = a.dv;

  const int64_t kv_len = kv_len_of(a, b);
  if (a.kv_lengths && (kv_len < 0 || kv_len > a.skv)) {
    if (threadIdx.x == 0 && blockIdx.x == 0 && blockIdx.y == 0)
      record_failure(a.err, a.op_kind, kv_len, b, a.skv);
    return;
  }
  const int64_t q_off = a.q_offset >= 0 ? a.q_offset : kv_len - a.sq;
  const float scale = a.scale > 0.0f ? a.scale : 1.0f / sqrtf(float(D));
  const int64_t split_lo = int64_t(split) * split_info.keys_per_split;
  int64_t split_hi = split_lo + split_info.keys_per_split;
  if (split_hi > kv_len) split_hi = kv_len;

  float* qs = smem;                       // [kSlots][D], pre-scaled
  float* ks = qs + kSlots * D;            // [kChunk][D + 1]
  float* vs = ks + kChunk * (D + 1);      // [kChunk][Dv]

  // Slot geometry: the warp's u-th slot is w + 4u (spreads a small group across warps).
  int64_t my_slot[kSlotsPerWarp], my_i[kSlotsPerWarp], my_h[kSlotsPerWarp], my_vis[kSlotsPerWarp];
  for (int u = 0; u < kSlotsPerWarp; ++u) {
    const int64_t t = slot0 + warp + kWarps * u;
    my_slot[u] = t;
    my_i[u] = t / group;
    my_h[u] = hk * group + t % group;
    int64_t vis = 0;
    if (t < slots_total) {
      vis = kv_len;
      if (a.causal) {
        vis = q_off + my_i[u] + 1;
        vis = vis < 0 ? 0 : (vis > kv_len ? kv_len : vis);
      }
    }
    my_vis[u] = vis < split_hi ? vis : split_hi;
  }
  // The block's key range: the largest visible prefix of its slots within the split.
  int64_t block_hi = split_lo;
  for (int w = 0; w < kSlots; ++w) {
    const int64_t t = slot0 + w;
    if (t >= slots_total) break;
    int64_t vis = kv_len;
    if (a.causal) {
      vis = q_off + t / group + 1;
      vis = vis < 0 ? 0 : (vis > kv_len ? kv_len : vis);
    }
    if (vis > block_hi) block_hi = vis;
  }
  if (block_hi > split_hi) block_hi = split_hi;

  // Stage the block's queries.
  for (int64_t l = threadIdx.x; l < kSlots * D; l += blockDim.x) {
    const int64_t w = l / D, d = l % D;
    const int64_t t = slot0 + w;
    float qv = 0.0f;
    if (t < slots_total) {
      const int64_t i = t / group, h = hk * group + t % group;
      qv = scale * load_f(a.q, a.q_dtype,
                          b * a.q_strides[0] + i * a.q_strides[1] + h * a.q_strides[2] + d * a.q_strides[3]);
    }
    qs[w * D + d] = qv;
  }

  float m[kSlotsPerWarp], l[kSlotsPerWarp], acc[kSlotsPerWarp][kDvPerLane];
  for (int u = 0; u < kSlotsPerWarp; ++u) {
    m[u] = -INFINITY;
    l[u] = 0.0f;
    for (int t = 0; t < kDvPerLane; ++t) acc[u][t] = 0.0f;
  }

  const int64_t kbase = b * a.k_strides[0] + hk * a.k_strides[2];
  const int64_t vbase = b * a.v_strides[0] + hk * a.v_strides[2];
  for (int64_t j0 = split_lo; j0 < block_hi; j0 += kChunk) {
    const int64_t rows = (block_hi - j0) < kChunk ? (block_hi - j0) : kChunk;
    __syncthreads();  // the previous chunk (and, first time, nothing) is consumed
    for (int64_t e = threadIdx.x; e < kChunk * D; e += blockDim.x) {
      const int64_t jj = e / D, d = e % D;
      ks[jj * (D + 1) + d] =
          jj < rows ? load_f(a.k, a.k_dtype, kbase + (j0 + jj) * a.k_strides[1] + d * a.k_strides[3])
                    : 0.0f;
    }
    for (int64_t e = threadIdx.x; e < kChunk * Dv; e += blockDim.x) {
      const int64_t jj = e / Dv, d = e % Dv;
      vs[jj * Dv + d] =
          jj < rows ? load_f(a.v, a.v_dtype, vbase + (j0 + jj) * a.v_strides[1] + d * a.v_strides[3])
                    : 0.0f;
    }
    __syncthreads();

    // Scores of key j0 + lane against the warp's slots.
    float s[kSlotsPerWarp] = {};
    const float* krow = ks + lane * (D + 1);
    const float* q0 = qs + (warp + kWarps * 0) * D;
    const float* q1 = qs + (warp + kWarps * 1) * D;
    const float* q2 = qs + (warp + kWarps * 2) * D;
    const float* q3 = qs + (warp + kWarps * 3) * D;
    for (int64_t d = 0; d < D; ++d) {
      const float kv = krow[d];
      s[0] = fmaf(q0[d], kv, s[0]);
      s[1] = fmaf(q1[d], kv, s[1]);
      s[2] = fmaf(q2[d], kv, s[2]);
      s[3] = fmaf(q3[d], kv, s[3]);
    }
    const int64_t j = j0 + lane;
    float p[kSlotsPerWarp];
    for (int u = 0; u < kSlotsPerWarp; ++u) {
      if (!(j < my_vis[u])) s[u] = -INFINITY;
      const float m_new = fmaxf(m[u], warp_max(s[u]));
      float corr = 1.0f;
      if (m_new == -INFINITY) {
        p[u] = 0.0f;
      } else {
        p[u] = s[u] == -INFINITY ? 0.0f : expf(s[u] - m_new);
        corr = expf(m[u] - m_new);  // 0 when m[u] is still -inf
      }
      l[u] = l[u] * corr + warp_sum(p[u]);
      m[u] = m_new;
      for (int t = 0; t < kDvPerLane; ++t) acc[u][t] *= corr;
    }
    for (int jj = 0; jj < rows; ++jj) {
      float pj[kSlotsPerWarp];
      for (int u = 0; u < kSlotsPerWarp; ++u) pj[u] = __shfl_sync(0xffffffffu, p[u], jj);
      const float* vrow = vs + jj * Dv;
#pragma unroll
      for (int t = 0; t < kDvPerLane; ++t) {
        const int64_t dv = lane + 32 * t;
        if (dv < Dv) {
          const float vv = vrow[dv];
          for (int u = 0; u < kSlotsPerWarp; ++u) acc[u][t] = fmaf(pj[u], vv, acc[u][t]);
        }
      }
    }
  }

  // Results: final outputs (one split) or partials for the merge kernel.
  for (int u = 0; u < kSlotsPerWarp; ++u) {
    if (my_slot[u] >= slots_total) continue;
    const int64_t i = my_i[u], h = my_h[u];
    if (split_info.splits == 1) {
      const float inv = l[u] > 0.0f ? 1.0f / l[u] : 0.0f;
      const int64_t ob = b * a.out_strides[0] + i * a.out_strides[1] + h * a.out_strides[2];
      for (int t = 0; t < kDvPerLane; ++t) {
        const int64_t dv = lane + 32 * t;
        if (dv < Dv) store_f(a.out, a.out_dtype, ob + dv * a.out_strides[3], acc[u][t] * inv);
      }
    } else {
      float* w = workspace + (((b * a.hq + h) * a.sq + i) * split_info.splits + split) * (2 + Dv);
      if (lane == 0) {
        w[0] = m[u];
        w[1] = l[u];
      }
      for (int t = 0; t < kDvPerLane; ++t) {
        const int64_t dv = lane + 32 * t;
        if (dv < Dv) w[2 + dv] = acc[u][t];
      }
    }
  }
}

// Merges the splits' partials of each (batch, head, query) row.
__global__ void attention_merge_kernel(AttentionArgs a, int32_t splits, const float* workspace) {
  if (stream_failed(a.err)) return;
  const int64_t rows = a.batch * a.hq * a.sq;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t i = row % a.sq, h = (row / a.sq) % a.hq, b = row / (a.sq * a.hq);
    const float* w = workspace + row * splits * (2 + a.dv);
    float mx = -INFINITY;
    for (int s = 0; s < splits; ++s) mx = fmaxf(mx, w[s * (2 + a.dv)]);
    float total = 0.0f;
    if (mx != -INFINITY)
      for (int s = 0; s < splits; ++s) total += w[s * (2 + a.dv) + 1] * expf(w[s * (2 + a.dv)] - mx);
    const int64_t ob = b * a.out_strides[0] + i * a.out_strides[1] + h * a.out_strides[2];
    for (int64_t dv = threadIdx.x; dv < a.dv; dv += blockDim.x) {
      float y = 0.0f;
      if (total > 0.0f) {
        for (int s = 0; s < splits; ++s) {
          const float ms = w[s * (2 + a.dv)];
          if (ms != -INFINITY) y += w[s * (2 + a.dv) + 2 + dv] * expf(ms - mx);
        }
        y /= total;
      }
      store_f(a.out, a.out_dtype, ob + dv * a.out_strides[3], y);
    }
  }
}

template <int kDvPerLane>
cudaError_t launch_with(const AttentionArgs& a, const AttentionPlan& plan, SplitInfo info,
                        float* workspace, cudaStream_t stream) {
  const int64_t group = a.hq / a.hkv;
  const int64_t tiles = (a.sq * group + kSlots - 1) / kSlots;
  const size_t smem = size_t(kSlots * a.d + kChunk * (a.d + 1) + kChunk * a.dv) * sizeof(float);
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(attention_kernel<kDvPerLane>,
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
  }
  const dim3 grid(unsigned(tiles), unsigned(a.hkv * plan.splits), unsigned(a.batch));
  attention_kernel<kDvPerLane><<<grid, kWarps * 32, smem, stream>>>(a, info, workspace);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || plan.splits == 1) return e;
  const int64_t rows = a.batch * a.hq * a.sq;
  attention_merge_kernel<<<grid_for(rows, 1, 65535LL * 8), 128, 0, stream>>>(a, plan.splits, workspace);
  return cudaGetLastError();
}

int64_t keys_per_split(const AttentionArgs& a, int32_t splits) {
  const int64_t kv_max = a.skv;
  int64_t per = (kv_max + splits - 1) / splits;
  per = (per + kChunk - 1) / kChunk * kChunk;
  return per < kChunk ? kChunk : per;
}

}  // namespace
}  // namespace hal::cuda::kernels

namespace hal::cuda {

AttentionPlan plan_attention(const AttentionArgs& a, int num_sms) {
  using namespace kernels;
  AttentionPlan plan;
  const int64_t group = a.hkv > 0 ? a.hq / a.hkv : 1;
  const int64_t tiles = (a.sq * group + kSlots - 1) / kSlots;
  const int64_t blocks = tiles * a.hkv * a.batch;
  const int64_t sms = num_sms > 0 ? num_sms : 132;
  if (blocks >= 2 * sms || a.skv <= 4 * kChunk) return plan;
  int64_t splits = (2 * sms + blocks - 1) / blocks;
  const int64_t by_length = (a.skv + 8 * kChunk - 1) / (8 * kChunk);  // >= 256 keys a split
  if (splits > by_length) splits = by_length;
  if (splits > 64) splits = 64;
  if (splits * a.hkv > 65535) splits = 65535 / a.hkv;
  if (splits <= 1) return plan;
  plan.splits = int32_t(splits);
  plan.workspace_bytes =
      uint64_t(a.batch * a.hq * a.sq) * uint64_t(splits) * uint64_t(2 + a.dv) * sizeof(float);
  return plan;
}

cudaError_t launch_attention(const AttentionArgs& a, const AttentionPlan& plan, void* workspace,
                             cudaStream_t stream) {
  using namespace kernels;
  if (a.batch <= 0 || a.sq <= 0 || a.hq <= 0 || a.dv <= 0) return cudaSuccess;
  if (a.batch > 65535 || a.hkv * plan.splits > 65535 || a.d > kAttentionMaxHeadDim ||
      a.dv > kAttentionMaxHeadDim)
    return cudaErrorInvalidConfiguration;
  const SplitInfo info{plan.splits, keys_per_split(a, plan.splits)};
  float* ws = static_cast<float*>(workspace);
  if (a.dv <= 32) return launch_with<1>(a, plan, info, ws, stream);
  if (a.dv <= 64) return launch_with<2>(a, plan, info, ws, stream);
  if (a.dv <= 128) return launch_with<4>(a, plan, info, ws, stream);
  return launch_with<8>(a, plan, info, ws, stream);
}

}  // namespace hal::cuda
