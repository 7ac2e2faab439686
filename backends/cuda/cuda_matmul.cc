// Matmul on the GPU: cuBLASLt for every layout it can express, the fallback GEMM kernel
// (kernels/cuda_gemm.cu) for the rest.
//
// cuBLASLt is column-major; HAL tensors are strided row-major views. A matrix view of
// logical shape (r, c) with strides (sr, sc) is a column-major matrix when sr == 1
// (ld = sc) and the transpose of one when sc == 1 (ld = sr); any other view (both strides
// > 1, a broadcast stride 0 inside a matrix, overlapping rows) goes to the fallback kernel.
// The output must be such a view too:
//  - out row-major (stride of N is 1): cuBLASLt computes out^T (N x M, ld = stride of M)
//    = op(B)^T op(A)^T. The bias [N] runs along out^T's rows, so it is the BIAS epilogue
//    (when contiguous and of the output's dtype).
//  - out column-major (stride of M is 1): out (M x N) = op(A) op(B); a bias is added by a
//    second kernel.
// Batch dims (numpy broadcast) become cuBLASLt's strided batch (stride 0 broadcasts) where
// every operand's batch strides collapse into one stride; otherwise the innermost
// collapsible group is one call and the outer batch indices are a host loop (up to
// kMaxBatchCalls calls, beyond that the fallback kernel). A weight shared by the whole
// batch (x [B, S, D] @ W [D, N]) folds the batch into M: one large GEMM instead of B small.
//
// Types: f32 x f32 (FP32, or TF32 tensor cores with compute_precision=tf32), f16 x f16 and
// bf16 x bf16 with f32 accumulation and an output of the inputs' type or f32. Mixed input
// types go to the fallback kernel.
//
// Plans (descriptors, layouts and the heuristic's algorithm) are cached per stream by the
// full geometry, dtypes and pointer alignment, so repeated shapes (every decode step) skip
// the heuristic query.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "cuda_ops.h"
#include "cuda_quant.h"

namespace hal::cuda {

struct MatmulPlan {
  const BlasLt* lt = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool usable = false;  // false: the heuristic found no algorithm (use the fallback)
  ~MatmulPlan() {
    if (!lt) return;
    if (desc) lt->desc_destroy(desc);
    if (a) lt->layout_destroy(a);
    if (b) lt->layout_destroy(b);
    if (d) lt->layout_destroy(d);
  }
};

// Defined here, where MatmulPlan is complete (cuda_internal.h only declares it).
MatmulPlanCache::~MatmulPlanCache() { clear(); }
void MatmulPlanCache::clear() {
  for (auto& [key, plan] : plans) delete plan;
  plans.clear();
}

namespace {

constexpr int64_t kMaxBatchCalls = 256;

// A logical matrix (rows x cols) with element strides.
struct MatView {
  int64_t rows = 0, cols = 0, sr = 0, sc = 0;
};

// How cuBLASLt sees a MatView: a stored column-major matrix and whether op() transposes it.
struct LtMatrix {
  bool ok = false;
  bool trans = false;
  uint64_t rows = 0, cols = 0;  // stored
  int64_t ld = 0;
};

LtMatrix as_lt(const MatView& v) {
  LtMatrix m;
  // Column-major: consecutive rows are adjacent (sr == 1); ld = sc must clear a column.
  if ((v.sr == 1 || v.rows == 1) && (v.cols == 1 || v.sc >= std::max<int64_t>(v.rows, 1))) {
    m.ok = true;
    m.rows = uint64_t(v.rows);
    m.cols = uint64_t(v.cols);
    m.ld = v.cols == 1 ? std::max<int64_t>(v.rows, 1) : v.sc;
    return m;
  }
  // Row-major: the transpose of a column-major (cols x rows) matrix.
  if ((v.sc == 1 || v.cols == 1) && (v.rows == 1 || v.sr >= std::max<int64_t>(v.cols, 1))) {
    m.ok = true;
    m.trans = true;
    m.rows = uint64_t(v.cols);
    m.cols = uint64_t(v.rows);
    m.ld = v.rows == 1 ? std::max<int64_t>(v.cols, 1) : v.sr;
  }
  return m;
}

MatView transposed(const MatView& v) { return {v.cols, v.rows, v.sc, v.sr}; }

// Batch geometry of the three operands over the output's batch dims.
struct Batch {
  int32_t rank = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[3][kMaxRank] = {};  // 0: A, 1: B, 2: out
  int64_t count() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= shape[i];
    return n;
  }
};

// Splits the batch into an inner group that is one strided batch (count, stride per
// operand) and outer dims [0, outer_rank) iterated on the host.
struct BatchSplit {
  int32_t outer_rank = 0;
  int64_t inner_count = 1;
  int64_t inner_stride[3] = {0, 0, 0};
};

BatchSplit split_batch(const Batch& bt) {
  BatchSplit s;
  int d = bt.rank - 1;
  // Dims of size 1 never move a pointer; skip them.
  for (; d >= 0; --d) {
    if (bt.shape[d] == 1) continue;
    if (s.inner_count == 1) {
      s.inner_count = bt.shape[d];
      for (int p = 0; p < 3; ++p) s.inner_stride[p] = bt.strides[p][d];
      continue;
    }
    bool ok = true;
    for (int p = 0; p < 3; ++p)
      if (bt.strides[p][d] != s.inner_stride[p] * s.inner_count) ok = false;
    if (!ok) break;
    s.inner_count *= bt.shape[d];
  }
  s.outer_rank = d + 1;
  return s;
}

int64_t outer_calls(const Batch& bt, const BatchSplit& s) {
  int64_t n = 1;
  for (int i = 0; i < s.outer_rank; ++i) n *= bt.shape[i];
  return n;
}

uint32_t alignment_of(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && (v % a) != 0) a /= 2;
  return a;
}

