// The npu_sim plugin: simulated Rebellions-style NPUs (README.md), exported through the
// C ABI with the plugin adapter exactly as an out-of-tree backend would be, plus the
// counter extension of hal_npu_sim/npu_sim_ext.h.
#include <memory>
#include <string>

#include "hal/plugin_adapter.h"
#include "hal_npu_sim/npu_sim_ext.h"
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

void fill_counters(const WorkCounters& w, hal_npu_sim_counters* out) {
  hal_npu_sim_counters c{};
  c.commands = w.commands;
  c.ops = w.ops;
  c.flops = w.flops;
  c.dram_bytes_read = w.dram_bytes_read;
  c.dram_bytes_written = w.dram_bytes_written;
  c.sram_bytes_read = w.sram_bytes_read;
  c.sram_bytes_written = w.sram_bytes_written;
  c.link_bytes = w.link_bytes;
  *out = c;
}

// Copies the fields the caller's struct_size covers.
void copy_out(const hal_npu_sim_counters& c, hal_npu_sim_counters* out) {
  const size_t n = std::min(out->struct_size, sizeof(c));
  std::memcpy(static_cast<void*>(out), &c, n);
  out->struct_size = n;
}

}  // namespace
}  // namespace hal::npu_sim

HAL_DEFINE_PLUGIN("npu_sim", "0.1.0", hal::npu_sim::create_npu_sim_plugin)

extern "C" HAL_PLUGIN_EXPORT int hal_npu_sim_device_counters(hal_device* device,
                                                             hal_npu_sim_counters* out) {
  using namespace hal::npu_sim;
  if (!out || out->struct_size < sizeof(size_t) || !is_live_device(device)) return -1;
  auto* d = static_cast<NpuDevice*>(reinterpret_cast<hal::plugin::DeviceImpl*>(device));
  hal_npu_sim_counters c{};
  {
    std::lock_guard<std::mutex> lock(d->system().timeline_mutex());
    fill_counters(d->counters(), &c);
    c.compute_busy_ns = d->lane(Lane::kCompute).busy_ns();
    c.host_link_busy_ns = d->lane(Lane::kHostIn).busy_ns() + d->lane(Lane::kHostOut).busy_ns();
    c.peer_link_busy_ns = d->lane(Lane::kPeerOut).busy_ns();
    c.now_ns = d->horizon_ns();
  }
  c.struct_size = sizeof(c);
  copy_out(c, out);
  return 0;
}

extern "C" HAL_PLUGIN_EXPORT int hal_npu_sim_stream_counters(hal_stream* stream,
                                                             hal_npu_sim_counters* out) {
  using namespace hal::npu_sim;
  if (!out || out->struct_size < sizeof(size_t) || !stream) return -1;
  // hal_stream handles of adapter-based plugins are the adapter's stream boxes.
  auto* box = reinterpret_cast<hal::plugin::detail::StreamBox*>(stream);
  hal::plugin::StreamImpl* impl = box->impl.get();
  if (!is_live_stream(impl)) return -1;
  auto* s = static_cast<NpuStream*>(impl);
  hal_npu_sim_counters c{};
  fill_counters(s->counters(), &c);
  c.now_ns = s->clock_ns();
  c.struct_size = sizeof(c);
  copy_out(c, out);
  return 0;
}
