// Refinement by units of placement (layers, loose tasks): local search that moves one
// unit at a time to another device and keeps the move when the makespan drops.
#include <algorithm>

#include "list_engine.h"

namespace hal::scheduler::detail {

// Local search over units of placement: each layer is one unit, each task outside the
// layers its own. Moving a unit to another device and re-timing the whole graph is
// accepted when the makespan drops; sweeps repeat until none does. Contiguous layer
// splits, the shape memory pressure calls for, are reached one boundary layer at a time,
// and tasks outside the blocks (embedding, LM head) find their own device.
Schedule refine_by_units(const Problem& pb, const Options& opt, const std::vector<int32_t>& pins,
                         const std::vector<double>& ranks, Schedule best) {
  const TaskGraph& g = pb.graph();
  const int32_t n = pb.task_count(), p = pb.device_count(), layers = g.layer_count();
  std::vector<int32_t> unit_of(static_cast<size_t>(n));
  int32_t units = layers;
  for (TaskId t = 0; t < n; ++t) {
    const int32_t l = g.task(t).layer;
    unit_of[size_t(t)] = l >= 0 ? l : units++;
  }
  if (units > 4096) return best;  // too many loose tasks for unit moves to pay off
  std::vector<std::vector<TaskId>> members(static_cast<size_t>(units));
  for (TaskId t : g.topological_order()) members[size_t(unit_of[size_t(t)])].push_back(t);
  // Units in the order the graph first reaches them.
  std::vector<int32_t> order;
  {
    std::vector<uint8_t> seen(static_cast<size_t>(units), 0);
    for (TaskId t : g.topological_order())
      if (!seen[size_t(unit_of[size_t(t)])]++) order.push_back(unit_of[size_t(t)]);
  }
  Engine engine(pb, opt, pins);
  RunConfig cfg;
  cfg.label = Algorithm::kRefine;
  cfg.policy = Policy::kPreferred;
  cfg.priority = &ranks;
  std::vector<int32_t> preferred(static_cast<size_t>(n));
  for (TaskId t = 0; t < n; ++t) preferred[size_t(t)] = best.tasks[size_t(t)].device;
  cfg.preferred = &preferred;
  std::vector<int32_t> saved;
  bool changed = false;
  // Each trial re-times the whole graph: bound the trials so refinement costs a bounded
  // multiple of one schedule however many layers there are.
  int64_t budget = std::clamp<int64_t>(int64_t(4'000'000) / std::max(n, 1), 16, 4000);
  // A unit's device: the one all its tasks share, -1 when mixed.
  auto unit_device = [&](int32_t u) {
    const auto& tasks = members[size_t(u)];
    const int32_t d = tasks.empty() ? -1 : preferred[size_t(tasks[0])];
    for (TaskId t : tasks)
      if (preferred[size_t(t)] != d) return -1;
    return d;
  };
  for (int32_t sweep = 0; sweep < opt.refine_max_sweeps && budget > 0; ++sweep) {
    bool improved = false;
    for (size_t k = 0; k < order.size() && budget > 0; ++k) {
      const int32_t u = order[k];
      const auto& tasks = members[size_t(u)];
      // Worth moving: units outside the layers, units split over devices, and units at
      // a boundary between devices (moving one shifts the boundary by one layer).
      const int32_t here = unit_device(u);
      const bool loose = u >= layers;
      const bool boundary = (k > 0 && unit_device(order[k - 1]) != here) ||
                            (k + 1 < order.size() && unit_device(order[k + 1]) != here);
      if (!loose && here >= 0 && !boundary) continue;
      for (int32_t d = 0; d < p && budget > 0; ++d) {
        if (here == d) continue;
        --budget;
        saved.clear();
        for (TaskId t : tasks) {
          saved.push_back(preferred[size_t(t)]);
          preferred[size_t(t)] = d;
        }
        auto s = run_with_capacity(engine, pb, cfg);
        if (s.ok() && s->makespan < best.makespan * (1 - 1e-9)) {
          best = std::move(*s);
          for (TaskId t = 0; t < n; ++t) preferred[size_t(t)] = best.tasks[size_t(t)].device;
          improved = changed = true;
        } else {
          for (size_t i = 0; i < tasks.size(); ++i) preferred[size_t(tasks[i])] = saved[i];
        }
      }
    }
    if (!improved) break;
  }
  if (changed) best.algorithm = Algorithm::kRefine;
  return best;
}

}  // namespace hal::scheduler::detail
