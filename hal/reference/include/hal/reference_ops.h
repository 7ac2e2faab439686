// hal/reference_ops.h: the plain reference implementation of every op in hal/op.h.
//
// It is the ground truth the CPU kernels, the NPU simulator, the CUDA kernels and the
// conformance suite are compared against: straightforward loops over strided views,
// elements converted to double, reductions accumulated in double, results rounded once
// to the output dtype. Slow by design; never used on a hot path.
//
// Contract: `inputs[i]` and `output` point at element [0, .., 0] of each tensor (the
// buffer offset already applied) in host memory. Precondition: validate_op(spec) is ok.
// Data-dependent failures (an embedding id out of range) return INVALID_ARGUMENT and
// leave the output unspecified.
//
// Threading: pure; may be called concurrently on distinct outputs.
#pragma once

#include "hal/op.h"
#include "hal/status.h"

namespace hal::reference {

Status execute(const OpSpec& spec, const void* const* inputs, void* output);

// Reads / writes one element of a strided tensor as double.
double load(const void* base, const TensorDesc& t, const int64_t* index);
void store(void* base, const TensorDesc& t, const int64_t* index, double v);

}  // namespace hal::reference
