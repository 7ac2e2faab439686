// hal/device.h: one device (a CPU, a GPU, an NPU, simulated or real) as the HAL sees it.
//
// Contract
// - Devices are owned by the Platform and live as long as it; `id()` is stable for a
//   given set of plugins and options ("cpu:0", "npu:1", "cuda:0").
// - allocate(), create_stream() and create_event() make objects that must be destroyed
//   before the Platform.
// - supports(spec) tells whether dispatching that op (dtypes, shapes, strides) will be
//   accepted; the runtime falls back to another device when it is not.
// - Executables (hal/executable.h, ABI 1.2): partition() asks which nodes of a graph view
//   the device compiles, compile() compiles one unit, load_executable() restores a
//   serialized one. A plugin without a compiler (or of ABI 1.0/1.1) declines every node
//   and compile() is UNIMPLEMENTED; the runtime then dispatches op by op.
//
// Threading: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "hal/buffer.h"
#include "hal/device_info.h"
#include "hal/event.h"
#include "hal/executable.h"
#include "hal/graph_view.h"
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

  // ---- executables (hal/executable.h) ----
  // Whether the plugin compiles graphs (has ABI 1.2's executable entries).
  bool compiles() const;
  // Which nodes of `view` the device takes, in which units; the view is validated first.
  Result<Partition> partition(const GraphView& view) const;
  // Compiles every node of `view` (one unit) into an executable of this device.
  Result<Executable> compile(const GraphView& view, const CompileOptions& options = {});
  // The compatibility key of this device's serialized executables; UNIMPLEMENTED when the
  // plugin cannot serialize.
  Result<std::string> executable_key() const;
  // Restores an executable from Executable::serialize's blob, for `view` (the view it was
  // compiled from; the caller keeps that association, e.g. a cache keyed by
  // GraphView::fingerprint()). A foreign, stale or modified blob is FAILED_PRECONDITION.
  Result<Executable> load_executable(std::span<const uint8_t> blob, const GraphView& view);

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
