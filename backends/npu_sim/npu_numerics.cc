#include "npu_numerics.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <memory>

#include "npu_parallel.h"

namespace hal::npu_sim {

namespace {

// Decodes an OCP fp8 byte with `mbits` mantissa bits and exponent `bias`.
float decode_fp8(uint8_t v, int mbits, int bias, bool has_inf) {
  const int ebits = 7 - mbits;
  const bool neg = v & 0x80;
  const int e = (v >> mbits) & ((1 << ebits) - 1);
  const int m = v & ((1 << mbits) - 1);
  float r;
  if (has_inf && e == (1 << ebits) - 1) {
    r = m == 0 ? INFINITY : NAN;
  } else if (!has_inf && e == (1 << ebits) - 1 && m == (1 << mbits) - 1) {
    r = NAN;
  } else if (e == 0) {
    r = std::ldexp(float(m), 1 - bias - mbits);
  } else {
    r = std::ldexp(float(m + (1 << mbits)), e - bias - mbits);
  }
  return neg ? -r : r;
}

uint8_t encode_fp8(float f, int mbits, int bias, bool has_inf, float max_finite) {
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const int ebits = 7 - mbits;
  if (std::isnan(f)) return uint8_t(sign | (has_inf ? 0x7e : 0x7f));
  float a = std::fabs(f);
  if (std::isinf(a) && has_inf) return uint8_t(sign | (((1 << ebits) - 1) << mbits));
  if (a == 0) return sign;
  if (!(a <= max_finite)) a = max_finite;  // satfinite (also catches inf for e4m3fn)
  const int emin = 1 - bias;
  int e;
  std::frexp(a, &e);
  e -= 1;  // a = 1.x * 2^e
  if (e < emin) {
    // Subnormal: multiples of 2^(emin - mbits).
    const float q = std::nearbyint(std::ldexp(a, mbits - emin));
    const int m = int(q);
    if (m >= (1 << mbits)) return uint8_t(sign | (1 << mbits));  // rounds up to min normal
    return uint8_t(sign | m);
  }
  float q = std::nearbyint(std::ldexp(a, mbits - e));  // in [2^mbits, 2^(mbits+1)]
  if (q >= float(1 << (mbits + 1))) {
    q = float(1 << mbits);
    ++e;
  }
  const int biased = e + bias;
  uint8_t out = uint8_t(sign | (biased << mbits) | (int(q) - (1 << mbits)));
  // Rounding may step past the largest finite value; saturate.
  const float back = std::fabs(decode_fp8(out, mbits, bias, has_inf));
  if (!(back <= max_finite))
    return encode_fp8(std::signbit(f) ? -max_finite : max_finite, mbits, bias, has_inf, max_finite);
  return out;
}

struct Fp8Tables {
  std::array<float, 256> e4m3, e5m2;
  Fp8Tables() {
    for (int i = 0; i < 256; ++i) {
      e4m3[size_t(i)] = decode_fp8(uint8_t(i), 3, 7, false);
      e5m2[size_t(i)] = decode_fp8(uint8_t(i), 2, 15, true);
    }
  }
};
const Fp8Tables& fp8_tables() {
  static const Fp8Tables t;
  return t;
}

// Strides of `t` as seen from an iteration over `shape` (right-aligned broadcast).
void broadcast_strides(const TensorDesc& t, const Shape& shape, int64_t* strides) {
  const int r = shape.rank;
  for (int i = 0; i < r; ++i) {
    const int j = i - (r - t.shape.rank);
    strides[i] = (j < 0 || t.shape.dims[j] == 1) ? 0 : t.strides[j];
  }
}

template <typename Load>
void gather_rows(const Shape& shape, const int64_t* strides, float* out, Load&& load, bool round) {
  const int r = shape.rank;
  const int64_t inner = r == 0 ? 1 : shape.dims[r - 1];
  const int64_t inner_stride = r == 0 ? 0 : strides[r - 1];
  const int64_t total = shape.numel();
  if (total <= 0 || inner <= 0) return;
  const int64_t rows = total / inner;
  const int64_t grain = std::max<int64_t>(1, 16384 / inner);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      // Offset of the row's first element.
      int64_t rem = row, off = 0;
      for (int d = r - 2; d >= 0; --d) {
        const int64_t idx = rem % shape.dims[d];
        rem /= shape.dims[d];
        off += idx * strides[d];
      }
      float* o = out + row * inner;
      if (round) {
        for (int64_t j = 0; j < inner; ++j) o[j] = round_to_bf16(load(off + j * inner_stride));
      } else {
        for (int64_t j = 0; j < inner; ++j) o[j] = load(off + j * inner_stride);
      }
    }
  });
}

}  // namespace

