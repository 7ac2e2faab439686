// hal/device.h: one device (a CPU, a GPU, an NPU, simulated or real) as the HAL sees it.
//
// Contract
// - Devices are owned by the Platform and live as long as it; `id()` is stable for a
//   given set of plugins and options ("cpu:0", "npu:1", "cuda:0").
// - allocate(), create_stream() and create_event() make objects that must be destroyed
//   before the Platform.
// - supports(spec) tells whether dispatching that op (dtypes, shapes, strides) will be
//   accepted; the runtime falls back to another device when it is not.
//
// Threading: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "hal/buffer.h"
#include "hal/device_info.h"
#include "hal/event.h"
#include "hal/op.h"
#include "hal/status.h"
#include "hal/stream.h"

struct hal_device;
struct hal_extension_header;

namespace hal {

class Platform;
namespace detail {
struct LoadedPlugin;
}

class Device {
 public:
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const std::string& id() const { return info_.id; }
  const DeviceInfo& info() const { return info_; }
  Platform& platform() const { return *platform_; }

  Result<Buffer> allocate(uint64_t size_bytes, MemoryKind kind = MemoryKind::kDevice,
                          uint64_t alignment = 0);
  Result<Stream> create_stream(StreamOptions options = {});
  Result<Event> create_event();

  bool supports(const OpSpec& spec) const;
  Result<MemoryStats> memory_stats() const;
  Result<Telemetry> telemetry() const;

  // The extension of type id `type` of the plugin behind this device (plugin_abi.h,
  // EXTENSIONS), or nullptr when the plugin (or its ABI, before 1.2) has none. The
  // header's type is checked; read fields only within header.struct_size
  // (HAL_ABI_HAS_FIELD). Valid as long as the Platform.
  const hal_extension_header* extension(uint32_t type) const;
  // The same, viewed as the extension's struct `Ext` (which starts with the header).
  template <typename Ext>
  const Ext* extension_as(uint32_t type) const {
    return reinterpret_cast<const Ext*>(extension(type));
  }

  // For the HAL's own use.
  hal_device* handle() const { return handle_; }
  detail::LoadedPlugin& plugin() const { return *plugin_; }

 private:
  friend class Platform;
  Device(Platform* platform, detail::LoadedPlugin* plugin, hal_device* handle, DeviceInfo info)
      : platform_(platform), plugin_(plugin), handle_(handle), info_(std::move(info)) {}

  Platform* platform_;
  detail::LoadedPlugin* plugin_;
  hal_device* handle_;
  DeviceInfo info_;
};

}  // namespace hal
