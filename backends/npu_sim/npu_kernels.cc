// Vector-unit and data-movement kernels of the simulated NPU, and op dispatch.
// Numerics rules: npu_kernels.h.
#include "npu_kernels.h"

#include "hal/quant_reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "hal/reference_ops.h"
#include "npu_numerics.h"
#include "npu_parallel.h"
#include "npu_simd.h"

namespace hal::npu_sim {

namespace {

bool is_fp8(DType t) { return t == DType::kFP8E4M3 || t == DType::kFP8E5M2; }
bool is_16_or_32(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

std::vector<float> dense(const void* base, const TensorDesc& t, const Shape& shape,
                         Rounding r = Rounding::kNone) {
  std::vector<float> v(size_t(std::max<int64_t>(shape.numel(), 0)));
  gather_f32(base, t, shape, v.data(), r);
  return v;
}

// Reads element `i` (row-major over its shape) of an integer view as int64.
int64_t load_index(const void* base, const TensorDesc& t, int64_t flat) {
  int64_t off = 0;
  for (int d = t.shape.rank - 1; d >= 0; --d) {
    const int64_t idx = flat % t.shape.dims[d];
    flat /= t.shape.dims[d];
    off += idx * t.strides[d];
  }
  return t.dtype == DType::kI64 ? static_cast<const int64_t*>(base)[off]
                                : static_cast<const int32_t*>(base)[off];
}

Status elementwise(const OpSpec& s, const void* const* in, void* out) {
  const Shape& shape = s.output.shape;
  const int64_t n = shape.numel();
  std::vector<float> x = dense(in[0], s.inputs[0], shape);
  const OpAttributes& a = s.attrs;
  if (s.kind == OpKind::kAdd || s.kind == OpKind::kMul) {
    std::vector<float> y = dense(in[1], s.inputs[1], shape);
    const bool add = s.kind == OpKind::kAdd;
    parallel_for(n, 1 << 15, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        x[size_t(i)] = add ? x[size_t(i)] + y[size_t(i)] : x[size_t(i)] * y[size_t(i)];
    });
  } else {
    const float alpha = a.alpha, beta = a.beta;
    const OpKind k = s.kind;
    const bool tanh_form = a.gelu_approximation == GeluApproximation::kTanh;
    parallel_for(n, 1 << 13, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float v = x[size_t(i)];
        float r;
        if (k == OpKind::kScale) {
          r = alpha * v + beta;
        } else if (k == OpKind::kSilu) {
          r = v / (1.0f + std::exp(-v));
        } else if (tanh_form) {
          const float c = 0.7978845608028654f;  // sqrt(2/pi)
          r = 0.5f * v * (1.0f + std::tanh(c * (v + 0.044715f * v * v * v)));
        } else {
          r = 0.5f * v * (1.0f + std::erf(v * 0.7071067811865476f));
        }
        x[size_t(i)] = r;
      }
    });
  }
  scatter_f32(x.data(), out, s.output);
  return ok_status();
}

Status norm(const OpSpec& s, const void* const* in, void* out) {
  const Shape& shape = s.output.shape;
  const int64_t n = shape.back();
  const int64_t rows = n > 0 ? shape.numel() / n : 0;
  std::vector<float> x = dense(in[0], s.inputs[0], shape);
  const Shape vec{n};
  const std::vector<float> gamma = dense(in[1], s.inputs[1], vec);
  std::vector<float> beta;
  if (s.num_inputs == 3) beta = dense(in[2], s.inputs[2], vec);
  const bool layer = s.kind == OpKind::kLayerNorm;
  const float eps = s.attrs.epsilon;
  parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t r = b; r < e; ++r) {
                   float* row = x.data() + r * n;
                   float mean = 0, denom_inv;
                   if (layer) {
                     mean = sum(row, n) / float(n);
                     float var = 0;
                     for (int64_t j = 0; j < n; ++j) var += (row[j] - mean) * (row[j] - mean);
                     denom_inv = 1.0f / std::sqrt(var / float(n) + eps);
                   } else {
                     denom_inv = 1.0f / std::sqrt(dot(row, row, n) / float(n) + eps);
                   }
                   for (int64_t j = 0; j < n; ++j) {
                     float y = (row[j] - mean) * denom_inv * gamma[size_t(j)];
                     if (!beta.empty()) y += beta[size_t(j)];
                     row[j] = y;
                   }
                 }
               });
  scatter_f32(x.data(), out, s.output);
  return ok_status();
}

