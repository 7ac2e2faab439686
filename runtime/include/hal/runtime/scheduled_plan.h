// hal/runtime/scheduled_plan.h: the bridge between the runtime's graph IR and the
// scheduler (hal/scheduler): a runtime Graph as a scheduler TaskGraph, a Schedule turned
// back into an ExecutionPlan the Executor runs, and ScheduledPlanBuilder, the
// SessionOptions::planner that places every graph a Session prepares.
//
// Graph -> tasks (build_graph_tasks)
// - One task per node that does device work (ops, concats, in-place writes); views are
//   free and belong to no task. Nodes that touch the same persistent or in-place written
//   storage (a layer's KV-cache writes and the attention reading the caches) form ONE
//   task: a state is bound once per device, so everything that writes and reads it must
//   run on the same device, and the scheduler must not split them.
// - A task's cost on a device is the sum of its nodes' op costs (each pays the device's
//   launch overhead); its work is the sum of their FLOPs and bytes (hal::analytic_cost).
// - Constants are resident weights, states resident state (both by name, counted once
//   per device). An edge carries the storage root a consumer reads (a view's bytes move
//   as its root), with the root's ValueId as the edge's data, so one tensor moves once
//   per destination.
//
// Schedule -> plan (plan_from_assignment)
// - Each task's nodes run on its device's compute stream (stream 0). A value read on
//   another device than where its storage root lives gets one kTransfer node per (root,
//   destination), issued on a copy stream of the source device (one per destination,
//   streams 1.. of the source, as the scheduler's serialized links); views of the root
//   are re-created on the destination. Graph inputs live with their earliest reader.
// - Steps are issued in the order of the scheduler's predicted start times (a
//   topological order of the edited graph); events come from the dependencies.
//
// ScheduledPlanBuilder
// - The first graph it sees (the session's prototype: a decode step over the planned
//   context) is scheduled freely (user pins from `placement` apply) and fixes where
//   every task touching a weight or KV cache runs, by node name (and by weight / cache
//   name for nodes the first graph did not have). Later graphs (prefill and decode of
//   each batch shape) are pinned to those devices, so weights are uploaded once and KV
//   caches written by prefill are read by decode on the same device; other tasks are
//   placed freely per graph.
// - A device that does not support a task (Device::supports on each of its ops) falls
//   back; every fallback is kept with its reason and cost (ScheduledGraph::fallbacks);
//   with strict_placement a fallback is an error naming the op and the devices.
// - Memory capacity: the scheduler keeps each device's weights + KV caches + activation
//   peak within DeviceInfo::memory_bytes, splitting a model by layers when it must.
// - Compiled units (SchedulingOptions::compile): after placement, each device compiles the
//   runs of the plan it takes (compile_plan_units); the graph is then scheduled again with
//   every unit one task costing what its executable predicts (executable info) and
//   everything pinned where it was placed, which gives the predicted makespan (the
//   op-by-op one is kept beside it). Placement itself is chosen on op costs without the
//   per-command launch overhead on devices that compile (fusion removes it), so a device
//   whose compiled speed is far above its op-by-op speed may get less work than it could
//   take.
// - With kAuto, a placement that crosses devices must predict at least `min_gain` (1%)
//   less time than everything on the fastest device; a smaller gain is within the cost
//   model's error, while the weights it duplicates (an embedding table tied to the LM
//   head) and its transfers are certain.
//
// Threading: build_graph_tasks / plan_from_assignment are pure functions. A
// ScheduledPlanBuilder is used by one session at a time (its planner() may be called from
// Session methods only).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "hal/device.h"
#include "hal/runtime/compiled_units.h"
#include "hal/runtime/execution_plan.h"
#include "hal/runtime/forecast.h"
#include "hal/runtime/graph.h"
#include "hal/runtime/session.h"
#include "hal/scheduler/cost_model.h"
#include "hal/scheduler/scheduler.h"

