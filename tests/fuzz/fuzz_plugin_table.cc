// Fuzzes what the host reads from a plugin (hal/src/plugin_checks.h, the code the loader
// in platform.cc runs): the function table the entry point returns, then one device
// report. The input decides the table's struct_size (the table is allocated with exactly
// that many bytes, so ASan catches a host read past it), its ABI version and name, which
// required entries are NULL, and the device report's strings, figures (any bit pattern:
// NaN, infinities, negatives), kind and dtype values (any integer a C plugin can store),
// and its arrays (each allocated with exactly its stated length, or NULL).
// Properties: never crashes; an accepted table has ABI major 1, a [a-z0-9_]+ name and
// every required entry; an accepted device has a valid prefix, a finite non-negative
// bandwidth, only known dtypes with finite non-negative peaks, and links to [-1, count).
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "plugin_checks.h"

using namespace hal;

namespace {

void any_entry() {}

void fuzz_table(fuzz::ByteReader& in) {
  const size_t full = sizeof(hal_plugin_api);
  // struct_size anywhere from 0 to a little past the current table (newer plugins).
  const size_t size = in.u32() % (full + 2 * sizeof(void*) + 1);
  const size_t alloc = std::max(size, sizeof(size_t));  // struct_size itself is always read
  std::unique_ptr<unsigned char[]> bytes(new unsigned char[alloc]);
  // Every pointer-sized slot: NULL or some function (never called by the checks).
  for (size_t off = 0; off + sizeof(void*) <= alloc; off += sizeof(void*)) {
    void (*fn)() = (in.u8() % 8 == 0) ? nullptr : &any_entry;
    std::memcpy(bytes.get() + off, &fn, sizeof(fn));
  }
  const size_t struct_size = size;
  std::memcpy(bytes.get(), &struct_size, sizeof(struct_size));
  const std::string name = in.str(), version = in.str();
  auto put = [&](size_t offset, const void* value, size_t n) {
    if (offset + n <= alloc) std::memcpy(bytes.get() + offset, value, n);
  };
  const uint32_t major = (in.u8() % 4 == 0) ? in.u32() : HAL_ABI_VERSION_MAJOR;
  const uint32_t minor = in.u32() % 4;
  put(offsetof(hal_plugin_api, abi_major), &major, sizeof(major));
  put(offsetof(hal_plugin_api, abi_minor), &minor, sizeof(minor));
  const char* name_ptr = (in.u8() % 8 == 0) ? nullptr : name.c_str();
  const char* version_ptr = (in.u8() % 8 == 0) ? nullptr : version.c_str();
  put(offsetof(hal_plugin_api, plugin_name), &name_ptr, sizeof(name_ptr));
  put(offsetof(hal_plugin_api, plugin_version), &version_ptr, sizeof(version_ptr));

  const auto* api = reinterpret_cast<const hal_plugin_api*>(bytes.get());
  const detail::TableCheck c = detail::check_plugin_table(api);
  if (c.reason.empty()) {
    FUZZ_CHECK(size >= HAL_PLUGIN_API_SIZE_1_0, "accepted tables hold ABI 1.0");
    FUZZ_CHECK(c.abi_major == HAL_ABI_VERSION_MAJOR, "accepted tables have our major");
    FUZZ_CHECK(detail::valid_prefix(c.name.c_str()), c.name);
  }
}

void fuzz_device(fuzz::ByteReader& in) {
  const uint32_t count = 1 + in.u8() % 8;
  const uint32_t index = in.u8() % count;
  hal_device_info ci{};
  ci.struct_size = sizeof(ci);
  std::vector<std::string> strings;
  strings.reserve(64);  // c_str() pointers below must stay put
  auto maybe_str = [&]() -> const char* {
    if (in.u8() % 8 == 0) return nullptr;
    strings.push_back(in.str());
    return strings.back().c_str();
  };
  ci.id_prefix = maybe_str();
  // Any value a plugin written in C could store in the enum.
  const int32_t kind = int32_t(in.u32());
  std::memcpy(&ci.kind, &kind, sizeof(kind));
  ci.vendor = maybe_str();
  ci.name = maybe_str();
  ci.memory_kind = maybe_str();
  ci.memory_bytes = in.u64();
  ci.memory_bandwidth_bytes_per_s = in.f64();
  ci.sram_bytes = in.u64();
  ci.compute_units = in.u32();
  ci.clock_hz = in.f64();
  ci.launch_overhead_s = in.f64();

  // Arrays of exactly their stated length; a count without storage now and then.
  const size_t n_flops = in.u8() % 6, n_links = in.u8() % 6, n_props = in.u8() % 6;
  std::unique_ptr<hal_dtype_flops[]> flops(n_flops ? new hal_dtype_flops[n_flops] : nullptr);
  for (size_t k = 0; k < n_flops; ++k) {
    const int32_t dtype = int32_t(in.u32() % 64) - 8;
    std::memcpy(&flops[k].dtype, &dtype, sizeof(dtype));
    flops[k].flops_per_s = in.f64();
  }
  std::unique_ptr<hal_link_info[]> links(n_links ? new hal_link_info[n_links] : nullptr);
  for (size_t k = 0; k < n_links; ++k) {
    links[k].peer_index = int32_t(in.u8()) - 3;
    links[k].kind = maybe_str();
    links[k].bandwidth_bytes_per_s = in.f64();
    links[k].latency_s = in.f64();
  }
  std::unique_ptr<hal_property[]> props(n_props ? new hal_property[n_props] : nullptr);
  for (size_t k = 0; k < n_props; ++k) {
    props[k].key = maybe_str();
    props[k].value = maybe_str();
  }
  const uint8_t drop = in.u8();
  ci.peak_flops = (drop & 1) ? nullptr : flops.get();
  ci.num_peak_flops = n_flops;
  ci.links = (drop & 2) ? nullptr : links.get();
  ci.num_links = n_links;
  ci.properties = (drop & 4) ? nullptr : props.get();
  ci.num_properties = n_props;

  DeviceInfo info;
  std::vector<hal_link_info> raw;
  const std::string why = detail::check_device_info(ci, index, count, "fuzz", &info, &raw);
  if (!why.empty()) return;
  FUZZ_CHECK(detail::valid_prefix(info.id_prefix.c_str()), info.id_prefix);
  FUZZ_CHECK(
      std::isfinite(info.memory_bandwidth_bytes_per_s) && info.memory_bandwidth_bytes_per_s >= 0,
      "bandwidth");
  for (const auto& [dtype, peak] : info.peak_flops)
    FUZZ_CHECK(int(dtype) > 0 && int(dtype) < int(kDTypeCount) && std::isfinite(peak) && peak >= 0,
               "peak flops");
  for (const hal_link_info& l : raw)
    FUZZ_CHECK(l.peer_index >= -1 && l.peer_index < int32_t(count), "link peer");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ByteReader in(data, size);
  if (in.u8() & 1)
    fuzz_table(in);
  else
    fuzz_device(in);
  return 0;
}
