// hal/plugin/plugin_interfaces.h: the C++ classes a backend plugin implements (part of
// the plugin kit; hal/plugin_adapter.h turns them into the C table of hal/plugin_abi.h
// and states the adapter's contract).
//
// - PluginImpl owns the devices; the factory a plugin exports (PluginFactory) makes it
//   from the host's options (PluginContext).
// - DeviceImpl describes a device (info, supported ops, memory statistics, telemetry)
//   and makes BufferImpl/StreamImpl/EventImpl objects, handing each to the caller as a
//   std::unique_ptr.
// - StreamImpl receives validated calls only (OpCall, CopyCall, FillCall, ExecuteCall:
//   in-bounds buffers of the stream's device, well-formed ops and graph views).
// - Executables (ABI 1.2, optional): a device with a compiler overrides
//   DeviceImpl::partition/compile (and deserialize/fingerprint to be serializable),
//   returns ExecutableImpl objects, and its streams override StreamImpl::execute. The
//   defaults decline every node ("compiles no graphs"), so op-by-op dispatch applies.
// - Optionally (ABI 1.2) DeviceImpl::create_channel and StreamImpl::collective offer
//   collectives (hal/plugin/channel_impl.h); a backend that runs on the host gets both from
//   the kit's engine (hal/plugin/collective_engine.h).
//
// Threading: every method may be called from any thread (plugin_abi.h, THREADING); the
// classes must be thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "hal/buffer.h"
#include "hal/command_record.h"
#include "hal/device_info.h"
#include "hal/executable.h"
#include "hal/graph_view.h"
#include "hal/op.h"
#include "hal/plugin/channel_impl.h"
#include "hal/plugin_abi.h"
#include "hal/status.h"

namespace hal::plugin {

class DeviceImpl;

// ---- what the factory receives -----------------------------------------------------
struct PluginContext {
  std::map<std::string, std::string> options;  // from the host's plugin_create call
  const hal_host_api* host = nullptr;
  std::string plugin_name;

  // The option's value, or `fallback` when not given.
  std::string option(const std::string& key, const std::string& fallback = "") const {
    auto it = options.find(key);
    return it == options.end() ? fallback : it->second;
  }
  void log(hal_log_level level, const std::string& message) const {
    if (host && HAL_ABI_HAS_FIELD(hal_host_api, log, host->struct_size) && host->log)
      host->log(level, plugin_name.c_str(), message.c_str());
  }
};

// ---- the classes a plugin implements ----------------------------------------------
class BufferImpl {
 public:
  BufferImpl(DeviceImpl* device, uint64_t size, MemoryKind kind)
      : device_(device), size_(size), kind_(kind) {}
  virtual ~BufferImpl() = default;  // frees the memory
  DeviceImpl* device() const { return device_; }
  uint64_t size() const { return size_; }
  MemoryKind kind() const { return kind_; }
  // Host address of the contents, or kFailedPrecondition when not host-addressable.
  virtual Result<void*> map() = 0;

 private:
  DeviceImpl* device_;
  uint64_t size_;
  MemoryKind kind_;
};

class EventImpl {
 public:
  virtual ~EventImpl() = default;
  virtual Status synchronize() = 0;
  virtual Result<bool> query() = 0;
  virtual Result<uint64_t> timestamp_ns() = 0;
};

struct TensorArg {
  BufferImpl* buffer = nullptr;
  uint64_t offset_bytes = 0;
  TensorDesc desc;
};

// A validated op: every tensor lies within its buffer, which belongs to the
// dispatching stream's device.
struct OpCall {
  OpKind kind = OpKind::kInvalid;
  OpAttributes attrs;
  int32_t num_inputs = 0;
  std::array<TensorArg, kMaxOpInputs> inputs{};
  TensorArg output;

