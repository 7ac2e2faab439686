// backends/npu_sim/npu_config.h: which simulated NPUs a plugin instance presents and
// how they behave, from plugin options, environment variables and a config file.
//
// Sources, highest precedence first (README.md, "Choosing devices"):
//   devices:           plugin option "devices" > HAL_NPU_SIM > config "devices" > "atom"
//   timing_only:       plugin option "timing_only" > HAL_NPU_SIM_TIMING_ONLY > config > false
//   compute_precision: plugin option > HAL_NPU_SIM_PRECISION > config > each spec's own
//   faults:            plugin option "faults" > HAL_NPU_SIM_FAULTS > config "faults" > none
//                      (npu_faults.h: syntax; an entry naming a device that is not
//                      configured is refused when the system is created)
// The config file is plugin option "config" or HAL_NPU_SIM_CONFIG. A device list is
// comma-separated; each entry is a preset name ("atom", "atom-max", "rebel-quad") or a
// path to a spec file (it contains '/' or ends in ".json"). Each entry is one card; a
// card of dies_per_card dies (atom-max) becomes that many devices.
//
// Contract: resolve_config() never throws; every bad input (unknown option, unknown
// preset, unreadable or invalid spec/config file, malformed boolean) is a Status naming
// where it came from.
//
// Threading: pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hal/status.h"
#include "npu_faults.h"
#include "npu_spec.h"

namespace hal::npu_sim {

// The raw inputs; from_environment() reads the process environment, tests fill it.
struct ConfigInputs {
  std::map<std::string, std::string> plugin_options;
  std::optional<std::string> env_devices;      // HAL_NPU_SIM
  std::optional<std::string> env_config;       // HAL_NPU_SIM_CONFIG
  std::optional<std::string> env_timing_only;  // HAL_NPU_SIM_TIMING_ONLY
  std::optional<std::string> env_precision;    // HAL_NPU_SIM_PRECISION
  std::optional<std::string> env_faults;       // HAL_NPU_SIM_FAULTS

  static ConfigInputs from_environment(std::map<std::string, std::string> plugin_options);
};

struct SimConfig {
  std::vector<DeviceSpec> cards;  // in device order; each expands to dies_per_card devices
  bool timing_only = false;       // no backing storage for device memory; ops not computed
  std::optional<ComputePrecision> precision_override;
  std::string devices_from;  // "plugin option 'devices'", "HAL_NPU_SIM", "config file X", "default"
  std::vector<FaultSpec> faults;  // injected device faults (npu_faults.h); empty: none
  std::string faults_from;        // where they came from, for messages
};

Result<SimConfig> resolve_config(const ConfigInputs& inputs);

// "atom,atom", "rebel-quad", "/x/my.json" -> one spec per entry. `where` names the
// list in errors; relative paths are taken against `base_dir` when it is not empty.
Result<std::vector<DeviceSpec>> parse_device_list(const std::string& list, const std::string& where,
                                                  const std::string& base_dir = "");

// "1", "true", "yes", "on" / "0", "false", "no", "off" (case-insensitive).
std::optional<bool> parse_bool(const std::string& text);

}  // namespace hal::npu_sim
