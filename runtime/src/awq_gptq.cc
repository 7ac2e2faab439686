// AWQ / GPTQ projections to group-wise int4 (awq_gptq.h).
#include "awq_gptq.h"

#include <cstring>
#include <string>

namespace hal::runtime {

namespace {

Status expect(const HostTensor& t, DType dtype, Shape shape) {
  if (t.dtype != dtype || !(t.shape == shape))
    return invalid_argument(t.source + ": tensor '" + t.name + "' is " +
                            std::string(dtype_name(t.dtype)) + t.shape.to_string() + "; expected " +
                            std::string(dtype_name(dtype)) + shape.to_string());
  return ok_status();
}

uint32_t word(const HostTensor& t, int64_t i) {
  uint32_t v;
  std::memcpy(&v, static_cast<const uint8_t*>(t.data) + 4 * i, 4);
  return v;
}

// AWQ's nibble of output feature j (0..7) within its word.
constexpr int kAwqNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

}  // namespace

DType awq_gptq_dtype(const QuantizationConfig& q) {
  return q.group_size == 32 ? DType::kI4G32 : q.group_size == 64 ? DType::kI4G64 : DType::kI4G128;
}

Result<std::vector<uint8_t>> repack_awq_gptq(const QuantizationConfig& q, const HostTensor& qweight,
                                             const HostTensor& qzeros, const HostTensor& scales,
                                             const HostTensor* g_idx, int64_t in, int64_t out) {
  const int64_t g = q.group_size, groups = in / g;
  const bool awq = q.method == "awq";
  if (in % g != 0 || in % 8 != 0 || out % 8 != 0)
    return invalid_argument(qweight.source + ": tensor '" + qweight.name +
                            "': " + std::to_string(in) + " inputs and " + std::to_string(out) +
                            " outputs do not fit groups of " + std::to_string(g) +
                            " and 8-nibble words");
  HAL_RETURN_IF_ERROR(expect(qweight, DType::kI32, awq ? Shape{in, out / 8} : Shape{in / 8, out}));
  HAL_RETURN_IF_ERROR(expect(qzeros, DType::kI32, Shape{groups, out / 8}));
  HAL_RETURN_IF_ERROR(expect(scales, DType::kF16, Shape{groups, out}));
  if (g_idx) {
    HAL_RETURN_IF_ERROR(expect(*g_idx, DType::kI32, Shape{in}));
    for (int64_t k = 0; k < in; ++k)
      if (int64_t(int32_t(word(*g_idx, k))) != k / g)
        return invalid_argument(g_idx->source + ": tensor '" + g_idx->name + "' puts input " +
                                std::to_string(k) + " in group " +
                                std::to_string(int32_t(word(*g_idx, k))) +
                                ": act-order (desc_act) GPTQ checkpoints are not supported");
  }
  const int zero_add = !awq && q.version == "gptq" ? 1 : 0;
  auto nibble = [](uint32_t w, int i) { return int((w >> (4 * i)) & 15u); };
  auto q_at = [&](int64_t k, int64_t n) {
    return awq ? nibble(word(qweight, k * (out / 8) + n / 8), kAwqNibble[n % 8])
               : nibble(word(qweight, (k / 8) * out + n), int(k % 8));
  };
  auto zero_at = [&](int64_t grp, int64_t n) {
    const uint32_t w = word(qzeros, grp * (out / 8) + n / 8);
    return (awq ? nibble(w, kAwqNibble[n % 8]) : nibble(w, int(n % 8))) + zero_add;
  };
  const uint64_t group_bytes = uint64_t(4 + g / 2);
  std::vector<uint8_t> packed(size_t(out) * size_t(groups) * group_bytes);
  const uint8_t* sc = static_cast<const uint8_t*>(scales.data);
  for (int64_t n = 0; n < out; ++n)
    for (int64_t grp = 0; grp < groups; ++grp) {
      uint8_t* b = packed.data() + (size_t(n) * size_t(groups) + size_t(grp)) * group_bytes;
      std::memcpy(b, sc + 2 * (grp * out + n), 2);  // the f16 scale, bit for bit
      b[2] = uint8_t(zero_at(grp, n));
      b[3] = 0;
      for (int64_t i = 0; i < g / 2; ++i) {
        const int64_t k = grp * g + 2 * i;
        b[4 + i] = uint8_t(q_at(k, n) | (q_at(k + 1, n) << 4));
      }
    }
  return packed;
}

}  // namespace hal::runtime