  OpSpec spec() const {
    OpSpec s;
    s.kind = kind;
    s.attrs = attrs;
    s.num_inputs = num_inputs;
    for (int i = 0; i < num_inputs; ++i) s.inputs[i] = inputs[i].desc;
    s.output = output.desc;
    return s;
  }
};

// A validated copy: exactly one of src_buffer/src_host and of dst_buffer/dst_host is
// set and buffer ranges are in bounds.
struct CopyCall {
  BufferImpl* src_buffer = nullptr;
  uint64_t src_offset = 0;
  const void* src_host = nullptr;
  BufferImpl* dst_buffer = nullptr;
  uint64_t dst_offset = 0;
  void* dst_host = nullptr;
  uint64_t size_bytes = 0;
  uint64_t tag = 0;
  CommandKind direction = CommandKind::kCopyDeviceToDevice;
};

struct FillCall {
  BufferImpl* buffer = nullptr;
  uint64_t offset = 0;
  uint64_t size_bytes = 0;
  std::array<uint8_t, 8> pattern{};
  uint32_t pattern_size = 1;
  uint64_t tag = 0;
};

// A compiled graph (ABI 1.2). Immutable after compile; may run on several streams at once.
class ExecutableImpl {
 public:
  explicit ExecutableImpl(GraphView view) : view_(std::move(view)) {}
  virtual ~ExecutableImpl() = default;
  // The (validated) view it was compiled from.
  const GraphView& view() const { return view_; }
  // Device memory one execution needs besides its bindings (ExecuteCall::scratch).
  virtual uint64_t scratch_bytes() const = 0;
  // Predicted figures at these symbol values (checked: one per symbol, in range). The
  // groups' names, nodes and main ops must not depend on the symbol values (the adapter
  // keeps the first call's as the strings and arrays the host reads); their figures may.
  virtual Result<ExecutableInfo> info(std::span<const int64_t> symbols) const = 0;
  // The plugin's own bytes, from which DeviceImpl::deserialize rebuilds it (the adapter
  // wraps them with the compatibility key and a checksum); UNIMPLEMENTED when it cannot.
  virtual Result<std::vector<uint8_t>> serialize() const {
    return unimplemented("this executable cannot be serialized");
  }

 private:
  GraphView view_;
};

// A buffer bound to one value of an executable's view.
struct BoundTensor {
  BufferImpl* buffer = nullptr;
  uint64_t offset_bytes = 0;
};

// A validated execution: every bound value (GraphView::is_bound) has a buffer of the
// stream's device holding its extent at its offset; the scratch holds scratch_bytes();
// symbols are in range.
struct ExecuteCall {
  ExecutableImpl* executable = nullptr;
  std::vector<BoundTensor> bindings;  // by view value index; unset for unbound values
  BufferImpl* scratch = nullptr;
  uint64_t scratch_offset = 0;
  std::vector<int64_t> symbols;
};

class StreamImpl {
 public:
  virtual ~StreamImpl() = default;  // waits for the stream's work
  virtual Status copy(const CopyCall& call) = 0;
  virtual Status fill(const FillCall& call) = 0;
  virtual Status dispatch(const OpCall& op, uint64_t tag) = 0;
  virtual Status record_event(EventImpl& event) = 0;
  // Optional: return kUnimplemented to let the host wait through a host function.
  virtual Status wait_event(EventImpl& event) = 0;
  virtual Status enqueue_host_func(hal_host_func fn, void* user_data) = 0;
  virtual Status synchronize() = 0;
  // Moves up to `capacity` completed records into `out`; returns how many.
  virtual size_t take_records(CommandRecord* out, size_t capacity) = 0;
  // Optional (devices that compile): enqueues one execution.
  virtual Status execute(const ExecuteCall& call, uint64_t tag) {
    (void)call;
    (void)tag;
    return unimplemented("this stream runs no executables");
  }
  // Optional (ABI 1.2, hal/plugin/channel_impl.h): a collective of a channel of this
  // stream's device.
  virtual Status collective(const CollectiveCall& call) {
    (void)call;
    return unimplemented("this device's streams run no collectives");
  }
};

namespace detail {
struct ExportedInfo {
  std::vector<hal_dtype_flops> flops;
  std::vector<hal_link_info> links;
  std::vector<hal_property> properties;
  hal_device_info info{};
};
}  // namespace detail

class DeviceImpl {
 public:
  virtual ~DeviceImpl() = default;
  // Figures of the device. `id_prefix` must be set ("npu"); `id` is ignored (the host
  // assigns it); links use peer_index. Must stay unchanged for the plugin's lifetime.
  virtual const DeviceInfo& info() const = 0;
  // Whether dispatch would accept this (already validated) op.
  virtual bool supports(const OpSpec& spec) const = 0;
  // New objects, owned by the caller (the adapter, which deletes each when the host frees
  // its handle).
  virtual Result<std::unique_ptr<BufferImpl>> allocate(uint64_t size, MemoryKind kind,
                                                       uint64_t alignment) = 0;
  virtual Result<std::unique_ptr<StreamImpl>> create_stream(uint32_t flags) = 0;
  virtual Result<std::unique_ptr<EventImpl>> create_event() = 0;
  virtual MemoryStats memory_stats() const = 0;
  // Optional: live readings.
  virtual Result<Telemetry> telemetry() const {
    return unimplemented("this device reports no telemetry");
  }
  // Optional (ABI 1.2): this device's member of a communicator (hal/plugin/channel_impl.h).
  virtual Result<std::unique_ptr<ChannelImpl>> create_channel(const ChannelConfig& config) {
    (void)config;
    return unimplemented("this device offers no channels (collectives)");
  }

