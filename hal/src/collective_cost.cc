// The alpha-beta collective model (hal/collective_cost.h).
#include "hal/collective_cost.h"

#include <algorithm>
#include <cmath>

namespace hal {

namespace {

int32_t ceil_log2(int32_t n) {
  int32_t d = 0;
  while ((int32_t(1) << d) < n) ++d;
  return d;
}

// Parent and children of node v of a binary tree over n nodes (v relative to the root).
int32_t tree_parent(int32_t v) { return v == 0 ? -1 : (v - 1) / 2; }
std::vector<int32_t> tree_children(int32_t v, int32_t n) {
  std::vector<int32_t> c;
  for (int32_t k : {2 * v + 1, 2 * v + 2})
    if (k < n) c.push_back(k);
  return c;
}

}  // namespace

CollectiveTiming time_collective(const CollectiveShape& shape, int32_t n,
                                 const std::function<CollectiveLinkCost(int32_t, int32_t)>& link) {
  CollectiveTiming p;
  p.members.resize(size_t(n));
  const uint64_t e = dtype_size(shape.dtype);
  const double S = double(shape.count * e);  // one member's data
  const bool p2p = shape.kind == CollectiveKind::kSend || shape.kind == CollectiveKind::kRecv;

  // A step over `edges` moving `bytes` on each lasts as long as its slowest edge.
  auto step = [&](const std::vector<std::pair<int32_t, int32_t>>& edges, double bytes) {
    double t = 0;
    for (auto [a, b] : edges) {
      const CollectiveLinkCost l = link(a, b);
      t = std::max(t, l.latency_s + bytes / l.bandwidth_bytes_per_s);
    }
    return t;
  };
  std::vector<std::pair<int32_t, int32_t>> ring;
  for (int32_t i = 0; i < n; ++i) ring.push_back({i, (i + 1) % n});
  auto use_ring = [&](double sent_per_member) {
    p.algorithm = CollectiveAlgorithm::kRing;
    p.edges = ring;
    for (int32_t i = 0; i < n; ++i) {
      auto& m = p.members[size_t(i)];
      m.bytes_sent = m.bytes_received = uint64_t(std::llround(sent_per_member));
      m.peer = (i + 1) % n;
      m.link_class = link(i, (i + 1) % n).link_class;
    }
  };
  // A binary tree rooted at `root`: edges parent->child; the tree's alpha and beta.
  auto tree = [&](int32_t root, double* alpha, double* beta) {
    std::vector<std::pair<int32_t, int32_t>> edges;
    *alpha = 0;
    *beta = 1e300;
    for (int32_t v = 1; v < n; ++v) {
      const int32_t child = (v + root) % n, parent = (tree_parent(v) + root) % n;
      edges.push_back({parent, child});
      for (auto [a, b] : {std::pair{parent, child}, std::pair{child, parent}}) {
        const CollectiveLinkCost l = link(a, b);
        *alpha = std::max(*alpha, l.latency_s);
        *beta = std::min(*beta, l.bandwidth_bytes_per_s);
      }
    }
    return edges;
  };

  if (n <= 1) {
    p.algorithm = CollectiveAlgorithm::kDirect;
    p.link_s = 0;
  } else if (p2p) {
    const CollectiveLinkCost l = link(0, 1);
    p.algorithm = CollectiveAlgorithm::kDirect;
    p.link_s = l.latency_s + S / l.bandwidth_bytes_per_s;
    p.edges = {{0, 1}};
    p.members[0].bytes_sent = uint64_t(S);
    p.members[0].peer = 1;
    p.members[0].link_class = l.link_class;
    p.members[1].bytes_received = uint64_t(S);
    p.members[1].link_class = l.link_class;
  } else if (shape.kind == CollectiveKind::kAllReduce) {
    const double ring_s = 2.0 * (n - 1) * step(ring, S / n);
    double alpha, beta;
    const auto tree_edges = tree(0, &alpha, &beta);
    const double tree_s = 2.0 * (ceil_log2(n) * alpha + S / beta);
    if (ring_s <= tree_s) {
      p.link_s = ring_s;
      use_ring(2.0 * (n - 1) / n * S);
    } else {
      p.link_s = tree_s;
      p.algorithm = CollectiveAlgorithm::kTree;
      p.edges = tree_edges;
      for (auto [a, b] : tree_edges) p.edges.push_back({b, a});  // reduce up, broadcast down
      for (int32_t v = 0; v < n; ++v) {
        auto& m = p.members[size_t(v)];
        const uint64_t kids = tree_children(v, n).size(), up = v > 0 ? 1 : 0;
        m.bytes_sent = m.bytes_received = uint64_t(S) * (kids + up);
        m.peer = (kids + up == 1) ? (up ? tree_parent(v) : tree_children(v, n)[0]) : -1;
        m.link_class = link(v, up ? tree_parent(v) : tree_children(v, n)[0]).link_class;
      }
    }
  } else if (shape.kind == CollectiveKind::kAllGather ||
             shape.kind == CollectiveKind::kReduceScatter) {
    p.link_s = (n - 1) * step(ring, S);
    use_ring((n - 1) * S);
  } else {  // broadcast
    double alpha, beta;
    p.edges = tree(shape.peer, &alpha, &beta);
    p.algorithm = CollectiveAlgorithm::kTree;
    p.link_s = ceil_log2(n) * alpha + S / beta;
    for (int32_t v = 0; v < n; ++v) {
      const int32_t member = (v + shape.peer) % n;
      auto& m = p.members[size_t(member)];
      const auto kids = tree_children(v, n);
      m.bytes_sent = uint64_t(S) * kids.size();
      m.bytes_received = v > 0 ? uint64_t(S) : 0;
      m.peer = kids.size() == 1 ? (kids[0] + shape.peer) % n : -1;
      // The link it forwards over (to its first child), a leaf's the one it receives on.
      m.link_class = (kids.empty() ? link((tree_parent(v) + shape.peer) % n, member)
                                   : link(member, (kids[0] + shape.peer) % n))
                         .link_class;
    }
  }
  return p;
}

}  // namespace hal
