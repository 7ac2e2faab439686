// hal/dtype.h: element types and the scalar conversions every backend shares.
//
// Contract
// - `DType` values equal the C ABI's `hal_dtype` values (plugin_abi.h); they are
//   append-only and never renumbered.
// - f16 is IEEE binary16; bf16 is the upper half of an IEEE binary32. Conversions
//   from float round to nearest even and keep NaN/Inf; they are the reference every
//   backend is compared against.
// - fp8 (e4m3fn, e5m2) exists for planning and accounting; kernels need not support it.
// - Quantized weight formats (ABI 1.2; exact layouts in hal/op.h, "Quantized weight
//   formats") have no per-element size: dtype_size() is 0 for them. Their elements come
//   in blocks along a tensor's last dim; dtype_row_bytes() gives the bytes of a row.
//
// Threading: pure functions.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace hal {

enum class DType : int32_t {
  kInvalid = 0,
  kF32 = 1,
  kF16 = 2,
  kBF16 = 3,
  kI32 = 4,
  kI64 = 5,
  kI8 = 6,
  kU8 = 7,
  kFP8E4M3 = 8,
  kFP8E5M2 = 9,
  // ---- appended in ABI 1.2: quantized weight formats (layouts in hal/op.h) ----
  kQ8_0 = 10,  // GGUF block formats, bit-exact with the GGUF specification
  kQ4_0 = 11,
  kQ4_1 = 12,
  kQ5_0 = 13,
  kQ5_1 = 14,
  kQ4_K = 15,
  kQ5_K = 16,
  kQ6_K = 17,
  kI8Channel = 18,       // int8, one f32 scale per row (output channel)
  kI4G32 = 19,           // int4, f16 scale and u8 zero point per group of 32 (AWQ/GPTQ)
  kI4G64 = 20,           //   ... per group of 64
  kI4G128 = 21,          //   ... per group of 128
  kFP8E4M3Channel = 22,  // fp8 e4m3fn, one f32 scale per row
};
inline constexpr int kDTypeCount = 23;  // one past the largest value

// Bytes per element; 0 for kInvalid.
constexpr uint32_t dtype_size(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
      return 2;
    case DType::kI64:
      return 8;
    case DType::kI8:
    case DType::kU8:
    case DType::kFP8E4M3:
    case DType::kFP8E5M2:
      return 1;
    default:  // kInvalid and the quantized formats
      break;
  }
  return 0;
}

// ---- quantized formats ---------------------------------------------------------------

constexpr bool is_quantized(DType t) { return int(t) >= 10 && int(t) < kDTypeCount; }
// A known dtype other than kInvalid.
constexpr bool is_valid_dtype(DType t) { return int(t) > 0 && int(t) < kDTypeCount; }

// How a quantized format packs a row: `block` elements per block of `block_bytes`
// bytes, after a `row_header_bytes` header (the per-row scale of the per-channel
// formats). A row's length must be a multiple of `block`.
struct QuantLayout {
  int32_t block = 1;
  int32_t block_bytes = 0;
  int32_t row_header_bytes = 0;
};
constexpr QuantLayout quant_layout(DType t) {
  switch (t) {
    case DType::kQ8_0: return {32, 34, 0};
    case DType::kQ4_0: return {32, 18, 0};
    case DType::kQ4_1: return {32, 20, 0};
    case DType::kQ5_0: return {32, 22, 0};
    case DType::kQ5_1: return {32, 24, 0};
    case DType::kQ4_K: return {256, 144, 0};
    case DType::kQ5_K: return {256, 176, 0};
    case DType::kQ6_K: return {256, 210, 0};
    case DType::kI8Channel: return {32, 32, 4};
    case DType::kI4G32: return {32, 20, 0};
    case DType::kI4G64: return {64, 36, 0};
    case DType::kI4G128: return {128, 68, 0};
    case DType::kFP8E4M3Channel: return {32, 32, 4};
    default: break;
  }
  return {1, int32_t(dtype_size(t)), 0};
}

// Elements per block (1 for unquantized dtypes): a row's length must be a multiple.
constexpr int64_t dtype_block(DType t) { return quant_layout(t).block; }

// Bytes of one row of `n` elements (n a multiple of dtype_block(t)).
constexpr uint64_t dtype_row_bytes(DType t, int64_t n) {
  const QuantLayout l = quant_layout(t);
  if (n <= 0) return 0;
  return uint64_t(l.row_header_bytes) + uint64_t(n / l.block) * uint64_t(l.block_bytes);
}

