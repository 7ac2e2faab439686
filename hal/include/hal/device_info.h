// hal/device_info.h: what a device is and what it can do, in the figures the
// scheduler's cost model and `halctl info` read.
//
// Contract
// - Every figure is the device's dense peak as published or measured; where it came
//   from is stated in `properties` under "source.<field>" (e.g. "source.memory_bandwidth"
//   = "measured: STREAM triad, 2 threads" or "preset atom: RBLN-CA12 datasheet [R3]").
// - A new plugin that fills this honestly is scheduled without runtime changes.
// - `links` lists the host link first (peer "host") and then one entry per reachable
//   peer device. On the host side `peer` holds the peer's global id; plugins fill
//   `peer_index` instead (-1 = host) and the platform translates.
//
// Threading: value type.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hal/dtype.h"

namespace hal {

enum class DeviceKind : int32_t { kCpu = 0, kGpu = 1, kNpu = 2, kOther = 3 };
std::string_view device_kind_name(DeviceKind kind);  // "cpu", "gpu", "npu", "other"

struct LinkInfo {
  std::string peer;        // "host" or a device id (host side)
  int32_t peer_index = -1; // plugin side: -1 = host, else device index within the plugin
  std::string kind;        // "pcie-gen5-x16", "nvlink4", "ucie", "memory-bus", "host-staged"
  double bandwidth_bytes_per_s = 0;  // per direction
  double latency_s = 0;
};

struct DeviceInfo {
  std::string id;         // "cpu:0", "npu:1", "cuda:0" (assigned by the platform)
  std::string id_prefix;  // "cpu", "npu", "cuda" (chosen by the plugin)
  std::string backend;    // the plugin's name: "cpu", "npu_sim", "cuda"
  DeviceKind kind = DeviceKind::kOther;
  std::string vendor;
  std::string name;
  std::string memory_kind;  // "DDR5", "GDDR6", "HBM3E", ...
  uint64_t memory_bytes = 0;
  double memory_bandwidth_bytes_per_s = 0;
  std::map<DType, double> peak_flops;  // dense FLOP/s (or OP/s for integer types)
  uint64_t sram_bytes = 0;
  uint32_t compute_units = 0;
  double clock_hz = 0;
  double launch_overhead_s = 0;  // fixed cost per command
  std::vector<LinkInfo> links;
  std::vector<std::pair<std::string, std::string>> properties;

  // Peak for `t`; falls back to f32's peak, then 0.
  double peak_flops_for(DType t) const;
  // The value of a property, or "" when absent.
  std::string property(std::string_view key) const;
  // The link to the host (kind "none", bandwidth 0 when the device lists none).
  LinkInfo host_link() const;
};

// Live readings; negative where the device cannot read them.
struct Telemetry {
  double utilization_percent = -1;
  double memory_used_bytes = -1;
  double power_watts = -1;
  double temperature_celsius = -1;
  double core_clock_hz = -1;
  double memory_clock_hz = -1;
};

}  // namespace hal
