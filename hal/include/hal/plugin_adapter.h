// hal/plugin_adapter.h: write a backend plugin as C++ classes; export the C table
// (hal/plugin_abi.h) in one line.
//
// A backend author implements four classes and a factory:
//
//   class MyBuffer : public hal::plugin::BufferImpl { ... };   // memory
//   class MyEvent  : public hal::plugin::EventImpl  { ... };   // completion markers
//   class MyStream : public hal::plugin::StreamImpl { ... };   // in-order queue
//   class MyDevice : public hal::plugin::DeviceImpl { ... };   // info, allocation, support
//   class MyPlugin : public hal::plugin::PluginImpl { ... };   // owns the devices
//
//   hal::Result<std::unique_ptr<hal::plugin::PluginImpl>> create_my_plugin(
//       const hal::plugin::PluginContext& ctx);
//   HAL_DEFINE_PLUGIN("my_npu", "0.1.0", create_my_plugin)
//
// The adapter converts every C call into a virtual call and back:
// - argument structs from an older or newer host are read by their struct_size;
// - op descriptors are converted and fully validated (hal::validate_op) and their
//   buffers bounds-checked before StreamImpl::dispatch sees them, so a plugin only
//   ever receives well-formed ops;
// - every exception is caught at the boundary and returned as an error (bad_alloc as
//   out of memory), so nothing unwinds into the host;
// - error messages are returned as hal_error objects the host frees, with the Status's
//   detail (Status::with_command_tag) as the error's structured detail (ABI 1.2);
// - PluginImpl::extension() answers the table's get_extension (ABI 1.2); extension
//   functions find the objects behind the host's handles with device_of()/stream_of().
//
// Lifetime: the host destroys every buffer, stream and event before the plugin. A device
// hands each new BufferImpl/StreamImpl/EventImpl to the adapter as a std::unique_ptr; the
// adapter owns it behind the C handle and deletes it when the host frees that handle.
// DeviceImpl objects are owned by the PluginImpl.
//
// Threading: the adapter adds no locks; a plugin's classes must be thread-safe as
// plugin_abi.h describes.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "hal/buffer.h"
#include "hal/command_record.h"
#include "hal/device_info.h"
#include "hal/op.h"
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

// ---- the C side ---------------------------------------------------------------------
namespace detail {

struct Error {
  hal_status_code code;
  std::string message;
  StatusDetail detail;
  bool owned = true;  // false for the static fallback below
};

inline hal_error* make_error(const Status& s) {
  if (s.ok()) return nullptr;
  try {
    return reinterpret_cast<hal_error*>(
        new Error{hal_status_code(s.code()), s.message(), s.detail()});
  } catch (...) {
    // Could not even allocate an error: return a static one (never freed).
    static Error oom{HAL_STATUS_OUT_OF_MEMORY, "out of host memory while reporting an error",
                     {}, false};
    return reinterpret_cast<hal_error*>(&oom);
  }
}
inline hal_error* make_error(StatusCode code, std::string message) {
  return make_error(Status(code, std::move(message)));
}

// Runs `fn` (returning Status) and converts exceptions into errors.
template <typename Fn>
hal_error* guard(Fn&& fn) {
  try {
    return make_error(fn());
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kOutOfMemory, "out of host memory");
  } catch (const std::exception& e) {
    return make_error(StatusCode::kInternal, std::string("plugin threw: ") + e.what());
  } catch (...) {
    return make_error(StatusCode::kInternal, "plugin threw an unknown exception");
  }
}

// Reads an argument struct written by the other side, zero-filling what it lacks.
template <typename T>
T read_args(const T* args) {
  T out;
  std::memset(static_cast<void*>(&out), 0, sizeof(T));
  if (args) std::memcpy(&out, args, std::min(sizeof(T), args->struct_size));
  out.struct_size = sizeof(T);
  return out;
}

