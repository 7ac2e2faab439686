// halctl cts: the conformance test suite (hal/cts.h) on one or more devices, or on every
// device of one plugin file loaded on its own.
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

#include "common.h"
#include "hal/cts.h"

namespace halctl {

namespace {

nlohmann::json report_json(const hal::cts::Report& r) {
  const hal::cts::Summary s = r.summary();
  nlohmann::json cases = nlohmann::json::array();
  for (const hal::cts::CaseResult& c : r.cases)
    cases.push_back({{"name", c.name},
                     {"outcome", std::string(hal::cts::outcome_name(c.outcome))},
                     {"reason", c.reason},
                     {"seconds", c.seconds}});
  return {
      {"device", r.device},
      {"backend", r.backend},
      {"hung", r.hung},
      {"summary",
       {{"passed", s.passed}, {"failed", s.failed}, {"skipped", s.skipped}, {"total", s.total()}}},
      {"cases", cases}};
}

}  // namespace

int cmd_cts(const Args& args) {
  CommonOptions common;
  std::vector<std::string> device_ids;
  std::string plugin_file;
  hal::cts::Options cts;
  bool list = false, verbose = false;
  po::options_description desc("halctl cts options");
  add_common_options(desc, common);
  desc.add_options()(
      "device", po::value<std::vector<std::string>>(&device_ids)->composing(),
      "device(s) to test, e.g. cpu:0 (repeatable or comma-separated; 'all' for every device)")(
      "plugin", po::value<std::string>(&plugin_file),
      "load only this plugin file and test every device it presents")(
      "filter", po::value<std::string>(&cts.filter),
      "comma-separated globs over case names; '-' excludes (e.g. 'op.matmul.*,-*.bf16.*')")(
      "list", po::bool_switch(&list), "list the cases that would run, run nothing")(
      "verbose,v", po::bool_switch(&verbose), "print every case, not only failures")(
      "seed", po::value<uint64_t>(&cts.seed)->default_value(cts.seed), "seed of the test data")(
      "timeout", po::value<double>(&cts.case_timeout_s)->default_value(cts.case_timeout_s),
      "seconds after which a case counts as hung");
  po::variables_map vm;
  if (auto stop = parse_args("cts", args, desc, {}, vm,
                             "halctl cts --device ID | --plugin PATH [--filter GLOBS] [--json]"))
    return *stop;
  if (device_ids.empty() == plugin_file.empty())
    return usage_error("cts", "give either --device ID or --plugin PATH");

  std::unique_ptr<hal::Platform> platform;
  std::vector<hal::Device*> devices;
  nlohmann::json plugin_json;
  if (!plugin_file.empty()) {
    // Just this plugin: what a backend author tests, free of whatever else is installed.
    hal::PlatformOptions options;
    options.plugin_paths = {plugin_file};
    options.use_env_plugin_path = false;
    options.use_default_plugin_dir = false;
    auto base = platform_options(common);
    if (!base.ok()) return report_error("cts", base.status());
    options.plugin_options = base->plugin_options;
    auto created = hal::Platform::create(options);
    if (!created.ok()) return report_error("cts", created.status());
    platform = std::move(created).value();
    const auto& reports = platform->plugin_reports();
    if (reports.empty() || !reports.front().loaded) {
      const std::string why = reports.empty() ? "nothing was found" : reports.front().reason;
      return report_error(
          "cts", hal::invalid_argument("plugin " + plugin_file + " was not loaded: " + why));
    }
    const hal::PluginReport& r = reports.front();
    plugin_json = {{"path", r.path},
                   {"name", r.name},
                   {"version", r.version},
                   {"abi_version", fmt::format("{}.{}", r.abi_major, r.abi_minor)},
                   {"note", r.reason}};
    devices = platform->devices();
  } else {
    auto created = open_platform(common);
    if (!created.ok()) return report_error("cts", created.status());
    platform = std::move(created).value();
    if (device_ids == std::vector<std::string>{"all"}) {
      devices = platform->devices();
    } else {
      std::string joined;
      for (const std::string& id : device_ids) joined += id + ",";
      auto found = parse_device_list(*platform, joined);
      if (!found.ok()) return report_error("cts", found.status());
      devices = *found;
    }
  }

  if (list) {
    nlohmann::json out = nlohmann::json::object();
    for (hal::Device* d : devices) {
      const std::vector<std::string> names = hal::cts::list_cases(*platform, *d, cts);
      if (common.json) {
        out[d->id()] = names;
      } else {
        for (const std::string& n : names) fmt::print("{}  {}\n", d->id(), n);
      }
    }
    if (common.json) print_json(out);
    return 0;
  }
  if (devices.empty()) {
    if (common.json)
      print_json({{"plugin", plugin_json}, {"devices", nlohmann::json::array()}});
    else
      fmt::print("the plugin presents no devices: nothing to test\n");
    return 0;
  }

  if (!common.json) {
    cts.on_case = [verbose](const hal::cts::CaseResult& c) {
      if (!verbose && c.outcome != hal::cts::Outcome::kFail) return;
      const char* tag = c.outcome == hal::cts::Outcome::kFail
                            ? "FAIL"
                            : (c.outcome == hal::cts::Outcome::kSkip ? "skip" : "pass");
      fmt::print("{}  {}  {}{}\n", tag, c.device, c.name,
                 c.reason.empty() ? "" : "\n        " + c.reason);
      std::fflush(stdout);
    };
  }
  std::vector<hal::cts::Report> reports;
  bool hung = false;
  for (hal::Device* d : devices) {
    reports.push_back(hal::cts::run(*platform, *d, cts));
    if (reports.back().hung) {
      hung = true;
      break;
    }
  }

  hal::cts::Summary total;
  for (const auto& r : reports) {
    const hal::cts::Summary s = r.summary();
    total.passed += s.passed;
    total.failed += s.failed;
    total.skipped += s.skipped;
  }
  if (common.json) {
    nlohmann::json out;
    if (!plugin_json.is_null()) out["plugin"] = plugin_json;
    out["devices"] = nlohmann::json::array();
    for (const auto& r : reports) out["devices"].push_back(report_json(r));
    out["summary"] = {{"passed", total.passed},
                      {"failed", total.failed},
                      {"skipped", total.skipped},
                      {"total", total.total()}};
    print_json(out);
  } else {
    for (const auto& r : reports) {
      const hal::cts::Summary s = r.summary();
      fmt::print("{} ({}): {} passed, {} failed, {} skipped of {}{}\n", r.device, r.backend,
                 s.passed, s.failed, s.skipped, s.total(), r.hung ? " (stopped: a case hung)" : "");
    }
  }
  const int code = (total.failed > 0 || hung) ? 1 : 0;
  if (hung) {
    // Work of the hung case still references the device: leave without tearing the
    // platform down (which would wait for it forever or free memory it uses).
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(code);
  }
  return code;
}

}  // namespace halctl
