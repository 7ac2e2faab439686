// Reference kernels: clarity over speed. Semantics are specified in hal/op.h.
#include "hal/reference_ops.h"

#include "hal/quant_reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace hal::reference {

namespace {

int64_t element_offset(const TensorDesc& t, const int64_t* index) {
  int64_t off = 0;
  for (int i = 0; i < t.shape.rank; ++i) off += index[i] * t.strides[i];
  return off;
}

// Calls fn(index) for every index of `shape` in row-major order.
template <typename Fn>
void for_each_index(const Shape& shape, Fn&& fn) {
  if (shape.numel() == 0) return;
  int64_t idx[kMaxRank] = {};
  for (;;) {
    fn(idx);
    int d = shape.rank - 1;
    for (; d >= 0; --d) {
      if (++idx[d] < shape.dims[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

// Index into `t` (right-aligned, size-1 dims broadcast) for an output index of rank r.
void broadcast_index(const TensorDesc& t, const int64_t* out_idx, int out_rank, int64_t* idx) {
  for (int i = 0; i < t.shape.rank; ++i) {
    const int oi = out_rank - t.shape.rank + i;
    idx[i] = t.shape.dims[i] == 1 ? 0 : out_idx[oi];
  }
}

double gelu(double x, GeluApproximation a) {
  if (a == GeluApproximation::kTanh) {
    const double c = std::sqrt(2.0 / M_PI);
    return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
  }
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

struct Ctx {
  const OpSpec& s;
  const void* const* in;
  void* out;
  double ld(int i, const int64_t* idx) const { return load(in[i], s.inputs[i], idx); }
  void st(const int64_t* idx, double v) const { store(out, s.output, idx, v); }
};

Status matmul(const Ctx& c) {
  const OpSpec& s = c.s;
  const TensorDesc& a = s.inputs[0];
  const TensorDesc& b = s.inputs[1];
  const TensorDesc& o = s.output;
  const int r = o.shape.rank;
  const int64_t m = o.shape[r - 2], n = o.shape[r - 1];
  const int64_t k = s.attrs.transpose_a ? a.shape.back(2) : a.shape.back(1);
  Shape batch = o.shape;
  batch.rank = r - 2;
  int64_t ai[kMaxRank], bi[kMaxRank], oi[kMaxRank], biasi[1];
  for_each_index(batch, [&](const int64_t* bidx) {
    // batch indices of a and b (broadcast)
    TensorDesc ab = a, bb = b;
    ab.shape.rank = a.shape.rank - 2;
    bb.shape.rank = b.shape.rank - 2;
    broadcast_index(ab, bidx, batch.rank, ai);
    broadcast_index(bb, bidx, batch.rank, bi);
    for (int i = 0; i < batch.rank; ++i) oi[i] = bidx[i];
    const int ar = a.shape.rank, br = b.shape.rank;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p) {
          ai[ar - 2] = s.attrs.transpose_a ? p : i;
          ai[ar - 1] = s.attrs.transpose_a ? i : p;
          bi[br - 2] = s.attrs.transpose_b ? j : p;
          bi[br - 1] = s.attrs.transpose_b ? p : j;
          acc += c.ld(0, ai) * c.ld(1, bi);
        }
        acc *= double(s.attrs.alpha);
        if (s.num_inputs == 3) {
          biasi[0] = j;
          acc += c.ld(2, biasi);
        }
        oi[r - 2] = i;
        oi[r - 1] = j;
        c.st(oi, acc);
      }
    }
  });
  return ok_status();
}

Status binary(const Ctx& c) {
  const int r = c.s.output.shape.rank;
  int64_t ia[kMaxRank], ib[kMaxRank];
  for_each_index(c.s.output.shape, [&](const int64_t* idx) {
    broadcast_index(c.s.inputs[0], idx, r, ia);
    broadcast_index(c.s.inputs[1], idx, r, ib);
    const double x = c.ld(0, ia), y = c.ld(1, ib);
    c.st(idx, c.s.kind == OpKind::kAdd ? x + y : x * y);
  });
  return ok_status();
}

Status unary(const Ctx& c) {
  const OpAttributes& a = c.s.attrs;
  for_each_index(c.s.output.shape, [&](const int64_t* idx) {
    const double x = c.ld(0, idx);
    double y = 0;
    switch (c.s.kind) {
      case OpKind::kScale: y = double(a.alpha) * x + double(a.beta); break;
      case OpKind::kGelu: y = gelu(x, a.gelu_approximation); break;
      case OpKind::kSilu: y = x / (1.0 + std::exp(-x)); break;
      case OpKind::kCast: y = x; break;
      default: break;
    }
    c.st(idx, y);
  });
  return ok_status();
}

// Iterates the rows (all but the last dim) of the output shape.
template <typename Fn>
void for_each_row(const Shape& shape, Fn&& fn) {
  Shape rows = shape;
  rows.rank = shape.rank - 1;
  int64_t idx[kMaxRank] = {};
  for_each_index(rows, [&](const int64_t* r) {
    for (int i = 0; i < rows.rank; ++i) idx[i] = r[i];
    fn(idx);
  });
}

Status norm(const Ctx& c) {
  const Shape& sh = c.s.output.shape;
  const int last = sh.rank - 1;
  const int64_t n = sh.back();
  std::vector<double> row(size_t(std::max<int64_t>(n, 0)));
  int64_t gi[1];
  for_each_row(sh, [&](int64_t* idx) {
    double mean = 0, sq = 0;
    for (int64_t j = 0; j < n; ++j) {
      idx[last] = j;
      row[size_t(j)] = c.ld(0, idx);
      mean += row[size_t(j)];
      sq += row[size_t(j)] * row[size_t(j)];
    }
    mean /= double(n);
    double denom;
    if (c.s.kind == OpKind::kLayerNorm) {
      double var = 0;
      for (int64_t j = 0; j < n; ++j) var += (row[size_t(j)] - mean) * (row[size_t(j)] - mean);
      var /= double(n);
      denom = std::sqrt(var + double(c.s.attrs.epsilon));
    } else {
      denom = std::sqrt(sq / double(n) + double(c.s.attrs.epsilon));
      mean = 0;
    }
    for (int64_t j = 0; j < n; ++j) {
      gi[0] = j;
      double y = (row[size_t(j)] - mean) / denom * c.ld(1, gi);
      if (c.s.kind == OpKind::kLayerNorm && c.s.num_inputs == 3) y += c.ld(2, gi);
      idx[last] = j;
      c.st(idx, y);
    }
  });
  return ok_status();
}

Status softmax(const Ctx& c) {
  const Shape& sh = c.s.output.shape;
  const int last = sh.rank - 1;
  const int64_t n = sh.back();
  const int64_t sq = sh.rank >= 2 ? sh.back(2) : 1;
  const double scale = c.s.attrs.scale == 0.0f ? 1.0 : double(c.s.attrs.scale);
  std::vector<double> row(size_t(std::max<int64_t>(n, 0)));
  for_each_row(sh, [&](int64_t* idx) {
    const int64_t i = sh.rank >= 2 ? idx[last - 1] : 0;
    const int64_t visible = c.s.attrs.causal ? std::clamp<int64_t>(i + (n - sq) + 1, 0, n) : n;
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < visible; ++j) {
      idx[last] = j;
      row[size_t(j)] = scale * c.ld(0, idx);
      mx = std::max(mx, row[size_t(j)]);
    }
    double sum = 0;
    for (int64_t j = 0; j < visible; ++j) {
      row[size_t(j)] = std::exp(row[size_t(j)] - mx);
      sum += row[size_t(j)];
    }
    for (int64_t j = 0; j < n; ++j) {
      idx[last] = j;
      c.st(idx, j < visible ? row[size_t(j)] / sum : 0.0);
    }
  });
  return ok_status();
}

Status rotary(const Ctx& c) {
  const OpAttributes& a = c.s.attrs;
  const TensorDesc& x = c.s.inputs[0];
  const TensorDesc& pos = c.s.inputs[1];
  const int r = x.shape.rank;
  const int64_t d = x.shape.back();
  const int64_t rd = a.rotary_dim == 0 ? d : a.rotary_dim;
  const int64_t half = rd / 2;
  std::vector<double> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    if (c.s.num_inputs == 3) {
      const int64_t fi[1] = {i};
      inv_freq[size_t(i)] = c.ld(2, fi);
    } else {
      inv_freq[size_t(i)] = std::pow(double(a.rope_theta), -2.0 * double(i) / double(rd));
    }
  }
  Shape heads = x.shape;
  heads.rank = r - 1;  // iterate [.., S, H]
  int64_t idx[kMaxRank], pidx[2];
  std::vector<double> v(static_cast<size_t>(d));
  for_each_index(heads, [&](const int64_t* h) {
    for (int i = 0; i < r - 1; ++i) idx[i] = h[i];
    const int64_t s = h[r - 3];
    if (pos.shape.rank == 2) {
      pidx[0] = h[0];
      pidx[1] = s;
    } else {
      pidx[0] = s;
    }
    const double p = c.ld(1, pidx);
    for (int64_t j = 0; j < d; ++j) {
      idx[r - 1] = j;
      v[size_t(j)] = c.ld(0, idx);
    }
    for (int64_t j = 0; j < d; ++j) {
      double y = v[size_t(j)];
      if (j < rd) {
        int64_t i, partner;
        bool first;
        if (a.rope_style == RopeStyle::kRotateHalf) {
          first = j < half;
          i = first ? j : j - half;
          partner = first ? j + half : j - half;
        } else {
          first = j % 2 == 0;
          i = j / 2;
          partner = first ? j + 1 : j - 1;
        }
        const double ang = p * inv_freq[size_t(i)];
        const double cs = std::cos(ang), sn = std::sin(ang);
        y = first ? v[size_t(j)] * cs - v[size_t(partner)] * sn
                  : v[size_t(j)] * cs + v[size_t(partner)] * sn;
      }
      idx[r - 1] = j;
      c.st(idx, y);
    }
  });
  return ok_status();
}

Status attention(const Ctx& c) {
  const OpAttributes& a = c.s.attrs;
  const Shape& q = c.s.inputs[0].shape;
  const Shape& k = c.s.inputs[1].shape;
  const Shape& v = c.s.inputs[2].shape;
  const int64_t B = q[0], Sq = q[1], Hq = q[2], D = q[3], Skv = k[1], Hkv = k[2], Dv = v[3];
  const int64_t group = Hq / Hkv;
  const double scale = a.scale == 0.0f ? 1.0 / std::sqrt(double(D)) : double(a.scale);
  std::vector<double> scores(static_cast<size_t>(Skv));
  for (int64_t b = 0; b < B; ++b) {
    int64_t kv_len = a.kv_length > 0 ? a.kv_length : Skv;
    if (c.s.num_inputs == 4) {
      const int64_t li[1] = {b};
      kv_len = int64_t(c.ld(3, li));
      if (kv_len < 0 || kv_len > Skv)
        return invalid_argument("attention: kv_lengths[" + std::to_string(b) + "] = " +
                                std::to_string(kv_len) + " outside [0, " + std::to_string(Skv) + "]");
    }
    const int64_t q_off = a.q_offset >= 0 ? a.q_offset : kv_len - Sq;
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t hk = h / group;
      for (int64_t i = 0; i < Sq; ++i) {
        int64_t visible = kv_len;
        if (a.causal) visible = std::clamp<int64_t>(q_off + i + 1, 0, kv_len);
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < visible; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < D; ++e) {
            const int64_t qi[4] = {b, i, h, e};
            const int64_t ki[4] = {b, j, hk, e};
            dot += c.ld(0, qi) * c.ld(1, ki);
          }
          scores[size_t(j)] = dot * scale;
          mx = std::max(mx, scores[size_t(j)]);
        }
        double sum = 0;
        for (int64_t j = 0; j < visible; ++j) {
          scores[size_t(j)] = std::exp(scores[size_t(j)] - mx);
          sum += scores[size_t(j)];
        }
        for (int64_t e = 0; e < Dv; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < visible; ++j) {
            const int64_t vi[4] = {b, j, hk, e};
            acc += scores[size_t(j)] * c.ld(2, vi);
          }
          const int64_t oi[4] = {b, i, h, e};
          c.st(oi, visible > 0 ? acc / sum : 0.0);
        }
      }
    }
  }
  return ok_status();
}

