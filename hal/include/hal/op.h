// hal/op.h: the fixed op set every backend speaks, its exact semantics, and the
// shape rules, validation and analytic cost shared by host, runtime and plugins.
//
// Tensors are strided views: element (i0..ir-1) lives at
//   base + offset_bytes + sum(ik * strides[k]) * dtype_size(dtype)
// with strides in elements (0 broadcasts a dimension). Every op has one output and
// the output must not overlap its inputs unless noted. "Float" tensors may be f32,
// f16 or bf16; computation is done in at least f32 unless a device documents its
// reduced precision (the NPU simulator does).
//
// Op semantics (inputs in order; [..] are any leading batch dims):
//  kMatmul    A [.., M, K] (or [.., K, M] with transpose_a), B [.., K, N] (or [.., N, K]
//             with transpose_b), optional bias [N]. Out [.., M, N] =
//             alpha * op(A) @ op(B) + bias. Batch dims of A and B broadcast
//             numpy-style to the output's (a missing or size-1 dim repeats).
//             B may be a quantized weight (below) stored [.., N, K] with transpose_b;
//             A and out are then f32, f16 or bf16, and the product is of A with the
//             dequantized B. A backend may round A to its own reduced precision for
//             this product (the CPU quantizes A rows to int8 blocks of 32 with one f32
//             scale each, as GGUF engines do); its documentation says so.
//  kAdd/kMul  a, b broadcast numpy-style to out: out = a + b / a * b.
//  kScale     x: out = alpha * x + beta.
//  kLayerNorm x [.., N], gamma [N], optional beta [N]: normalise over the last dim,
//             out = (x - mean) / sqrt(var + epsilon) * gamma + beta (biased variance).
//  kRmsNorm   x [.., N], gamma [N]: out = x / sqrt(mean(x^2) + epsilon) * gamma.
//  kSoftmax   x [.., Sq, Sk]: softmax over the last dim of scale * x (scale 0 -> 1).
//             With causal, element (i, j) is masked when j > i + (Sk - Sq); a row that
//             is fully masked yields zeros.
//  kGelu      x: erf form 0.5x(1+erf(x/sqrt2)) or tanh form
//             0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) (gelu_approximation).
//  kSilu      x: x * sigmoid(x).
//  kRotary    x [.., S, H, D], positions i32 [S] or [B, S] (x then [B, S, H, D]),
//             optional inv_freq f32 [rotary_dim/2] overriding theta (for scaled RoPE).
//             Rotates the first rotary_dim (0 -> D, must be even) features of each head
//             by angle pos * inv_freq[i], inv_freq[i] = theta^(-2i/rotary_dim).
//             kRotateHalf pairs feature i with i + rotary_dim/2 (Llama/NeoX);
//             kInterleaved pairs 2i with 2i+1 (GPT-J). Other features pass through.
//  kAttention q [B, Sq, Hq, D], k [B, Skv, Hkv, D], v [B, Skv, Hkv, Dv], optional
//             kv_lengths i32 [B]. Out [B, Sq, Hq, Dv]. Hq must be a multiple of Hkv
//             (grouped-query: head h reads kv head h / (Hq/Hkv)). Keys j < kv_len_b
//             are visible, kv_len_b = kv_lengths[b] or kv_length (0 -> Skv). With
//             causal, query i sits at position q_offset + i (q_offset -1 ->
//             kv_len_b - Sq) and sees keys j <= that position. Scores are scaled by
//             scale (0 -> 1/sqrt(D)). A query that sees no key yields zeros.
//  kEmbedding table [V, D], ids i32/i64 [..]: out [.., D] = table[ids]. An id outside
//             [0, V) fails the command with INVALID_ARGUMENT. A quantized table
//             (below) gathers dequantized rows; out is then f32, f16 or bf16.
//  kTranspose x: out.shape[i] = x.shape[perm[i]]; out[idx] = x[idx mapped through
//             perm]. Same dtype. With the identity perm it is a strided copy.
//  kCast      x: out = x converted to out's dtype (same shape); float->int truncates
//             toward zero and saturates.
//  kArgmax    x [.., N]: out i32 [..] = index of the largest element of the last dim
//             (lowest index on ties; NaN is never the largest unless all are NaN -> 0).
//
// Quantized weight formats (DType kQ8_0 .. kFP8E4M3Channel; ABI 1.2)
// ---------------------------------------------------------------------------------
// A quantized tensor is stored row by row along its last dim (length K, a multiple of
// the format's block); the other dims index whole rows. Views of one step along the
// last dim (stride 1) and whole-row steps elsewhere (strides multiples of K; 0
// broadcasts) are allowed; dtype_row_bytes(t, K) is a row's size. All multi-byte
// fields are little-endian; "f16" is IEEE binary16. Dequantized values are computed in
// f32 exactly as written (no fused multiply-add), which is what hal/reference does.
//
// GGUF block formats (bit-exact with the GGUF specification / ggml's ggml-common.h):
//  kQ8_0  32 elements, 34 bytes: f16 d; int8 q[32].             x[i] = d * q[i]
//  kQ4_0  32 elements, 18 bytes: f16 d; u8 qs[16]. Element j < 16 is the low nibble of
//         qs[j], element j + 16 its high nibble.               x = d * (nibble - 8)
//  kQ4_1  32 elements, 20 bytes: f16 d; f16 m; u8 qs[16] (nibbles as kQ4_0).
//                                                              x = d * nibble + m
//  kQ5_0  32 elements, 22 bytes: f16 d; u8 qh[4]; u8 qs[16]. The 5th bit of element j
//         is bit j of the little-endian u32 qh; low 4 bits as kQ4_0.
//                                                              x = d * (q5 - 16)
//  kQ5_1  32 elements, 24 bytes: f16 d; f16 m; u8 qh[4]; u8 qs[16].  x = d * q5 + m
//  kQ4_K  256 elements, 144 bytes: f16 d; f16 dmin; u8 scales[12]; u8 qs[128].
//         Eight sub-blocks of 32 with 6-bit scale sc[j] and min m[j]: for j < 4,
//         sc[j] = scales[j] & 63, m[j] = scales[j+4] & 63; for j >= 4,
//         sc[j] = (scales[j+4] & 15) | ((scales[j-4] >> 6) << 4),
//         m[j] = (scales[j+4] >> 4) | ((scales[j] >> 6) << 4).
//         Elements 64p + l (p < 4, l < 32) are the low nibbles of qs[32p + l] in
//         sub-block 2p, elements 64p + 32 + l the high nibbles in sub-block 2p + 1.
//                                  x = (d * sc[j]) * q - (dmin * m[j])
//  kQ5_K  256 elements, 176 bytes: f16 d; f16 dmin; u8 scales[12]; u8 qh[32];
//         u8 qs[128]. As kQ4_K with a 5th bit: element 64p + l takes bit 2p of qh[l],
//         element 64p + 32 + l bit 2p + 1 of qh[l] (adding 16).
//  kQ6_K  256 elements, 210 bytes: u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d.
//         Two halves of 128 (h = 0, 1) use ql[64h..], qh[32h..], scales[8h..]: for
//         l < 32, element 128h + l = (ql[l] & 15) | ((qh[l] & 3) << 4),
//         128h + 32 + l = (ql[l+32] & 15) | (((qh[l] >> 2) & 3) << 4),
//         128h + 64 + l = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
//         128h + 96 + l = (ql[l+32] >> 4) | (((qh[l] >> 6) & 3) << 4) (offsets within
//         the half's ql/qh); element e of the half uses scale s = scales[e / 16].
//                                  x = (d * s) * (q6 - 32)
// Formats of other engines, in the same row-wise framing:
//  kI8Channel       per row: f32 scale, then K int8 q.          x = scale * q
//                   (per-output-channel int8, as NPU SDKs and SmoothQuant store it)
//  kFP8E4M3Channel  per row: f32 scale, then K fp8 e4m3fn bytes. x = scale * fp8(b)
//  kI4G32/64/128    groups of G = 32/64/128: f16 scale; u8 zero (0..255); u8 reserved
//                   (0); G/2 bytes, element 2i in the low nibble of byte i, 2i + 1 in
//                   the high nibble.                            x = scale * (q - zero)
//                   (AWQ and GPTQ checkpoints repack into this losslessly: their
//                   qweight/qzeros/scales hold the same q, zero and scale per group.)
//
// Threading: value types and pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "hal/dtype.h"
#include "hal/status.h"

