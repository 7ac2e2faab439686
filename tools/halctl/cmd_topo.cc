// halctl topo: how data moves between the host and every device, pair by pair, as the
// platform sees it (Platform::link: a device's own peer link, else staged through the
// host).
#include <fmt/format.h>

#include "common.h"

namespace halctl {

int cmd_topo(const Args& args) {
  CommonOptions common;
  po::options_description desc("halctl topo options");
  add_common_options(desc, common);
  po::variables_map vm;
  if (auto stop = parse_args("topo", args, desc, {}, vm, "halctl topo [--json]")) return *stop;

  auto platform = open_platform(common);
  if (!platform.ok()) return report_error("topo", platform.status());
  const hal::Platform& p = **platform;

  // Node 0 is the host (nullptr for Platform::link), then every device.
  std::vector<const hal::Device*> nodes = {nullptr};
  for (const hal::Device* d : p.devices()) nodes.push_back(d);
  auto name = [](const hal::Device* d) { return d ? d->id() : std::string("host"); };

  if (common.json) {
    nlohmann::json out;
    out["nodes"] = nlohmann::json::array();
    for (const hal::Device* n : nodes) out["nodes"].push_back(name(n));
    out["links"] = nlohmann::json::array();
    for (const hal::Device* from : nodes) {
      for (const hal::Device* to : nodes) {
        if (!from && !to) continue;  // host memory to itself: not a link the HAL models
        const hal::LinkInfo l = p.link(from, to);
        out["links"].push_back({{"from", name(from)},
                                {"to", name(to)},
                                {"kind", l.kind},
                                {"bandwidth_bytes_per_s", l.bandwidth_bytes_per_s},
                                {"latency_s", l.latency_s}});
      }
    }
    print_json(out);
    return 0;
  }

  if (nodes.size() == 1) {
    fmt::print("no devices (see 'halctl plugins')\n");
    return 0;
  }
  // Bandwidth matrix (rows: from, columns: to), then every link in full.
  fmt::print("bandwidth per direction (rows: from, columns: to)\n{:<10}", "");
  for (const hal::Device* to : nodes) fmt::print(" {:>14}", name(to));
  fmt::print("\n");
  for (const hal::Device* from : nodes) {
    fmt::print("{:<10}", name(from));
    for (const hal::Device* to : nodes) {
      if (!from && !to) {
        fmt::print(" {:>14}", "-");
        continue;
      }
      const hal::LinkInfo l = p.link(from, to);
      fmt::print(" {:>14}",
                 l.bandwidth_bytes_per_s > 0 ? hal::format_rate(l.bandwidth_bytes_per_s) : "?");
    }
    fmt::print("\n");
  }
  fmt::print("\n{:<10} {:<10} {:<18} {:>14} {:>12}\n", "FROM", "TO", "KIND", "BANDWIDTH",
             "LATENCY");
  for (const hal::Device* from : nodes) {
    for (const hal::Device* to : nodes) {
      if (!from && !to) continue;
      const hal::LinkInfo l = p.link(from, to);
      fmt::print("{:<10} {:<10} {:<18} {:>14} {:>12}\n", name(from), name(to), l.kind,
                 hal::format_rate(l.bandwidth_bytes_per_s), hal::format_seconds(l.latency_s));
    }
  }
  return 0;
}

}  // namespace halctl
