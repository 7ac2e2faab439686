// Task priorities of the list schedulers: HEFT's upward ranks over mean costs and mean
// link costs, and PEFT's optimistic cost table with its ranks.
#include <algorithm>
#include <cmath>

#include "internal.h"

namespace hal::scheduler::detail {

namespace {

std::vector<double> mean_costs(const Problem& pb) {
  const int32_t p = pb.device_count();
  std::vector<double> w(size_t(pb.task_count()), 0);
  for (TaskId t = 0; t < pb.task_count(); ++t) {
    double sum = 0;
    int count = 0;
    for (int32_t d = 0; d < p; ++d)
      if (pb.supported(t, d) && std::isfinite(pb.cost(t, d))) {
        sum += pb.cost(t, d);
        ++count;
      }
    w[size_t(t)] = count ? sum / count : 0;
  }
  return w;
}

// Mean communication cost of an edge (the HEFT paper: mean latency + bytes / mean
// bandwidth over the usable links between distinct devices).
struct MeanLink {
  double latency = 0;
  double bandwidth = 0;
  double seconds(double bytes) const {
    if (bytes <= 0 || bandwidth <= 0) return 0;
    return latency + bytes / bandwidth;
  }
};
MeanLink mean_link(const Problem& pb) {
  MeanLink m;
  int count = 0;
  for (int32_t i = 0; i < pb.device_count(); ++i)
    for (int32_t j = 0; j < pb.device_count(); ++j) {
      if (i == j || !(pb.link(i, j).bandwidth_bytes_per_s > 0)) continue;
      m.latency += pb.link(i, j).latency_s;
      m.bandwidth += pb.link(i, j).bandwidth_bytes_per_s;
      ++count;
    }
  if (count) {
    m.latency /= count;
    m.bandwidth /= count;
  }
  return m;
}

}  // namespace

// PEFT's optimistic cost table: OCT(t, p) = max over children c of
// min over q of OCT(c, q) + w(c, q) + (q != p ? mean comm : 0).
std::vector<double> optimistic_cost_table(const Problem& pb) {
  const TaskGraph& g = pb.graph();
  const size_t p = size_t(pb.device_count());
  const MeanLink ml = mean_link(pb);
  std::vector<double> oct(size_t(pb.task_count()) * p, 0.0);
  std::vector<double> a(p);
  const auto& topo = g.topological_order();
  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    const TaskId t = *it;
    for (int32_t ei : g.out_edges(t)) {
      const Edge& e = g.edge(ei);
      double min_all = kInfinity;
      for (size_t q = 0; q < p; ++q) {
        const double w = pb.cost(e.to, int32_t(q));
        a[q] = pb.supported(e.to, int32_t(q)) && std::isfinite(w) ? oct[size_t(e.to) * p + q] + w
                                                                  : kInfinity;
        min_all = std::min(min_all, a[q]);
      }
      const double comm = ml.seconds(e.bytes);
      for (size_t q = 0; q < p; ++q) {
        const double v = std::min(a[q], min_all + comm);
        double& o = oct[size_t(t) * p + q];
        o = std::max(o, v);
      }
    }
  }
  return oct;
}

std::vector<double> oct_ranks(const Problem& pb, const std::vector<double>& oct) {
  const size_t p = size_t(pb.device_count());
  std::vector<double> rank(size_t(pb.task_count()), 0);
  for (TaskId t = 0; t < pb.task_count(); ++t) {
    double sum = 0;
    int count = 0;
    for (size_t d = 0; d < p; ++d)
      if (pb.supported(t, int32_t(d)) && std::isfinite(pb.cost(t, int32_t(d)))) {
        sum += oct[size_t(t) * p + d];
        ++count;
      }
    rank[size_t(t)] = count ? sum / count : 0;
  }
  return rank;
}

std::vector<double> upward_ranks(const Problem& pb) {
  const TaskGraph& g = pb.graph();
  const std::vector<double> w = mean_costs(pb);
  const MeanLink ml = mean_link(pb);
  std::vector<double> rank(size_t(pb.task_count()), 0);
  const auto& topo = g.topological_order();
  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    const TaskId t = *it;
    double tail = 0;
    for (int32_t ei : g.out_edges(t)) {
      const Edge& e = g.edge(ei);
      tail = std::max(tail, ml.seconds(e.bytes) + rank[size_t(e.to)]);
    }
    rank[size_t(t)] = w[size_t(t)] + tail;
  }
  return rank;
}

}  // namespace hal::scheduler::detail
