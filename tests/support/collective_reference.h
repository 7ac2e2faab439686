// tests/support/collective_reference.h: the serial reference every collective test
// compares against (hal/collective.h states the semantics): for each element, the fold
// over ranks 0..n-1 written out plainly (floats accumulated in f32 and rounded once,
// integers wrapping), and the expected receive buffer of each kind. Also random inputs of
// every dtype.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "hal/collective.h"
#include "hal/dtype.h"
#include "hal/fp8.h"

namespace hal::test {

using Bytes = std::vector<uint8_t>;

inline const std::vector<DType>& collective_dtypes() {
  static const std::vector<DType> all = {DType::kF32, DType::kF16,     DType::kBF16,
                                         DType::kI32, DType::kI64,     DType::kI8,
                                         DType::kU8,  DType::kFP8E4M3, DType::kFP8E5M2};
  return all;
}

inline double element_as_double(DType t, const uint8_t* p) {
  switch (t) {
    case DType::kF32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kF16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return f16_to_float(v);
    }
    case DType::kBF16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return bf16_to_float(v);
    }
    case DType::kFP8E4M3:
      return fp8e4m3_to_float(*p);
    case DType::kFP8E5M2:
      return fp8e5m2_to_float(*p);
    case DType::kI32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kI64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return double(v);
    }
    case DType::kI8:
      return double(int8_t(*p));
    case DType::kU8:
      return double(*p);
    default:
      return 0;
  }
}

// `count` random elements: floats drawn from [-4, 4] and stored in the dtype, integers
// over their whole range (so sums wrap).
inline Bytes random_elements(DType t, uint64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> real(-4.f, 4.f);
  const uint32_t e = dtype_size(t);
  Bytes out(count * e);
  for (uint64_t i = 0; i < count; ++i) {
    uint8_t* p = out.data() + i * e;
    const float f = real(rng);
    switch (t) {
      case DType::kF32:
        std::memcpy(p, &f, 4);
        break;
      case DType::kF16: {
        const uint16_t v = float_to_f16(f);
        std::memcpy(p, &v, 2);
        break;
      }
      case DType::kBF16: {
        const uint16_t v = float_to_bf16(f);
        std::memcpy(p, &v, 2);
        break;
      }
      case DType::kFP8E4M3:
        *p = float_to_fp8e4m3(f);
        break;
      case DType::kFP8E5M2:
        *p = float_to_fp8e5m2(f);
        break;
      default: {
        const uint64_t bits = rng();
        std::memcpy(p, &bits, e);
        break;
      }
    }
  }
  return out;
}

// One element of the serial fold over `inputs` (each a whole array) at element `i`.
inline void reference_fold(DType t, Reduction op, const std::vector<const uint8_t*>& inputs,
                           uint64_t i, uint8_t* out) {
  const uint32_t e = dtype_size(t);
  if (is_floating(t)) {
    auto load = [&](const uint8_t* p) { return float(element_as_double(t, p + i * e)); };
    float acc = load(inputs[0]);
    for (size_t k = 1; k < inputs.size(); ++k) {
      const float x = load(inputs[k]);
      switch (op) {
        case Reduction::kSum:
          acc = acc + x;
          break;
        case Reduction::kProd:
          acc = acc * x;
          break;
        case Reduction::kMin:
          acc = (std::isnan(acc) || std::isnan(x)) ? NAN : std::min(acc, x);
          break;
        case Reduction::kMax:
          acc = (std::isnan(acc) || std::isnan(x)) ? NAN : std::max(acc, x);
          break;
      }
    }
    switch (t) {
      case DType::kF32:
        std::memcpy(out, &acc, 4);
        break;
      case DType::kF16: {
        const uint16_t v = float_to_f16(acc);
        std::memcpy(out, &v, 2);
        break;
      }
      case DType::kBF16: {
        const uint16_t v = float_to_bf16(acc);
        std::memcpy(out, &v, 2);
        break;
      }
      case DType::kFP8E4M3:
        *out = float_to_fp8e4m3(acc);
        break;
      case DType::kFP8E5M2:
        *out = float_to_fp8e5m2(acc);
        break;
      default:
        break;
    }
    return;
  }
  // Integers: signed compare for min/max, sums and products modulo 2^bits.
  auto load_signed = [&](const uint8_t* p) -> int64_t {
    const uint8_t* q = p + i * e;
    switch (t) {
      case DType::kI32: {
        int32_t v;
        std::memcpy(&v, q, 4);
        return v;
      }
      case DType::kI64: {
        int64_t v;
        std::memcpy(&v, q, 8);
        return v;
      }
      case DType::kI8:
        return int8_t(*q);
      default:
        return *q;  // u8
    }
  };
  int64_t acc = load_signed(inputs[0]);
  for (size_t k = 1; k < inputs.size(); ++k) {
    const int64_t x = load_signed(inputs[k]);
    switch (op) {
      case Reduction::kSum:
        acc = int64_t(uint64_t(acc) + uint64_t(x));
        break;
      case Reduction::kProd:
        acc = int64_t(uint64_t(acc) * uint64_t(x));
        break;
      case Reduction::kMin:
        acc = std::min(acc, x);
        break;
      case Reduction::kMax:
        acc = std::max(acc, x);
        break;
    }
  }
  std::memcpy(out, &acc, e);  // little-endian: the low bytes are the wrapped value
}

// What rank `rank`'s recv buffer holds after `s`, given every rank's send buffer.
inline Bytes expected_recv(const CollectiveShape& s, int32_t rank, int32_t size,
                           const std::vector<Bytes>& sends) {
  const uint32_t e = dtype_size(s.dtype);
  const uint64_t block = s.count * e;
  Bytes out(s.recv_bytes(rank, size));
  switch (s.kind) {
    case CollectiveKind::kAllReduce:
    case CollectiveKind::kReduceScatter: {
      const uint64_t base = s.kind == CollectiveKind::kReduceScatter ? uint64_t(rank) * block : 0;
      std::vector<const uint8_t*> inputs;
      for (const Bytes& b : sends) inputs.push_back(b.data() + base);
      for (uint64_t i = 0; i < s.count; ++i)
        reference_fold(s.dtype, s.reduction, inputs, i, out.data() + i * e);
      break;
    }
    case CollectiveKind::kAllGather:
      for (int32_t i = 0; i < size; ++i)
        std::memcpy(out.data() + uint64_t(i) * block, sends[size_t(i)].data(), block);
      break;
    case CollectiveKind::kBroadcast:
      std::memcpy(out.data(), sends[size_t(s.peer)].data(), block);
      break;
    default:
      break;
  }
  return out;
}

}  // namespace hal::test
