// Internal: the host's checks of what a plugin hands it (its function table, then each
// device's report), as pure functions over that memory. The loader (platform.cc) and the
// fuzzer (tests/fuzz/fuzz_plugin_table.cc) run this same code, so what the fuzzer proves
// about it (no read outside the table's struct_size or an array's stated length, no crash
// on any figures) holds for the loader.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hal/device_info.h"
#include "hal/plugin_abi.h"

namespace hal::detail {

// What the host learned from a table's header; `reason` is empty when it is accepted.
struct TableCheck {
  std::string reason;
  bool header_read = false;  // abi_*, name and version below were read
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;
  std::string name;
  std::string version;
};

// Checks a table returned by a plugin's entry point (never null here). Reads struct_size
// first and nothing past it: the header fields only when struct_size covers them, the
// required entries only when it covers ABI 1.0. Refuses: a table too short for its
// header, another ABI major, shorter than ABI 1.0, a name not [a-z0-9_]+, missing
// required entries.
TableCheck check_plugin_table(const hal_plugin_api* api);

// Checks device `index` of the `count` a plugin reports and converts its report into
// `info` (id left empty: the platform numbers devices) and its raw links into `links`.
// Returns the reason it is inconsistent ("" when it is not): an id prefix not
// [a-z0-9_]+, a memory bandwidth that is negative or not finite, an array count without
// storage, a link to a device index outside [-1, count) or with negative figures. Peak
// figures of unknown dtypes or impossible values are dropped; an unknown kind is kOther.
// Reads each array only up to its stated length.
std::string check_device_info(const hal_device_info& ci, uint32_t index, uint32_t count,
                              const std::string& backend, DeviceInfo* info,
                              std::vector<hal_link_info>* links);

// True when `p` is a non-empty [a-z0-9_]+ string (plugin names and device id prefixes).
bool valid_prefix(const char* p);

}  // namespace hal::detail