Status embedding(const Ctx& c) {
  const TensorDesc& table = c.s.inputs[0];
  const TensorDesc& ids = c.s.inputs[1];
  const int64_t V = table.shape[0], D = table.shape[1];
  const int r = c.s.output.shape.rank;
  Status status;
  for_each_index(ids.shape, [&](const int64_t* idx) {
    if (!status.ok()) return;
    const int64_t id = ids.dtype == DType::kI64
                           ? static_cast<const int64_t*>(c.in[1])[element_offset(ids, idx)]
                           : static_cast<const int32_t*>(c.in[1])[element_offset(ids, idx)];
    if (id < 0 || id >= V) {
      status = invalid_argument("embedding: id " + std::to_string(id) + " outside [0, " +
                                std::to_string(V) + ")");
      return;
    }
    int64_t oi[kMaxRank];
    for (int i = 0; i < r - 1; ++i) oi[i] = idx[i];
    for (int64_t e = 0; e < D; ++e) {
      const int64_t ti[2] = {id, e};
      oi[r - 1] = e;
      c.st(oi, c.ld(0, ti));
    }
  });
  return status;
}

Status transpose(const Ctx& c) {
  const TensorDesc& x = c.s.inputs[0];
  const size_t esz = dtype_size(x.dtype);
  int64_t xi[kMaxRank];
  for_each_index(c.s.output.shape, [&](const int64_t* oi) {
    for (int i = 0; i < x.shape.rank; ++i) xi[c.s.attrs.perm[i]] = oi[i];
    std::memcpy(static_cast<char*>(c.out) + element_offset(c.s.output, oi) * int64_t(esz),
                static_cast<const char*>(c.in[0]) + element_offset(x, xi) * int64_t(esz), esz);
  });
  return ok_status();
}