// The integer stored in a C enum field the other side filled. Any int may be there (the
// CTS sends unknown kinds on purpose); loading it as the C++ enum type is undefined
// behaviour for values outside the enumerators' range (UBSan: "not a valid value for
// type"), so such fields are read as integers and range-checked.
template <typename Enum>
int32_t c_enum_value(const Enum& field) {
  static_assert(sizeof(Enum) == sizeof(int32_t), "C enums are int-sized on our ABIs");
  int32_t v;
  std::memcpy(&v, &field, sizeof(v));
  return v;
}

inline Status to_tensor_desc(const hal_tensor& t, TensorDesc* out) {
  if (t.rank < 0 || t.rank > HAL_MAX_RANK)
    return invalid_argument("tensor rank " + std::to_string(t.rank) + " is outside [0, 8]");
  const int32_t dtype = c_enum_value(t.dtype);
  if (dtype <= HAL_DTYPE_INVALID || dtype >= kDTypeCount)
    return invalid_argument("tensor dtype " + std::to_string(dtype) + " is unknown");
  out->dtype = DType(dtype);
  out->shape.rank = t.rank;
  for (int i = 0; i < t.rank; ++i) {
    out->shape.dims[i] = t.shape[i];
    out->strides[i] = t.strides[i];
  }
  return ok_status();
}

inline OpAttributes to_attrs(const hal_op_attrs* a) {
  OpAttributes o;
  if (!a) return o;
  const hal_op_attrs r = read_args(a);
  const size_t n = a->struct_size;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, transpose_a, n)) o.transpose_a = r.transpose_a != 0;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, transpose_b, n)) o.transpose_b = r.transpose_b != 0;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, alpha, n)) o.alpha = r.alpha;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, beta, n)) o.beta = r.beta;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, epsilon, n)) o.epsilon = r.epsilon;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, causal, n)) o.causal = r.causal != 0;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, scale, n)) o.scale = r.scale;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, gelu_approximation, n))
    o.gelu_approximation = GeluApproximation(r.gelu_approximation);
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, rope_theta, n)) o.rope_theta = r.rope_theta;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, rotary_dim, n)) o.rotary_dim = r.rotary_dim;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, rope_style, n)) o.rope_style = RopeStyle(r.rope_style);
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, kv_length, n)) o.kv_length = r.kv_length;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, q_offset, n)) o.q_offset = r.q_offset;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, perm, n))
    for (int i = 0; i < HAL_MAX_RANK; ++i) o.perm[i] = r.perm[i];
  return o;
}

