// hal/scheduler/scheduler.h: places a task graph on heterogeneous devices and times it:
// per task a device, a stream and start/finish times; transfers where data crosses
// devices, on streams of their own so they overlap compute; events between streams; the
// predicted makespan; fallbacks; memory per device.
//
// Inputs (Problem): a finalized TaskGraph; the devices (ids, memory capacity); per task
// and device a cost in seconds and whether the device supports the task; per ordered pair
// of devices a link. Build one from a CostModel (costs from the roofline, links from the
// platform) or give costs directly (the HEFT papers' cost matrices).
//
// Algorithms (Options::algorithm)
// - kHeft: Topcuoglu, Hariri, Wu 2002: upward rank with mean costs over the devices that
//   can run a task, earliest finish time including transfer times, insertion into idle
//   gaps of a device's timeline.
// - kPeft: Arabnejad, Barbosa 2014: optimistic cost table rank; device chosen by
//   EFT + OCT (a look-ahead at no extra asymptotic cost).
// - kLookahead: HEFT whose device choice minimises the earliest finish its children could
//   reach (Bittencourt, Sakellariou, Madeira 2010).
// - kLayerPartition: assigns contiguous layer ranges to devices by dynamic programming
//   (total compute plus boundary transfers, each device's capacity respected), then list
//   schedules with those assignments; for transformer graphs too big for one device.
// - kAuto (default): runs HEFT, PEFT (up to peft_max_tasks), lookahead (up to
//   lookahead_max_tasks), layer partition (graphs with layers) and all-on-fastest, on
//   threads for big graphs, and keeps the shortest makespan:
//   never worse than HEFT. On graphs with layers (up to refine_max_tasks) it then refines
//   the best by moving whole units (a layer, or one task outside the layers) to another
//   device while that shortens the makespan (labelled kRefine when it did).
// - Baselines: kAllOnFastest (the device with the least total cost; tasks it cannot run
//   or hold go where they finish earliest), kRoundRobin (rank order, devices in turn).
// - kExhaustive: the optimum by branch and bound over (task order, device) for small
//   graphs (<= exhaustive_max_tasks); contention-free links only.
//
// Memory: a device holds the resident tensors of the tasks it runs (counted once per
// device) plus the activations live at any moment (computed from the schedule). Devices
// that would exceed their capacity are not chosen; an algorithm re-runs with a reserve
// for the activation peak it measured when that peak did not fit. Layer pins and
// capacity make a model too big for one device split across devices by layers.
//
// Links: kSerialized (default) gives each ordered device pair one transfer stream whose
// transfers queue (with insertion into idle gaps); kContentionFree is the papers' model
// (any number of transfers in flight; the schedule then uses as many streams per link as
// overlapping transfers need).
//
// Fallback: a task goes to another device when the device it prefers (its best by the
// algorithm's criterion, or its pin) does not support it; each is recorded with the
// reason and the finish time it cost. With strict_placement a fallback is an error.
//
// Errors (Status): invalid problem (sizes, NaN or negative costs, unfinalized graph),
// a task no device can run or hold, capacity exceeded by pins, strict fallback, an
// exhaustive search over the limit. Messages name the task and the devices.
//
// Output (Schedule): streams 0..devices-1 are the devices' compute streams (one each: a
// device runs one op at a time in this model), then transfer streams, one per link in use
// (owned by the source device). issue_order lists every task and transfer by start time
// and is a topological order of both; an executor walks it, waits for the events listed
// in `waits` for each item, issues it on its stream, and records the item's event if it
// has one. Times are predictions in seconds from 0.
//
// From the runtime (phase 2), roughly:
//   TaskGraph g;                                     // a task per op node (not views),
//   t = g.add_task({name, layer, OpWork::from_spec(spec), output bytes});
//   r = g.add_resident(name, bytes, kWeights|kState); g.use_resident(t, r);
//   g.add_edge(producer, consumer, bytes, output index);
//   CostModel model = CostModel::from_platform(platform, devices, {}, &notes);
//   Problem pb = Problem::from_cost_model(std::move(g), model).value();
//   pb.set_supported(t, d, devices[d]->supports(spec));   // per task and device
//   Options o; o.placement = parse_placement(flag).value(); o.strict_placement = ...;
//   Schedule s = schedule(pb, o).value();
//
// Threading: schedule() is a pure function of its inputs; concurrent calls are safe.
// kAuto may run its candidates on threads of its own for big graphs (joined before it
// returns).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "hal/scheduler/cost_model.h"
#include "hal/scheduler/placement.h"
#include "hal/scheduler/task_graph.h"
#include "hal/status.h"

