// Row conversions between tensor dtypes and f32 (declared in cpu_simd.h).
#include <cmath>
#include <cstring>

#include "cpu_simd.h"

namespace hal::cpu {

namespace {

// The integer store rule of hal::reference: truncate toward zero in double, saturate,
// NaN -> 0.
template <typename T>
HAL_CPU_INLINE T saturate_to(float v, double lo, double hi) {
  if (v != v) return T(0);
  const double t = std::trunc(double(v));
  return T(t < lo ? lo : (t > hi ? hi : t));
}

}  // namespace

HAL_CPU_MULTIVERSION
void load_f32(const void* src, DType t, int64_t stride, int64_t n, float* dst) {
  switch (t) {
    case DType::kF32: {
      const float* s = static_cast<const float*>(src);
      if (stride == 1) {
        std::memcpy(dst, s, size_t(n) * sizeof(float));
      } else {
        for (int64_t i = 0; i < n; ++i) dst[i] = s[i * stride];
      }
      return;
    }
    case DType::kF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      if (stride == 1) {
        for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(s[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(s[i * stride]);
      }
      return;
    }
    case DType::kBF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
      if (stride == 1) {
        for (int64_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(uint32_t(s[i]) << 16);
      } else {
        for (int64_t i = 0; i < n; ++i)
          dst[i] = std::bit_cast<float>(uint32_t(s[i * stride]) << 16);
      }
      return;
    }
    default:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_as_float(src, t, i * stride);
      return;
  }
}

HAL_CPU_MULTIVERSION
void store_f32(void* dst, DType t, int64_t stride, int64_t n, const float* src) {
  switch (t) {
    case DType::kF32: {
      float* d = static_cast<float*>(dst);
      if (stride == 1) {
        std::memcpy(d, src, size_t(n) * sizeof(float));
      } else {
        for (int64_t i = 0; i < n; ++i) d[i * stride] = src[i];
      }
      return;
    }
    case DType::kF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      if (stride == 1) {
        for (int64_t i = 0; i < n; ++i) d[i] = float_to_half(src[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) d[i * stride] = float_to_half(src[i]);
      }
      return;
    }
    case DType::kBF16: {
      uint16_t* d = static_cast<uint16_t*>(dst);
      auto to_bf16 = [](float f) -> uint16_t {
        const uint32_t u = std::bit_cast<uint32_t>(f);
        const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        return uint16_t((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded);
      };
      if (stride == 1) {
        for (int64_t i = 0; i < n; ++i) d[i] = to_bf16(src[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) d[i * stride] = to_bf16(src[i]);
      }
      return;
    }
    case DType::kI32:
      for (int64_t i = 0; i < n; ++i)
        static_cast<int32_t*>(dst)[i * stride] =
            saturate_to<int32_t>(src[i], -2147483648.0, 2147483647.0);
      return;
    case DType::kI64:
      for (int64_t i = 0; i < n; ++i)
        static_cast<int64_t*>(dst)[i * stride] =
            saturate_to<int64_t>(src[i], -9.2233720368547758e18, 9.2233720368547748e18);
      return;
    case DType::kI8:
      for (int64_t i = 0; i < n; ++i)
        static_cast<int8_t*>(dst)[i * stride] = saturate_to<int8_t>(src[i], -128, 127);
      return;
    case DType::kU8:
      for (int64_t i = 0; i < n; ++i)
        static_cast<uint8_t*>(dst)[i * stride] = saturate_to<uint8_t>(src[i], 0, 255);
      return;
    default:
      return;
  }
}

}  // namespace hal::cpu
