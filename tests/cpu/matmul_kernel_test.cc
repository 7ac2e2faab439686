// The CPU backend's matmul against the reference: the prefill panels and OpenBLAS paths
// (dense, strided, transposed; f32, f16, bf16), the streaming decode kernels (few rows;
// weights [K, N] or [N, K]), batching with broadcast, bias and alpha.
#include <gtest/gtest.h>

#include "kernel_check.h"

namespace hal::cpu::testing {
namespace {

// f32 accumulation over K <= ~300 terms of magnitude <= 1: error well under 1e-4.
constexpr Tolerance kMatmulTol{2e-4, 1e-4};

OpSpec matmul_spec(bool ta, bool tb, float alpha = 1.0f) {
  OpSpec s;
  s.kind = OpKind::kMatmul;
  s.attrs.transpose_a = ta;
  s.attrs.transpose_b = tb;
  s.attrs.alpha = alpha;
  return s;
}

Shape mat(int64_t rows, int64_t cols, bool swapped) {
  return swapped ? Shape{cols, rows} : Shape{rows, cols};
}

TEST(CpuMatmul, OddSizesAllTransposes) {
  const int64_t sizes[] = {1, 3, 17, 65};
  for (int64_t m : sizes)
    for (int64_t n : sizes)
      for (int64_t k : {int64_t(1), int64_t(17), int64_t(65)})
        for (int t = 0; t < 4; ++t) {
          const bool ta = t & 1, tb = t & 2;
          HostTensor a = make_tensor(DType::kF32, mat(m, k, ta));
          HostTensor b = make_tensor(DType::kF32, mat(k, n, tb));
          check_op(matmul_spec(ta, tb), {&a, &b}, kMatmulTol);
        }
}

TEST(CpuMatmul, LargerSquareAndRectangular) {
  HostTensor a = make_tensor(DType::kF32, {257, 129});
  HostTensor b = make_tensor(DType::kF32, {129, 257});
  check_op(matmul_spec(false, false), {&a, &b}, kMatmulTol);
  HostTensor at = make_tensor(DType::kF32, {129, 96});
  HostTensor bt = make_tensor(DType::kF32, {200, 129});
  check_op(matmul_spec(true, true, 0.5f), {&at, &bt}, kMatmulTol);
}

TEST(CpuMatmul, StridedAndTransposedStorage) {
  for (Layout la : {Layout::kDense, Layout::kPadded, Layout::kTransposed})
    for (Layout lb : {Layout::kDense, Layout::kPadded, Layout::kTransposed})
      for (Layout lo : {Layout::kDense, Layout::kPadded}) {
        HostTensor a = make_tensor(DType::kF32, {33, 40}, la);
        HostTensor b = make_tensor(DType::kF32, {40, 19}, lb);
        check_op(matmul_spec(false, false), {&a, &b}, kMatmulTol, lo);
        // Few rows: the streaming kernels on the same layouts.
        HostTensor a1 = make_tensor(DType::kF32, {3, 40}, la);
        check_op(matmul_spec(false, false), {&a1, &b}, kMatmulTol, lo);
      }
}

TEST(CpuMatmul, HalfPrecisionInputsAndOutputs) {
  for (DType t : {DType::kF16, DType::kBF16})
    for (int64_t m : {int64_t(2), int64_t(37)})
      for (int tr = 0; tr < 4; ++tr) {
        const bool ta = tr & 1, tb = tr & 2;
        HostTensor a = make_tensor(t, mat(m, 70, ta));
        HostTensor b = make_tensor(t, mat(70, 45, tb));
        HostTensor bias = make_tensor(t, {45});
        check_op(matmul_spec(ta, tb, 1.5f), {&a, &b, &bias}, kMatmulTol);
      }
  // Mixed: f32 activations against bf16 weights (output f32, the dtype of A).
  HostTensor a = make_tensor(DType::kF32, {4, 96});
  HostTensor w = make_tensor(DType::kBF16, {96, 130});
  check_op(matmul_spec(false, false), {&a, &w}, kMatmulTol);
  // Prefill against f16/bf16 weights stored [N, K] (GGUF): the converted-panel path, with
  // every remainder of its 6-row tiles and 16-column panels and a K tail.
  for (DType t : {DType::kF16, DType::kBF16})
    for (int64_t m : {int64_t(9), int64_t(13), int64_t(24)}) {
      HostTensor x = make_tensor(DType::kF32, {m, 83});
      HostTensor wt = make_tensor(t, {35, 83});
      HostTensor bias = make_tensor(DType::kF32, {35});
      check_op(matmul_spec(false, true, 0.5f), {&x, &wt, &bias}, kMatmulTol);
    }
}

// The prefill panels read f32 activations in place (row stride of a padded or sliced
// tensor) and write an f32 output's full panels in place, adding the bias in the kernel
// when there is no alpha: every layout of both, against weights of 35 columns (two full
// panels and a tail through scratch) in every float dtype, stored [N, K] (GGUF; dense or
// padded rows) or [K, N] (Conv1D; dense or padded), a K with a tail of the 8 x 8 transpose.
TEST(CpuMatmul, PrefillPanelsOnStridedActivationsAndOutputs) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16})
    for (bool tb : {true, false})
      for (Layout lw : {Layout::kDense, Layout::kPadded})
        for (Layout la : {Layout::kDense, Layout::kPadded, Layout::kTransposed})
          for (Layout lo : {Layout::kDense, Layout::kPadded}) {
            SCOPED_TRACE(std::string(dtype_name(t)) + (tb ? " [N, K]" : " [K, N]") +
                         (lw == Layout::kPadded ? " padded" : ""));
            HostTensor x = make_tensor(DType::kF32, {19, 83}, la);
            HostTensor wt = make_tensor(t, mat(83, 35, tb), lw);
            HostTensor bias = make_tensor(DType::kF32, {35});
            check_op(matmul_spec(false, tb, 0.5f), {&x, &wt, &bias}, kMatmulTol, lo);
            check_op(matmul_spec(false, tb), {&x, &wt, &bias}, kMatmulTol, lo);  // bias in-kernel
            check_op(matmul_spec(false, tb), {&x, &wt}, kMatmulTol, lo);
          }
}

