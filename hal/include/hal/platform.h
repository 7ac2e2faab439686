// hal/platform.h: finds and loads backend plugins and lists their devices.
//
// Search order (first plugin of a given name wins; later ones are reported as
// shadowed):
//   1. PlatformOptions::plugin_paths: files (loaded whatever their name) or directories,
//   2. each directory of the HAL_PLUGIN_PATH environment variable (':'-separated),
//   3. the installation's plugin directory: <dir of libhal.so>/hal/plugins (the same
//      layout in the build tree and after `cmake --install`).
// In directories, files named libhal_plugin_*.so are candidates.
//
// Contract
// - A plugin that cannot be loaded (dlopen error, missing entry point, ABI major
//   mismatch, a table too short or missing a required entry, plugin_create failing,
//   inconsistent device reports) is rejected with a reason in plugin_reports(); the
//   platform and other plugins keep working. create() fails only on malformed options.
// - Device ids are "<prefix>:<n>", numbered per prefix in load order.
// - Objects made from devices (buffers, streams, events) must be destroyed before the
//   Platform.
//
// Threading: a Platform is immutable after create(); its methods are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hal/device.h"
#include "hal/device_info.h"
#include "hal/status.h"

namespace hal {

namespace detail {
struct LoadedPlugin;
}

struct PlatformOptions {
  std::vector<std::string> plugin_paths;
  bool use_env_plugin_path = true;   // HAL_PLUGIN_PATH
  bool use_default_plugin_dir = true;
  // Load only plugins with these names (empty = all).
  std::vector<std::string> only_plugins;
  // Options passed to a plugin's create call, keyed by plugin name, e.g.
  // {"npu_sim", {{"devices", "rebel-quad"}}}.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> plugin_options;
};

// What became of a plugin candidate (the reason text says why, for people).
enum class PluginState : uint8_t {
  kLoaded = 0,       // loaded; its devices are listed
  kRefused = 1,      // not loadable: a missing path, a file that is no plugin, an ABI
                     // mismatch, a bad table, a failing plugin_create or device report
  kShadowed = 2,     // a plugin of the same name was already loaded from another path
  kNotSelected = 3,  // left out by PlatformOptions::only_plugins
};
// "loaded", "refused", "shadowed", "not selected".
std::string_view plugin_state_name(PluginState state);

// What happened to one plugin candidate.
struct PluginReport {
  std::string path;
  std::string origin;  // "explicit", "HAL_PLUGIN_PATH", "default"
  std::string name;    // empty when the entry point could not be read
  std::string version;
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;
  PluginState state = PluginState::kRefused;
  bool loaded = false;  // state == kLoaded
  std::string reason;   // why not loaded (or notes for a loaded plugin)
  std::vector<std::string> device_ids;

  // Refused for a problem of its own (not shadowed or deselected): worth telling a user
  // whose device is missing.
  bool refused() const { return state == PluginState::kRefused; }
};

class Platform {
 public:
  static Result<std::unique_ptr<Platform>> create(PlatformOptions options = {});
  ~Platform();
  Platform(const Platform&) = delete;
  Platform& operator=(const Platform&) = delete;

  const std::vector<Device*>& devices() const { return device_ptrs_; }
  // By id ("cpu:0"); kNotFound listing the known ids otherwise.
  Result<Device*> device(std::string_view id) const;
  const std::vector<PluginReport>& plugin_reports() const { return reports_; }

  // The link data moves over from `from` to `to` (nullptr = host): the device's own
  // peer link when it lists one, else host-staged (kind "host-staged": the slower of
  // the two host links, latencies added).
  LinkInfo link(const Device* from, const Device* to) const;

  // The directory searched last (the installation's plugin directory).
  static std::string default_plugin_dir();

 private:
  Platform() = default;
  void load_candidate(const std::string& path, const std::string& origin,
                      const PlatformOptions& options);

  std::vector<std::unique_ptr<detail::LoadedPlugin>> plugins_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<Device*> device_ptrs_;
  std::vector<PluginReport> reports_;
};

}  // namespace hal
