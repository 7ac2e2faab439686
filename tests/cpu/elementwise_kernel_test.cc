// The CPU backend's elementwise kernels against the reference: add/mul with numpy
// broadcasting, scale, gelu (erf and tanh), silu, cast between every dtype pair, and
// transpose, on odd sizes, strided views and all float dtypes.
#include <gtest/gtest.h>

#include <bit>
#include <limits>

#include "kernel_check.h"

namespace hal::cpu::testing {
namespace {

constexpr DType kFloatTypes[] = {DType::kF32, DType::kF16, DType::kBF16};
// Elementwise f32 math: a few ulps (the polynomial exp/erf/tanh are within ~2e-7).
constexpr Tolerance kElementwiseTol{1e-6, 4e-6};

OpSpec spec_of(OpKind kind) {
  OpSpec s;
  s.kind = kind;
  return s;
}

TEST(CpuElementwise, AddMulOddSizesAndDtypes) {
  for (OpKind kind : {OpKind::kAdd, OpKind::kMul})
    for (DType t : kFloatTypes)
      for (int64_t n :
           {int64_t(1), int64_t(3), int64_t(17), int64_t(65), int64_t(257), int64_t(5000)}) {
        HostTensor a = make_tensor(t, {n});
        HostTensor b = make_tensor(t, {n});
        check_op(spec_of(kind), {&a, &b}, kElementwiseTol);
      }
}

TEST(CpuElementwise, AddMulBroadcastAndStrides) {
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {
      {{4, 17}, {17}},         // row vector
      {{4, 17}, {4, 1}},       // column vector
      {{1, 17}, {5, 1}},       // outer product shape
      {{2, 3, 65}, {3, 1}},    // middle broadcast
      {{}, {3, 5}},            // rank-0 scalar
      {{7, 1, 3}, {1, 6, 1}},  // both broadcast
      {{2, 1030}, {2, 1030}},  // rows longer than one conversion chunk? (2 x 1030)
      {{3, 4100}, {4100}},     // chunked inner dim (> 2048)
  };
  for (OpKind kind : {OpKind::kAdd, OpKind::kMul})
    for (const Case& c : cases)
      for (Layout l : {Layout::kDense, Layout::kPadded, Layout::kTransposed}) {
        HostTensor a = make_tensor(DType::kF32, c.a, l);
        HostTensor b = make_tensor(DType::kBF16, c.b, l);
        check_op(spec_of(kind), {&a, &b}, kElementwiseTol);
        check_op(spec_of(kind), {&b, &a}, kElementwiseTol, Layout::kPadded);
      }
}

TEST(CpuElementwise, UnaryOpsAllDtypesAndLayouts) {
  std::vector<OpSpec> specs;
  OpSpec scale = spec_of(OpKind::kScale);
  scale.attrs.alpha = -1.75f;
  scale.attrs.beta = 0.25f;
  specs.push_back(scale);
  OpSpec gelu_erf = spec_of(OpKind::kGelu);
  specs.push_back(gelu_erf);
  OpSpec gelu_tanh = spec_of(OpKind::kGelu);
  gelu_tanh.attrs.gelu_approximation = GeluApproximation::kTanh;
  specs.push_back(gelu_tanh);
  specs.push_back(spec_of(OpKind::kSilu));
  for (const OpSpec& s : specs)
    for (DType t : kFloatTypes)
      for (Layout l : {Layout::kDense, Layout::kPadded, Layout::kTransposed})
        for (Shape shape : {Shape{1}, Shape{3, 17}, Shape{65, 33}, Shape{2, 3, 257}}) {
          HostTensor x = make_tensor(t, shape, l, -8.0, 8.0);
          check_op(s, {&x}, kElementwiseTol,
                   l == Layout::kDense ? Layout::kDense : Layout::kPadded);
        }
}

// The approximations over a wide range, including tails and near zero.
TEST(CpuElementwise, ActivationAccuracyOverWideRange) {
  HostTensor x = make_tensor(DType::kF32, {20001}, Layout::kDense, -30.0, 30.0);
  float* v = static_cast<float*>(x.data());
  for (int i = 0; i < 2001; ++i) v[i] = -10.0f + 0.01f * float(i);  // dense near 0
  v[2001] = 0.0f;
  v[2002] = -0.0f;
  v[2003] = 1e-30f;
  v[2004] = -88.0f;
  v[2005] = 88.0f;
  for (GeluApproximation a : {GeluApproximation::kErf, GeluApproximation::kTanh}) {
    OpSpec s = spec_of(OpKind::kGelu);
    s.attrs.gelu_approximation = a;
    check_op(s, {&x}, kElementwiseTol);
  }
  check_op(spec_of(OpKind::kSilu), {&x}, kElementwiseTol);
}

// The tanh GELU keeps its relative accuracy where the value is small and negative: the
// earlier form, 0.5 x (1 + tanh(u)), cancelled as tanh(u) neared -1 and was 13% off at
// x = -4.77 (a value of ~1e-5, inside the absolute tolerance above).
TEST(CpuElementwise, GeluTanhStaysRelativelyAccurateInItsNegativeTail) {
  HostTensor x = make_tensor(DType::kF32, {301});
  float* v = static_cast<float*>(x.data());
  for (int i = 0; i < 301; ++i) v[i] = -6.0f + 0.01f * float(i);  // values ~1e-9 .. 4e-3
  OpSpec s = spec_of(OpKind::kGelu);
  s.attrs.gelu_approximation = GeluApproximation::kTanh;
  check_op(s, {&x}, Tolerance{0.0, 1e-5});
}

TEST(CpuElementwise, SpecialValuesPropagate) {
  HostTensor x = make_tensor(DType::kF32, {4});
  float* v = static_cast<float*>(x.data());
  v[0] = std::numeric_limits<float>::quiet_NaN();
  v[1] = std::numeric_limits<float>::infinity();
  v[2] = 1e30f;
  v[3] = -1e30f;
  check_op(spec_of(OpKind::kScale), {&x}, kElementwiseTol);
  OpSpec add = spec_of(OpKind::kAdd);
  check_op(add, {&x, &x}, kElementwiseTol);
  HostTensor nan_only = make_tensor(DType::kF32, {1});
  *static_cast<float*>(nan_only.data()) = std::numeric_limits<float>::quiet_NaN();
  check_op(spec_of(OpKind::kGelu), {&nan_only}, kElementwiseTol);
  check_op(spec_of(OpKind::kSilu), {&nan_only}, kElementwiseTol);
}

TEST(CpuElementwise, CastEveryDtypePairExactly) {
  const DType types[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kI32,
                         DType::kI64, DType::kI8,  DType::kU8};
  for (DType from : types)
    for (DType to : types)
      for (Layout l : {Layout::kDense, Layout::kTransposed}) {
        // Values past every integer range, so saturation and truncation are exercised.
        HostTensor x = make_tensor(from, {9, 37}, l, -300.0, 300.0);
        OpSpec s = spec_of(OpKind::kCast);
        s.output.dtype = to;
        check_op(s, {&x}, Tolerance{0.0, 0.0});
      }
}

TEST(CpuElementwise, CastRoundsAndSaturatesLikeTheReference) {
  HostTensor x = make_tensor(DType::kF32, {10});
  float* v = static_cast<float*>(x.data());
  const float values[] = {
      3e9f,  -3e9f, 2.5f,  -2.5f, 65520.0f, 1e-8f, std::numeric_limits<float>::quiet_NaN(),
      1e20f, -0.7f, 255.9f};
  std::copy(std::begin(values), std::end(values), v);
  for (DType to : {DType::kF16, DType::kBF16, DType::kI32, DType::kI64, DType::kI8, DType::kU8}) {
    OpSpec s = spec_of(OpKind::kCast);
    s.output.dtype = to;
    check_op(s, {&x}, Tolerance{0.0, 0.0});
  }
}

// The vectorised f16 conversions against hal's scalar ones, bit for bit: every f16 value
// to f32, and f32 patterns around every rounding boundary (subnormals, ties, overflow to
// Inf, NaN payloads) plus random ones to f16.
TEST(CpuElementwise, F16ConversionsMatchBitForBit) {
  std::vector<uint32_t> patterns;
  for (uint32_t h = 0; h < 0x10000; ++h) patterns.push_back(h);
  auto run_cast = [](DType from, DType to, const void* src, void* dst, int64_t n) {
    OpSpec s;
    s.kind = OpKind::kCast;
    s.num_inputs = 1;
    s.inputs[0] = TensorDesc::contiguous(from, {n});
    s.output = TensorDesc::contiguous(to, {n});
    const void* in[1] = {src};
    ASSERT_TRUE(run_op(s, in, dst).ok());
  };
  std::vector<uint16_t> halves(patterns.begin(), patterns.end());
  std::vector<float> floats(halves.size());
  run_cast(DType::kF16, DType::kF32, halves.data(), floats.data(), int64_t(halves.size()));
  for (size_t i = 0; i < halves.size(); ++i) {
    const float want = f16_to_float(halves[i]);
    if (std::isnan(want))
      ASSERT_TRUE(std::isnan(floats[i])) << i;
    else
      ASSERT_EQ(std::bit_cast<uint32_t>(floats[i]), std::bit_cast<uint32_t>(want)) << "f16 " << i;
  }
  std::vector<float> src;
  for (uint32_t base : {0x33000000u, 0x337fffffu, 0x38800000u, 0x387fe000u, 0x3f800000u,
                        0x477fe000u, 0x477ff000u, 0x47800000u, 0x7f800000u, 0x7fc00000u})
    for (int32_t d = -4200; d <= 4200; ++d)
      for (uint32_t sign : {0u, 0x80000000u})
        src.push_back(std::bit_cast<float>((base + uint32_t(d)) | sign));
  std::mt19937 gen(7);
  for (int i = 0; i < 200000; ++i) src.push_back(std::bit_cast<float>(uint32_t(gen())));
  std::vector<uint16_t> got(src.size());
  run_cast(DType::kF32, DType::kF16, src.data(), got.data(), int64_t(src.size()));
  for (size_t i = 0; i < src.size(); ++i)
    ASSERT_EQ(got[i], float_to_f16(src[i])) << "f32 bits " << std::bit_cast<uint32_t>(src[i]);
}

TEST(CpuElementwise, TransposeEveryElementSize) {
  const DType types[] = {DType::kF32, DType::kF16, DType::kI64, DType::kI8};
  struct Case {
    Shape shape;
    std::array<int32_t, kMaxRank> perm;
  };
  const Case cases[] = {
      {{17, 65}, {1, 0}},            // real 2-D transpose (tiled)
      {{2, 3, 4, 5}, {0, 2, 1, 3}},  // [B, S, H, D] -> [B, H, S, D]
      {{3, 5, 7}, {2, 0, 1}},
      {{2, 3, 4}, {0, 1, 2}},         // identity: strided copy
      {{1, 33, 1, 9}, {3, 1, 2, 0}},  // size-1 dims
      {{70, 40}, {1, 0}},             // several tiles with tails
  };
  for (DType t : types)
    for (const Case& c : cases)
      for (Layout l : {Layout::kDense, Layout::kPadded, Layout::kTransposed}) {
        HostTensor x = make_tensor(t, c.shape, l, -100.0, 100.0);
        OpSpec s = spec_of(OpKind::kTranspose);
        for (int i = 0; i < kMaxRank; ++i) s.attrs.perm[i] = c.perm[i];
        check_op(s, {&x}, Tolerance{0.0, 0.0},
                 l == Layout::kDense ? Layout::kDense : Layout::kPadded);
      }
}

}  // namespace
}  // namespace hal::cpu::testing
