// tests/cuda/cuda_test_support.h: the platform with only the CUDA plugin, the skip rule for
// machines without a GPU, and an op harness that runs one op on a GPU and on
// hal::reference and compares element by element.
//
// Skips: every GPU test calls first_gpu() (or gpus()); without a device it skips, naming why
// the plugin found none (the CUDA runtime's answer), so a CI log says "no GPU", not
// "passed".
//
// Threading: test helpers; the platform is shared by all tests of the process.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hal/hal.h"
#include "hal/reference_ops.h"

namespace hal::cuda_test {

// The platform with the CUDA plugin alone (never destroyed: devices stay valid for every
// test, and a second CUDA context per process would only slow the suite).
inline Platform* cuda_platform(const char* precision = "fp32") {
  static Platform* fp32 = nullptr;
  static Platform* tf32 = nullptr;
  Platform*& slot = std::string(precision) == "tf32" ? tf32 : fp32;
  if (!slot) {
    PlatformOptions o;
    o.only_plugins = {"cuda"};
    o.plugin_options["cuda"] = {{"compute_precision", precision}};
    auto p = Platform::create(o);
    if (!p.ok()) {
      ADD_FAILURE() << p.status().to_string();
      return nullptr;
    }
    slot = p->release();
  }
  return slot;
}

inline const PluginReport* cuda_report(const Platform& p) {
  for (const PluginReport& r : p.plugin_reports())
    if (r.name == "cuda") return &r;
  return nullptr;
}

// Why there is no GPU, for skip messages.
inline std::string no_gpu_reason() {
  Platform* p = cuda_platform();
  if (!p) return "the platform could not be created";
  const PluginReport* r = cuda_report(*p);
  if (!r) return "the cuda plugin was not found";
  if (!r->loaded) return "the cuda plugin did not load: " + r->reason;
  // The plugin logs the runtime's answer; ask the runtime again for the skip message.
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  std::string why = "no GPU: the cuda plugin loaded and reports 0 devices; the CUDA runtime says ";
  if (e != cudaSuccess) {
    why += cudaGetErrorName(e);
    why += " (";
    why += cudaGetErrorString(e);
    why += ")";
  } else {
    why += std::to_string(count) + " device(s)";
  }
  return why;
}

#define HAL_CUDA_GPU_OR_SKIP(var)                                                        \
  ::hal::Device* var = nullptr;                                                          \
  do {                                                                                   \
    ::hal::Platform* p_ = ::hal::cuda_test::cuda_platform();                             \
    if (!p_ || p_->devices().empty()) GTEST_SKIP() << ::hal::cuda_test::no_gpu_reason(); \
    var = p_->devices()[0];                                                              \
  } while (0)

// ---- the op harness ---------------------------------------------------------------

// A strided layout: kDense row-major; kPadded row-major with gaps after every dim;
// kTransposed the last two dims stored swapped (a column-major matrix).
enum class Layout { kDense, kPadded, kTransposed };

inline TensorDesc layout_desc(DType dtype, const Shape& shape, Layout layout) {
  TensorDesc d;
  d.dtype = dtype;
  d.shape = shape;
  const int r = shape.rank;
  int order[kMaxRank];
  for (int i = 0; i < r; ++i) order[i] = r - 1 - i;
  if (layout == Layout::kTransposed && r >= 2) std::swap(order[0], order[1]);
  int64_t stride = 1;
  for (int i = 0; i < r; ++i) {
    const int dim = order[i];
    d.strides[dim] = stride;
    int64_t extent = std::max<int64_t>(shape.dims[dim], 1);
    if (layout == Layout::kPadded) extent += 1 + (dim % 2);
    stride *= extent;
  }
  return d;
}

template <typename Fn>
void for_each_index(const Shape& shape, Fn&& fn) {
  if (shape.numel() <= 0) return;
  int64_t idx[kMaxRank] = {};
  for (;;) {
    fn(static_cast<const int64_t*>(idx));
    int d = shape.rank - 1;
    for (; d >= 0; --d) {
      if (++idx[d] < shape.dims[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

struct Tol {
  double atol = 0, rtol = 0;
};

// The tolerance of a float op by output dtype: `f32` for f32 outputs, widened by the
// rounding of a half-precision output (one rounding of |ref| at 2^-11 / 2^-8, with slack
// for inputs that were themselves rounded results of f32 math on the GPU).
inline Tol tol_for(DType out, Tol f32) {
  if (out == DType::kF16) return {std::max(f32.atol, 1e-3), std::max(f32.rtol, 2e-3)};
  if (out == DType::kBF16) return {std::max(f32.atol, 8e-3), std::max(f32.rtol, 1.6e-2)};
  return f32;
}

struct InputFill {
  double lo = -1, hi = 1;  // uniform; integers take whole numbers in [lo, hi)
};

// Runs `spec` (inputs filled from `fills`, or by `custom` when it returns true for an
// input) on `device` and on the reference. Returns the failure text, "" when every output
// element is within tol. Bytes around the output view must stay untouched.
template <typename Custom>
std::string run_and_compare(Device& device, const OpSpec& spec, const std::vector<InputFill>& fills,
                            Tol tol, uint64_t seed, Custom&& custom) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<uint8_t>> in(spec.num_inputs);
  std::vector<uint64_t> in_off(spec.num_inputs);
  for (int i = 0; i < spec.num_inputs; ++i) {
    const TensorDesc& t = spec.inputs[i];
    in_off[i] = dtype_size(t.dtype) * uint64_t(1 + i);  // odd offsets inside the buffer
    in[i].assign(in_off[i] + t.extent_bytes() + 16, 0xAB);
    void* base = in[i].data() + in_off[i];
    if (custom(i, t, base)) continue;
    const InputFill f = i < int(fills.size()) ? fills[i] : InputFill{};
    std::uniform_real_distribution<double> dist(f.lo, f.hi);
    for_each_index(t.shape, [&](const int64_t* idx) {
      double v = dist(rng);
      if (is_integer(t.dtype)) v = std::min(std::floor(v), f.hi - 1);
      reference::store(base, t, idx, v);
    });
  }
  const TensorDesc& o = spec.output;
  const uint64_t out_off = dtype_size(o.dtype) * 3;
  std::vector<uint8_t> got(out_off + o.extent_bytes() + 16, 0xCD), want = got;

  auto stream = device.create_stream();
  if (!stream.ok()) return stream.status().to_string();
  std::vector<Buffer> bufs;
  OpDescriptor op;
  op.kind = spec.kind;
  op.attrs = spec.attrs;
  op.num_inputs = spec.num_inputs;
  for (int i = 0; i < spec.num_inputs; ++i) {
    auto b = device.allocate(in[i].size());
    if (!b.ok()) return b.status().to_string();
    bufs.push_back(std::move(*b));
  }
  auto out = device.allocate(got.size());
  if (!out.ok()) return out.status().to_string();
  for (int i = 0; i < spec.num_inputs; ++i) {
    if (Status s = stream->copy_from_host(in[i].data(), bufs[i], 0, in[i].size()); !s.ok())
      return s.to_string();
    op.inputs[i] = TensorRef{&bufs[i], in_off[i], spec.inputs[i]};
  }
  op.output = TensorRef{&*out, out_off, o};
  if (Status s = stream->copy_from_host(got.data(), *out, 0, got.size()); !s.ok())
    return s.to_string();
  if (Status s = stream->dispatch(op); !s.ok()) return "dispatch: " + s.to_string();
  if (Status s = stream->copy_to_host(*out, 0, got.data(), got.size()); !s.ok())
    return s.to_string();
  if (Status s = stream->synchronize(); !s.ok()) return "run: " + s.to_string();

  std::vector<const void*> ptrs(kMaxOpInputs, nullptr);
  for (int i = 0; i < spec.num_inputs; ++i) ptrs[i] = in[i].data() + in_off[i];
  if (Status s = reference::execute(spec, ptrs.data(), want.data() + out_off); !s.ok())
    return "reference: " + s.to_string();

  int64_t errors = 0;
  std::string first;
  double worst = 0;
  for_each_index(o.shape, [&](const int64_t* idx) {
    const double g = reference::load(got.data() + out_off, o, idx);
    const double w = reference::load(want.data() + out_off, o, idx);
    const bool ok = (std::isnan(w) && std::isnan(g)) || (std::isinf(w) && g == w) ||
                    std::fabs(g - w) <= tol.atol + tol.rtol * std::fabs(w);
    if (!ok) {
      worst = std::max(worst, std::fabs(g - w));
      if (errors++ == 0) {
        first = "at [";
        for (int d = 0; d < o.shape.rank; ++d) {
          // Appended piecewise: GCC 12 warns (-Wrestrict, falsely) on "lit" + string&&.
          if (d) first += ",";
          first += std::to_string(idx[d]);
        }
        first += "] got " + std::to_string(g) + " want " + std::to_string(w);
      }
    }
  });
  if (errors)
    return std::to_string(errors) + " of " + std::to_string(o.numel()) + " elements wrong; first " +
           first + "; largest error " + std::to_string(worst);
  // Untouched bytes outside the view: blank the view in both images, then compare all.
  for_each_index(o.shape, [&](const int64_t* idx) {
    reference::store(got.data() + out_off, o, idx, 0.0);
    reference::store(want.data() + out_off, o, idx, 0.0);
  });
  if (got != want) return "bytes outside the output view were written";
  return "";
}

inline std::string run_and_compare(Device& device, const OpSpec& spec,
                                   const std::vector<InputFill>& fills, Tol tol, uint64_t seed) {
  return run_and_compare(device, spec, fills, tol, seed,
                         [](int, const TensorDesc&, void*) { return false; });
}

// An OpSpec with the inferred output (or `out_dtype`) in `out_layout`.
inline OpSpec make_spec(OpKind kind, const OpAttributes& attrs, std::vector<TensorDesc> inputs,
                        DType out_dtype = DType::kInvalid, Layout out_layout = Layout::kDense) {
  OpSpec s;
  s.kind = kind;
  s.attrs = attrs;
  s.num_inputs = int32_t(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) s.inputs[i] = inputs[i];
  auto o = infer_output(kind, attrs, s.inputs.data(), s.num_inputs);
  EXPECT_TRUE(o.ok()) << o.status().to_string();
  TensorDesc out = o.ok() ? *o : TensorDesc{};
  if (out_dtype != DType::kInvalid) out.dtype = out_dtype;
  s.output = layout_desc(out.dtype, out.shape, out_layout);
  return s;
}

inline std::string shape_text(const OpSpec& s) {
  std::string t(op_kind_name(s.kind));
  for (int i = 0; i < s.num_inputs; ++i) {
    t += " ";
    t += s.inputs[i].to_string();
  }
  return t + " -> " + s.output.to_string();
}

}  // namespace hal::cuda_test
