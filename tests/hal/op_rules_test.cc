// The op set's shared rules (hal/op.h): names, arity, output shapes (infer_output),
// validation with messages that name the op and the offending shapes, and the analytic
// cost (FLOPs and minimum device-memory traffic) used by accounting and the cost model.
#include <gtest/gtest.h>

#include <string>

#include "hal/op.h"

namespace hal {
namespace {

TensorDesc f32(Shape s) { return TensorDesc::contiguous(DType::kF32, s); }

OpSpec make(OpKind kind, std::initializer_list<TensorDesc> inputs, OpAttributes attrs = {}) {
  OpSpec s;
  s.kind = kind;
  s.attrs = attrs;
  for (const TensorDesc& t : inputs) s.inputs[s.num_inputs++] = t;
  auto out = infer_output(kind, attrs, s.inputs.data(), s.num_inputs);
  if (out.ok()) s.output = *out;
  return s;
}

void expect_invalid(const Status& s, const std::string& fragment) {
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find(fragment), std::string::npos)
      << "message \"" << s.message() << "\" lacks \"" << fragment << "\"";
}

TEST(OpRules, NamesRoundTrip) {
  for (int i = 1; i < kOpKindCount; ++i) {
    const OpKind k = OpKind(i);
    EXPECT_EQ(parse_op_kind(op_kind_name(k)), k);
  }
  EXPECT_EQ(op_kind_name(OpKind::kLayerNorm), "layer_norm");
  EXPECT_FALSE(parse_op_kind("conv2d").has_value());
  EXPECT_EQ(op_class(OpKind::kMatmul), OpClass::kMatrix);
  EXPECT_EQ(op_class(OpKind::kSoftmax), OpClass::kVector);
  EXPECT_EQ(op_class(OpKind::kEmbedding), OpClass::kData);
}

TEST(OpRules, TensorDescLayout) {
  const TensorDesc t = f32({2, 3, 4});
  EXPECT_EQ(t.strides[0], 12);
  EXPECT_EQ(t.strides[2], 1);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.bytes(), 96u);
  EXPECT_EQ(t.extent_bytes(), 96u);
  TensorDesc padded = t;
  padded.strides[0] = 20;
  EXPECT_FALSE(padded.is_contiguous());
  EXPECT_EQ(padded.extent_bytes(), (20 + 2 * 4 + 3 + 1) * 4u);
  EXPECT_EQ(padded.to_string(), "f32[2, 3, 4] strides [20, 4, 1]");
  TensorDesc broadcast = f32({5, 7});
  broadcast.strides[0] = 0;
  EXPECT_EQ(broadcast.extent_bytes(), 28u);
  EXPECT_EQ(f32({0, 3}).extent_bytes(), 0u);
}

TEST(OpRules, MatmulShapes) {
  OpAttributes at;
  auto out =
      infer_output(OpKind::kMatmul, at, std::array{f32({2, 1, 5, 8}), f32({3, 8, 4})}.data(), 2);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->shape, (Shape{2, 3, 5, 4}));
  at.transpose_a = at.transpose_b = true;
  out = infer_output(OpKind::kMatmul, at, std::array{f32({8, 5}), f32({4, 8})}.data(), 2);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->shape, (Shape{5, 4}));
  expect_invalid(
      infer_output(OpKind::kMatmul, {}, std::array{f32({5, 8}), f32({7, 4})}.data(), 2).status(),
      "inner dims differ: A [5, 8] and B [7, 4] (K 8 vs 7)");
  expect_invalid(
      infer_output(OpKind::kMatmul, {}, std::array{f32({2, 5, 8}), f32({3, 8, 4})}.data(), 2)
          .status(),
      "do not broadcast");
  expect_invalid(
      infer_output(OpKind::kMatmul, {}, std::array{f32({5, 8}), f32({8, 4}), f32({5})}.data(), 3)
          .status(),
      "bias must be [4], got [5]");
  expect_invalid(
      infer_output(OpKind::kMatmul, {}, std::array{f32({8}), f32({8, 4})}.data(), 2).status(),
      "need rank >= 2");
  TensorDesc ids = TensorDesc::contiguous(DType::kI32, {5, 8});
  expect_invalid(infer_output(OpKind::kMatmul, {}, std::array{ids, f32({8, 4})}.data(), 2).status(),
                 "input 0 must be a float tensor, got i32");
  expect_invalid(infer_output(OpKind::kMatmul, {}, std::array{f32({5, 8})}.data(), 1).status(),
                 "matmul: takes 2-3 inputs, got 1");
}

