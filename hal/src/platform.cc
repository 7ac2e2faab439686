// Plugin discovery, loading and version checks (the policy is in hal/plugin_abi.h).
#include "hal/platform.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "loaded_plugin.h"
#include "plugin_checks.h"

#ifndef HAL_INSTALL_PLUGIN_DIR
#define HAL_INSTALL_PLUGIN_DIR ""
#endif

namespace hal {

namespace {

bool is_directory(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// Plugin files in a directory, sorted by name for a stable order.
std::vector<std::string> scan_directory(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n.rfind("libhal_plugin_", 0) == 0 && n.size() > 3 && n.compare(n.size() - 3, 3, ".so") == 0)
      out.push_back(dir + "/" + n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> split_path_list(const char* s) {
  std::vector<std::string> out;
  if (!s) return out;
  std::string cur;
  for (const char* p = s;; ++p) {
    if (*p == ':' || *p == '\0') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      if (*p == '\0') break;
    } else {
      cur += *p;
    }
  }
  return out;
}

void host_log(hal_log_level level, const char* plugin, const char* message) {
  static const char* names[] = {"debug", "info", "warning", "error"};
  const char* env = std::getenv("HAL_LOG");
  const int threshold = env ? std::atoi(env) : int(HAL_LOG_WARNING);
  if (int(level) < threshold) return;
  std::fprintf(stderr, "[hal %s] %s: %s\n", names[std::clamp(int(level), 0, 3)],
               plugin ? plugin : "?", message ? message : "");
}

const hal_host_api kHostApi = {sizeof(hal_host_api), HAL_ABI_VERSION_MAJOR, HAL_ABI_VERSION_MINOR,
                               &host_log};

std::string c_str_or(const char* s, const char* fallback = "") { return s ? s : fallback; }

}  // namespace

std::string_view plugin_state_name(PluginState state) {
  switch (state) {
    case PluginState::kLoaded:
      return "loaded";
    case PluginState::kRefused:
      return "refused";
    case PluginState::kShadowed:
      return "shadowed";
    case PluginState::kNotSelected:
      return "not selected";
  }
  return "unknown";
}

std::string Platform::default_plugin_dir() {
  Dl_info info;
  if (::dladdr(reinterpret_cast<void*>(&split_path_list), &info) && info.dli_fname) {
    std::string lib = info.dli_fname;
    const size_t slash = lib.rfind('/');
    if (slash != std::string::npos) {
      const std::string dir = lib.substr(0, slash) + "/hal/plugins";
      if (is_directory(dir)) return dir;
    }
  }
  return HAL_INSTALL_PLUGIN_DIR;
}

Platform::~Platform() {
  devices_.clear();
  for (auto& p : plugins_) {
    if (p->plugin) p->api->plugin_destroy(p->plugin);
    // Loaded plugins stay mapped: their runtimes (thread pools, drivers) may keep
    // threads that would outlive an unmapped library.
  }
}

Result<std::unique_ptr<Platform>> Platform::create(PlatformOptions options) {
  std::unique_ptr<Platform> platform(new Platform());
  auto add_path = [&](const std::string& path, const std::string& origin) {
    if (is_directory(path)) {
      for (const std::string& f : scan_directory(path))
        platform->load_candidate(f, origin, options);
    } else if (exists(path)) {
      platform->load_candidate(path, origin, options);
    } else {
      PluginReport r;
      r.path = path;
      r.origin = origin;
      r.state = PluginState::kRefused;
      r.reason = "no such file or directory";
      platform->reports_.push_back(r);
    }
  };
  for (const std::string& p : options.plugin_paths) add_path(p, "explicit");
  if (options.use_env_plugin_path)
    for (const std::string& p : split_path_list(std::getenv("HAL_PLUGIN_PATH")))
      add_path(p, "HAL_PLUGIN_PATH");
  if (options.use_default_plugin_dir) {
    const std::string dir = default_plugin_dir();
    if (!dir.empty() && is_directory(dir)) add_path(dir, "default");
  }
  for (const auto& [name, opts] : options.plugin_options) {
    bool known = false;
    for (const PluginReport& r : platform->reports_) known |= r.name == name;
    if (!known) {
      std::string names;
      for (const PluginReport& r : platform->reports_)
        if (!r.name.empty()) names += (names.empty() ? "" : ", ") + r.name;
      return invalid_argument("options were given for plugin '" + name +
                              "', but no plugin of that name was found (found: " +
                              (names.empty() ? "none" : names) + ")");
    }
  }
  return platform;
}

void Platform::load_candidate(const std::string& path, const std::string& origin,
                              const PlatformOptions& options) {
  PluginReport report;
  report.path = path;
  report.origin = origin;
  auto reject = [&](const std::string& why, PluginState state = PluginState::kRefused) {
    report.state = state;
    report.loaded = false;
    report.reason = why;
    reports_.push_back(report);
  };

  for (const auto& p : plugins_)
    if (p->path == path) return;  // the same file listed twice

  ::dlerror();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    return reject(std::string("dlopen failed: ") + c_str_or(::dlerror(), "unknown error"));
  auto close = [&] { ::dlclose(handle); };

  void* sym = ::dlsym(handle, HAL_PLUGIN_ENTRY_POINT);
  if (!sym) {
    close();
    return reject("no entry point '" HAL_PLUGIN_ENTRY_POINT "' (not a HAL plugin)");
  }
  auto get_api = reinterpret_cast<hal_plugin_get_api_fn>(sym);
  const hal_plugin_api* api = get_api(HAL_ABI_VERSION_MAJOR, HAL_ABI_VERSION_MINOR);
  if (!api) {
    close();
    return reject("entry point returned no function table");
  }
  // Read before any close(): the table lives in the library's memory.
  detail::TableCheck table = detail::check_plugin_table(api);
  if (table.header_read) {
    report.abi_major = table.abi_major;
    report.abi_minor = table.abi_minor;
    report.name = table.name;
    report.version = table.version;
  }
  if (!table.reason.empty()) {
    close();
    return reject(table.reason);
  }
  if (!options.only_plugins.empty() &&
      std::find(options.only_plugins.begin(), options.only_plugins.end(), report.name) ==
          options.only_plugins.end()) {
    close();
    std::string requested;
    for (const auto& n : options.only_plugins) requested += (requested.empty() ? "" : ", ") + n;
    return reject("not selected (only " + requested + " requested)", PluginState::kNotSelected);
  }
  for (const auto& p : plugins_) {
    if (p->name == report.name) {
      close();
      return reject(
          "shadowed: a plugin named '" + report.name + "' was already loaded from " + p->path,
          PluginState::kShadowed);
    }
  }

  auto loaded = std::make_unique<detail::LoadedPlugin>();
  loaded->path = path;
  loaded->name = report.name;
  loaded->dl_handle = handle;
  loaded->api = api;
  loaded->api_size = api->struct_size;

  std::vector<hal_option> c_options;
  if (auto it = options.plugin_options.find(report.name); it != options.plugin_options.end())
    for (const auto& [k, v] : it->second) c_options.push_back({k.c_str(), v.c_str()});
  hal_plugin_create_args args{};
  args.struct_size = sizeof(args);
  args.host = &kHostApi;
  args.options = c_options.data();
  args.num_options = c_options.size();
  Status created = loaded->take_error(api->plugin_create(&args), "");
  if (!created.ok()) {
    close();
    return reject("plugin_create failed: " + created.to_string());
  }
  if (!args.plugin) {
    close();
    return reject("plugin_create succeeded but returned no plugin");
  }
  loaded->plugin = args.plugin;
  auto fail_devices = [&](const std::string& why) {
    api->plugin_destroy(loaded->plugin);
    loaded->plugin = nullptr;
    close();
    reject("inconsistent device report: " + why);
  };

  uint32_t count = 0;
  if (Status s = loaded->take_error(api->device_count(args.plugin, &count), ""); !s.ok())
    return fail_devices("device_count failed: " + s.to_string());
  if (count > 4096) return fail_devices("device_count says " + std::to_string(count));

  struct Pending {
    hal_device* handle;
    DeviceInfo info;
    std::vector<hal_link_info> links;
  };
  std::vector<Pending> pending;
  std::set<hal_device*> seen;
  std::map<std::string, int> next_index;
  for (const auto& d : devices_) {
    auto& n = next_index[d->info().id_prefix];
    n = std::max(n, int(std::stoi(d->id().substr(d->id().find(':') + 1))) + 1);
  }
  for (uint32_t i = 0; i < count; ++i) {
    hal_device* dh = nullptr;
    if (Status s = loaded->take_error(api->device_get(args.plugin, i, &dh), ""); !s.ok())
      return fail_devices("device_get(" + std::to_string(i) + ") failed: " + s.to_string());
    if (!dh) return fail_devices("device_get(" + std::to_string(i) + ") returned no device");
    if (!seen.insert(dh).second)
      return fail_devices("device " + std::to_string(i) + " is the same handle as an earlier one");
    hal_device_info ci{};
    ci.struct_size = sizeof(ci);
    if (Status s = loaded->take_error(api->device_get_info(dh, &ci), ""); !s.ok())
      return fail_devices("device_get_info(" + std::to_string(i) + ") failed: " + s.to_string());
    Pending p;
    p.handle = dh;
    if (std::string why = detail::check_device_info(ci, i, count, report.name, &p.info, &p.links);
        !why.empty())
      return fail_devices(why);
    pending.push_back(std::move(p));
  }
  // Assign ids, then translate peer indices into ids.
  for (Pending& p : pending)
    p.info.id = p.info.id_prefix + ":" + std::to_string(next_index[p.info.id_prefix]++);
  for (Pending& p : pending) {
    for (const hal_link_info& l : p.links) {
      LinkInfo li;
      li.peer_index = l.peer_index;
      li.peer = l.peer_index < 0 ? "host" : pending[size_t(l.peer_index)].info.id;
      li.kind = c_str_or(l.kind, "unknown");
      li.bandwidth_bytes_per_s = l.bandwidth_bytes_per_s;
      li.latency_s = l.latency_s;
      p.info.links.push_back(li);
    }
    report.device_ids.push_back(p.info.id);
  }
  for (Pending& p : pending) {
    devices_.push_back(
        std::unique_ptr<Device>(new Device(this, loaded.get(), p.handle, std::move(p.info))));
    device_ptrs_.push_back(devices_.back().get());
  }
  report.state = PluginState::kLoaded;
  report.loaded = true;
  if (report.abi_minor != HAL_ABI_VERSION_MINOR)
    report.reason =
        "loaded (plugin ABI " + std::to_string(report.abi_major) + "." +
        std::to_string(report.abi_minor) + ", host ABI " + std::to_string(HAL_ABI_VERSION_MAJOR) +
        "." + std::to_string(HAL_ABI_VERSION_MINOR) + ": " +
        (report.abi_minor < HAL_ABI_VERSION_MINOR ? "older plugin; newer entries absent"
                                                  : "newer plugin; its extra entries unused") +
        ")";
  else
    report.reason = "loaded";
  reports_.push_back(report);
  plugins_.push_back(std::move(loaded));
}

Result<Device*> Platform::device(std::string_view id) const {
  for (Device* d : device_ptrs_)
    if (d->id() == id) return d;
  std::string known;
  for (Device* d : device_ptrs_) known += (known.empty() ? "" : ", ") + d->id();
  // A device is often missing because its plugin was refused (a bad option, a wrong
  // ABI): name those plugins and why, so the user need not run 'halctl plugins'.
  std::string refused;
  for (const PluginReport& r : reports_) {
    if (!r.refused()) continue;
    refused += "; plugin " + (r.name.empty() ? r.path : r.name) + " was refused: " + r.reason;
  }
  return not_found("unknown device '" + std::string(id) +
                   "' (devices: " + (known.empty() ? "none" : known) + ")" + refused);
}

LinkInfo Platform::link(const Device* from, const Device* to) const {
  if (from == to) {
    LinkInfo l;
    l.peer = from ? from->id() : "host";
    l.kind = from ? "device-memory" : "host-memory";
    l.bandwidth_bytes_per_s = from ? from->info().memory_bandwidth_bytes_per_s : 0;
    return l;
  }
  if (!from) {
    LinkInfo l = to->info().host_link();
    return l;
  }
  if (!to) return from->info().host_link();
  for (const LinkInfo& l : from->info().links)
    if (l.peer == to->id()) return l;
  const LinkInfo a = from->info().host_link();
  const LinkInfo b = to->info().host_link();
  LinkInfo staged;
  staged.peer = to->id();
  staged.kind = "host-staged";
  staged.bandwidth_bytes_per_s = std::min(a.bandwidth_bytes_per_s, b.bandwidth_bytes_per_s);
  staged.latency_s = a.latency_s + b.latency_s;
  return staged;
}

}  // namespace hal
