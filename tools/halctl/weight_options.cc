// --quantize / --weights (weight_options.h).
#include "weight_options.h"

#include <map>

namespace halctl {

void add_weight_options(po::options_description& desc, WeightCliOptions& o) {
  desc.add_options()(
      "quantize", po::value<std::string>(&o.quantize),
      "quantize matmul weights on load: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, "
      "int8 (per channel), int4 (groups of 128; int4_g32/g64/g128), fp8, f16, bf16")(
      "weights", po::value<std::string>(&o.weights),
      "stored: f16/bf16 matmul weights stay as stored, with f32 activations (default for GGUF "
      "files); compute: converted to the compute dtype (default otherwise)");
}

hal::Result<hal::DType> parse_weight_format(const std::string& text) {
  static const std::map<std::string, hal::DType> kAliases = {
      {"int8", hal::DType::kI8Channel},   {"int4", hal::DType::kI4G128},
      {"int4_g32", hal::DType::kI4G32},   {"int4_g64", hal::DType::kI4G64},
      {"int4_g128", hal::DType::kI4G128}, {"fp8", hal::DType::kFP8E4M3Channel}};
  if (auto it = kAliases.find(text); it != kAliases.end()) return it->second;
  const auto t = hal::parse_dtype(text);
  if (t && (hal::is_quantized(*t) || *t == hal::DType::kF16 || *t == hal::DType::kBF16 ||
            *t == hal::DType::kF32))
    return *t;
  return hal::invalid_argument(
      "--quantize '" + text +
      "' is not a weight format (q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, "
      "int8, int4, int4_g32, int4_g64, int4_g128, fp8, f16, bf16)");
}

hal::Result<hal::runtime::WeightOptions> weight_options(const WeightCliOptions& o,
                                                        const hal::runtime::Model& model) {
  hal::runtime::WeightOptions w;
  if (o.weights.empty())
    w.keep_stored = model.gguf() != nullptr;
  else if (o.weights == "stored")
    w.keep_stored = true;
  else if (o.weights != "compute")
    return hal::invalid_argument("--weights must be 'stored' or 'compute', got '" + o.weights +
                                 "'");
  if (!o.quantize.empty()) {
    HAL_ASSIGN_OR_RETURN(hal::DType t, parse_weight_format(o.quantize));
    w.quantize = t;
  }
  return w;
}

std::string weight_summary(const hal::runtime::WeightFormats& formats) {
  std::map<std::string, int> count;
  for (const auto& [name, f] : formats.by_name) ++count[std::string(hal::dtype_name(f.dtype))];
  std::string s;
  for (const auto& [t, n] : count) s += (s.empty() ? "" : ", ") + t + " x " + std::to_string(n);
  for (const std::string& note : formats.notes) s += "\n           " + note;
  return s;
}

}  // namespace halctl
