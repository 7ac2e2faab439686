// Links the installed hal::hal, hal::cts and hal::reference (and hal::runtime when
// installed), opens the platform and prints what it found: proof that the package
// config's targets and dependencies are complete.
#include <cstdio>

#include "hal/cts.h"
#include "hal/hal.h"
#include "hal/reference_ops.h"

#ifndef HAL_CONSUMER_HAS_RUNTIME
#define HAL_CONSUMER_HAS_RUNTIME 0
#endif

int main() {
  auto platform = hal::Platform::create();
  if (!platform.ok()) {
    std::fprintf(stderr, "%s\n", platform.status().to_string().c_str());
    return 1;
  }
  for (hal::Device* d : (*platform)->devices()) {
    const auto cases = hal::cts::list_cases(**platform, *d);
    std::printf("%s %zu\n", d->id().c_str(), cases.size());
  }
  // The reference kernels link: 2 * 3 + 1.
  hal::OpSpec spec;
  spec.kind = hal::OpKind::kScale;
  spec.attrs.alpha = 2;
  spec.attrs.beta = 1;
  spec.num_inputs = 1;
  spec.inputs[0] = hal::TensorDesc::contiguous(hal::DType::kF32, {1});
  spec.output = spec.inputs[0];
  const float x = 3;
  float y = 0;
  const void* in[1] = {&x};
  if (!hal::reference::execute(spec, in, &y).ok() || y != 7.0f) return 1;
  std::printf("runtime %s\n", HAL_CONSUMER_HAS_RUNTIME ? "yes" : "no");
  return 0;
}