  // ---- executables (ABI 1.2; optional) ----
  // Which nodes of the (validated) view this device compiles, in which units (each
  // convex), and why it declines the others. Default: declines every node.
  virtual Result<Partition> partition(const GraphView& view) const {
    Partition p;
    p.node_unit.assign(view.nodes.size(), -1);
    p.reasons.assign(view.nodes.size(), "this device compiles no graphs");
    return p;
  }
  // Compiles every node of the (validated) view. Default: UNIMPLEMENTED.
  virtual Result<std::unique_ptr<ExecutableImpl>> compile(const GraphView& view,
                                                          const CompileOptions& options) {
    (void)view;
    (void)options;
    return unimplemented("this device compiles no graphs");
  }
  // Rebuilds an executable from ExecutableImpl::serialize's bytes (the adapter has
  // checked their compatibility key and checksum). Default: UNIMPLEMENTED.
  virtual Result<std::unique_ptr<ExecutableImpl>> deserialize(std::span<const uint8_t> payload) {
    (void)payload;
    return unimplemented("this device cannot load executables");
  }
  // What identifies this device in the compatibility key of its serialized executables:
  // anything that would change a compiled result. Default: a hash of the figures that
  // do not vary between runs (name, vendor, kind, memory kind and size, SRAM, compute
  // units, peak FLOP/s).
  virtual std::string fingerprint() const {
    const DeviceInfo& d = info();
    // Appended piece by piece (GCC 12's -Wrestrict false positive on "x" + string chains).
    std::string text;
    for (const std::string& piece :
         {d.name, d.vendor, std::to_string(int(d.kind)), d.memory_kind,
          std::to_string(d.memory_bytes), std::to_string(d.sram_bytes),
          std::to_string(d.compute_units)}) {
      text.append(piece);
      text.push_back('|');
    }
    for (const auto& [t, f] : d.peak_flops) {
      text.append(std::to_string(int(t)));
      text.push_back('=');
      text.append(std::to_string(f));
      text.push_back('|');
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(fnv1a64(text.data(), text.size())));
    return d.name + "-" + hex;
  }

  // Used by the adapter: the C view of info(), built once.
  const hal_device_info& exported_info() {
    std::call_once(export_once_, [this] { export_info(); });
    return exported_.info;
  }

 private:
  void export_info() {
    const DeviceInfo& d = info();
    for (const auto& [t, f] : d.peak_flops) exported_.flops.push_back({hal_dtype(t), f});
    for (const LinkInfo& l : d.links)
      exported_.links.push_back(
          {l.peer_index, l.kind.c_str(), l.bandwidth_bytes_per_s, l.latency_s});
    for (const auto& [k, v] : d.properties) exported_.properties.push_back({k.c_str(), v.c_str()});
    hal_device_info& i = exported_.info;
    i.struct_size = sizeof(hal_device_info);
    i.id_prefix = d.id_prefix.c_str();
    i.kind = hal_device_kind(d.kind);
    i.vendor = d.vendor.c_str();
    i.name = d.name.c_str();
    i.memory_kind = d.memory_kind.c_str();
    i.memory_bytes = d.memory_bytes;
    i.memory_bandwidth_bytes_per_s = d.memory_bandwidth_bytes_per_s;
    i.peak_flops = exported_.flops.data();
    i.num_peak_flops = exported_.flops.size();
    i.sram_bytes = d.sram_bytes;
    i.compute_units = d.compute_units;
    i.clock_hz = d.clock_hz;
    i.launch_overhead_s = d.launch_overhead_s;
    i.links = exported_.links.data();
    i.num_links = exported_.links.size();
    i.properties = exported_.properties.data();
    i.num_properties = exported_.properties.size();
    i.peak_flops_size = sizeof(hal_dtype_flops);
    i.link_size = sizeof(hal_link_info);
    i.property_size = sizeof(hal_property);
  }

  std::once_flag export_once_;
  detail::ExportedInfo exported_;
};

class PluginImpl {
 public:
  virtual ~PluginImpl() = default;
  virtual uint32_t device_count() const = 0;
  virtual DeviceImpl* device(uint32_t index) = 0;
  // Optional: the extension of type id `type` (plugin_abi.h, EXTENSIONS), a struct that
  // starts with a hal_extension_header and lives as long as the plugin; nullptr for none.
  virtual const hal_extension_header* extension(uint32_t type) const {
    (void)type;
    return nullptr;
  }
};

using PluginFactory = Result<std::unique_ptr<PluginImpl>> (*)(const PluginContext& context);

}  // namespace hal::plugin
