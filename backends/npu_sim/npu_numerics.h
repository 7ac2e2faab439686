// backends/npu_sim/npu_numerics.h: element conversions of the simulated NPU, and the
// gather/scatter between strided tensors of any dtype and dense fp32 working arrays
// (what the device's DMA does when it stages a tensor into SRAM).
//
// fp8 (OCP 8-bit floats) converts with the HAL's reference conversions (hal/fp8.h:
// nearest even, satfinite, NaN kept).
//
// Contract: gather_f32 writes shape.numel() floats in row-major order of `shape`; the
// source view is right-aligned against `shape` with size-1 (or missing) dims broadcast.
// scatter_f32 writes every element of the view, rounding to its dtype (integers:
// truncation toward zero with saturation, as hal::store_from_float). Strides may be any
// non-negative values.
//
// Threading: pure functions (large tensors are processed on the simulator's pool).
#pragma once

#include <cstdint>

#include "hal/fp8.h"
#include "hal/op.h"

namespace hal::npu_sim {

using hal::float_to_fp8e4m3;
using hal::float_to_fp8e5m2;
using hal::fp8e4m3_to_float;
using hal::fp8e5m2_to_float;

// Element `i` (in elements) of a contiguous array of `t` as float (any dtype but kInvalid).
float load_element(const void* base, DType t, int64_t i);
// Stores `v` as element `i` of an array of `t`.
void store_element(void* base, DType t, int64_t i, float v);

// How values are rounded when staged for a matrix engine (README.md, "Numerics").
enum class Rounding : int32_t { kNone = 0, kBf16 = 1 };

void gather_f32(const void* base, const TensorDesc& t, const Shape& shape, float* out,
                Rounding rounding = Rounding::kNone);
void scatter_f32(const float* in, void* base, const TensorDesc& t);

// Per-thread working memory of the kernels' top level (never inside parallel bodies),
// reused across calls so large ops do not fault fresh pages every time. Grows to the
// largest request of each slot on each thread and is kept until the thread exits.
enum class ScratchSlot : int {
  kAttentionQ = 0,
  kAttentionK,
  kAttentionV,
  kAttentionOut,
  kMatmulA,
  kMatmulB,
  kMatmulC,
  kMatmulOut,
  kCount
};
float* scratch_floats(ScratchSlot slot, size_t count);

inline float round_operand(float v, Rounding r) {
  return r == Rounding::kBf16 ? round_to_bf16(v) : v;
}

}  // namespace hal::npu_sim
