// The CPU backend's row kernels against the reference: layer_norm, rms_norm, softmax
// (scale, causal mask, fully masked rows) and argmax (ties, NaN), on odd row lengths,
// strided rows and all float dtypes.
#include <gtest/gtest.h>

#include <limits>

#include "kernel_check.h"

namespace hal::cpu::testing {
namespace {

constexpr DType kFloatTypes[] = {DType::kF32, DType::kF16, DType::kBF16};
// Row reductions accumulate in f32 (reference: double): a few ulps over <= 4k elements.
constexpr Tolerance kRowTol{2e-6, 2e-5};

TEST(CpuRows, LayerNormAndRmsNorm) {
  for (OpKind kind : {OpKind::kLayerNorm, OpKind::kRmsNorm})
    for (DType t : kFloatTypes)
      for (int64_t n :
           {int64_t(1), int64_t(3), int64_t(17), int64_t(65), int64_t(768), int64_t(4099)})
        for (Layout l : {Layout::kDense, Layout::kPadded, Layout::kTransposed}) {
          HostTensor x = make_tensor(t, {3, n}, l, -3.0, 5.0);
          HostTensor gamma =
              make_tensor(t, {n}, l == Layout::kDense ? Layout::kDense : Layout::kPadded);
          HostTensor beta = make_tensor(DType::kF32, {n});
          OpSpec s;
          s.kind = kind;
          s.attrs.epsilon = 1e-5f;
          if (kind == OpKind::kLayerNorm) {
            check_op(s, {&x, &gamma, &beta}, kRowTol,
                     l == Layout::kDense ? Layout::kDense : Layout::kPadded);
            check_op(s, {&x, &gamma}, kRowTol);
          } else {
            check_op(s, {&x, &gamma}, kRowTol,
                     l == Layout::kDense ? Layout::kDense : Layout::kPadded);
          }
        }
}

TEST(CpuRows, NormOfConstantRowUsesEpsilon) {
  HostTensor x = make_tensor(DType::kF32, {2, 33}, Layout::kDense, 2.0, 2.0);
  HostTensor gamma = make_tensor(DType::kF32, {33});
  OpSpec s;
  s.kind = OpKind::kLayerNorm;
  s.attrs.epsilon = 0.1f;
  check_op(s, {&x, &gamma}, kRowTol);
}

TEST(CpuRows, SoftmaxScaleAndCausal) {
  for (DType t : kFloatTypes)
    for (bool causal : {false, true})
      for (Shape shape :
           {Shape{1, 1}, Shape{5, 17}, Shape{2, 3, 7, 65}, Shape{4, 1030}, Shape{9, 4}})
        for (Layout l : {Layout::kDense, Layout::kTransposed}) {
          HostTensor x = make_tensor(t, shape, l, -10.0, 10.0);
          OpSpec s;
          s.kind = OpKind::kSoftmax;
          s.attrs.causal = causal;
          s.attrs.scale = causal ? 0.125f : 0.0f;
          check_op(s, {&x}, kRowTol, l == Layout::kDense ? Layout::kDense : Layout::kPadded);
        }
}

TEST(CpuRows, SoftmaxFullyMaskedRowsAreZeroAndNegativeScaleWorks) {
  // Sq > Sk: the first Sq - Sk rows see no key at all.
  HostTensor x = make_tensor(DType::kF32, {6, 3}, Layout::kDense, -2.0, 2.0);
  OpSpec s;
  s.kind = OpKind::kSoftmax;
  s.attrs.causal = true;
  check_op(s, {&x}, kRowTol);
  s.attrs.causal = false;
  s.attrs.scale = -2.0f;
  check_op(s, {&x}, kRowTol);
}

TEST(CpuRows, SoftmaxLargeMagnitudesDoNotOverflow) {
  HostTensor x = make_tensor(DType::kF32, {3, 40}, Layout::kDense, -1e4, 1e4);
  OpSpec s;
  s.kind = OpKind::kSoftmax;
  check_op(s, {&x}, kRowTol);
}

TEST(CpuRows, ArgmaxTiesNanAndLayouts) {
  for (DType t : kFloatTypes)
    for (Shape shape : {Shape{1}, Shape{17}, Shape{3, 65}, Shape{2, 2, 50257}})
      for (Layout l : {Layout::kDense, Layout::kTransposed}) {
        // Few distinct values so ties are common; the lowest index must win.
        HostTensor x = make_tensor(t, shape, l, -3.0, 3.0);
        int64_t idx[kMaxRank] = {};
        for (int64_t e = 0; e < x.desc.numel(); ++e) {
          const double v = std::round(reference::load(x.data(), x.desc, idx));
          reference::store(x.data(), x.desc, idx, v);
          for (int i = x.desc.shape.rank - 1; i >= 0; --i) {
            if (++idx[i] < x.desc.shape.dims[i]) break;
            idx[i] = 0;
          }
        }
        OpSpec s;
        s.kind = OpKind::kArgmax;
        check_op(s, {&x}, Tolerance{0.0, 0.0});
      }
}

TEST(CpuRows, ArgmaxSkipsNanAndHandlesAllNanOrInfRows) {
  HostTensor x = make_tensor(DType::kF32, {4, 5});
  float* v = static_cast<float*>(x.data());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const float rows[4][5] = {{nan, 1, 3, nan, 3},
                            {nan, nan, nan, nan, nan},
                            {-inf, nan, -inf, -inf, -inf},
                            {-1, inf, 2, inf, nan}};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 5; ++c) v[r * 5 + c] = rows[r][c];
  OpSpec s;
  s.kind = OpKind::kArgmax;
  check_op(s, {&x}, Tolerance{0.0, 0.0});
}

}  // namespace
}  // namespace hal::cpu::testing
