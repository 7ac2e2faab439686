// Layer partition: contiguous layer ranges per device by dynamic programming (the split a
// model too big for one device calls for), as a preferred device per task.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "hal/units.h"
#include "internal.h"

namespace hal::scheduler::detail {

// The contract is in internal.h.
Result<std::vector<int32_t>> layer_partition(const Problem& pb) {
  const TaskGraph& g = pb.graph();
  const int32_t n = pb.task_count();
  const int32_t layers = g.layer_count();
  if (layers < 2) return failed_precondition("layer partition: the graph has fewer than 2 layers");
  // Effective layer: own layer; else the latest layer among predecessors; else the
  // earliest among successors; else 0.
  std::vector<int32_t> eff(size_t(n), -1);
  const auto& topo = g.topological_order();
  for (TaskId t : topo) {
    int32_t l = g.task(t).layer;
    if (l < 0)
      for (int32_t e : g.in_edges(t)) l = std::max(l, eff[size_t(g.edge(e).from)]);
    eff[size_t(t)] = l;
  }
  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    const TaskId t = *it;
    if (eff[size_t(t)] >= 0) continue;
    int32_t l = layers;
    for (int32_t e : g.out_edges(t)) {
      const int32_t s = eff[size_t(g.edge(e).to)];
      if (s >= 0) l = std::min(l, s);
    }
    eff[size_t(t)] = l < layers ? l : 0;
  }
  // Deep graphs are planned over at most 256 contiguous groups of layers: the DP is
  // quadratic in the number of units.
  int32_t units = layers;
  if (layers > 256) {
    const int32_t block = (layers + 255) / 256;
    for (int32_t& e : eff) e /= block;
    units = (layers + block - 1) / block;
  }

  // Consider at most 6 devices (the DP is exponential in them): the cheapest in total.
  const int32_t p_all = pb.device_count();
  std::vector<int32_t> devs(static_cast<size_t>(p_all));
  std::iota(devs.begin(), devs.end(), 0);
  std::vector<double> total(size_t(p_all), 0);
  std::vector<double> min_cost(size_t(n), kInfinity);
  for (TaskId t = 0; t < n; ++t)
    for (int32_t d = 0; d < p_all; ++d)
      if (pb.supported(t, d)) min_cost[size_t(t)] = std::min(min_cost[size_t(t)], pb.cost(t, d));
  auto cost_on = [&](TaskId t, int32_t d) {
    const double c = pb.cost(t, d);
    return pb.supported(t, d) && std::isfinite(c) ? c : min_cost[size_t(t)];
  };
  for (int32_t d = 0; d < p_all; ++d)
    for (TaskId t = 0; t < n; ++t) total[size_t(d)] += cost_on(t, d);
  std::sort(devs.begin(), devs.end(), [&](int32_t a, int32_t b) {
    return total[size_t(a)] < total[size_t(b)] || (total[size_t(a)] == total[size_t(b)] && a < b);
  });
  if (devs.size() > 6) devs.resize(6);
  const int32_t p = int32_t(devs.size());
  const size_t L = size_t(units);

  // Per layer: compute per device (prefix sums), resident bytes (a tensor counts at the
  // first layer using it), bytes crossing the boundary before it.
  std::vector<double> cprefix(size_t(p) * (L + 1), 0);
  std::vector<double> layer_cost(size_t(p) * L, 0);
  for (TaskId t = 0; t < n; ++t)
    for (int32_t i = 0; i < p; ++i)
      layer_cost[size_t(i) * L + size_t(eff[size_t(t)])] += cost_on(t, devs[size_t(i)]);
  for (int32_t i = 0; i < p; ++i)
    for (size_t l = 0; l < L; ++l)
      cprefix[size_t(i) * (L + 1) + l + 1] =
          cprefix[size_t(i) * (L + 1) + l] + layer_cost[size_t(i) * L + l];
  std::vector<int32_t> first_use(g.resident_count(), units);
  for (TaskId t = 0; t < n; ++t)
    for (ResidentId r : g.residents_of(t))
      first_use[size_t(r)] = std::min(first_use[size_t(r)], eff[size_t(t)]);
  std::vector<uint64_t> rprefix(L + 1, 0);
  {
    std::vector<uint64_t> per_layer(L, 0);
    for (size_t r = 0; r < g.resident_count(); ++r)
      if (first_use[r] < units) per_layer[size_t(first_use[r])] += g.resident(ResidentId(r)).bytes;
    for (size_t l = 0; l < L; ++l) rprefix[l + 1] = rprefix[l] + per_layer[l];
  }
  std::vector<double> cut(L + 1, 0);  // cut[l]: bytes crossing from < l to >= l
  {
    std::vector<double> diff(L + 2, 0);
    for (TaskId u = 0; u < n; ++u) {
      // Each output of u crosses the boundaries up to the last layer reading it, once.
      std::vector<std::pair<int32_t, std::pair<int32_t, double>>> outs;  // data -> (layer, bytes)
      for (int32_t e : g.out_edges(u)) {
        const Edge& ed = g.edge(e);
        const int32_t lv = eff[size_t(ed.to)];
        if (lv <= eff[size_t(u)] || ed.bytes <= 0) continue;
        auto it = std::find_if(outs.begin(), outs.end(),
                               [&](const auto& o) { return o.first == ed.data; });
        if (it == outs.end())
          outs.push_back({ed.data, {lv, ed.bytes}});
        else
          it->second = {std::max(it->second.first, lv), std::max(it->second.second, ed.bytes)};
      }
      for (const auto& [data, lb] : outs) {
        diff[size_t(eff[size_t(u)]) + 1] += lb.second;
        diff[size_t(lb.first) + 1] -= lb.second;
      }
    }
    double run = 0;
    for (size_t l = 0; l <= L; ++l) {
      run += diff[l];
      cut[l] = run;
    }
  }

