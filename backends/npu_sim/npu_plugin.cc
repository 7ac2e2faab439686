// The npu_sim plugin: simulated Rebellions-style NPUs (README.md), exported through the
// C ABI with the plugin adapter exactly as an out-of-tree backend would be (its counters
// extension is npu_counters_ext.cc).
#include <memory>
#include <string>

#include "hal/plugin_adapter.h"
#include "npu_config.h"
#include "npu_device.h"

namespace hal::npu_sim {
namespace {

Result<std::unique_ptr<plugin::PluginImpl>> create_npu_sim_plugin(
    const plugin::PluginContext& ctx) {
  Result<SimConfig> config = resolve_config(ConfigInputs::from_environment(ctx.options));
  if (!config.ok()) return config.status();
  HAL_ASSIGN_OR_RETURN(std::unique_ptr<NpuSystem> system, NpuSystem::create(*config));
  std::string names;
  for (const DeviceSpec& s : config->cards) names += (names.empty() ? "" : ",") + s.name;
  ctx.log(HAL_LOG_INFO, std::to_string(system->device_count()) + " simulated device(s) from " +
                            config->devices_from + ": " + names +
                            (config->timing_only ? " (timing only)" : ""));
  if (!config->faults.empty()) {
    std::string faults;
    for (const FaultSpec& f : config->faults) faults += (faults.empty() ? "" : "; ") + f.text;
    ctx.log(HAL_LOG_WARNING, "injecting faults from " + config->faults_from + ": " + faults);
  }
  return std::unique_ptr<plugin::PluginImpl>(std::move(system));
}

}  // namespace
}  // namespace hal::npu_sim

HAL_DEFINE_PLUGIN("npu_sim", "0.1.0", hal::npu_sim::create_npu_sim_plugin)
