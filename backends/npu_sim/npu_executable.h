// backends/npu_sim/npu_executable.h: a graph compiled for a simulated NPU (ABI 1.2
// executables): the view, the compiler's plan (npu_compiler.h: fused groups, SRAM and
// spill placement) and what it predicts.
//
// - info(symbols): the plan's timing at those symbol values (one command overhead, one
//   pipeline fill, the groups), device-memory bytes that actually cross, the SRAM peak,
//   the scratch (spill arena) an execution needs, and per fused group its share.
// - serialize(): the view and the plan; NpuDevice::deserialize checks the plan against
//   the view (check_plan) before anything runs it, so no compile happens on a cache hit.
// - Executions (NpuStream::execute): every node passes the device's command gate as an
//   op (so injected faults name the node and group), runs with the op-by-op kernels and
//   numerics (identical results), values on chip living in a host image of the SRAM at
//   their planned addresses and spilled ones in the scratch; the plan's time is booked
//   as one command with one record per fused group.
//
// Lifetime: references its device's performance model; destroyed before the plugin (as
// every executable). Threading: immutable; executions may run on several streams.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hal/plugin_adapter.h"
#include "npu_compiler.h"
#include "npu_perf_model.h"

namespace hal::npu_sim {

class NpuExecutable : public plugin::ExecutableImpl {
 public:
  NpuExecutable(GraphView view, CompiledPlan plan, const PerfModel& model);

  uint64_t scratch_bytes() const override { return plan_.scratch_bytes; }
  Result<ExecutableInfo> info(std::span<const int64_t> symbols) const override;
  Result<std::vector<uint8_t>> serialize() const override;

  const CompiledPlan& plan() const { return plan_; }
  const PerfModel& model() const { return model_; }

 private:
  CompiledPlan plan_;
  std::vector<std::string> names_;
  const PerfModel& model_;
};

}  // namespace hal::npu_sim