namespace hal {

inline constexpr int kMaxRank = 8;
inline constexpr int kMaxOpInputs = 4;

enum class OpKind : int32_t {
  kInvalid = 0,
  kMatmul = 1,
  kAdd = 2,
  kMul = 3,
  kScale = 4,
  kLayerNorm = 5,
  kRmsNorm = 6,
  kSoftmax = 7,
  kGelu = 8,
  kSilu = 9,
  kRotary = 10,
  kAttention = 11,
  kEmbedding = 12,
  kTranspose = 13,
  kCast = 14,
  kArgmax = 15,
};
inline constexpr int kOpKindCount = 16;

// "matmul", "add", "mul", "scale", "layer_norm", "rms_norm", "softmax", "gelu", "silu",
// "rotary", "attention", "embedding", "transpose", "cast", "argmax".
std::string_view op_kind_name(OpKind kind);
std::optional<OpKind> parse_op_kind(std::string_view name);

enum class GeluApproximation : int32_t { kErf = 0, kTanh = 1 };
enum class RopeStyle : int32_t { kRotateHalf = 0, kInterleaved = 1 };

struct Shape {
  int32_t rank = 0;
  std::array<int64_t, kMaxRank> dims{};

  Shape() = default;
  Shape(std::initializer_list<int64_t> d) {
    for (int64_t v : d)
      if (rank < kMaxRank) dims[rank++] = v;
  }
  int64_t operator[](int i) const { return dims[i]; }
  int64_t& operator[](int i) { return dims[i]; }
  // Negative indices count from the end: back(1) is the last dim.
  int64_t back(int from_end = 1) const { return dims[rank - from_end]; }
  // Multiplied as unsigned (wrapping, defined) and read back: equal to the signed product
  // whenever that fits; a shape read from a file may not, and must not be UB to describe.
  int64_t numel() const {
    uint64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= uint64_t(dims[i]);
    return int64_t(n);
  }
  bool operator==(const Shape& o) const {
    if (rank != o.rank) return false;
    for (int i = 0; i < rank; ++i)
      if (dims[i] != o.dims[i]) return false;
    return true;
  }
  std::string to_string() const;  // "[2, 3, 4]"
};

// Layout of a tensor independent of where it lives: dtype, shape, strides (elements).
struct TensorDesc {
  DType dtype = DType::kInvalid;
  Shape shape;
  std::array<int64_t, kMaxRank> strides{};

