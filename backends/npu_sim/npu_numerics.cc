#include "npu_numerics.h"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <memory>

#include "npu_parallel.h"

namespace hal::npu_sim {

namespace {

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
