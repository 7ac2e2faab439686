// backends/npu_sim/npu_compiler.h: the simulated NPU's graph compiler (ABI 1.2
// executables): what it fuses, where every value lives, and what an execution costs.
//
// The plan (compile_plan)
// - Fused groups (hal/plugin/fused_groups.h): consecutive nodes of the view that run as
//   one kernel sequence with their intermediates on chip. A norm starts a group and fuses
//   into the matmul(s) that follow it ("norms into the next matmul"); matmuls reading the
//   same input join one group (Q, K, V or gate and up projections); elementwise ops,
//   rotary and KV-cache writes that consume what the group produced join it as epilogues
//   (matmul + bias + activation, residual adds, QKV + rotary + cache write); attention is
//   its own group, its scores kept on chip (flash-style, the op's own model). The main
//   node (first matmul or attention, else the first node) names the group's op class.
// - SRAM: the usable SRAM (sram_bytes x sram_usable_fraction; engine-local pools and the
//   shared pool as one address space, shared first) holds, at each node, the node's
//   working tiles (double-buffered weight panels, accumulators, K/V chunks; per engine)
//   and the activations live at that point. Every intermediate the executable owns is
//   placed first-fit, in the order it is produced, at an address free for its whole
//   lifetime (first write to last read) below the capacity left by the working tiles of
//   every node in that lifetime; what does not fit is spilled to device memory (the
//   execution's scratch, planned by liveness). Values the host binds (inputs, weights,
//   KV caches, outputs) live in device memory.
// - fusion=off: one group per node and every intermediate spilled: the op-by-op traffic
//   without the per-command overheads (for comparison).
//
// Timing (time_plan), at the symbol values of an execution
// - Each node's engines, SRAM and die-to-die figures come from the op-by-op performance
//   model (PerfModel::op at the run's kv_length); its device-memory bytes are the ones
//   that actually cross: each input's share (PerfModel's per-input bytes, re-reads
//   included) unless that input is on chip, plus the output unless it is on chip. A
//   matmul whose A is on chip streams B once (the accumulators hold every row).
// - A group overlaps its nodes' resources (weights stream double-buffered behind the
//   compute): time = max(sum compute, sum SRAM, sum device-memory bytes / sustained
//   bandwidth, sum die-to-die); an execution = one command overhead + one pipeline fill
//   + the sum of its groups.
//
// Contract: compile_plan takes a validated view whose nodes the device supports; it is
// deterministic. check_plan verifies a plan read back from a blob against its view
// (every group, address and size in range, no two live values sharing bytes) so a
// modified blob can never make an execution write out of bounds.
//
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hal/command_record.h"
#include "hal/graph_view.h"
#include "hal/status.h"
#include "npu_perf_model.h"
#include "npu_spec.h"

namespace hal::npu_sim {

enum class Residency : uint8_t {
  kBound = 0,  // the host's buffer (inputs, constants, states, outputs)
  kSram = 1,   // on chip at `offset` of the activation address space
  kSpill = 2,  // device memory at `offset` of the execution's scratch
  kView = 3,   // a view: lives where its owner lives
};

struct CompiledGroup {
  int32_t main_node = 0;
  std::vector<int32_t> nodes;  // consecutive, in view order
};

struct CompiledPlan {
  bool fusion = true;
  std::vector<CompiledGroup> groups;
  std::vector<Residency> where;   // per view value
  std::vector<uint64_t> offset;   // per view value: SRAM address or scratch offset
  std::vector<uint64_t> working;  // per node: SRAM its working tiles take
  uint64_t sram_capacity = 0;     // usable SRAM (working tiles + activations)
  uint64_t sram_peak = 0;         // max over nodes of working + live activations
  uint64_t sram_image_bytes = 0;  // highest activation address in use
  uint64_t scratch_bytes = 0;     // the spill arena
  uint64_t spilled_bytes = 0;     // sizes of the values spilled

  std::vector<uint8_t> encode() const;
  static Result<CompiledPlan> decode(std::span<const uint8_t> bytes);
};

// The group names reported in executable info: "<main node> [op+op+...]", plus
// " (spills N bytes)" when the group writes a value that did not fit on chip.
std::vector<std::string> group_names(const CompiledPlan& plan, const GraphView& view);

Result<CompiledPlan> compile_plan(const GraphView& view, const DeviceSpec& spec, bool fusion);
Status check_plan(const CompiledPlan& plan, const GraphView& view, const DeviceSpec& spec);

struct GroupTiming {
  double seconds = 0;
  double flops = 0;
  uint64_t dram_bytes_read = 0;
  uint64_t dram_bytes_written = 0;
  uint64_t sram_bytes_read = 0;
  uint64_t sram_bytes_written = 0;
  uint64_t link_bytes = 0;
  uint64_t sram_bytes = 0;  // peak SRAM held while it runs
  BoundBy bound = BoundBy::kUnknown;
};

struct ExecutionTiming {
  double seconds = 0;  // overhead + fill + groups
  double overhead_s = 0;
  double fill_s = 0;
  std::vector<GroupTiming> groups;
  GroupTiming total;  // sums; bound of the whole
};

ExecutionTiming time_plan(const CompiledPlan& plan, const GraphView& view, const PerfModel& model,
                          std::span<const int64_t> symbols);

}  // namespace hal::npu_sim
