// Exhaustive search for the optimal schedule of a small graph (contention-free links).
//
// Why enumerating (order, device) with the append policy is exact: take an optimal
// schedule and list its tasks by start time; placing them in that order, each as early
// as its device and inputs allow, gives every task a start no later than before (by
// induction), so the makespan is no worse. Repeating the argument on the result reaches a
// schedule whose tasks start in the order they are placed, so the search may also require
// non-decreasing start times along the order, which removes most duplicate orders.
#include <algorithm>
#include <cmath>
#include <functional>

#include "internal.h"

namespace hal::scheduler::detail {

namespace {

class Search {
 public:
  Search(const Problem& pb, const Options& opt, const std::vector<int32_t>& pins, double bound)
      : pb_(pb),
        g_(pb.graph()),
        n_(pb.task_count()),
        p_(pb.device_count()),
        max_nodes_(opt.exhaustive_max_nodes),
        best_(bound) {
    allowed_.assign(size_t(n_) * size_t(p_), 0);
    min_cost_.assign(size_t(n_), kInfinity);
    for (TaskId t = 0; t < n_; ++t) {
      const int32_t pin = pins.empty() ? -1 : pins[size_t(t)];
      const bool pin_usable = pin >= 0 && pb.supported(t, pin) && std::isfinite(pb.cost(t, pin));
      for (int32_t d = 0; d < p_; ++d) {
        const bool ok =
            pb.supported(t, d) && std::isfinite(pb.cost(t, d)) && (!pin_usable || d == pin);
        allowed_[size_t(t) * size_t(p_) + size_t(d)] = ok;
        if (ok) min_cost_[size_t(t)] = std::min(min_cost_[size_t(t)], pb.cost(t, d));
      }
    }
    bottom_.assign(size_t(n_), 0);
    const auto& topo = g_.topological_order();
    for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
      double tail = 0;
      for (int32_t e : g_.out_edges(*it)) tail = std::max(tail, bottom_[size_t(g_.edge(e).to)]);
      bottom_[size_t(*it)] = min_cost_[size_t(*it)] + tail;
    }
    rank_ = upward_ranks(pb);
    dev_.assign(size_t(n_), -1);
    finish_.assign(size_t(n_), 0);
    waiting_.resize(size_t(n_));
    for (TaskId t = 0; t < n_; ++t) waiting_[size_t(t)] = int32_t(g_.in_edges(t).size());
    free_at_.assign(size_t(p_), 0);
    used_.assign(size_t(p_), 0);
    holders_.assign(g_.resident_count() * size_t(p_), 0);
    remaining_work_ = 0;
    for (TaskId t = 0; t < n_; ++t) remaining_work_ += min_cost_[size_t(t)];
  }

  // True when an assignment better than the bound was found.
  bool run() {
    dfs(0, 0.0, 0.0);
    return !best_order_.empty();
  }
  bool aborted() const { return aborted_; }
  Assignment result() const { return Assignment{best_order_, best_device_}; }

 private:
  struct Move {
    TaskId task;
    int32_t device;
    double start;
    double finish;
  };

  double start_on(TaskId t, int32_t d) const {
    double s = free_at_[size_t(d)];
    for (int32_t ei : g_.in_edges(t)) {
      const Edge& e = g_.edge(ei);
      s = std::max(
          s, finish_[size_t(e.from)] + pb_.transfer_seconds(dev_[size_t(e.from)], d, e.bytes));
    }
    return s;
  }

  bool fits(TaskId t, int32_t d) const {
    const uint64_t cap = pb_.device(d).capacity_bytes;
    if (cap == 0) return true;
    uint64_t need = used_[size_t(d)];
    for (ResidentId r : g_.residents_of(t))
      if (!holders_[size_t(r) * size_t(p_) + size_t(d)]) need += g_.resident(r).bytes;
    return need <= cap;
  }

