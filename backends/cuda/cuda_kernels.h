// backends/cuda/cuda_kernels.h: the CUDA backend's own kernels, as plain argument structs
// and launch functions (the boundary between the nvcc-compiled kernels and the plugin).
//
// Contract
// - Tensors are strided views in elements, exactly as hal/op.h defines them; every
//   pointer points at element [0, .., 0] of its view (the buffer offset applied). Dtype
//   codes are hal::DType's values (1 f32, 2 f16, 3 bf16, 4 i32, 5 i64, 6 i8, 7 u8).
// - The plugin (cuda_ops.cc) validates every op with hal::validate_op and fills these
//   structs; kernels trust them. Launch functions only launch (asynchronously, on
//   `stream`) and return the launch status; they never synchronize.
// - Arithmetic is f32 (casts: f64, to round exactly as hal::reference does); f16 and bf16
//   are stored rounding to nearest even.
// - Failure reporting: ops whose failure depends on data (embedding ids, attention
//   kv_lengths) record the first failure in the stream's ErrorSlot (device memory) and
//   its host mirror (pinned, mapped). Every kernel checks the slot on entry and returns
//   at once when it is set, counting itself in `skipped`: a failed command makes the
//   later kernels of its stream no-ops until the host clears the slot at synchronize.
//
// Threading: launch functions may be called from any thread; each call enqueues on the
// stream it is given.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace hal::cuda {

inline constexpr int kKernelMaxRank = 8;

// Dtype codes (hal::DType values).
enum KDType : int32_t {
  kKF32 = 1,
  kKF16 = 2,
  kKBF16 = 3,
  kKI32 = 4,
  kKI64 = 5,
  kKI8 = 6,
  kKU8 = 7,
};

// The first data-dependent failure of a stream's work. code 0 = none, else a
// hal_status_code (INVALID_ARGUMENT). The host reads the mirror after the stream's work
// completed and clears both.
struct ErrorSlot {
  int32_t code;
  int32_t op;       // hal_op_kind of the failing op
  int64_t value;    // the offending value (an id, a kv length)
  int64_t index;    // where it was (flat index of the id, batch of the kv length)
  int64_t limit;    // the bound it broke (vocabulary size, key length)
  int32_t skipped;  // kernels that returned early because of it (device copy only)
  int32_t reserved;
};

struct ErrorRef {
  ErrorSlot* device = nullptr;       // device memory; null: the stream tracks no errors
  ErrorSlot* host_mirror = nullptr;  // device pointer of the pinned, mapped host mirror
};

// ---- elementwise: add, mul, scale, gelu, silu, cast, strided copy (transpose) ----------
enum class EwOp : int32_t { kAdd, kMul, kScale, kGeluErf, kGeluTanh, kSilu, kCast, kCopy };

// An iteration space over the output's shape (dims of size 1 dropped, dims contiguous in
// every operand merged). Operand 0 is the output, 1..num_inputs the inputs, each with its
// strides over that space (0 = broadcast).
struct EwArgs {
  EwOp op = EwOp::kCopy;
  int32_t num_inputs = 0;
  float alpha = 1.0f;
  float beta = 0.0f;
  int32_t rank = 0;
  int64_t numel = 0;
  int64_t shape[kKernelMaxRank] = {};
  void* ptr[3] = {};
  int32_t dtype[3] = {};
  int64_t strides[3][kKernelMaxRank] = {};
  ErrorRef err;
};
cudaError_t launch_elementwise(const EwArgs& args, cudaStream_t stream);

// ---- rows: layer_norm, rms_norm, softmax, argmax over the last dim ------------------
enum class RowOp : int32_t { kLayerNorm, kRmsNorm, kSoftmax, kArgmax };

