// HAL value types: Status/Result and their macros, unit formatting, dtype names and the
// f16/bf16 conversions every backend is compared against (round to nearest even, NaN,
// Inf, subnormals; exhaustive round trips).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <string>

#include "hal/dtype.h"
#include "hal/status.h"
#include "hal/units.h"

namespace hal {
namespace {

TEST(Status, OkAndErrorsCarryCodeAndMessage) {
  const Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.code(), StatusCode::kOk);
  EXPECT_EQ(ok.to_string(), "ok");
  const Status oom = out_of_memory("cpu:0: cannot allocate 2.0 GiB");
  EXPECT_FALSE(oom.ok());
  EXPECT_EQ(oom.code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(oom.to_string(), "out of memory: cpu:0: cannot allocate 2.0 GiB");
  EXPECT_EQ(oom.with_context("load model").message(), "load model: cpu:0: cannot allocate 2.0 GiB");
  EXPECT_TRUE(ok.with_context("ignored").ok());
}

TEST(Status, EveryCodeHasAStableName) {
  EXPECT_EQ(status_code_name(StatusCode::kInvalidArgument), "invalid argument");
  EXPECT_EQ(status_code_name(StatusCode::kNotFound), "not found");
  EXPECT_EQ(status_code_name(StatusCode::kUnimplemented), "unimplemented");
  EXPECT_EQ(status_code_name(StatusCode::kAbiMismatch), "ABI mismatch");
  EXPECT_EQ(status_code_name(StatusCode::kAborted), "aborted");
  EXPECT_EQ(status_code_name(StatusCode(99)), "unknown status");
  // The helpers map to their codes.
  EXPECT_EQ(invalid_argument("x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(not_found("x").code(), StatusCode::kNotFound);
  EXPECT_EQ(unimplemented("x").code(), StatusCode::kUnimplemented);
  EXPECT_EQ(unavailable("x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(device_lost("x").code(), StatusCode::kDeviceLost);
  EXPECT_EQ(failed_precondition("x").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(internal_error("x").code(), StatusCode::kInternal);
  EXPECT_EQ(deadline_exceeded("x").code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(data_loss("x").code(), StatusCode::kDataLoss);
  EXPECT_EQ(abi_mismatch("x").code(), StatusCode::kAbiMismatch);
  EXPECT_EQ(aborted("x").code(), StatusCode::kAborted);
}

Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("value " + std::to_string(v) + " is not positive");
  return v;
}

Result<int> doubled(int v) {
  HAL_ASSIGN_OR_RETURN(int x, parse_positive(v));
  return 2 * x;
}

Status check_both(int a, int b) {
  HAL_RETURN_IF_ERROR(parse_positive(a).status());
  HAL_RETURN_IF_ERROR(parse_positive(b).status());
  return ok_status();
}

TEST(Result, HoldsAValueOrAnError) {
  Result<int> good = parse_positive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  EXPECT_EQ(good.value_or(7), 3);
  Result<int> bad = parse_positive(-1);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "value -1 is not positive");
  EXPECT_EQ(bad.value_or(7), 7);
  // An ok Status cannot make a Result without a value: it becomes an internal error.
  Result<int> broken{ok_status()};
  EXPECT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), StatusCode::kInternal);
  // Move-only values.
  Result<std::unique_ptr<int>> owned = std::make_unique<int>(5);
  ASSERT_TRUE(owned.ok());
  std::unique_ptr<int> taken = std::move(owned).value();
  EXPECT_EQ(*taken, 5);
}

TEST(Result, MacrosPropagateTheFirstError) {
  EXPECT_EQ(*doubled(4), 8);
  EXPECT_EQ(doubled(0).status().message(), "value 0 is not positive");
  EXPECT_TRUE(check_both(1, 2).ok());
  EXPECT_EQ(check_both(1, -2).message(), "value -2 is not positive");
  EXPECT_EQ(check_both(-1, -2).message(), "value -1 is not positive");
}

TEST(Units, HumanReadableFigures) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(uint64_t(16) << 30), "16.0 GiB");
  EXPECT_EQ(format_rate(256e9), "256.0 GB/s");
  EXPECT_EQ(format_flops(32e12), "32.0 TFLOP/s");
  EXPECT_EQ(format_seconds(0.00125), "1.250 ms");
  EXPECT_EQ(format_seconds(2.5), "2.500 s");
  EXPECT_EQ(format_seconds(3e-6), "3.000 us");
}

TEST(DType, NamesSizesAndAliases) {
  EXPECT_EQ(dtype_size(DType::kF32), 4u);
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
  EXPECT_EQ(dtype_size(DType::kI64), 8u);
  EXPECT_EQ(dtype_size(DType::kFP8E4M3), 1u);
  EXPECT_EQ(dtype_size(DType::kInvalid), 0u);
  for (int i = 1; i < kDTypeCount; ++i) {
    const DType t = DType(i);
    auto parsed = parse_dtype(dtype_name(t));
    ASSERT_TRUE(parsed.has_value()) << dtype_name(t);
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(parse_dtype("Float32"), DType::kF32);
  EXPECT_EQ(parse_dtype("HALF"), DType::kF16);
  EXPECT_EQ(parse_dtype("bfloat16"), DType::kBF16);
  EXPECT_EQ(parse_dtype("fp8"), DType::kFP8E4M3);
  EXPECT_FALSE(parse_dtype("float128").has_value());
  EXPECT_TRUE(is_floating(DType::kBF16));
  EXPECT_FALSE(is_floating(DType::kI32));
  EXPECT_TRUE(is_integer(DType::kU8));
}

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }
float from_bits(uint32_t u) { return std::bit_cast<float>(u); }

TEST(DType, F16RoundsToNearestEven) {
  EXPECT_EQ(float_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(float_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(float_to_f16(65504.0f), 0x7BFF);  // largest finite
  EXPECT_EQ(float_to_f16(65519.0f), 0x7BFF);  // below the midpoint to 65536
  EXPECT_EQ(float_to_f16(65520.0f), 0x7C00);  // midpoint: ties to even = Inf
  EXPECT_EQ(float_to_f16(1e9f), 0x7C00);
  // Ties between neighbours 2^-10 apart round to the even mantissa.
  EXPECT_EQ(float_to_f16(1.0f + 0x1p-11f), 0x3C00);
  EXPECT_EQ(float_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02);
  EXPECT_EQ(float_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);  // just above the tie
  EXPECT_EQ(round_to_f16(0.1f), f16_to_float(0x2E66));
}

TEST(DType, F16SubnormalsInfAndNan) {
  EXPECT_EQ(float_to_f16(0x1p-24f), 0x0001);      // smallest subnormal
  EXPECT_EQ(float_to_f16(0x1p-25f), 0x0000);      // half of it: tie to even (0)
  EXPECT_EQ(float_to_f16(0x1.8p-25f), 0x0001);    // above half rounds up
  EXPECT_EQ(float_to_f16(3 * 0x1p-25f), 0x0002);  // 1.5 ulp: tie to even (2)
  EXPECT_EQ(float_to_f16(-0x1p-30f), 0x8000);     // underflow keeps the sign
  EXPECT_EQ(float_to_f16(0x1.ffcp-15f), 0x0400);  // tie past the largest subnormal: up
  EXPECT_EQ(f16_to_float(0x0001), 0x1p-24f);
  EXPECT_EQ(f16_to_float(0x03FF), 1023 * 0x1p-24f);
  EXPECT_EQ(f16_to_float(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_float(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(float_to_f16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(float_to_f16(std::numeric_limits<float>::quiet_NaN()), 0x7E00);
  EXPECT_TRUE(std::isnan(f16_to_float(0x7C01)));  // signalling NaN stays NaN
  EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(from_bits(0x7F800001)))));
  EXPECT_EQ(float_to_f16(-0.0f), 0x8000);
}

TEST(DType, F16EveryValueRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_float(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE((h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0) << h;
      EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(f))));
    } else {
      ASSERT_EQ(float_to_f16(f), h) << "f16 bits " << h << " -> " << f;
    }
  }
}

TEST(DType, Bf16RoundsToNearestEvenAndKeepsSpecials) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bf16(from_bits(0x3F808000)), 0x3F80);              // tie -> even
  EXPECT_EQ(float_to_bf16(from_bits(0x3F818000)), 0x3F82);              // tie -> even (up)
  EXPECT_EQ(float_to_bf16(from_bits(0x3F808001)), 0x3F81);              // above the tie
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds to Inf
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::quiet_NaN()), 0x7FC0);
  // A signalling NaN whose payload lives only in the low bits must not become Inf.
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(from_bits(0x7F800001)))));
  EXPECT_EQ(float_to_bf16(from_bits(0x00008000)), 0x0000);  // subnormal tie -> even
  EXPECT_EQ(float_to_bf16(from_bits(0x00018000)), 0x0002);
  EXPECT_EQ(bf16_to_float(0x0001), from_bits(0x00010000));  // subnormal decodes exactly
  EXPECT_EQ(round_to_bf16(3.14159f), 3.140625f);
}

