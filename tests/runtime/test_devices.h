// tests/runtime/test_devices.h: every device the build can reach, for tests that must
// hold on all of them: the default platform's devices (cpu:0; npu:N when the NPU
// simulator is built, in its device-faithful bf16 mode; cuda:N with a GPU), plus the NPU
// simulator again in its exact fp32 mode (plugin option compute_precision=fp32). A
// device's DeviceInfo property "compute_precision" other than "fp32" marks it as
// computing in reduced precision.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hal/platform.h"

namespace testdevices {

struct TestDevice {
  std::string label;  // "cpu:0", "npu:0 (bf16)", "npu:0 (fp32)"
  hal::Device* device = nullptr;
  bool reduced_precision = false;  // computes in bf16: looser tolerances
};

class AllDevices {
 public:
  AllDevices() {
    auto main = hal::Platform::create();
    if (main.ok()) main_ = std::move(*main);
    hal::PlatformOptions exact;
    exact.plugin_options["npu_sim"] = {{"compute_precision", "fp32"}};
    exact.only_plugins = {"npu_sim"};
    auto e = hal::Platform::create(exact);
    if (e.ok()) exact_ = std::move(*e);
    if (main_)
      for (hal::Device* d : main_->devices()) {
        // A device that states a compute precision other than fp32 (the NPU simulator's
        // "bf16", a GPU's "tf32") gets the reduced-precision tolerances.
        const std::string precision = d->info().property("compute_precision");
        const bool reduced = !precision.empty() && precision != "fp32";
        list_.push_back({d->id() + (reduced ? " (" + precision + ")" : ""), d, reduced});
      }
    if (exact_)
      for (hal::Device* d : exact_->devices())
        if (d->info().property("compute_precision") == "fp32")
          list_.push_back({d->id() + " (fp32)", d, false});
  }
  const std::vector<TestDevice>& list() const { return list_; }
  hal::Device* cpu() const {
    if (!main_) return nullptr;
    auto d = main_->device("cpu:0");
    return d.ok() ? *d : nullptr;
  }

 private:
  std::unique_ptr<hal::Platform> main_, exact_;
  std::vector<TestDevice> list_;
};

// One per test binary: plugins load once.
inline AllDevices& all_devices() {
  static AllDevices* devices = new AllDevices();  // never destroyed: outlives every session
  return *devices;
}

}  // namespace testdevices
