// Shared pieces of halctl's subcommands (see common.h).
#include "common.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <iostream>

namespace halctl {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// One number with an optional K/M/G suffix (binary multiples).
std::optional<uint64_t> parse_size(std::string_view text) {
  text = trim(text);
  uint64_t multiplier = 1;
  if (!text.empty()) {
    switch (std::toupper(static_cast<unsigned char>(text.back()))) {
      case 'K':
        multiplier = uint64_t(1) << 10;
        break;
      case 'M':
        multiplier = uint64_t(1) << 20;
        break;
      case 'G':
        multiplier = uint64_t(1) << 30;
        break;
      default:
        break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  if (value > UINT64_MAX / multiplier) return std::nullopt;
  return value * multiplier;
}

}  // namespace

void add_common_options(po::options_description& desc, CommonOptions& common) {
  desc.add_options()("help,h", "describe this command's options")(
      "json", po::bool_switch(&common.json), "machine-readable JSON on stdout")(
      "plugin-path", po::value<std::vector<std::string>>(&common.plugin_paths)->composing(),
      "plugin file or directory searched first (repeatable, or ':'-separated)")(
      "plugin-option", po::value<std::vector<std::string>>(&common.plugin_options)->composing(),
      "option for a plugin's create call, PLUGIN.KEY=VALUE, e.g. npu_sim.devices=atom,atom "
      "(repeatable)")("no-default-plugins", po::bool_switch(&common.no_default_plugins),
                      "load only --plugin-path plugins (skip HAL_PLUGIN_PATH and the "
                      "installation's plugin directory)");
}

std::optional<int> parse_args(std::string_view command, const Args& args,
                              const po::options_description& desc,
                              const po::positional_options_description& positional,
                              po::variables_map& vm, std::string_view usage_line) {
  try {
    po::store(po::command_line_parser(args).options(desc).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << usage_line << "\n\n" << desc << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(command, e.what());
  }
  return std::nullopt;
}

hal::Result<hal::PlatformOptions> platform_options(const CommonOptions& common) {
  hal::PlatformOptions options;
  for (const std::string& entry : common.plugin_paths)
    for (const std::string& path : split_list(entry, ':')) options.plugin_paths.push_back(path);
  if (common.no_default_plugins) {
    options.use_env_plugin_path = false;
    options.use_default_plugin_dir = false;
  }
  for (const std::string& entry : common.plugin_options) {
    const size_t eq = entry.find('=');
    const size_t dot = entry.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq || dot == 0 ||
        dot + 1 == eq)
      return hal::invalid_argument("--plugin-option '" + entry +
                                   "' is not PLUGIN.KEY=VALUE (e.g. npu_sim.devices=atom,atom)");
    options.plugin_options[entry.substr(0, dot)].emplace_back(entry.substr(dot + 1, eq - dot - 1),
                                                              entry.substr(eq + 1));
  }
  return options;
}

hal::Result<std::unique_ptr<hal::Platform>> open_platform(const CommonOptions& common) {
  HAL_ASSIGN_OR_RETURN(hal::PlatformOptions options, platform_options(common));
  return hal::Platform::create(std::move(options));
}

int exit_code_for(const hal::Status& status) {
  switch (status.code()) {
    case hal::StatusCode::kOk:
      return 0;
    case hal::StatusCode::kInvalidArgument:
    case hal::StatusCode::kNotFound:
    case hal::StatusCode::kAbiMismatch:
      return 2;
    default:
      return 1;
  }
}

int report_error(std::string_view command, const hal::Status& status) {
  std::fflush(stdout);
  fmt::print(stderr, "halctl {}: {}\n", command, status.to_string());
  return exit_code_for(status);
}

int usage_error(std::string_view command, std::string_view message) {
  std::fflush(stdout);
  fmt::print(stderr, "halctl {}: {}\n(see 'halctl {} --help')\n", command, message, command);
  return 2;
}

std::vector<std::string> split_list(std::string_view text, char separator) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view item = trim(text.substr(start, end - start));
    if (!item.empty()) out.emplace_back(item);
    start = end + 1;
  }
  return out;
}

hal::Result<std::vector<uint64_t>> parse_size_list(std::string_view text, std::string_view what) {
  std::vector<uint64_t> out;
  for (const std::string& item : split_list(text)) {
    const size_t dots = item.find("..");
    if (dots == std::string::npos) {
      const auto v = parse_size(item);
      if (!v) return hal::invalid_argument(fmt::format("{}: '{}' is not a size", what, item));
      out.push_back(*v);
      continue;
    }
    const auto lo = parse_size(std::string_view(item).substr(0, dots));
    const auto hi = parse_size(std::string_view(item).substr(dots + 2));
    if (!lo || !hi || *lo == 0 || *lo > *hi)
      return hal::invalid_argument(
          fmt::format("{}: '{}' is not a range LOW..HIGH with 0 < LOW <= HIGH", what, item));
    for (uint64_t v = *lo; v <= *hi; v *= 2) {
      out.push_back(v);
      if (v > UINT64_MAX / 2) break;
    }
  }
  if (out.empty()) return hal::invalid_argument(fmt::format("{}: no sizes given", what));
  return out;
}