namespace hal::runtime {

// The OpSpecs a node dispatches: a kOp node its op; a concat one strided copy (identity
// transpose) per input; a write_slice one copy of its source; views and transfers none.
std::vector<OpSpec> node_op_specs(const Graph& graph, NodeId node);

// Whether a node streams at least 1 MiB from the model's weights or KV caches (inputs in
// constant or state storage; an embedding counts the rows it gathers, an attention its
// whole caches, though a step reads the visible part): enough to evict a core's caches
// (L2 is 0.5-2 MiB on the CPUs here), so the op run after it is costed as such
// (scheduler::OpWork::after_stream).
bool evicts_caches(const Graph& graph, NodeId node);

struct GraphTasks {
  scheduler::TaskGraph tasks;                      // finalized
  std::vector<scheduler::TaskId> task_of_node;     // by NodeId; kNoTask for views
  std::vector<std::vector<NodeId>> nodes_of_task;  // in topological order
  std::vector<std::vector<OpSpec>> specs_of_task;  // every op the task dispatches
  // The same ops with weights in TaskBuildOptions::weight_dtype: what costs are read from.
  std::vector<std::vector<OpSpec>> cost_specs_of_task;
  std::vector<std::vector<ValueId>> constants_of_task;
  std::vector<std::vector<ValueId>> states_of_task;
  uint64_t weight_bytes = 0;  // every resident weight, once
  uint64_t state_bytes = 0;   // every KV cache, once
};

struct TaskBuildOptions {
  // By NodeId (empty = none): nodes of one compiled unit (>= 0) form one task too
  // (ExecutionPlan::unit_of_node).
  std::span<const int32_t> unit_of_node;
  // By unit (empty = none): the device memory its executable needs for its internal values
  // (ExecutableInfo::scratch_bytes). A unit's task then holds that plus the values that leave
  // it, instead of every intermediate it produces (most stay in SRAM or the scratch).
  std::span<const uint64_t> unit_scratch_bytes;
  // The graph's run-time integers (empty: attention kv_length as built, the cache's
  // length): attention ops are timed at the kv length they give.
  std::span<const int64_t> symbols;
  // Planning with 1-byte weights (fp8, int8; kInvalid = as the graph says): matmul
  // weights and embedding tables are resident and read at this dtype's size, and their
  // ops' cost specs carry it (the ops' specs keep the compute dtype, what devices are
  // asked whether they run).
  DType weight_dtype = DType::kInvalid;
};

// The one graph-to-task builder: halctl run's scheduling planner and halctl plan
// (forecast.h) both place and time graphs through it.
Result<GraphTasks> build_graph_tasks(const Graph& graph, const TaskBuildOptions& options = {});

// The cost model's work of an op: hal::analytic_cost, at the 1-byte weight dtype's peak
// for a matmul reading one.
scheduler::OpWork op_work(const OpSpec& spec);

// Whether device `device` (an index into the cost model's devices) runs `spec`.
using OpSupport = std::function<bool(int32_t device, const OpSpec& spec)>;
// What `spec` takes on device `device`, or nullopt for the cost model's estimate.
using OpSeconds = std::function<std::optional<double>(int32_t device, const OpSpec& spec)>;
// `op_seconds` when it answers, else the cost model (op_work).
double op_seconds_on(const scheduler::CostModel& model, int32_t device, const OpSpec& spec,
                     const OpSeconds& op_seconds);

// Per task its cost on each device of `model` (sum over its cost specs), and whether each
// device supports all of its ops (empty `supports`: every op).
Result<scheduler::Problem> make_problem(const GraphTasks& tasks, const scheduler::CostModel& model,
                                        const OpSupport& supports = {},
                                        const OpSeconds& op_seconds = {});

// A plan's graph scheduled with its compiled units (ExecutionPlan::units) as tasks: each
// unit one task costing its executable's prediction at `symbols` (the graph's run-time
// integers; empty: each unit's bucket upper bound) plus any op-by-op node sharing its
// task, other tasks as make_problem times them, everything pinned where the plan runs
// it. The same for halctl run's planner and halctl plan.
struct UnitSchedule {
  GraphTasks tasks;
  scheduler::Problem problem;
  scheduler::Schedule schedule;
  std::vector<ExecutableInfo> unit_info;         // per unit, at the symbols
  std::vector<std::vector<int32_t>> task_units;  // per task: its units (empty: op by op)
};
Result<UnitSchedule> schedule_with_units(const ExecutionPlan& plan,
                                         const scheduler::CostModel& model,
                                         const OpSeconds& op_seconds,
                                         std::span<const int64_t> symbols,
                                         const TaskBuildOptions& build = {});

// An ExecutionPlan running each task on task_device[task] (an index into `devices`), in
// the order of `priority` (per node: a predicted start time; lower first among ready
// nodes), with transfers and copy streams as described above. `transfer_priority`
// gives a transfer's start by (storage root, destination) when the scheduler predicted
// one. Finalized.
Result<ExecutionPlan> plan_from_assignment(
    std::shared_ptr<const Graph> graph, std::vector<Device*> devices, const GraphTasks& tasks,
    std::span<const int32_t> task_device, std::span<const double> task_start,
    const std::map<std::pair<ValueId, int32_t>, double>& transfer_start = {});

// The plan of a Schedule of `tasks` (devices in the problem's order).
Result<ExecutionPlan> plan_from_schedule(std::shared_ptr<const Graph> graph,
                                         std::vector<Device*> devices, const GraphTasks& tasks,
                                         const scheduler::Schedule& schedule);

// Names of each device's streams in a plan: "compute" for stream 0, "copy->npu:0" for a
// copy stream issuing transfers to npu:0.
std::vector<std::vector<std::string>> plan_stream_names(const ExecutionPlan& plan);

struct SchedulingOptions {
  scheduler::Algorithm algorithm = scheduler::Algorithm::kAuto;
  bool strict_placement = false;
  std::string placement;  // pins in the grammar of hal/scheduler/placement.h ("" = none)
  scheduler::CalibrationOptions calibration;
  // Whether `device` runs `spec` (empty = Device::supports). For tests and planning.
  std::function<bool(const Device&, const OpSpec&)> supports;
  // Per device (by index of devices; missing or empty: the cost model): what times its
  // ops, e.g. the NPU simulator's timing-only execution (simulated_op_timer), as halctl
  // plan times them, so a run predicts what a plan of the same graph predicts.
  std::vector<OpTimer> timers;
  // Capacity each device may use (0 = DeviceInfo::memory_bytes); by index of devices.
  std::vector<uint64_t> capacity_bytes;
  // The figures the cost model uses for each device (by index of devices; links between
  // them from these too), instead of the devices' own: tests whose outcome must not
  // depend on how fast this machine measured, and what-if planning. Empty = their own.
  std::vector<DeviceInfo> device_figures;
  // kAuto: a placement with transfers must beat all-on-fastest by this fraction of its
  // predicted makespan, else all-on-fastest is used (when it holds no more memory).
  double min_gain = 0.01;
  // Whole-graph offload (compiled_units.h): each device compiles the runs of the plan it
  // takes; a node it declines falls back to op-by-op dispatch on the same device
  // (with strict_placement: an error naming the node and why).
  CompileSettings compile;
};

// One compiled unit of a scheduled graph, as reports show it.
struct CompiledUnitSummary {
  int32_t device = 0;
  std::string first_node;  // the unit's first node's name
  int64_t nodes = 0;
  std::vector<std::string> groups;  // fused groups' names
  double predicted_seconds = 0;     // at the bucket's upper bound
  uint64_t dram_bytes = 0;          // device-memory bytes per execution (read + written)
  uint64_t sram_bytes = 0;
  uint64_t scratch_bytes = 0;
  std::string source;            // "compiled", "cache hit", ...
  std::string entry;             // its file in the executable cache ("" when none)
  double seconds = 0;            // to compile or load it
  std::vector<NodeId> node_ids;  // the unit's nodes in the scheduled graph
};

struct PlacementFallback {
  std::string node;  // the task's name (its main op's node)
  std::string op;    // op kind name
  int32_t preferred_device = -1;
  int32_t chosen_device = -1;
  std::string reason;
  // Predicted finish time it cost (negative when the fallback device finishes earlier
  // than the pinned one would have).
  double cost_s = 0;
};

// What the planner decided for one graph.
struct ScheduledGraph {
  std::shared_ptr<const Graph> graph;  // the plan's graph (transfers inserted)
  int64_t tasks = 0;
  scheduler::Algorithm algorithm = scheduler::Algorithm::kAuto;
  double predicted_makespan_s = 0;
  std::string placement;  // the layer split, placement grammar
  std::vector<PlacementFallback> fallbacks;
  std::vector<scheduler::DeviceMemory> memory;  // per device
  int64_t transfers = 0;
  double scheduling_seconds = 0;                       // wall time the scheduler took
  std::vector<scheduler::CandidateResult> candidates;  // kAuto: each algorithm's makespan
  // Compiled units, nodes run op by op with why, compile notes and time (compile).
  std::vector<CompiledUnitSummary> units;
  std::vector<DeclinedNode> declined;
  std::vector<std::string> compile_notes;
  double compile_seconds = 0;
  // The makespan predicted for op-by-op dispatch (the placement's schedule) when units
  // were compiled; predicted_makespan_s is then the schedule with the units.
  double op_by_op_makespan_s = 0;
};

class ScheduledPlanBuilder : public std::enable_shared_from_this<ScheduledPlanBuilder> {
 public:
  // Builds the cost model (DeviceInfo + stored calibrations) and parses the placement
  // (INVALID_ARGUMENT quoting it when malformed).
  static Result<std::shared_ptr<ScheduledPlanBuilder>> create(std::vector<Device*> devices,
                                                              SchedulingOptions options = {});