bool lt_type(DType t, cudaDataType_t* out) {
  switch (t) {
    case DType::kF32:
      *out = CUDA_R_32F;
      return true;
    case DType::kF16:
      *out = CUDA_R_16F;
      return true;
    case DType::kBF16:
      *out = CUDA_R_16BF;
      return true;
    default:
      return false;
  }
}

// Everything a plan depends on.
struct LtProblem {
  cudaDataType_t in_type{}, out_type{};
  bool tf32 = false;
  LtMatrix x, y;  // cuBLASLt's A and B
  uint64_t m = 0, n = 0, k = 0;
  int64_t ldd = 0;
  int64_t batch = 1;
  int64_t x_batch_stride = 0, y_batch_stride = 0, d_batch_stride = 0;
  bool bias_epilogue = false;
  cudaDataType_t bias_type{};
  uint32_t align[4] = {};  // x, y, d, bias

  std::string key() const {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%d/%d/"
                  "%d|%d:%llu:%llu:%lld|%d:%llu:%llu:%lld|%llu,%llu,%llu,%lld|%lld:%lld,%lld,%lld|%"
                  "d:%d|%u,%u,%u,%u",
                  int(in_type), int(out_type), int(tf32), int(x.trans), (unsigned long long)x.rows,
                  (unsigned long long)x.cols, (long long)x.ld, int(y.trans),
                  (unsigned long long)y.rows, (unsigned long long)y.cols, (long long)y.ld,
                  (unsigned long long)m, (unsigned long long)n, (unsigned long long)k,
                  (long long)ldd, (long long)batch, (long long)x_batch_stride,
                  (long long)y_batch_stride, (long long)d_batch_stride, int(bias_epilogue),
                  int(bias_type), align[0], align[1], align[2], align[3]);
    return buf;
  }
};

Status blas_error(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_ALLOC_FAILED)
    return out_of_memory(std::string(what) + ": " + blas_status_name(st));
  return internal_error(std::string(what) + ": " + blas_status_name(st));
}