namespace hal::scheduler {

inline constexpr double kInfinity = std::numeric_limits<double>::infinity();

struct DeviceSlot {
  std::string id;               // "npu:0"
  uint64_t capacity_bytes = 0;  // device memory available to this graph; 0 = unlimited
};

class Problem {
 public:
  Problem() = default;
  // Costs from `model` (task.work on each device), links from `model`, capacities from
  // each device's memory_bytes. All tasks supported until set_supported says otherwise.
  // Fails when the graph does not finalize.
  static Result<Problem> from_cost_model(TaskGraph graph, const CostModel& model);
  // Costs given directly: cost[task * devices + device] in seconds (+inf = cannot run);
  // links[from * devices + to] (diagonal ignored).
  static Result<Problem> from_costs(TaskGraph graph, std::vector<DeviceSlot> devices,
                                    std::vector<double> cost, std::vector<LinkCost> links);

  const TaskGraph& graph() const { return graph_; }
  int32_t device_count() const { return int32_t(devices_.size()); }
  int32_t task_count() const { return int32_t(graph_.task_count()); }
  const DeviceSlot& device(int32_t d) const { return devices_[size_t(d)]; }
  const std::vector<DeviceSlot>& devices() const { return devices_; }
  std::vector<std::string> device_ids() const;
  double cost(TaskId t, int32_t d) const { return cost_[index(t, d)]; }
  bool supported(TaskId t, int32_t d) const { return supported_[index(t, d)] != 0; }
  const LinkCost& link(int32_t from, int32_t to) const {
    return links_[size_t(from) * devices_.size() + size_t(to)];
  }
  double transfer_seconds(int32_t from, int32_t to, double bytes) const {
    return from == to || bytes <= 0 ? 0.0 : link(from, to).seconds(bytes);
  }

  void set_supported(TaskId t, int32_t d, bool supported) {
    supported_[index(t, d)] = supported ? 1 : 0;
  }
  void set_capacity(int32_t d, uint64_t bytes) { devices_[size_t(d)].capacity_bytes = bytes; }
  void set_cost(TaskId t, int32_t d, double seconds) { cost_[index(t, d)] = seconds; }

  // Checks sizes and figures; schedule() calls it.
  Status validate() const;

