// Ops on the GPU: support rules, and the translation of each validated op into the kernels'
// argument structs (cuda_kernels.h). Matmul lives in cuda_matmul.cc.
#include "cuda_ops.h"

#include "cuda_quant.h"

#include <algorithm>

namespace hal::cuda {
namespace {

bool is_kernel_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }
bool is_cast_type(DType t) {
  return is_kernel_float(t) || t == DType::kI32 || t == DType::kI64 || t == DType::kI8 ||
         t == DType::kU8;
}

// The collapsed iteration space of an elementwise op (EwArgs): the output's shape with each
// operand's strides right-aligned (size-1 and missing dims broadcast with stride 0), dims
// of size 1 dropped, and neighbouring dims merged where every operand is contiguous across
// them.
void build_loop(EwArgs& a, const TensorDesc& out, const TensorDesc* const* in, int num_in,
                const int64_t* const* in_strides_override = nullptr) {
  const int r = out.shape.rank;
  int64_t shape[kMaxRank];
  int64_t st[3][kMaxRank];
  for (int d = 0; d < r; ++d) {
    shape[d] = out.shape.dims[d];
    st[0][d] = out.strides[d];
    for (int p = 0; p < num_in; ++p) {
      if (in_strides_override && in_strides_override[p]) {
        st[p + 1][d] = in_strides_override[p][d];
        continue;
      }
      const TensorDesc& t = *in[p];
      const int id = t.shape.rank - r + d;
      st[p + 1][d] = (id >= 0 && t.shape.dims[id] != 1) ? t.strides[id] : 0;
    }
  }
  int rank = 0;
  for (int d = 0; d < r; ++d) {
    if (shape[d] == 1) continue;
    if (rank > 0) {
      // Merge d into the previous kept dim when stride[prev] == stride[d] * shape[d].
      bool mergeable = true;
      for (int p = 0; p <= num_in; ++p)
        if (a.strides[p][rank - 1] != st[p][d] * shape[d]) mergeable = false;
      if (mergeable) {
        a.shape[rank - 1] *= shape[d];
        for (int p = 0; p <= num_in; ++p) a.strides[p][rank - 1] = st[p][d];
        continue;
      }
    }
    a.shape[rank] = shape[d];
    for (int p = 0; p <= num_in; ++p) a.strides[p][rank] = st[p][d];
    ++rank;
  }
  a.rank = rank;
  a.numel = out.numel();
  a.num_inputs = num_in;
}

Status launched(CudaStream& s, cudaError_t e, OpKind kind) {
  return s.device()->check(e, std::string(op_kind_name(kind)) + " kernel launch");
}

Status run_elementwise(CudaStream& s, const plugin::OpCall& op) {
  EwArgs a;
  a.err = s.error_ref();
  const TensorDesc& out = op.output.desc;
  a.ptr[0] = tensor_ptr(op.output);
  a.dtype[0] = int32_t(out.dtype);
  const TensorDesc* in[2] = {&op.inputs[0].desc, op.num_inputs > 1 ? &op.inputs[1].desc : nullptr};
  for (int i = 0; i < op.num_inputs && i < 2; ++i) {
    a.ptr[i + 1] = tensor_ptr(op.inputs[i]);
    a.dtype[i + 1] = int32_t(op.inputs[i].desc.dtype);
  }
  switch (op.kind) {
    case OpKind::kAdd:
      a.op = EwOp::kAdd;
      break;
    case OpKind::kMul:
      a.op = EwOp::kMul;
      break;
    case OpKind::kScale:
      a.op = EwOp::kScale;
      a.alpha = op.attrs.alpha;
      a.beta = op.attrs.beta;
      break;
    case OpKind::kGelu:
      a.op = op.attrs.gelu_approximation == GeluApproximation::kTanh ? EwOp::kGeluTanh
                                                                     : EwOp::kGeluErf;
      break;
    case OpKind::kSilu:
      a.op = EwOp::kSilu;
      break;
    case OpKind::kCast:
      a.op = EwOp::kCast;
      break;
    case OpKind::kTranspose: {
      // out[idx] = x[idx through perm]: x seen with strides permuted into the output's order.
      a.op = EwOp::kCopy;
      int64_t strides[kMaxRank] = {};
      for (int i = 0; i < out.shape.rank; ++i)
        strides[i] = op.inputs[0].desc.strides[op.attrs.perm[i]];
      const int64_t* overrides[1] = {strides};
      build_loop(a, out, in, 1, overrides);
      return launched(s, launch_elementwise(a, s.handle()), op.kind);
    }
    default:
      return internal_error("not an elementwise op");
  }
  build_loop(a, out, in, op.num_inputs == 2 ? 2 : 1);
  return launched(s, launch_elementwise(a, s.handle()), op.kind);
}

Status run_rows(CudaStream& s, const plugin::OpCall& op) {
  RowArgs a;
  a.err = s.error_ref();
  const TensorDesc& x = op.inputs[0].desc;
  const TensorDesc& out = op.output.desc;
  const int r = x.shape.rank;
  a.n = x.shape.dims[r - 1];
  a.lead_rank = r - 1;
  a.rows = 1;
  for (int d = 0; d < r - 1; ++d) {
    a.lead_shape[d] = x.shape.dims[d];
    a.x_lead_strides[d] = x.strides[d];
    a.out_lead_strides[d] = out.strides[d];
    a.rows *= x.shape.dims[d];
  }
  a.x = tensor_ptr(op.inputs[0]);
  a.x_dtype = int32_t(x.dtype);
  a.x_stride = x.strides[r - 1];
  a.out = tensor_ptr(op.output);
  a.out_dtype = int32_t(out.dtype);
  a.out_stride = op.kind == OpKind::kArgmax ? 0 : out.strides[r - 1];
  switch (op.kind) {
    case OpKind::kLayerNorm:
    case OpKind::kRmsNorm:
      a.op = op.kind == OpKind::kLayerNorm ? RowOp::kLayerNorm : RowOp::kRmsNorm;
      a.epsilon = op.attrs.epsilon;
      a.gamma = tensor_ptr(op.inputs[1]);
      a.gamma_dtype = int32_t(op.inputs[1].desc.dtype);
      a.gamma_stride = op.inputs[1].desc.strides[0];
      if (op.kind == OpKind::kLayerNorm && op.num_inputs == 3) {
        a.beta = tensor_ptr(op.inputs[2]);
        a.beta_dtype = int32_t(op.inputs[2].desc.dtype);
        a.beta_stride = op.inputs[2].desc.strides[0];
      }
      break;
    case OpKind::kSoftmax:
      a.op = RowOp::kSoftmax;
      a.scale = op.attrs.scale == 0.0f ? 1.0f : op.attrs.scale;
      a.causal = op.attrs.causal ? 1 : 0;
      a.sq = r >= 2 ? x.shape.dims[r - 2] : 1;
      break;
    case OpKind::kArgmax:
      a.op = RowOp::kArgmax;
      break;
    default:
      return internal_error("not a row op");
  }
  return launched(s, launch_rows(a, s.device()->sm_count(), s.handle()), op.kind);
}

Status run_rotary(CudaStream& s, const plugin::OpCall& op) {
  RotaryArgs a;
  a.err = s.error_ref();
  const TensorDesc& x = op.inputs[0].desc;
  const TensorDesc& pos = op.inputs[1].desc;
  a.x = tensor_ptr(op.inputs[0]);
  a.x_dtype = int32_t(x.dtype);
  a.out = tensor_ptr(op.output);
  a.rank = x.shape.rank;
  for (int d = 0; d < x.shape.rank; ++d) {
    a.shape[d] = x.shape.dims[d];
    a.x_strides[d] = x.strides[d];
    a.out_strides[d] = op.output.desc.strides[d];
  }
  a.positions = tensor_ptr(op.inputs[1]);
  a.positions_dtype = int32_t(pos.dtype);
  a.positions_rank = pos.shape.rank;
  for (int d = 0; d < pos.shape.rank; ++d) a.positions_strides[d] = pos.strides[d];
  if (op.num_inputs == 3) {
    a.inv_freq = static_cast<const float*>(tensor_ptr(op.inputs[2]));
    a.inv_freq_stride = op.inputs[2].desc.strides[0];
  }
  a.theta = op.attrs.rope_theta;
  a.rotary_dim = op.attrs.rotary_dim == 0 ? int32_t(x.shape.back()) : op.attrs.rotary_dim;
  a.interleaved = op.attrs.rope_style == RopeStyle::kInterleaved ? 1 : 0;
  return launched(s, launch_rotary(a, s.handle()), op.kind);
}

Status run_embedding(CudaStream& s, const plugin::OpCall& op) {
  EmbeddingArgs a;
  a.err = s.error_ref();
  const TensorDesc& table = op.inputs[0].desc;
  const TensorDesc& ids = op.inputs[1].desc;
  const TensorDesc& out = op.output.desc;
  a.table = tensor_ptr(op.inputs[0]);
  a.table_dtype = int32_t(table.dtype);
  a.vocab = table.shape.dims[0];
  a.dim = table.shape.dims[1];
  a.table_strides[0] = table.strides[0];
  a.table_strides[1] = table.strides[1];
  a.ids = tensor_ptr(op.inputs[1]);
  a.ids_dtype = int32_t(ids.dtype);
  a.ids_rank = ids.shape.rank;
  a.num_ids = ids.numel();
  for (int d = 0; d < ids.shape.rank; ++d) {
    a.ids_shape[d] = ids.shape.dims[d];
    a.ids_strides[d] = ids.strides[d];
  }
  a.out = tensor_ptr(op.output);
  a.out_dtype = int32_t(out.dtype);
  for (int d = 0; d < out.shape.rank; ++d) a.out_strides[d] = out.strides[d];
  a.op_kind = int32_t(OpKind::kEmbedding);
  if (is_quantized(table.dtype)) quant_embedding_args(op, a);
  HAL_RETURN_IF_ERROR(launched(s, launch_embedding(a, s.handle()), op.kind));
  if (a.num_ids > 0) s.mark_fallible();
  return ok_status();
}

Status run_attention(CudaStream& s, const plugin::OpCall& op) {
  AttentionArgs a;
  a.err = s.error_ref();
  const TensorDesc* t[4] = {&op.inputs[0].desc, &op.inputs[1].desc, &op.inputs[2].desc,
                            &op.output.desc};
  a.q = tensor_ptr(op.inputs[0]);
  a.k = tensor_ptr(op.inputs[1]);
  a.v = tensor_ptr(op.inputs[2]);
  a.out = tensor_ptr(op.output);
  a.q_dtype = int32_t(t[0]->dtype);
  a.k_dtype = int32_t(t[1]->dtype);
  a.v_dtype = int32_t(t[2]->dtype);
  a.out_dtype = int32_t(t[3]->dtype);
  for (int d = 0; d < 4; ++d) {
    a.q_strides[d] = t[0]->strides[d];
    a.k_strides[d] = t[1]->strides[d];
    a.v_strides[d] = t[2]->strides[d];
    a.out_strides[d] = t[3]->strides[d];
  }
  a.batch = t[0]->shape.dims[0];
  a.sq = t[0]->shape.dims[1];
  a.hq = t[0]->shape.dims[2];
  a.d = t[0]->shape.dims[3];
  a.skv = t[1]->shape.dims[1];
  a.hkv = t[1]->shape.dims[2];
  a.dv = t[2]->shape.dims[3];
  if (op.num_inputs == 4) {
    a.kv_lengths = static_cast<const int32_t*>(tensor_ptr(op.inputs[3]));
    a.kv_lengths_stride = op.inputs[3].desc.strides[0];
  }
  a.kv_length = op.attrs.kv_length;
  a.q_offset = op.attrs.q_offset;
  a.causal = op.attrs.causal ? 1 : 0;
  a.scale = op.attrs.scale;
  a.op_kind = int32_t(OpKind::kAttention);
  const AttentionPlan plan = plan_attention(a, s.device()->sm_count());
  void* workspace = nullptr;
  if (plan.workspace_bytes > 0) {
    HAL_ASSIGN_OR_RETURN(workspace, s.scratch(plan.workspace_bytes));
  }
  HAL_RETURN_IF_ERROR(launched(s, launch_attention(a, plan, workspace, s.handle()), op.kind));
  if (a.kv_lengths && a.batch > 0) s.mark_fallible();
  return ok_status();
}

}  // namespace

