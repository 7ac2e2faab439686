#include <algorithm>
#include <cmath>
#include <set>

#include "hal/scheduler/scheduler.h"

namespace hal::scheduler {

std::string_view algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::kAuto:
      return "auto";
    case Algorithm::kHeft:
      return "heft";
    case Algorithm::kPeft:
      return "peft";
    case Algorithm::kLookahead:
      return "lookahead";
    case Algorithm::kLayerPartition:
      return "layer-partition";
    case Algorithm::kAllOnFastest:
      return "all-on-fastest";
    case Algorithm::kRoundRobin:
      return "round-robin";
    case Algorithm::kExhaustive:
      return "exhaustive";
    case Algorithm::kRefine:
      return "refine";
  }
  return "auto";
}

std::optional<Algorithm> parse_algorithm(std::string_view name) {
  for (Algorithm a : {Algorithm::kAuto, Algorithm::kHeft, Algorithm::kPeft, Algorithm::kLookahead,
                      Algorithm::kLayerPartition, Algorithm::kAllOnFastest, Algorithm::kRoundRobin,
                      Algorithm::kExhaustive, Algorithm::kRefine})
    if (algorithm_name(a) == name) return a;
  return std::nullopt;
}

Result<Problem> Problem::from_cost_model(TaskGraph graph, const CostModel& model) {
  HAL_RETURN_IF_ERROR(graph.finalize());
  const int32_t p = model.device_count();
  std::vector<DeviceSlot> devices;
  for (int32_t d = 0; d < p; ++d)
    devices.push_back(DeviceSlot{model.device(d).info().id, model.device(d).info().memory_bytes});
  std::vector<double> cost(graph.task_count() * size_t(p));
  for (size_t t = 0; t < graph.task_count(); ++t)
    for (int32_t d = 0; d < p; ++d)
      cost[t * size_t(p) + size_t(d)] = model.device(d).seconds(graph.task(TaskId(t)).work);
  return from_costs(std::move(graph), std::move(devices), std::move(cost), model.links());
}

Result<Problem> Problem::from_costs(TaskGraph graph, std::vector<DeviceSlot> devices,
                                    std::vector<double> cost, std::vector<LinkCost> links) {
  if (!graph.finalized()) HAL_RETURN_IF_ERROR(graph.finalize());
  const size_t p = devices.size();
  if (p == 0) return invalid_argument("scheduling problem: no devices");
  if (cost.size() != graph.task_count() * p)
    return invalid_argument("scheduling problem: " + std::to_string(cost.size()) +
                            " costs given for " + std::to_string(graph.task_count()) +
                            " tasks on " + std::to_string(p) + " devices");
  if (links.size() != p * p)
    return invalid_argument("scheduling problem: " + std::to_string(links.size()) +
                            " links given for " + std::to_string(p) + " devices (need " +
                            std::to_string(p * p) + ", from * devices + to)");
  Problem pb;
  pb.graph_ = std::move(graph);
  pb.devices_ = std::move(devices);
  pb.cost_ = std::move(cost);
  pb.links_ = std::move(links);
  pb.supported_.assign(pb.cost_.size(), 1);
  HAL_RETURN_IF_ERROR(pb.validate());
  return pb;
}

std::vector<std::string> Problem::device_ids() const {
  std::vector<std::string> ids;
  for (const DeviceSlot& d : devices_) ids.push_back(d.id);
  return ids;
}

Status Problem::validate() const {
  if (!graph_.finalized()) return failed_precondition("scheduling problem: graph not finalized");
  const size_t p = devices_.size();
  if (p == 0) return invalid_argument("scheduling problem: no devices");
  std::set<std::string> ids;
  for (const DeviceSlot& d : devices_) {
    if (d.id.empty()) return invalid_argument("scheduling problem: a device has no id");
    if (!ids.insert(d.id).second)
      return invalid_argument("scheduling problem: device '" + d.id + "' listed twice");
  }
  if (cost_.size() != graph_.task_count() * p || supported_.size() != cost_.size() ||
      links_.size() != p * p)
    return invalid_argument("scheduling problem: cost, support or link tables have wrong sizes");
  for (size_t i = 0; i < p; ++i)
    for (size_t j = 0; j < p; ++j) {
      if (i == j) continue;
      const LinkCost& l = links_[i * p + j];
      if (!(l.bandwidth_bytes_per_s >= 0) || !(l.latency_s >= 0) || std::isnan(l.latency_s) ||
          std::isinf(l.latency_s))
        return invalid_argument("scheduling problem: link " + devices_[i].id + " -> " +
                                devices_[j].id + " has a negative or invalid bandwidth/latency");
    }
  for (size_t t = 0; t < graph_.task_count(); ++t) {
    bool runnable = false;
    for (size_t d = 0; d < p; ++d) {
      const double c = cost_[t * p + d];
      if (std::isnan(c) || c < 0)
        return invalid_argument("scheduling problem: task '" + graph_.task(TaskId(t)).name +
                                "' has cost " + std::to_string(c) + " on " + devices_[d].id +
                                " (costs are seconds >= 0, or +inf)");
      runnable = runnable || (std::isfinite(c) && supported_[t * p + d]);
    }
    if (!runnable) {
      std::string why;
      for (size_t d = 0; d < p; ++d) {
        why += why.empty() ? "" : "; ";
        why += devices_[d].id + (supported_[t * p + d] ? ": no peak for its work (infinite cost)"
                                                       : ": not supported");
      }
      return invalid_argument("scheduling problem: task '" + graph_.task(TaskId(t)).name +
                              "' can run on no device (" + why + ")");
    }
  }
  return ok_status();
}

int32_t Schedule::compute_stream(int32_t device) const {
  for (size_t s = 0; s < streams.size(); ++s)
    if (streams[s].kind == StreamInfo::Kind::kCompute && streams[s].device == device)
      return int32_t(s);
  return -1;
}

double critical_path_min_cost(const Problem& problem) {
  const TaskGraph& g = problem.graph();
  std::vector<double> longest(g.task_count(), 0);
  double best = 0;
  for (TaskId t : g.topological_order()) {
    double m = kInfinity;
    for (int32_t d = 0; d < problem.device_count(); ++d)
      if (problem.supported(t, d)) m = std::min(m, problem.cost(t, d));
    double start = 0;
    for (int32_t e : g.in_edges(t)) start = std::max(start, longest[size_t(g.edge(e).from)]);
    longest[size_t(t)] = start + m;
    best = std::max(best, longest[size_t(t)]);
  }
  return best;
}

double schedule_length_ratio(const Problem& problem, const Schedule& schedule) {
  const double cp = critical_path_min_cost(problem);
  return cp > 0 ? schedule.makespan / cp : 1.0;
}

}  // namespace hal::scheduler