TEST(OpRules, OtherOpsShapesAndErrors) {
  OpAttributes at;
  EXPECT_EQ(make(OpKind::kAdd, {f32({4, 1, 3}), f32({5, 1})}).output.shape, (Shape{4, 5, 3}));
  expect_invalid(
      infer_output(OpKind::kAdd, at, std::array{f32({4, 3}), f32({5})}.data(), 2).status(),
      "shapes [4, 3] and [5] do not broadcast");
  expect_invalid(
      infer_output(OpKind::kLayerNorm, at, std::array{f32({2, 6}), f32({5})}.data(), 2).status(),
      "gamma must be [6], got [5]");
  EXPECT_EQ(make(OpKind::kArgmax, {f32({3, 7})}).output.dtype, DType::kI32);
  EXPECT_EQ(make(OpKind::kArgmax, {f32({3, 7})}).output.shape, (Shape{3}));
  OpAttributes causal;
  causal.causal = true;
  expect_invalid(infer_output(OpKind::kSoftmax, causal, std::array{f32({7})}.data(), 1).status(),
                 "causal softmax needs rank >= 2");
  // Attention.
  EXPECT_EQ(make(OpKind::kAttention, {f32({2, 3, 8, 16}), f32({2, 9, 2, 16}), f32({2, 9, 2, 32})})
                .output.shape,
            (Shape{2, 3, 8, 32}));
  expect_invalid(
      infer_output(OpKind::kAttention, at,
                   std::array{f32({1, 3, 6, 16}), f32({1, 9, 4, 16}), f32({1, 9, 4, 16})}.data(), 3)
          .status(),
      "query heads 6 must be a multiple of kv heads 4");
  OpAttributes kv;
  kv.kv_length = 10;
  expect_invalid(
      infer_output(OpKind::kAttention, kv,
                   std::array{f32({1, 3, 4, 16}), f32({1, 9, 4, 16}), f32({1, 9, 4, 16})}.data(), 3)
          .status(),
      "kv_length 10 outside [0, 9]");
  // Rotary.
  OpAttributes rot;
  rot.rotary_dim = 5;
  const TensorDesc pos = TensorDesc::contiguous(DType::kI32, {3});
  expect_invalid(
      infer_output(OpKind::kRotary, rot, std::array{f32({3, 2, 8}), pos}.data(), 2).status(),
      "rotary_dim 5 must be even and in (0, 8]");
  expect_invalid(
      infer_output(OpKind::kRotary, {}, std::array{f32({4, 2, 8}), pos}.data(), 2).status(),
      "positions must be [S] or [B, S]");
  // Embedding and transpose.
  const TensorDesc ids = TensorDesc::contiguous(DType::kI64, {2, 5});
  EXPECT_EQ(make(OpKind::kEmbedding, {f32({100, 16}), ids}).output.shape, (Shape{2, 5, 16}));
  expect_invalid(
      infer_output(OpKind::kEmbedding, at, std::array{f32({100, 16}), f32({2})}.data(), 2).status(),
      "ids must be i32 or i64, got f32");
  OpAttributes perm;
  perm.perm = {1, 1, 0};
  expect_invalid(
      infer_output(OpKind::kTranspose, perm, std::array{f32({2, 3, 4})}.data(), 1).status(),
      "perm [1,1,0] is not a permutation of the 3 dims of [2, 3, 4]");
  perm.perm = {2, 0, 1};
  EXPECT_EQ(make(OpKind::kTranspose, {f32({2, 3, 4})}, perm).output.shape, (Shape{4, 2, 3}));
}

