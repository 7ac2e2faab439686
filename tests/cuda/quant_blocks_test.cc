// The CUDA backend's quantized-weight decoding (backends/cuda/kernels/quant_blocks.h),
// compiled for the host: block by block bit-exact with hal/reference on every format, and
// the decode kernel's per-lane work summed over a warp of 32 lanes equal to the product.
// Runs without a GPU: the same functions are the kernels' device code.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "hal/quant_reference.h"
#include "kernels/quant_blocks.h"

namespace {

using hal::DType;

const DType kFormats[] = {DType::kQ8_0,          DType::kQ4_0,  DType::kQ4_1,  DType::kQ5_0,
                          DType::kQ5_1,          DType::kQ4_K,  DType::kQ5_K,  DType::kQ6_K,
                          DType::kI8Channel,     DType::kI4G32, DType::kI4G64, DType::kI4G128,
                          DType::kFP8E4M3Channel};

std::vector<uint8_t> random_rows(DType t, int64_t rows, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(size_t(rows * k));
  for (float& x : v) x = dist(rng);
  return hal::reference::quantize_rows(t, v.data(), rows, k);
}

TEST(CudaQuantBlocks, RowBytesMatchTheHal) {
  for (DType t : kFormats) {
    EXPECT_EQ(hal::cuda::quant::row_bytes(int32_t(t), 512), hal::dtype_row_bytes(t, 512))
        << hal::dtype_name(t);
    EXPECT_TRUE(hal::cuda::quant::is_format(int32_t(t)));
  }
  EXPECT_FALSE(hal::cuda::quant::is_format(int32_t(DType::kF16)));
}

TEST(CudaQuantBlocks, BlocksDecodeBitExactWithTheReference) {
  for (DType t : kFormats) {
    const int64_t k = 512, rows = 3;
    const std::vector<uint8_t> q = random_rows(t, rows, k, 7);
    const std::vector<float> want = hal::reference::dequantize_rows(t, q.data(), rows, k);
    const uint64_t rb = hal::dtype_row_bytes(t, k);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t b = 0; b < k / 32; ++b) {
        float got[32];
        hal::cuda::quant::dequant_block32(int32_t(t), q.data() + r * rb, b, got);
        for (int i = 0; i < 32; ++i)
          ASSERT_EQ(std::memcmp(&got[i], &want[size_t(r * k + 32 * b + i)], 4), 0)
              << hal::dtype_name(t) << " row " << r << " element " << 32 * b + i << ": " << got[i]
              << " vs " << want[size_t(r * k + 32 * b + i)];
      }
  }
}

TEST(CudaQuantBlocks, WarpOfLanesComputesTheProduct) {
  for (DType t : kFormats) {
    const int64_t k = 1024, m_rows = 3;
    const std::vector<uint8_t> q = random_rows(t, 1, k, 9);
    const std::vector<float> w = hal::reference::dequantize_rows(t, q.data(), 1, k);
    std::vector<float> a(size_t(m_rows * k));
    for (size_t i = 0; i < a.size(); ++i) a[i] = float((i * 37) % 19) / 9.0f - 1.0f;
    float acc[8] = {};
    for (int lane = 0; lane < 32; ++lane)
      hal::cuda::quant::gemv_lane<8>(int32_t(t), q.data(), k, a.data(), k, int(m_rows), lane, 32,
                                     acc);
    for (int64_t m = 0; m < m_rows; ++m) {
      double want = 0, mag = 0;
      for (int64_t i = 0; i < k; ++i) {
        want += double(w[size_t(i)]) * a[size_t(m * k + i)];
        mag += std::fabs(double(w[size_t(i)]) * a[size_t(m * k + i)]);
      }
      EXPECT_NEAR(acc[m], want, 1e-5 * mag + 1e-6) << hal::dtype_name(t) << " row " << m;
    }
  }
}

}  // namespace
