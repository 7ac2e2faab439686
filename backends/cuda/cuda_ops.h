// backends/cuda/cuda_ops.h: the op set on the GPU: which descriptors the CUDA backend takes
// and how each becomes kernel launches (cuda_ops.cc) or a cuBLASLt matmul
// (cuda_matmul.cc).
//
// Contract: run_op/run_matmul receive a validated OpCall (hal::validate_op ok, buffers in
// bounds, on the stream's device, none virtual) that supports() accepted; they enqueue on
// the stream and return launch failures. Called with the stream's mutex held.
//
// Support: every op of hal/op.h on f32, f16 and bf16 tensors of any strides (fp8 only for
// transpose, which moves bytes); casts between f32/f16/bf16/i32/i64/i8/u8; attention with
// head dims up to 256 and batch up to 65535.
#pragma once

#include "cuda_internal.h"
#include "hal/op.h"
#include "hal/plugin_adapter.h"

namespace hal::cuda {

bool op_supported(const OpSpec& spec);
Status run_op(CudaStream& stream, const plugin::OpCall& op);
Status run_matmul(CudaStream& stream, const plugin::OpCall& op);
// out += bias (broadcast along out's last dim), in place: the bias of a matmul whose
// output layout cuBLASLt's bias epilogue cannot take.
Status run_bias_add(CudaStream& stream, const plugin::TensorArg& out,
                    const plugin::TensorArg& bias);

// Pointer to element [0..0] of a bound tensor.
inline void* tensor_ptr(const plugin::TensorArg& t) {
  return static_cast<CudaBuffer*>(t.buffer)->at(t.offset_bytes);
}

}  // namespace hal::cuda
