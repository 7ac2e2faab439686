// Device selection from options, environment and config file (rules in npu_config.h).
#include "npu_config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hal/file_io.h"

namespace hal::npu_sim {

namespace {

using nlohmann::json;

const char* const kOptionKeys[] = {"devices", "config", "timing_only", "compute_precision",
                                   "faults"};

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool looks_like_path(const std::string& entry) {
  return entry.find('/') != std::string::npos ||
         (entry.size() > 5 && entry.compare(entry.size() - 5, 5, ".json") == 0);
}

std::string join_path(const std::string& base_dir, const std::string& path) {
  if (base_dir.empty() || path.empty() || path[0] == '/') return path;
  return base_dir + "/" + path;
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}

Result<DeviceSpec> spec_for_entry(const std::string& entry, const std::string& where,
                                  const std::string& base_dir) {
  if (looks_like_path(entry)) {
    Result<DeviceSpec> s = load_spec_file(join_path(base_dir, entry));
    if (!s.ok()) return s.status().with_context(where);
    return s;
  }
  Result<DeviceSpec> s = preset(entry);
  if (!s.ok())
    return invalid_argument(where + ": " + s.status().message() +
                            "; or give the path of a spec file (it contains '/' or ends in .json)");
  return s;
}

struct ConfigFile {
  std::optional<std::vector<DeviceSpec>> devices;
  std::optional<bool> timing_only;
  std::optional<ComputePrecision> precision;
  std::optional<std::vector<FaultSpec>> faults;
};

Result<ConfigFile> load_config_file(const std::string& path) {
  const std::string where = "config file " + path;
  HAL_ASSIGN_OR_RETURN(const std::string text,
                       read_regular_file(path, "config file", uint64_t(16) << 20));
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number too large for a double ("9e652").
    return invalid_argument(where + ": not valid JSON: " + e.what());
  }
  if (!doc.is_object())
    return invalid_argument(where +
                            ": expected a JSON object with \"devices\", \"timing_only\", "
                            "\"compute_precision\", \"faults\"");
  ConfigFile out;
  const std::string base = dir_of(path);
  for (const auto& [key, v] : doc.items()) {
    if (key == "devices") {
      std::vector<DeviceSpec> specs;
      if (v.is_string()) {
        HAL_ASSIGN_OR_RETURN(specs,
                             parse_device_list(v.get<std::string>(), where + ": devices", base));
      } else if (v.is_array()) {
        for (size_t i = 0; i < v.size(); ++i) {
          const json& e = v[i];
          const std::string item = where + ": devices[" + std::to_string(i) + "]";
          if (e.is_string()) {
            HAL_ASSIGN_OR_RETURN(DeviceSpec s,
                                 spec_for_entry(trim(e.get<std::string>()), item, base));
            specs.push_back(std::move(s));
          } else if (e.is_object()) {
            HAL_ASSIGN_OR_RETURN(DeviceSpec s, parse_spec(e.dump(), item));
            specs.push_back(std::move(s));
          } else {
            return invalid_argument(item +
                                    ": expected a preset name, a spec file path or an inline "
                                    "spec object, got " +
                                    std::string(e.type_name()));
          }
        }
      } else {
        return invalid_argument(where +
                                ": key 'devices': expected a list or a comma-separated string");
      }
      if (specs.empty()) return invalid_argument(where + ": key 'devices' lists no device");
      out.devices = std::move(specs);
    } else if (key == "timing_only") {
      if (!v.is_boolean())
        return invalid_argument(where + ": key 'timing_only': expected true or false");
      out.timing_only = v.get<bool>();
    } else if (key == "compute_precision") {
      auto p = v.is_string() ? parse_compute_precision(v.get<std::string>()) : std::nullopt;
      if (!p)
        return invalid_argument(where + ": key 'compute_precision': expected \"bf16\" or \"fp32\"");
      out.precision = p;
    } else if (key == "faults") {
      // One string ("npu:0:lost@op=9; npu:1:slow=2x") or a list of entries.
      std::string text;
      if (v.is_string()) {
        text = v.get<std::string>();
      } else if (v.is_array()) {
        for (size_t i = 0; i < v.size(); ++i) {
          if (!v[i].is_string())
            return invalid_argument(where + ": faults[" + std::to_string(i) +
                                    "]: expected a string like \"npu:0:lost@op=120\"");
          text += v[i].get<std::string>() + ";";
        }
      } else {
        return invalid_argument(where + ": key 'faults': expected a string or a list of strings");
      }
      HAL_ASSIGN_OR_RETURN(out.faults, parse_faults(text, where + ": faults"));
    } else {
      return invalid_argument(where + ": key '" + key +
                              "' is unknown (keys: devices, timing_only, compute_precision, "
                              "faults)");
    }
  }
  return out;
}

}  // namespace

std::optional<bool> parse_bool(const std::string& text) {
  std::string t = trim(text);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "1" || t == "true" || t == "yes" || t == "on") return true;
  if (t == "0" || t == "false" || t == "no" || t == "off") return false;
  return std::nullopt;
}

