// Attention on the host with the device's numerics (npu_kernels.h): Q, K, V staged to
// fp32 (rounded to bf16 in device-faithful mode), scores accumulated in fp32, softmax
// in fp32 on the vector unit, probabilities rounded to bf16 before the PV product (in
// device-faithful mode), fp32 row sums, one rounding to the output dtype.
// Semantics (causal offset, grouped-query heads, kv_lengths) as hal/op.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "npu_kernels.h"
#include "npu_numerics.h"
#include "npu_parallel.h"
#include "npu_simd.h"

namespace hal::npu_sim {

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
  std::vector<float> q(static_cast<size_t>(qd.numel())), k(size_t(kd.numel())),
      v(size_t(vd.numel()));
  gather_f32(in[0], qd, qd.shape, q.data(), rnd);
  gather_f32(in[1], kd, kd.shape, k.data(), rnd);
  gather_f32(in[2], vd, vd.shape, v.data(), rnd);
  std::vector<float> o(static_cast<size_t>(s.output.numel()));
  const float scale = at.scale == 0.0f ? 1.0f / std::sqrt(float(D)) : at.scale;
  const int64_t group = Hq / Hkv;
  const bool round_p = precision == ComputePrecision::kBf16;

  // One task per (batch, head, block of queries).
  constexpr int64_t kQb = 8;
  const int64_t qblocks = (Sq + kQb - 1) / kQb;
  const int64_t tasks = B * Hq * qblocks;
  const double work = double(std::min(Sq, kQb)) * double(Skv) * double(D + Dv);
  const int64_t grain = std::max<int64_t>(1, int64_t(32768.0 / std::max(work, 1.0)));
  parallel_for(tasks, grain, [&](int64_t t0, int64_t t1) {
    std::vector<float> p(static_cast<size_t>(std::max<int64_t>(Skv, 1)));
    std::vector<float> acc(static_cast<size_t>(std::max<int64_t>(Dv, 1)));
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t qb = t % qblocks, h = (t / qblocks) % Hq, b = t / (qblocks * Hq);
      const int64_t hk = h / group;
      const int64_t len = kv_len[size_t(b)];
      const int64_t q_off = at.q_offset >= 0 ? at.q_offset : len - Sq;
      for (int64_t i = qb * kQb; i < std::min(Sq, (qb + 1) * kQb); ++i) {
        const int64_t visible = at.causal ? std::clamp<int64_t>(q_off + i + 1, 0, len) : len;
        float* orow = o.data() + ((b * Sq + i) * Hq + h) * Dv;
        if (visible <= 0) {
          std::fill(orow, orow + Dv, 0.0f);
          continue;
        }
        const float* qrow = q.data() + ((b * Sq + i) * Hq + h) * D;
        float mx = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < visible; ++j) {
          const float* krow = k.data() + ((b * Skv + j) * Hkv + hk) * D;
          p[size_t(j)] = dot(qrow, krow, D) * scale;
          mx = std::max(mx, p[size_t(j)]);
        }
        float total = 0;
        for (int64_t j = 0; j < visible; ++j) {
          const float e = std::exp(p[size_t(j)] - mx);
          total += e;
          p[size_t(j)] = round_p ? round_to_bf16(e) : e;
        }
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t j = 0; j < visible; ++j)
          axpy(p[size_t(j)], v.data() + ((b * Skv + j) * Hkv + hk) * Dv, acc.data(), Dv);
        const float inv = 1.0f / total;
        for (int64_t e = 0; e < Dv; ++e) orow[e] = acc[size_t(e)] * inv;
      }
    }
  });
  scatter_f32(o.data(), out, s.output);
  return ok_status();
}

}  // namespace hal::npu_sim
