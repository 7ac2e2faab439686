// The NPU simulator's host kernels against hal::reference on random strided tensors.
//
// Tolerances (|npu - ref| <= atol + rtol * |ref|), as stated in backends/npu_sim/README.md:
// - exact fp32 mode: f32 outputs atol 1e-5, rtol 1e-5 (fp32 vs fp64 accumulation);
//   f16 outputs rtol 1e-3, bf16 outputs rtol 8e-3 (one rounding step of the output);
// - device-faithful bf16 mode: matmul atol 3e-3 * sqrt(K) * |alpha|, rtol 1e-2 (operands
//   rounded to bf16, fp32 accumulation; values in [-1, 1]); attention atol 2e-2, rtol
//   2e-2; vector ops as in fp32 mode (the vector unit is fp32).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hal/reference_ops.h"
#include "npu_kernels.h"
#include "npu_numerics.h"

namespace hal::npu_sim {
namespace {

std::mt19937& rng() {
  static std::mt19937 g(4242);
  return g;
}

// A tensor in a byte buffer at an odd offset, dense or with padded strides.
struct HostTensor {
  TensorDesc desc;
  std::vector<uint8_t> bytes;
  uint64_t offset = 0;
  void* data() { return bytes.data() + offset; }
  const void* data() const { return bytes.data() + offset; }
};

HostTensor make(DType d, Shape shape, bool padded) {
  HostTensor t;
  t.desc.dtype = d;
  t.desc.shape = shape;
  int64_t stride = 1;
  for (int i = shape.rank - 1; i >= 0; --i) {
    t.desc.strides[i] = stride;
    stride *= std::max<int64_t>(shape.dims[i], 1) + (padded ? 1 + i % 2 : 0);
  }
  t.offset = uint64_t(dtype_size(d)) * 3;
  t.bytes.assign(t.offset + t.desc.extent_bytes() + 64, 0xAB);
  return t;
}

void fill(HostTensor& t, double lo, double hi) {
  std::uniform_real_distribution<double> dist(lo, hi);
  const int64_t n = t.desc.numel();
  int64_t idx[kMaxRank] = {};
  for (int64_t e = 0; e < n; ++e) {
    double v = dist(rng());
    if (is_integer(t.desc.dtype)) v = std::floor(v);
    reference::store(t.data(), t.desc, idx, v);
    for (int i = t.desc.shape.rank - 1; i >= 0; --i) {
      if (++idx[i] < t.desc.shape.dims[i]) break;
      idx[i] = 0;
    }
  }
}

struct Tolerance {
  double atol, rtol;
};

// Runs the op on the simulator and the reference; compares every output element and
// checks the bytes around the output view are untouched.
void check(const OpSpec& spec, std::vector<HostTensor>& inputs, ComputePrecision precision,
           Tolerance tol, bool padded_out) {
  SCOPED_TRACE(std::string(op_kind_name(spec.kind)) + " out " + spec.output.to_string() +
               (precision == ComputePrecision::kBf16 ? " bf16 mode" : " fp32 mode"));
  ASSERT_TRUE(validate_op(spec).ok()) << validate_op(spec).to_string();
  HostTensor got = make(spec.output.dtype, spec.output.shape, padded_out);
  HostTensor want = got;
  OpSpec s = spec;
  s.output = got.desc;
  std::vector<const void*> in;
  for (auto& t : inputs) in.push_back(t.data());
  const std::vector<uint8_t> before = got.bytes;
  ASSERT_TRUE(execute_op(s, in.data(), got.data(), precision).ok());
  ASSERT_TRUE(reference::execute(s, in.data(), want.data()).ok());
  const int64_t n = s.output.numel();
  int64_t idx[kMaxRank] = {};
  int bad = 0;
  for (int64_t e = 0; e < n && bad < 5; ++e) {
    const double g = reference::load(got.data(), s.output, idx);
    const double w = reference::load(want.data(), s.output, idx);
    const bool ok =
        (std::isnan(g) && std::isnan(w)) || std::fabs(g - w) <= tol.atol + tol.rtol * std::fabs(w);
    if (!ok) {
      ++bad;
      ADD_FAILURE() << "element " << e << ": npu " << g << " vs reference " << w;
    }
    for (int i = s.output.shape.rank - 1; i >= 0; --i) {
      if (++idx[i] < s.output.shape.dims[i]) break;
      idx[i] = 0;
    }
  }
  // Bytes outside the view: the leading offset and the tail guard.
  for (uint64_t i = 0; i < got.offset; ++i) ASSERT_EQ(got.bytes[i], before[i]);
  for (uint64_t i = got.offset + s.output.extent_bytes(); i < got.bytes.size(); ++i)
    ASSERT_EQ(got.bytes[i], before[i]);
}

Tolerance exact_tol(DType out) {
  if (out == DType::kBF16) return {1e-5, 8e-3};
  if (out == DType::kF16) return {1e-5, 1e-3};
  return {1e-5, 1e-5};
}

OpSpec spec_of(OpKind kind, const std::vector<HostTensor>& in, OpAttributes a = {},
               DType out = DType::kInvalid) {
  OpSpec s;
  s.kind = kind;
  s.attrs = a;
  s.num_inputs = int32_t(in.size());
  for (size_t i = 0; i < in.size(); ++i) s.inputs[i] = in[i].desc;
  auto o = infer_output(kind, a, s.inputs.data(), s.num_inputs);
  EXPECT_TRUE(o.ok()) << o.status().to_string();
  s.output = *o;
  if (out != DType::kInvalid) s.output = TensorDesc::contiguous(out, s.output.shape);
  return s;
}

class NpuKernels : public ::testing::TestWithParam<DType> {};

TEST_P(NpuKernels, MatmulMatchesTheReference) {
  const DType d = GetParam();
  struct Case {
    Shape a, b;
    bool ta, tb, bias, padded;
    float alpha;
  };
  const std::vector<Case> cases = {
      {{1, 64}, {64, 33}, false, false, false, false, 1.0f},
      {{7, 37}, {37, 19}, false, false, true, true, 1.0f},
      {{37, 7}, {19, 37}, true, true, false, true, 0.5f},
      {{3, 2, 9, 40}, {40, 20}, false, false, true, false, 1.0f},     // shared weight
      {{2, 1, 16, 24}, {3, 24, 8}, false, false, false, true, 1.0f},  // broadcast batch
      {{65, 130}, {70, 130}, false, true, false, false, 2.0f},
      {{0, 8}, {8, 4}, false, false, false, false, 1.0f},
      {{4, 0}, {0, 5}, false, false, true, false, 1.0f},
  };
  for (const Case& c : cases) {
    for (ComputePrecision p : {ComputePrecision::kFp32, ComputePrecision::kBf16}) {
      std::vector<HostTensor> in;
      in.push_back(make(d, c.a, c.padded));  // stored shapes (transposed where ta/tb)
      in.push_back(make(d, c.b, c.padded));
      if (c.bias) in.push_back(make(d, Shape{c.tb ? c.b.back(2) : c.b.back()}, false));
      for (auto& t : in) fill(t, -1, 1);
      OpAttributes a;
      a.transpose_a = c.ta;
      a.transpose_b = c.tb;
      a.alpha = c.alpha;
      const OpSpec s = spec_of(OpKind::kMatmul, in, a);
      // bf16 operands: each product is off by up to 2^-8 of itself, rms about 5e-4 for
      // values in [-1, 1]; the sum's error grows with sqrt(K). Six sigma plus the output's
      // own rounding.
      const int64_t k = c.ta ? c.a.back(2) : c.a.back();
      const Tolerance tol =
          p == ComputePrecision::kBf16
              ? Tolerance{3e-3 * std::sqrt(double(k)) * std::fabs(c.alpha) + 1e-5, 1e-2}
              : exact_tol(d);
      check(s, in, p, tol, c.padded);
    }
  }
}

TEST_P(NpuKernels, AttentionMatchesTheReference) {
  const DType d = GetParam();
  struct Case {
    int64_t b, sq, hq, skv, hkv, dim;
    bool causal;
    int64_t kv_length, q_offset;
    bool lengths;
  };
  const std::vector<Case> cases = {
      {1, 1, 8, 37, 2, 16, true, 0, -1, false},  // decode, GQA
      {2, 9, 4, 9, 4, 8, true, 0, -1, false},    // prefill
      {2, 5, 6, 20, 3, 16, true, 12, 3, false},  // explicit offsets
      {3, 4, 2, 16, 1, 8, false, 0, -1, true},   // per-batch kv lengths (MQA)
      {1, 3, 2, 4, 2, 8, true, 0, 5, false},     // queries past the keys see all
  };
  for (const Case& c : cases) {
    for (ComputePrecision p : {ComputePrecision::kFp32, ComputePrecision::kBf16}) {
      std::vector<HostTensor> in = {make(d, {c.b, c.sq, c.hq, c.dim}, c.causal),
                                    make(d, {c.b, c.skv, c.hkv, c.dim}, false),
                                    make(d, {c.b, c.skv, c.hkv, c.dim}, c.causal)};
      for (auto& t : in) fill(t, -1, 1);
      if (c.lengths) {
        in.push_back(make(DType::kI32, {c.b}, false));
        for (int64_t i = 0; i < c.b; ++i)
          static_cast<int32_t*>(in.back().data())[i] = int32_t(i * 5);
      }
      OpAttributes a;
      a.causal = c.causal;
      a.kv_length = c.kv_length;
      a.q_offset = c.q_offset;
      const OpSpec s = spec_of(OpKind::kAttention, in, a);
      const Tolerance tol = p == ComputePrecision::kBf16 ? Tolerance{2e-2, 2e-2} : exact_tol(d);
      check(s, in, p, tol, false);
    }
  }
}

TEST_P(NpuKernels, VectorOpsMatchTheReferenceInBothModes) {
  const DType d = GetParam();
  for (ComputePrecision p : {ComputePrecision::kFp32, ComputePrecision::kBf16}) {
    const Tolerance tol = exact_tol(d);
    {
      std::vector<HostTensor> in = {make(d, {3, 5, 17}, true), make(d, {5, 1}, false)};
      for (auto& t : in) fill(t, -2, 2);
      check(spec_of(OpKind::kAdd, in), in, p, tol, true);
      check(spec_of(OpKind::kMul, in), in, p, tol, false);
    }
    for (OpKind k : {OpKind::kScale, OpKind::kGelu, OpKind::kSilu}) {
      for (GeluApproximation g : {GeluApproximation::kErf, GeluApproximation::kTanh}) {
        std::vector<HostTensor> in = {make(d, {4, 33}, true)};
        fill(in[0], -4, 4);
        OpAttributes a;
        a.alpha = 1.5f;
        a.beta = -0.25f;
        a.gelu_approximation = g;
        check(spec_of(k, in, a), in, p, tol, false);
      }
    }
    {
      std::vector<HostTensor> in = {make(d, {6, 100}, true), make(d, {100}, false),
                                    make(d, {100}, false)};
      for (auto& t : in) fill(t, -3, 3);
      OpAttributes a;
      a.epsilon = 1e-5f;
      check(spec_of(OpKind::kLayerNorm, in, a), in, p, {1e-4, tol.rtol}, false);
      in.pop_back();
      check(spec_of(OpKind::kRmsNorm, in, a), in, p, {1e-4, tol.rtol}, false);
    }
    for (bool causal : {false, true}) {
      std::vector<HostTensor> in = {make(d, {2, 7, 11}, true)};
      fill(in[0], -5, 5);
      OpAttributes a;
      a.causal = causal;
      a.scale = 0.5f;
      check(spec_of(OpKind::kSoftmax, in, a), in, p, tol, false);
    }
    {
      std::vector<HostTensor> in = {make(d, {3, 50}, true)};
      fill(in[0], -1, 1);
      check(spec_of(OpKind::kArgmax, in), in, p, {0, 0}, false);
    }
    for (RopeStyle style : {RopeStyle::kRotateHalf, RopeStyle::kInterleaved}) {
      std::vector<HostTensor> in = {make(d, {2, 5, 3, 8}, true), make(DType::kI32, {2, 5}, false)};
      fill(in[0], -1, 1);
      fill(in[1], 0, 4000);
      OpAttributes a;
      a.rope_style = style;
      a.rotary_dim = 6;
      check(spec_of(OpKind::kRotary, in, a), in, p, {2e-5, tol.rtol}, false);
      std::vector<HostTensor> in2 = {make(d, {5, 2, 8}, false), make(DType::kI64, {5}, false),
                                     make(DType::kF32, {4}, false)};
      fill(in2[0], -1, 1);
      fill(in2[1], 0, 100);
      fill(in2[2], 0, 1);
      a.rotary_dim = 0;
      check(spec_of(OpKind::kRotary, in2, a), in2, p, {2e-5, tol.rtol}, false);
    }
    {
      std::vector<HostTensor> in = {make(d, {10, 6}, true), make(DType::kI64, {2, 3}, false)};
      fill(in[0], -1, 1);
      fill(in[1], 0, 10);
      check(spec_of(OpKind::kEmbedding, in), in, p, {0, 0}, true);
    }
    {
      std::vector<HostTensor> in = {make(d, {2, 3, 4, 5}, true)};
      fill(in[0], -1, 1);
      OpAttributes a;
      a.perm = {2, 0, 3, 1, 4, 5, 6, 7};
      check(spec_of(OpKind::kTranspose, in, a), in, p, {0, 0}, true);
    }
    for (DType to : {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI8, DType::kU8}) {
      std::vector<HostTensor> in = {make(d, {4, 9}, true)};
      fill(in[0], -300, 300);
      check(spec_of(OpKind::kCast, in, {}, to), in, p, exact_tol(to), true);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, NpuKernels,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Device-faithful mode really rounds f32 operands to bf16 (and fp32 mode does not):
// 1 + 2^-10 is not a bf16 value, so the product sees 1.
TEST(NpuNumerics, MatrixEnginesRoundF32OperandsToBf16) {
  const float a = 1.0f + std::ldexp(1.0f, -10), b = 3.0f;
  OpSpec s;
  s.kind = OpKind::kMatmul;
  s.num_inputs = 2;
  s.inputs[0] = TensorDesc::contiguous(DType::kF32, {1, 1});
  s.inputs[1] = TensorDesc::contiguous(DType::kF32, {1, 1});
  s.output = TensorDesc::contiguous(DType::kF32, {1, 1});
  const void* in[] = {&a, &b};
  float out = 0;
  ASSERT_TRUE(execute_op(s, in, &out, ComputePrecision::kBf16).ok());
  EXPECT_EQ(out, 3.0f);
  ASSERT_TRUE(execute_op(s, in, &out, ComputePrecision::kFp32).ok());
  EXPECT_EQ(out, a * b);
  // Accumulation stays fp32: 256 products of 1 and one of 2^-8 sum exactly.
  std::vector<float> x(257, 1.0f), y(257, 1.0f);
  y[256] = std::ldexp(1.0f, -8);
  s.inputs[0] = TensorDesc::contiguous(DType::kF32, {1, 257});
  s.inputs[1] = TensorDesc::contiguous(DType::kF32, {257, 1});
  const void* in2[] = {x.data(), y.data()};
  ASSERT_TRUE(execute_op(s, in2, &out, ComputePrecision::kBf16).ok());
  EXPECT_EQ(out, 256.0f + std::ldexp(1.0f, -8));  // a bf16 accumulator would give 256
}

// The vector unit stays fp32 in both modes: a layer norm does not round its input.
TEST(NpuNumerics, VectorUnitComputesInFp32) {
  const std::vector<float> x = {1.0f + std::ldexp(1.0f, -12), 1.0f};
  const std::vector<float> g = {1.0f, 1.0f};
  OpSpec s;
  s.kind = OpKind::kLayerNorm;
  s.num_inputs = 2;
  s.attrs.epsilon = 0;
  s.inputs[0] = TensorDesc::contiguous(DType::kF32, {1, 2});
  s.inputs[1] = TensorDesc::contiguous(DType::kF32, {2});
  s.output = TensorDesc::contiguous(DType::kF32, {1, 2});
  const void* in[] = {x.data(), g.data()};
  float out[2] = {};
  ASSERT_TRUE(execute_op(s, in, out, ComputePrecision::kBf16).ok());
  EXPECT_NEAR(out[0], 1.0f, 1e-3);  // bf16 inputs would be equal and give 0 / 0
  EXPECT_NEAR(out[1], -1.0f, 1e-3);
}

TEST(NpuNumerics, Fp8CastsAndMatmulOperands) {
  const std::vector<float> x = {1.0f, -2.5f, 448.0f, 1000.0f, 0.01f};
  std::vector<uint8_t> q(x.size());
  OpSpec s;
  s.kind = OpKind::kCast;
  s.num_inputs = 1;
  s.inputs[0] = TensorDesc::contiguous(DType::kF32, {5});
  s.output = TensorDesc::contiguous(DType::kFP8E4M3, {5});
  const void* in[] = {x.data()};
  ASSERT_TRUE(execute_op(s, in, q.data(), ComputePrecision::kBf16).ok());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(q[i], float_to_fp8e4m3(x[i]));
  // fp8 weights times f32 activations: the engine sees the decoded fp8 values.
  const std::vector<uint8_t> w = {float_to_fp8e4m3(0.5f), float_to_fp8e4m3(-3.0f)};
  const std::vector<float> act = {2.0f, 1.0f};
  OpSpec m;
  m.kind = OpKind::kMatmul;
  m.num_inputs = 2;
  m.inputs[0] = TensorDesc::contiguous(DType::kF32, {1, 2});
  m.inputs[1] = TensorDesc::contiguous(DType::kFP8E4M3, {2, 1});
  m.output = TensorDesc::contiguous(DType::kF32, {1, 1});
  const void* min[] = {act.data(), w.data()};
  float out = 0;
  ASSERT_TRUE(execute_op(m, min, &out, ComputePrecision::kBf16).ok());
  EXPECT_EQ(out, 2.0f * 0.5f - 3.0f);
}

TEST(NpuNumerics, DataDependentErrorsAreStatuses) {
  const std::vector<float> table(6, 1.0f);
  const std::vector<int32_t> ids = {0, 3};
  OpSpec s;
  s.kind = OpKind::kEmbedding;
  s.num_inputs = 2;
  s.inputs[0] = TensorDesc::contiguous(DType::kF32, {3, 2});
  s.inputs[1] = TensorDesc::contiguous(DType::kI32, {2});
  s.output = TensorDesc::contiguous(DType::kF32, {2, 2});
  const void* in[] = {table.data(), ids.data()};
  std::vector<float> out(4);
  Status st = execute_op(s, in, out.data(), ComputePrecision::kBf16);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("id 3 outside [0, 3)"), std::string::npos) << st.message();
}

TEST(NpuSupports, DtypeRulesFollowTheDevice) {
  auto atom = preset("atom");
  auto quad = preset("rebel-quad");
  OpSpec m;
  m.kind = OpKind::kMatmul;
  m.num_inputs = 2;
  m.inputs[0] = TensorDesc::contiguous(DType::kBF16, {4, 8});
  m.inputs[1] = TensorDesc::contiguous(DType::kFP8E4M3, {8, 4});
  m.output = TensorDesc::contiguous(DType::kBF16, {4, 4});
  EXPECT_FALSE(supports_op(m, *atom));  // ATOM lists no fp8 rate
  EXPECT_TRUE(supports_op(m, *quad));
  m.inputs[1].dtype = DType::kBF16;
  EXPECT_TRUE(supports_op(m, *atom));
  OpSpec add;
  add.kind = OpKind::kAdd;
  add.num_inputs = 2;
  add.inputs[0] = TensorDesc::contiguous(DType::kFP8E4M3, {4});
  add.inputs[1] = TensorDesc::contiguous(DType::kFP8E4M3, {4});
  add.output = TensorDesc::contiguous(DType::kFP8E4M3, {4});
  EXPECT_FALSE(supports_op(add, *quad));  // fp8 is a storage format, not a vector type
}

}  // namespace
}  // namespace hal::npu_sim