// Decode-shaped: a few rows against weights stored [K, N] (Hugging Face Conv1D) or [N, K]
// with transpose_b (lm_head), in every dtype; sizes that exercise column tiles, K splits
// and vector tails.
TEST(CpuMatmul, DecodeShapesUseStreamingKernels) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16})
    for (int64_t m : {int64_t(1), int64_t(2), int64_t(5), int64_t(8)})
      for (bool tb : {false, true}) {
        HostTensor a = make_tensor(t, {m, 200});
        HostTensor b = make_tensor(t, mat(200, 1100, tb));
        HostTensor bias = make_tensor(DType::kF32, {1100});
        check_op(matmul_spec(false, tb), {&a, &b, &bias}, kMatmulTol);
      }
  // One to eight rows of A against [N, K] rows read as 2, 4 or 8 streams
  // (HAL_CPU_DECODE_STREAMS, ctest runs each; several rows of A, four at a time, with
  // AVX-512 and at most 4 streams): rows past the last stream's part, a K with a vector
  // tail, and fewer rows than streams.
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16})
    for (int64_t m : {int64_t(1), int64_t(2), int64_t(3), int64_t(4), int64_t(5), int64_t(8)})
      for (int64_t n : {int64_t(7), int64_t(29), int64_t(203)}) {
        HostTensor a = make_tensor(t, {m, 43});
        HostTensor b = make_tensor(t, mat(43, n, true));
        check_op(matmul_spec(false, true), {&a, &b}, kMatmulTol);
      }
  // A tile count that does not divide among threads (K split + reduction), M = 8.
  HostTensor a = make_tensor(DType::kF32, {8, 256});
  HostTensor b = make_tensor(DType::kF32, {256, 3 * 1024 + 5});
  check_op(matmul_spec(false, false, 2.0f), {&a, &b}, kMatmulTol);
  // A narrow output (< 256 columns per thread) with a long K: K is split across threads
  // and the partial sums reduced.
  for (DType t : {DType::kF32, DType::kBF16}) {
    HostTensor an = make_tensor(t, {5, 1000});
    HostTensor bn = make_tensor(t, {1000, 300});
    check_op(matmul_spec(false, false), {&an, &bn}, kMatmulTol);
  }
  // Nine rows: past the streaming threshold, back to BLAS.
  HostTensor a9 = make_tensor(DType::kF32, {9, 256});
  check_op(matmul_spec(false, false), {&a9, &b}, kMatmulTol);
}

TEST(CpuMatmul, BatchedAndBroadcast) {
  // Linear layer over [B, S, K] with shared weights (folded into one product).
  HostTensor x = make_tensor(DType::kF32, {2, 3, 5, 24});
  HostTensor w = make_tensor(DType::kF32, {24, 7});
  HostTensor bias = make_tensor(DType::kF32, {7});
  check_op(matmul_spec(false, false), {&x, &w, &bias}, kMatmulTol);
  // Same, strided activations (cannot fold): a product per batch.
  HostTensor xp = make_tensor(DType::kF32, {2, 3, 5, 24}, Layout::kPadded);
  check_op(matmul_spec(false, false), {&xp, &w, &bias}, kMatmulTol);
  // Batch broadcast both ways: [2, 1, M, K] x [3, K, N] -> [2, 3, M, N].
  HostTensor a = make_tensor(DType::kF32, {2, 1, 6, 9});
  HostTensor b = make_tensor(DType::kF32, {3, 9, 4});
  check_op(matmul_spec(false, false), {&a, &b}, kMatmulTol);
  // Attention-like per-head products, transposed B, f16.
  HostTensor q = make_tensor(DType::kF16, {2, 4, 1, 32});
  HostTensor k = make_tensor(DType::kF16, {2, 4, 33, 32});
  check_op(matmul_spec(false, true), {&q, &k}, kMatmulTol);
  // Large batched products (each over OpenBLAS's threading threshold).
  HostTensor ba = make_tensor(DType::kF32, {2, 70, 66});
  HostTensor bb = make_tensor(DType::kF32, {2, 66, 80}, Layout::kTransposed);
  check_op(matmul_spec(false, false), {&ba, &bb}, kMatmulTol);
}

TEST(CpuMatmul, EmptyInnerDimensionGivesBias) {
  HostTensor a = make_tensor(DType::kF32, {3, 0});
  HostTensor b = make_tensor(DType::kF32, {0, 5});
  HostTensor bias = make_tensor(DType::kF32, {5});
  check_op(matmul_spec(false, false), {&a, &b, &bias}, kMatmulTol);
  check_op(matmul_spec(false, false), {&a, &b}, kMatmulTol);
  HostTensor a1 = make_tensor(DType::kF32, {12, 0});
  check_op(matmul_spec(false, false), {&a1, &b, &bias}, kMatmulTol);
}

TEST(CpuMatmul, EmptyOutputsAreNoOps) {
  HostTensor a = make_tensor(DType::kF32, {0, 4});
  HostTensor b = make_tensor(DType::kF32, {4, 6});
  check_op(matmul_spec(false, false), {&a, &b}, kMatmulTol);
  HostTensor c = make_tensor(DType::kF32, {2, 0, 4});
  check_op(matmul_spec(false, false), {&c, &b}, kMatmulTol);
}

}  // namespace
}  // namespace hal::cpu::testing
