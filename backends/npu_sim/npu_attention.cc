// Attention on the host with the device's numerics (npu_kernels.h): Q, K, V staged to
// fp32 (rounded to bf16 in device-faithful mode), scores accumulated in fp32, softmax
// in fp32 on the vector unit, probabilities rounded to bf16 before the PV product (in
// device-faithful mode), fp32 row sums, one rounding to the output dtype.
// Semantics (causal offset, grouped-query heads, kv_lengths) as hal/op.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "npu_kernels.h"
#include "npu_numerics.h"
#include "npu_parallel.h"
#include "npu_simd.h"

namespace hal::npu_sim {

namespace {

constexpr int64_t kQb = 8;  // queries per task

// Dense fp32 operands (q and out [B, Sq, Hq, D]; k and v [B, Hkv, Skv, D]) and what
// one task needs to know.
struct AttentionTasks {
  const float *q, *k, *v;
  float* o;
  const int64_t* kv_len;
  int64_t Sq, Hq, D, Skv, Hkv, Dv, group, qblocks, q_offset;
  float scale;
  bool causal, round_p;
};

// Tasks [t0, t1): each one (batch, kv head, block of kQb queries). All query heads of
// the kv head's group are computed together so each K and V row is loaded once per
// query (grouped-query attention). Scratch: p holds group x Skv scores, acc group x Dv
// sums, totals group row sums.
NPU_SIM_MULTIVERSION
void run_tasks(const AttentionTasks& j, int64_t t0, int64_t t1, float* p, float* acc,
               float* totals) {
  const int64_t g = j.group;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t qb = t % j.qblocks, hk = (t / j.qblocks) % j.Hkv, b = t / (j.qblocks * j.Hkv);
    const int64_t len = j.kv_len[b];
    const int64_t q_off = j.q_offset >= 0 ? j.q_offset : len - j.Sq;
    for (int64_t i = qb * kQb; i < std::min(j.Sq, (qb + 1) * kQb); ++i) {
      const int64_t visible = j.causal ? std::clamp<int64_t>(q_off + i + 1, 0, len) : len;
      const int64_t h0 = hk * g;                                // first query head of the group
      float* orow = j.o + ((b * j.Sq + i) * j.Hq + h0) * j.Dv;  // g consecutive heads
      if (visible <= 0) {
        std::fill(orow, orow + g * j.Dv, 0.0f);
        continue;
      }
      const float* qrow = j.q + ((b * j.Sq + i) * j.Hq + h0) * j.D;
      for (int64_t jj = 0; jj < visible; ++jj) {
        const float* krow = j.k + ((b * j.Hkv + hk) * j.Skv + jj) * j.D;
        for (int64_t h = 0; h < g; ++h)
          p[h * j.Skv + jj] = dot(qrow + h * j.D, krow, j.D) * j.scale;
      }
      std::fill(acc, acc + g * j.Dv, 0.0f);
      for (int64_t h = 0; h < g; ++h) {
        float* ph = p + h * j.Skv;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t jj = 0; jj < visible; ++jj) mx = std::max(mx, ph[jj]);
        float sum_h = 0;
        for (int64_t jj = 0; jj < visible; ++jj) {
          const float e = std::exp(ph[jj] - mx);
          sum_h += e;
          ph[jj] = j.round_p ? round_to_bf16(e) : e;
        }
        totals[h] = sum_h;
      }
      for (int64_t jj = 0; jj < visible; ++jj) {
        const float* vrow = j.v + ((b * j.Hkv + hk) * j.Skv + jj) * j.Dv;
        for (int64_t h = 0; h < g; ++h) axpy(p[h * j.Skv + jj], vrow, acc + h * j.Dv, j.Dv);
      }
      for (int64_t h = 0; h < g; ++h) {
        const float inv = 1.0f / totals[h];
        for (int64_t e = 0; e < j.Dv; ++e) orow[h * j.Dv + e] = acc[h * j.Dv + e] * inv;
      }
    }
  }
}

}  // namespace

