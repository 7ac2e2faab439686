#include "cpu_device_info.h"

#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

namespace hal::cpu {

DeviceInfo describe_cpu() {
  DeviceInfo info;
  info.id_prefix = "cpu";
  info.kind = DeviceKind::kCpu;
  info.vendor = "unknown";
  info.name = "CPU";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    auto value = [&] { return line.substr(line.find(':') + 2); };
    if (line.rfind("vendor_id", 0) == 0) info.vendor = value();
    if (line.rfind("model name", 0) == 0) {
      info.name = value();
      break;
    }
  }
  info.memory_kind = "DRAM";
  info.memory_bytes = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
  info.compute_units = std::thread::hardware_concurrency();
  info.memory_bandwidth_bytes_per_s = 10e9;
  info.peak_flops[DType::kF32] = 1e11;
  info.properties.emplace_back("source.memory_bytes", "OS: sysconf(_SC_PHYS_PAGES)");
  info.properties.emplace_back("source.memory_bandwidth", "placeholder");
  info.properties.emplace_back("source.peak_flops", "placeholder");
  LinkInfo host;
  host.peer_index = -1;
  host.kind = "memory-bus";
  host.bandwidth_bytes_per_s = info.memory_bandwidth_bytes_per_s;
  info.links.push_back(host);
  return info;
}

}  // namespace hal::cpu
