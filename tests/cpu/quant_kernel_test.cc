// The CPU backend's products with quantized weights and its gathers from quantized
// tables, against hal::reference on every format.
//
// For decode-sized products the CPU rounds A's rows to int8 blocks of 32 (cpu_quant.h).
// So each product is checked twice: tightly against the reference fed the A the kernels
// actually multiply (A rounded the same way: this catches any unpacking or indexing
// error), and against the plain reference within the rounding's worst case (sum of |w|
// x half an activation step), which bounds what a user sees. Prefill-sized products of
// the formats without integer panels (and of all with HAL_CPU_INT8_PREFILL=0: dequantized
// f32 panels) and fp8 weights use A exactly: both comparisons are then tight against the
// plain reference.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu_quant.h"
#include "cpu_weight_cache.h"
#include "hal/quant_reference.h"
#include "kernel_check.h"

namespace hal::cpu::testing {
namespace {

const DType kAllFormats[] = {DType::kQ8_0,          DType::kQ4_0,  DType::kQ4_1,  DType::kQ5_0,
                             DType::kQ5_1,          DType::kQ4_K,  DType::kQ5_K,  DType::kQ6_K,
                             DType::kI8Channel,     DType::kI4G32, DType::kI4G64, DType::kI4G128,
                             DType::kFP8E4M3Channel};

// `rows` weight rows of `k` random values, quantized; the view steps `row_step` rows.
HostTensor make_weights(DType t, int64_t rows, int64_t k, int64_t row_step = 1) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> values(size_t(rows * row_step * k));
  for (float& v : values) v = dist(rng());
  HostTensor w;
  w.desc = TensorDesc::contiguous(t, Shape{rows, k});
  w.desc.strides[0] = row_step * k;
  w.offset = 0;
  const std::vector<uint8_t> q = reference::quantize_rows(t, values.data(), rows * row_step, k);
  w.bytes = q;
  w.bytes.resize(q.size() + 64, 0xAB);
  return w;
}

// A's rows as the CPU kernels see them: int8 blocks of 32, d = amax / 127.
HostTensor round_like_kernels(const HostTensor& a, bool transpose_a) {
  HostTensor r;
  r.desc = TensorDesc::contiguous(DType::kF32, a.desc.shape);
  r.bytes.assign(r.desc.bytes(), 0);
  const int rank = a.desc.shape.rank;
  const int64_t rows = transpose_a ? a.desc.shape.back() : a.desc.shape.back(2);
  const int64_t k = transpose_a ? a.desc.shape.back(2) : a.desc.shape.back();
  int64_t batches = 1;
  for (int i = 0; i < rank - 2; ++i) batches *= a.desc.shape.dims[i];
  int64_t idx[kMaxRank] = {};
  for (int64_t b = 0; b < batches; ++b) {
    int64_t rem = b;
    for (int i = rank - 3; i >= 0; --i) {
      idx[i] = rem % a.desc.shape.dims[i];
      rem /= a.desc.shape.dims[i];
    }
    for (int64_t row = 0; row < rows; ++row)
      for (int64_t blk = 0; blk < k / 32; ++blk) {
        float v[32], amax = 0;
        for (int i = 0; i < 32; ++i) {
          idx[rank - 2] = transpose_a ? blk * 32 + i : row;
          idx[rank - 1] = transpose_a ? row : blk * 32 + i;
          v[i] = float(reference::load(a.data(), a.desc, idx));
          amax = std::max(amax, std::fabs(v[i]));
        }
        const float inv = amax > 0 ? 127.0f / amax : 0.0f;
        for (int i = 0; i < 32; ++i) {
          idx[rank - 2] = transpose_a ? blk * 32 + i : row;
          idx[rank - 1] = transpose_a ? row : blk * 32 + i;
          reference::store(r.data(), r.desc, idx, std::nearbyint(v[i] * inv) * (amax / 127.0f));
        }
      }
  }
  return r;
}

OpSpec product_spec(bool ta, float alpha = 1.0f) {
  OpSpec s;
  s.kind = OpKind::kMatmul;
  s.attrs.transpose_a = ta;
  s.attrs.transpose_b = true;
  s.attrs.alpha = alpha;
  return s;
}

// Checks one product both ways (see the top of this file).
void check_product(DType wt, const HostTensor& a, const HostTensor& w, bool ta,
                   HostTensor* bias = nullptr, DType out_t = DType::kF32) {
  OpSpec spec = product_spec(ta, 0.75f);
  spec.num_inputs = bias ? 3 : 2;
  spec.inputs[0] = a.desc;
  spec.inputs[1] = w.desc;
  if (bias) spec.inputs[2] = bias->desc;
  auto inferred = infer_output(spec.kind, spec.attrs, spec.inputs.data(), spec.num_inputs);
  ASSERT_TRUE(inferred.ok()) << inferred.status().to_string();
  spec.output = TensorDesc::contiguous(out_t, inferred->shape);
  ASSERT_TRUE(validate_op(spec).ok()) << validate_op(spec).to_string();
  // fp8 weights and prefill-sized products through f32 panels (sgemm) use A as it is.
  const int64_t rows = spec.output.numel() / spec.output.shape.back();
  const bool exact_a = wt == DType::kFP8E4M3Channel || quant_uses_panels(wt, rows);
  HostTensor rounded = exact_a ? a : round_like_kernels(a, ta);

  const int64_t n = spec.output.numel();
  std::vector<float> got(static_cast<size_t>(n)), exact(got), plain(got);
  auto run = [&](const HostTensor& av, void* out, bool reference) {
    OpSpec s = spec;
    s.inputs[0] = av.desc;
    s.output = TensorDesc::contiguous(DType::kF32, spec.output.shape);
    const void* ptrs[3] = {av.data(), w.data(), bias ? bias->data() : nullptr};
    return reference ? reference::execute(s, ptrs, out) : run_op(spec, ptrs, out);
  };
  std::vector<uint8_t> raw(spec.output.bytes());
  ASSERT_TRUE(run(a, raw.data(), false).ok());
  for (int64_t i = 0; i < n; ++i) got[size_t(i)] = load_as_float(raw.data(), out_t, i);
  ASSERT_TRUE(run(rounded, exact.data(), true).ok());
  ASSERT_TRUE(run(a, plain.data(), true).ok());

  // Worst case of A's rounding: K x max|w| x half a step of |A| <= 1 (x alpha).
  const int64_t k = w.desc.shape.back();
  const double worst = exact_a ? 0.0 : 0.75 * double(k) * 1.0 * (1.0 / 254.0);
  const double out_tol = out_t == DType::kF32 ? 0.0 : (out_t == DType::kF16 ? 2e-3 : 1.6e-2);
  int failures = 0;
  for (int64_t i = 0; i < n && failures < 4; ++i) {
    const double g = got[size_t(i)], e = exact[size_t(i)], p = plain[size_t(i)];
    const double tight = 2e-4 + 2e-5 * std::sqrt(double(k)) + out_tol * std::fabs(e);
    if (std::fabs(g - e) > tight || std::fabs(g - p) > tight + worst) {
      ADD_FAILURE() << dtype_name(wt) << " " << a.desc.to_string() << " x " << w.desc.to_string()
                    << "^T element " << i << ": cpu " << g << ", reference on rounded A " << e
                    << ", reference " << p;
      ++failures;
    }
  }
}

TEST(CpuQuantMatmul, EveryFormatDecodeAndPrefillShapes) {
  for (DType t : kAllFormats) {
    const int64_t k = dtype_block(t) >= 256 ? 512 : 256;
    for (int64_t m : {1, 2, 3, 5, 8, 13}) {
      HostTensor w = make_weights(t, 37, k);
      HostTensor a = make_tensor(DType::kF32, {m, k});
      check_product(t, a, w, false);
    }
  }
}

// Prefill products through the integer panels (8 weight rows, tiles of 4 rows of A): every
// remainder of rows and columns, a bias, and an f16 output.
TEST(CpuQuantMatmul, PrefillPanelsEveryRowAndColumnRemainder) {
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kI8Channel}) {
    HostTensor bias = make_tensor(DType::kF32, {67});
    for (int64_t m : {9, 10, 11, 12, 40}) {
      HostTensor w = make_weights(t, 67, 512);
      HostTensor a = make_tensor(DType::kF32, {m, 512});
      check_product(t, a, w, false, &bias, m == 40 ? DType::kF16 : DType::kF32);
    }
  }
}