ConfigInputs ConfigInputs::from_environment(std::map<std::string, std::string> plugin_options) {
  ConfigInputs in;
  in.plugin_options = std::move(plugin_options);
  auto env = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    return std::string(v);
  };
  in.env_devices = env("HAL_NPU_SIM");
  in.env_config = env("HAL_NPU_SIM_CONFIG");
  in.env_timing_only = env("HAL_NPU_SIM_TIMING_ONLY");
  in.env_precision = env("HAL_NPU_SIM_PRECISION");
  in.env_faults = env("HAL_NPU_SIM_FAULTS");
  return in;
}

Result<std::vector<DeviceSpec>> parse_device_list(const std::string& list, const std::string& where,
                                                  const std::string& base_dir) {
  std::vector<DeviceSpec> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    item = trim(item);
    if (item.empty()) continue;
    HAL_ASSIGN_OR_RETURN(DeviceSpec s, spec_for_entry(item, where, base_dir));
    out.push_back(std::move(s));
  }
  if (out.empty())
    return invalid_argument(where + ": '" + list +
                            "' names no device (e.g. \"atom\" or \"atom,atom\")");
  return out;
}

Result<SimConfig> resolve_config(const ConfigInputs& in) {
  for (const auto& [k, v] : in.plugin_options) {
    if (std::find(std::begin(kOptionKeys), std::end(kOptionKeys), k) == std::end(kOptionKeys))
      return invalid_argument("npu_sim: plugin option '" + k +
                              "' is unknown (options: devices, config, timing_only, "
                              "compute_precision, faults)");
  }
  auto option = [&](const char* k) -> std::optional<std::string> {
    auto it = in.plugin_options.find(k);
    if (it == in.plugin_options.end()) return std::nullopt;
    return it->second;
  };

  ConfigFile file;
  std::string config_path;
  if (auto c = option("config")) {
    config_path = *c;
  } else if (in.env_config && !in.env_config->empty()) {
    config_path = *in.env_config;
  }
  if (!config_path.empty()) {
    Result<ConfigFile> f = load_config_file(config_path);
    if (!f.ok()) return f.status().with_context("npu_sim");
    file = std::move(*f);
  }

  SimConfig cfg;
  if (auto d = option("devices")) {
    HAL_ASSIGN_OR_RETURN(cfg.cards, parse_device_list(*d, "npu_sim: plugin option 'devices'"));
    cfg.devices_from = "plugin option 'devices'";
  } else if (in.env_devices && !trim(*in.env_devices).empty()) {
    HAL_ASSIGN_OR_RETURN(cfg.cards, parse_device_list(*in.env_devices, "npu_sim: HAL_NPU_SIM"));
    cfg.devices_from = "HAL_NPU_SIM";
  } else if (file.devices) {
    cfg.cards = *file.devices;
    cfg.devices_from = "config file " + config_path;
  } else {
    HAL_ASSIGN_OR_RETURN(DeviceSpec atom, preset("atom"));
    cfg.cards.push_back(std::move(atom));
    cfg.devices_from = "default";
  }

  auto boolean = [](const std::string& text, const std::string& where) -> Result<bool> {
    auto b = parse_bool(text);
    if (!b) return invalid_argument(where + ": '" + text + "' is not a boolean (true/false, 1/0)");
    return *b;
  };
  if (auto t = option("timing_only")) {
    HAL_ASSIGN_OR_RETURN(cfg.timing_only, boolean(*t, "npu_sim: plugin option 'timing_only'"));
  } else if (in.env_timing_only && !trim(*in.env_timing_only).empty()) {
    HAL_ASSIGN_OR_RETURN(cfg.timing_only,
                         boolean(*in.env_timing_only, "npu_sim: HAL_NPU_SIM_TIMING_ONLY"));
  } else if (file.timing_only) {
    cfg.timing_only = *file.timing_only;
  }

  auto precision = [](const std::string& text,
                      const std::string& where) -> Result<ComputePrecision> {
    auto p = parse_compute_precision(trim(text));
    if (!p) return invalid_argument(where + ": '" + text + "' is not \"bf16\" or \"fp32\"");
    return *p;
  };
  if (auto p = option("compute_precision")) {
    HAL_ASSIGN_OR_RETURN(ComputePrecision v,
                         precision(*p, "npu_sim: plugin option 'compute_precision'"));
    cfg.precision_override = v;
  } else if (in.env_precision && !trim(*in.env_precision).empty()) {
    HAL_ASSIGN_OR_RETURN(ComputePrecision v,
                         precision(*in.env_precision, "npu_sim: HAL_NPU_SIM_PRECISION"));
    cfg.precision_override = v;
  } else if (file.precision) {
    cfg.precision_override = file.precision;
  }
  if (cfg.precision_override)
    for (DeviceSpec& s : cfg.cards) s.compute_precision = *cfg.precision_override;

  if (auto f = option("faults")) {
    HAL_ASSIGN_OR_RETURN(cfg.faults, parse_faults(*f, "npu_sim: plugin option 'faults'"));
    cfg.faults_from = "plugin option 'faults'";
  } else if (in.env_faults && !trim(*in.env_faults).empty()) {
    HAL_ASSIGN_OR_RETURN(cfg.faults, parse_faults(*in.env_faults, "npu_sim: HAL_NPU_SIM_FAULTS"));
    cfg.faults_from = "HAL_NPU_SIM_FAULTS";
  } else if (file.faults) {
    cfg.faults = *file.faults;
    cfg.faults_from = "config file " + config_path;
  }
  return cfg;
}

}  // namespace hal::npu_sim