TEST(OpRules, ValidateChecksOutputsAndStrides) {
  OpSpec s = make(OpKind::kMatmul, {f32({5, 8}), f32({8, 4})});
  EXPECT_TRUE(validate_op(s).ok());
  s.output = f32({5, 5});
  expect_invalid(validate_op(s),
                 "output shape [5, 5] should be [5, 4] for inputs f32[5, 8], f32[8, 4]");
  s.output = f32({5, 4});
  s.output.dtype = DType::kI32;
  expect_invalid(validate_op(s), "output must be a float tensor");
  s.output.dtype = DType::kF32;
  s.inputs[0].strides[0] = -8;
  expect_invalid(validate_op(s), "input 0 has a negative stride");
  s.inputs[0].strides[0] = 8;
  s.output.strides[0] = 0;
  expect_invalid(validate_op(s), "broadcasts (stride 0) a dim it writes");
  // Cast chooses its output dtype; everything else must match the inferred one.
  OpSpec cast = make(OpKind::kCast, {f32({3})});
  cast.output.dtype = DType::kI8;
  EXPECT_TRUE(validate_op(cast).ok());
  OpSpec gelu = make(OpKind::kGelu, {f32({3})});
  gelu.output.dtype = DType::kF16;
  expect_invalid(validate_op(gelu), "output dtype f16 should be f32");
  OpSpec argmax = make(OpKind::kArgmax, {f32({3, 4})});
  argmax.output.dtype = DType::kI64;
  expect_invalid(validate_op(argmax), "output must be i32, got i64");
  OpSpec none;
  expect_invalid(validate_op(none), "op kind is invalid");
}

TEST(OpRules, AnalyticCost) {
  // Matmul: 2MNK FLOPs (+ MN for bias, + MN for alpha != 1); each tensor read once.
  OpSpec mm = make(OpKind::kMatmul, {f32({4, 6}), f32({6, 5}), f32({5})});
  OpCost c = analytic_cost(mm);
  EXPECT_EQ(c.flops, 2.0 * 4 * 5 * 6 + 4 * 5);
  EXPECT_EQ(c.bytes_read, (24 + 30 + 5) * 4u);
  EXPECT_EQ(c.bytes_written, 20 * 4u);
  mm.attrs.alpha = 0.5f;
  EXPECT_EQ(analytic_cost(mm).flops, 2.0 * 4 * 5 * 6 + 2 * 4 * 5);
  // Embedding reads only the rows it gathers.
  const TensorDesc ids = TensorDesc::contiguous(DType::kI32, {3});
  OpSpec emb = make(OpKind::kEmbedding, {TensorDesc::contiguous(DType::kF16, {1000, 8}), ids});
  c = analytic_cost(emb);
  EXPECT_EQ(c.bytes_read, 3 * 4u + 3 * 8 * 2u);
  EXPECT_EQ(c.bytes_written, 3 * 8 * 2u);
  EXPECT_EQ(c.flops, 0.0);
  // Causal attention: query i of 4 over 4 keys sees i + 1 keys: 1+2+3+4 = 10 per head.
  OpAttributes causal;
  causal.causal = true;
  OpSpec att =
      make(OpKind::kAttention, {f32({1, 4, 2, 8}), f32({1, 4, 1, 8}), f32({1, 4, 1, 8})}, causal);
  c = analytic_cost(att);
  EXPECT_EQ(c.flops, 2 * 10 * (2.0 * 8 + 2.0 * 8 + 5.0));
  EXPECT_EQ(c.bytes_read, 64 * 4u + 4 * (8 + 8) * 4u);
  EXPECT_EQ(c.bytes_written, 64 * 4u);
  // Elementwise.
  EXPECT_EQ(analytic_cost(make(OpKind::kAdd, {f32({10}), f32({10})})).flops, 10.0);
  EXPECT_EQ(analytic_cost(make(OpKind::kTranspose, {f32({3, 3})})).bytes_read, 36u);
}

}  // namespace
}  // namespace hal