TEST(CpuQuantMatmul, ActivationDtypesLayoutsBiasAndOutputs) {
  for (DType t : {DType::kQ4_0, DType::kQ6_K, DType::kI4G128, DType::kFP8E4M3Channel}) {
    const int64_t k = 256;
    HostTensor w = make_weights(t, 19, k, /*row_step=*/2);  // every other row: a strided view
    HostTensor bias = make_tensor(DType::kF32, {19});
    for (DType at : {DType::kF32, DType::kF16, DType::kBF16}) {
      HostTensor a = make_tensor(at, {4, k}, Layout::kPadded);
      check_product(t, a, w, false, &bias, at);
      HostTensor at_t = make_tensor(at, {k, 3}, Layout::kDense);  // A stored [K, M]
      check_product(t, at_t, w, true);
    }
  }
}

TEST(CpuQuantMatmul, BatchedActivationsShareTheWeights) {
  HostTensor w = make_weights(DType::kQ8_0, 24, 128);
  HostTensor a = make_tensor(DType::kF32, {2, 3, 5, 128});
  check_product(DType::kQ8_0, a, w, false);
  // A batch of weights (one matrix per batch entry) broadcast against A.
  HostTensor wb = make_weights(DType::kQ5_1, 2 * 9, 64);
  wb.desc = TensorDesc::contiguous(DType::kQ5_1, Shape{2, 9, 64});
  HostTensor ab = make_tensor(DType::kF32, {2, 4, 64});
  check_product(DType::kQ5_1, ab, wb, false);
}