  // DP over (layer l, used set S, last device i).
  const size_t sets = size_t(1) << p;
  auto at = [&](size_t l, size_t s, int32_t i) { return (l * sets + s) * size_t(p) + size_t(i); };
  std::vector<double> f((L + 1) * sets * size_t(p), kInfinity);
  struct Parent {
    int32_t l = -1;
    int32_t set = 0;
    int32_t dev = -1;
  };
  std::vector<Parent> parent(f.size());
  auto capacity_ok = [&](int32_t i, size_t from, size_t to) {
    const uint64_t cap = pb.device(devs[size_t(i)]).capacity_bytes;
    return cap == 0 || rprefix[to] - rprefix[from] <= cap;
  };
  auto segment_cost = [&](int32_t i, size_t from, size_t to) {
    return cprefix[size_t(i) * (L + 1) + to] - cprefix[size_t(i) * (L + 1) + from];
  };
  for (int32_t i = 0; i < p; ++i)
    for (size_t m = 1; m <= L; ++m) {
      if (!capacity_ok(i, 0, m)) break;
      const size_t k = at(m, size_t(1) << i, i);
      const double c = segment_cost(i, 0, m);
      if (c < f[k]) {
        f[k] = c;
        parent[k] = Parent{0, 0, -1};
      }
    }
  for (size_t l = 1; l < L; ++l)
    for (size_t s = 1; s < sets; ++s)
      for (int32_t i = 0; i < p; ++i) {
        const double base = f[at(l, s, i)];
        if (!std::isfinite(base)) continue;
        for (int32_t j = 0; j < p; ++j) {
          if (s & (size_t(1) << j)) continue;
          const double boundary = pb.transfer_seconds(devs[size_t(i)], devs[size_t(j)], cut[l]);
          for (size_t m = l + 1; m <= L; ++m) {
            if (!capacity_ok(j, l, m)) break;
            const size_t k = at(m, s | (size_t(1) << j), j);
            const double c = base + boundary + segment_cost(j, l, m);
            if (c < f[k]) {
              f[k] = c;
              parent[k] = Parent{int32_t(l), int32_t(s), i};
            }
          }
        }
      }
  double best = kInfinity;
  size_t best_s = 0;
  int32_t best_i = -1;
  for (size_t s = 1; s < sets; ++s)
    for (int32_t i = 0; i < p; ++i)
      if (f[at(L, s, i)] < best) {
        best = f[at(L, s, i)];
        best_s = s;
        best_i = i;
      }
  if (best_i < 0)
    return out_of_memory("layer partition: no split of the " + std::to_string(layers) +
                         " layers into contiguous ranges fits the devices' memory (" +
                         format_bytes(rprefix[L]) + " resident in all)");
  std::vector<int32_t> device_of_layer(L, -1);
  size_t l = L, s = best_s;
  int32_t i = best_i;
  while (l > 0) {
    const Parent& par = parent[at(l, s, i)];
    for (size_t k = size_t(par.l); k < l; ++k) device_of_layer[k] = devs[size_t(i)];
    l = size_t(par.l);
    s = size_t(par.set);
    i = par.dev;
  }
  std::vector<int32_t> preferred(static_cast<size_t>(n));
  for (TaskId t = 0; t < n; ++t) preferred[size_t(t)] = device_of_layer[size_t(eff[size_t(t)])];
  return preferred;
}

}  // namespace hal::scheduler::detail
