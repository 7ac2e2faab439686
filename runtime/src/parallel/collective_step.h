// runtime/src/parallel/collective_step.h (internal): how the executor issues a parallel
// rank's kCollective nodes (graph.h) on its channels, and puts them on the timeline.
#pragma once

#include <span>
#include <vector>

#include "hal/channel.h"
#include "hal/device.h"
#include "hal/runtime/executor.h"
#include "hal/runtime/graph.h"

namespace hal::runtime {

// OK when `channels` has the node's channel, on `device`; else an error naming what the
// node needs.
Status check_collective_channel(const Node& node, const std::vector<const Channel*>& channels,
                                const Device* device);

// Enqueues the node's collective on `stream`: src is its input (the data of an all-reduce,
// a send and a broadcast's root), dst its output.
Status issue_collective(Stream& stream, const Channel& channel, const Node& node,
                        const TensorRef& src, const TensorRef& dst, uint64_t tag);

// Fills a timeline entry of the node from its records.
void describe_collective(const Node& node, std::span<const StepRecord* const> records,
                         TimelineEntry& entry);

}  // namespace hal::runtime