struct RowArgs {
  RowOp op = RowOp::kSoftmax;
  int64_t rows = 0;  // product of the leading dims
  int64_t n = 0;     // the row length (last dim)
  int32_t lead_rank = 0;
  int64_t lead_shape[kKernelMaxRank] = {};
  int64_t x_lead_strides[kKernelMaxRank] = {};
  int64_t out_lead_strides[kKernelMaxRank] = {};
  const void* x = nullptr;
  int32_t x_dtype = 0;
  int64_t x_stride = 1;  // along the row
  void* out = nullptr;
  int32_t out_dtype = 0;
  int64_t out_stride = 1;  // along the row (argmax: unused, the output has no row dim)
  const void* gamma = nullptr;
  int32_t gamma_dtype = 0;
  int64_t gamma_stride = 1;
  const void* beta = nullptr;  // layer_norm only; null when absent
  int32_t beta_dtype = 0;
  int64_t beta_stride = 1;
  float epsilon = 1e-5f;
  float scale = 1.0f;  // softmax input scale
  int32_t causal = 0;
  int64_t sq = 1;  // softmax: size of dim -2 (the query dim of the causal mask)
  ErrorRef err;
};
cudaError_t launch_rows(const RowArgs& args, int num_sms, cudaStream_t stream);

// ---- rotary embedding -----------------------------------------------------------
struct RotaryArgs {
  const void* x = nullptr;
  int32_t x_dtype = 0;
  void* out = nullptr;
  int32_t rank = 0;  // of x: [.., S, H, D]
  int64_t shape[kKernelMaxRank] = {};
  int64_t x_strides[kKernelMaxRank] = {};
  int64_t out_strides[kKernelMaxRank] = {};
  const void* positions = nullptr;
  int32_t positions_dtype = 0;  // i32 or i64
  int32_t positions_rank = 1;   // 1: [S]; 2: [B, S]
  int64_t positions_strides[2] = {};
  const float* inv_freq = nullptr;  // null: theta^(-2i/rotary_dim)
  int64_t inv_freq_stride = 1;
  float theta = 10000.0f;
  int32_t rotary_dim = 0;
  int32_t interleaved = 0;
  ErrorRef err;
};
cudaError_t launch_rotary(const RotaryArgs& args, cudaStream_t stream);

// ---- embedding gather ---------------------------------------------------------------
struct EmbeddingArgs {
  const void* table = nullptr;
  int32_t table_dtype = 0;
  int64_t vocab = 0;
  int64_t dim = 0;
  int64_t table_strides[2] = {};
  const void* ids = nullptr;
  int32_t ids_dtype = 0;  // i32 or i64
  int32_t ids_rank = 0;
  int64_t ids_shape[kKernelMaxRank] = {};
  int64_t ids_strides[kKernelMaxRank] = {};
  int64_t num_ids = 0;
  void* out = nullptr;
  int32_t out_dtype = 0;
  int64_t out_strides[kKernelMaxRank] = {};  // rank ids_rank + 1
  int32_t op_kind = 12;                      // reported in the error slot
  ErrorRef err;
  // A quantized table (table_dtype a hal/op.h quantized format): the bytes of one row;
  // table_strides[0] then counts whole rows. 0 for float tables.
  uint64_t table_row_bytes = 0;
};
cudaError_t launch_embedding(const EmbeddingArgs& args, cudaStream_t stream);

// ---- fused attention (flash-attention style; never materialises the scores) -------------
struct AttentionArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  int32_t q_dtype = 0, k_dtype = 0, v_dtype = 0, out_dtype = 0;
  int64_t q_strides[4] = {}, k_strides[4] = {}, v_strides[4] = {}, out_strides[4] = {};
  int64_t batch = 0, sq = 0, hq = 0, d = 0, skv = 0, hkv = 0, dv = 0;
  const int32_t* kv_lengths = nullptr;  // [B] or null
  int64_t kv_lengths_stride = 1;
  int64_t kv_length = 0;  // 0: skv
  int64_t q_offset = -1;  // -1: kv_len - sq
  int32_t causal = 0;
  float scale = 0.0f;  // 0: 1/sqrt(d)
  int32_t op_kind = 11;
  ErrorRef err;
};
// Head dims the kernel handles (supports() refuses larger ones).
inline constexpr int64_t kAttentionMaxHeadDim = 256;
// How many key splits a launch uses, and the f32 workspace it then needs (0 for one
// split). The caller allocates `workspace_bytes` and passes it to launch_attention.
struct AttentionPlan {
  int32_t splits = 1;
  uint64_t workspace_bytes = 0;
};
AttentionPlan plan_attention(const AttentionArgs& args, int num_sms);
cudaError_t launch_attention(const AttentionArgs& args, const AttentionPlan& plan, void* workspace,
                             cudaStream_t stream);

