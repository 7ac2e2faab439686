#include "hal/dtype.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace hal {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kI8: return "i8";
    case DType::kU8: return "u8";
    case DType::kFP8E4M3: return "fp8e4m3";
    case DType::kFP8E5M2: return "fp8e5m2";
    case DType::kQ8_0: return "q8_0";
    case DType::kQ4_0: return "q4_0";
    case DType::kQ4_1: return "q4_1";
    case DType::kQ5_0: return "q5_0";
    case DType::kQ5_1: return "q5_1";
    case DType::kQ4_K: return "q4_k";
    case DType::kQ5_K: return "q5_k";
    case DType::kQ6_K: return "q6_k";
    case DType::kI8Channel: return "i8_channel";
    case DType::kI4G32: return "i4_g32";
    case DType::kI4G64: return "i4_g64";
    case DType::kI4G128: return "i4_g128";
    case DType::kFP8E4M3Channel: return "fp8e4m3_channel";
    case DType::kInvalid: break;
  }
  return "invalid";
}

std::optional<DType> parse_dtype(std::string_view name) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "f32" || n == "fp32" || n == "float32" || n == "float") return DType::kF32;
  if (n == "f16" || n == "fp16" || n == "float16" || n == "half") return DType::kF16;
  if (n == "bf16" || n == "bfloat16") return DType::kBF16;
  if (n == "i32" || n == "int32") return DType::kI32;
  if (n == "i64" || n == "int64") return DType::kI64;
  if (n == "i8" || n == "int8") return DType::kI8;
  if (n == "u8" || n == "uint8") return DType::kU8;
  if (n == "fp8e4m3" || n == "fp8" || n == "float8_e4m3fn" || n == "f8e4m3") return DType::kFP8E4M3;
  if (n == "fp8e5m2" || n == "float8_e5m2" || n == "f8e5m2") return DType::kFP8E5M2;
  if (n == "int4") return DType::kI4G128;
  for (int i = int(DType::kQ8_0); i < kDTypeCount; ++i)
    if (n == dtype_name(DType(i))) return DType(i);
  return std::nullopt;
}

}  // namespace hal
