#include "hal/device.h"

#include "c_convert.h"
#include "hal/units.h"
#include "loaded_plugin.h"

namespace hal {

Result<Buffer> Device::allocate(uint64_t size_bytes, MemoryKind kind, uint64_t alignment) {
  hal_buffer_allocate_args a{};
  a.struct_size = sizeof(a);
  a.device = handle_;
  a.size_bytes = size_bytes;
  a.memory_kind = hal_memory_kind(kind);
  a.alignment = alignment;
  HAL_RETURN_IF_ERROR(plugin_->take_error(
      plugin_->api->buffer_allocate(&a),
      id() + ": allocate " + format_bytes(size_bytes) + " of " + std::string(memory_kind_name(kind)) +
          " memory"));
  if (!a.buffer) return internal_error(id() + ": allocate returned no buffer");
  return Buffer(this, a.buffer, size_bytes, kind);
}

Result<Stream> Device::create_stream(StreamOptions options) {
  hal_stream_create_args a{};
  a.struct_size = sizeof(a);
  a.device = handle_;
  a.flags = options.record_commands ? HAL_STREAM_FLAG_RECORD_COMMANDS : 0;
  HAL_RETURN_IF_ERROR(plugin_->take_error(plugin_->api->stream_create(&a), id() + ": create stream"));
  if (!a.stream) return internal_error(id() + ": create stream returned no stream");
  return Stream(this, a.stream);
}

Result<Event> Device::create_event() {
  hal_event* e = nullptr;
  HAL_RETURN_IF_ERROR(plugin_->take_error(plugin_->api->event_create(handle_, &e), id() + ": create event"));
  if (!e) return internal_error(id() + ": create event returned no event");
  return Event(this, e);
}

bool Device::supports(const OpSpec& spec) const {
  detail::COp c(spec);
  int32_t supported = 0;
  Status s = plugin_->take_error(plugin_->api->device_supports_op(handle_, &c.desc, &supported), "");
  return s.ok() && supported != 0;
}

Result<MemoryStats> Device::memory_stats() const {
  hal_memory_stats m{};
  m.struct_size = sizeof(m);
  HAL_RETURN_IF_ERROR(
      plugin_->take_error(plugin_->api->device_get_memory_stats(handle_, &m), id() + ": memory stats"));
  MemoryStats s;
  s.bytes_in_use = m.bytes_in_use;
  s.peak_bytes_in_use = m.peak_bytes_in_use;
  s.allocation_count = m.allocation_count;
  s.total_allocations = m.total_allocations;
  s.capacity_bytes = m.capacity_bytes;
  return s;
}

Result<Telemetry> Device::telemetry() const {
  if (!HAL_PLUGIN_HAS(*plugin_, device_get_telemetry))
    return unimplemented(id() + ": plugin " + plugin_->name + " (ABI " +
                         std::to_string(plugin_->api->abi_major) + "." +
                         std::to_string(plugin_->api->abi_minor) + ") reports no telemetry");
  hal_telemetry t{};
  t.struct_size = sizeof(t);
  HAL_RETURN_IF_ERROR(
      plugin_->take_error(plugin_->api->device_get_telemetry(handle_, &t), id() + ": telemetry"));
  Telemetry r;
  r.utilization_percent = t.utilization_percent;
  r.memory_used_bytes = t.memory_used_bytes;
  r.power_watts = t.power_watts;
  r.temperature_celsius = t.temperature_celsius;
  r.core_clock_hz = t.core_clock_hz;
  r.memory_clock_hz = t.memory_clock_hz;
  return r;
}

const hal_extension_header* Device::extension(uint32_t type) const {
  if (!HAL_PLUGIN_HAS(*plugin_, get_extension)) return nullptr;
  const hal_extension_header* h = plugin_->api->get_extension(plugin_->plugin, type);
  if (!h || h->struct_size < sizeof(hal_extension_header) || h->type != type) return nullptr;
  return h;
}

}  // namespace hal
