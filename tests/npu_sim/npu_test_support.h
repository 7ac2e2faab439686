// tests/npu_sim/npu_test_support.h: opening platforms with chosen simulated NPUs, and
// reading the plugin's counters extension, for the plugin-level tests.
//
// Threading: test helpers; ScopedEnv is not thread-safe (setenv).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hal/hal.h"
#include "hal_npu_sim/npu_sim_ext.h"

namespace hal::npu_sim::testing {

// Sets (or unsets, with nullopt) an environment variable for its lifetime.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The simulator's environment cleared, so a developer's HAL_NPU_SIM cannot leak in.
struct CleanNpuEnv {
  ScopedEnv devices{"HAL_NPU_SIM", std::nullopt};
  ScopedEnv config{"HAL_NPU_SIM_CONFIG", std::nullopt};
  ScopedEnv timing{"HAL_NPU_SIM_TIMING_ONLY", std::nullopt};
  ScopedEnv precision{"HAL_NPU_SIM_PRECISION", std::nullopt};
};

// A platform with npu_sim configured by `options` (and the other plugins unless
// `npu_only`).
inline std::unique_ptr<Platform> open_platform(
    std::vector<std::pair<std::string, std::string>> options, bool npu_only = true) {
  CleanNpuEnv clean;
  PlatformOptions o;
  if (npu_only) o.only_plugins = {"npu_sim"};
  if (!options.empty()) o.plugin_options["npu_sim"] = std::move(options);
  auto p = Platform::create(o);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  if (!p.ok()) return nullptr;
  for (const PluginReport& r : (*p)->plugin_reports())
    if (r.name == "npu_sim") {
      EXPECT_TRUE(r.loaded) << r.reason;
    }
  return std::move(*p);
}

inline const PluginReport* report_of(const Platform& p, const std::string& name) {
  for (const PluginReport& r : p.plugin_reports())
    if (r.name == name) return &r;
  return nullptr;
}

// The counters extension of the loaded npu_sim plugin, found through the ABI's typed
// extension lookup (hal::Device::extension_as).
struct Counters {
  hal_npu_sim_device_counters_fn device = nullptr;
  hal_npu_sim_stream_counters_fn stream = nullptr;

  static Counters find(const Platform& p) {
    Counters c;
    for (const Device* d : p.devices()) {
      if (d->info().backend != "npu_sim") continue;
      const auto* ext =
          d->extension_as<hal_npu_sim_counters_ext>(HAL_EXTENSION_TYPE_NPU_SIM_COUNTERS);
      if (!ext) return c;
      const size_t size = ext->header.struct_size;
      if (HAL_ABI_HAS_FIELD(hal_npu_sim_counters_ext, device_counters, size))
        c.device = ext->device_counters;
      if (HAL_ABI_HAS_FIELD(hal_npu_sim_counters_ext, stream_counters, size))
        c.stream = ext->stream_counters;
      return c;
    }
    return c;
  }
  hal_npu_sim_counters of(const Device& d) const {
    hal_npu_sim_counters out{};
    out.struct_size = sizeof(out);
    EXPECT_EQ(device(d.handle(), &out), 0);
    return out;
  }
  hal_npu_sim_counters of(const Stream& s) const {
    hal_npu_sim_counters out{};
    out.struct_size = sizeof(out);
    EXPECT_EQ(stream(s.handle(), &out), 0);
    return out;
  }
};

}  // namespace hal::npu_sim::testing
