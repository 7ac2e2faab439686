// The compiled-executable side of halctl run, compile and plan (run_executables.h).
#include "run_executables.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "hal/file_io.h"
#include "hal/units.h"

namespace halctl {

namespace rt = hal::runtime;

void add_compile_options(po::options_description& desc, CompileCliOptions& o, bool with_compiled) {
  desc.add_options()(
      "compile", po::value<std::string>(&o.mode)->default_value(o.mode),
      "whole-graph offload: on (devices with a compiler run compiled executables; nodes they "
      "decline run op by op, each with its reason) or off (op by op everywhere)")(
      "executable-cache", po::value<std::string>(&o.cache_dir),
      "directory of the compiled-executable cache (default $HAL_EXECUTABLE_CACHE, else "
      "~/.cache/hal/executables)")("no-executable-cache", po::bool_switch(&o.no_cache),
                                   "compile every time and keep nothing on disk");
  if (with_compiled)
    desc.add_options()("compiled", po::value<std::string>(&o.compiled_dir),
                       "run with the executables `halctl compile` wrote to this directory "
                       "(its manifest fixes batch, prompt bucket and context; a missing or "
                       "refused executable is an error)");
}

hal::Result<rt::CompileSettings> compile_settings(const CompileCliOptions& o) {
  rt::CompileSettings s;
  if (o.mode != "on" && o.mode != "off")
    return hal::invalid_argument("--compile must be on or off, got '" + o.mode + "'");
  s.enabled = o.mode == "on";
  if (!o.compiled_dir.empty()) {
    if (!s.enabled) return hal::invalid_argument("--compiled needs --compile on");
    s.cache = std::make_shared<rt::ExecutableCache>(o.compiled_dir,
                                                    rt::ExecutableCache::Mode::kArtifacts);
  } else if (!o.no_cache) {
    s.cache = std::make_shared<rt::ExecutableCache>(o.cache_dir);
  }
  return s;
}

hal::Result<CompiledManifest> read_manifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  HAL_ASSIGN_OR_RETURN(std::string text, hal::read_regular_file(path, "compiled manifest"));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return hal::invalid_argument(path + ": not a JSON object (halctl compile writes it)");
  CompiledManifest m;
  try {
    if (j.value("format", 0) != 1)
      return hal::invalid_argument(path + ": format " + j.value("format", nlohmann::json()).dump() +
                                   " is not 1");
    m.model = j.at("model").get<std::string>();
    m.devices = j.at("devices").get<std::vector<std::string>>();
    m.dtype = j.at("dtype").get<std::string>();
    m.batch = j.at("batch").get<int64_t>();
    m.prompt_len = j.at("prompt_len").get<int64_t>();
    m.context = j.at("context").get<int64_t>();
  } catch (const std::exception& e) {
    return hal::invalid_argument(path + ": " + e.what());
  }
  if (m.batch < 1 || m.prompt_len < 1 || m.context < m.prompt_len)
    return hal::invalid_argument(path + ": batch, prompt_len or context out of range");
  return m;
}

hal::Status write_manifest(const std::string& dir, const CompiledManifest& m,
                           const rt::ScheduledPlanBuilder& planner) {
  nlohmann::json exes = nlohmann::json::array();
  std::set<std::string> files;
  for (const rt::ScheduledGraph& g : planner.scheduled())
    for (const rt::CompiledUnitSummary& u : g.units) {
      if (u.entry.empty() || !files.insert(u.entry).second) continue;
      exes.push_back({{"file", u.entry},
                      {"device", planner.devices()[size_t(u.device)]->id()},
                      {"first_node", u.first_node},
                      {"nodes", u.nodes},
                      {"groups", u.groups.size()},
                      {"predicted_s", u.predicted_seconds},
                      {"dram_bytes", u.dram_bytes},
                      {"sram_bytes", u.sram_bytes},
                      {"compile_s", u.seconds}});
    }
  nlohmann::json j = {{"format", 1},          {"model", m.model},   {"devices", m.devices},
                      {"dtype", m.dtype},     {"batch", m.batch},   {"prompt_len", m.prompt_len},
                      {"context", m.context}, {"executables", exes}};
  std::ofstream f(dir + "/manifest.json", std::ios::trunc);
  f << j.dump(2) << "\n";
  if (!f) return hal::invalid_argument("cannot write " + dir + "/manifest.json");
  return hal::ok_status();
}