Status cast(const Ctx& c) {
  const TensorDesc& x = c.s.inputs[0];
  const TensorDesc& o = c.s.output;
  // Integer to integer casts keep full precision (float would round large values).
  if (is_integer(x.dtype) && is_integer(o.dtype)) {
    for_each_index(o.shape, [&](const int64_t* idx) {
      const int64_t xo = element_offset(x, idx), oo = element_offset(o, idx);
      int64_t v = 0;
      switch (x.dtype) {
        case DType::kI32: v = static_cast<const int32_t*>(c.in[0])[xo]; break;
        case DType::kI64: v = static_cast<const int64_t*>(c.in[0])[xo]; break;
        case DType::kI8: v = static_cast<const int8_t*>(c.in[0])[xo]; break;
        case DType::kU8: v = static_cast<const uint8_t*>(c.in[0])[xo]; break;
        default: break;
      }
      auto sat = [&](int64_t lo, int64_t hi) { return std::clamp(v, lo, hi); };
      switch (o.dtype) {
        case DType::kI32: static_cast<int32_t*>(c.out)[oo] = int32_t(sat(INT32_MIN, INT32_MAX)); break;
        case DType::kI64: static_cast<int64_t*>(c.out)[oo] = v; break;
        case DType::kI8: static_cast<int8_t*>(c.out)[oo] = int8_t(sat(-128, 127)); break;
        case DType::kU8: static_cast<uint8_t*>(c.out)[oo] = uint8_t(sat(0, 255)); break;
        default: break;
      }
    });
    return ok_status();
  }
  return unary(c);
}

