// hal/fp8.h: the OCP 8-bit float formats as scalars: e4m3fn (no infinities, max 448,
// NaN = S.1111.111) and e5m2 (IEEE-like: max 57344, infinities and NaN).
//
// Contract
// - Decoding is exact. Encoding rounds to nearest even and saturates finite overflow
//   (and, for e4m3fn, infinities) to the largest finite value, as the satfinite
//   conversions of accelerators do; NaN stays NaN; the sign of zero is kept.
// - These are the reference conversions: the simulated NPU's numerics and the
//   collectives' reductions of fp8 data both use them, so every backend that reduces fp8
//   agrees bit for bit.
//
// Threading: pure functions.
#pragma once

#include <cstdint>

namespace hal {

float fp8e4m3_to_float(uint8_t v);
float fp8e5m2_to_float(uint8_t v);
uint8_t float_to_fp8e4m3(float f);
uint8_t float_to_fp8e5m2(float f);

}  // namespace hal