hal::Result<std::vector<hal::DType>> parse_dtype_list(std::string_view text,
                                                      std::string_view what) {
  std::vector<hal::DType> out;
  for (const std::string& item : split_list(text)) {
    const auto t = hal::parse_dtype(item);
    if (!t) return hal::invalid_argument(fmt::format("{}: unknown dtype '{}'", what, item));
    out.push_back(*t);
  }
  if (out.empty()) return hal::invalid_argument(fmt::format("{}: no dtypes given", what));
  return out;
}

hal::Result<std::vector<int32_t>> parse_id_list(std::string_view text, std::string_view what) {
  std::vector<int32_t> ids;
  for (const std::string& item : split_list(text)) {
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || ptr != item.data() + item.size() || v < INT32_MIN || v > INT32_MAX)
      return hal::invalid_argument(fmt::format("{}: '{}' is not a token id", what, item));
    ids.push_back(int32_t(v));
  }
  if (ids.empty()) return hal::invalid_argument(fmt::format("{}: no token ids given", what));
  return ids;
}

hal::Result<std::vector<hal::Device*>> parse_device_list(const hal::Platform& platform,
                                                         std::string_view text) {
  std::vector<hal::Device*> out;
  for (const std::string& id : split_list(text)) {
    HAL_ASSIGN_OR_RETURN(hal::Device * d, platform.device(id));
    out.push_back(d);
  }
  if (out.empty()) return hal::invalid_argument("no devices given");
  return out;
}

std::string source_of(const hal::DeviceInfo& info, std::string_view field) {
  std::string name(field);
  for (;;) {
    const std::string value = info.property("source." + name);
    if (!value.empty()) return value;
    bool stripped = false;
    for (std::string_view suffix : {"_bytes_per_s", "_per_s", "_bytes", "_hz", "_s"}) {
      if (name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        name.resize(name.size() - suffix.size());
        stripped = true;
        break;
      }
    }
    if (!stripped) break;
  }
  const std::string general = info.property("source");
  return general.empty() ? "unstated" : general;
}

nlohmann::json peak_flops_json(const hal::DeviceInfo& info) {
  nlohmann::json flops = nlohmann::json::object();
  for (const auto& [dtype, value] : info.peak_flops)
    flops[std::string(hal::dtype_name(dtype))] = value;
  return flops;
}

nlohmann::json to_json(const hal::DeviceInfo& info) {
  return {{"id", info.id},
          {"backend", info.backend},
          {"name", info.name},
          {"kind", std::string(hal::device_kind_name(info.kind))},
          {"vendor", info.vendor},
          {"memory_kind", info.memory_kind},
          {"memory_bytes", info.memory_bytes},
          {"memory_bandwidth_bytes_per_s", info.memory_bandwidth_bytes_per_s},
          {"peak_flops", peak_flops_json(info)},
          {"sram_bytes", info.sram_bytes},
          {"compute_units", info.compute_units},
          {"clock_hz", info.clock_hz},
          {"launch_overhead_s", info.launch_overhead_s}};
}

nlohmann::json to_json(const hal::LinkInfo& link) {
  return {{"peer", link.peer},
          {"kind", link.kind},
          {"bandwidth_bytes_per_s", link.bandwidth_bytes_per_s},
          {"latency_s", link.latency_s}};
}

nlohmann::json to_json(const hal::MemoryStats& stats) {
  return {{"bytes_in_use", stats.bytes_in_use},
          {"peak_bytes_in_use", stats.peak_bytes_in_use},
          {"allocation_count", stats.allocation_count},
          {"total_allocations", stats.total_allocations},
          {"capacity_bytes", stats.capacity_bytes}};
}

nlohmann::json to_json(const hal::Telemetry& t) {
  auto reading = [](double v) -> nlohmann::json {
    return v < 0 ? nlohmann::json() : nlohmann::json(v);
  };
  return {{"utilization_percent", reading(t.utilization_percent)},
          {"memory_used_bytes", reading(t.memory_used_bytes)},
          {"power_watts", reading(t.power_watts)},
          {"temperature_celsius", reading(t.temperature_celsius)},
          {"core_clock_hz", reading(t.core_clock_hz)},
          {"memory_clock_hz", reading(t.memory_clock_hz)}};
}

nlohmann::json to_json(const hal::Status& status) {
  return {{"code", std::string(hal::status_code_name(status.code()))},
          {"message", status.message()}};
}

void print_json(const nlohmann::json& value) {
  // Replace invalid UTF-8 (a plugin's strings are not ours to trust) rather than throw.
  std::cout << value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  std::cout.flush();
}

}  // namespace halctl