TEST(DType, Bf16EveryValueRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_float(uint16_t(h));
    EXPECT_EQ(bits(f), h << 16);
    if (std::isnan(f))
      EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(f))));
    else
      ASSERT_EQ(float_to_bf16(f), h) << h;
  }
}

TEST(DType, StoreSaturatesIntegersAndLoadsEveryType) {
  int8_t i8 = 0;
  store_from_float(&i8, DType::kI8, 0, 300.7f);
  EXPECT_EQ(i8, 127);
  store_from_float(&i8, DType::kI8, 0, -2.9f);
  EXPECT_EQ(i8, -2);  // truncation toward zero
  uint8_t u8 = 9;
  store_from_float(&u8, DType::kU8, 0, -5.0f);
  EXPECT_EQ(u8, 0);
  store_from_float(&u8, DType::kU8, 0, std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(u8, 0);
  uint16_t h = 0;
  store_from_float(&h, DType::kF16, 0, 0.5f);
  EXPECT_EQ(h, 0x3800);
  EXPECT_EQ(load_as_float(&h, DType::kF16, 0), 0.5f);
  const int64_t big[2] = {-3, 1 << 20};
  EXPECT_EQ(load_as_float(big, DType::kI64, 1), 1048576.0f);
}

}  // namespace
}  // namespace hal
