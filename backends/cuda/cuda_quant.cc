// Quantized weights on the GPU (hal/op.h formats): matmul with a quantized B and the
// embedding gather from a quantized table, as launches of cuda_quant.cu's kernels.
//
// Decode (up to kQuantGemvMaxRows rows of A, A staged in shared memory): one warp per
// weight row, dequantizing in registers; the weights are read once, in their stored
// size. Prefill: B dequantized into an f16 scratch [N, K], then the matmul fallback GEMM
// (cuda_gemm.cu). cuBLASLt is not used for these formats: its fp8 path wants a plain fp8
// matrix and per-tensor scales, while fp8e4m3_channel rows carry their own scale.
#include "cuda_quant.h"

#include <string>

#include "cuda_ops.h"

namespace hal::cuda {

namespace {

Status launch_status(CudaStream& s, cudaError_t e, const char* what) {
  return s.device()->check(e, what);
}

// Largest A (rows x K floats) the decode kernel stages in shared memory.
constexpr uint64_t kGemvSharedBytes = 96 * 1024;

}  // namespace

bool quant_op_supported(const OpSpec& spec) {
  if (spec.kind == OpKind::kMatmul) {
    const TensorDesc& b = spec.inputs[1];
    for (int d = 0; d + 2 < b.shape.rank; ++d)
      if (b.shape.dims[d] != 1) return false;  // one weight matrix (batches of A are fine)
    const int64_t k = b.shape.back();
    return k <= (int64_t(1) << 24) && (spec.num_inputs < 3 || is_floating(spec.inputs[2].dtype));
  }
  if (spec.kind == OpKind::kEmbedding) return true;
  return false;
}

Status run_quant_matmul(CudaStream& s, const plugin::OpCall& op) {
  const TensorDesc& ad = op.inputs[0].desc;
  const TensorDesc& bd = op.inputs[1].desc;
  const TensorDesc& od = op.output.desc;
  const int ra = ad.shape.rank, rb = bd.shape.rank, ro = od.shape.rank;
  const int64_t m = od.shape[ro - 2], n = od.shape[ro - 1], k = bd.shape[rb - 1];
  if (od.numel() == 0) return ok_status();
  // A's and out's batch dims, looped here (B is one matrix: supports()).
  int64_t batches = 1;
  for (int d = 0; d < ro - 2; ++d) batches *= od.shape[d];
  const uint64_t row_bytes = dtype_row_bytes(bd.dtype, k);
  const int64_t a_sm = op.attrs.transpose_a ? ad.strides[ra - 1] : ad.strides[ra - 2];
  const int64_t a_sk = op.attrs.transpose_a ? ad.strides[ra - 2] : ad.strides[ra - 1];
  // Bias, output view and alpha: the same fields in both kernels' arguments.
  auto epilogue = [&](auto& g, char* o) {
    if (op.num_inputs == 3) {
      g.bias = tensor_ptr(op.inputs[2]);
      g.bias_dtype = int32_t(op.inputs[2].desc.dtype);
      g.bias_stride = op.inputs[2].desc.strides[0];
    }
    g.out = o;
    g.out_dtype = int32_t(od.dtype);
    g.o_sm = od.strides[ro - 2];
    g.o_sn = od.strides[ro - 1];
    g.alpha = op.attrs.alpha;
  };
  void* f16 = nullptr;
  const bool decode = m <= kQuantGemvMaxRows && uint64_t(m * k) * 4 <= kGemvSharedBytes;
  if (!decode) {
    HAL_ASSIGN_OR_RETURN(f16, s.scratch(uint64_t(n * k) * 2));
    QuantDequantArgs d;
    d.err = s.error_ref();
    d.format = int32_t(bd.dtype);
    d.w = tensor_ptr(op.inputs[1]);
    d.w_row_bytes = row_bytes;
    d.n = n;
    d.k = k;
    d.out = f16;
    HAL_RETURN_IF_ERROR(
        launch_status(s, launch_quant_dequant(d, s.handle()), "quantized weight dequantization"));
  }
  for (int64_t bi = 0; bi < batches; ++bi) {
    int64_t rem = bi, a_off = 0, o_off = 0;
    for (int d = ro - 3; d >= 0; --d) {
      const int64_t idx = rem % od.shape[d];
      rem /= od.shape[d];
      o_off += idx * od.strides[d];
      const int da = d - (ro - 2 - (ra - 2));
      if (da >= 0 && ad.shape[da] != 1) a_off += idx * ad.strides[da];
    }
    const char* a =
        static_cast<const char*>(tensor_ptr(op.inputs[0])) + a_off * int64_t(dtype_size(ad.dtype));
    char* o = static_cast<char*>(tensor_ptr(op.output)) + o_off * int64_t(dtype_size(od.dtype));
    if (decode) {
      QuantGemvArgs g;
      g.err = s.error_ref();
      g.format = int32_t(bd.dtype);
      g.w = tensor_ptr(op.inputs[1]);
      g.w_row_bytes = row_bytes;
      g.n = n;
      g.k = k;
      g.rows = m;
      g.a = a;
      g.a_dtype = int32_t(ad.dtype);
      g.a_sm = a_sm;
      g.a_sk = a_sk;
      epilogue(g, o);
      HAL_RETURN_IF_ERROR(
          launch_status(s, launch_quant_gemv(g, s.handle()), "quantized matmul (decode) launch"));
      continue;
    }
    GemmArgs g;
    g.err = s.error_ref();
    g.m = m;
    g.n = n;
    g.k = k;
    g.a = a;
    g.a_dtype = int32_t(ad.dtype);
    g.a_sm = a_sm;
    g.a_sk = a_sk;
    g.b = f16;  // [N, K]: element (k, n) at n * K + k
    g.b_dtype = int32_t(DType::kF16);
    g.b_sk = 1;
    g.b_sn = k;
    epilogue(g, o);
    HAL_RETURN_IF_ERROR(
        launch_status(s, launch_gemm(g, s.handle()), "quantized matmul (prefill) launch"));
  }
  return ok_status();
}

void quant_embedding_args(const plugin::OpCall& op, EmbeddingArgs& a) {
  const TensorDesc& table = op.inputs[0].desc;
  a.table_strides[0] = table.strides[0] / table.shape[1];  // whole rows
  a.table_row_bytes = dtype_row_bytes(table.dtype, table.shape[1]);
}

}  // namespace hal::cuda
