// Shape rules, validation and analytic cost of the op set (semantics in hal/op.h).
#include "hal/op.h"

#include <algorithm>
#include <string>

namespace hal {

namespace {

constexpr std::string_view kOpNames[kOpKindCount] = {
    "invalid", "matmul", "add",  "mul",  "scale",     "layer_norm", "rms_norm",  "softmax",
    "gelu",    "silu",   "rotary", "attention", "embedding", "transpose", "cast", "argmax"};

std::string name_of(OpKind k) { return std::string(op_kind_name(k)); }

Status bad(OpKind k, const std::string& msg) { return invalid_argument(name_of(k) + ": " + msg); }

bool is_index_type(DType t) { return t == DType::kI32 || t == DType::kI64; }

// Numpy-style broadcast of two shapes (right-aligned; 1 or equal).
bool broadcast_shapes(const Shape& a, const Shape& b, Shape* out) {
  const int r = std::max(a.rank, b.rank);
  out->rank = r;
  for (int i = 0; i < r; ++i) {
    const int ia = a.rank - r + i;
    const int ib = b.rank - r + i;
    const int64_t da = ia >= 0 ? a.dims[ia] : 1;
    const int64_t db = ib >= 0 ? b.dims[ib] : 1;
    if (da != db && da != 1 && db != 1) return false;
    out->dims[i] = da == 1 ? db : da;
  }
  return true;
}

Shape drop_last(const Shape& s, int n) {
  Shape r = s;
  r.rank = std::max(0, s.rank - n);
  return r;
}

uint64_t nbytes(const TensorDesc& t) { return t.bytes(); }

}  // namespace

std::string_view op_kind_name(OpKind kind) {
  const int i = int(kind);
  return (i >= 0 && i < kOpKindCount) ? kOpNames[i] : "unknown";
}

std::optional<OpKind> parse_op_kind(std::string_view name) {
  for (int i = 1; i < kOpKindCount; ++i)
    if (kOpNames[i] == name) return OpKind(i);
  return std::nullopt;
}

InputArity op_input_arity(OpKind kind) {
  switch (kind) {
    case OpKind::kMatmul: return {2, 3};
    case OpKind::kAdd:
    case OpKind::kMul: return {2, 2};
    case OpKind::kLayerNorm: return {2, 3};
    case OpKind::kRmsNorm: return {2, 2};
    case OpKind::kRotary: return {2, 3};
    case OpKind::kAttention: return {3, 4};
    case OpKind::kEmbedding: return {2, 2};
    case OpKind::kScale:
    case OpKind::kSoftmax:
    case OpKind::kGelu:
    case OpKind::kSilu:
    case OpKind::kTranspose:
    case OpKind::kCast:
    case OpKind::kArgmax: return {1, 1};
    case OpKind::kInvalid: break;
  }
  return {0, 0};
}

OpClass op_class(OpKind kind) {
  switch (kind) {
    case OpKind::kMatmul:
    case OpKind::kAttention: return OpClass::kMatrix;
    case OpKind::kEmbedding:
    case OpKind::kTranspose:
    case OpKind::kCast: return OpClass::kData;
    default: return OpClass::kVector;
  }
}

std::string Shape::to_string() const {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

TensorDesc TensorDesc::contiguous(DType dtype, Shape shape) {
  TensorDesc t;
  t.dtype = dtype;
  t.shape = shape;
  uint64_t stride = 1;  // unsigned: wraps (defined) on shapes no tensor can have
  for (int i = shape.rank - 1; i >= 0; --i) {
    t.strides[i] = int64_t(stride);
    stride *= uint64_t(std::max<int64_t>(shape.dims[i], 1));
  }
  return t;
}

bool TensorDesc::is_contiguous() const {
  uint64_t stride = 1;  // unsigned: wraps (defined) on shapes no tensor can have
  for (int i = shape.rank - 1; i >= 0; --i) {
    if (shape.dims[i] != 1 && uint64_t(strides[i]) != stride) return false;
    stride *= uint64_t(shape.dims[i]);
  }
  return true;
}

uint64_t TensorDesc::extent_bytes() const {
  if (numel() <= 0) return 0;
  uint64_t last = 0;
  for (int i = 0; i < shape.rank; ++i) last += uint64_t(shape.dims[i] - 1) * uint64_t(strides[i]);
  if (is_quantized(dtype)) {
    const int64_t k = shape.rank > 0 ? shape.back() : 1;
    return (last / uint64_t(k) + 1) * dtype_row_bytes(dtype, k);
  }
  return (last + 1) * dtype_size(dtype);
}

uint64_t TensorDesc::offset_bytes_of(int64_t element_offset) const {
  if (element_offset <= 0) return 0;
  if (is_quantized(dtype)) {
    const int64_t k = shape.rank > 0 ? std::max<int64_t>(shape.back(), 1) : 1;
    return uint64_t(element_offset / k) * dtype_row_bytes(dtype, k);
  }
  return uint64_t(element_offset) * dtype_size(dtype);
}

std::string quantized_view_error(const TensorDesc& t) {
  if (!is_quantized(t.dtype)) return "";
  const std::string name(dtype_name(t.dtype));
  if (t.shape.rank < 1) return name + " tensor needs rank >= 1";
  const int64_t k = t.shape.back();
  const int64_t block = dtype_block(t.dtype);
  if (k <= 0 || k % block != 0)
    return name + " rows hold blocks of " + std::to_string(block) + " elements; the last dim of " +
           t.shape.to_string() + " is not a multiple";
  if (t.shape.back() > 1 && t.strides[t.shape.rank - 1] != 1)
    return name + " " + t.to_string() + " must be contiguous along its last dim";
  for (int d = 0; d + 1 < t.shape.rank; ++d)
    if (t.shape.dims[d] > 1 && t.strides[d] % k != 0)
      return name + " " + t.to_string() + " must step whole rows (strides multiples of " +
             std::to_string(k) + ")";
  return "";
}

std::string TensorDesc::to_string() const {
  std::string s = std::string(dtype_name(dtype)) + shape.to_string();
  if (!is_contiguous()) {
    s += " strides [";
    for (int i = 0; i < shape.rank; ++i) {
      if (i) s += ", ";
      s += std::to_string(strides[i]);
    }
    s += "]";
  }
  return s;
}

Result<TensorDesc> infer_output(OpKind kind, const OpAttributes& attrs, const TensorDesc* in,
                                int32_t n) {
  const InputArity arity = op_input_arity(kind);
  if (kind == OpKind::kInvalid || arity.max == 0) return invalid_argument("op kind is invalid");
  if (n < arity.min || n > arity.max) {
    std::string range = std::to_string(arity.min);
    if (arity.max != arity.min) range.append("-").append(std::to_string(arity.max));
    return bad(kind, "takes " + range + " inputs, got " + std::to_string(n));
  }
  for (int i = 0; i < n; ++i) {
    if (!is_valid_dtype(in[i].dtype) || (dtype_size(in[i].dtype) == 0 && !is_quantized(in[i].dtype)))
      return bad(kind, "input " + std::to_string(i) + " has no valid dtype");
    // Quantized weights: matmul's B (transposed) and embedding's table only.
    const bool weight_slot = (kind == OpKind::kMatmul && i == 1) || (kind == OpKind::kEmbedding && i == 0);
    if (is_quantized(in[i].dtype) && !weight_slot)
      return bad(kind, "input " + std::to_string(i) + " is " + std::string(dtype_name(in[i].dtype)) +
                           "; a quantized tensor may only be matmul's B or embedding's table");
    if (in[i].shape.rank < 0 || in[i].shape.rank > kMaxRank)
      return bad(kind, "input " + std::to_string(i) + " has rank " +
                           std::to_string(in[i].shape.rank) + " outside [0, 8]");
    for (int d = 0; d < in[i].shape.rank; ++d)
      if (in[i].shape.dims[d] < 0)
        return bad(kind, "input " + std::to_string(i) + " has a negative dim: " +
                             in[i].shape.to_string());
  }
  auto need_float = [&](int i) -> Status {
    if (!is_floating(in[i].dtype))
      return bad(kind, "input " + std::to_string(i) + " must be a float tensor, got " +
                           std::string(dtype_name(in[i].dtype)));
    return ok_status();
  };
  TensorDesc out;
  switch (kind) {
    case OpKind::kMatmul: {
      HAL_RETURN_IF_ERROR(need_float(0));
      if (is_quantized(in[1].dtype)) {
        if (!attrs.transpose_b)
          return bad(kind, "a quantized B (" + std::string(dtype_name(in[1].dtype)) +
                               ") is stored [.., N, K] and needs transpose_b");
      } else {
        HAL_RETURN_IF_ERROR(need_float(1));
      }
      const Shape& a = in[0].shape;
      const Shape& b = in[1].shape;
      if (a.rank < 2 || b.rank < 2)
        return bad(kind, "A and B need rank >= 2, got A " + a.to_string() + " and B " + b.to_string());
      const int64_t m = attrs.transpose_a ? a.back(1) : a.back(2);
      const int64_t ka = attrs.transpose_a ? a.back(2) : a.back(1);
      const int64_t kb = attrs.transpose_b ? b.back(1) : b.back(2);
      const int64_t nn = attrs.transpose_b ? b.back(2) : b.back(1);
      if (ka != kb)
        return bad(kind, "inner dims differ: A " + a.to_string() + (attrs.transpose_a ? "^T" : "") +
                             " and B " + b.to_string() + (attrs.transpose_b ? "^T" : "") +
                             " (K " + std::to_string(ka) + " vs " + std::to_string(kb) + ")");
      Shape batch;
      if (!broadcast_shapes(drop_last(a, 2), drop_last(b, 2), &batch))
        return bad(kind, "batch dims of A " + a.to_string() + " and B " + b.to_string() +
                             " do not broadcast");
      if (batch.rank + 2 > kMaxRank) return bad(kind, "output rank exceeds 8");
      if (n == 3) {
        HAL_RETURN_IF_ERROR(need_float(2));
        if (in[2].shape.rank != 1 || in[2].shape[0] != nn)
          return bad(kind, "bias must be [" + std::to_string(nn) + "], got " + in[2].shape.to_string());
      }
      out.dtype = in[0].dtype;
      out.shape = batch;
      out.shape.rank = batch.rank + 2;
      out.shape.dims[batch.rank] = m;
      out.shape.dims[batch.rank + 1] = nn;
      break;
    }
    case OpKind::kAdd:
    case OpKind::kMul: {
      HAL_RETURN_IF_ERROR(need_float(0));
      HAL_RETURN_IF_ERROR(need_float(1));
      out.dtype = in[0].dtype;
      if (!broadcast_shapes(in[0].shape, in[1].shape, &out.shape))
        return bad(kind, "shapes " + in[0].shape.to_string() + " and " + in[1].shape.to_string() +
                             " do not broadcast");
      break;
    }
    case OpKind::kScale:
    case OpKind::kGelu:
    case OpKind::kSilu: {
      HAL_RETURN_IF_ERROR(need_float(0));
      if (kind == OpKind::kGelu && attrs.gelu_approximation != GeluApproximation::kErf &&
          attrs.gelu_approximation != GeluApproximation::kTanh)
        return bad(kind, "unknown gelu approximation " +
                             std::to_string(int(attrs.gelu_approximation)));
      out.dtype = in[0].dtype;
      out.shape = in[0].shape;
      break;
    }
    case OpKind::kLayerNorm:
    case OpKind::kRmsNorm: {
      for (int i = 0; i < n; ++i) HAL_RETURN_IF_ERROR(need_float(i));
      const Shape& x = in[0].shape;
      if (x.rank < 1) return bad(kind, "x needs rank >= 1");
      for (int i = 1; i < n; ++i)
        if (in[i].shape.rank != 1 || in[i].shape[0] != x.back())
          return bad(kind, std::string(i == 1 ? "gamma" : "beta") + " must be [" +
                               std::to_string(x.back()) + "], got " + in[i].shape.to_string());
      if (!(attrs.epsilon >= 0.0f)) return bad(kind, "epsilon must be >= 0");
      out.dtype = in[0].dtype;
      out.shape = x;
      break;
    }
    case OpKind::kSoftmax: {
      HAL_RETURN_IF_ERROR(need_float(0));
      if (in[0].shape.rank < 1) return bad(kind, "x needs rank >= 1");
      if (attrs.causal && in[0].shape.rank < 2)
        return bad(kind, "causal softmax needs rank >= 2 ([.., Sq, Sk]), got " +
                             in[0].shape.to_string());
      out.dtype = in[0].dtype;
      out.shape = in[0].shape;
      break;
    }
    case OpKind::kRotary: {
      HAL_RETURN_IF_ERROR(need_float(0));
      const Shape& x = in[0].shape;
      const Shape& p = in[1].shape;
      if (x.rank < 3) return bad(kind, "x must be [.., S, H, D], got " + x.to_string());
      if (!is_index_type(in[1].dtype))
        return bad(kind, "positions must be i32 or i64, got " + std::string(dtype_name(in[1].dtype)));
      const int64_t s = x.back(3);
      const bool per_batch = p.rank == 2;
      if (!((p.rank == 1 && p[0] == s) || (per_batch && x.rank == 4 && p[0] == x[0] && p[1] == s)))
        return bad(kind, "positions must be [S] or [B, S] for x " + x.to_string() + ", got " +
                             p.to_string());
      const int64_t d = x.back();
      const int64_t rd = attrs.rotary_dim == 0 ? d : attrs.rotary_dim;
      if (rd <= 0 || rd > d || rd % 2 != 0)
        return bad(kind, "rotary_dim " + std::to_string(rd) + " must be even and in (0, " +
                             std::to_string(d) + "]");
      if (attrs.rope_style != RopeStyle::kRotateHalf && attrs.rope_style != RopeStyle::kInterleaved)
        return bad(kind, "unknown rope style " + std::to_string(int(attrs.rope_style)));
      if (n == 3) {
        if (in[2].dtype != DType::kF32 || in[2].shape.rank != 1 || in[2].shape[0] != rd / 2)
          return bad(kind, "inv_freq must be f32[" + std::to_string(rd / 2) + "], got " +
                               in[2].to_string());
      } else if (!(attrs.rope_theta > 0.0f)) {
        return bad(kind, "rope_theta must be > 0");
      }
      out.dtype = in[0].dtype;
      out.shape = x;
      break;
    }
    case OpKind::kAttention: {
      for (int i = 0; i < 3; ++i) HAL_RETURN_IF_ERROR(need_float(i));
      const Shape& q = in[0].shape;
      const Shape& k = in[1].shape;
      const Shape& v = in[2].shape;
      if (q.rank != 4 || k.rank != 4 || v.rank != 4)
        return bad(kind, "q, k, v must be rank 4 ([B, S, H, D]); got q " + q.to_string() + ", k " +
                             k.to_string() + ", v " + v.to_string());
      if (k[0] != q[0] || v[0] != q[0])
        return bad(kind, "batch sizes differ: q " + q.to_string() + ", k " + k.to_string() +
                             ", v " + v.to_string());
      if (k[1] != v[1] || k[2] != v[2])
        return bad(kind, "k " + k.to_string() + " and v " + v.to_string() +
                             " need the same sequence length and heads");
      if (k[3] != q[3])
        return bad(kind, "head dims differ: q " + q.to_string() + ", k " + k.to_string());
      if (k[2] == 0 || q[2] % k[2] != 0)
        return bad(kind, "query heads " + std::to_string(q[2]) +
                             " must be a multiple of kv heads " + std::to_string(k[2]));
      if (attrs.kv_length < 0 || attrs.kv_length > k[1])
        return bad(kind, "kv_length " + std::to_string(attrs.kv_length) + " outside [0, " +
                             std::to_string(k[1]) + "]");
      if (attrs.q_offset < -1) return bad(kind, "q_offset must be >= -1");
      if (attrs.scale < 0.0f) return bad(kind, "scale must be >= 0 (0 = 1/sqrt(D))");
      if (n == 4 && (in[3].dtype != DType::kI32 || in[3].shape.rank != 1 || in[3].shape[0] != q[0]))
        return bad(kind, "kv_lengths must be i32[" + std::to_string(q[0]) + "], got " +
                             in[3].to_string());
      out.dtype = in[0].dtype;
      out.shape = Shape{q[0], q[1], q[2], v[3]};
      break;
    }
    case OpKind::kEmbedding: {
      if (!is_quantized(in[0].dtype)) HAL_RETURN_IF_ERROR(need_float(0));
      if (in[0].shape.rank != 2) return bad(kind, "table must be [V, D], got " + in[0].shape.to_string());
      if (!is_index_type(in[1].dtype))
        return bad(kind, "ids must be i32 or i64, got " + std::string(dtype_name(in[1].dtype)));
      if (in[1].shape.rank + 1 > kMaxRank) return bad(kind, "ids rank must be < 8");
      out.dtype = is_quantized(in[0].dtype) ? DType::kF32 : in[0].dtype;
      out.shape = in[1].shape;
      out.shape.dims[out.shape.rank++] = in[0].shape[1];
      break;
    }
    case OpKind::kTranspose: {
      const Shape& x = in[0].shape;
      bool seen[kMaxRank] = {};
      for (int i = 0; i < x.rank; ++i) {
        const int p = attrs.perm[i];
        if (p < 0 || p >= x.rank || seen[p]) {
          std::string perm;
          for (int j = 0; j < x.rank; ++j) perm += (j ? "," : "") + std::to_string(attrs.perm[j]);
          return bad(kind, "perm [" + perm + "] is not a permutation of the " +
                               std::to_string(x.rank) + " dims of " + x.to_string());
        }
        seen[p] = true;
      }
      out.dtype = in[0].dtype;
      out.shape.rank = x.rank;
      for (int i = 0; i < x.rank; ++i) out.shape.dims[i] = x.dims[attrs.perm[i]];
      break;
    }
    case OpKind::kCast: {
      out.dtype = DType::kInvalid;  // chosen by the caller
      out.shape = in[0].shape;
      break;
    }
    case OpKind::kArgmax: {
      HAL_RETURN_IF_ERROR(need_float(0));
      if (in[0].shape.rank < 1) return bad(kind, "x needs rank >= 1");
      out.dtype = DType::kI32;
      out.shape = drop_last(in[0].shape, 1);
      break;
    }
    case OpKind::kInvalid:
      return invalid_argument("op kind is invalid");
  }
  return TensorDesc::contiguous(out.dtype, out.shape);
}

Status validate_op(const OpSpec& spec) {
  if (spec.num_inputs < 0 || spec.num_inputs > kMaxOpInputs)
    return invalid_argument("op has " + std::to_string(spec.num_inputs) + " inputs");
  HAL_ASSIGN_OR_RETURN(TensorDesc expect,
                       infer_output(spec.kind, spec.attrs, spec.inputs.data(), spec.num_inputs));
  const OpKind k = spec.kind;
  const TensorDesc& o = spec.output;
  if (o.shape.rank < 0 || o.shape.rank > kMaxRank) return bad(k, "output rank outside [0, 8]");
  if (!(o.shape == expect.shape))
    return bad(k, "output shape " + o.shape.to_string() + " should be " + expect.shape.to_string() +
                      " for inputs " + [&] {
                        std::string s;
                        for (int i = 0; i < spec.num_inputs; ++i)
                          s += (i ? ", " : "") + spec.inputs[i].to_string();
                        return s;
                      }());
  if (!is_valid_dtype(o.dtype) || dtype_size(o.dtype) == 0) return bad(k, "output has no valid dtype");
  for (int i = 0; i < spec.num_inputs; ++i) {
    const std::string err = quantized_view_error(spec.inputs[i]);
    if (!err.empty()) return bad(k, "input " + std::to_string(i) + ": " + err);
  }
  switch (k) {
    case OpKind::kCast:
      break;
    case OpKind::kEmbedding:
      if (is_quantized(spec.inputs[0].dtype) ? !is_floating(o.dtype) || dtype_size(o.dtype) < 2
                                             : o.dtype != expect.dtype)
        return bad(k, "output dtype " + std::string(dtype_name(o.dtype)) + " should be " +
                          (is_quantized(spec.inputs[0].dtype) ? std::string("f32, f16 or bf16")
                                                              : std::string(dtype_name(expect.dtype))));
      break;
    case OpKind::kMatmul:
      if (!is_floating(o.dtype)) return bad(k, "output must be a float tensor");
      break;
    case OpKind::kArgmax:
      if (o.dtype != DType::kI32)
        return bad(k, "output must be i32, got " + std::string(dtype_name(o.dtype)));
      break;
    default:
      if (o.dtype != expect.dtype)
        return bad(k, "output dtype " + std::string(dtype_name(o.dtype)) + " should be " +
                          std::string(dtype_name(expect.dtype)));
  }
  for (int i = 0; i < spec.num_inputs; ++i)
    for (int d = 0; d < spec.inputs[i].shape.rank; ++d)
      if (spec.inputs[i].strides[d] < 0)
        return bad(k, "input " + std::to_string(i) + " has a negative stride");
  for (int d = 0; d < o.shape.rank; ++d) {
    if (o.strides[d] < 0) return bad(k, "output has a negative stride");
    if (o.strides[d] == 0 && o.shape.dims[d] > 1)
      return bad(k, "output " + o.to_string() + " broadcasts (stride 0) a dim it writes");
  }
  return ok_status();
}

OpCost analytic_cost(const OpSpec& spec) {
  OpCost c;
  const TensorDesc& o = spec.output;
  const double out_n = double(std::max<int64_t>(o.numel(), 0));
  for (int i = 0; i < spec.num_inputs; ++i) c.bytes_read += nbytes(spec.inputs[i]);
  c.bytes_written = nbytes(o);
  const OpAttributes& a = spec.attrs;
  switch (spec.kind) {
    case OpKind::kMatmul: {
      const Shape& as = spec.inputs[0].shape;
      const double kdim = double(a.transpose_a ? as.back(2) : as.back(1));
      c.flops = 2.0 * out_n * kdim + (spec.num_inputs == 3 ? out_n : 0.0);
      if (a.alpha != 1.0f) c.flops += out_n;
      break;
    }
    case OpKind::kAdd:
    case OpKind::kMul: c.flops = out_n; break;
    case OpKind::kScale: c.flops = 2.0 * out_n; break;
    case OpKind::kLayerNorm: c.flops = 8.0 * out_n; break;
    case OpKind::kRmsNorm: c.flops = 4.0 * out_n; break;
    case OpKind::kSoftmax: c.flops = 5.0 * out_n; break;
    case OpKind::kGelu: c.flops = 8.0 * out_n; break;
    case OpKind::kSilu: c.flops = 4.0 * out_n; break;
    case OpKind::kRotary: {
      const Shape& x = spec.inputs[0].shape;
      const int64_t rd = a.rotary_dim == 0 ? x.back() : a.rotary_dim;
      c.flops = 3.0 * out_n * double(rd) / double(std::max<int64_t>(x.back(), 1));
      break;
    }
    case OpKind::kAttention: {
      const Shape& q = spec.inputs[0].shape;
      const Shape& k = spec.inputs[1].shape;
      const Shape& v = spec.inputs[2].shape;
      const int64_t kv_len = a.kv_length > 0 ? a.kv_length : k[1];
      const int64_t sq = q[1];
      const int64_t q_off = a.q_offset >= 0 ? a.q_offset : kv_len - sq;
      double visible = 0;  // summed over queries of one (batch, head)
      int64_t max_visible = 0;
      for (int64_t i = 0; i < sq; ++i) {
        int64_t n = kv_len;
        if (a.causal) n = std::clamp<int64_t>(q_off + i + 1, 0, kv_len);
        visible += double(n);
        max_visible = std::max(max_visible, n);
      }
      const double heads = double(q[0] * q[2]);
      c.flops = heads * visible * (2.0 * double(q[3]) + 2.0 * double(v[3]) + 5.0);
      // Keys/values: only the visible rows, each read once per kv head.
      const uint64_t kv_row = uint64_t(k[2]) * (uint64_t(k[3]) * dtype_size(spec.inputs[1].dtype) +
                                                uint64_t(v[3]) * dtype_size(spec.inputs[2].dtype));
      c.bytes_read = nbytes(spec.inputs[0]) + uint64_t(q[0]) * uint64_t(max_visible) * kv_row;
      if (spec.num_inputs == 4) c.bytes_read += nbytes(spec.inputs[3]);
      break;
    }
    case OpKind::kEmbedding: {
      c.flops = 0;
      const TensorDesc& table = spec.inputs[0];
      const int64_t rows = spec.inputs[1].numel();
      c.bytes_read = nbytes(spec.inputs[1]) +
                     uint64_t(std::max<int64_t>(rows, 0)) * dtype_row_bytes(table.dtype, table.shape.back());
      break;
    }
    case OpKind::kTranspose:
    case OpKind::kCast: c.flops = 0; break;
    case OpKind::kArgmax: c.flops = double(std::max<int64_t>(spec.inputs[0].numel(), 0)); break;
    case OpKind::kInvalid: break;
  }
  return c;
}

std::string op_spec_key(const OpSpec& s) {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on
  // "literal" + std::string chains.
  std::string k;
  auto add = [&k](const std::string& piece) {
    k.append(piece);
    k.push_back('|');
  };
  add(std::to_string(int(s.kind)));
  add(std::to_string(s.num_inputs));
  for (int i = 0; i < s.num_inputs; ++i) add(s.inputs[i].to_string());
  add(s.output.to_string());
  const OpAttributes& a = s.attrs;
  for (int64_t v :
       {int64_t(a.transpose_a), int64_t(a.transpose_b), int64_t(a.causal), a.kv_length, a.q_offset,
        int64_t(a.rotary_dim), int64_t(a.gelu_approximation), int64_t(a.rope_style)})
    add(std::to_string(v));
  for (float v : {a.alpha, a.beta, a.epsilon, a.scale, a.rope_theta}) add(std::to_string(v));
  for (int32_t p : a.perm) add(std::to_string(p));
  return k;
}

}  // namespace hal