  void dfs(int32_t depth, double last_start, double makespan) {
    if (aborted_) return;
    if (++nodes_ > max_nodes_) {
      aborted_ = true;
      return;
    }
    if (depth == n_) {
      if (makespan < best_) {
        best_ = makespan;
        best_order_ = order_;
        best_device_ = dev_;
      }
      return;
    }
    // Lower bounds: every task left starts at or after last_start; the work left must
    // fit after each device's current end.
    double lb = makespan;
    double starts = 0;
    for (int32_t d = 0; d < p_; ++d) starts += std::max(free_at_[size_t(d)], last_start);
    lb = std::max(lb, (starts + remaining_work_) / p_);
    for (TaskId t = 0; t < n_; ++t)
      if (dev_[size_t(t)] < 0) lb = std::max(lb, last_start + bottom_[size_t(t)]);
    if (lb >= best_) return;

    std::vector<Move> moves;
    for (TaskId t = 0; t < n_; ++t) {
      if (dev_[size_t(t)] >= 0 || waiting_[size_t(t)] != 0) continue;
      for (int32_t d = 0; d < p_; ++d) {
        if (!allowed_[size_t(t) * size_t(p_) + size_t(d)] || !fits(t, d)) continue;
        const double s = start_on(t, d);
        if (s < last_start * (1 - 1e-12) - 1e-300) continue;  // keep starts non-decreasing
        const double f = s + pb_.cost(t, d);
        if (std::max(makespan, f) >= best_) continue;
        moves.push_back({t, d, s, f});
      }
    }
    std::sort(moves.begin(), moves.end(), [&](const Move& a, const Move& b) {
      if (rank_[size_t(a.task)] != rank_[size_t(b.task)])
        return rank_[size_t(a.task)] > rank_[size_t(b.task)];
      return a.finish < b.finish;
    });
    for (const Move& m : moves) {
      apply(m);
      dfs(depth + 1, m.start, std::max(makespan, m.finish));
      undo(m);
      if (aborted_) return;
    }
  }

  void apply(const Move& m) {
    dev_[size_t(m.task)] = m.device;
    finish_[size_t(m.task)] = m.finish;
    saved_free_.push_back(free_at_[size_t(m.device)]);
    free_at_[size_t(m.device)] = m.finish;
    for (int32_t e : g_.out_edges(m.task)) --waiting_[size_t(g_.edge(e).to)];
    for (ResidentId r : g_.residents_of(m.task))
      if (holders_[size_t(r) * size_t(p_) + size_t(m.device)]++ == 0)
        used_[size_t(m.device)] += g_.resident(r).bytes;
    remaining_work_ -= min_cost_[size_t(m.task)];
    order_.push_back(m.task);
  }

  void undo(const Move& m) {
    order_.pop_back();
    remaining_work_ += min_cost_[size_t(m.task)];
    for (ResidentId r : g_.residents_of(m.task))
      if (--holders_[size_t(r) * size_t(p_) + size_t(m.device)] == 0)
        used_[size_t(m.device)] -= g_.resident(r).bytes;
    for (int32_t e : g_.out_edges(m.task)) ++waiting_[size_t(g_.edge(e).to)];
    free_at_[size_t(m.device)] = saved_free_.back();
    saved_free_.pop_back();
    dev_[size_t(m.task)] = -1;
  }

  const Problem& pb_;
  const TaskGraph& g_;
  const int32_t n_;
  const int32_t p_;
  const uint64_t max_nodes_;
  std::vector<uint8_t> allowed_;
  std::vector<double> min_cost_, bottom_, rank_;
  std::vector<int32_t> dev_;
  std::vector<double> finish_;
  std::vector<int32_t> waiting_;
  std::vector<double> free_at_, saved_free_;
  std::vector<uint64_t> used_;
  std::vector<int32_t> holders_;
  double remaining_work_ = 0;
  std::vector<TaskId> order_;
  uint64_t nodes_ = 0;
  bool aborted_ = false;
  double best_;
  std::vector<TaskId> best_order_;
  std::vector<int32_t> best_device_;
};

}  // namespace

Result<Assignment> exhaustive_search(const Problem& problem, const Options& options,
                                     const std::vector<int32_t>& pins, double upper_bound,
                                     bool* proved) {
  Search search(problem, options, pins, upper_bound);
  const bool found = search.run();
  *proved = !search.aborted();
  if (found) return search.result();
  if (search.aborted())
    return deadline_exceeded("exhaustive search gave up after " +
                             std::to_string(options.exhaustive_max_nodes) + " nodes (" +
                             std::to_string(problem.task_count()) + " tasks on " +
                             std::to_string(problem.device_count()) + " devices)");
  return not_found("exhaustive search: nothing shorter than the bound");
}

}  // namespace hal::scheduler::detail