// Converts a C op descriptor into an OpSpec (and, when `call` is set, an OpCall with
// buffers). Validates it fully.
inline Status to_op(const hal_op_desc* desc_in, OpSpec* spec, OpCall* call) {
  if (!desc_in) return invalid_argument("op descriptor is null");
  const hal_op_desc d = read_args(desc_in);
  const int32_t kind = c_enum_value(d.kind);
  if (kind <= HAL_OP_INVALID || kind >= kOpKindCount)
    return invalid_argument("op kind " + std::to_string(kind) + " is unknown");
  if (d.num_inputs > HAL_MAX_OP_INPUTS)
    return invalid_argument("op has " + std::to_string(d.num_inputs) + " inputs; at most 4");
  if (d.num_outputs != 1)
    return invalid_argument("op has " + std::to_string(d.num_outputs) + " outputs; expected 1");
  if (d.num_inputs > 0 && !d.inputs) return invalid_argument("op inputs pointer is null");
  if (!d.outputs) return invalid_argument("op outputs pointer is null");
  if (d.tensor_size < offsetof(hal_tensor, strides) + sizeof(int64_t) * HAL_MAX_RANK)
    return invalid_argument("op tensor_size " + std::to_string(d.tensor_size) +
                            " is smaller than a hal 1.0 tensor");
  spec->kind = OpKind(kind);
  spec->attrs = to_attrs(d.attrs);
  spec->num_inputs = int32_t(d.num_inputs);
  auto tensor_at = [&](const hal_tensor* base, uint32_t i) {
    return reinterpret_cast<const hal_tensor*>(reinterpret_cast<const char*>(base) +
                                               size_t(i) * d.tensor_size);
  };
  for (uint32_t i = 0; i < d.num_inputs; ++i) {
    Status s = to_tensor_desc(*tensor_at(d.inputs, i), &spec->inputs[i]);
    if (!s.ok())
      return s.with_context(std::string(op_kind_name(spec->kind)) + " input " + std::to_string(i));
  }
  {
    Status s = to_tensor_desc(*d.outputs, &spec->output);
    if (!s.ok()) return s.with_context(std::string(op_kind_name(spec->kind)) + " output");
  }
  HAL_RETURN_IF_ERROR(validate_op(*spec));
  if (call) {
    call->kind = spec->kind;
    call->attrs = spec->attrs;
    call->num_inputs = spec->num_inputs;
    auto bind = [&](const hal_tensor* t, const TensorDesc& desc, TensorArg* arg,
                    const std::string& what) -> Status {
      if (!t->buffer)
        return invalid_argument(std::string(op_kind_name(spec->kind)) + " " + what +
                                " has no buffer");
      auto* b = reinterpret_cast<BufferImpl*>(t->buffer);
      const uint64_t extent = desc.extent_bytes();
      if (t->offset_bytes > b->size() || extent > b->size() - t->offset_bytes)
        return invalid_argument(std::string(op_kind_name(spec->kind)) + " " + what + " " +
                                desc.to_string() + " at offset " + std::to_string(t->offset_bytes) +
                                " needs " + std::to_string(extent) + " bytes but its buffer has " +
                                std::to_string(b->size()));
      arg->buffer = b;
      arg->offset_bytes = t->offset_bytes;
      arg->desc = desc;
      return ok_status();
    };
    for (uint32_t i = 0; i < d.num_inputs; ++i)
      HAL_RETURN_IF_ERROR(bind(tensor_at(d.inputs, i), spec->inputs[i], &call->inputs[i],
                               "input " + std::to_string(i)));
    HAL_RETURN_IF_ERROR(bind(d.outputs, spec->output, &call->output, "output"));
  }
  return ok_status();
}

struct AdaptedPlugin {
  PluginContext context;
  std::unique_ptr<PluginImpl> impl;
};

inline BufferImpl* buf(hal_buffer* b) { return reinterpret_cast<BufferImpl*>(b); }
inline EventImpl* evt(hal_event* e) { return reinterpret_cast<EventImpl*>(e); }
inline DeviceImpl* dev(hal_device* d) { return reinterpret_cast<DeviceImpl*>(d); }

// Each stream remembers its device so ops can be checked against it.
struct StreamBox {
  std::unique_ptr<StreamImpl> impl;
  DeviceImpl* device;
};
inline StreamBox* box(hal_stream* s) { return reinterpret_cast<StreamBox*>(s); }

template <PluginFactory Factory>
struct Entries {
  static hal_status_code error_code(const hal_error* e) {
    return e ? reinterpret_cast<const Error*>(e)->code : HAL_STATUS_OK;
  }
  static const char* error_message(const hal_error* e) {
    return e ? reinterpret_cast<const Error*>(e)->message.c_str() : "";
  }
  static void error_destroy(hal_error* e) {
    auto* err = reinterpret_cast<Error*>(e);
    if (err && err->owned) delete err;
  }
  static void error_get_detail(const hal_error* e, hal_error_detail* out) {
    if (!out || out->struct_size < sizeof(size_t)) return;
    hal_error_detail d{};
    d.struct_size = sizeof(d);
    if (e) {
      const StatusDetail& detail = reinterpret_cast<const Error*>(e)->detail;
      if (detail.command_tag) {
        d.fields |= HAL_ERROR_DETAIL_COMMAND_TAG;
        d.command_tag = *detail.command_tag;
      }
    }
    const size_t n = std::min(out->struct_size, sizeof(d));
    d.struct_size = n;
    std::memcpy(static_cast<void*>(out), &d, n);
  }
  static const hal_extension_header* get_extension(hal_plugin* p, uint32_t type) {
    if (!p) return nullptr;
    try {
      return reinterpret_cast<AdaptedPlugin*>(p)->impl->extension(type);
    } catch (...) {
      return nullptr;
    }
  }

