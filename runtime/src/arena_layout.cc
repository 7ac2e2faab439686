// Liveness-based placement of intermediate tensors in a per-device arena.
#include "hal/runtime/arena_layout.h"

#include <algorithm>
#include <map>

#include "hal/units.h"

namespace hal::runtime {

namespace {

uint64_t align_up(uint64_t v, uint64_t a) { return a <= 1 ? v : (v + a - 1) / a * a; }

}  // namespace

std::string ArenaLayout::to_string() const {
  return "arena " + format_bytes(arena_bytes) + " (live peak " + format_bytes(live_peak_bytes) +
         ", no reuse " + format_bytes(unshared_bytes) + ")";
}

std::vector<LiveInterval> live_intervals(const Graph& graph, std::span<const NodeId> order,
                                         const std::function<bool(ValueId)>& planned) {
  const auto& values = graph.values();
  const int32_t end_step = int32_t(order.size());
  std::vector<int32_t> step_of(graph.nodes().size(), -1);
  for (size_t s = 0; s < order.size(); ++s) step_of[size_t(order[s])] = int32_t(s);

  // Per root: first and last step touching it.
  std::map<ValueId, LiveInterval> by_root;
  auto touch = [&](ValueId v, int32_t step) {
    const ValueId root = graph.storage_root(v);
    const Value& r = values[size_t(root)];
    if (r.kind != ValueKind::kInput && r.kind != ValueKind::kIntermediate) return;
    if (!planned(root)) return;
    auto [it, inserted] = by_root.try_emplace(root);
    LiveInterval& iv = it->second;
    if (inserted) {
      iv.value = root;
      iv.bytes = r.desc.extent_bytes();
      // Inputs are uploaded before the first step.
      iv.first_step = r.kind == ValueKind::kInput ? 0 : step;
      iv.last_step = step;
    }
    iv.first_step = std::min(iv.first_step, step);
    iv.last_step = std::max(iv.last_step, step);
  };
  for (size_t s = 0; s < order.size(); ++s) {
    const Node& node = graph.node(order[s]);
    for (ValueId v : node.inputs) touch(v, int32_t(s));
    for (ValueId v : node.outputs) touch(v, int32_t(s));
  }
  for (size_t v = 0; v < values.size(); ++v) {
    if (!values[v].is_output) continue;
    const ValueId root = graph.storage_root(ValueId(v));
    auto it = by_root.find(root);
    if (it != by_root.end())
      it->second.last_step = std::max(it->second.last_step, end_step);
    else if (values[size_t(root)].kind == ValueKind::kInput && planned(root))
      touch(ValueId(v), end_step);  // an input that is also an output, read by no node
  }
  std::vector<LiveInterval> result;
  result.reserve(by_root.size());
  for (auto& [root, iv] : by_root) result.push_back(iv);
  return result;
}

ArenaLayout plan_intervals(std::span<const LiveInterval> intervals, size_t value_count,
                           uint64_t alignment) {
  ArenaLayout plan;
  plan.offsets.assign(value_count, kNotPlanned);
  plan.intervals.assign(intervals.begin(), intervals.end());

  // Greedy by size: the biggest tensors get placed first, each at the lowest offset
  // where it overlaps nothing live at the same time.
  std::vector<size_t> order(intervals.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (intervals[a].bytes != intervals[b].bytes) return intervals[a].bytes > intervals[b].bytes;
    return intervals[a].first_step < intervals[b].first_step;
  });
  struct Placed {
    uint64_t offset, size;
    int32_t first, last;
  };
  std::vector<Placed> placed;
  std::vector<Placed> conflicts;
  for (size_t i : order) {
    const LiveInterval& iv = intervals[i];
    const uint64_t size = align_up(std::max<uint64_t>(iv.bytes, 1), alignment);
    conflicts.clear();
    for (const Placed& p : placed)
      if (p.first <= iv.last_step && iv.first_step <= p.last) conflicts.push_back(p);
    std::sort(conflicts.begin(), conflicts.end(),
              [](const Placed& a, const Placed& b) { return a.offset < b.offset; });
    uint64_t offset = 0;
    for (const Placed& p : conflicts) {
      if (p.offset >= offset + size) break;  // the gap before p fits
      offset = std::max(offset, p.offset + p.size);
    }
    placed.push_back({offset, size, iv.first_step, iv.last_step});
    if (iv.value >= 0 && size_t(iv.value) < value_count) plan.offsets[size_t(iv.value)] = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + size);
    plan.unshared_bytes += iv.bytes;
  }

  // The live peak: a sweep over interval starts and ends.
  std::map<int32_t, int64_t> delta;
  for (const LiveInterval& iv : intervals) {
    delta[iv.first_step] += int64_t(iv.bytes);
    delta[iv.last_step + 1] -= int64_t(iv.bytes);
  }
  int64_t live = 0;
  for (auto [step, d] : delta) {
    live += d;
    if (uint64_t(live) > plan.live_peak_bytes && live > 0) {
      plan.live_peak_bytes = uint64_t(live);
      plan.live_peak_step = step;
    }
  }
  return plan;
}

void fill_view_offsets(const Graph& graph, ArenaLayout& plan) {
  for (size_t v = 0; v < graph.values().size() && v < plan.offsets.size(); ++v) {
    const ValueId root = graph.storage_root(ValueId(v));
    if (root == ValueId(v) || plan.offsets[size_t(root)] == kNotPlanned) continue;
    uint64_t offset = 0;
    for (ValueId at = ValueId(v); at != root; at = graph.value(at).alias_of)
      offset += graph.value(at).alias_offset_bytes;
    plan.offsets[v] = plan.offsets[size_t(root)] + offset;
  }
}

ArenaLayout plan_memory(const Graph& graph, std::span<const NodeId> order, uint64_t alignment) {
  auto intervals = live_intervals(graph, order, [](ValueId) { return true; });
  ArenaLayout plan = plan_intervals(intervals, graph.values().size(), alignment);
  fill_view_offsets(graph, plan);
  return plan;
}

}  // namespace hal::runtime
