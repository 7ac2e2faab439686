// The host's checks of plugin tables and device reports (see plugin_checks.h).
#include "plugin_checks.h"

#include <cmath>
#include <cstddef>
#include <cstring>

#include "hal/dtype.h"

namespace hal::detail {

namespace {

std::string c_str_or(const char* s, const char* fallback = "") { return s ? s : fallback; }

// The integer a plugin stored in an enum field. A plugin (often C) may store any value
// there; loading it as the C++ enum type is undefined behaviour when the value is not
// one of the enumerators' range (UBSan: "not a valid value for type"), so the host reads
// the bytes as an integer and range-checks that.
template <typename Enum>
int32_t enum_value(const Enum& field) {
  static_assert(sizeof(Enum) == sizeof(int32_t), "C enums are int-sized on our ABIs");
  int32_t v;
  std::memcpy(&v, &field, sizeof(v));
  return v;
}

struct Required {
  const char* name;
  size_t offset;
};

// The entries a 1.0 table must have (see plugin_abi.h).
std::vector<std::string> missing_required(const hal_plugin_api* api) {
#define HAL_REQ(e) \
  Required { #e, offsetof(hal_plugin_api, e) }
  static const Required kRequired[] = {
      HAL_REQ(error_code),          HAL_REQ(error_message),
      HAL_REQ(error_destroy),       HAL_REQ(plugin_create),
      HAL_REQ(plugin_destroy),      HAL_REQ(device_count),
      HAL_REQ(device_get),          HAL_REQ(device_get_info),
      HAL_REQ(device_supports_op),  HAL_REQ(device_get_memory_stats),
      HAL_REQ(buffer_allocate),     HAL_REQ(buffer_free),
      HAL_REQ(buffer_map),          HAL_REQ(stream_create),
      HAL_REQ(stream_destroy),      HAL_REQ(stream_copy),
      HAL_REQ(stream_fill),         HAL_REQ(stream_dispatch),
      HAL_REQ(stream_synchronize),  HAL_REQ(stream_take_records),
      HAL_REQ(event_create),        HAL_REQ(event_destroy),
      HAL_REQ(stream_record_event), HAL_REQ(event_synchronize),
      HAL_REQ(event_query),         HAL_REQ(event_timestamp_ns)};
#undef HAL_REQ
  std::vector<std::string> missing;
  for (const Required& r : kRequired) {
    void* fn = nullptr;
    std::memcpy(&fn, reinterpret_cast<const char*>(api) + r.offset, sizeof(fn));
    if (!fn) missing.push_back(r.name);
  }
  return missing;
}

// The 1.2 channel entries come as a set (plugin_abi.h, CHANNELS): a table with some of
// channel_create, channel_destroy and stream_collective but not all names those it lacks.
std::string incomplete_channel_entries(const hal_plugin_api* api) {
  const Required kSet[] = {{"channel_create", offsetof(hal_plugin_api, channel_create)},
                           {"channel_destroy", offsetof(hal_plugin_api, channel_destroy)},
                           {"stream_collective", offsetof(hal_plugin_api, stream_collective)}};
  std::string present, absent;
  for (const Required& r : kSet) {
    void* fn = nullptr;
    if (r.offset + sizeof(fn) <= api->struct_size)
      std::memcpy(&fn, reinterpret_cast<const char*>(api) + r.offset, sizeof(fn));
    std::string& list = fn ? present : absent;
    list += (list.empty() ? "" : ", ") + std::string(r.name);
  }
  if (present.empty() || absent.empty()) return "";
  return "the channel entries come as a set: the table has " + present + " but not " + absent;
}

}  // namespace

bool valid_prefix(const char* p) {
  if (!p || !*p) return false;
  for (const char* c = p; *c; ++c)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) return false;
  return true;
}

TableCheck check_plugin_table(const hal_plugin_api* api) {
  TableCheck out;
  const size_t table_size = api->struct_size;
  const size_t header = offsetof(hal_plugin_api, plugin_version) + sizeof(const char*);
  if (table_size < header) {
    out.reason = "function table of " + std::to_string(table_size) +
                 " bytes is too short to hold its own header";
    return out;
  }
  out.header_read = true;
  out.abi_major = api->abi_major;
  out.abi_minor = api->abi_minor;
  out.name = c_str_or(api->plugin_name);
  out.version = c_str_or(api->plugin_version);
  const std::string versions = "plugin ABI " + std::to_string(out.abi_major) + "." +
                               std::to_string(out.abi_minor) + ", host ABI " +
                               std::to_string(HAL_ABI_VERSION_MAJOR) + "." +
                               std::to_string(HAL_ABI_VERSION_MINOR);
  if (out.abi_major != HAL_ABI_VERSION_MAJOR) {
    out.reason = "ABI mismatch: " + versions +
                 "; major versions must match (rebuild the plugin against hal " +
                 std::to_string(HAL_ABI_VERSION_MAJOR) + ".x)";
    return out;
  }
  if (table_size < HAL_PLUGIN_API_SIZE_1_0) {
    out.reason = "function table of " + std::to_string(table_size) +
                 " bytes is shorter than ABI 1.0's " + std::to_string(HAL_PLUGIN_API_SIZE_1_0) +
                 " bytes (" + versions + ")";
    return out;
  }
  if (out.name.empty() || !valid_prefix(out.name.c_str())) {
    out.reason = "plugin name '" + out.name + "' is empty or not [a-z0-9_]+";
    return out;
  }
  if (auto missing = missing_required(api); !missing.empty()) {
    std::string m;
    for (const auto& s : missing) m += (m.empty() ? "" : ", ") + s;
    out.reason = "required entries missing from the function table: " + m;
    return out;
  }
  if (std::string why = incomplete_channel_entries(api); !why.empty()) {
    out.reason = why;
    return out;
  }
  return out;
}

std::string check_device_info(const hal_device_info& ci, uint32_t i, uint32_t count,
                              const std::string& backend, DeviceInfo* out,
                              std::vector<hal_link_info>* links) {
  if (!valid_prefix(ci.id_prefix))
    return "device " + std::to_string(i) + " has id prefix '" + c_str_or(ci.id_prefix) +
           "', which is empty or not [a-z0-9_]+";
  if (!(ci.memory_bandwidth_bytes_per_s >= 0) || !std::isfinite(ci.memory_bandwidth_bytes_per_s))
    return "device " + std::to_string(i) +
           " reports a memory bandwidth that is negative or not finite";
  if ((ci.num_peak_flops && !ci.peak_flops) || (ci.num_links && !ci.links) ||
      (ci.num_properties && !ci.properties))
    return "device " + std::to_string(i) + " reports arrays without storage";
  // Element sizes (ABI 1.2): a plugin's elements may be longer than ours (fields appended
  // later); never shorter than the 1.0 layout this host reads.
  auto element_size = [&](size_t field_offset, size_t field_value, size_t ours) {
    const bool present = field_offset + sizeof(size_t) <= ci.struct_size && field_value != 0;
    return present ? field_value : ours;
  };
  const size_t flops_size = element_size(offsetof(hal_device_info, peak_flops_size),
                                         ci.peak_flops_size, sizeof(hal_dtype_flops));
  const size_t link_size =
      element_size(offsetof(hal_device_info, link_size), ci.link_size, sizeof(hal_link_info));
  const size_t property_size = element_size(offsetof(hal_device_info, property_size),
                                            ci.property_size, sizeof(hal_property));
  if (flops_size < sizeof(hal_dtype_flops) || link_size < sizeof(hal_link_info) ||
      property_size < sizeof(hal_property))
    return "device " + std::to_string(i) + " reports array elements smaller than ABI 1.0's";
  auto at = [](const auto* base, size_t k, size_t size) {
    return reinterpret_cast<decltype(base)>(reinterpret_cast<const char*>(base) + k * size);
  };
  DeviceInfo info;
  info.id_prefix = ci.id_prefix;
  info.backend = backend;
  const int32_t kind = enum_value(ci.kind);
  info.kind = (kind >= HAL_DEVICE_KIND_CPU && kind <= HAL_DEVICE_KIND_OTHER) ? DeviceKind(kind)
                                                                             : DeviceKind::kOther;
  info.vendor = c_str_or(ci.vendor);
  info.name = c_str_or(ci.name);
  info.memory_kind = c_str_or(ci.memory_kind);
  info.memory_bytes = ci.memory_bytes;
  info.memory_bandwidth_bytes_per_s = ci.memory_bandwidth_bytes_per_s;
  for (size_t k = 0; k < ci.num_peak_flops; ++k) {
    const hal_dtype_flops& f = *at(ci.peak_flops, k, flops_size);
    const int32_t dtype = enum_value(f.dtype);
    if (dtype > HAL_DTYPE_INVALID && dtype < kDTypeCount && f.flops_per_s >= 0 &&
        std::isfinite(f.flops_per_s))
      info.peak_flops[DType(dtype)] = f.flops_per_s;
  }
  info.sram_bytes = ci.sram_bytes;
  info.compute_units = ci.compute_units;
  info.clock_hz = ci.clock_hz;
  info.launch_overhead_s = ci.launch_overhead_s;
  for (size_t k = 0; k < ci.num_properties; ++k) {
    const hal_property& p = *at(ci.properties, k, property_size);
    if (p.key) info.properties.emplace_back(p.key, c_str_or(p.value));
  }
  std::vector<hal_link_info> raw;
  for (size_t k = 0; k < ci.num_links; ++k) {
    const hal_link_info& l = *at(ci.links, k, link_size);
    if (l.peer_index < -1 || l.peer_index >= int32_t(count))
      return "device " + std::to_string(i) + " lists a link to device index " +
             std::to_string(l.peer_index) + " of " + std::to_string(count);
    if (!(l.bandwidth_bytes_per_s >= 0) || !(l.latency_s >= 0))
      return "device " + std::to_string(i) + " lists a link with negative figures";
    raw.push_back(l);
  }
  *out = std::move(info);
  *links = std::move(raw);
  return "";
}

}  // namespace hal::detail