  static inline const char* name_ = "";

  static hal_error* plugin_create(hal_plugin_create_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("plugin_create args are null");
      const hal_plugin_create_args a = read_args(args);
      auto adapted = std::make_unique<AdaptedPlugin>();
      adapted->context.host = a.host;
      adapted->context.plugin_name = name_;
      for (size_t i = 0; i < a.num_options; ++i) {
        if (!a.options[i].key)
          return invalid_argument("plugin option " + std::to_string(i) + " has no key");
        adapted->context.options[a.options[i].key] = a.options[i].value ? a.options[i].value : "";
      }
      Result<std::unique_ptr<PluginImpl>> impl = Factory(adapted->context);
      if (!impl.ok()) return impl.status();
      adapted->impl = std::move(impl).value();
      args->plugin = reinterpret_cast<hal_plugin*>(adapted.release());
      return ok_status();
    });
  }
  static void plugin_destroy(hal_plugin* p) {
    try {
      delete reinterpret_cast<AdaptedPlugin*>(p);
    } catch (...) {
    }
  }
  static hal_error* device_count(hal_plugin* p, uint32_t* count) {
    return guard([&]() -> Status {
      if (!p || !count) return invalid_argument("device_count: null argument");
      *count = reinterpret_cast<AdaptedPlugin*>(p)->impl->device_count();
      return ok_status();
    });
  }
  static hal_error* device_get(hal_plugin* p, uint32_t index, hal_device** out) {
    return guard([&]() -> Status {
      if (!p || !out) return invalid_argument("device_get: null argument");
      auto* ap = reinterpret_cast<AdaptedPlugin*>(p);
      if (index >= ap->impl->device_count())
        return not_found("device index " + std::to_string(index) + " out of range");
      *out = reinterpret_cast<hal_device*>(ap->impl->device(index));
      return ok_status();
    });
  }
  static hal_error* device_get_info(hal_device* d, hal_device_info* info) {
    return guard([&]() -> Status {
      if (!d || !info) return invalid_argument("device_get_info: null argument");
      const size_t host_size = info->struct_size;
      const hal_device_info& mine = dev(d)->exported_info();
      std::memcpy(info, &mine, std::min(host_size, sizeof(hal_device_info)));
      info->struct_size = std::min(host_size, sizeof(hal_device_info));
      return ok_status();
    });
  }
  static hal_error* device_supports_op(hal_device* d, const hal_op_desc* op, int32_t* supported) {
    return guard([&]() -> Status {
      if (!d || !supported) return invalid_argument("device_supports_op: null argument");
      OpSpec spec;
      Status s = to_op(op, &spec, nullptr);
      if (!s.ok()) {
        *supported = 0;
        return s;
      }
      *supported = dev(d)->supports(spec) ? 1 : 0;
      return ok_status();
    });
  }
  static hal_error* device_get_memory_stats(hal_device* d, hal_memory_stats* out) {
    return guard([&]() -> Status {
      if (!d || !out) return invalid_argument("device_get_memory_stats: null argument");
      const MemoryStats m = dev(d)->memory_stats();
      hal_memory_stats s{};
      s.struct_size = sizeof(s);
      s.bytes_in_use = m.bytes_in_use;
      s.peak_bytes_in_use = m.peak_bytes_in_use;
      s.allocation_count = m.allocation_count;
      s.total_allocations = m.total_allocations;
      s.capacity_bytes = m.capacity_bytes;
      const size_t n = std::min(out->struct_size, sizeof(s));
      std::memcpy(out, &s, n);
      out->struct_size = n;
      return ok_status();
    });
  }
  static hal_error* device_get_telemetry(hal_device* d, hal_telemetry* out) {
    return guard([&]() -> Status {
      if (!d || !out) return invalid_argument("device_get_telemetry: null argument");
      Result<Telemetry> t = dev(d)->telemetry();
      if (!t.ok()) return t.status();
      hal_telemetry s{};
      s.struct_size = sizeof(s);
      s.utilization_percent = t->utilization_percent;
      s.memory_used_bytes = t->memory_used_bytes;
      s.power_watts = t->power_watts;
      s.temperature_celsius = t->temperature_celsius;
      s.core_clock_hz = t->core_clock_hz;
      s.memory_clock_hz = t->memory_clock_hz;
      const size_t n = std::min(out->struct_size, sizeof(s));
      std::memcpy(out, &s, n);
      out->struct_size = n;
      return ok_status();
    });
  }
  static hal_error* buffer_allocate(hal_buffer_allocate_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("buffer_allocate args are null");
      const hal_buffer_allocate_args a = read_args(args);
      if (!a.device) return invalid_argument("buffer_allocate: no device");
      const int32_t memory_kind = c_enum_value(a.memory_kind);
      if (memory_kind < HAL_MEMORY_DEVICE || memory_kind > HAL_MEMORY_VIRTUAL)
        return invalid_argument("buffer_allocate: unknown memory kind " +
                                std::to_string(memory_kind));
      if (a.alignment & (a.alignment - 1))
        return invalid_argument("buffer_allocate: alignment " + std::to_string(a.alignment) +
                                " is not a power of two");
      Result<std::unique_ptr<BufferImpl>> b =
          dev(a.device)->allocate(a.size_bytes, MemoryKind(memory_kind), a.alignment);
      if (!b.ok()) return b.status();
      if (!*b) return internal_error("buffer_allocate: the device returned no buffer");
      args->buffer = reinterpret_cast<hal_buffer*>(b->release());
      return ok_status();
    });
  }
  static void buffer_free(hal_buffer* b) {
    try {
      delete buf(b);
    } catch (...) {
    }
  }
  static hal_error* buffer_map(hal_buffer* b, void** ptr) {
    return guard([&]() -> Status {
      if (!b || !ptr) return invalid_argument("buffer_map: null argument");
      Result<void*> p = buf(b)->map();
      if (!p.ok()) return p.status();
      *ptr = *p;
      return ok_status();
    });
  }
  static hal_error* stream_create(hal_stream_create_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("stream_create args are null");
      const hal_stream_create_args a = read_args(args);
      if (!a.device) return invalid_argument("stream_create: no device");
      Result<std::unique_ptr<StreamImpl>> s = dev(a.device)->create_stream(a.flags);
      if (!s.ok()) return s.status();
      if (!*s) return internal_error("stream_create: the device returned no stream");
      auto b = std::make_unique<StreamBox>();
      b->impl = std::move(*s);
      b->device = dev(a.device);
      args->stream = reinterpret_cast<hal_stream*>(b.release());
      return ok_status();
    });
  }
  static void stream_destroy(hal_stream* s) {
    try {
      delete box(s);
    } catch (...) {
    }
  }
  static hal_error* stream_copy(const hal_copy_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("stream_copy args are null");
      const hal_copy_args a = read_args(args);
      if (!a.stream) return invalid_argument("copy: no stream");
      if ((a.src_buffer == nullptr) == (a.src_host == nullptr))
        return invalid_argument("copy: exactly one of a source buffer or host pointer is needed");
      if ((a.dst_buffer == nullptr) == (a.dst_host == nullptr))
        return invalid_argument(
            "copy: exactly one of a destination buffer or host pointer is needed");
      CopyCall c;
      c.src_buffer = buf(a.src_buffer);
      c.src_offset = a.src_offset;
      c.src_host = a.src_host;
      c.dst_buffer = buf(a.dst_buffer);
      c.dst_offset = a.dst_offset;
      c.dst_host = a.dst_host;
      c.size_bytes = a.size_bytes;
      c.tag = a.tag;
      auto in_bounds = [](BufferImpl* b, uint64_t off, uint64_t n) {
        return off <= b->size() && n <= b->size() - off;
      };
      if (c.src_buffer && !in_bounds(c.src_buffer, c.src_offset, c.size_bytes))
        return invalid_argument("copy of " + std::to_string(c.size_bytes) + " bytes from offset " +
                                std::to_string(c.src_offset) + " overruns the " +
                                std::to_string(c.src_buffer->size()) + "-byte source buffer");
      if (c.dst_buffer && !in_bounds(c.dst_buffer, c.dst_offset, c.size_bytes))
        return invalid_argument("copy of " + std::to_string(c.size_bytes) + " bytes to offset " +
                                std::to_string(c.dst_offset) + " overruns the " +
                                std::to_string(c.dst_buffer->size()) + "-byte destination buffer");
      if (c.src_host && c.dst_host)
        return invalid_argument("copy: host-to-host copies are not a device command");
      DeviceImpl* sd = box(a.stream)->device;
      if (c.src_host) {
        c.direction = CommandKind::kCopyHostToDevice;
      } else if (c.dst_host) {
        c.direction = CommandKind::kCopyDeviceToHost;
      } else if (c.src_buffer->device() == c.dst_buffer->device()) {
        c.direction = CommandKind::kCopyDeviceToDevice;
      } else {
        c.direction = CommandKind::kCopyPeer;
      }
      if (c.direction != CommandKind::kCopyPeer) {
        BufferImpl* b = c.src_buffer ? c.src_buffer : c.dst_buffer;
        if (b->device() != sd && !(c.src_buffer && c.dst_buffer))
          return invalid_argument("copy: the buffer belongs to another device than the stream");
      }
      return box(a.stream)->impl->copy(c);
    });
  }
  static hal_error* stream_fill(const hal_fill_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("stream_fill args are null");
      const hal_fill_args a = read_args(args);
      if (!a.stream || !a.buffer) return invalid_argument("fill: no stream or buffer");
      if (a.pattern_size != 1 && a.pattern_size != 2 && a.pattern_size != 4 && a.pattern_size != 8)
        return invalid_argument("fill: pattern size " + std::to_string(a.pattern_size) +
                                " is not 1, 2, 4 or 8");
      if (a.size_bytes % a.pattern_size != 0)
        return invalid_argument("fill: size " + std::to_string(a.size_bytes) +
                                " is not a multiple of the pattern size " +
                                std::to_string(a.pattern_size));
      BufferImpl* b = buf(a.buffer);
      if (a.offset > b->size() || a.size_bytes > b->size() - a.offset)
        return invalid_argument("fill of " + std::to_string(a.size_bytes) + " bytes at offset " +
                                std::to_string(a.offset) + " overruns the " +
                                std::to_string(b->size()) + "-byte buffer");
      if (b->device() != box(a.stream)->device)
        return invalid_argument("fill: the buffer belongs to another device than the stream");
      FillCall f;
      f.buffer = b;
      f.offset = a.offset;
      f.size_bytes = a.size_bytes;
      std::memcpy(f.pattern.data(), a.pattern, 8);
      f.pattern_size = a.pattern_size;
      f.tag = a.tag;
      return box(a.stream)->impl->fill(f);
    });
  }
  static hal_error* stream_dispatch(const hal_dispatch_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("stream_dispatch args are null");
      const hal_dispatch_args a = read_args(args);
      if (!a.stream) return invalid_argument("dispatch: no stream");
      OpSpec spec;
      OpCall call;
      HAL_RETURN_IF_ERROR(to_op(a.op, &spec, &call));
      DeviceImpl* d = box(a.stream)->device;
      for (int i = 0; i < call.num_inputs; ++i)
        if (call.inputs[i].buffer->device() != d)
          return invalid_argument(std::string(op_kind_name(call.kind)) + ": input " +
                                  std::to_string(i) + " lives on another device");
      if (call.output.buffer->device() != d)
        return invalid_argument(std::string(op_kind_name(call.kind)) +
                                ": output lives on another device");
      if (!d->supports(spec))
        return unimplemented(std::string(op_kind_name(call.kind)) + " with inputs " +
                             spec.inputs[0].to_string() + " is not supported by this device");
      return box(a.stream)->impl->dispatch(call, a.tag);
    });
  }
  static hal_error* stream_synchronize(hal_stream* s) {
    return guard([&]() -> Status {
      if (!s) return invalid_argument("stream_synchronize: null stream");
      return box(s)->impl->synchronize();
    });
  }
  static hal_error* stream_take_records(hal_stream* s, hal_command_record* out, size_t record_size,
                                        size_t capacity, size_t* count) {
    return guard([&]() -> Status {
      if (!s || !count || (capacity > 0 && !out))
        return invalid_argument("stream_take_records: null argument");
      if (record_size < offsetof(hal_command_record, bound) + sizeof(hal_bound_by))
        return invalid_argument("stream_take_records: record_size " + std::to_string(record_size) +
                                " is smaller than a hal 1.0 record");
      std::vector<CommandRecord> tmp(std::min<size_t>(capacity, 4096));
      const size_t n = box(s)->impl->take_records(tmp.data(), tmp.size());
      for (size_t i = 0; i < n; ++i) {
        hal_command_record r{};
        r.struct_size = sizeof(r);
        const CommandRecord& c = tmp[i];
        r.tag = c.tag;
        r.command = hal_command_kind(c.command);
        r.op = hal_op_kind(c.op);
        r.start_ns = c.start_ns;
        r.end_ns = c.end_ns;
        r.flops = c.flops;
        r.bytes_read = c.bytes_read;
        r.bytes_written = c.bytes_written;
        r.sram_bytes_read = c.sram_bytes_read;
        r.sram_bytes_written = c.sram_bytes_written;
        r.link_bytes = c.link_bytes;
        r.bound = hal_bound_by(c.bound);
        const size_t copy = std::min(record_size, sizeof(r));
        r.struct_size = copy;
        std::memcpy(reinterpret_cast<char*>(out) + i * record_size, &r, copy);
      }
      *count = n;
      return ok_status();
    });
  }
  static hal_error* event_create(hal_device* d, hal_event** out) {
    return guard([&]() -> Status {
      if (!d || !out) return invalid_argument("event_create: null argument");
      Result<std::unique_ptr<EventImpl>> e = dev(d)->create_event();
      if (!e.ok()) return e.status();
      if (!*e) return internal_error("event_create: the device returned no event");
      *out = reinterpret_cast<hal_event*>(e->release());
      return ok_status();
    });
  }
  static void event_destroy(hal_event* e) {
    try {
      delete evt(e);
    } catch (...) {
    }
  }
  static hal_error* stream_record_event(hal_stream* s, hal_event* e) {
    return guard([&]() -> Status {
      if (!s || !e) return invalid_argument("stream_record_event: null argument");
      return box(s)->impl->record_event(*evt(e));
    });
  }
  static hal_error* stream_wait_event(hal_stream* s, hal_event* e) {
    return guard([&]() -> Status {
      if (!s || !e) return invalid_argument("stream_wait_event: null argument");
      return box(s)->impl->wait_event(*evt(e));
    });
  }
  static hal_error* stream_enqueue_host_func(hal_stream* s, hal_host_func fn, void* user) {
    return guard([&]() -> Status {
      if (!s || !fn) return invalid_argument("stream_enqueue_host_func: null argument");
      return box(s)->impl->enqueue_host_func(fn, user);
    });
  }
  static hal_error* event_synchronize(hal_event* e) {
    return guard([&]() -> Status {
      if (!e) return invalid_argument("event_synchronize: null event");
      return evt(e)->synchronize();
    });
  }
  static hal_error* event_query(hal_event* e, int32_t* done) {
    return guard([&]() -> Status {
      if (!e || !done) return invalid_argument("event_query: null argument");
      Result<bool> r = evt(e)->query();
      if (!r.ok()) return r.status();
      *done = *r ? 1 : 0;
      return ok_status();
    });
  }
  static hal_error* event_timestamp_ns(hal_event* e, uint64_t* ts) {
    return guard([&]() -> Status {
      if (!e || !ts) return invalid_argument("event_timestamp_ns: null argument");
      Result<uint64_t> r = evt(e)->timestamp_ns();
      if (!r.ok()) return r.status();
      *ts = *r;
      return ok_status();
    });
  }
};

}  // namespace detail

