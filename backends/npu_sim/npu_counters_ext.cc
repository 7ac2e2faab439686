// The counters extension of the npu_sim plugin (hal_npu_sim/npu_sim_ext.h): per-device
// and per-stream totals of simulated work, handed to the host through the ABI's typed
// extension lookup (NpuSystem::extension, plugin_abi.h EXTENSIONS).
#include <algorithm>
#include <cstring>
#include <mutex>

#include "hal_npu_sim/npu_sim_ext.h"
#include "npu_device.h"

namespace hal::npu_sim {
namespace {

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

int device_counters(hal_device* device, hal_npu_sim_counters* out) {
  if (!out || out->struct_size < sizeof(size_t) || !is_live_device(device)) return -1;
  auto* d = static_cast<NpuDevice*>(plugin::device_of(device));
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

int stream_counters(hal_stream* stream, hal_npu_sim_counters* out) {
  if (!out || out->struct_size < sizeof(size_t) || !stream) return -1;
  plugin::StreamImpl* impl = plugin::stream_of(stream);
  if (!is_live_stream(impl)) return -1;
  auto* s = static_cast<NpuStream*>(impl);
  hal_npu_sim_counters c{};
  fill_counters(s->counters(), &c);
  c.now_ns = s->clock_ns();
  c.struct_size = sizeof(c);
  copy_out(c, out);
  return 0;
}

const hal_npu_sim_counters_ext kCountersExtension = {
    {sizeof(hal_npu_sim_counters_ext), HAL_EXTENSION_TYPE_NPU_SIM_COUNTERS,
     HAL_NPU_SIM_COUNTERS_EXT_VERSION},
    &device_counters,
    &stream_counters};

}  // namespace

const hal_extension_header* NpuSystem::extension(uint32_t type) const {
  return type == HAL_EXTENSION_TYPE_NPU_SIM_COUNTERS ? &kCountersExtension.header : nullptr;
}

}  // namespace hal::npu_sim
