// Internal: one loaded plugin and the helpers the host wrappers share.
#pragma once

#include <cstddef>
#include <string>

#include "hal/plugin_abi.h"
#include "hal/status.h"

namespace hal::detail {

struct LoadedPlugin {
  std::string path;
  std::string name;
  void* dl_handle = nullptr;
  const hal_plugin_api* api = nullptr;
  hal_plugin* plugin = nullptr;
  size_t api_size = 0;  // the table's struct_size as the plugin wrote it

  // True when the plugin's table has `entry` and it is set.
  template <typename F>
  bool has(F hal_plugin_api::*entry, size_t offset) const {
    return offset + sizeof(F) <= api_size && api->*entry != nullptr;
  }

  // Converts (and frees) a plugin error into a Status prefixed by `context`, with the
  // details the error carries (plugins of ABI 1.2 on: error_get_detail).
  Status take_error(hal_error* error, const std::string& context) const;
};

#define HAL_PLUGIN_HAS(plugin, entry) \
  (plugin).has(&hal_plugin_api::entry, offsetof(hal_plugin_api, entry))

inline Status LoadedPlugin::take_error(hal_error* error, const std::string& context) const {
  if (!error) return ok_status();
  const hal_status_code code = api->error_code(error);
  const char* msg = api->error_message(error);
  std::string message = msg ? msg : "";
  StatusDetail detail;
  if (HAL_PLUGIN_HAS(*this, error_get_detail)) {
    hal_error_detail d{};
    d.struct_size = sizeof(d);
    api->error_get_detail(error, &d);
    if (HAL_ABI_HAS_FIELD(hal_error_detail, command_tag, d.struct_size) &&
        (d.fields & HAL_ERROR_DETAIL_COMMAND_TAG))
      detail.command_tag = d.command_tag;
  }
  api->error_destroy(error);
  StatusCode c = (code >= HAL_STATUS_OK && code <= HAL_STATUS_ABORTED) ? StatusCode(code)
                                                                       : StatusCode::kInternal;
  if (c == StatusCode::kOk) c = StatusCode::kInternal;
  return Status(c, context.empty() ? message : context + ": " + message, detail);
}

}  // namespace hal::detail
