// NVML through dlopen (cuda_nvml.h says why and what is declared here).
#include "cuda_nvml.h"

#include <dlfcn.h>

#include <cstring>
#include <type_traits>

namespace hal::cuda {
namespace {

using nvmlReturn_t = int;
using nvmlDevice_t = void*;
constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr int kClockSm = 1;   // NVML_CLOCK_SM
constexpr int kClockMem = 2;  // NVML_CLOCK_MEM
constexpr int kTemperatureGpu = 0;
constexpr unsigned kMaxNvLinks = 18;  // NVML_NVLINK_MAX_LINKS on Hopper

struct NvmlMemory {
  unsigned long long total, free, used;
};
struct NvmlUtilization {
  unsigned gpu, memory;
};
// nvmlPciInfo_t as the _v2/_v3 entry points fill it: a 16-byte legacy bus id, then
// domain, bus, device, ids, then the 32-byte bus id. Read into a larger zeroed buffer.
struct NvmlPciInfo {
  char bus_id_legacy[16];
  unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
  char bus_id[32];
  char slack[64];
};

}  // namespace

struct Nvml::Api {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*driver_version)(char*, unsigned) = nullptr;
  nvmlReturn_t (*by_bus_id)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned) = nullptr;
  nvmlReturn_t (*max_gen)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*max_width)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*cur_gen)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*cur_width)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*link_state)(nvmlDevice_t, unsigned, int*) = nullptr;
  nvmlReturn_t (*link_version)(nvmlDevice_t, unsigned, unsigned*) = nullptr;
  nvmlReturn_t (*link_remote)(nvmlDevice_t, unsigned, NvmlPciInfo*) = nullptr;
  nvmlReturn_t (*utilization)(nvmlDevice_t, NvmlUtilization*) = nullptr;
  nvmlReturn_t (*memory)(nvmlDevice_t, NvmlMemory*) = nullptr;
  nvmlReturn_t (*power)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned*) = nullptr;
  nvmlReturn_t (*clock)(nvmlDevice_t, int, unsigned*) = nullptr;
  nvmlReturn_t (*max_clock)(nvmlDevice_t, int, unsigned*) = nullptr;
};

Nvml& Nvml::instance() {
  static Nvml* nvml = new Nvml();  // never destroyed: used until exit
  return *nvml;
}

Nvml::Nvml() {
  void* lib = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = ::dlerror();
    status_ = std::string("libnvidia-ml.so.1 not loaded: ") + (why ? why : "not found");
    return;
  }
  api_ = new Api();
  auto sym = [&](auto* fn, const char* name) {
    *fn = reinterpret_cast<std::remove_reference_t<decltype(*fn)>>(::dlsym(lib, name));
  };
  sym(&api_->init, "nvmlInit_v2");
  sym(&api_->driver_version, "nvmlSystemGetDriverVersion");
  sym(&api_->by_bus_id, "nvmlDeviceGetHandleByPciBusId_v2");
  sym(&api_->name, "nvmlDeviceGetName");
  sym(&api_->max_gen, "nvmlDeviceGetMaxPcieLinkGeneration");
  sym(&api_->max_width, "nvmlDeviceGetMaxPcieLinkWidth");
  sym(&api_->cur_gen, "nvmlDeviceGetCurrPcieLinkGeneration");
  sym(&api_->cur_width, "nvmlDeviceGetCurrPcieLinkWidth");
  sym(&api_->link_state, "nvmlDeviceGetNvLinkState");
  sym(&api_->link_version, "nvmlDeviceGetNvLinkVersion");
  sym(&api_->link_remote, "nvmlDeviceGetNvLinkRemotePciInfo_v2");
  sym(&api_->utilization, "nvmlDeviceGetUtilizationRates");
  sym(&api_->memory, "nvmlDeviceGetMemoryInfo");
  sym(&api_->power, "nvmlDeviceGetPowerUsage");
  sym(&api_->temperature, "nvmlDeviceGetTemperature");
  sym(&api_->clock, "nvmlDeviceGetClockInfo");
  sym(&api_->max_clock, "nvmlDeviceGetMaxClockInfo");
  if (!api_->init || !api_->by_bus_id) {
    status_ = "libnvidia-ml.so.1 lacks nvmlInit_v2 or nvmlDeviceGetHandleByPciBusId_v2";
    return;
  }
  const nvmlReturn_t r = api_->init();
  if (r != kNvmlSuccess) {
    status_ = "nvmlInit_v2 failed with NVML error " + std::to_string(r);
    return;
  }
  available_ = true;
  status_ = "NVML loaded (driver " + driver_version() + ")";
}

