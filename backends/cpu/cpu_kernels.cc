// Placeholder dispatch to the reference kernels; replaced by the optimised kernels.
#include "cpu_kernels.h"

#include "hal/reference_ops.h"

namespace hal::cpu {

Status run_op(const OpSpec& spec, const void* const* inputs, void* output) {
  return reference::execute(spec, inputs, output);
}

bool kernel_supports(const OpSpec& spec) {
  for (int i = 0; i < spec.num_inputs; ++i)
    if (spec.inputs[i].dtype == DType::kFP8E4M3 || spec.inputs[i].dtype == DType::kFP8E5M2) return false;
  return spec.output.dtype != DType::kFP8E4M3 && spec.output.dtype != DType::kFP8E5M2;
}

}  // namespace hal::cpu