Status softmax(const OpSpec& s, const void* const* in, void* out) {
  const Shape& shape = s.output.shape;
  const int64_t n = shape.back();
  const int64_t sq = shape.rank >= 2 ? shape.back(2) : 1;
  const int64_t rows = n > 0 ? shape.numel() / n : 0;
  std::vector<float> x = dense(in[0], s.inputs[0], shape);
  const float scale = s.attrs.scale == 0.0f ? 1.0f : s.attrs.scale;
  const bool causal = s.attrs.causal;
  parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t r = b; r < e; ++r) {
                   float* row = x.data() + r * n;
                   const int64_t i = r % sq;
                   const int64_t visible = causal ? std::clamp<int64_t>(i + (n - sq) + 1, 0, n) : n;
                   float mx = -std::numeric_limits<float>::infinity();
                   for (int64_t j = 0; j < visible; ++j) {
                     row[j] *= scale;
                     mx = std::max(mx, row[j]);
                   }
                   for (int64_t j = 0; j < visible; ++j) row[j] = std::exp(row[j] - mx);
                   const float inv = visible > 0 ? 1.0f / sum(row, visible) : 0.0f;
                   for (int64_t j = 0; j < visible; ++j) row[j] *= inv;
                   for (int64_t j = visible; j < n; ++j) row[j] = 0.0f;
                 }
               });
  scatter_f32(x.data(), out, s.output);
  return ok_status();
}

Status argmax(const OpSpec& s, const void* const* in, void* out) {
  const TensorDesc& xd = s.inputs[0];
  const int64_t n = xd.shape.back();
  const int64_t rows = n > 0 ? xd.numel() / n : 0;
  std::vector<float> x = dense(in[0], xd, xd.shape);
  std::vector<int32_t> result(static_cast<size_t>(rows));
  parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)),
               [&](int64_t b, int64_t e) {
                 for (int64_t r = b; r < e; ++r) {
                   const float* row = x.data() + r * n;
                   int64_t best = 0;
                   bool found = false;
                   float bv = 0;
                   for (int64_t j = 0; j < n; ++j) {
                     if (std::isnan(row[j])) continue;
                     if (!found || row[j] > bv) {
                       bv = row[j];
                       best = j;
                       found = true;
                     }
                   }
                   result[size_t(r)] = int32_t(best);
                 }
               });
  const TensorDesc& o = s.output;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, off = 0;
    for (int d = o.shape.rank - 1; d >= 0; --d) {
      const int64_t idx = rem % o.shape.dims[d];
      rem /= o.shape.dims[d];
      off += idx * o.strides[d];
    }
    static_cast<int32_t*>(out)[off] = result[size_t(r)];
  }
  return ok_status();
}

Status rotary(const OpSpec& s, const void* const* in, void* out) {
  const TensorDesc& xd = s.inputs[0];
  const TensorDesc& pd = s.inputs[1];
  const OpAttributes& a = s.attrs;
  const int64_t d = xd.shape.back();
  const int64_t rd = a.rotary_dim == 0 ? d : a.rotary_dim;
  const int64_t half = rd / 2;
  const int64_t heads = xd.shape.back(2);
  const int64_t seq = xd.shape.back(3);
  std::vector<double> inv_freq(static_cast<size_t>(half));
  if (s.num_inputs == 3) {
    const std::vector<float> f = dense(in[2], s.inputs[2], Shape{half});
    for (int64_t i = 0; i < half; ++i) inv_freq[size_t(i)] = f[size_t(i)];
  } else {
    for (int64_t i = 0; i < half; ++i)
      inv_freq[size_t(i)] = std::pow(double(a.rope_theta), -2.0 * double(i) / double(rd));
  }
  // cos/sin per position entry ([S] or [B, S]), computed in double, kept as fp32.
  const int64_t npos = pd.numel();
  std::vector<float> cs(static_cast<size_t>(npos * half)), sn(size_t(npos * half));
  for (int64_t p = 0; p < npos; ++p) {
    const double pos = double(load_index(in[1], pd, p));
    for (int64_t i = 0; i < half; ++i) {
      const double ang = pos * inv_freq[size_t(i)];
      cs[size_t(p * half + i)] = float(std::cos(ang));
      sn[size_t(p * half + i)] = float(std::sin(ang));
    }
  }
  std::vector<float> x = dense(in[0], xd, xd.shape);
  const int64_t rows = d > 0 ? xd.numel() / d : 0;  // one row per (.., s, h)
  const bool per_batch = pd.shape.rank == 2;
  const bool interleaved = a.rope_style == RopeStyle::kInterleaved;
  parallel_for(rows, 256, [&](int64_t b, int64_t e) {
    std::vector<float> v(static_cast<size_t>(d));
    for (int64_t row = b; row < e; ++row) {
      const int64_t sidx = (row / heads) % seq;
      const int64_t bidx = per_batch ? row / (heads * seq) : 0;
      const int64_t p = per_batch ? bidx * seq + sidx : sidx;
      const float* c = cs.data() + p * half;
      const float* si = sn.data() + p * half;
      float* xr = x.data() + row * d;
      std::copy(xr, xr + d, v.begin());
      for (int64_t i = 0; i < half; ++i) {
        const int64_t j0 = interleaved ? 2 * i : i;
        const int64_t j1 = interleaved ? 2 * i + 1 : i + half;
        xr[j0] = v[size_t(j0)] * c[i] - v[size_t(j1)] * si[i];
        xr[j1] = v[size_t(j1)] * c[i] + v[size_t(j0)] * si[i];
      }
    }
  });
  scatter_f32(x.data(), out, s.output);
  return ok_status();
}