// q4_0, q8_0 and the K-quants decode read a copy of the weights in groups of 8 rows
// (cpu_weight_cache.h) when they lie in memory the plugin tracks: every group/remainder
// split (one and several groups per stream), a bias and every output dtype, a strided
// view, and a write to the weights
// dropping the copy so the next product reads the new values.
TEST(CpuQuantMatmul, DecodeThroughEightRowCopies) {
  for (DType t : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K})
    for (int64_t rows : {8, 21, 64, 203}) {
      for (int64_t step : {1, 2}) {
        // Three super-blocks (GPT-2's 768) where rows are few; one elsewhere.
        const int64_t k = rows <= 21 ? 768 : 256;
        SCOPED_TRACE(std::string(dtype_name(t)) + " rows " + std::to_string(rows) + " step " +
                     std::to_string(step) + " k " + std::to_string(k));
        HostTensor w = make_weights(t, rows, k, step);
        weight_cache_track(w.data(), w.bytes.size(), nullptr);
        const uint64_t made = weight_cache_stats().made;
        // The bias and the output dtype are applied by each part to its own columns (and
        // after the remainder rows to theirs): one row with each output dtype.
        HostTensor bias = make_tensor(DType::kF32, {rows});
        // Several rows of A go through in fours (x8_rows): every remainder of four.
        for (int64_t m : {1, 2, 3, 5, 6, 8}) {
          HostTensor a = make_tensor(DType::kF32, {m, k});
          check_product(t, a, w, false);
        }
        for (DType out : {DType::kF32, DType::kF16, DType::kBF16})
          check_product(t, make_tensor(DType::kF32, {1, k}), w, false, &bias, out);
        EXPECT_EQ(weight_cache_stats().made, made + 1) << "one copy per weight, re-used";
        // New weights in the same memory: the copy goes with the write.
        const HostTensor fresh = make_weights(t, rows, k, step);
        std::copy(fresh.bytes.begin(), fresh.bytes.end(), w.bytes.begin());
        weight_cache_written(static_cast<const uint8_t*>(w.data()) + 40, 1);
        EXPECT_EQ(weight_cache_stats().made, made + 1);
        check_product(t, make_tensor(DType::kF32, {1, k}), w, false);
        EXPECT_EQ(weight_cache_stats().made, made + 2);
        weight_cache_untrack(w.data());
      }
    }
}

TEST(CpuQuantMatmul, ReportsItsInstructionSet) {
  const std::string isa = quant_kernel_isa();
  EXPECT_TRUE(isa == "scalar" || isa == "avx2" || isa == "avx512-vnni") << isa;
  const char* cap = std::getenv("HAL_CPU_ISA");
  if (cap && std::string(cap) == "x86-64") {
    EXPECT_EQ(isa, "scalar");
  }
  if (cap && std::string(cap) == "x86-64-v3") {
    EXPECT_NE(isa, "avx512-vnni");
  }
}

TEST(CpuQuantEmbedding, GathersDequantizedRowsExactly) {
  for (DType t : kAllFormats) {
    const int64_t d = dtype_block(t) >= 256 ? 256 : 128;
    HostTensor table = make_weights(t, 11, d);
    for (DType out : {DType::kF32, DType::kF16, DType::kBF16}) {
      HostTensor ids = make_tensor(DType::kI32, {2, 3}, Layout::kDense, 0, 10.99);
      OpSpec s;
      s.kind = OpKind::kEmbedding;
      s.output.dtype = out;
      // Exact: the gather copies dequantized values (rounded once to the output dtype).
      check_op(s, {&table, &ids}, Tolerance{0, 0});
    }
  }
}

}  // namespace
}  // namespace hal::cpu::testing