float* scratch_floats(ScratchSlot slot, size_t count) {
  struct Slots {
    std::unique_ptr<float[]> data[int(ScratchSlot::kCount)];
    size_t size[int(ScratchSlot::kCount)] = {};
  };
  thread_local Slots slots;
  const int i = int(slot);
  if (slots.size[i] < count || !slots.data[i]) {
    slots.data[i].reset(new float[std::max<size_t>(count, 1)]);
    slots.size[i] = std::max<size_t>(count, 1);
  }
  return slots.data[i].get();
}

float fp8e4m3_to_float(uint8_t v) { return fp8_tables().e4m3[v]; }
float fp8e5m2_to_float(uint8_t v) { return fp8_tables().e5m2[v]; }
uint8_t float_to_fp8e4m3(float f) { return encode_fp8(f, 3, 7, false, 448.0f); }
uint8_t float_to_fp8e5m2(float f) { return encode_fp8(f, 2, 15, true, 57344.0f); }

float load_element(const void* base, DType t, int64_t i) {
  switch (t) {
    case DType::kFP8E4M3:
      return fp8e4m3_to_float(static_cast<const uint8_t*>(base)[i]);
    case DType::kFP8E5M2:
      return fp8e5m2_to_float(static_cast<const uint8_t*>(base)[i]);
    default:
      return load_as_float(base, t, i);
  }
}

void store_element(void* base, DType t, int64_t i, float v) {
  switch (t) {
    case DType::kFP8E4M3:
      static_cast<uint8_t*>(base)[i] = float_to_fp8e4m3(v);
      break;
    case DType::kFP8E5M2:
      static_cast<uint8_t*>(base)[i] = float_to_fp8e5m2(v);
      break;
    default:
      store_from_float(base, t, i, v);
      break;
  }
}

void gather_f32(const void* base, const TensorDesc& t, const Shape& shape, float* out,
                Rounding rounding) {
  int64_t strides[kMaxRank] = {};
  broadcast_strides(t, shape, strides);
  const bool round = rounding == Rounding::kBf16 && t.dtype == DType::kF32;
  switch (t.dtype) {
    case DType::kF32: {
      const float* p = static_cast<const float*>(base);
      gather_rows(
          shape, strides, out, [p](int64_t i) { return p[i]; }, round);
      break;
    }
    case DType::kF16: {
      const uint16_t* p = static_cast<const uint16_t*>(base);
      gather_rows(
          shape, strides, out, [p](int64_t i) { return f16_to_float(p[i]); }, false);
      break;
    }
    case DType::kBF16: {
      const uint16_t* p = static_cast<const uint16_t*>(base);
      gather_rows(
          shape, strides, out, [p](int64_t i) { return bf16_to_float(p[i]); }, false);
      break;
    }
    default: {
      const DType dt = t.dtype;
      gather_rows(
          shape, strides, out, [base, dt](int64_t i) { return load_element(base, dt, i); }, false);
      break;
    }
  }
}

void scatter_f32(const float* in, void* base, const TensorDesc& t) {
  const Shape& shape = t.shape;
  const int r = shape.rank;
  const int64_t inner = r == 0 ? 1 : shape.dims[r - 1];
  const int64_t inner_stride = r == 0 ? 0 : t.strides[r - 1];
  const int64_t total = shape.numel();
  if (total <= 0 || inner <= 0) return;
  const int64_t rows = total / inner;
  const int64_t grain = std::max<int64_t>(1, 16384 / inner);
  const DType dt = t.dtype;
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      int64_t rem = row, off = 0;
      for (int d = r - 2; d >= 0; --d) {
        const int64_t idx = rem % shape.dims[d];
        rem /= shape.dims[d];
        off += idx * t.strides[d];
      }
      const float* src = in + row * inner;
      switch (dt) {
        case DType::kF32: {
          float* p = static_cast<float*>(base);
          for (int64_t j = 0; j < inner; ++j) p[off + j * inner_stride] = src[j];
          break;
        }
        case DType::kBF16: {
          uint16_t* p = static_cast<uint16_t*>(base);
          for (int64_t j = 0; j < inner; ++j) p[off + j * inner_stride] = float_to_bf16(src[j]);
          break;
        }
        case DType::kF16: {
          uint16_t* p = static_cast<uint16_t*>(base);
          for (int64_t j = 0; j < inner; ++j) p[off + j * inner_stride] = float_to_f16(src[j]);
          break;
        }
        default:
          for (int64_t j = 0; j < inner; ++j)
            store_element(base, dt, off + j * inner_stride, src[j]);
          break;
      }
    }
  });
}

}  // namespace hal::npu_sim
