// Row kernels over the last dim: layer_norm, rms_norm, softmax, argmax.
#include <algorithm>
#include <cmath>

#include "cpu_ops.h"
#include "cpu_simd.h"
#include "cpu_threading.h"

namespace hal::cpu {

namespace {

// Element offsets of row r (all dims but the last) in up to two strided tensors.
struct RowIndexer {
  int rank = 0;  // rank of the row space
  int64_t dims[kMaxRank] = {};
  int64_t strides[2][kMaxRank] = {};

  RowIndexer(const TensorDesc& a, const TensorDesc& b) {
    rank = a.shape.rank - 1;
    for (int d = 0; d < rank; ++d) {
      dims[d] = a.shape.dims[d];
      strides[0][d] = a.strides[d];
      strides[1][d] = b.strides[d];
    }
  }
  int64_t rows() const {
    int64_t n = 1;
    for (int d = 0; d < rank; ++d) n *= dims[d];
    return n;
  }
  // Offsets of row r; `inner_index` gets the row's index in dim rank-1 (the query index
  // of softmax's [.., Sq, Sk]).
  void offsets(int64_t r, int64_t* a, int64_t* b, int64_t* inner_index = nullptr) const {
    *a = *b = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t i = r % dims[d];
      r /= dims[d];
      if (d == rank - 1 && inner_index) *inner_index = i;
      *a += i * strides[0][d];
      *b += i * strides[1][d];
    }
  }
};

const char* at(const void* base, DType t, int64_t elem) {
  return static_cast<const char*>(base) + elem * int64_t(dtype_size(t));
}
char* at(void* base, DType t, int64_t elem) {
  return static_cast<char*>(base) + elem * int64_t(dtype_size(t));
}

// Row input as f32: in place when f32 and unit-stride, else converted into `slot`.
const float* row_in(const void* base, const TensorDesc& t, int64_t off, int64_t n, Scratch slot) {
  const int64_t stride = t.strides[t.shape.rank - 1];
  if (t.dtype == DType::kF32 && (stride == 1 || n == 1))
    return static_cast<const float*>(base) + off;
  float* buf = scratch_floats(slot, size_t(n));
  load_f32(at(base, t.dtype, off), t.dtype, stride, n, buf);
  return buf;
}
float* row_out(void* base, const TensorDesc& t, int64_t off, int64_t n, Scratch slot) {
  const int64_t stride = t.strides[t.shape.rank - 1];
  if (t.dtype == DType::kF32 && (stride == 1 || n == 1)) return static_cast<float*>(base) + off;
  return scratch_floats(slot, size_t(n));
}
void row_done(void* base, const TensorDesc& t, int64_t off, int64_t n, const float* row) {
  const int64_t stride = t.strides[t.shape.rank - 1];
  if (t.dtype == DType::kF32 && (stride == 1 || n == 1)) return;
  store_f32(at(base, t.dtype, off), t.dtype, stride, n, row);
}

// A [N] parameter (gamma/beta) as a dense f32 array (in place when already so).
const float* param_f32(const void* base, const TensorDesc& t, Scratch slot) {
  const int64_t n = t.shape[0];
  if (t.dtype == DType::kF32 && (t.strides[0] == 1 || n == 1))
    return static_cast<const float*>(base);
  float* buf = scratch_floats(slot, size_t(n));
  load_f32(base, t.dtype, t.strides[0], n, buf);
  return buf;
}

int64_t row_grain(int64_t n) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)); }

HAL_CPU_MULTIVERSION
void norm_row(bool layer_norm, const float* x, int64_t n, float eps, const float* gamma,
              const float* beta, float* y) {
  float mean = 0, rstd;
  if (layer_norm) {
    mean = row_sum(x, n) / float(n);
    rstd = 1.0f / std::sqrt(row_sum_sq_diff(x, n, mean) / float(n) + eps);
  } else {
    rstd = 1.0f / std::sqrt(row_sum_sq_diff(x, n, 0.0f) / float(n) + eps);
  }
  if (beta) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * gamma[i] + beta[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * gamma[i];
  }
}