Result<MatmulPlan*> get_plan(CudaStream& s, const BlasLt* lt, cublasLtHandle_t handle,
                             const LtProblem& p) {
  const std::string key = p.key();
  auto it = s.plans().plans.find(key);
  if (it != s.plans().plans.end()) return it->second;
  auto plan = std::make_unique<MatmulPlan>();
  plan->lt = lt;
  const cublasComputeType_t compute = p.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  cublasStatus_t st = lt->desc_create(&plan->desc, compute, CUDA_R_32F);
  if (st != CUBLAS_STATUS_SUCCESS) return blas_error(st, "cublasLtMatmulDescCreate");
  const cublasOperation_t ta = p.x.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = p.y.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  lt->desc_set(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
  lt->desc_set(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
  if (p.bias_epilogue) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    // The bias type is left at its default, the output's type (the epilogue is only used
    // when they match): setting it explicitly is documented for the IMMA/fp8 exceptions.
    lt->desc_set(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi);
  }
  auto layout = [&](cublasLtMatrixLayout_t* l, cudaDataType_t t, uint64_t rows, uint64_t cols,
                    int64_t ld, int64_t batch_stride) -> Status {
    const cublasStatus_t r = lt->layout_create(l, t, rows, cols, ld);
    if (r != CUBLAS_STATUS_SUCCESS) return blas_error(r, "cublasLtMatrixLayoutCreate");
    if (p.batch > 1) {
      const int32_t count = int32_t(p.batch);
      lt->layout_set(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count);
      lt->layout_set(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &batch_stride,
                     sizeof batch_stride);
    }
    return ok_status();
  };
  HAL_RETURN_IF_ERROR(layout(&plan->a, p.in_type, p.x.rows, p.x.cols, p.x.ld, p.x_batch_stride));
  HAL_RETURN_IF_ERROR(layout(&plan->b, p.in_type, p.y.rows, p.y.cols, p.y.ld, p.y_batch_stride));
  HAL_RETURN_IF_ERROR(layout(&plan->d, p.out_type, p.m, p.n, p.ldd, p.d_batch_stride));

  cublasLtMatmulPreference_t pref = nullptr;
  st = lt->pref_create(&pref);
  if (st != CUBLAS_STATUS_SUCCESS) return blas_error(st, "cublasLtMatmulPreferenceCreate");
  const uint64_t ws = s.blaslt_workspace_bytes();
  lt->pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
  // The heuristic otherwise assumes 256-byte aligned pointers and may pick a kernel that
  // then refuses (or misreads) a tensor at an odd offset inside its buffer.
  lt->pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &p.align[0], sizeof(uint32_t));
  lt->pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &p.align[1], sizeof(uint32_t));
  lt->pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &p.align[2], sizeof(uint32_t));
  lt->pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &p.align[2], sizeof(uint32_t));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  st = lt->heuristic(handle, plan->desc, plan->a, plan->b, plan->d, plan->d, pref, 1, &result,
                     &found);
  lt->pref_destroy(pref);
  plan->usable = st == CUBLAS_STATUS_SUCCESS && found > 0 && result.state == CUBLAS_STATUS_SUCCESS;
  if (plan->usable) plan->algo = result.algo;
  MatmulPlan* raw = plan.get();
  s.plans().plans.emplace(key, raw);
  plan.release();
  return raw;
}

// The matmul's geometry in element strides.
struct Geometry {
  int64_t m = 0, n = 0, k = 0;
  MatView a, b, out;  // a (M, K), b (K, N), out (M, N)
  Batch batch;
};

Geometry geometry_of(const plugin::OpCall& op) {
  Geometry g;
  const TensorDesc& A = op.inputs[0].desc;
  const TensorDesc& B = op.inputs[1].desc;
  const TensorDesc& O = op.output.desc;
  const int ar = A.shape.rank, br = B.shape.rank, orank = O.shape.rank;
  g.m = O.shape.dims[orank - 2];
  g.n = O.shape.dims[orank - 1];
  g.k = op.attrs.transpose_a ? A.shape.dims[ar - 2] : A.shape.dims[ar - 1];
  // A (M, K): rows of A are dim -2 unless transposed.
  g.a = op.attrs.transpose_a ? MatView{g.m, g.k, A.strides[ar - 1], A.strides[ar - 2]}
                             : MatView{g.m, g.k, A.strides[ar - 2], A.strides[ar - 1]};
  g.b = op.attrs.transpose_b ? MatView{g.k, g.n, B.strides[br - 1], B.strides[br - 2]}
                             : MatView{g.k, g.n, B.strides[br - 2], B.strides[br - 1]};
  g.out = MatView{g.m, g.n, O.strides[orank - 2], O.strides[orank - 1]};
  Batch& bt = g.batch;
  bt.rank = orank - 2;
  for (int d = 0; d < bt.rank; ++d) {
    bt.shape[d] = O.shape.dims[d];
    const int da = ar - 2 - bt.rank + d, db = br - 2 - bt.rank + d;
    bt.strides[0][d] = (da >= 0 && A.shape.dims[da] != 1) ? A.strides[da] : 0;
    bt.strides[1][d] = (db >= 0 && B.shape.dims[db] != 1) ? B.strides[db] : 0;
    bt.strides[2][d] = O.strides[d];
  }
  return g;
}