Status argmax(const Ctx& c) {
  const TensorDesc& x = c.s.inputs[0];
  const int r = x.shape.rank;
  const int64_t n = x.shape.back();
  Shape rows = x.shape;
  rows.rank = r - 1;
  int64_t xi[kMaxRank];
  for_each_index(rows, [&](const int64_t* ri) {
    for (int i = 0; i < r - 1; ++i) xi[i] = ri[i];
    int64_t best = 0;
    double bv = -std::numeric_limits<double>::infinity();
    bool found = false;
    for (int64_t j = 0; j < n; ++j) {
      xi[r - 1] = j;
      const double v = load(c.in[0], x, xi);
      if (std::isnan(v)) continue;
      if (!found || v > bv) {
        bv = v;
        best = j;
        found = true;
      }
    }
    static_cast<int32_t*>(c.out)[element_offset(c.s.output, ri)] = int32_t(best);
  });
  return ok_status();
}

}  // namespace

double load(const void* base, const TensorDesc& t, const int64_t* index) {
  const int64_t off = element_offset(t, index);
  switch (t.dtype) {
    case DType::kF32: return static_cast<const float*>(base)[off];
    case DType::kF16: return f16_to_float(static_cast<const uint16_t*>(base)[off]);
    case DType::kBF16: return bf16_to_float(static_cast<const uint16_t*>(base)[off]);
    case DType::kI32: return static_cast<const int32_t*>(base)[off];
    case DType::kI64: return double(static_cast<const int64_t*>(base)[off]);
    case DType::kI8: return static_cast<const int8_t*>(base)[off];
    case DType::kU8: return static_cast<const uint8_t*>(base)[off];
    default: return 0;
  }
}

