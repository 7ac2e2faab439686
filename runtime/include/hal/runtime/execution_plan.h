// hal/runtime/execution_plan.h: how a graph runs: which device and stream each node runs
// on, in what order it is issued, which events order work across streams, and where each
// tensor lives (the per-device memory plans).
//
// A plan is what a scheduler produces and what the Executor runs. The single-device
// path builds the trivial plan (every node on one device, one stream, no events);
// a multi-device scheduler assigns devices and streams, inserts kTransfer nodes into its
// copy of the graph where a value crosses devices, and adds events (add_stream_events
// does that from the dependencies), then calls finalize_plan.
//
// Contract
// - `steps` is a topological order of every node of the graph (views included: they
//   issue no work, but their placement says on which device the view is read).
// - A step's inputs live on the step's device, except a kTransfer step's input, which
//   lives where it was produced. Inputs (kInput values) live on the device of their
//   first consumer and are uploaded there before the first step; outputs are
//   downloaded from where they live after the last step.
// - Constants and states are bound per (value, device): a weight read on two devices is
//   bound on both (required_bindings lists the pairs after finalize_plan).
// - Event e is recorded after step `event_producer[e]` on that step's stream; steps
//   listing e in wait_events wait for it before they are issued on their stream.
// - Memory: one arena per device, planned by liveness over that device's steps.
// - Compiled units (compiled_units.h): a unit's nodes are consecutive working steps (views
//   may sit between them) of its device's first stream, none a transfer. Values only a
//   unit touches (and no graph output) live in its executable's scratch, not the arena.
//
// Lifetime: the plan shares the graph (shared_ptr) and points at devices owned by a
// Platform, which must outlive it. Threading: a value type; build on one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hal/device.h"
#include "hal/runtime/arena_layout.h"
#include "hal/runtime/graph.h"

namespace hal::runtime {

struct PlannedStep {
  NodeId node = kNoNode;
  int32_t device = 0;  // index into ExecutionPlan::devices: where the node's outputs live
  int32_t stream = 0;  // index among the streams of stream_device()
  // kTransfer only: the device whose stream issues the copy (e.g. the source's copy
  // engine); -1 = `device`, the destination.
  int32_t issue_device = -1;
  std::vector<int32_t> wait_events;
  int32_t record_event = -1;

  int32_t stream_device() const { return issue_device >= 0 ? issue_device : device; }
};

// A compiled partition (compiled_units.h): consecutive working steps of one device that
// run as one executable, issued where its first node's step is.
struct CompiledUnit {
  int32_t device = 0;
  std::vector<NodeId> nodes;  // graph nodes, in issue order
  std::shared_ptr<const Executable> executable;
  std::vector<ValueId> value_of;  // per executable view value: its graph value (kNoValue: a
                                  // slice the view made for a concat or a KV-cache write)
  std::vector<SymInt> symbols;    // per executable view symbol: its run-time integer
  std::vector<NodeId> node_of;    // per executable view node: the graph node
  ExecutableInfo info;            // what the device predicts at the bucket's upper bound
  std::string source;             // "compiled", "cache hit", ...
  std::string entry;              // its file in the executable cache ("" when none)
  double seconds = 0;             // wall time to compile (or load) it
};

// A constant or state the executor needs a buffer for, on one device.
struct RequiredBinding {
  ValueId value = kNoValue;
  int32_t device = 0;
};

struct ExecutionPlan {
  std::shared_ptr<const Graph> graph;
  std::vector<Device*> devices;
  std::vector<int32_t> streams_per_device;  // >= 1 each
  std::vector<PlannedStep> steps;
  std::vector<int32_t> event_producer;  // per event: index into steps
  std::vector<CompiledUnit> units;      // compiled partitions (compile_plan_units)

  // ---- filled by finalize_plan ----
  // Device index of each value's storage (inputs, intermediates and views); -1 for
  // constants and states, which are bound per device.
  std::vector<int32_t> value_device;
  std::vector<ArenaLayout> memory;  // per device
  std::vector<RequiredBinding> required_bindings;
  // Index into steps of the step running each node.
  std::vector<int32_t> step_of_node;
  // Index into units of the unit running each node, or -1 (op by op).
  std::vector<int32_t> unit_of_node;

  // Peak activation memory over devices (the largest arena).
  uint64_t peak_activation_bytes() const;
};

// Every node of `graph` on `device`, one stream, topological order, no events;
// finalized. Fails when the graph does not validate.
Result<ExecutionPlan> make_single_device_plan(std::shared_ptr<const Graph> graph, Device* device);

// Places whole transformer blocks: nodes of layer L run on layer_device[L] (an index
// into `devices`); layer -1 nodes that precede every block (embeddings) run on
// devices[0], those after a block (final norm, head) on the last block's device; views
// run where their input lives. Values read on another device get a kTransfer node (one
// per value and destination); one stream per device; events from the dependencies;
// finalized. The graph is copied (the original is not modified).
Result<ExecutionPlan> make_layer_split_plan(std::shared_ptr<const Graph> graph,
                                            std::vector<Device*> devices,
                                            std::vector<int32_t> layer_device);

// Adds an event for every dependency between steps on different (device, stream)
// pairs (one event per producing step, reused by all its waiters).
void add_stream_events(ExecutionPlan& plan);

// Checks the plan against its graph (every node exactly once, in dependency order,
// devices and streams in range, inputs where the step runs, events recorded before they
// are waited on, units as described above) and fills value_device, step_of_node,
// unit_of_node, required_bindings and memory.
// It then adds the events that memory reuse needs across streams: when a tensor is
// touched from more than one stream (a transfer reading it from another device, or a
// scheduler's second stream), the step that next writes its arena bytes waits for
// every such touch. Errors name the node and the devices involved.
Status finalize_plan(ExecutionPlan& plan);

}  // namespace hal::runtime
