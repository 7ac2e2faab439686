// halctl plugins: every plugin candidate the platform considered, in search order: its
// path, where it was found, ABI version, devices, and whether it loaded or why not.
#include <fmt/format.h>

#include <cstdlib>

#include "common.h"
#include "hal/plugin_abi.h"

namespace halctl {

int cmd_plugins(const Args& args) {
  CommonOptions common;
  po::options_description desc("halctl plugins options");
  add_common_options(desc, common);
  po::variables_map vm;
  if (auto stop = parse_args("plugins", args, desc, {}, vm, "halctl plugins [--json]"))
    return *stop;

  auto options = platform_options(common);
  if (!options.ok()) return report_error("plugins", options.status());
  auto platform = hal::Platform::create(*options);
  if (!platform.ok()) return report_error("plugins", platform.status());

  // The search order Platform documents, with the directories this run used.
  std::vector<std::pair<std::string, std::string>> search;  // origin, path
  for (const std::string& path : options->plugin_paths) search.emplace_back("explicit", path);
  if (options->use_env_plugin_path)
    if (const char* env = std::getenv("HAL_PLUGIN_PATH"))
      for (const std::string& dir : split_list(env, ':'))
        search.emplace_back("HAL_PLUGIN_PATH", dir);
  if (options->use_default_plugin_dir)
    search.emplace_back("default", hal::Platform::default_plugin_dir());

  const auto& reports = (*platform)->plugin_reports();
  if (common.json) {
    nlohmann::json out;
    out["host_abi"] = fmt::format("{}.{}", HAL_ABI_VERSION_MAJOR, HAL_ABI_VERSION_MINOR);
    out["search_order"] = nlohmann::json::array();
    for (const auto& [origin, path] : search)
      out["search_order"].push_back({{"origin", origin}, {"path", path}});
    out["plugins"] = nlohmann::json::array();
    for (const hal::PluginReport& r : reports) {
      nlohmann::json j = {
          {"path", r.path},           {"origin", r.origin},
          {"name", r.name},           {"version", r.version},
          {"abi_major", r.abi_major}, {"abi_minor", r.abi_minor},
          {"loaded", r.loaded},       {"reason", r.reason},
          {"devices", r.device_ids},  {"state", std::string(hal::plugin_state_name(r.state))}};
      // An ABI version is only known once the entry point returned a table.
      j["abi_version"] = r.name.empty() && r.abi_major == 0
                             ? nlohmann::json()
                             : nlohmann::json(fmt::format("{}.{}", r.abi_major, r.abi_minor));
      out["plugins"].push_back(j);
    }
    print_json(out);
    return 0;
  }

  fmt::print("host plugin ABI {}.{}\nsearch order:\n", HAL_ABI_VERSION_MAJOR,
             HAL_ABI_VERSION_MINOR);
  for (size_t i = 0; i < search.size(); ++i)
    fmt::print("  {}. {:<16} {}\n", i + 1, search[i].first, search[i].second);
  if (reports.empty()) fmt::print("\nno plugin candidates found\n");
  for (const hal::PluginReport& r : reports) {
    fmt::print("\n{} {}\n", r.loaded ? "loaded  " : "REJECTED", r.path);
    fmt::print("  origin   {}\n", r.origin);
    if (!r.name.empty())
      fmt::print("  plugin   {} {} (ABI {}.{})\n", r.name, r.version, r.abi_major, r.abi_minor);
    if (!r.device_ids.empty()) {
      std::string ids;
      for (const std::string& id : r.device_ids) ids += (ids.empty() ? "" : ", ") + id;
      fmt::print("  devices  {}\n", ids);
    } else if (r.loaded) {
      // A loaded plugin may present nothing (the CUDA plugin on a machine without a GPU).
      fmt::print("  devices  none (0 devices)\n");
    }
    fmt::print("  {}   {}\n", r.loaded ? "note" : "why ", r.reason);
  }
  return 0;
}

}  // namespace halctl
