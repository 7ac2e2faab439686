// backends/cpu/cpu_ops.h: the CPU backend's per-op kernels (internal), and the strided
// iteration helper the elementwise kernels share.
//
// Contract: each kernel takes a validated OpSpec (hal::validate_op ok), input pointers at
// element [0..0] of each view and the output pointer likewise, and implements the op's
// semantics from hal/op.h on arbitrary non-negative strides (0 = broadcast). Inputs and
// output must not overlap (as op.h requires). Data-dependent failures return
// INVALID_ARGUMENT. Work is parallel over the backend's thread budget (cpu_threading.h).
//
// Threading: kernels may run concurrently on distinct outputs.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "hal/op.h"
#include "hal/status.h"

namespace hal::cpu {

// Whether environment variable `name` is set to exactly `value`: the backend's HAL_CPU_*
// switches that turn a path off to repeat a comparison (each caller reads it once).
inline bool env_equals(const char* name, std::string_view value) {
  const char* v = std::getenv(name);
  return v != nullptr && value == v;
}

Status matmul(const OpSpec& spec, const void* const* in, void* out);
// The prefill panel tile (cpu_panel_kernels.inc), for the quantized products' dequantized
// rows: res[r * ldr + j] = A row r (f32, row stride lda) . B row j, r < m, j < 16 (rows
// j >= nc of B read as zero; B rows bn_bytes apart, k contiguous elements of t = f32, f16
// or bf16); wp is scratch of 16 x k floats. Only where panel_kernels_available() (AVX2+).
bool panel_kernels_available();
void panel_product16(DType t, int64_t m, const float* a, int64_t lda, const char* b,
                     int64_t bn_bytes, int64_t k, int64_t nc, float* wp, float* res, int64_t ldr);
Status binary(const OpSpec& spec, const void* const* in, void* out);  // add, mul
Status unary(const OpSpec& spec, const void* const* in, void* out);   // scale, gelu, silu
Status cast(const OpSpec& spec, const void* const* in, void* out);
Status transpose(const OpSpec& spec, const void* const* in, void* out);
Status norm(const OpSpec& spec, const void* const* in, void* out);  // layer/rms norm
Status softmax(const OpSpec& spec, const void* const* in, void* out);
Status argmax(const OpSpec& spec, const void* const* in, void* out);
Status rotary(const OpSpec& spec, const void* const* in, void* out);
Status attention(const OpSpec& spec, const void* const* in, void* out);
Status embedding(const OpSpec& spec, const void* const* in, void* out);

// A strided iteration space over up to 3 operands (operand 0 is usually the output),
// with dims of size 1 dropped and dims that are contiguous in every operand merged, so
// most ops become one long inner loop.
struct StridedLoop {
  static constexpr int kMaxOperands = 3;
  int rank = 0;
  int num_operands = 0;
  int64_t shape[kMaxRank] = {};
  int64_t strides[kMaxOperands][kMaxRank] = {};

  // `shape` is the iteration shape; each operand's desc is right-aligned against it
  // (numpy broadcasting: missing or size-1 dims get stride 0).
  static StridedLoop make(const Shape& shape, const TensorDesc* const* operands, int count);

  int64_t inner() const { return rank == 0 ? 1 : shape[rank - 1]; }
  int64_t outer() const {
    int64_t n = 1;
    for (int i = 0; i + 1 < rank; ++i) n *= shape[i];
    return n;
  }
  int64_t inner_stride(int op) const { return rank == 0 ? 0 : strides[op][rank - 1]; }
  // Element offsets of each operand at the start of outer row `o`.
  void offsets(int64_t o, int64_t* out) const;
};

// Per-thread scratch memory, reused across calls (grows as needed, 64-byte aligned).
// Leaf slots are for code inside parallel_for bodies, which never wait; outer slots are
// for a kernel's top level, which runs on a stream thread and may, while waiting for its
// parallel_for, run other kernels' leaf bodies. Keeping the two apart is what makes
// thread-local scratch safe under oneTBB's work stealing.
enum class Scratch : int {
  kLeaf0 = 0,
  kLeaf1,
  kLeaf2,
  kLeaf3,
  kRotaryAngles,  // rotary's cos/sin cache (cpu_attention.cc): no other kernel touches it
  kOuter0,
  kOuter1,
  kOuter2,
  kOuter3,
  kOuter4,
  kCount
};
float* scratch_floats(Scratch slot, size_t count);
// Frees this thread's outer blocks larger than `keep_bytes` (called after each op, so a
// stream thread does not keep e.g. a converted weight matrix alive between ops).
void trim_outer_scratch(size_t keep_bytes);

}  // namespace hal::cpu