Status embedding(const OpSpec& s, const void* const* in, void* out) {
  const TensorDesc& table = s.inputs[0];
  const TensorDesc& ids = s.inputs[1];
  const TensorDesc& o = s.output;
  const int64_t V = table.shape[0], D = table.shape[1];
  const int64_t count = ids.numel();
  const int orank = o.shape.rank;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t id = load_index(in[1], ids, i);
    if (id < 0 || id >= V)
      return invalid_argument("embedding: id " + std::to_string(id) + " outside [0, " +
                              std::to_string(V) + ")");
  }
  // Output row offset of id number i: ids' index over the leading output dims.
  auto out_row = [&](int64_t i) {
    int64_t rem = i, off = 0;
    for (int dd = orank - 2; dd >= 0; --dd) {
      off += (rem % o.shape.dims[dd]) * o.strides[dd];
      rem /= o.shape.dims[dd];
    }
    return off;
  };
  if (is_quantized(table.dtype)) {
    // Rows dequantized as the device's DMA engine would, into the output's dtype.
    const uint64_t row_bytes = dtype_row_bytes(table.dtype, D);
    parallel_for(count, 16, [&](int64_t b, int64_t e) {
      std::vector<float> row(static_cast<size_t>(D));
      for (int64_t i = b; i < e; ++i) {
        const int64_t id = load_index(in[1], ids, i);
        const int64_t off = out_row(i);
        reference::dequantize_row(
            table.dtype,
            static_cast<const uint8_t*>(in[0]) + uint64_t(id * table.strides[0] / D) * row_bytes,
            row.data(), D);
        for (int64_t j = 0; j < D; ++j)
          store_element(out, o.dtype, off + j * o.strides[orank - 1], row[size_t(j)]);
      }
    });
    return ok_status();
  }
  const size_t esz = dtype_size(o.dtype);
  const bool same = table.dtype == o.dtype && table.strides[1] == 1 && o.strides[orank - 1] == 1;
  parallel_for(count, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t id = load_index(in[1], ids, i);
      const int64_t off = out_row(i);
      const int64_t toff = id * table.strides[0];
      if (same) {
        std::memcpy(static_cast<char*>(out) + off * int64_t(esz),
                    static_cast<const char*>(in[0]) + toff * int64_t(esz), size_t(D) * esz);
      } else {
        for (int64_t j = 0; j < D; ++j)
          store_element(out, o.dtype, off + j * o.strides[orank - 1],
                        load_element(in[0], table.dtype, toff + j * table.strides[1]));
      }
    }
  });
  return ok_status();
}

template <size_t kSize>
void copy_strided(const char* src, int64_t src_stride, char* dst, int64_t dst_stride, int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    std::memcpy(dst + j * dst_stride * int64_t(kSize), src + j * src_stride * int64_t(kSize),
                kSize);
}

Status transpose(const OpSpec& s, const void* const* in, void* out) {
  const TensorDesc& x = s.inputs[0];
  const TensorDesc& o = s.output;
  const int r = o.shape.rank;
  const size_t esz = dtype_size(x.dtype);
  // Strides of x seen from the output's index order.
  int64_t xs[kMaxRank] = {};
  for (int i = 0; i < r; ++i) xs[i] = x.strides[s.attrs.perm[i]];
  const int64_t inner = r == 0 ? 1 : o.shape.dims[r - 1];
  const int64_t total = o.numel();
  if (total <= 0) return ok_status();
  const int64_t rows = total / inner;
  const int64_t xin = r == 0 ? 0 : xs[r - 1], oin = r == 0 ? 0 : o.strides[r - 1];
  parallel_for(rows, std::max<int64_t>(1, 16384 / inner), [&](int64_t b, int64_t e) {
    for (int64_t row = b; row < e; ++row) {
      int64_t rem = row, xo = 0, oo = 0;
      for (int d = r - 2; d >= 0; --d) {
        const int64_t idx = rem % o.shape.dims[d];
        rem /= o.shape.dims[d];
        xo += idx * xs[d];
        oo += idx * o.strides[d];
      }
      const char* src = static_cast<const char*>(in[0]) + xo * int64_t(esz);
      char* dst = static_cast<char*>(out) + oo * int64_t(esz);
      switch (esz) {
        case 1:
          copy_strided<1>(src, xin, dst, oin, inner);
          break;
        case 2:
          copy_strided<2>(src, xin, dst, oin, inner);
          break;
        case 4:
          copy_strided<4>(src, xin, dst, oin, inner);
          break;
        default:
          copy_strided<8>(src, xin, dst, oin, inner);
          break;
      }
    }
  });
  return ok_status();
}

