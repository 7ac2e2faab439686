// backends/cpu/cpu_kernels.h: the CPU backend's kernels for the whole op set.
//
// Contract: run_op() executes a validated op on host memory (pointers at element
// [0..0] of each tensor) and returns INVALID_ARGUMENT for data-dependent failures.
// Kernels are parallel with oneTBB; matmul goes through OpenBLAS (sgemm) with its
// thread count set to the same budget. Results match hal::reference::execute within
// float rounding of the accumulation order.
#pragma once

#include "hal/op.h"
#include "hal/status.h"

namespace hal::cpu {

Status run_op(const OpSpec& spec, const void* const* inputs, void* output);
bool kernel_supports(const OpSpec& spec);

}  // namespace hal::cpu