Status run_fallback(CudaStream& s, const plugin::OpCall& op, const Geometry& g) {
  GemmArgs a;
  a.err = s.error_ref();
  a.m = g.m;
  a.n = g.n;
  a.k = g.k;
  a.batch_rank = g.batch.rank;
  for (int d = 0; d < g.batch.rank; ++d) {
    a.batch_shape[d] = g.batch.shape[d];
    a.a_batch_strides[d] = g.batch.strides[0][d];
    a.b_batch_strides[d] = g.batch.strides[1][d];
    a.out_batch_strides[d] = g.batch.strides[2][d];
  }
  a.a = tensor_ptr(op.inputs[0]);
  a.a_dtype = int32_t(op.inputs[0].desc.dtype);
  a.a_sm = g.a.sr;
  a.a_sk = g.a.sc;
  a.b = tensor_ptr(op.inputs[1]);
  a.b_dtype = int32_t(op.inputs[1].desc.dtype);
  a.b_sk = g.b.sr;
  a.b_sn = g.b.sc;
  if (op.num_inputs == 3) {
    a.bias = tensor_ptr(op.inputs[2]);
    a.bias_dtype = int32_t(op.inputs[2].desc.dtype);
    a.bias_stride = op.inputs[2].desc.strides[0];
  }
  a.out = tensor_ptr(op.output);
  a.out_dtype = int32_t(op.output.desc.dtype);
  a.o_sm = g.out.sr;
  a.o_sn = g.out.sc;
  a.alpha = op.attrs.alpha;
  return s.device()->check(launch_gemm(a, s.handle()), "matmul fallback kernel launch");
}

}  // namespace

