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
// - Executables (ABI 1.2): graph views are converted and validated (GraphView::validate)
//   before DeviceImpl::partition/compile see them, executions are checked (bindings
//   complete and in bounds, scratch, symbols in range) before StreamImpl::execute, and
//   serialized executables travel in the kit's envelope (hal/plugin/executable_blob.h:
//   compatibility key of plugin name and version, ABI and DeviceImpl::fingerprint(), and
//   a checksum), so every kit plugin refuses foreign and modified blobs alike.
// - DeviceImpl::create_channel and StreamImpl::collective answer the channel entries
//   (ABI 1.2; hal/plugin/channel_impl.h), collectives checked like ops (shape, buffers in
//   bounds on the stream's device) before the plugin sees them.
//
// Lifetime: the host destroys every buffer, stream and event before the plugin. A device
// hands each new BufferImpl/StreamImpl/EventImpl to the adapter as a std::unique_ptr; the
// adapter owns it behind the C handle and deletes it when the host frees that handle.
// DeviceImpl objects are owned by the PluginImpl.
//
// Threading: the adapter adds no locks; a plugin's classes must be thread-safe as
// plugin_abi.h describes.
//
// Files: the classes are hal/plugin/plugin_interfaces.h; the C side is
// hal/plugin/c_conversions.h (errors, argument structs, op validation, handles) and
// hal/plugin/c_entries.h (the table's entry points), with hal/plugin/executable_blob.h
// (the serialized executables' envelope). This header builds the table.
#pragma once

#include <cstdint>

#include "hal/plugin/c_entries.h"
#include "hal/plugin/plugin_interfaces.h"
#include "hal/plugin_abi.h"

namespace hal::plugin {

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
    E::version_ = version;
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
      a.channel_create = &E::channel_create;
      a.channel_destroy = &E::channel_destroy;
      a.channel_abort = &E::channel_abort;
      a.stream_collective = &E::stream_collective;
      a.device_partition = &E::device_partition;
      a.executable_compile = &E::executable_compile;
      a.executable_destroy = &E::executable_destroy;
      a.executable_get_info = &E::executable_get_info;
      a.stream_execute = &E::stream_execute;
      a.executable_serialize = &E::executable_serialize;
      a.executable_deserialize = &E::executable_deserialize;
      a.device_get_executable_key = &E::device_get_executable_key;
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
