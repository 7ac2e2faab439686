// tests/cpu/kernel_check.h: runs an op through the CPU backend's kernels and through
// hal::reference::execute on the same random strided tensors and compares the results.
//
// Tensors live in byte buffers with a random leading offset and optional padded or
// transposed strides, so kernels are exercised on views, not just dense arrays. Each
// output element must satisfy |cpu - ref| <= atol + rtol * |ref| (both compared as
// double, NaN only equal to NaN), and output bytes outside the view must be untouched.
//
// Threading: test-only helpers, single-threaded use.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu_kernels.h"
#include "hal/dtype.h"
#include "hal/op.h"
#include "hal/reference_ops.h"

namespace hal::cpu::testing {

// How a test tensor's strides are laid out.
enum class Layout {
  kDense,       // row-major
  kPadded,      // row-major with every dim's stride padded (gaps between rows)
  kTransposed,  // last two dims stored swapped (column-major matrix), then padded
};

struct HostTensor {
  TensorDesc desc;
  std::vector<uint8_t> bytes;  // backing store: offset + extent + tail guard
  uint64_t offset = 0;

  void* data() { return bytes.data() + offset; }
  const void* data() const { return bytes.data() + offset; }
};

inline std::mt19937& rng() {
  static std::mt19937 gen(12345);
  return gen;
}

inline TensorDesc make_desc(DType dtype, Shape shape, Layout layout) {
  TensorDesc d;
  d.dtype = dtype;
  d.shape = shape;
  const int r = shape.rank;
  // Order in which dims are laid out innermost first.
  int order[kMaxRank];
  for (int i = 0; i < r; ++i) order[i] = r - 1 - i;
  if (layout == Layout::kTransposed && r >= 2) std::swap(order[0], order[1]);
  int64_t stride = 1;
  for (int i = 0; i < r; ++i) {
    const int dim = order[i];
    d.strides[dim] = stride;
    int64_t extent = std::max<int64_t>(shape.dims[dim], 1);
    if (layout != Layout::kDense) extent += 1 + (dim % 2);  // gaps of 1-2 elements
    stride *= extent;
  }
  return d;
}

// Fills `t` with values uniform in [lo, hi] (integers: whole numbers in that range).
inline void fill_random(HostTensor& t, double lo, double hi) {
  std::uniform_real_distribution<double> dist(lo, hi);
  const TensorDesc& d = t.desc;
  const int64_t n = d.numel();
  int64_t idx[kMaxRank] = {};
  for (int64_t e = 0; e < n; ++e) {
    double v = dist(rng());
    if (is_integer(d.dtype)) v = std::floor(v);
    reference::store(t.data(), d, idx, v);
    for (int i = d.shape.rank - 1; i >= 0; --i) {
      if (++idx[i] < d.shape.dims[i]) break;
      idx[i] = 0;
    }
  }
}

inline HostTensor make_tensor(DType dtype, Shape shape, Layout layout = Layout::kDense,
                              double lo = -1.0, double hi = 1.0) {
  HostTensor t;
  t.desc = make_desc(dtype, shape, layout);
  const uint64_t esz = dtype_size(dtype);
  t.offset = esz * uint64_t(rng()() % 5);  // the view does not start at the buffer start
  t.bytes.assign(t.offset + t.desc.extent_bytes() + 64, 0xAB);
  fill_random(t, lo, hi);
  return t;
}

// An output tensor of the spec's output desc, filled with a sentinel byte.
inline HostTensor make_output(const TensorDesc& desc) {
  HostTensor t;
  t.desc = desc;
  t.offset = dtype_size(desc.dtype) * 3;
  t.bytes.assign(t.offset + desc.extent_bytes() + 64, 0xCD);
  return t;
}

struct Tolerance {
  double atol = 1e-5;
  double rtol = 1e-5;
};

// The tolerance of a result rounded to `t` on top of f32 work `base`: f16 and bf16 results
// may round to the neighbouring value when the f32 results differ in their last bits.
inline Tolerance for_dtype(DType t, Tolerance base) {
  if (t == DType::kF16) return {std::max(base.atol, 1e-3), std::max(base.rtol, 2e-3)};
  if (t == DType::kBF16) return {std::max(base.atol, 8e-3), std::max(base.rtol, 1.6e-2)};
  return base;
}

inline std::string describe(const OpSpec& s) {
  std::string out = std::string(op_kind_name(s.kind)) + "(";
  for (int i = 0; i < s.num_inputs; ++i) out += (i ? ", " : "") + s.inputs[i].to_string();
  return out + ") -> " + s.output.to_string();
}

// Runs spec on both implementations and compares (failures are reported to gtest).
inline void check_op(OpSpec spec, std::vector<HostTensor*> inputs, Tolerance tol,
                     Layout out_layout = Layout::kDense) {
  spec.num_inputs = int32_t(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) spec.inputs[i] = inputs[i]->desc;
  if (spec.output.dtype == DType::kInvalid) {
    auto inferred = infer_output(spec.kind, spec.attrs, spec.inputs.data(), spec.num_inputs);
    EXPECT_TRUE(inferred.ok()) << inferred.status().to_string();
    if (!inferred.ok()) return;
    spec.output.dtype = inferred->dtype;
  }
  {
    auto inferred = infer_output(spec.kind, spec.attrs, spec.inputs.data(), spec.num_inputs);
    if (inferred.ok()) spec.output.shape = inferred->shape;
  }
  spec.output = make_desc(spec.output.dtype, spec.output.shape, out_layout);
  const Status valid = validate_op(spec);
  EXPECT_TRUE(valid.ok()) << valid.to_string();
  if (!valid.ok()) return;

  const void* ptrs[kMaxOpInputs] = {};
  for (size_t i = 0; i < inputs.size(); ++i) ptrs[i] = inputs[i]->data();
  HostTensor got = make_output(spec.output);
  HostTensor want = make_output(spec.output);
  const Status s_got = run_op(spec, ptrs, got.data());
  const Status s_want = reference::execute(spec, ptrs, want.data());
  EXPECT_TRUE(s_got.ok()) << describe(spec) << ": " << s_got.to_string();
  EXPECT_TRUE(s_want.ok()) << describe(spec) << ": " << s_want.to_string();
  if (!s_got.ok() || !s_want.ok()) return;

  const TensorDesc& o = spec.output;
  const Tolerance t = for_dtype(o.dtype, tol);
  int64_t idx[kMaxRank] = {};
  int failures = 0;
  for (int64_t e = 0; e < o.numel() && failures < 5; ++e) {
    const double g = reference::load(got.data(), o, idx);
    const double w = reference::load(want.data(), o, idx);
    const bool ok = (std::isnan(w) && std::isnan(g)) || (std::isinf(w) && g == w) ||
                    std::fabs(g - w) <= t.atol + t.rtol * std::fabs(w);
    if (!ok) {
      std::string at = "[";
      for (int i = 0; i < o.shape.rank; ++i) at += (i ? ", " : "") + std::to_string(idx[i]);
      ADD_FAILURE() << describe(spec) << " at " << at << "]: cpu " << g << " vs reference " << w
                    << " (tolerance " << t.atol << " + " << t.rtol << " * |ref|)";
      ++failures;
    }
    for (int i = o.shape.rank - 1; i >= 0; --i) {
      if (++idx[i] < o.shape.dims[i]) break;
      idx[i] = 0;
    }
  }
  // Bytes outside the output view (the gaps of padded layouts, the guards before and
  // after) must not be written: blank the view in both results, then all bytes agree.
  std::fill(idx, idx + kMaxRank, 0);
  for (int64_t e = 0; e < o.numel(); ++e) {
    reference::store(got.data(), o, idx, 0.0);
    reference::store(want.data(), o, idx, 0.0);
    for (int i = o.shape.rank - 1; i >= 0; --i) {
      if (++idx[i] < o.shape.dims[i]) break;
      idx[i] = 0;
    }
  }
  EXPECT_TRUE(got.bytes == want.bytes) << describe(spec) << " wrote outside its output view";
}

}  // namespace hal::cpu::testing
