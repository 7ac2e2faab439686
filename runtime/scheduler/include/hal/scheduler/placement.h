// hal/scheduler/placement.h: user-pinned placement ("--placement layers=0-11:npu:0,12-23:cpu:0"),
// parsed by a pure function over the string and then bound to a graph and its devices.
//
// Grammar (whitespace allowed around separators):
//   placement := clause (';' clause)*
//   clause    := 'layers=' pin (',' pin)*          pins transformer blocks by index
//              | 'rest=' device                    every task no layer pin covers
//                                                   (embedding, final norm, LM head,
//                                                   and layers left out of the ranges)
//   pin       := layer ('-' layer)? ':' device     e.g. 0-11:npu:0 or 5:cpu:0
//   layer     := digits (at most 9)
//   device    := name ':' digits                   e.g. npu:0, cuda:1 (name: letters,
//                                                   digits, '_', starting with a letter)
// Tasks not covered by any clause are placed by the scheduler. A range may not be
// reversed (12-0) or overlap another ('layer 5 is pinned twice'), and 'rest=' appears at
// most once.
//
// Errors: INVALID_ARGUMENT, quoting the placement, the 1-based column, what was expected
// and what was found, e.g.
//   placement 'layers=0-11:npu:0,12-x:cpu:0': column 22: expected a layer number after
//   '-', found 'x'
// resolve_placement adds the graph and the device list: unknown device ids (listing the
// known ones) and ranges beyond the graph's layers.
//
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hal/scheduler/task_graph.h"
#include "hal/status.h"

namespace hal::scheduler {

struct LayerPin {
  int32_t first = 0;
  int32_t last = 0;  // inclusive
  std::string device;
  int32_t column = 0;  // 1-based column of the pin in the text (for later errors)
};

struct PlacementSpec {
  std::vector<LayerPin> layer_pins;  // in text order
  std::optional<std::string> rest_device;
  bool empty() const { return layer_pins.empty() && !rest_device; }
};

Result<PlacementSpec> parse_placement(std::string_view text);
// Renders a spec back to the grammar (parse(format(s)) == s).
std::string format_placement(const PlacementSpec& spec);

// Per task: the index into `device_ids` it is pinned to, or -1 when free.
Result<std::vector<int32_t>> resolve_placement(const PlacementSpec& spec, const TaskGraph& graph,
                                               std::span<const std::string> device_ids);

}  // namespace hal::scheduler