 private:
  size_t index(TaskId t, int32_t d) const { return size_t(t) * devices_.size() + size_t(d); }
  TaskGraph graph_;
  std::vector<DeviceSlot> devices_;
  std::vector<double> cost_;
  std::vector<uint8_t> supported_;
  std::vector<LinkCost> links_;
};

enum class Algorithm : int32_t {
  kAuto = 0,
  kHeft,
  kPeft,
  kLookahead,
  kLayerPartition,
  kAllOnFastest,
  kRoundRobin,
  kExhaustive,
  kRefine,  // HEFT then kAuto's unit refinement; also labels kAuto results it improved
};
// "auto", "heft", "peft", "lookahead", "layer-partition", "all-on-fastest",
// "round-robin", "exhaustive", "refine".
std::string_view algorithm_name(Algorithm a);
std::optional<Algorithm> parse_algorithm(std::string_view name);

enum class LinkModel : int32_t { kSerialized = 0, kContentionFree = 1 };

struct Options {
  Algorithm algorithm = Algorithm::kAuto;
  LinkModel link_model = LinkModel::kSerialized;
  bool insertion = true;          // fill idle gaps of device and link timelines
  bool strict_placement = false;  // a fallback is an error
  PlacementSpec placement;        // pins (resolved against the problem's devices)
  // Per task: a device index to pin it to, or -1 (empty = none). Wins over `placement`
  // for the tasks it pins. For placing tasks outside the layers (embedding, LM head) the
  // same way in every graph of a model.
  std::vector<int32_t> task_pins;
  size_t lookahead_max_tasks = 20000;  // kAuto runs lookahead up to this size
  size_t peft_max_tasks = 50000;       // and PEFT up to this size (HEFT always)
  // kAuto runs its candidates on threads for graphs of at least parallel_min_tasks.
  bool parallel_candidates = true;
  size_t refine_max_tasks = 20000;  // kAuto's unit refinement, graphs with layers only
  int32_t refine_max_sweeps = 3;
  size_t parallel_min_tasks = 5000;
  size_t exhaustive_max_tasks = 12;
  uint64_t exhaustive_max_nodes = 200'000'000;  // search nodes before giving up
};

// A piece of work on a stream: a task or a transfer.
struct WorkRef {
  enum class Kind : uint8_t { kTask = 0, kTransfer = 1 };
  Kind kind = Kind::kTask;
  int32_t index = 0;  // TaskId or index into Schedule::transfers
  bool operator==(const WorkRef&) const = default;
};

struct StreamInfo {
  enum class Kind : uint8_t { kCompute = 0, kTransfer = 1 };
  Kind kind = Kind::kCompute;
  int32_t device = 0;   // compute: the device; transfer: the source device
  int32_t peer = -1;    // transfer: the destination device
  int32_t channel = 0;  // transfer: 0.. (several only with contention-free links)
  std::string name;     // "npu:0/compute", "npu:0->cpu:0/copy0"
};

struct TaskPlacement {
  int32_t device = -1;
  int32_t stream = -1;
  double start = 0;
  double finish = 0;
};

struct Transfer {
  TaskId source = kNoTask;  // task whose output moves
  int32_t data = 0;         // which output (Edge::data)
  int32_t from_device = 0;
  int32_t to_device = 0;
  double bytes = 0;
  double start = 0;
  double finish = 0;
  int32_t stream = -1;
};

// Recorded on `stream` right after `producer`.
struct ScheduleEvent {
  WorkRef producer;
  int32_t stream = -1;
};

// `waiter` waits for `event` before it is issued on its stream.
struct EventWait {
  int32_t event = -1;
  WorkRef waiter;
};

struct Fallback {
  TaskId task = kNoTask;
  int32_t preferred_device = -1;
  int32_t chosen_device = -1;
  std::string reason;           // "task 'argmax' (vector) prefers npu:0, which does not support it"
  double preferred_finish = 0;  // the finish it would have had there
  double chosen_finish = 0;
  double cost_seconds() const { return chosen_finish - preferred_finish; }
};

struct DeviceMemory {
  uint64_t capacity_bytes = 0;  // 0 = unlimited
  uint64_t resident_bytes = 0;  // weights + state placed on the device
  uint64_t weights_bytes = 0;
  uint64_t state_bytes = 0;
  uint64_t peak_activation_bytes = 0;
  uint64_t peak_bytes() const { return resident_bytes + peak_activation_bytes; }
};

struct CandidateResult {
  Algorithm algorithm = Algorithm::kHeft;
  double makespan = kInfinity;  // +inf when it failed
  std::string failure;          // why it failed, when it did
};

struct Schedule {
  Algorithm algorithm = Algorithm::kHeft;  // the one that produced it (kAuto resolves)
  LinkModel link_model = LinkModel::kSerialized;
  std::vector<TaskPlacement> tasks;  // by TaskId
  std::vector<Transfer> transfers;
  std::vector<StreamInfo> streams;
  // Per stream, its work in issue order.
  std::vector<std::vector<WorkRef>> stream_order;
  // Every task and transfer, by start time: a topological order of tasks and transfers
  // (what an executor issues in).
  std::vector<WorkRef> issue_order;
  // One event per producer whose result is needed on another stream, and every wait for
  // one, grouped by waiter (transfers in index order, then tasks by id).
  std::vector<ScheduleEvent> events;
  std::vector<EventWait> waits;
  std::vector<Fallback> fallbacks;
  std::vector<DeviceMemory> memory;         // per device
  std::vector<CandidateResult> candidates;  // kAuto: what each candidate reached
  double makespan = 0;
  bool proved_optimal = false;  // kExhaustive finished its search

  int32_t compute_stream(int32_t device) const;  // the compute stream of a device
};

Result<Schedule> schedule(const Problem& problem, const Options& options = {});

// Checks every invariant a schedule must hold against its problem: every task placed once
// on a device that can hold it, durations equal the problem's costs, precedence (a
// consumer starts after its producer's finish on the same device, after the transfer
// bringing the data otherwise; transfers start after their source finishes and last the
// link time), no overlap on a device or a stream, stream orders and the issue order
// consistent with the times, events recorded by the producers their waiters need,
// capacity respected (resident + peak activations), makespan = the last finish.
// Returns the first violation, naming the tasks.
Status verify_schedule(const Problem& problem, const Schedule& schedule,
                       const Options& options = {});

// The layer split of a schedule as a placement, e.g. "layers=0-13:npu:0,14-23:cpu:0":
// each layer on the device holding most of its tasks' resident bytes (ties: most
// tasks), adjacent layers on one device merged into a range. Graphs of one model with
// different shapes (prefill, decode) can be pinned to the split chosen for one of them,
// so weights stay where they were uploaded; `halctl plan` can print it.
PlacementSpec placement_of(const Problem& problem, const Schedule& schedule);

// Lower bound used by the schedule length ratio: the longest path of the graph when each
// task costs its minimum over the devices that can run it and transfers cost nothing.
double critical_path_min_cost(const Problem& problem);
// makespan / critical_path_min_cost (Topcuoglu et al. 2002's SLR; >= 1).
double schedule_length_ratio(const Problem& problem, const Schedule& schedule);

}  // namespace hal::scheduler
