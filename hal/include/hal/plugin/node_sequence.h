// hal/plugin/node_sequence.h (plugin kit): the pieces of an executable that runs its
// view's nodes one after another inside one stream command. It is the smallest
// executable a backend can offer (the template's), and what the CPU backend's fused
// executables and the NPU simulator's functional execution build on.
//
// - partition_contiguous(): units are the maximal runs of consecutive view nodes the
//   device takes. The view lists nodes in a dependency order, so a run of consecutive
//   nodes is convex (every path between two of its nodes passes only through nodes
//   listed between them).
// - ScratchLayout: where each internal intermediate (an owner of storage that is neither
//   bound nor a view) lives in the execution's scratch, planned by liveness over the
//   node order (values whose lifetimes do not overlap share bytes).
// - node_call(): a node as an OpCall over the execution's buffers (bound values at their
//   bindings, internal ones in the scratch, views at their offsets at this execution's
//   symbol values, attention's kv_length from its symbol), for the backend's own
//   dispatch path; value_storage(): only where a value lives, for a backend that keeps
//   each node's OpSpec from one execution to the next.
// - add_roofline() / append_group(): the prediction of an executable without a timing
//   model of its own: each node at its roofline time, back to back.
//
// Threading: pure functions over their arguments.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "hal/graph_view.h"
#include "hal/plugin/plugin_interfaces.h"

namespace hal::plugin {

// `decline(node, spec)` returns "" to take a node, else why it declines it.
inline Partition partition_contiguous(
    const GraphView& view, const std::function<std::string(size_t, const OpSpec&)>& decline) {
  Partition p;
  p.node_unit.assign(view.nodes.size(), -1);
  p.reasons.assign(view.nodes.size(), "");
  bool open = false;
  for (size_t n = 0; n < view.nodes.size(); ++n) {
    std::string why = decline(n, view.node_spec(n));
    if (why.empty()) {
      if (!open) ++p.units;
      open = true;
      p.node_unit[n] = p.units - 1;
    } else {
      open = false;
      p.reasons[n] = std::move(why);
    }
  }
  return p;
}

struct ScratchLayout {
  std::vector<uint64_t> offset;  // by value index: for internal owners
  uint64_t bytes = 0;            // the scratch an execution needs

  static constexpr uint64_t kAlignment = 64;

  // First and last node touching each internal owner (its writes, its views' reads).
  static std::vector<std::pair<int32_t, int32_t>> lifetimes(const GraphView& view) {
    std::vector<std::pair<int32_t, int32_t>> life(view.values.size(), {-1, -1});
    auto touch = [&](int32_t v, int32_t n) {
      auto& l = life[size_t(view.owner(v))];
      if (l.first < 0) l.first = n;
      l.second = std::max(l.second, n);
    };
    for (size_t n = 0; n < view.nodes.size(); ++n) {
      for (int32_t in : view.nodes[n].inputs) touch(in, int32_t(n));
      touch(view.nodes[n].output, int32_t(n));
    }
    return life;
  }

