// backends/npu_sim/npu_kernels.h: functional execution of the op set on the host with
// the simulated device's numerics (README.md, "Numerics"):
//
// - Matrix engines (matmul; the QK^T and PV products of attention) take 16-bit
//   operands and accumulate in fp32. In ComputePrecision::kBf16 (the default), f32
//   operands are rounded to bf16 on entry, as the RBLN compiler's bf16 downcast does
//   [R32]; f16, bf16 and fp8 operands enter as they are. Attention's probabilities are
//   rounded to bf16 before the PV product; its row sums stay fp32.
// - The vector unit (norms, softmax, activations, elementwise, rotary) computes in fp32
//   with fp32 accumulation. Rotary cos/sin tables are computed in double on the host
//   and stored as fp32 (as compilers precompute them).
// - Every result is rounded once to the output dtype.
// - ComputePrecision::kFp32 skips the bf16 rounding: results then equal
//   hal::reference within fp32 accumulation-order differences.
//
// Contract: `spec` is validated (hal::validate_op) and supported (supports_op);
// pointers address element [0..0] of each view in host memory. Data-dependent failures
// (an embedding id or kv_length out of range) return INVALID_ARGUMENT.
//
// Threading: pure; may run concurrently on distinct outputs (uses the shared pool).
#pragma once

#include "hal/op.h"
#include "hal/status.h"
#include "npu_spec.h"

namespace hal::npu_sim {

// Whether a device built from `device` accepts `spec` (dtype rules: f32/f16/bf16 for
// every float op; fp8 where the device lists an fp8 peak, as matmul operands,
// attention K/V, embedding tables, transposes and casts; integers as op.h allows).
bool supports_op(const OpSpec& spec, const DeviceSpec& device);

Status execute_op(const OpSpec& spec, const void* const* inputs, void* output,
                  ComputePrecision precision);

// The two hot kernels (npu_matmul.cc, npu_attention.cc), exposed for tests.
Status execute_matmul(const OpSpec& spec, const void* const* inputs, void* output,
                      ComputePrecision precision);
Status execute_attention(const OpSpec& spec, const void* const* inputs, void* output,
                         ComputePrecision precision);

}  // namespace hal::npu_sim
