// Run reports: figures per device / op class / transfer / phase from profiled runs, and
// their JSON, Chrome trace, roofline SVG and text forms.
#include "hal/runtime/run_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "hal/scheduler/calibration.h"
#include "hal/scheduler/cost_model.h"
#include "hal/units.h"
#include "report_format.h"
#include "run_prediction.h"

namespace hal::runtime {

namespace {

using nlohmann::json;

void add(WorkStats& s, const TimelineEntry& e, double predicted_s = 0) {
  ++s.commands;
  s.predicted_s += predicted_s;
  s.busy_s += e.seconds();
  s.flops += e.flops;
  s.bytes_read += e.bytes_read;
  s.bytes_written += e.bytes_written;
}

// Device-memory bytes a copy entry moved on `device`: its records' figures when
// measured; for a staged copy (no records) the payload, read on the source.
uint64_t copy_bytes(const TimelineEntry& e) {
  return e.measured ? e.bytes_read + e.bytes_written : e.bytes_moved;
}

}  // namespace

RunReport build_run_report(const RunReportInput& in) {
  RunReport rep;
  rep.model = in.model;
  rep.dtype = std::string(dtype_name(in.compute_dtype));
  const size_t n_dev = in.devices.size();
  std::vector<std::map<std::string, WorkStats>> classes(n_dev);
  rep.devices.resize(n_dev);
  std::vector<scheduler::DeviceCostModel> models;
  for (size_t d = 0; d < n_dev; ++d) {
    const DeviceInfo& info = in.devices[d]->info();
    DeviceReport& dr = rep.devices[d];
    dr.id = info.id;
    dr.name = info.name;
    dr.kind = std::string(device_kind_name(info.kind));
    dr.capacity_bytes = info.memory_bytes;
    dr.total.peak_bandwidth_bytes_per_s = info.memory_bandwidth_bytes_per_s;
    dr.total.peak_flops_per_s = info.peak_flops_for(in.compute_dtype);
    auto stats = in.devices[d]->memory_stats();
    if (stats.ok()) dr.peak_memory_bytes = stats->peak_bytes_in_use;
    models.emplace_back(info);
  }
  // Predictions come from the cost model the scheduler used (calibrated), for the devices
  // it placed on; another device (left after a failover) gets its own, calibration loaded.
  std::vector<scheduler::DeviceCostModel> own_models;
  own_models.reserve(n_dev);
  std::vector<const scheduler::DeviceCostModel*> predicting(n_dev, nullptr);
  for (size_t d = 0; d < n_dev; ++d) {
    if (in.planner)
      for (size_t k = 0; k < in.planner->devices().size(); ++k)
        if (in.planner->devices()[k] == in.devices[d])
          predicting[d] = &in.planner->cost_model().device(int32_t(k));
    if (!predicting[d]) {
      auto cal = scheduler::find_calibration(in.devices[d]->info());
      own_models.emplace_back(in.devices[d]->info(),
                              cal.ok() ? *cal : std::optional<scheduler::Calibration>());
      predicting[d] = &own_models.back();
    }
  }
  std::map<std::string, std::map<std::string, WorkStats>> phase_classes;
  std::map<std::pair<int32_t, int32_t>, TransferReport> transfers;
  std::map<std::pair<int32_t, std::string>, CollectiveReport> collectives;
  std::map<std::string, PhaseReport> phases;
  std::vector<std::string> phase_order;
  std::vector<uint64_t> decode_bytes(n_dev, 0);
  for (const ProfiledRun& run : in.runs) {
    if (!phases.count(run.phase)) phase_order.push_back(run.phase);
    PhaseReport& ph = phases[run.phase];
    ph.name = run.phase;
    ++ph.runs;
    ph.tokens += run.tokens;
    ph.measured_total_s += run.timeline.makespan_s;
    rep.measured_makespan_s += run.timeline.makespan_s;
    const RunPrediction prediction =
        predict_run(run, predicting, in.planner ? in.planner->find(run.graph.get()) : nullptr);
    ph.predicted_makespan_s += prediction.makespan_s;
    rep.predicted_makespan_s += prediction.makespan_s;
    const bool decode = run.phase == "decode";
    if (decode) rep.decode_tokens += run.tokens;
    if (run.footprint)
      for (size_t d = 0; d < n_dev && d < run.footprint->weight_bytes.size(); ++d) {
        DeviceReport& dr = rep.devices[d];
        dr.weight_bytes = std::max(dr.weight_bytes, run.footprint->weight_bytes[d]);
        dr.kv_cache_bytes = std::max(dr.kv_cache_bytes, run.footprint->state_bytes[d]);
        dr.activation_bytes = std::max(dr.activation_bytes, run.footprint->activation_bytes[d]);
        if (decode) {
          dr.decode_weight_bytes = run.footprint->weight_bytes[d];
          dr.decode_streamed_weight_bytes = run.footprint->streamed_weight_bytes[d];
          dr.decode_kv_cache_bytes = run.footprint->state_bytes[d];
        }
      }
    // The op of each node's entry: where a fused op's prediction goes.
    std::map<NodeId, OpKind> op_of_node;
    for (const TimelineEntry& e : run.timeline.entries)
      if (e.kind == TimelineEntry::Kind::kOp && e.node != kNoNode) op_of_node[e.node] = e.op;
    for (size_t i = 0; i < run.timeline.entries.size(); ++i) {
      const TimelineEntry& e = run.timeline.entries[i];
      if (e.device < 0 || size_t(e.device) >= n_dev) continue;
      DeviceReport& dr = rep.devices[size_t(e.device)];
      switch (e.kind) {
        case TimelineEntry::Kind::kOp: {
          const double predicted = prediction.entry_seconds[i];
          add(dr.total, e, predicted);
          const std::string name = std::string(op_kind_name(e.op));
          WorkStats& c = classes[size_t(e.device)][name];
          WorkStats& pc = phase_classes[run.phase][name];
          c.name = pc.name = name;
          const auto head =
              e.fused_into == kNoNode ? op_of_node.end() : op_of_node.find(e.fused_into);
          if (head != op_of_node.end()) {
            // Ran inside another op's group: counted here, timed and predicted there.
            add(c, e);
            add(pc, e);
            ++c.fused;
            ++pc.fused;
            const std::string head_name = std::string(op_kind_name(head->second));
            WorkStats& hc = classes[size_t(e.device)][head_name];
            WorkStats& hpc = phase_classes[run.phase][head_name];
            hc.name = hpc.name = head_name;
            hc.predicted_s += predicted;
            hpc.predicted_s += predicted;
          } else {
            add(c, e, predicted);
            add(pc, e, predicted);
          }
          if (decode) decode_bytes[size_t(e.device)] += e.bytes_read + e.bytes_written;
          break;
        }
        case TimelineEntry::Kind::kTransfer: {
          TransferReport& t = transfers[{e.device, e.peer}];
          t.from = in.devices[size_t(e.device)]->id();
          t.to = e.peer >= 0 && size_t(e.peer) < n_dev ? in.devices[size_t(e.peer)]->id() : "?";
          ++t.count;
          t.bytes += e.bytes_moved;
          t.seconds += e.seconds();
          t.measured = t.measured && e.measured;
          // The source reads the payload, the destination writes it (as their records
          // say when measured; the payload when modelled).
          const uint64_t rd = e.measured ? e.bytes_read : e.bytes_moved;
          const uint64_t wr = e.measured ? e.bytes_written : e.bytes_moved;
          ++dr.total.commands;
          dr.total.busy_s += e.seconds();
          dr.total.bytes_read += rd;
          if (decode) decode_bytes[size_t(e.device)] += rd;
          if (e.peer >= 0 && size_t(e.peer) < n_dev) {
            rep.devices[size_t(e.peer)].total.bytes_written += wr;
            if (decode) decode_bytes[size_t(e.peer)] += wr;
          }
          break;
        }
        case TimelineEntry::Kind::kUpload:
        case TimelineEntry::Kind::kDownload:
          add(dr.total, e);
          if (decode) decode_bytes[size_t(e.device)] += copy_bytes(e);
          break;
        case TimelineEntry::Kind::kCollective: {
          add(dr.total, e);
          const std::string kind(collective_kind_name(e.collective));
          CollectiveReport& c = collectives[{e.device, kind}];
          c.device = in.devices[size_t(e.device)]->id();
          c.collective = kind;
          c.link = std::string(link_class_name(e.link));
          ++c.count;
          c.seconds += e.seconds();
          c.bytes_sent += e.link_bytes_sent;
          c.bytes_received += e.link_bytes_received;
          if (decode) decode_bytes[size_t(e.device)] += e.bytes_read + e.bytes_written;
          break;
        }
      }
    }
  }
  for (const std::string& name : phase_order) {
    PhaseReport ph = phases[name];
    if (ph.runs > 0) {
      ph.predicted_makespan_s /= double(ph.runs);
      ph.measured_makespan_s = ph.measured_total_s / double(ph.runs);
    }
    for (auto& [op, c] : phase_classes[name]) {
      const auto kind = parse_op_kind(op);
      c.engine = std::string(scheduler::op_class_name(kind ? op_class(*kind) : OpClass::kVector));
      ph.op_classes.push_back(c);
    }
    std::sort(ph.op_classes.begin(), ph.op_classes.end(),
              [](const WorkStats& a, const WorkStats& b) { return a.busy_s > b.busy_s; });
    rep.phases.push_back(ph);
  }
  for (auto& [key, t] : transfers) rep.transfers.push_back(t);
  for (auto& [key, c] : collectives) rep.collectives.push_back(c);
  for (size_t d = 0; d < n_dev; ++d) {
    DeviceReport& dr = rep.devices[d];
    const DeviceInfo& info = in.devices[d]->info();
    for (auto& [name, c] : classes[d]) {
      const auto kind = parse_op_kind(name);
      const OpClass oc = kind ? op_class(*kind) : OpClass::kVector;
      c.engine = std::string(scheduler::op_class_name(oc));
      c.peak_flops_per_s = models[d].peak_flops(oc, in.compute_dtype);
      c.peak_bandwidth_bytes_per_s = info.memory_bandwidth_bytes_per_s;
      const double ridge =
          c.peak_bandwidth_bytes_per_s > 0 ? c.peak_flops_per_s / c.peak_bandwidth_bytes_per_s : 0;
      c.bound = c.intensity() < ridge ? "memory" : "compute";
      dr.op_classes.push_back(c);
    }
    std::sort(dr.op_classes.begin(), dr.op_classes.end(),
              [](const WorkStats& a, const WorkStats& b) { return a.busy_s > b.busy_s; });
    dr.decode_hbm_bytes_per_token =
        rep.decode_tokens > 0 ? double(decode_bytes[d]) / double(rep.decode_tokens) : 0;
  }
  if (in.planner) {
    const auto& sched = in.planner->scheduled();
    if (!sched.empty()) {
      rep.placement = sched.front().placement;
      rep.algorithm = std::string(scheduler::algorithm_name(sched.front().algorithm));
    }
    for (const ScheduledGraph& sg : sched)
      for (const PlacementFallback& f : sg.fallbacks) {
        FallbackReport fr;
        fr.node = f.node;
        fr.op = f.op;
        auto id = [&](int32_t d) {
          return d >= 0 && size_t(d) < n_dev ? in.devices[size_t(d)]->id() : std::string("?");
        };
        fr.preferred = id(f.preferred_device);
        fr.chosen = id(f.chosen_device);
        fr.reason = f.reason;
        fr.cost_s = f.cost_s;
        // The same fallback in every graph of the session: keep one.
        bool seen = false;
        for (const FallbackReport& o : rep.fallbacks)
          seen |= o.node == fr.node && o.preferred == fr.preferred && o.chosen == fr.chosen;
        if (!seen) rep.fallbacks.push_back(fr);
      }
  }
  return rep;
}

// ---- JSON --------------------------------------------------------------------------

namespace {

json stats_json(const WorkStats& s) {
  json j;
  if (!s.name.empty()) j["name"] = s.name;
  if (!s.engine.empty()) j["engine"] = s.engine;
  j["commands"] = s.commands;
  if (s.fused > 0) j["fused"] = s.fused;
  j["busy_s"] = s.busy_s;
  j["flops"] = s.flops;
  j["bytes_read"] = s.bytes_read;
  j["bytes_written"] = s.bytes_written;
  j["peak_flops_per_s"] = s.peak_flops_per_s;
  j["peak_bandwidth_bytes_per_s"] = s.peak_bandwidth_bytes_per_s;
  j["achieved_flops_per_s"] = s.achieved_flops_per_s();
  j["achieved_bandwidth_bytes_per_s"] = s.achieved_bandwidth();
  j["flops_fraction_of_peak"] = s.flops_fraction();
  j["bandwidth_fraction_of_peak"] = s.bandwidth_fraction();
  j["intensity_flops_per_byte"] = s.intensity();
  if (!s.bound.empty()) j["bound"] = s.bound;
  j["predicted_s"] = s.predicted_s;
  j["prediction_error"] = s.prediction_error();
  return j;
}

// Reads `key` of `j` into `out`, with an error naming the file and the key.
struct Reader {
  std::string origin;
  Status status;
  template <typename T>
  void get(const json& j, const char* key, T& out, const std::string& where, bool required = true) {
    if (!status.ok()) return;
    if (!j.is_object() || !j.contains(key)) {
      if (required) status = invalid_argument(origin + ": " + where + " has no '" + key + "'");
      return;
    }
    try {
      out = j.at(key).get<T>();
    } catch (const std::exception&) {
      status = invalid_argument(origin + ": " + where + "'" + key + "' has the wrong type (" +
                                std::string(j.at(key).type_name()) + ")");
    }
  }
};

void read_stats(Reader& r, const json& j, WorkStats& s, const std::string& where) {
  r.get(j, "name", s.name, where, false);
  r.get(j, "engine", s.engine, where, false);
  r.get(j, "commands", s.commands, where);
  r.get(j, "fused", s.fused, where, false);
  r.get(j, "busy_s", s.busy_s, where);
  r.get(j, "flops", s.flops, where);
  r.get(j, "bytes_read", s.bytes_read, where);
  r.get(j, "bytes_written", s.bytes_written, where);
  r.get(j, "peak_flops_per_s", s.peak_flops_per_s, where);
  r.get(j, "peak_bandwidth_bytes_per_s", s.peak_bandwidth_bytes_per_s, where);
  r.get(j, "bound", s.bound, where, false);
  r.get(j, "predicted_s", s.predicted_s, where, false);
}

json collectives_json(const std::vector<CollectiveReport>& collectives) {
  json out = json::array();
  for (const CollectiveReport& c : collectives)
    out.push_back({{"device", c.device},
                   {"collective", c.collective},
                   {"link", c.link},
                   {"count", c.count},
                   {"seconds", c.seconds},
                   {"bytes_sent", c.bytes_sent},
                   {"bytes_received", c.bytes_received}});
  return out;
}

}  // namespace

std::string collectives_to_json(const std::vector<CollectiveReport>& collectives) {
  return collectives_json(collectives).dump();
}

std::string run_report_to_json(const RunReport& rep) {
  json j;
  j["format"] = "hal-run-report";
  j["version"] = 1;
  j["model"] = rep.model;
  j["dtype"] = rep.dtype;
  j["placement"] = rep.placement;
  j["algorithm"] = rep.algorithm;
  j["decode_tokens"] = rep.decode_tokens;
  j["predicted_makespan_s"] = rep.predicted_makespan_s;
  j["measured_makespan_s"] = rep.measured_makespan_s;
  json devices = json::array();
  for (const DeviceReport& d : rep.devices) {
    json o = stats_json(d.total);
    o["id"] = d.id;
    o["name"] = d.name;
    o["kind"] = d.kind;
    o["capacity_bytes"] = d.capacity_bytes;
    o["peak_memory_bytes"] = d.peak_memory_bytes;
    o["weight_bytes"] = d.weight_bytes;
    o["kv_cache_bytes"] = d.kv_cache_bytes;
    o["activation_bytes"] = d.activation_bytes;
    o["decode_hbm_bytes_per_token"] = d.decode_hbm_bytes_per_token;
    o["decode_weight_bytes"] = d.decode_weight_bytes;
    o["decode_streamed_weight_bytes"] = d.decode_streamed_weight_bytes;
    o["decode_kv_cache_bytes"] = d.decode_kv_cache_bytes;
    json classes = json::array();
    for (const WorkStats& c : d.op_classes) classes.push_back(stats_json(c));
    o["op_classes"] = classes;
    devices.push_back(o);
  }
  j["devices"] = devices;
  json transfers = json::array();
  for (const TransferReport& t : rep.transfers)
    transfers.push_back({{"from", t.from},
                         {"to", t.to},
                         {"count", t.count},
                         {"bytes", t.bytes},
                         {"seconds", t.seconds},
                         {"measured", t.measured}});
  j["transfers"] = transfers;
  j["collectives"] = collectives_json(rep.collectives);
  json phases = json::array();
  for (const PhaseReport& p : rep.phases) {
    json classes = json::array();
    for (const WorkStats& c : p.op_classes) classes.push_back(stats_json(c));
    phases.push_back({{"name", p.name},
                      {"runs", p.runs},
                      {"tokens", p.tokens},
                      {"predicted_makespan_s", p.predicted_makespan_s},
                      {"measured_makespan_s", p.measured_makespan_s},
                      {"measured_total_s", p.measured_total_s},
                      {"op_classes", classes}});
  }
  j["phases"] = phases;
  json fallbacks = json::array();
  for (const FallbackReport& f : rep.fallbacks)
    fallbacks.push_back({{"node", f.node},
                         {"op", f.op},
                         {"preferred", f.preferred},
                         {"chosen", f.chosen},
                         {"reason", f.reason},
                         {"cost_s", f.cost_s}});
  j["fallbacks"] = fallbacks;
  return j.dump(2) + "\n";
}

Result<RunReport> parse_run_report(std::string_view text, std::string_view origin) {
  const std::string where(origin);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return invalid_argument(where + ": not valid JSON");
  if (!j.is_object() || j.value("format", std::string()) != "hal-run-report")
    return invalid_argument(where + ": not a run report (\"format\" is not \"hal-run-report\")");
  Reader r{where, ok_status()};
  RunReport rep;
  r.get(j, "model", rep.model, "the report");
  r.get(j, "dtype", rep.dtype, "the report");
  r.get(j, "placement", rep.placement, "the report", false);
  r.get(j, "algorithm", rep.algorithm, "the report", false);
  r.get(j, "decode_tokens", rep.decode_tokens, "the report", false);
  r.get(j, "predicted_makespan_s", rep.predicted_makespan_s, "the report");
  r.get(j, "measured_makespan_s", rep.measured_makespan_s, "the report");
  if (!j.contains("devices") || !j["devices"].is_array())
    return invalid_argument(where + ": the report has no 'devices' array");
  for (size_t i = 0; i < j["devices"].size(); ++i) {
    const json& o = j["devices"][i];
    const std::string at = "devices[" + std::to_string(i) + "]";
    DeviceReport d;
    read_stats(r, o, d.total, at);
    d.total.name.clear();
    r.get(o, "id", d.id, at);
    r.get(o, "name", d.name, at, false);
    r.get(o, "kind", d.kind, at, false);
    r.get(o, "capacity_bytes", d.capacity_bytes, at);
    r.get(o, "peak_memory_bytes", d.peak_memory_bytes, at);
    r.get(o, "weight_bytes", d.weight_bytes, at);
    r.get(o, "kv_cache_bytes", d.kv_cache_bytes, at);
    r.get(o, "activation_bytes", d.activation_bytes, at);
    r.get(o, "decode_hbm_bytes_per_token", d.decode_hbm_bytes_per_token, at);
    r.get(o, "decode_weight_bytes", d.decode_weight_bytes, at, false);
    r.get(o, "decode_streamed_weight_bytes", d.decode_streamed_weight_bytes, at, false);
    r.get(o, "decode_kv_cache_bytes", d.decode_kv_cache_bytes, at, false);
    if (!o.contains("op_classes") || !o["op_classes"].is_array())
      return invalid_argument(where + ": " + at + " has no 'op_classes' array");
    for (size_t k = 0; k < o["op_classes"].size(); ++k) {
      WorkStats c;
      read_stats(r, o["op_classes"][k], c, at + ".op_classes[" + std::to_string(k) + "]");
      d.op_classes.push_back(c);
    }
    rep.devices.push_back(d);
  }
  if (j.contains("transfers") && j["transfers"].is_array())
    for (size_t i = 0; i < j["transfers"].size(); ++i) {
      const json& o = j["transfers"][i];
      const std::string at = "transfers[" + std::to_string(i) + "]";
      TransferReport t;
      r.get(o, "from", t.from, at);
      r.get(o, "to", t.to, at);
      r.get(o, "count", t.count, at);
      r.get(o, "bytes", t.bytes, at);
      r.get(o, "seconds", t.seconds, at);
      r.get(o, "measured", t.measured, at, false);
      rep.transfers.push_back(t);
    }
  if (j.contains("collectives") && j["collectives"].is_array())
    for (size_t i = 0; i < j["collectives"].size(); ++i) {
      const json& o = j["collectives"][i];
      const std::string at = "collectives[" + std::to_string(i) + "]";
      CollectiveReport c;
      r.get(o, "device", c.device, at);
      r.get(o, "collective", c.collective, at);
      r.get(o, "link", c.link, at);
      r.get(o, "count", c.count, at);
      r.get(o, "seconds", c.seconds, at);
      r.get(o, "bytes_sent", c.bytes_sent, at);
      r.get(o, "bytes_received", c.bytes_received, at);
      rep.collectives.push_back(c);
    }
  if (j.contains("phases") && j["phases"].is_array())
    for (size_t i = 0; i < j["phases"].size(); ++i) {
      const json& o = j["phases"][i];
      const std::string at = "phases[" + std::to_string(i) + "]";
      PhaseReport p;
      r.get(o, "name", p.name, at);
      r.get(o, "runs", p.runs, at);
      r.get(o, "tokens", p.tokens, at);
      r.get(o, "predicted_makespan_s", p.predicted_makespan_s, at);
      r.get(o, "measured_makespan_s", p.measured_makespan_s, at);
      r.get(o, "measured_total_s", p.measured_total_s, at, false);
      if (o.contains("op_classes") && o["op_classes"].is_array())
        for (size_t k = 0; k < o["op_classes"].size(); ++k) {
          WorkStats c;
          read_stats(r, o["op_classes"][k], c, at + ".op_classes[" + std::to_string(k) + "]");
          p.op_classes.push_back(c);
        }
      rep.phases.push_back(p);
    }
  if (j.contains("fallbacks") && j["fallbacks"].is_array())
    for (size_t i = 0; i < j["fallbacks"].size(); ++i) {
      const json& o = j["fallbacks"][i];
      const std::string at = "fallbacks[" + std::to_string(i) + "]";
      FallbackReport f;
      r.get(o, "node", f.node, at);
      r.get(o, "op", f.op, at, false);
      r.get(o, "preferred", f.preferred, at);
      r.get(o, "chosen", f.chosen, at);
      r.get(o, "reason", f.reason, at, false);
      r.get(o, "cost_s", f.cost_s, at, false);
      rep.fallbacks.push_back(f);
    }
  if (!r.status.ok()) return r.status;
  return rep;
}

// ---- Chrome trace ------------------------------------------------------------------

std::string chrome_trace_json(const std::vector<Device*>& devices,
                              std::span<const ProfiledRun> runs) {
  json events = json::array();
  const size_t n_dev = devices.size();
  // Threads: streams 0.. keep their index; transfer tracks 1000 + destination; host
  // copies 2000.
  std::map<std::pair<int32_t, int32_t>, std::string> threads;
  for (size_t d = 0; d < n_dev; ++d) {
    events.push_back(
        {{"ph", "M"},
         {"name", "process_name"},
         {"pid", int(d) + 1},
         {"args", {{"name", devices[d]->id() + " (" + devices[d]->info().name + ")"}}}});
    events.push_back({{"ph", "M"},
                      {"name", "process_sort_index"},
                      {"pid", int(d) + 1},
                      {"args", {{"sort_index", int(d)}}}});
  }
  double offset = 0;
  for (const ProfiledRun& run : runs) {
    const Graph* g = run.graph.get();
    for (const TimelineEntry& e : run.timeline.entries) {
      if (e.device < 0 || size_t(e.device) >= n_dev) continue;
      int32_t tid = e.stream;
      std::string name;
      std::string thread;
      switch (e.kind) {
        case TimelineEntry::Kind::kOp:
          name = g && e.node >= 0 ? g->node(e.node).name : std::string(op_kind_name(e.op));
          if (run.footprint && size_t(e.device) < run.footprint->stream_names.size() &&
              size_t(e.stream) < run.footprint->stream_names[size_t(e.device)].size())
            thread = run.footprint->stream_names[size_t(e.device)][size_t(e.stream)];
          else
            thread = e.stream == 0 ? "compute" : "stream " + std::to_string(e.stream);
          break;
        case TimelineEntry::Kind::kTransfer: {
          tid = 1000 + e.peer;
          const std::string to =
              e.peer >= 0 && size_t(e.peer) < n_dev ? devices[size_t(e.peer)]->id() : "?";
          thread = "transfers->" + to;
          name = g && e.node >= 0 ? g->node(e.node).name : "transfer";
          break;
        }
        case TimelineEntry::Kind::kUpload:
        case TimelineEntry::Kind::kDownload:
          tid = 2000;
          thread = "host copies";
          name = e.kind == TimelineEntry::Kind::kUpload ? "upload" : "download";
          break;
        case TimelineEntry::Kind::kCollective:
          tid = 3000;
          thread = "collectives";
          name = g && e.node >= 0 ? g->node(e.node).name
                                  : std::string(collective_kind_name(e.collective));
          break;
      }
      threads.emplace(std::make_pair(e.device, tid), thread);
      json args = {{"phase", run.phase},
                   {"flops", e.flops},
                   {"bytes_read", e.bytes_read},
                   {"bytes_written", e.bytes_written}};
      if (e.op != OpKind::kInvalid) args["op"] = std::string(op_kind_name(e.op));
      if (e.bytes_moved) args["bytes_moved"] = e.bytes_moved;
      if (!e.measured) args["time"] = "modelled from the link";
      if (e.kind == TimelineEntry::Kind::kCollective) {
        args["collective"] = std::string(collective_kind_name(e.collective));
        args["link"] = std::string(link_class_name(e.link));
        args["link_bytes_sent"] = e.link_bytes_sent;
        args["link_bytes_received"] = e.link_bytes_received;
      }
      events.push_back({{"ph", "X"},
                        {"name", name},
                        {"cat", run.phase},
                        {"pid", e.device + 1},
                        {"tid", tid},
                        {"ts", (offset + e.start_s) * 1e6},
                        {"dur", std::max(0.0, e.seconds()) * 1e6},
                        {"args", args}});
    }
    offset += run.timeline.makespan_s;
  }
  for (const auto& [key, name] : threads) {
    events.push_back({{"ph", "M"},
                      {"name", "thread_name"},
                      {"pid", key.first + 1},
                      {"tid", key.second},
                      {"args", {{"name", name}}}});
    events.push_back({{"ph", "M"},
                      {"name", "thread_sort_index"},
                      {"pid", key.first + 1},
                      {"tid", key.second},
                      {"args", {{"sort_index", key.second}}}});
  }
  json out;
  out["traceEvents"] = events;
  out["displayTimeUnit"] = "ns";
  out["otherData"] = {{"producer", "halctl run --trace"},
                      {"clock", "per-op device durations on one timeline"}};
  return out.dump() + "\n";
}

// ---- roofline ----------------------------------------------------------------------

std::string signed_error(double predicted, double measured) {
  if (!(predicted > 0) || !(measured > 0)) return "";
  return " (" + fmt_double(100 * (predicted / measured - 1), "%+.1f") + "%)";
}

std::string phase_prediction_text(const PhaseReport& p) {
  if (p.op_classes.empty() || p.runs <= 0) return "";
  auto padded = [](const std::string& text, size_t width) {
    return text + std::string(text.size() < width ? width - text.size() : 1, ' ');
  };
  const double runs = double(p.runs);
  std::string s = "    " + padded("per run", 13) + padded("ops", 6) + padded("measured", 12) +
                  padded("predicted", 12) + "error\n";
  bool fused = false;
  for (const WorkStats& c : p.op_classes) {
    // A class all of whose ops ran inside other ops' fused groups has no time of its own.
    const bool all_fused = c.commands > 0 && c.fused == c.commands;
    const bool compared = c.predicted_s > 0 && c.busy_s > 0;
    fused |= c.fused > 0;
    s += "    " + padded(c.name, 13) + padded(fmt_double(double(c.commands) / runs, "%.0f"), 6) +
         padded(all_fused ? "fused" : format_seconds(c.busy_s / runs), 12) +
         padded(c.predicted_s > 0 ? format_seconds(c.predicted_s / runs) : "-", 12) +
         (compared ? fmt_double(100 * c.prediction_error(), "%+.1f") + "%" : "-") +
         (c.fused > 0 && !all_fused ? "  (" + fmt_double(double(c.fused) / runs, "%.0f") + " fused)"
                                    : "") +
         "\n";
  }
  if (fused)
    s += "    fused: ops run inside another op's fused group (a compiled executable); their\n"
         "    time is measured, and their prediction counted, with that op's class\n";
  return s;
}

std::string report_summary_text(const RunReport& rep) {
  std::string s;
  auto line = [&](const std::string& l) { s += l + "\n"; };
  line("model      " + rep.model + " (" + rep.dtype + ")" +
       (rep.placement.empty() ? "" : ", placement " + rep.placement) +
       (rep.algorithm.empty() ? "" : " by " + rep.algorithm));
  for (const PhaseReport& p : rep.phases) {
    line("phase      " + p.name + ": " + std::to_string(p.runs) + " run(s), " +
         std::to_string(p.tokens) + " token(s) generated, measured " +
         format_seconds(p.measured_makespan_s) + " per run, predicted " +
         format_seconds(p.predicted_makespan_s) +
         signed_error(p.predicted_makespan_s, p.measured_makespan_s));
    s += phase_prediction_text(p);
  }
  line("makespan   measured " + format_seconds(rep.measured_makespan_s) + ", predicted " +
       format_seconds(rep.predicted_makespan_s));
  for (const DeviceReport& d : rep.devices) {
    line("device     " + d.id + " (" + d.name + "): busy " + format_seconds(d.total.busy_s) + ", " +
         si(d.total.flops, "FLOP") + ", read " + format_bytes(d.total.bytes_read) + ", written " +
         format_bytes(d.total.bytes_written));
    line("             achieved " + si(d.total.achieved_flops_per_s(), "FLOP/s") + " (" +
         fmt_double(100 * d.total.flops_fraction(), "%.1f") + "% of peak), " +
         si(d.total.achieved_bandwidth(), "B/s") + " (" +
         fmt_double(100 * d.total.bandwidth_fraction(), "%.1f") + "% of peak)");
    line("             memory peak " + format_bytes(d.peak_memory_bytes) + " of " +
         format_bytes(d.capacity_bytes) + " (weights " + format_bytes(d.weight_bytes) +
         ", KV cache " + format_bytes(d.kv_cache_bytes) + ", activations " +
         format_bytes(d.activation_bytes) + ")");
    if (rep.decode_tokens > 0)
      line("             decode " + format_bytes(uint64_t(d.decode_hbm_bytes_per_token)) +
           " per token (weights here " + format_bytes(d.decode_weight_bytes) + ", read in full " +
           format_bytes(d.decode_streamed_weight_bytes) + ")");
    for (const WorkStats& c : d.op_classes) {
      const std::string label =
          "    " + c.name + std::string(c.name.size() < 12 ? 12 - c.name.size() : 1, ' ');
      if (c.commands > 0 && c.fused == c.commands) {
        line(label + "fused into other ops' groups (" + std::to_string(c.commands) + " ops)");
        continue;
      }
      line(label + format_seconds(c.busy_s) + "  " + si(c.achieved_flops_per_s(), "FLOP/s") + " (" +
           fmt_double(100 * c.flops_fraction(), "%.1f") + "%)  " +
           si(c.achieved_bandwidth(), "B/s") + " (" +
           fmt_double(100 * c.bandwidth_fraction(), "%.1f") + "%)  " + c.bound + "-bound" +
           (c.predicted_s > 0 ? ", predicted " + format_seconds(c.predicted_s) +
                                    signed_error(c.predicted_s, c.busy_s)
                              : ""));
    }
  }
  for (const TransferReport& t : rep.transfers)
    line("transfer   " + t.from + " -> " + t.to + ": " + std::to_string(t.count) + " x, " +
         format_bytes(t.bytes) + " in " + format_seconds(t.seconds) +
         (t.measured ? "" : " (modelled from the link)"));
  for (const CollectiveReport& c : rep.collectives)
    line("collective " + c.device + " " + c.collective + ": " + std::to_string(c.count) + " x in " +
         format_seconds(c.seconds) + ", sent " + format_bytes(c.bytes_sent) + ", received " +
         format_bytes(c.bytes_received) + " over " + c.link);
  for (const FallbackReport& f : rep.fallbacks)
    line("fallback   " + f.node + " (" + f.op + "): " + f.preferred + " -> " + f.chosen + ", " +
         f.reason + ", costs " + format_seconds(f.cost_s));
  return s;
}

}  // namespace hal::runtime