  // A PlanBuilder for SessionOptions that calls plan() on this planner (kept alive by it).
  PlanBuilder planner();
  Result<ExecutionPlan> plan(std::shared_ptr<const Graph> graph,
                             const std::vector<Device*>& devices);

  const std::vector<Device*>& devices() const { return devices_; }
  const scheduler::CostModel& cost_model() const { return cost_model_; }
  // One line per calibration found or ignored.
  const std::vector<std::string>& notes() const { return notes_; }
  const std::vector<ScheduledGraph>& scheduled() const { return scheduled_; }
  // The entry whose plan graph is `plan_graph`, or null.
  const ScheduledGraph* find(const Graph* plan_graph) const;
  // What `plan` (one this planner made) takes at the graph's run-time integers `symbols`
  // (attention at the kv lengths they give; compiled units at their predictions there):
  // the prediction halctl plan makes for the same graph and devices.
  Result<double> predict(const ExecutionPlan& plan, std::span<const int64_t> symbols) const;

 private:
  OpSupport support() const;
  // Timers, else the cost model; `fused`: devices that compile lose the launch overhead.
  OpSeconds op_seconds(bool fused) const;
  ScheduledPlanBuilder() = default;
  std::vector<Device*> devices_;
  SchedulingOptions options_;
  scheduler::PlacementSpec placement_;
  scheduler::CostModel cost_model_{{}, {}};
  std::vector<std::string> notes_;
  std::vector<ScheduledGraph> scheduled_;
  // Devices fixed by the first graphs: by node name, KV-cache (state) name, weight name.
  std::map<std::string, int32_t> node_device_;
  std::map<std::string, int32_t> state_device_;
  std::map<std::string, std::set<int32_t>> weight_devices_;
};

}  // namespace hal::runtime