  // Internal owners (those `place` accepts; default: every one) placed first-fit by
  // offset, largest first, among the owners whose lifetimes overlap theirs.
  static ScratchLayout plan(const GraphView& view, const std::function<bool(int32_t)>& place = {}) {
    ScratchLayout s;
    s.offset.assign(view.values.size(), 0);
    const auto life = lifetimes(view);
    std::vector<int32_t> owners;
    for (size_t v = 0; v < view.values.size(); ++v)
      if (!view.values[v].is_view() && !view.is_bound(int32_t(v)) && life[v].first >= 0 &&
          (!place || place(int32_t(v))))
        owners.push_back(int32_t(v));
    std::stable_sort(owners.begin(), owners.end(), [&](int32_t a, int32_t b) {
      return view.values[size_t(a)].desc.extent_bytes() >
             view.values[size_t(b)].desc.extent_bytes();
    });
    struct Placed {
      uint64_t begin, end;
      std::pair<int32_t, int32_t> life;
    };
    std::vector<Placed> placed;
    for (int32_t v : owners) {
      const uint64_t size =
          (view.values[size_t(v)].desc.extent_bytes() + kAlignment - 1) / kAlignment * kAlignment;
      const auto l = life[size_t(v)];
      std::vector<std::pair<uint64_t, uint64_t>> busy;
      for (const Placed& p : placed)
        if (p.life.first <= l.second && l.first <= p.life.second) busy.push_back({p.begin, p.end});
      std::sort(busy.begin(), busy.end());
      uint64_t at = 0;
      for (auto [b, e] : busy) {
        if (at + size <= b) break;
        at = std::max(at, e);
      }
      s.offset[size_t(v)] = at;
      placed.push_back({at, at + size, l});
      s.bytes = std::max(s.bytes, at + size);
    }
    return s;
  }
};

// Where value v lives in this execution: its owner's binding or scratch slot, plus the
// view's offset at the execution's symbol values.
struct ValueStorage {
  BufferImpl* buffer = nullptr;
  uint64_t offset_bytes = 0;
};
inline ValueStorage value_storage(const GraphView& view, const ExecuteCall& call,
                                  const ScratchLayout& layout, int32_t v) {
  const int32_t o = view.owner(v);
  ValueStorage at;
  if (view.is_bound(o)) {
    at.buffer = call.bindings[size_t(o)].buffer;
    at.offset_bytes = call.bindings[size_t(o)].offset_bytes;
  } else {
    at.buffer = call.scratch;
    at.offset_bytes = call.scratch_offset + layout.offset[size_t(o)];
  }
  at.offset_bytes += view.offset_of(v, call.symbols);
  return at;
}

// Value v's storage (value_storage) with its descriptor.
inline TensorArg value_arg(const GraphView& view, const ExecuteCall& call,
                           const ScratchLayout& layout, int32_t v) {
  const ValueStorage at = value_storage(view, call, layout, v);
  TensorArg arg;
  arg.buffer = at.buffer;
  arg.offset_bytes = at.offset_bytes;
  arg.desc = view.values[size_t(v)].desc;
  return arg;
}

inline OpCall node_call(const GraphView& view, const ExecuteCall& call, const ScratchLayout& layout,
                        size_t node) {
  const GraphNode& g = view.nodes[node];
  OpCall c;
  c.kind = g.op;
  c.attrs = view.node_spec(node, call.symbols).attrs;
  c.num_inputs = int32_t(g.inputs.size());
  for (size_t i = 0; i < g.inputs.size(); ++i)
    c.inputs[i] = value_arg(view, call, layout, g.inputs[i]);
  c.output = value_arg(view, call, layout, g.output);
  return c;
}

// Adds to `group` the nodes `nodes` of `view` (indices) run back to back at `symbols`: their
// FLOPs and device-memory bytes (hal::analytic_cost) and each node's roofline time,
// max(FLOPs / peak_flops(spec), bytes / bandwidth); the group is memory-bound when the
// memory-bound nodes take at least half its time. Name, main node and node list stay the
// caller's.
inline void add_roofline(FusedGroupInfo* group, const GraphView& view,
                         std::span<const int32_t> nodes, std::span<const int64_t> symbols,
                         const std::function<double(const OpSpec&)>& peak_flops, double bandwidth) {
  double memory_bound = 0;
  for (int32_t n : nodes) {
    const OpSpec spec = view.node_spec(size_t(n), symbols);
    const OpCost cost = analytic_cost(spec);
    const double peak = peak_flops(spec);
    const double compute = peak > 0 ? cost.flops / peak : 0.0;
    const double memory =
        bandwidth > 0 ? double(cost.bytes_read + cost.bytes_written) / bandwidth : 0.0;
    group->flops += cost.flops;
    group->dram_bytes_read += cost.bytes_read;
    group->dram_bytes_written += cost.bytes_written;
    group->predicted_seconds += std::max(compute, memory);
    memory_bound += memory >= compute ? std::max(compute, memory) : 0.0;
  }
  group->bound =
      memory_bound * 2 >= group->predicted_seconds ? BoundBy::kMemory : BoundBy::kCompute;
}

// Appends `group` to `info`, adding its time, FLOPs and bytes to the executable's.
inline void append_group(ExecutableInfo* info, FusedGroupInfo group) {
  info->predicted_seconds += group.predicted_seconds;
  info->flops += group.flops;
  info->dram_bytes_read += group.dram_bytes_read;
  info->dram_bytes_written += group.dram_bytes_written;
  info->groups.push_back(std::move(group));
}

}  // namespace hal::plugin
