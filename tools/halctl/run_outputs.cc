// The placement and profiling side of `halctl run` (see run_outputs.h).
#include "run_outputs.h"

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <fstream>

namespace halctl {

void add_run_placement_options(po::options_description& desc, RunPlacementOptions& o) {
  desc.add_options()(
      "placement", po::value<std::string>(&o.placement),
      "pin transformer blocks to devices, e.g. layers=0-11:npu:0,12-23:cpu:0 (';' then "
      "rest=DEVICE pins everything else); unpinned ops are placed by the scheduler")(
      "strict-placement", po::bool_switch(&o.strict),
      "fail instead of falling back when a device does not support an op it was given")(
      "scheduler", po::value<std::string>(&o.algorithm)->default_value(o.algorithm),
      "placement algorithm: auto, heft, peft, lookahead, layer-partition, all-on-fastest, "
      "round-robin")("report", po::value<std::string>(&o.report_path),
                     "write a JSON report: per device and op class time, FLOPs, memory "
                     "traffic, achieved vs peak; transfers; predicted vs measured makespan")(
      "trace", po::value<std::string>(&o.trace_path),
      "write a Chrome trace (JSON; open in Perfetto): one process per device, one thread "
      "per stream, transfers on tracks of their own");
}

hal::Result<std::shared_ptr<hal::runtime::ScheduledPlanBuilder>> make_run_planner(
    const RunPlacementOptions& o, const std::vector<hal::Device*>& devices,
    const hal::runtime::CompileSettings& compile) {
  const auto algorithm = hal::scheduler::parse_algorithm(o.algorithm);
  if (!algorithm || *algorithm == hal::scheduler::Algorithm::kExhaustive)
    return hal::invalid_argument("--scheduler: unknown algorithm '" + o.algorithm +
                                 "' (auto, heft, peft, lookahead, layer-partition, "
                                 "all-on-fastest, round-robin, refine)");
  hal::runtime::SchedulingOptions so;
  so.algorithm = *algorithm;
  so.strict_placement = o.strict;
  so.placement = o.placement;
  so.compile = compile;
  so.compile.strict = so.compile.strict || o.strict;
  // Simulated devices time ops as halctl plan does (their timing-only execution), so a
  // run predicts what a plan of the same graphs predicts.
  for (hal::Device* d : devices)
    so.timers.push_back(hal::runtime::is_simulated_device(d->info())
                            ? hal::runtime::simulated_op_timer(*d)
                            : hal::runtime::OpTimer());
  auto planner = hal::runtime::ScheduledPlanBuilder::create(devices, so);
  if (!planner.ok()) return planner.status().with_context("--placement");
  return planner;
}

namespace {

std::string device_id(const hal::runtime::ScheduledPlanBuilder& p, int32_t d) {
  return d >= 0 && size_t(d) < p.devices().size() ? p.devices()[size_t(d)]->id() : "?";
}

}  // namespace

std::string placement_lines(const hal::runtime::ScheduledPlanBuilder& p) {
  std::string s;
  for (const std::string& note : p.notes()) s += "note       " + note + "\n";
  for (const hal::runtime::ScheduledGraph& g : p.scheduled()) {
    if (&g == &p.scheduled().front()) {
      s += fmt::format(
          "scheduler  {} ({} tasks, {} transfers, predicted decode step {} over "
          "the planned context, placed in {})\n",
          hal::scheduler::algorithm_name(g.algorithm), g.tasks, g.transfers,
          hal::format_seconds(g.predicted_makespan_s), hal::format_seconds(g.scheduling_seconds));
    }
  }
  // A fallback recurs in every graph of the session; print each once.
  std::vector<std::string> seen;
  for (const hal::runtime::ScheduledGraph& g : p.scheduled())
    for (const hal::runtime::PlacementFallback& f : g.fallbacks) {
      std::string line =
          fmt::format("fallback   {} ({}): {} -> {}: {} (costs {})\n", f.node, f.op,
                      device_id(p, f.preferred_device), device_id(p, f.chosen_device), f.reason,
                      hal::format_seconds(f.cost_s));
      if (std::find(seen.begin(), seen.end(), line) == seen.end()) {
        seen.push_back(line);
        s += line;
      }
    }
  return s;
}

nlohmann::json placement_json(const hal::runtime::ScheduledPlanBuilder& p) {
  nlohmann::json out;
  nlohmann::json graphs = nlohmann::json::array();
  for (const hal::runtime::ScheduledGraph& g : p.scheduled()) {
    nlohmann::json fallbacks = nlohmann::json::array();
    for (const hal::runtime::PlacementFallback& f : g.fallbacks)
      fallbacks.push_back({{"node", f.node},
                           {"op", f.op},
                           {"preferred", device_id(p, f.preferred_device)},
                           {"chosen", device_id(p, f.chosen_device)},
                           {"reason", f.reason},
                           {"cost_s", f.cost_s}});
    nlohmann::json candidates = nlohmann::json::object();
    for (const hal::scheduler::CandidateResult& c : g.candidates)
      candidates[std::string(hal::scheduler::algorithm_name(c.algorithm))] =
          std::isfinite(c.makespan) ? nlohmann::json(c.makespan) : nlohmann::json(c.failure);
    graphs.push_back({{"tasks", g.tasks},
                      {"candidates_makespan_s", candidates},
                      {"algorithm", std::string(hal::scheduler::algorithm_name(g.algorithm))},
                      {"predicted_makespan_s", g.predicted_makespan_s},
                      {"placement", g.placement},
                      {"transfers", g.transfers},
                      {"scheduling_seconds", g.scheduling_seconds},
                      {"fallbacks", fallbacks}});
  }
  out["graphs"] = graphs;
  out["notes"] = p.notes();
  return out;
}

hal::Result<hal::runtime::RunReport> write_run_outputs(
    const RunPlacementOptions& o, const std::string& model, hal::DType dtype,
    const std::vector<hal::Device*>& devices, const hal::runtime::ScheduledPlanBuilder* planner,
    const hal::runtime::GenerationResult& result) {
  hal::runtime::RunReportInput in;
  in.model = model;
  in.compute_dtype = dtype;
  in.devices = devices;
  in.runs = result.runs;
  in.planner = planner;
  hal::runtime::RunReport report = hal::runtime::build_run_report(in);
  auto write = [](const std::string& path, const std::string& text,
                  const char* what) -> hal::Status {
    std::ofstream f(path, std::ios::binary);
    f << text;
    f.close();
    if (!f) return hal::invalid_argument(std::string(what) + ": cannot write '" + path + "'");
    return hal::ok_status();
  };
  if (!o.report_path.empty())
    HAL_RETURN_IF_ERROR(write(o.report_path, hal::runtime::run_report_to_json(report), "--report"));
  if (!o.trace_path.empty())
    HAL_RETURN_IF_ERROR(
        write(o.trace_path, hal::runtime::chrome_trace_json(devices, result.runs), "--trace"));
  return report;
}

hal::Status write_logits(const std::string& path, const hal::runtime::GenerationResult& r) {
  std::ofstream f(path, std::ios::binary);
  for (const auto& rows : r.logits) {
    if constexpr (std::endian::native == std::endian::little) {
      f.write(reinterpret_cast<const char*>(rows.data()), std::streamsize(rows.size() * 4));
    } else {
      for (float v : rows) {
        const uint32_t u = std::bit_cast<uint32_t>(v);
        const char le[4] = {char(u), char(u >> 8), char(u >> 16), char(u >> 24)};
        f.write(le, 4);
      }
    }
  }
  if (!f) return hal::invalid_argument("--dump-logits: cannot write '" + path + "'");
  return hal::ok_status();
}

}  // namespace halctl
