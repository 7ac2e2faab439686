// The list-scheduling engine (list_engine.h): placing tasks one by one, by policy, with
// their transfers on the link timelines, and the capacity loop around a run.
#include "list_engine.h"

#include <algorithm>
#include <cmath>
#include <queue>

#include "hal/units.h"

namespace hal::scheduler::detail {

Engine::Engine(const Problem& pb, const Options& opt, const std::vector<int32_t>& pins)
    : pb_(pb), g_(pb.graph()), opt_(opt), pins_(pins), p_(pb.device_count()), n_(pb.task_count()) {
  has_unsupported_.assign(size_t(n_), 0);
  for (TaskId t = 0; t < n_; ++t)
    for (int32_t d = 0; d < p_; ++d)
      if (!pb_.supported(t, d) && std::isfinite(pb_.cost(t, d))) has_unsupported_[size_t(t)] = 1;
  shared_data_.assign(g_.edge_count(), 0);
  std::vector<std::pair<int32_t, int32_t>> by_data;  // (data, edge) of one task
  for (TaskId u = 0; u < n_; ++u) {
    by_data.clear();
    for (int32_t e : g_.out_edges(u)) by_data.emplace_back(g_.edge(e).data, e);
    std::sort(by_data.begin(), by_data.end());
    for (size_t i = 1; i < by_data.size(); ++i)
      if (by_data[i].first == by_data[i - 1].first)
        shared_data_[size_t(by_data[i].second)] = shared_data_[size_t(by_data[i - 1].second)] = 1;
  }
}

Status Engine::run(const RunConfig& cfg) {
  cfg_ = &cfg;
  reset();
  if (cfg.order) {
    for (TaskId t : *cfg.order) HAL_RETURN_IF_ERROR(place(t));
    return ok_status();
  }
  // Ready queue: highest priority first, then earliest in topological order.
  std::vector<int32_t> waiting(static_cast<size_t>(n_));
  using Item = std::pair<double, int32_t>;  // (priority, -topological position)
  std::priority_queue<Item> ready;
  const std::vector<TaskId>& topo = g_.topological_order();
  for (TaskId t = 0; t < n_; ++t) {
    waiting[size_t(t)] = int32_t(g_.in_edges(t).size());
    if (waiting[size_t(t)] == 0)
      ready.emplace((*cfg.priority)[size_t(t)], -g_.topological_position(t));
  }
  while (!ready.empty()) {
    const TaskId t = topo[size_t(-ready.top().second)];
    ready.pop();
    HAL_RETURN_IF_ERROR(place(t));
    for (int32_t e : g_.out_edges(t)) {
      const TaskId c = g_.edge(e).to;
      if (--waiting[size_t(c)] == 0)
        ready.emplace((*cfg.priority)[size_t(c)], -g_.topological_position(c));
    }
  }
  return ok_status();
}

void Engine::reset() {
  const bool insertion = opt_.insertion;
  device_tl_.assign(size_t(p_), GapTimeline(insertion));
  if (opt_.link_model == LinkModel::kSerialized)
    link_tl_.assign(size_t(p_) * size_t(p_), GapTimeline(insertion));
  else
    link_tl_.clear();
  dev_.assign(size_t(n_), -1);
  start_.assign(size_t(n_), 0);
  finish_.assign(size_t(n_), 0);
  transfers_.clear();
  transfer_next_.clear();
  transfer_head_.assign(size_t(n_), -1);
  edge_transfer_.assign(g_.edge_count(), -1);
  resident_on_.assign(g_.resident_count() * size_t(p_), 0);
  used_.assign(size_t(p_), 0);
  fallbacks_.clear();
  round_robin_ = 0;
}

int32_t Engine::find_transfer(TaskId source, int32_t data, int32_t to) const {
  for (int32_t x = transfer_head_[size_t(source)]; x >= 0; x = transfer_next_[size_t(x)])
    if (transfers_[size_t(x)].data == data && transfers_[size_t(x)].to_device == to) return x;
  return -1;
}

double Engine::data_ready(TaskId t, int32_t d, TaskId ov, int32_t ov_dev, double ov_finish) const {
  double ready = 0;
  pending_ready_.clear();
  for (int32_t ei : g_.in_edges(t)) {
    const Edge& e = g_.edge(ei);
    int32_t du;
    double fu;
    if (e.from == ov) {
      du = ov_dev;
      fu = ov_finish;
    } else {
      du = dev_[size_t(e.from)];
      if (du < 0) continue;
      fu = finish_[size_t(e.from)];
    }
    double arrive = fu;
    if (du != d && e.bytes > 0) {
      // Only data another edge also carries can already have a transfer to d.
      const int32_t x =
          e.from == ov || !shared_data_[size_t(ei)] ? -1 : find_transfer(e.from, e.data, d);
      if (x >= 0) {
        arrive = transfers_[size_t(x)].finish;
      } else {
        const double dur = pb_.transfer_seconds(du, d, e.bytes);
        if (link_tl_.empty()) {
          arrive = fu + dur;
        } else {
          pending_ready_.push_back({fu, dur, du});
          continue;
        }
      }
    }
    ready = std::max(ready, arrive);
  }
  if (pending_ready_.size() == 1) {
    const PendingReady& q = pending_ready_[0];
    return std::max(ready, link_tl(q.from, d).earliest(q.source_finish, q.seconds) + q.seconds);
  }
  if (!pending_ready_.empty()) {
    std::sort(pending_ready_.begin(), pending_ready_.end(),
              [](const PendingReady& a, const PendingReady& b) {
                return a.source_finish < b.source_finish;
              });
    link_end_.assign(size_t(p_), 0.0);
    for (const PendingReady& q : pending_ready_) {
      double& end = link_end_[size_t(q.from)];
      const double s = link_tl(q.from, d).earliest(std::max(q.source_finish, end), q.seconds);
      end = s + q.seconds;
      ready = std::max(ready, end);
    }
  }
  return ready;
}

double Engine::eft(TaskId t, int32_t d) const {
  const double c = pb_.cost(t, d);
  return device_tl_[size_t(d)].earliest(data_ready(t, d), c) + c;
}

uint64_t Engine::new_resident_bytes(TaskId t, int32_t d) const {
  uint64_t extra = 0;
  for (ResidentId r : g_.residents_of(t))
    if (!resident_on_[size_t(r) * size_t(p_) + size_t(d)]) extra += g_.resident(r).bytes;
  return extra;
}

bool Engine::fits(TaskId t, int32_t d) const {
  const uint64_t cap = pb_.device(d).capacity_bytes;
  if (cap == 0) return true;
  const uint64_t need = used_[size_t(d)] + new_resident_bytes(t, d) + cfg_->reserve[size_t(d)];
  return need <= cap;
}

bool Engine::eligible(TaskId t, int32_t d) const {
  return std::isfinite(pb_.cost(t, d)) && fits(t, d);
}

double Engine::metric(TaskId t, int32_t d) const {
  const double f = eft(t, d);
  switch (cfg_->policy) {
    case Policy::kPeft:
      return f + (*cfg_->oct)[size_t(t) * size_t(p_) + size_t(d)];
    case Policy::kLookahead:
      return lookahead(t, d, f);
    default:
      return f;
  }
}

double Engine::lookahead(TaskId t, int32_t d, double t_finish) const {
  double worst = t_finish;
  for (int32_t ei : g_.out_edges(t)) {
    const TaskId c = g_.edge(ei).to;
    double best = kInfinity;
    for (int32_t q = 0; q < p_; ++q) {
      const double cost = pb_.cost(c, q);
      if (!pb_.supported(c, q) || !std::isfinite(cost)) continue;
      const double ready = data_ready(c, q, t, d, t_finish);
      // t's own slot on d lies before `ready` when q == d (c depends on t).
      best = std::min(best, device_tl_[size_t(q)].earliest(ready, cost) + cost);
    }
    if (std::isfinite(best)) worst = std::max(worst, best);
  }
  return worst;
}

void Engine::choose(TaskId t, int32_t* preferred, int32_t* chosen) const {
  double best_any = kInfinity, best_sup = kInfinity;
  *preferred = *chosen = -1;
  const bool look_unsupported = has_unsupported_[size_t(t)] != 0;
  for (int32_t d = 0; d < p_; ++d) {
    const bool sup = pb_.supported(t, d);
    if ((!sup && !look_unsupported) || !eligible(t, d)) continue;
    const double m = metric(t, d);
    if (sup && m < best_sup) {
      best_sup = m;
      *chosen = d;
    }
    if (m < best_any ||
        (m == best_any && sup && *preferred >= 0 && !pb_.supported(t, *preferred))) {
      best_any = m;
      *preferred = d;
    }
  }
}

Status Engine::no_device(TaskId t) const {
  std::string why;
  for (int32_t d = 0; d < p_; ++d) {
    why += why.empty() ? "" : "; ";
    why += pb_.device(d).id + ": ";
    if (!pb_.supported(t, d)) {
      why += "does not support it";
    } else if (!std::isfinite(pb_.cost(t, d))) {
      why += "no peak for its work";
    } else {
      const uint64_t cap = pb_.device(d).capacity_bytes;
      const uint64_t held = used_[size_t(d)] + cfg_->reserve[size_t(d)];
      why += "needs " + format_bytes(new_resident_bytes(t, d)) + " more, " +
             format_bytes(cap > held ? cap - held : 0) + " free of " + format_bytes(cap);
      if (cfg_->reserve[size_t(d)])
        why += " (" + format_bytes(cfg_->reserve[size_t(d)]) + " kept for activations)";
    }
  }
  return out_of_memory("cannot place task " + task_label(g_, t) + ": " + why);
}

Status Engine::record_fallback(TaskId t, int32_t preferred, int32_t chosen,
                               const std::string& why) {
  Fallback f;
  f.task = t;
  f.preferred_device = preferred;
  f.chosen_device = chosen;
  f.reason = why;
  f.preferred_finish = eft(t, preferred);
  f.chosen_finish = eft(t, chosen);
  if (opt_.strict_placement)
    return failed_precondition("strict placement: " + why + "; it would run on " +
                               pb_.device(chosen).id + " instead (finish " +
                               format_seconds(f.chosen_finish) + " instead of " +
                               format_seconds(f.preferred_finish) + ")");
  fallbacks_.push_back(std::move(f));
  return ok_status();
}

std::string Engine::unsupported_reason(TaskId t, int32_t d, bool pinned) const {
  const std::string what =
      pb_.supported(t, d) ? "has no peak for its work (infinite cost)" : "does not support it";
  return "task " + task_label(g_, t) + " (" + std::string(op_class_name(g_.task(t).work.op_class)) +
         ") " + (pinned ? "is pinned to " : "prefers ") + pb_.device(d).id + ", which " + what;
}

Status Engine::place(TaskId t) {
  int32_t fixed = pins_.empty() ? -1 : pins_[size_t(t)];
  const bool pinned = fixed >= 0;
  if (cfg_->order) {
    // Replaying a searched assignment: it already honours usable pins; a pin it could
    // not honour (the device does not support the task) is a fallback like any other.
    const int32_t d = (*cfg_->preferred)[size_t(t)];
    if (pinned && d != fixed)
      HAL_RETURN_IF_ERROR(record_fallback(t, fixed, d, unsupported_reason(t, fixed, true)));
    commit(t, d);
    return ok_status();
  }
  if (!pinned) {
    if (cfg_->policy == Policy::kPreferred) fixed = (*cfg_->preferred)[size_t(t)];
    if (cfg_->policy == Policy::kRoundRobin) fixed = round_robin_++ % p_;
  }
  int32_t d = -1;
  if (fixed >= 0) {
    const bool sup = pb_.supported(t, fixed) && std::isfinite(pb_.cost(t, fixed));
    if (sup && fits(t, fixed)) {
      d = fixed;
    } else if (pinned && sup) {
      const uint64_t cap = pb_.device(fixed).capacity_bytes;
      return out_of_memory("pinned placement puts task " + task_label(g_, t) + " on " +
                           pb_.device(fixed).id +
                           ", which cannot hold it: " + format_bytes(used_[size_t(fixed)]) +
                           " resident + " + format_bytes(new_resident_bytes(t, fixed)) +
                           " more + " + format_bytes(cfg_->reserve[size_t(fixed)]) +
                           " for activations > capacity " + format_bytes(cap));
    } else {
      // The fixed device cannot run it (a fallback) or, unpinned, cannot hold it (a
      // spill): the best device by earliest finish among those that can.
      int32_t any, sup_best;
      choose(t, &any, &sup_best);
      if (sup_best < 0) return no_device(t);
      d = sup_best;
      if (!sup)
        HAL_RETURN_IF_ERROR(record_fallback(t, fixed, d, unsupported_reason(t, fixed, pinned)));
    }
  } else {
    int32_t preferred, chosen;
    choose(t, &preferred, &chosen);
    if (chosen < 0) return no_device(t);
    d = chosen;
    if (preferred != chosen && !pb_.supported(t, preferred))
      HAL_RETURN_IF_ERROR(
          record_fallback(t, preferred, chosen, unsupported_reason(t, preferred, false)));
  }
  commit(t, d);
  return ok_status();
}

void Engine::commit(TaskId t, int32_t d) {
  double ready = 0;
  pending_.clear();
  for (int32_t ei : g_.in_edges(t)) {
    const Edge& e = g_.edge(ei);
    const int32_t du = dev_[size_t(e.from)];
    if (du == d || e.bytes <= 0) {
      ready = std::max(ready, finish_[size_t(e.from)]);
      continue;
    }
    const int32_t x = find_transfer(e.from, e.data, d);
    if (x >= 0) {
      ready = std::max(ready, transfers_[size_t(x)].finish);
      edge_transfer_[size_t(ei)] = x;
      continue;
    }
    pending_.push_back({finish_[size_t(e.from)], ei});
  }
  // New transfers queue on their links in the order their data becomes available.
  std::sort(pending_.begin(), pending_.end(), [](const auto& a, const auto& b) {
    return a.source_finish < b.source_finish ||
           (a.source_finish == b.source_finish && a.edge < b.edge);
  });
  for (const PendingTransfer& pt : pending_) {
    const Edge& e = g_.edge(pt.edge);
    const int32_t du = dev_[size_t(e.from)];
    const int32_t x = find_transfer(e.from, e.data, d);  // an earlier edge of the same data
    if (x >= 0) {
      ready = std::max(ready, transfers_[size_t(x)].finish);
      edge_transfer_[size_t(pt.edge)] = x;
      continue;
    }
    const double dur = pb_.transfer_seconds(du, d, e.bytes);
    double s = pt.source_finish;
    if (!link_tl_.empty()) {
      s = link_tl(du, d).earliest(s, dur);
      link_tl(du, d).occupy(s, dur);
    }
    Transfer tr;
    tr.source = e.from;
    tr.data = e.data;
    tr.from_device = du;
    tr.to_device = d;
    tr.bytes = e.bytes;
    tr.start = s;
    tr.finish = s + dur;
    transfers_.push_back(tr);
    transfer_next_.push_back(transfer_head_[size_t(e.from)]);
    transfer_head_[size_t(e.from)] = int32_t(transfers_.size() - 1);
    edge_transfer_[size_t(pt.edge)] = int32_t(transfers_.size() - 1);
    ready = std::max(ready, tr.finish);
  }
  const double c = pb_.cost(t, d);
  const double s = device_tl_[size_t(d)].earliest(ready, c);
  device_tl_[size_t(d)].occupy(s, c);
  dev_[size_t(t)] = d;
  start_[size_t(t)] = s;
  finish_[size_t(t)] = s + c;
  for (ResidentId r : g_.residents_of(t)) {
    uint8_t& on = resident_on_[size_t(r) * size_t(p_) + size_t(d)];
    if (!on) {
      on = 1;
      used_[size_t(d)] += g_.resident(r).bytes;
    }
  }
}

// Runs one configuration, growing the activation reserve of a device until the measured
// activation peak fits next to its resident tensors.
Result<Schedule> run_with_capacity(Engine& engine, const Problem& pb, RunConfig cfg) {
  const int32_t p = pb.device_count();
  cfg.reserve.assign(size_t(p), 0);
  for (int iter = 0; iter < 8; ++iter) {
    HAL_RETURN_IF_ERROR(engine.run(cfg));
    Schedule s = engine.assemble();
    bool settled = true;
    for (int32_t d = 0; d < p; ++d) {
      const DeviceMemory& m = s.memory[size_t(d)];
      if (m.capacity_bytes == 0 || m.peak_bytes() <= m.capacity_bytes) continue;
      if (m.peak_activation_bytes <= cfg.reserve[size_t(d)])
        return internal_error("scheduler: capacity accounting broke on " + pb.device(d).id);
      cfg.reserve[size_t(d)] = m.peak_activation_bytes;
      settled = false;
    }
    if (settled) return s;
  }
  return out_of_memory("scheduler (" + std::string(algorithm_name(cfg.label)) +
                       "): activations do not fit next to the resident tensors even after "
                       "keeping room for their measured peak");
}

}  // namespace hal::scheduler::detail
