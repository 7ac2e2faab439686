// hal/collective_cost.h: the alpha-beta model of a collective's time on its links, shared
// by the simulated NPU (which adds its overhead, memory and vector-unit terms) and the
// runtime's scheduler and planner (which price collectives from DeviceInfo links), so
// both sides predict the same figure for the same links.
//
// Members 0..n-1 form the ring in rank order; link(a, b) is the directed link from member
// a to member b (latency alpha, bandwidth beta). With S the bytes of one member's data:
//   all_reduce      ring: 2(n-1) steps of S/n; tree: 2 (ceil(log2 n) alpha + S/beta)
//                   (pipelined, both directions of a binary tree); the faster is taken,
//                   as NCCL's tuner does
//   all_gather,     ring: (n-1) steps of one block (count elements)
//   reduce_scatter
//   broadcast       pipelined binary tree from the root: ceil(log2 n) alpha + S/beta
//   send/recv       alpha + S/beta over the pair's link (n = 2: member 0 sends)
// A step lasts as long as its slowest link; a tree's alpha and beta are its worst edge's.
// Each member's bytes sent and received, and the peer it sends to, follow the chosen
// algorithm (ring: 2(n-1)/n S to its successor for an all-reduce; tree: S per edge).
//
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "hal/collective.h"

namespace hal {

struct CollectiveLinkCost {
  double latency_s = 0;
  double bandwidth_bytes_per_s = 1;
  LinkClass link_class = LinkClass::kNone;
};

struct CollectiveTiming {
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kRing;
  double link_s = 0;  // time on the links (no launch overhead)
  struct Member {
    uint64_t bytes_sent = 0;
    uint64_t bytes_received = 0;
    int32_t peer = -1;  // the member it sends to; -1: several or none
    LinkClass link_class = LinkClass::kNone;
  };
  std::vector<Member> members;
  // The directed member pairs (from, to) that carry bytes.
  std::vector<std::pair<int32_t, int32_t>> edges;
};

CollectiveTiming time_collective(const CollectiveShape& shape, int32_t n,
                                 const std::function<CollectiveLinkCost(int32_t, int32_t)>& link);

}  // namespace hal
