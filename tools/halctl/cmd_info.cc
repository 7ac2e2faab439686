// halctl info DEVICE: every figure of one device with where it came from, its links,
// properties, allocator statistics, live telemetry (when the device reads any) and the
// ops it supports.
#include <fmt/format.h>

#include <cstdlib>

#include "common.h"
#include "hal/cts.h"

namespace halctl {

namespace {

std::string flops_source(const hal::DeviceInfo& info, hal::DType dtype) {
  const std::string specific =
      info.property("source.peak_flops." + std::string(hal::dtype_name(dtype)));
  return specific.empty() ? source_of(info, "peak_flops") : specific;
}

std::string or_dash(double v, std::string text) { return v > 0 ? text : "-"; }

void print_figure(std::string_view label, const std::string& value, const std::string& source) {
  fmt::print("  {:<18} {:<24} [{}]\n", label, value, source);
}

}  // namespace

int cmd_info(const Args& args) {
  CommonOptions common;
  std::string device_id;
  po::options_description desc("halctl info options");
  add_common_options(desc, common);
  desc.add_options()("device", po::value<std::string>(&device_id), "device id, e.g. cpu:0");
  po::positional_options_description pos;
  pos.add("device", 1);
  po::variables_map vm;
  if (auto stop = parse_args("info", args, desc, pos, vm, "halctl info DEVICE [--json]"))
    return *stop;
  if (device_id.empty()) return usage_error("info", "which device? e.g. 'halctl info cpu:0'");

  auto platform = open_platform(common);
  if (!platform.ok()) return report_error("info", platform.status());
  auto found = (*platform)->device(device_id);
  if (!found.ok()) return report_error("info", found.status());
  const hal::Device& device = **found;
  const hal::DeviceInfo& i = device.info();
  const auto stats = device.memory_stats();
  const auto telemetry = device.telemetry();
  const std::vector<hal::cts::Capability> ops = hal::cts::probe_capabilities(device);

  if (common.json) {
    nlohmann::json out = to_json(i);
    out["id_prefix"] = i.id_prefix;
    nlohmann::json sources = {
        {"memory_bytes", source_of(i, "memory_bytes")},
        {"memory_bandwidth_bytes_per_s", source_of(i, "memory_bandwidth_bytes_per_s")},
        {"sram_bytes", source_of(i, "sram_bytes")},
        {"compute_units", source_of(i, "compute_units")},
        {"clock_hz", source_of(i, "clock_hz")},
        {"launch_overhead_s", source_of(i, "launch_overhead_s")},
        {"links", source_of(i, "links")}};
    nlohmann::json flops_sources = nlohmann::json::object();
    for (const auto& [dtype, v] : i.peak_flops)
      flops_sources[std::string(hal::dtype_name(dtype))] = flops_source(i, dtype);
    sources["peak_flops"] = flops_sources;
    out["sources"] = sources;
    out["links"] = nlohmann::json::array();
    for (const hal::LinkInfo& l : i.links) out["links"].push_back(to_json(l));
    out["properties"] = nlohmann::json::object();
    for (const auto& [k, v] : i.properties) out["properties"][k] = v;
    out["memory_stats"] = stats.ok() ? to_json(*stats) : nlohmann::json();
    if (!stats.ok()) out["memory_stats_error"] = to_json(stats.status());
    out["telemetry"] = telemetry.ok() ? to_json(*telemetry) : nlohmann::json();
    if (!telemetry.ok()) out["telemetry_unavailable"] = telemetry.status().message();
    nlohmann::json op_json = nlohmann::json::object();
    for (const hal::cts::Capability& c : ops) {
      nlohmann::json dtypes = nlohmann::json::array();
      for (hal::DType t : c.dtypes) dtypes.push_back(std::string(hal::dtype_name(t)));
      op_json[std::string(hal::op_kind_name(c.op))] = dtypes;
    }
    out["supported_ops"] = op_json;
    print_json(out);
    return 0;
  }

  fmt::print("{}  {}\n", i.id, i.name);
  fmt::print("  {:<18} {}\n", "backend", i.backend);
  fmt::print("  {:<18} {}\n", "kind", hal::device_kind_name(i.kind));
  fmt::print("  {:<18} {}\n", "vendor", i.vendor);
  print_figure("memory", hal::format_bytes(i.memory_bytes) + " " + i.memory_kind,
               source_of(i, "memory_bytes"));
  print_figure("memory bandwidth", hal::format_rate(i.memory_bandwidth_bytes_per_s),
               source_of(i, "memory_bandwidth_bytes_per_s"));
  // A device that measured its bandwidth two ways (read-only and STREAM triad) lists both.
  if (const std::string triad = i.property("memory_bandwidth.triad"); !triad.empty())
    print_figure(
        "  triad", hal::format_rate(std::atof(triad.c_str())),
        "the same measurement, STREAM triad (2 reads + 1 write counted)" +
            std::string(i.property("memory_bandwidth.provisional") == "true" ? "; provisional"
                                                                             : ""));
  for (const auto& [dtype, v] : i.peak_flops)
    print_figure(fmt::format("peak {}", hal::dtype_name(dtype)), hal::format_flops(v),
                 flops_source(i, dtype));
  print_figure("on-chip sram", i.sram_bytes ? hal::format_bytes(i.sram_bytes) : "-",
               source_of(i, "sram_bytes"));
  print_figure("compute units", i.compute_units ? std::to_string(i.compute_units) : "-",
               source_of(i, "compute_units"));
  print_figure("clock", or_dash(i.clock_hz, fmt::format("{:.2f} GHz", i.clock_hz * 1e-9)),
               source_of(i, "clock_hz"));
  print_figure("launch overhead",
               or_dash(i.launch_overhead_s, hal::format_seconds(i.launch_overhead_s)),
               source_of(i, "launch_overhead_s"));

  fmt::print("links  [{}]\n", source_of(i, "links"));
  if (i.links.empty()) fmt::print("  (none listed)\n");
  for (const hal::LinkInfo& l : i.links)
    fmt::print("  {:<10} {:<16} {:>12}  latency {}\n", l.peer, l.kind,
               hal::format_rate(l.bandwidth_bytes_per_s), hal::format_seconds(l.latency_s));

  fmt::print("memory stats\n");
  if (stats.ok())
    fmt::print("  in use {}, peak {}, live allocations {}, allocations made {}, capacity {}\n",
               hal::format_bytes(stats->bytes_in_use), hal::format_bytes(stats->peak_bytes_in_use),
               stats->allocation_count, stats->total_allocations,
               hal::format_bytes(stats->capacity_bytes));
  else
    fmt::print("  unavailable: {}\n", stats.status().to_string());

  fmt::print("telemetry\n");
  if (telemetry.ok()) {
    const hal::Telemetry& t = *telemetry;
    auto show = [](std::string_view label, double v, std::string text) {
      fmt::print("  {:<18} {}\n", label, v < 0 ? std::string("unknown") : text);
    };
    show("utilization", t.utilization_percent, fmt::format("{:.1f} %", t.utilization_percent));
    show("memory used", t.memory_used_bytes, hal::format_bytes(uint64_t(t.memory_used_bytes)));
    show("power", t.power_watts, fmt::format("{:.1f} W", t.power_watts));
    show("temperature", t.temperature_celsius, fmt::format("{:.0f} C", t.temperature_celsius));
    show("core clock", t.core_clock_hz, fmt::format("{:.0f} MHz", t.core_clock_hz * 1e-6));
    show("memory clock", t.memory_clock_hz, fmt::format("{:.0f} MHz", t.memory_clock_hz * 1e-6));
  } else {
    fmt::print("  unavailable: {}\n", telemetry.status().message());
  }

  fmt::print("supported ops (dtypes, on a representative shape)\n");
  for (const hal::cts::Capability& c : ops) {
    std::string dtypes;
    for (hal::DType t : c.dtypes)
      dtypes += fmt::format("{}{}", dtypes.empty() ? "" : " ", hal::dtype_name(t));
    fmt::print("  {:<12} {}\n", hal::op_kind_name(c.op), dtypes.empty() ? "-" : dtypes);
  }

  fmt::print("properties\n");
  for (const auto& [k, v] : i.properties) fmt::print("  {} = {}\n", k, v);
  return 0;
}

}  // namespace halctl