// The objects behind the handles this adapter made, for a plugin's extension functions
// (plugin_abi.h, EXTENSIONS): they receive the host's handles and must not know how the
// adapter boxes them. Precondition: the handle came from this plugin.
inline DeviceImpl* device_of(hal_device* device) { return detail::dev(device); }
inline StreamImpl* stream_of(hal_stream* stream) {
  return stream ? detail::box(stream)->impl.get() : nullptr;
}
inline BufferImpl* buffer_of(hal_buffer* buffer) { return detail::buf(buffer); }
inline EventImpl* event_of(hal_event* event) { return detail::evt(event); }

// Builds the table for `Factory`. `abi_minor` < the header's minor presents an older,
// shorter table (used by tests that emulate old plugins).
template <PluginFactory Factory>
const hal_plugin_api* make_plugin_api(const char* name, const char* version,
                                      uint32_t abi_minor = HAL_ABI_VERSION_MINOR) {
  using E = detail::Entries<Factory>;
  static hal_plugin_api api = [&] {
    hal_plugin_api a{};
    E::name_ = name;
    a.struct_size = abi_minor == 0   ? HAL_PLUGIN_API_SIZE_1_0
                    : abi_minor == 1 ? HAL_PLUGIN_API_SIZE_1_1
                                     : sizeof(hal_plugin_api);
    a.abi_major = HAL_ABI_VERSION_MAJOR;
    a.abi_minor = abi_minor;
    a.plugin_name = name;
    a.plugin_version = version;
    a.error_code = &E::error_code;
    a.error_message = &E::error_message;
    a.error_destroy = &E::error_destroy;
    a.plugin_create = &E::plugin_create;
    a.plugin_destroy = &E::plugin_destroy;
    a.device_count = &E::device_count;
    a.device_get = &E::device_get;
    a.device_get_info = &E::device_get_info;
    a.device_supports_op = &E::device_supports_op;
    a.device_get_memory_stats = &E::device_get_memory_stats;
    a.buffer_allocate = &E::buffer_allocate;
    a.buffer_free = &E::buffer_free;
    a.buffer_map = &E::buffer_map;
    a.stream_create = &E::stream_create;
    a.stream_destroy = &E::stream_destroy;
    a.stream_copy = &E::stream_copy;
    a.stream_fill = &E::stream_fill;
    a.stream_dispatch = &E::stream_dispatch;
    a.stream_synchronize = &E::stream_synchronize;
    a.stream_take_records = &E::stream_take_records;
    a.event_create = &E::event_create;
    a.event_destroy = &E::event_destroy;
    a.stream_record_event = &E::stream_record_event;
    a.event_synchronize = &E::event_synchronize;
    a.event_query = &E::event_query;
    a.event_timestamp_ns = &E::event_timestamp_ns;
    a.stream_wait_event = &E::stream_wait_event;
    a.stream_enqueue_host_func = &E::stream_enqueue_host_func;
    if (abi_minor >= 1) a.device_get_telemetry = &E::device_get_telemetry;
    if (abi_minor >= 2) {
      a.error_get_detail = &E::error_get_detail;
      a.get_extension = &E::get_extension;
    }
    return a;
  }();
  return &api;
}

}  // namespace hal::plugin

// Exports the plugin entry point. Use once per plugin library, at namespace scope.
#define HAL_DEFINE_PLUGIN(name, version, factory)                                             \
  extern "C" HAL_PLUGIN_EXPORT const hal_plugin_api* hal_plugin_get_api(uint32_t, uint32_t) { \
    return ::hal::plugin::make_plugin_api<factory>(name, version);                            \
  }
