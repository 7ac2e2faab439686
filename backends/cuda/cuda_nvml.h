// backends/cuda/cuda_nvml.h: the few NVML (NVIDIA Management Library) calls the CUDA
// backend uses, loaded with dlopen("libnvidia-ml.so.1") at run time.
//
// NVML ships with the driver, not the toolkit, and there is no nvml.h on build machines:
// the types and prototypes below are declared here from NVML's documented C API (they have
// been stable since NVML 2.x; the _v2 entry points are used where NVML versioned them).
// Without NVML (no driver, a container without it) every call returns nullopt and the
// backend falls back to what the CUDA runtime reports.
//
// Threading: NVML is thread-safe; Nvml::instance() initialises once per process.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace hal::cuda {

struct NvmlPcieLink {
  int generation = 0;  // 1..6
  int width = 0;       // lanes
};

struct NvmlNvLink {
  int active_links = 0;
  int version = 0;  // NVLink version (3 on A100, 4 on H100/H200)
  // PCI (domain, bus, device) at the far end of each active link; a far end that is not one
  // of our GPUs is an NVSwitch.
  std::vector<std::array<unsigned, 3>> remote;
};

struct NvmlReadings {
  double utilization_percent = -1;
  double memory_used_bytes = -1;
  double power_watts = -1;
  double temperature_celsius = -1;
  double sm_clock_hz = -1;
  double memory_clock_hz = -1;
};

class Nvml {
 public:
  // The process-wide instance (loading and initialising NVML on first use).
  static Nvml& instance();

  bool available() const { return available_; }
  const std::string& status() const { return status_; }  // why not, or the driver version
  std::string driver_version() const;

  // A device handle by PCI bus id ("0000:3b:00.0", as cudaDeviceGetPCIBusId writes it),
  // or null.
  void* device_by_bus_id(const std::string& bus_id) const;
  std::optional<std::string> name(void* dev) const;
  std::optional<NvmlPcieLink> max_pcie(void* dev) const;
  std::optional<NvmlPcieLink> current_pcie(void* dev) const;
  std::optional<NvmlNvLink> nvlink(void* dev) const;
  std::optional<double> max_memory_clock_hz(void* dev) const;
  NvmlReadings readings(void* dev) const;

 private:
  Nvml();
  struct Api;
  Api* api_ = nullptr;
  bool available_ = false;
  std::string status_;
};

}  // namespace hal::cuda