// Bytes of a dense tensor of `numel` elements in rows of `row` elements.
constexpr uint64_t dtype_dense_bytes(DType t, int64_t numel, int64_t row) {
  if (numel <= 0) return 0;
  if (!is_quantized(t)) return uint64_t(numel) * dtype_size(t);
  if (row <= 0) return 0;
  return uint64_t(numel / row) * dtype_row_bytes(t, row);
}

constexpr bool is_floating(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16 || t == DType::kFP8E4M3 ||
         t == DType::kFP8E5M2;
}
constexpr bool is_integer(DType t) {
  return t == DType::kI32 || t == DType::kI64 || t == DType::kI8 || t == DType::kU8;
}

// Canonical lower-case names: "f32", "f16", "bf16", "i32", "i64", "i8", "u8",
// "fp8e4m3", "fp8e5m2", and for the quantized formats "q8_0", "q4_0", "q4_1", "q5_0",
// "q5_1", "q4_k", "q5_k", "q6_k", "i8_channel", "i4_g32", "i4_g64", "i4_g128",
// "fp8e4m3_channel".
std::string_view dtype_name(DType t);
// Accepts the canonical names and common aliases ("float32", "fp32", "float16",
// "fp16", "half", "bfloat16", "int32", "int8", "fp8"; "int4" is i4_g128). Case-insensitive.
std::optional<DType> parse_dtype(std::string_view name);

// ---- scalar conversions -------------------------------------------------------

inline float bf16_to_float(uint16_t v) { return std::bit_cast<float>(uint32_t(v) << 16); }

inline uint16_t float_to_bf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                          // nearest even
  return uint16_t(u >> 16);
}

// Rounds a float to the nearest bf16 value and returns it as float.
inline float round_to_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

inline float f16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

inline uint16_t float_to_f16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // overflow (rounds to Inf)
  if (abs < 0x38800000u) {                                  // subnormal or zero in f16
    if (abs < 0x33000000u) return uint16_t(sign);          // below half the smallest subnormal
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;  // 14..24
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);  // nearest even on the dropped 13 bits
  r -= (127u - 15u) << 23;
  return uint16_t(sign | (r >> 13));
}

inline float round_to_f16(float f) { return f16_to_float(float_to_f16(f)); }

// Loads element `i` of a contiguous array of `t` as float (integers convert exactly
// within float's range). Precondition: t is not kInvalid or fp8.
inline float load_as_float(const void* base, DType t, int64_t i) {
  switch (t) {
    case DType::kF32:
      return static_cast<const float*>(base)[i];
    case DType::kF16:
      return f16_to_float(static_cast<const uint16_t*>(base)[i]);
    case DType::kBF16:
      return bf16_to_float(static_cast<const uint16_t*>(base)[i]);
    case DType::kI32:
      return float(static_cast<const int32_t*>(base)[i]);
    case DType::kI64:
      return float(static_cast<const int64_t*>(base)[i]);
    case DType::kI8:
      return float(static_cast<const int8_t*>(base)[i]);
    case DType::kU8:
      return float(static_cast<const uint8_t*>(base)[i]);
    default:
      return 0.f;
  }
}

// Stores `v` into element `i` of a contiguous array of `t`, rounding to nearest even
// for f16/bf16 and saturating then truncating toward zero for integers.
inline void store_from_float(void* base, DType t, int64_t i, float v) {
  auto sat = [](float x, float lo, float hi) { return x != x ? 0.f : (x < lo ? lo : (x > hi ? hi : x)); };
  switch (t) {
    case DType::kF32:
      static_cast<float*>(base)[i] = v;
      break;
    case DType::kF16:
      static_cast<uint16_t*>(base)[i] = float_to_f16(v);
      break;
    case DType::kBF16:
      static_cast<uint16_t*>(base)[i] = float_to_bf16(v);
      break;
    case DType::kI32:
      static_cast<int32_t*>(base)[i] = int32_t(sat(v, -2147483648.f, 2147483520.f));
      break;
    case DType::kI64:
      static_cast<int64_t*>(base)[i] = int64_t(sat(v, -9.2233720e18f, 9.2233715e18f));
      break;
    case DType::kI8:
      static_cast<int8_t*>(base)[i] = int8_t(sat(v, -128.f, 127.f));
      break;
    case DType::kU8:
      static_cast<uint8_t*>(base)[i] = uint8_t(sat(v, 0.f, 255.f));
      break;
    default:
      break;
  }
}

}  // namespace hal
