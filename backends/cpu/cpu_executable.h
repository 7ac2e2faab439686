// backends/cpu/cpu_executable.h: the CPU backend's executables (plugin ABI 1.2): a unit
// of a graph run in one stream command, with the fusions that cut memory traffic in
// decode, each computing exactly what op-by-op dispatch computes (same kernels, same
// roundings to each value's dtype):
// - an activation (gelu, silu) or scale that is the only reader of a matmul's output runs
//   in place on that output, as the matmul's epilogue (matmul + bias + GELU): one
//   activation buffer instead of two;
// - a residual add whose operand from the group before is read by nothing else writes
//   in place into it;
// - a rotary whose output is only copied into the KV cache writes straight into the
//   cache slot (QKV + rotary + cache write): the copy and its buffer disappear;
// - a norm joins the group of the matmul that reads it (norm into matmul).
// Groups: each matmul or attention opens one (joined by a norm before it and its in-place
// epilogues); other nodes stand alone. Each execution leaves one record and one per
// group, timed by the host clock; FLOPs and bytes are the fused program's analytic cost.
//
// Threading: an executable is immutable; executions use their own scratch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hal/plugin/node_sequence.h"
#include "hal/plugin_adapter.h"

namespace hal::cpu {

class CpuExecutable : public plugin::ExecutableImpl {
 public:
  // Compiles `view` (validated, every node supported) for a device described by `device`.
  CpuExecutable(GraphView view, const DeviceInfo& device);

  uint64_t scratch_bytes() const override { return layout_.bytes; }
  Result<ExecutableInfo> info(std::span<const int64_t> symbols) const override;
  // The view: compiling it again is fast and deterministic.
  Result<std::vector<uint8_t>> serialize() const override { return view().encode(); }

  // Runs the program; `data` gives a buffer's host address (null when it has none:
  // nothing is computed). Appends the execution's records (tag `tag`) when `records`.
  Status run(const plugin::ExecuteCall& call, const std::function<char*(plugin::BufferImpl*)>& data,
             uint64_t tag, std::vector<CommandRecord>* records) const;

  // For tests: the program's node count (fusions remove some), and its groups' names.
  size_t program_nodes() const { return program_.nodes.size(); }

 private:
  struct Group {
    std::vector<int32_t> program_nodes;
    std::vector<int32_t> view_nodes;  // of the original view
    int32_t main_node = 0;            // original view node
  };
  GraphView program_;            // the view after fusions (same value indices)
  std::vector<int32_t> origin_;  // per program node: the original view node it runs
  // Per program node, its OpSpec at the symbols' largest values: only attention's
  // kv_length depends on them (shapes never do), so a run takes these as they are and
  // sets that one field, instead of building each spec again (~0.3 us a node, ~150 nodes
  // in a GPT-2 decode step).
  std::vector<OpSpec> specs_;
  std::vector<Group> groups_;
  plugin::ScratchLayout layout_;
  const DeviceInfo& device_;
};

}  // namespace hal::cpu
