// hal/runtime/executor.h: runs an ExecutionPlan through the HAL, again and again.
//
// create() does everything that does not change between runs: it allocates each
// device's activation arena (the memory plan), creates the streams and events, and
// resolves every step into ready OpDescriptors. run() then only evaluates the run-time
// integers (SymInts) that a few steps carry (KV-cache write offsets, attention
// kv_length), uploads the inputs, enqueues the steps and downloads the outputs: no
// allocation and no graph work per run, one host synchronisation at the end.
//
// Contract
// - Every constant and state in plan.required_bindings must be bound (bind()) to a
//   buffer of its device, holding at least the value's extent, before run(); bindings
//   persist across runs and may be changed between them.
// - run() takes host copies of every graph input (exact byte size) and host buffers for
//   the outputs it wants back; host memory must stay valid until run() returns. It
//   blocks until all work is done and returns the first failure, naming the node
//   (an input no node reads, such as a later pipeline stage's token ids, is accepted and
//   not uploaded)
//   ("node 'h.2.attn' (attention) on cpu:0: ..."). A failure a device reports only at
//   synchronize() names the node when the device's status names the failed command's
//   tag (StatusDetail::command_tag, N = node id + 1: the CPU backend and the simulated
//   NPU do, through ABI 1.2's error details), else the device.
// - Run-time checks: a write_slice offset that would run past its destination ("...
//   runs past the N rows of 'h.0.k_cache' (cache full?)"), an attention kv_length
//   outside its cache, missing or mis-sized inputs and missing symbols fail before
//   anything is enqueued.
// - With ExecutorOptions::record_commands, every command leaves a CommandRecord whose
//   tag is the node id + 1 (0 for uploads/downloads); take_records() collects them.
// - Device time: each run is bracketed by events on every device's first stream, and
//   last_device_seconds(d) is the time between them on device d's clock (simulated time
//   on a simulated device, whose wall-clock time says nothing about the hardware).
// - Timeline (record_commands): after each run, last_timeline() places every command of
//   the run on one timeline, whatever clock each device keeps: a step lasts what its
//   records say it took on its device (simulated NPU time, measured CPU time), and
//   starts when its stream is free and the events it waits for are recorded (the plan's
//   dependencies), after the uploads. Timestamps of different devices share no epoch,
//   so durations, not timestamps, are what cross devices. A transfer between two
//   plugins issued on the source's stream runs as device-to-host there and host-to-device
//   on an inbound stream of the destination (both recorded; the transfer lasts their
//   sum); one issued on the destination's stream is the HAL's host-staged copy, which
//   leaves no record: its duration is modelled from the link (Platform::link: latency +
//   bytes / bandwidth) and marked as not measured.
//
// - Collectives (kCollective, a parallel rank's graph): issued on the step's stream over
//   ExecutorOptions::channels like any command; a missing channel fails create-time
//   resolution naming the node. A peer that never comes fails the run with the channel's
//   timeout error, naming the node.
//
// Lifetime: the executor owns its arenas, streams and events, and keeps pointers to
// the bound buffers and the plan's devices: the Platform and the bound buffers must
// outlive it. Threading: one run() at a time per executor; distinct executors may run
// concurrently on distinct streams.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "hal/buffer.h"
#include "hal/channel.h"
#include "hal/command_record.h"
#include "hal/event.h"
#include "hal/runtime/execution_plan.h"
#include "hal/stream.h"

namespace hal::runtime {

struct ExecutorOptions {
  bool record_commands = false;
  // The channels a parallel rank's kCollective nodes run on (graph.h), indexed by
  // kTensorParallelChannel and kPipelineChannel; each belongs to the device its nodes run
  // on. Not owned; they must outlive the executor's runs.
  std::vector<const Channel*> channels;
};

struct HostInput {
  ValueId value = kNoValue;
  const void* data = nullptr;
  uint64_t bytes = 0;
};

struct HostOutput {
  ValueId value = kNoValue;
  void* data = nullptr;
  uint64_t bytes = 0;
};

struct RunArgs {
  std::span<const int64_t> symbols;  // one per Graph::symbols()
  std::span<const HostInput> inputs;
  std::span<const HostOutput> outputs;
};

// A CommandRecord with the device and node it belongs to.
struct StepRecord {
  int32_t device = 0;
  NodeId node = kNoNode;  // kNoNode for uploads and downloads
  CommandRecord record;
};

// One step (or upload/download) of a run on the shared timeline.
struct TimelineEntry {
  enum class Kind : uint8_t { kOp = 0, kTransfer = 1, kUpload = 2, kDownload = 3, kCollective = 4 };
  Kind kind = Kind::kOp;
  NodeId node = kNoNode;         // kNoNode for uploads and downloads
  int32_t device = 0;            // the device whose stream issued it
  int32_t stream = 0;            // index among that device's streams
  int32_t peer = -1;             // transfers: the destination device (uploads: -1 = host)
  OpKind op = OpKind::kInvalid;  // the op (concat and write_slice: their copies' op)
  // An op that ran inside another node's fused group (a compiled executable): that node,
  // whose entry carries the group's time; this entry has no command of its own.
  NodeId fused_into = kNoNode;
  double start_s = 0;
  double end_s = 0;
  double flops = 0;
  uint64_t bytes_read = 0;  // device memory, as the records report
  uint64_t bytes_written = 0;
  uint64_t bytes_moved = 0;  // transfers, uploads, downloads: the payload
  int32_t commands = 0;
  bool measured = true;  // false: no record (staged copy); duration from the link model
  // Collectives: which, and the bytes this member sent and received over which link.
  CollectiveKind collective = CollectiveKind::kInvalid;
  uint64_t link_bytes_sent = 0;
  uint64_t link_bytes_received = 0;
  LinkClass link = LinkClass::kNone;

  double seconds() const { return end_s - start_s; }
};

struct Timeline {
  std::vector<TimelineEntry> entries;  // in issue order
  double makespan_s = 0;
  // Sum of the durations of the device's entries (all its streams).
  double busy_seconds(int32_t device) const;
};

// The timeline of one run of `plan` from its command records (see the contract above).
Timeline build_timeline(const ExecutionPlan& plan, std::span<const StepRecord> records);

class Executor {
 public:
  static Result<std::unique_ptr<Executor>> create(ExecutionPlan plan, ExecutorOptions options = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  const ExecutionPlan& plan() const { return plan_; }
  const Graph& graph() const { return *plan_.graph; }

  Status bind(ValueId value, int32_t device, const Buffer& buffer, uint64_t offset_bytes = 0);
  // Whether every required binding is made.
  Status check_bindings() const;

  Status run(const RunArgs& args);

  // Records of completed commands since the last call (record_commands only).
  std::vector<StepRecord> take_records();

  // Seconds the last successful run() took on device `d`'s clock (0 if unknown).
  double last_device_seconds(int32_t d) const;

  // The timeline of the last successful run (record_commands only; empty otherwise).
  const Timeline& last_timeline() const;

 private:
  struct Impl;
  explicit Executor(ExecutionPlan plan, ExecutorOptions options);
  ExecutionPlan plan_;
  ExecutorOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hal::runtime