// ---- matmul fallback (layouts or dtype mixes cuBLASLt cannot take) ----------------------
// out[b, m, n] = alpha * sum_k A[b, m, k] * B[b, k, n] + bias[n], with A(m, k) at
// a + m * a_sm + k * a_sk (+ batch offsets), likewise B and out.
struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  int32_t batch_rank = 0;
  int64_t batch_shape[kKernelMaxRank] = {};
  const void* a = nullptr;
  int32_t a_dtype = 0;
  int64_t a_batch_strides[kKernelMaxRank] = {};
  int64_t a_sm = 0, a_sk = 0;
  const void* b = nullptr;
  int32_t b_dtype = 0;
  int64_t b_batch_strides[kKernelMaxRank] = {};
  int64_t b_sk = 0, b_sn = 0;
  const void* bias = nullptr;
  int32_t bias_dtype = 0;
  int64_t bias_stride = 1;
  void* out = nullptr;
  int32_t out_dtype = 0;
  int64_t out_batch_strides[kKernelMaxRank] = {};
  int64_t o_sm = 0, o_sn = 0;
  float alpha = 1.0f;
  ErrorRef err;
};
cudaError_t launch_gemm(const GemmArgs& args, cudaStream_t stream);

// ---- quantized weights (hal/op.h formats; decoding in kernels/quant_blocks.h) ----------
// Decode products: out[m, n] = alpha * sum_k A[m, k] * W[n, k] + bias[n] for m < rows
// (at most kQuantGemvMaxRows), W quantized [N, K] (row n at w + n * w_row_bytes), A and
// out strided float views. One warp per weight row, dequantizing in registers.
inline constexpr int kQuantGemvMaxRows = 8;
struct QuantGemvArgs {
  int32_t format = 0;
  const void* w = nullptr;
  uint64_t w_row_bytes = 0;
  int64_t n = 0, k = 0, rows = 0;
  const void* a = nullptr;
  int32_t a_dtype = 0;
  int64_t a_sm = 0, a_sk = 1;
  const void* bias = nullptr;
  int32_t bias_dtype = 0;
  int64_t bias_stride = 1;
  void* out = nullptr;
  int32_t out_dtype = 0;
  int64_t o_sm = 0, o_sn = 1;
  float alpha = 1.0f;
  ErrorRef err;
};
cudaError_t launch_quant_gemv(const QuantGemvArgs& args, cudaStream_t stream);

// Rows [0, n) of a quantized [N, K] matrix into a dense f16 [N, K] (prefill: the fallback
// GEMM then reads it). Values rounded once to f16.
struct QuantDequantArgs {
  int32_t format = 0;
  const void* w = nullptr;
  uint64_t w_row_bytes = 0;
  int64_t n = 0, k = 0;
  void* out = nullptr;  // f16
  ErrorRef err;
};
cudaError_t launch_quant_dequant(const QuantDequantArgs& args, cudaStream_t stream);

// ---- byte movers that honour the error slot (used while a stream may have failed) ---------
cudaError_t launch_fill(void* dst, uint64_t bytes, const uint8_t pattern[8], uint32_t pattern_size,
                        ErrorRef err, cudaStream_t stream);
cudaError_t launch_copy_bytes(void* dst, const void* src, uint64_t bytes, ErrorRef err,
                              cudaStream_t stream);

}  // namespace hal::cuda