Status cast(const OpSpec& s, const void* const* in, void* out) {
  const DType from = s.inputs[0].dtype, to = s.output.dtype;
  // Integer conversions keep full int64 precision in the reference's rules.
  if ((is_integer(from) || is_integer(to)) && !is_fp8(from) && !is_fp8(to))
    return reference::execute(s, in, out);
  std::vector<float> x = dense(in[0], s.inputs[0], s.output.shape);
  scatter_f32(x.data(), out, s.output);
  return ok_status();
}

}  // namespace

bool supports_op(const OpSpec& s, const DeviceSpec& device) {
  auto has_fp8 = [&](DType t) { return device.matrix_peak(t) > 0; };
  // A float tensor the op may take: f32/f16/bf16, or fp8 where allowed and listed.
  auto float_ok = [&](DType t, bool fp8_allowed) {
    return is_16_or_32(t) || (fp8_allowed && is_fp8(t) && has_fp8(t));
  };
  switch (s.kind) {
    case OpKind::kMatmul:
      // Quantized weights (every format of hal/op.h) run on the engine of their width.
      if (!float_ok(s.inputs[0].dtype, true) ||
          !(float_ok(s.inputs[1].dtype, true) || is_quantized(s.inputs[1].dtype)))
        return false;
      if (s.num_inputs == 3 && !float_ok(s.inputs[2].dtype, false)) return false;
      return float_ok(s.output.dtype, false);
    case OpKind::kAttention:
      return float_ok(s.inputs[0].dtype, false) && float_ok(s.inputs[1].dtype, true) &&
             float_ok(s.inputs[2].dtype, true) && float_ok(s.output.dtype, false);
    case OpKind::kEmbedding:
      return (float_ok(s.inputs[0].dtype, true) || is_quantized(s.inputs[0].dtype)) &&
             float_ok(s.output.dtype, true);
    case OpKind::kTranspose:
      return !is_fp8(s.inputs[0].dtype) || has_fp8(s.inputs[0].dtype);
    case OpKind::kCast: {
      auto ok = [&](DType t) { return !is_fp8(t) || has_fp8(t); };
      return ok(s.inputs[0].dtype) && ok(s.output.dtype);
    }
    case OpKind::kRotary:
      return float_ok(s.inputs[0].dtype, false);
    default:
      // Vector-unit ops: every float tensor f32/f16/bf16.
      for (int i = 0; i < s.num_inputs; ++i)
        if (is_floating(s.inputs[i].dtype) && !is_16_or_32(s.inputs[i].dtype)) return false;
      return !is_floating(s.output.dtype) || is_16_or_32(s.output.dtype);
  }
}

Status execute_op(const OpSpec& s, const void* const* in, void* out, ComputePrecision precision) {
  switch (s.kind) {
    case OpKind::kMatmul:
      return execute_matmul(s, in, out, precision);
    case OpKind::kAttention:
      return execute_attention(s, in, out, precision);
    case OpKind::kAdd:
    case OpKind::kMul:
    case OpKind::kScale:
    case OpKind::kGelu:
    case OpKind::kSilu:
      return elementwise(s, in, out);
    case OpKind::kLayerNorm:
    case OpKind::kRmsNorm:
      return norm(s, in, out);
    case OpKind::kSoftmax:
      return softmax(s, in, out);
    case OpKind::kArgmax:
      return argmax(s, in, out);
    case OpKind::kRotary:
      return rotary(s, in, out);
    case OpKind::kEmbedding:
      return embedding(s, in, out);
    case OpKind::kTranspose:
      return transpose(s, in, out);
    case OpKind::kCast:
      return cast(s, in, out);
    case OpKind::kInvalid:
      break;
  }
  return invalid_argument("npu_sim: unknown op kind " + std::to_string(int(s.kind)));
}

}  // namespace hal::npu_sim
