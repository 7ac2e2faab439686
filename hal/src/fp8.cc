#include "hal/fp8.h"

#include <array>
#include <cmath>

namespace hal {

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

}  // namespace

float fp8e4m3_to_float(uint8_t v) { return fp8_tables().e4m3[v]; }
float fp8e5m2_to_float(uint8_t v) { return fp8_tables().e5m2[v]; }
uint8_t float_to_fp8e4m3(float f) { return encode_fp8(f, 3, 7, false, 448.0f); }
uint8_t float_to_fp8e5m2(float f) { return encode_fp8(f, 2, 15, true, 57344.0f); }

}  // namespace hal
