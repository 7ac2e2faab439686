// halctl list: every device the platform found, one line (or JSON object) each.
#include <fmt/format.h>

#include "common.h"

namespace halctl {

namespace {

// "f32 1.0 TFLOP/s, bf16 2.0 TFLOP/s"
std::string peak_flops_text(const hal::DeviceInfo& info) {
  std::string out;
  for (const auto& [dtype, flops] : info.peak_flops)
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", hal::dtype_name(dtype),
                       hal::format_flops(flops));
  return out.empty() ? "-" : out;
}

}  // namespace

int cmd_list(const Args& args) {
  CommonOptions common;
  po::options_description desc("halctl list options");
  add_common_options(desc, common);
  bool ids_only = false;
  desc.add_options()("ids", po::bool_switch(&ids_only),
                     "print only the device ids, one per line (for scripts)");
  po::variables_map vm;
  if (auto stop = parse_args("list", args, desc, {}, vm, "halctl list [--json | --ids]"))
    return *stop;
  if (ids_only && common.json) return usage_error("list", "--ids and --json exclude each other");

  auto platform = open_platform(common);
  if (!platform.ok()) return report_error("list", platform.status());
  const auto& devices = (*platform)->devices();

  if (common.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const hal::Device* d : devices) out.push_back(to_json(d->info()));
    print_json(out);
    return 0;
  }
  if (ids_only) {
    for (const hal::Device* d : devices) fmt::print("{}\n", d->info().id);
    return 0;
  }
  // Refused plugins are easy to miss when their devices are simply absent: say so.
  int refused = 0;
  for (const hal::PluginReport& r : (*platform)->plugin_reports())
    if (r.refused()) ++refused;
  if (refused > 0)
    fmt::print(stderr, "note: {} plugin candidate(s) were refused; 'halctl plugins' says why\n",
               refused);
  if (devices.empty()) {
    fmt::print("no devices (see 'halctl plugins' for what was found and why it was not loaded)\n");
    return 0;
  }
  fmt::print("{:<8} {:<9} {:<6} {:<40} {:>10} {:>12}  {}\n", "ID", "BACKEND", "KIND", "NAME",
             "MEMORY", "BANDWIDTH", "PEAK");
  for (const hal::Device* d : devices) {
    const hal::DeviceInfo& i = d->info();
    fmt::print("{:<8} {:<9} {:<6} {:<40} {:>10} {:>12}  {}\n", i.id, i.backend,
               hal::device_kind_name(i.kind), i.name.substr(0, 40),
               hal::format_bytes(i.memory_bytes), hal::format_rate(i.memory_bandwidth_bytes_per_s),
               peak_flops_text(i));
  }
  return 0;
}

}  // namespace halctl