std::string Nvml::driver_version() const {
  char buf[96] = {};
  if (!api_ || !api_->driver_version || api_->driver_version(buf, sizeof buf) != kNvmlSuccess)
    return "unknown";
  return buf;
}

void* Nvml::device_by_bus_id(const std::string& bus_id) const {
  if (!available_) return nullptr;
  nvmlDevice_t dev = nullptr;
  if (api_->by_bus_id(bus_id.c_str(), &dev) != kNvmlSuccess) return nullptr;
  return dev;
}

std::optional<std::string> Nvml::name(void* dev) const {
  char buf[128] = {};
  if (!dev || !api_->name || api_->name(dev, buf, sizeof buf) != kNvmlSuccess) return std::nullopt;
  return std::string(buf);
}

std::optional<NvmlPcieLink> Nvml::max_pcie(void* dev) const {
  unsigned gen = 0, width = 0;
  if (!dev || !api_->max_gen || !api_->max_width || api_->max_gen(dev, &gen) != kNvmlSuccess ||
      api_->max_width(dev, &width) != kNvmlSuccess || gen == 0 || width == 0)
    return std::nullopt;
  return NvmlPcieLink{int(gen), int(width)};
}

std::optional<NvmlPcieLink> Nvml::current_pcie(void* dev) const {
  unsigned gen = 0, width = 0;
  if (!dev || !api_->cur_gen || !api_->cur_width || api_->cur_gen(dev, &gen) != kNvmlSuccess ||
      api_->cur_width(dev, &width) != kNvmlSuccess || gen == 0 || width == 0)
    return std::nullopt;
  return NvmlPcieLink{int(gen), int(width)};
}

std::optional<NvmlNvLink> Nvml::nvlink(void* dev) const {
  if (!dev || !api_->link_state) return std::nullopt;
  NvmlNvLink out;
  for (unsigned link = 0; link < kMaxNvLinks; ++link) {
    int active = 0;
    if (api_->link_state(dev, link, &active) != kNvmlSuccess || active != 1) continue;
    ++out.active_links;
    unsigned version = 0;
    if (api_->link_version && api_->link_version(dev, link, &version) == kNvmlSuccess)
      out.version = int(version);
    NvmlPciInfo pci;
    std::memset(&pci, 0, sizeof pci);
    if (api_->link_remote && api_->link_remote(dev, link, &pci) == kNvmlSuccess)
      out.remote.push_back({pci.domain, pci.bus, pci.device});
  }
  if (out.active_links == 0) return std::nullopt;
  return out;
}

std::optional<double> Nvml::max_memory_clock_hz(void* dev) const {
  unsigned mhz = 0;
  if (!dev || !api_->max_clock || api_->max_clock(dev, kClockMem, &mhz) != kNvmlSuccess || mhz == 0)
    return std::nullopt;
  return double(mhz) * 1e6;
}

NvmlReadings Nvml::readings(void* dev) const {
  NvmlReadings r;
  if (!dev) return r;
  NvmlUtilization u{};
  if (api_->utilization && api_->utilization(dev, &u) == kNvmlSuccess)
    r.utilization_percent = u.gpu;
  NvmlMemory m{};
  if (api_->memory && api_->memory(dev, &m) == kNvmlSuccess) r.memory_used_bytes = double(m.used);
  unsigned v = 0;
  if (api_->power && api_->power(dev, &v) == kNvmlSuccess) r.power_watts = v / 1000.0;
  if (api_->temperature && api_->temperature(dev, kTemperatureGpu, &v) == kNvmlSuccess)
    r.temperature_celsius = v;
  if (api_->clock && api_->clock(dev, kClockSm, &v) == kNvmlSuccess) r.sm_clock_hz = v * 1e6;
  if (api_->clock && api_->clock(dev, kClockMem, &v) == kNvmlSuccess) r.memory_clock_hz = v * 1e6;
  return r;
}

}  // namespace hal::cuda