HAL_CPU_MULTIVERSION
void softmax_row(const float* x, int64_t n, int64_t visible, float scale, float* y) {
  // max of scale*x over the visible prefix (scale > 0 commutes with max, but a negative
  // scale would not: compute on scaled values).
  float mx = -__builtin_inff();
  for (int64_t i = 0; i < visible; ++i) {
    const float v = scale * x[i];
    mx = v > mx ? v : mx;
  }
  for (int64_t i = 0; i < visible; ++i) y[i] = fast_exp(scale * x[i] - mx);
  const float inv = 1.0f / row_sum(y, visible);
  for (int64_t i = 0; i < visible; ++i) y[i] *= inv;
  for (int64_t i = visible; i < n; ++i) y[i] = 0.0f;
}

HAL_CPU_MULTIVERSION
int64_t argmax_row(const float* x, int64_t n) {
  const float m = row_max(x, n);
  for (int64_t i = 0; i < n; ++i)
    if (x[i] == m) return i;
  return 0;  // every element NaN
}

}  // namespace

Status norm(const OpSpec& spec, const void* const* in, void* out) {
  const TensorDesc& x = spec.inputs[0];
  const TensorDesc& o = spec.output;
  const int64_t n = x.shape.back();
  const RowIndexer rows(x, o);
  const int64_t count = rows.rows();
  if (count == 0 || n == 0) return ok_status();
  const bool layer_norm = spec.kind == OpKind::kLayerNorm;
  const float* gamma = param_f32(in[1], spec.inputs[1], Scratch::kOuter0);
  const float* beta = layer_norm && spec.num_inputs == 3
                          ? param_f32(in[2], spec.inputs[2], Scratch::kOuter1)
                          : nullptr;
  const float eps = spec.attrs.epsilon;
  parallel_for(count, row_grain(n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t xo, oo;
      rows.offsets(r, &xo, &oo);
      const float* xr = row_in(in[0], x, xo, n, Scratch::kLeaf0);
      float* yr = row_out(out, o, oo, n, Scratch::kLeaf1);
      norm_row(layer_norm, xr, n, eps, gamma, beta, yr);
      row_done(out, o, oo, n, yr);
    }
  });
  return ok_status();
}

Status softmax(const OpSpec& spec, const void* const* in, void* out) {
  const TensorDesc& x = spec.inputs[0];
  const TensorDesc& o = spec.output;
  const int64_t n = x.shape.back();
  const int64_t sq = x.shape.rank >= 2 ? x.shape.back(2) : 1;
  const RowIndexer rows(x, o);
  const int64_t count = rows.rows();
  if (count == 0 || n == 0) return ok_status();
  const float scale = spec.attrs.scale == 0.0f ? 1.0f : spec.attrs.scale;
  const bool causal = spec.attrs.causal;
  parallel_for(count, row_grain(n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t xo, oo, i = 0;
      rows.offsets(r, &xo, &oo, &i);
      const int64_t visible = causal ? std::clamp<int64_t>(i + (n - sq) + 1, 0, n) : n;
      const float* xr = row_in(in[0], x, xo, n, Scratch::kLeaf0);
      float* yr = row_out(out, o, oo, n, Scratch::kLeaf1);
      softmax_row(xr, n, visible, scale, yr);
      row_done(out, o, oo, n, yr);
    }
  });
  return ok_status();
}

Status argmax(const OpSpec& spec, const void* const* in, void* out) {
  const TensorDesc& x = spec.inputs[0];
  const TensorDesc& o = spec.output;
  const int64_t n = x.shape.back();
  // The output has rank-1 dims: index it with x's row dims.
  TensorDesc o_as_rows = x;
  for (int d = 0; d + 1 < x.shape.rank; ++d) o_as_rows.strides[d] = o.strides[d];
  const RowIndexer rows(x, o_as_rows);
  const int64_t count = rows.rows();
  if (count == 0) return ok_status();
  int32_t* result = static_cast<int32_t*>(out);
  parallel_for(count, row_grain(n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t xo, oo;
      rows.offsets(r, &xo, &oo);
      result[oo] = n == 0 ? 0 : int32_t(argmax_row(row_in(in[0], x, xo, n, Scratch::kLeaf0), n));
    }
  });
  return ok_status();
}

}  // namespace hal::cpu
