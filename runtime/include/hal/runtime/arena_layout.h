// hal/runtime/arena_layout.h: where each intermediate tensor lives in a device's
// activation arena, chosen by liveness so buffers whose lifetimes do not overlap share
// memory; and the peak activation memory that results.
//
// Contract
// - The planner works on storage roots (hal::runtime::Graph::storage_root): a view
//   keeps its root alive for as long as the view is read.
// - A root is live from the step that produces it (step 0 for graph inputs, which are
//   uploaded before the first step) to the last step that reads it or any of its views;
//   graph outputs stay live to the end (they are downloaded after the last step).
// - Two roots share bytes only when their live intervals [first, last] are disjoint in
//   step order. When steps touching one device's memory run on several streams,
//   finalize_plan (execution_plan.h) adds the events that keep a reuse after the last
//   touch of the previous tenant; a caller may also plan its own intervals
//   (plan_intervals) to leave room for overlap instead.
// - Constants and states are not planned: the caller binds them.
// - Offsets are multiples of `alignment` (default 256 bytes, what GPUs and the NPU
//   simulator want for DMA and vector loads).
//
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "hal/runtime/graph.h"

namespace hal::runtime {

inline constexpr uint64_t kNotPlanned = ~uint64_t(0);

// The lifetime of one storage root in step indices (inclusive).
struct LiveInterval {
  ValueId value = kNoValue;
  uint64_t bytes = 0;
  int32_t first_step = 0;
  int32_t last_step = 0;
};

struct ArenaLayout {
  // Bytes the arena needs: the peak activation memory of this placement.
  uint64_t arena_bytes = 0;
  // Max over steps of the bytes live at that step: no placement can need less.
  uint64_t live_peak_bytes = 0;
  int32_t live_peak_step = -1;
  // Sum of every planned root: what the graph would need without reuse.
  uint64_t unshared_bytes = 0;
  // Offset of each value's storage root in the arena, indexed by ValueId (views get
  // their root's offset plus their alias offset); kNotPlanned for constants, states and
  // values of other devices.
  std::vector<uint64_t> offsets;
  std::vector<LiveInterval> intervals;  // the roots planned, in value order

  std::string to_string() const;  // "arena 12.0 MiB (live peak 11.5 MiB, no reuse 40 MiB)"
};

// Live intervals of the storage roots of `graph` that are inputs or intermediates and
// for which `planned(value)` is true (the values placed on one device), over `order`
// (the steps: node ids in issue order).
std::vector<LiveInterval> live_intervals(const Graph& graph, std::span<const NodeId> order,
                                         const std::function<bool(ValueId)>& planned);

// Assigns offsets to intervals: largest first, each at the lowest aligned offset that
// overlaps no already placed interval alive at the same time (greedy by size; within a
// few percent of the live peak on transformer graphs). `value_count` sizes `offsets`.
ArenaLayout plan_intervals(std::span<const LiveInterval> intervals, size_t value_count,
                           uint64_t alignment = 256);

// Sets the offset of every view whose storage root was planned: the root's offset plus
// the view's offset into it.
void fill_view_offsets(const Graph& graph, ArenaLayout& plan);

// All steps for one device: every input/intermediate root of `graph` read or written
// by `order`.
ArenaLayout plan_memory(const Graph& graph, std::span<const NodeId> order,
                        uint64_t alignment = 256);

}  // namespace hal::runtime
