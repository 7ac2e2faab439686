// executor_impl.h (internal to the runtime): the executor's state between runs, and the
// steps of a run, shared by executor.cc (creation, bindings, the run's outline),
// executor_resolve.cc (a plan resolved into ready HAL commands) and executor_issue.cc
// (one run's checks, enqueues and drain). The contract is in hal/runtime/executor.h.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "hal/runtime/executor.h"

namespace hal::runtime {

struct Executor::Impl {
  struct Binding {
    const Buffer* buffer = nullptr;
    uint64_t offset = 0;
  };
  struct DeviceState {
    Buffer arena;
    std::vector<Stream> streams;
    Event uploads_done;        // when the plan has several devices or streams
    Event run_start, run_end;  // bracket each run on the device's clock
    // Per stream after the first: its end of run, which the first stream waits for. Not
    // uploads_done again: another plugin's stream may still be about to wait on that
    // (a cross-plugin wait sees the record current when it runs, so a second record in
    // the same run could make it wait for work queued behind itself: a deadlock,
    // seen when a device failed and raced through its skipped commands, and in plain
    // runs with two streams per device across plugins).
    std::vector<Event> stream_done;
    double last_seconds = 0;
  };
  // One step, resolved to HAL commands.
  struct Step {
    NodeId node = kNoNode;
    int32_t device = 0;
    int32_t stream = 0;
    std::vector<int32_t> waits;
    int32_t record = -1;
    // A compiled unit's first step issues its execution (`unit`), after every member's
    // waits and before every member's records (extra_records); the other members issue
    // nothing (skip).
    int32_t unit = -1;
    bool skip = false;
    std::vector<int32_t> extra_records;
    NodeKind kind = NodeKind::kOp;
    std::vector<OpDescriptor> ops;  // kOp: one; kConcat: one per input; kWriteSlice: base
    // kTransfer
    TensorRef src, dst;
    int32_t staged = -1;  // index into Impl::staged when staged through the host here
  };
  // A transfer between two plugins issued on the source's stream: device-to-host there,
  // host-to-device on the destination's inbound stream, so both halves are device
  // commands with records (the HAL's own staged copy is a host function that leaves
  // none) and the copy does not block the issuing stream's thread.
  struct Staged {
    std::vector<uint8_t> host;
    Event sent;    // on the source: the device-to-host half is done
    Event landed;  // on the destination: the data is there
    int32_t destination = 0;
  };
  struct Upload {  // where a graph input goes
    ValueId value;
    int32_t device;
    TensorRef ref;
  };

  // A compiled unit: its scratch, its bindings (resolved) and this run's symbol values.
  struct UnitState {
    Buffer scratch;
    std::vector<ExecutableBinding> bindings;
    std::vector<int64_t> symbols;
  };

  std::vector<DeviceState> devices;
  std::vector<UnitState> units;  // per ExecutionPlan::units
  std::vector<Event> events;
  std::map<std::pair<ValueId, int32_t>, Binding> bindings;
  std::vector<Step> steps;
  std::map<ValueId, Upload> input_slot;                          // by value
  std::set<ValueId> unread_inputs;  // inputs no node reads (a pipeline stage's ids): not uploaded
  std::vector<const Channel*> channels;  // ExecutorOptions::channels (kCollective nodes)
  std::map<ValueId, std::pair<int32_t, int32_t>> output_stream;  // value -> device, stream
  std::map<ValueId, TensorRef> output_ref;
  bool resolved = false;
  std::vector<StepRecord> pending;  // records taken from the streams, not yet handed out
  std::vector<Staged> staged;
  std::vector<int32_t> staged_of_step;       // by plan step: index into staged or -1
  std::vector<std::vector<Stream>> inbound;  // per device: 0 or 1 stream for staged halves
  Timeline timeline;

  // ---- resolution, once per set of bindings (executor_resolve.cc) ----
  // Resolves every plan step into ready HAL commands and the graph's inputs and outputs
  // into TensorRefs, from the bindings and the activation arenas.
  Status resolve(const ExecutionPlan& plan);

  // ---- one run (executor_issue.cc) ----
  // Every graph input given with its exact size; every requested output is one.
  Status check_io(const Graph& graph, const RunArgs& args) const;
  // Evaluates the run-time integers (attention kv_length, write_slice offsets) and checks
  // them against their caches, before anything is enqueued.
  Status apply_run_values(const ExecutionPlan& plan, const RunArgs& args);
  // Marks the run's start on every device, uploads the inputs and makes every other
  // stream wait for them.
  Status enqueue_uploads(const Graph& graph, const RunArgs& args);
  // Enqueues the steps in plan order; stops at the first failure and returns it.
  Status enqueue_steps(const ExecutionPlan& plan, const RunArgs& args);
  // Downloads the requested outputs, then marks each device's end of run after all its
  // streams; returns the first failure (after trying everything).
  Status enqueue_downloads_and_end(const Graph& graph, const RunArgs& args);
  // Waits for every stream (always, so nothing runs after run() returns); the first
  // failure, naming the node when the device names the failed command.
  Status drain(const ExecutionPlan& plan);
  // The device time of the run just finished, per device.
  void measure_device_seconds();
  // Command records of every stream, by device and node. An execution's group records
  // are attributed to their main nodes (the execution's own record is folded into its
  // first group, so the groups add up to it).
  std::vector<StepRecord> take_stream_records(const ExecutionPlan& plan);
};

// Narrows `ref` to [start, start + length) along `axis`.
inline TensorRef narrow(TensorRef ref, int32_t axis, int64_t start, int64_t length) {
  ref.offset_bytes += ref.desc.offset_bytes_of(start * ref.desc.strides[axis]);
  ref.desc.shape.dims[axis] = length;
  return ref;
}

}  // namespace hal::runtime