namespace {

// Per scheduled graph: its phase name and measured seconds per unit per run.
struct Measured {
  std::string phase;
  int64_t runs = 0;
  std::map<size_t, double> unit_seconds;  // by unit index, summed over runs
};

std::vector<Measured> measure(const rt::ScheduledPlanBuilder& planner,
                              const rt::GenerationResult& result) {
  std::vector<Measured> out(planner.scheduled().size());
  for (const rt::ProfiledRun& run : result.runs) {
    for (size_t gi = 0; gi < planner.scheduled().size(); ++gi) {
      const rt::ScheduledGraph& g = planner.scheduled()[gi];
      if (g.graph.get() != run.graph.get()) continue;
      Measured& m = out[gi];
      m.phase = run.phase;
      ++m.runs;
      for (size_t u = 0; u < g.units.size(); ++u) {
        const std::set<rt::NodeId> nodes(g.units[u].node_ids.begin(), g.units[u].node_ids.end());
        for (const rt::TimelineEntry& e : run.timeline.entries)
          if (nodes.count(e.node)) m.unit_seconds[u] += e.seconds();
      }
    }
  }
  return out;
}

}  // namespace

nlohmann::json executables_json(const rt::ScheduledPlanBuilder& planner,
                                const rt::GenerationResult& result) {
  const std::vector<Measured> measured = measure(planner, result);
  nlohmann::json out = nlohmann::json::array();
  for (size_t gi = 0; gi < planner.scheduled().size(); ++gi) {
    const rt::ScheduledGraph& g = planner.scheduled()[gi];
    const Measured& m = measured[gi];
    for (size_t u = 0; u < g.units.size(); ++u) {
      const rt::CompiledUnitSummary& s = g.units[u];
      nlohmann::json e = {{"graph", gi},
                          {"phase", m.phase.empty() ? (gi == 0 ? "prototype" : "unused") : m.phase},
                          {"device", planner.devices()[size_t(s.device)]->id()},
                          {"first_node", s.first_node},
                          {"nodes", s.nodes},
                          {"fused_groups", s.groups},
                          {"predicted_s", s.predicted_seconds},
                          {"hbm_bytes_per_run", s.dram_bytes},
                          {"sram_bytes", s.sram_bytes},
                          {"scratch_bytes", s.scratch_bytes},
                          {"cache", s.source},
                          {"compile_or_load_s", s.seconds}};
      if (m.runs > 0) {
        auto it = m.unit_seconds.find(u);
        e["measured_s_per_run"] = it == m.unit_seconds.end() ? 0.0 : it->second / double(m.runs);
        e["runs"] = m.runs;
      }
      if (!s.entry.empty()) e["file"] = s.entry;
      out.push_back(std::move(e));
    }
  }
  return out;
}

std::string executables_lines(const rt::ScheduledPlanBuilder& planner,
                              const rt::GenerationResult& result) {
  const std::vector<Measured> measured = measure(planner, result);
  std::string s;
  std::set<std::string> declined_seen;
  for (size_t gi = 0; gi < planner.scheduled().size(); ++gi) {
    const rt::ScheduledGraph& g = planner.scheduled()[gi];
    const Measured& m = measured[gi];
    if (m.runs == 0 && gi == 0 && planner.scheduled().size() > 1) continue;  // the prototype
    for (size_t u = 0; u < g.units.size(); ++u) {
      const rt::CompiledUnitSummary& x = g.units[u];
      std::string measured_text;
      if (m.runs > 0)
        if (auto it = m.unit_seconds.find(u); it != m.unit_seconds.end())
          measured_text = ", measured " + hal::format_seconds(it->second / double(m.runs));
      s += fmt::format(
          "executable {} {}: {} nodes from '{}' in {} fused groups, predicted {}{} per run, "
          "{} device memory per run, SRAM {}, {} in {}\n",
          m.phase.empty() ? "graph " + std::to_string(gi) : m.phase,
          planner.devices()[size_t(x.device)]->id(), x.nodes, x.first_node, x.groups.size(),
          hal::format_seconds(x.predicted_seconds), measured_text, hal::format_bytes(x.dram_bytes),
          hal::format_bytes(x.sram_bytes), x.source, hal::format_seconds(x.seconds));
    }
    // Nodes run op by op, by device and reason (a graph has many of each).
    std::map<std::pair<int32_t, std::string>, std::vector<std::string>> by_reason;
    for (const rt::DeclinedNode& d : g.declined)
      by_reason[{d.device, d.reason}].push_back(g.graph->node(d.node).name);
    for (const auto& [key, names] : by_reason) {
      const std::string line =
          fmt::format("op by op   {} node(s) on {} (e.g. '{}'): {}\n", names.size(),
                      planner.devices()[size_t(key.first)]->id(), names.front(), key.second);
      if (declined_seen.insert(line).second) s += line;
    }
    for (const std::string& note : g.compile_notes) s += "note       " + note + "\n";
  }
  return s;
}

}  // namespace halctl