Status execute_attention(const OpSpec& s, const void* const* in, void* out,
                         ComputePrecision precision) {
  const TensorDesc& qd = s.inputs[0];
  const TensorDesc& kd = s.inputs[1];
  const TensorDesc& vd = s.inputs[2];
  const int64_t B = qd.shape[0], Sq = qd.shape[1], Hq = qd.shape[2], D = qd.shape[3];
  const int64_t Skv = kd.shape[1], Hkv = kd.shape[2], Dv = vd.shape[3];
  if (s.output.numel() <= 0) return ok_status();
  const OpAttributes& at = s.attrs;
  const Rounding rnd = precision == ComputePrecision::kBf16 ? Rounding::kBf16 : Rounding::kNone;

  std::vector<int64_t> kv_len(size_t(B), at.kv_length > 0 ? at.kv_length : Skv);
  if (s.num_inputs == 4) {
    const TensorDesc& ld = s.inputs[3];
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = static_cast<const int32_t*>(in[3])[b * ld.strides[0]];
      if (len < 0 || len > Skv)
        return invalid_argument("attention: kv_lengths[" + std::to_string(b) + "] = " +
                                std::to_string(len) + " outside [0, " + std::to_string(Skv) + "]");
      kv_len[size_t(b)] = len;
    }
  }
  // Working copies (reused per thread, every element written before it is read). K and
  // V are staged kv-head-major, [B, Hkv, Skv, D], so a task streams contiguous rows.
  float* q = scratch_floats(ScratchSlot::kAttentionQ, size_t(qd.numel()));
  float* k = scratch_floats(ScratchSlot::kAttentionK, size_t(kd.numel()));
  float* v = scratch_floats(ScratchSlot::kAttentionV, size_t(vd.numel()));
  float* o = scratch_floats(ScratchSlot::kAttentionOut, size_t(s.output.numel()));
  gather_f32(in[0], qd, qd.shape, q, rnd);
  auto head_major = [](const TensorDesc& t) {
    TensorDesc h = t;
    std::swap(h.shape.dims[1], h.shape.dims[2]);
    std::swap(h.strides[1], h.strides[2]);
    return h;
  };
  const TensorDesc kh = head_major(kd), vh = head_major(vd);
  gather_f32(in[1], kh, kh.shape, k, rnd);
  gather_f32(in[2], vh, vh.shape, v, rnd);

  // One task per (batch, kv head, block of queries).
  AttentionTasks job;
  job.q = q;
  job.k = k;
  job.v = v;
  job.o = o;
  job.kv_len = kv_len.data();
  job.Sq = Sq;
  job.Hq = Hq;
  job.D = D;
  job.Skv = Skv;
  job.Hkv = Hkv;
  job.Dv = Dv;
  job.group = Hq / Hkv;
  job.scale = at.scale == 0.0f ? 1.0f / std::sqrt(float(D)) : at.scale;
  job.causal = at.causal;
  job.q_offset = at.q_offset;
  job.round_p = precision == ComputePrecision::kBf16;
  job.qblocks = (Sq + kQb - 1) / kQb;
  const int64_t tasks = B * Hkv * job.qblocks;
  const double work = double(std::min(Sq, kQb)) * double(Hq / Hkv) * double(Skv) * double(D + Dv);
  const int64_t grain = std::max<int64_t>(1, int64_t(32768.0 / std::max(work, 1.0)));
  parallel_for(tasks, grain, [&](int64_t t0, int64_t t1) {
    const int64_t g = Hq / Hkv;
    std::unique_ptr<float[]> p(new float[size_t(g * std::max<int64_t>(Skv, 1))]);
    std::unique_ptr<float[]> acc(new float[size_t(g * std::max<int64_t>(Dv, 1))]);
    std::unique_ptr<float[]> totals(new float[size_t(g)]);
    run_tasks(job, t0, t1, p.get(), acc.get(), totals.get());
  });
  scatter_f32(o, out, s.output);
  return ok_status();
}

}  // namespace hal::npu_sim