void store(void* base, const TensorDesc& t, const int64_t* index, double v) {
  const int64_t off = element_offset(t, index);
  auto sat = [&](double lo, double hi) { return std::isnan(v) ? 0.0 : std::clamp(std::trunc(v), lo, hi); };
  switch (t.dtype) {
    case DType::kF32: static_cast<float*>(base)[off] = float(v); break;
    case DType::kF16: static_cast<uint16_t*>(base)[off] = float_to_f16(float(v)); break;
    case DType::kBF16: static_cast<uint16_t*>(base)[off] = float_to_bf16(float(v)); break;
    case DType::kI32: static_cast<int32_t*>(base)[off] = int32_t(sat(-2147483648.0, 2147483647.0)); break;
    case DType::kI64: static_cast<int64_t*>(base)[off] = int64_t(sat(-9.2233720368547758e18, 9.2233720368547748e18)); break;
    case DType::kI8: static_cast<int8_t*>(base)[off] = int8_t(sat(-128, 127)); break;
    case DType::kU8: static_cast<uint8_t*>(base)[off] = uint8_t(sat(0, 255)); break;
    default: break;
  }
}

namespace {

// A quantized operand as a dense f32 tensor of the same shape (rows dequantized by
// quant_reference.h), so the float reference computes with exactly the stored values.
std::vector<float> dequantize_view(const TensorDesc& t, const void* data) {
  const int64_t k = t.shape.back();
  const uint64_t row_bytes = dtype_row_bytes(t.dtype, k);
  Shape rows = t.shape;
  rows.rank = t.shape.rank - 1;
  std::vector<float> out(size_t(t.numel()));
  int64_t r = 0;
  for_each_index(rows, [&](const int64_t* idx) {
    int64_t off = 0;
    for (int i = 0; i < rows.rank; ++i) off += idx[i] * t.strides[i];
    dequantize_row(t.dtype, static_cast<const char*>(data) + uint64_t(off / k) * row_bytes,
                   out.data() + r * k, k);
    ++r;
  });
  return out;
}

}  // namespace

Status execute(const OpSpec& spec, const void* const* inputs, void* output) {
  bool quantized = false;
  for (int i = 0; i < spec.num_inputs; ++i) quantized |= is_quantized(spec.inputs[i].dtype);
  if (quantized) {
    OpSpec dense = spec;
    const void* dense_inputs[kMaxOpInputs] = {};
    std::vector<float> storage[kMaxOpInputs];
    for (int i = 0; i < spec.num_inputs; ++i) {
      dense_inputs[i] = inputs[i];
      if (!is_quantized(spec.inputs[i].dtype)) continue;
      storage[i] = dequantize_view(spec.inputs[i], inputs[i]);
      dense.inputs[i] = TensorDesc::contiguous(DType::kF32, spec.inputs[i].shape);
      dense_inputs[i] = storage[i].data();
    }
    return execute(dense, dense_inputs, output);
  }
  const Ctx c{spec, inputs, output};
  switch (spec.kind) {
    case OpKind::kMatmul: return matmul(c);
    case OpKind::kAdd:
    case OpKind::kMul: return binary(c);
    case OpKind::kScale:
    case OpKind::kGelu:
    case OpKind::kSilu: return unary(c);
    case OpKind::kLayerNorm:
    case OpKind::kRmsNorm: return norm(c);
    case OpKind::kSoftmax: return softmax(c);
    case OpKind::kRotary: return rotary(c);
    case OpKind::kAttention: return attention(c);
    case OpKind::kEmbedding: return embedding(c);
    case OpKind::kTranspose: return transpose(c);
    case OpKind::kCast: return cast(c);
    case OpKind::kArgmax: return argmax(c);
    case OpKind::kInvalid: break;
  }
  return invalid_argument("reference: unknown op kind " + std::to_string(int(spec.kind)));
}

}  // namespace hal::reference