  static TensorDesc contiguous(DType dtype, Shape shape);
  bool is_contiguous() const;
  int64_t numel() const { return shape.numel(); }
  // Dense size (quantized: whole rows of the last dim).
  uint64_t bytes() const {
    return dtype_dense_bytes(dtype, numel(), shape.rank > 0 ? shape.back() : 1);
  }
  // Bytes from element [0..0] to one past the furthest addressed element (0 if empty);
  // what the view needs of its buffer. Strides must be non-negative.
  uint64_t extent_bytes() const;
  // Bytes from element [0..0] to the element `element_offset` elements further (for a
  // quantized dtype, the start of the row holding it).
  uint64_t offset_bytes_of(int64_t element_offset) const;
  std::string to_string() const;  // "f32[2, 3] strides [3, 1]"
};

struct OpAttributes {
  bool transpose_a = false;
  bool transpose_b = false;
  float alpha = 1.0f;
  float beta = 0.0f;
  float epsilon = 1e-5f;
  bool causal = false;
  float scale = 0.0f;
  GeluApproximation gelu_approximation = GeluApproximation::kErf;
  float rope_theta = 10000.0f;
  int32_t rotary_dim = 0;
  RopeStyle rope_style = RopeStyle::kRotateHalf;
  int64_t kv_length = 0;
  int64_t q_offset = -1;
  std::array<int32_t, kMaxRank> perm{0, 1, 2, 3, 4, 5, 6, 7};
};

// An op without storage: what validation, support queries and costs look at.
struct OpSpec {
  OpKind kind = OpKind::kInvalid;
  OpAttributes attrs;
  int32_t num_inputs = 0;
  std::array<TensorDesc, kMaxOpInputs> inputs{};
  TensorDesc output;
};

// Number of inputs an op takes: minimum and maximum (optional inputs last).
struct InputArity {
  int32_t min;
  int32_t max;
};
InputArity op_input_arity(OpKind kind);

// The output shape and dtype an op produces from its inputs and attributes
// (for matmul/add/mul the dtype of the first input; argmax i32; cast has no rule and
// returns the input's shape with kInvalid dtype). Fails with INVALID_ARGUMENT naming
// the op and the offending shapes.
Result<TensorDesc> infer_output(OpKind kind, const OpAttributes& attrs, const TensorDesc* inputs,
                                int32_t num_inputs);

// Full validation of a spec: arity, dtypes, ranks, shapes against infer_output,
// strides non-negative, attributes in range, quantized operands only where allowed
// (matmul B with transpose_b, embedding table) in whole-row views.
// quantized_view_error() is that last check for one tensor ("" when it is fine).
std::string quantized_view_error(const TensorDesc& t);
Status validate_op(const OpSpec& spec);

// The analytic cost of an op: FLOPs and the minimum device-memory traffic (each input
// element read once, each output element written once; for embedding only the rows
// gathered; for attention only the visible keys/values).
struct OpCost {
  double flops = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};
OpCost analytic_cost(const OpSpec& spec);

// A text key equal for two specs exactly when they have the same kind, attributes,
// inputs and output (dtype, shape, strides): ops that cost the same on any device.
std::string op_spec_key(const OpSpec& spec);

// Which class of engine an op is limited by: matrix engines (matmul, attention) or the
// vector/elementwise units (everything else). Used by cost models and reports.
enum class OpClass : int32_t { kMatrix = 0, kVector = 1, kData = 2 };
OpClass op_class(OpKind kind);

}  // namespace hal