Status run_bias_add(CudaStream& s, const plugin::TensorArg& out, const plugin::TensorArg& bias) {
  EwArgs a;
  a.err = s.error_ref();
  a.op = EwOp::kAdd;
  a.ptr[0] = tensor_ptr(out);
  a.dtype[0] = int32_t(out.desc.dtype);
  a.ptr[1] = tensor_ptr(out);  // each element is read and written by the same thread
  a.dtype[1] = int32_t(out.desc.dtype);
  a.ptr[2] = tensor_ptr(bias);
  a.dtype[2] = int32_t(bias.desc.dtype);
  const TensorDesc* in[2] = {&out.desc, &bias.desc};
  build_loop(a, out.desc, in, 2);
  return launched(s, launch_elementwise(a, s.handle()), OpKind::kMatmul);
}

bool op_supported(const OpSpec& spec) {
  // Quantized weights (matmul's B, embedding's table): cuda_quant.cc.
  for (int i = 0; i < spec.num_inputs; ++i)
    if (is_quantized(spec.inputs[i].dtype)) {
      if (!quant_op_supported(spec)) return false;
      for (int j = 0; j < spec.num_inputs; ++j)
        if (j != i && !(is_kernel_float(spec.inputs[j].dtype) || (spec.kind == OpKind::kEmbedding && j == 1)))
          return false;
      return is_kernel_float(spec.output.dtype);
    }
  // Dtypes: floats everywhere but where an op takes indices, and casts.
  for (int i = 0; i < spec.num_inputs; ++i) {
    const DType t = spec.inputs[i].dtype;
    const bool index_input = (spec.kind == OpKind::kEmbedding && i == 1) ||
                             (spec.kind == OpKind::kRotary && i == 1) ||
                             (spec.kind == OpKind::kAttention && i == 3);
    if (spec.kind == OpKind::kTranspose) {
      if (dtype_size(t) == 0) return false;
    } else if (spec.kind == OpKind::kCast) {
      if (!is_cast_type(t)) return false;
    } else if (!index_input && !is_kernel_float(t)) {
      return false;
    }
  }
  const DType o = spec.output.dtype;
  if (spec.kind == OpKind::kCast && !is_cast_type(o)) return false;
  if (spec.kind != OpKind::kCast && spec.kind != OpKind::kTranspose &&
      spec.kind != OpKind::kArgmax && !is_kernel_float(o))
    return false;
  if (spec.kind == OpKind::kAttention) {
    const Shape& q = spec.inputs[0].shape;
    const Shape& v = spec.inputs[2].shape;
    if (q[3] > kAttentionMaxHeadDim || v[3] > kAttentionMaxHeadDim || q[0] > 65535) return false;
  }
  if (spec.kind == OpKind::kMatmul) {
    // The fallback kernel's grid: at most 65535 row tiles of 64.
    const Shape& out = spec.output.shape;
    if (out.rank >= 2 && out.dims[out.rank - 2] > int64_t(65535) * 64) return false;
  }
  return true;
}

Status run_op(CudaStream& s, const plugin::OpCall& op) {
  switch (op.kind) {
    case OpKind::kMatmul:
      return run_matmul(s, op);
    case OpKind::kAdd:
    case OpKind::kMul:
    case OpKind::kScale:
    case OpKind::kGelu:
    case OpKind::kSilu:
    case OpKind::kCast:
    case OpKind::kTranspose:
      return run_elementwise(s, op);
    case OpKind::kLayerNorm:
    case OpKind::kRmsNorm:
    case OpKind::kSoftmax:
    case OpKind::kArgmax:
      return run_rows(s, op);
    case OpKind::kRotary:
      return run_rotary(s, op);
    case OpKind::kEmbedding:
      return run_embedding(s, op);
    case OpKind::kAttention:
      return run_attention(s, op);
    case OpKind::kInvalid:
      break;
  }
  return unimplemented("op kind " + std::to_string(int(op.kind)) + " has no CUDA kernel");
}

bool CudaDevice::supports(const OpSpec& spec) const { return op_supported(spec); }

}  // namespace hal::cuda
