// The quantized weight formats (hal/op.h, "Quantized weight formats"): sizes, names,
// the reference dequantization against values ggml gives for the same bytes, round trips
// through the reference quantizer, fp8 e4m3 coding, and the op rules for quantized
// operands.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "hal/op.h"
#include "hal/quant_reference.h"

namespace hal {
namespace {

TEST(QuantFormats, BlockSizesMatchTheGgufSpecification) {
  // (elements, bytes) per block, as the GGUF specification lists them.
  EXPECT_EQ(dtype_row_bytes(DType::kQ8_0, 32), 34u);
  EXPECT_EQ(dtype_row_bytes(DType::kQ4_0, 32), 18u);
  EXPECT_EQ(dtype_row_bytes(DType::kQ4_1, 32), 20u);
  EXPECT_EQ(dtype_row_bytes(DType::kQ5_0, 32), 22u);
  EXPECT_EQ(dtype_row_bytes(DType::kQ5_1, 32), 24u);
  EXPECT_EQ(dtype_row_bytes(DType::kQ4_K, 256), 144u);
  EXPECT_EQ(dtype_row_bytes(DType::kQ5_K, 256), 176u);
  EXPECT_EQ(dtype_row_bytes(DType::kQ6_K, 256), 210u);
  // Per-channel formats carry their f32 scale at the row start.
  EXPECT_EQ(dtype_row_bytes(DType::kI8Channel, 768), 772u);
  EXPECT_EQ(dtype_row_bytes(DType::kFP8E4M3Channel, 64), 68u);
  EXPECT_EQ(dtype_row_bytes(DType::kI4G128, 256), 136u);
  EXPECT_EQ(dtype_row_bytes(DType::kF16, 10), 20u);
  const TensorDesc w = TensorDesc::contiguous(DType::kQ4_K, Shape{3, 512});
  EXPECT_EQ(w.bytes(), 3u * 288u);
  EXPECT_EQ(w.extent_bytes(), 3u * 288u);
  EXPECT_EQ(w.offset_bytes_of(2 * 512), 2u * 288u);
  for (int i = int(DType::kQ8_0); i < kDTypeCount; ++i) {
    const DType t = DType(i);
    EXPECT_TRUE(is_quantized(t));
    EXPECT_EQ(dtype_size(t), 0u) << dtype_name(t);
    EXPECT_EQ(parse_dtype(dtype_name(t)), t) << dtype_name(t);
  }
  EXPECT_FALSE(is_quantized(DType::kF16));
  EXPECT_EQ(parse_dtype("Q4_K"), DType::kQ4_K);
  EXPECT_EQ(parse_dtype("int4"), DType::kI4G128);
}

struct Golden {
  DType t;
  std::vector<std::pair<int, double>> values;
  double sum;
};

// Bytes i*37+11 per block with d = 0.5 (dmin/m = -0.25; q6_K d = 0.0625); the values are
// what ggml's dequantize_row_* returns for those bytes (llama.cpp d775b89).
TEST(QuantFormats, DequantizationMatchesGgml) {
  const Golden golden[] = {
      {DType::kQ8_0, {{0, 42.5}, {1, 61}, {15, -64}, {16, -45.5}, {17, -27}, {31, -24}}, -88},
      {DType::kQ4_0, {{0, -1.5}, {1, 1}, {15, -4}, {16, -1.5}, {17, -0.5}, {31, 0}}, -10.5},
      {DType::kQ4_1, {{0, 7.25}, {1, 1.75}, {15, 4.75}, {16, 4.25}, {17, 5.75}, {31, 5.75}}, 114.5},
      {DType::kQ5_0, {{0, 4.5}, {1, -1}, {15, -6}, {16, 7}, {17, 0}, {31, 0.5}}, 7.5},
      {DType::kQ5_1,
       {{0, 9.25}, {1, 11.75}, {15, 14.75}, {16, 9.25}, {17, 2.25}, {31, 2.25}},
       244.5},
      {DType::kQ4_K,
       {{0, 183.25},
        {1, 12.75},
        {15, 105.75},
        {16, 183.25},
        {17, 12.75},
        {31, 105.75},
        {32, 16},
        {33, 22},
        {63, 32},
        {64, 240.75},
        {100, 64.5},
        {127, 57.5},
        {128, 217.5},
        {200, 77.75},
        {255, 41.75}},
       31444},
      {DType::kQ5_K,
       {{0, 431.25},
        {1, 12.75},
        {15, 105.75},
        {16, 431.25},
        {17, 12.75},
        {31, 105.75},
        {32, 68},
        {33, 10},
        {63, 52},
        {64, 240.75},
        {100, 134.5},
        {127, 15.5},
        {128, 529.5},
        {200, 77.75},
        {255, 71.75}},
       62332},
      {DType::kQ6_K,
       {{0, -89.4375},
        {1, 106},
        {15, -19.875},
        {16, -27},
        {17, 32},
        {31, -6},
        {32, 14.4375},
        {33, -42},
        {63, -36.25},
        {64, -190},
        {100, 157.6875},
        {127, 93.75},
        {128, -21.9375},
        {200, 68.0625},
        {255, -3.75}},
       288.25},
  };
  for (const Golden& g : golden) {
    const QuantLayout l = quant_layout(g.t);
    std::vector<uint8_t> block(size_t(l.block_bytes));
    for (int i = 0; i < l.block_bytes; ++i) block[size_t(i)] = uint8_t(i * 37 + 11);
    auto put = [&](int at, float v) {
      const uint16_t h = float_to_f16(v);
      std::memcpy(&block[size_t(at)], &h, 2);
    };
    if (g.t == DType::kQ6_K) {
      put(208, 0.0625f);
    } else {
      put(0, 0.5f);
      if (g.t == DType::kQ4_1 || g.t == DType::kQ5_1 || g.t == DType::kQ4_K || g.t == DType::kQ5_K)
        put(2, -0.25f);
    }
    std::vector<float> out(size_t(l.block));
    reference::dequantize_row(g.t, block.data(), out.data(), l.block);
    for (const auto& [i, v] : g.values)
      EXPECT_EQ(out[size_t(i)], float(v)) << dtype_name(g.t) << " element " << i;
    double sum = 0;
    for (float v : out) sum += v;
    EXPECT_EQ(sum, g.sum) << dtype_name(g.t);
  }
}

TEST(QuantFormats, PerChannelAndGroupLayouts) {
  // int8 per channel: f32 scale then the quants.
  std::vector<uint8_t> row(4 + 32);
  const float scale = 0.5f;
  std::memcpy(row.data(), &scale, 4);
  for (int i = 0; i < 32; ++i) row[size_t(4 + i)] = uint8_t(int8_t(i - 16));
  std::vector<float> out(32);
  reference::dequantize_row(DType::kI8Channel, row.data(), out.data(), 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(out[size_t(i)], 0.5f * float(i - 16));
  // int4 groups: f16 scale, u8 zero, reserved byte, element 2i low nibble of byte i.
  std::vector<uint8_t> g(20);
  const uint16_t h = float_to_f16(0.25f);
  std::memcpy(g.data(), &h, 2);
  g[2] = 3;
  for (int i = 0; i < 16; ++i) g[size_t(4 + i)] = uint8_t((i & 15) | ((15 - i) << 4));
  reference::dequantize_row(DType::kI4G32, g.data(), out.data(), 32);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(out[size_t(2 * i)], 0.25f * float(i - 3));
    EXPECT_EQ(out[size_t(2 * i + 1)], 0.25f * float(15 - i - 3));
  }
}

TEST(QuantFormats, Fp8E4M3CodesRoundTrip) {
  for (int b = 0; b < 256; ++b) {
    const float v = reference::fp8_e4m3_to_float(uint8_t(b));
    if (std::isnan(v)) {
      EXPECT_EQ(b & 0x7f, 0x7f);
      continue;
    }
    const uint8_t back = reference::float_to_fp8_e4m3(v);
    // +0 and -0 keep their sign; every other code maps to itself.
    EXPECT_EQ(back, uint8_t(b)) << b << " -> " << v;
  }
  EXPECT_EQ(reference::fp8_e4m3_to_float(0x7e), 448.0f);
  EXPECT_EQ(reference::float_to_fp8_e4m3(1e6f), 0x7e);  // saturates
  EXPECT_EQ(reference::float_to_fp8_e4m3(-1e6f), 0xfe);
  EXPECT_EQ(reference::fp8_e4m3_to_float(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  // 1.0625 lies halfway between 1 and 1.125: ties to even (1.0).
  EXPECT_EQ(reference::fp8_e4m3_to_float(reference::float_to_fp8_e4m3(1.0625f)), 1.0f);
}

TEST(QuantFormats, QuantizeDequantizeErrorIsBoundedPerFormat) {
  // Relative RMS error of N(0, 1) rows: each format within its bits' expectation.
  const std::pair<DType, double> bounds[] = {
      {DType::kQ8_0, 0.008},         {DType::kQ4_0, 0.11},  {DType::kQ4_1, 0.10},
      {DType::kQ5_0, 0.055},         {DType::kQ5_1, 0.05},  {DType::kQ4_K, 0.09},
      {DType::kQ5_K, 0.045},         {DType::kQ6_K, 0.025}, {DType::kI8Channel, 0.012},
      {DType::kI4G32, 0.11},         {DType::kI4G64, 0.12}, {DType::kI4G128, 0.13},
      {DType::kFP8E4M3Channel, 0.04}};
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(4096);
  for (float& v : x) v = dist(rng);
  for (const auto& [t, bound] : bounds) {
    const std::vector<uint8_t> q = reference::quantize_rows(t, x.data(), 4, 1024);
    ASSERT_EQ(q.size(), 4 * dtype_row_bytes(t, 1024));
    const std::vector<float> y = reference::dequantize_rows(t, q.data(), 4, 1024);
    double err = 0, ref = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      err += (y[i] - x[i]) * (y[i] - x[i]);
      ref += x[i] * x[i];
    }
    EXPECT_LT(std::sqrt(err / ref), bound) << dtype_name(t);
    EXPECT_GT(std::sqrt(err / ref), bound / 20) << dtype_name(t) << ": suspiciously exact";
  }
}

TensorDesc q(DType t, Shape s) { return TensorDesc::contiguous(t, s); }

TEST(QuantFormats, OpRulesForQuantizedOperands) {
  OpSpec mm;
  mm.kind = OpKind::kMatmul;
  mm.attrs.transpose_b = true;
  mm.num_inputs = 2;
  mm.inputs[0] = TensorDesc::contiguous(DType::kF32, Shape{2, 64});
  mm.inputs[1] = q(DType::kQ4_0, Shape{5, 64});
  mm.output = TensorDesc::contiguous(DType::kF32, Shape{2, 5});
  EXPECT_TRUE(validate_op(mm).ok()) << validate_op(mm).to_string();
  const OpCost cost = analytic_cost(mm);
  EXPECT_EQ(cost.bytes_read, 2u * 64 * 4 + 5u * 36);  // A in f32, B at 18 bytes per 32
  // Not transposed: refused, saying why.
  OpSpec bad = mm;
  bad.attrs.transpose_b = false;
  bad.inputs[1] = q(DType::kQ4_0, Shape{64, 5});
  EXPECT_NE(validate_op(bad).message().find("transpose_b"), std::string::npos);
  // A row length that is not a whole number of blocks.
  bad = mm;
  bad.inputs[0] = TensorDesc::contiguous(DType::kF32, Shape{2, 48});
  bad.inputs[1] = q(DType::kQ4_0, Shape{5, 48});
  EXPECT_NE(validate_op(bad).message().find("blocks of 32"), std::string::npos)
      << validate_op(bad).to_string();
  // A view that splits rows.
  bad = mm;
  bad.inputs[1].strides[0] = 32;
  EXPECT_NE(validate_op(bad).message().find("whole rows"), std::string::npos)
      << validate_op(bad).to_string();
  // Quantized A, or a quantized input of any other op: refused.
  bad = mm;
  bad.inputs[0] = q(DType::kQ8_0, Shape{2, 64});
  EXPECT_FALSE(validate_op(bad).ok());
  OpSpec add;
  add.kind = OpKind::kAdd;
  add.num_inputs = 2;
  add.inputs[0] = q(DType::kQ8_0, Shape{2, 64});
  add.inputs[1] = q(DType::kQ8_0, Shape{2, 64});
  add.output = q(DType::kQ8_0, Shape{2, 64});
  EXPECT_FALSE(validate_op(add).ok());
  // Embedding from a quantized table: any float output; cost counts the rows gathered.
  OpSpec emb;
  emb.kind = OpKind::kEmbedding;
  emb.num_inputs = 2;
  emb.inputs[0] = q(DType::kQ6_K, Shape{100, 256});
  emb.inputs[1] = TensorDesc::contiguous(DType::kI32, Shape{3});
  auto out = infer_output(emb.kind, emb.attrs, emb.inputs.data(), 2);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->dtype, DType::kF32);
  emb.output = TensorDesc::contiguous(DType::kBF16, Shape{3, 256});
  EXPECT_TRUE(validate_op(emb).ok()) << validate_op(emb).to_string();
  EXPECT_EQ(analytic_cost(emb).bytes_read, 3u * 4 + 3u * 210);
  emb.output = TensorDesc::contiguous(DType::kI32, Shape{3, 256});
  EXPECT_FALSE(validate_op(emb).ok());
}

}  // namespace
}  // namespace hal