Status run_matmul(CudaStream& s, const plugin::OpCall& op) {
  if (is_quantized(op.inputs[1].desc.dtype)) return run_quant_matmul(s, op);
  const Geometry g = geometry_of(op);
  if (g.m == 0 || g.n == 0 || g.batch.count() == 0) return ok_status();

  const DType ta = op.inputs[0].desc.dtype, tb = op.inputs[1].desc.dtype;
  const DType to = op.output.desc.dtype;
  LtProblem p;
  bool lt_ok = g.k > 0 && ta == tb && lt_type(ta, &p.in_type) && lt_type(to, &p.out_type) &&
               (to == ta || to == DType::kF32);
  p.tf32 = ta == DType::kF32 && s.device()->options().tf32;

  // Which form: out^T = op(B)^T op(A)^T (row-major out) or out = op(A) op(B).
  bool row_major_out = false;
  if (lt_ok) {
    const MatView& o = g.out;
    if ((o.sc == 1 || o.cols == 1) && (o.rows == 1 || o.sr >= std::max<int64_t>(o.cols, 1))) {
      row_major_out = true;
      p.m = uint64_t(g.n);
      p.n = uint64_t(g.m);
      p.ldd = g.m == 1 ? std::max<int64_t>(g.n, 1) : o.sr;
      p.x = as_lt(transposed(g.b));
      p.y = as_lt(transposed(g.a));
    } else if ((o.sr == 1 || o.rows == 1) &&
               (o.cols == 1 || o.sc >= std::max<int64_t>(o.rows, 1))) {
      p.m = uint64_t(g.m);
      p.n = uint64_t(g.n);
      p.ldd = g.n == 1 ? std::max<int64_t>(g.m, 1) : o.sc;
      p.x = as_lt(g.a);
      p.y = as_lt(g.b);
    } else {
      lt_ok = false;
    }
    p.k = uint64_t(g.k);
    lt_ok = lt_ok && p.x.ok && p.y.ok;
  }
  const int xi = row_major_out ? 1 : 0, yi = row_major_out ? 0 : 1;  // operand of x / y

  // Batch: one strided group (or the batch folded into n), outer dims looped on the host.
  BatchSplit split = split_batch(g.batch);
  if (lt_ok) {
    // Fold the batch into cuBLASLt's n (the columns of y and d) when x is shared by the
    // whole batch and y's and d's batch strides continue their column strides.
    const bool fold = split.outer_rank == 0 && split.inner_count > 1 &&
                      split.inner_stride[xi] == 0 && !p.y.trans &&
                      split.inner_stride[yi] == int64_t(p.n) * p.y.ld &&
                      split.inner_stride[2] == int64_t(p.n) * p.ldd;
    if (fold) {
      p.n *= uint64_t(split.inner_count);
      p.y.cols = p.n;
      split.inner_count = 1;
    } else if (outer_calls(g.batch, split) > kMaxBatchCalls || split.inner_count > INT32_MAX) {
      lt_ok = false;
    }
    p.batch = split.inner_count;
    p.x_batch_stride = split.inner_stride[xi];
    p.y_batch_stride = split.inner_stride[yi];
    p.d_batch_stride = split.inner_stride[2];
  }
  const bool has_bias = op.num_inputs == 3;
  if (lt_ok && has_bias && row_major_out) {
    const TensorDesc& bias = op.inputs[2].desc;
    p.bias_epilogue = bias.dtype == to && (bias.strides[0] == 1 || g.n == 1);
    if (p.bias_epilogue) lt_type(bias.dtype, &p.bias_type);
  }
  if (!lt_ok) return run_fallback(s, op, g);

  Result<const BlasLt*> lt = load_blaslt();
  if (!lt.ok()) return run_fallback(s, op, g);  // no cuBLASLt library: still correct, slower
  HAL_ASSIGN_OR_RETURN(cublasLtHandle_t handle, s.blaslt_handle());

  const void* x_ptr = tensor_ptr(op.inputs[xi]);
  const void* y_ptr = tensor_ptr(op.inputs[yi]);
  void* d_ptr = tensor_ptr(op.output);
  const void* bias_ptr = has_bias ? tensor_ptr(op.inputs[2]) : nullptr;
  p.align[0] = alignment_of(x_ptr);
  p.align[1] = alignment_of(y_ptr);
  p.align[2] = alignment_of(d_ptr);
  p.align[3] = p.bias_epilogue ? alignment_of(bias_ptr) : 0;
  HAL_ASSIGN_OR_RETURN(MatmulPlan * plan, get_plan(s, *lt, handle, p));
  if (!plan->usable) return run_fallback(s, op, g);
  if (p.bias_epilogue)
    (*lt)->desc_set(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr, sizeof bias_ptr);

  const float alpha = op.attrs.alpha, beta = 0.0f;
  const int64_t calls = outer_calls(g.batch, split);
  const int64_t esz_in = int64_t(dtype_size(ta)), esz_out = int64_t(dtype_size(to));
  for (int64_t c = 0; c < calls; ++c) {
    int64_t off[3] = {0, 0, 0}, rest = c;
    for (int d = split.outer_rank - 1; d >= 0; --d) {
      const int64_t i = rest % g.batch.shape[d];
      rest /= g.batch.shape[d];
      for (int q = 0; q < 3; ++q) off[q] += i * g.batch.strides[q][d];
    }
    const char* x = static_cast<const char*>(x_ptr) + off[xi] * esz_in;
    const char* y = static_cast<const char*>(y_ptr) + off[yi] * esz_in;
    char* d = static_cast<char*>(d_ptr) + off[2] * esz_out;
    const cublasStatus_t st = (*lt)->matmul(
        handle, plan->desc, &alpha, x, plan->a, y, plan->b, &beta, d, plan->d, d, plan->d,
        &plan->algo, s.blaslt_workspace(), s.blaslt_workspace_bytes(), s.handle());
    if (st != CUBLAS_STATUS_SUCCESS) {
      // A launch failure may be a device fault; let the device classify what CUDA saw.
      HAL_RETURN_IF_ERROR(s.device()->check(cudaGetLastError(), "cublasLtMatmul"));
      return blas_error(st, "cublasLtMatmul");
    }
  }
  if (has_bias && !p.bias_epilogue) return run_bias_add(s, op.output, op.inputs[2]);
  return ok_status();
}

}  // namespace hal::cuda
