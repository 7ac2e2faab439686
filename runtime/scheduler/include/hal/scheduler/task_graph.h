// hal/scheduler/task_graph.h: the abstract task graph the scheduler places: tasks (one
// per op the runtime will issue), data edges between them, and the tensors that must stay
// resident on whichever device runs a task (weights, KV caches).
//
// It knows nothing of the runtime's graph IR: phase 2 of the runtime builds one of these
// from its model graph (a task per kOp node, an edge per value read, a resident tensor per
// constant/state) and maps the schedule back onto its nodes by TaskId.
//
// Contract
// - Tasks, edges and resident tensors are added with the add_* calls; ids are dense and
//   assigned in call order. finalize() validates the whole graph (ids in range, no self
//   edges, no cycles, finite non-negative byte counts) and builds the adjacency and a
//   topological order; every accessor below marked "finalized" needs a successful
//   finalize() first. Adding after finalize() un-finalizes the graph.
// - Errors name the tasks involved ("edge 'a' -> 'b' closes a cycle through ...").
// - An edge carries `bytes` of output `data` of its source. Edges with the same (source,
//   data) carry the same tensor, so the scheduler moves it at most once per destination
//   device; give each edge its own `data` when the bytes are distinct (the HEFT papers'
//   per-edge communication costs).
// - A resident tensor occupies its bytes on every device that runs a task using it, for
//   the whole schedule (weights are bound once; a KV cache lives across decode steps).
//   Tasks' `activation_bytes` (their outputs) are transient: they live from the task's
//   start to the end of its last consumer.
//
// Lifetime and threading: a value type; build on one thread; const methods of a
// finalized graph are safe to call concurrently.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hal/dtype.h"
#include "hal/op.h"
#include "hal/status.h"

namespace hal::scheduler {

using TaskId = int32_t;
using ResidentId = int32_t;
inline constexpr TaskId kNoTask = -1;

// What an op asks of a device; a CostModel turns it into seconds on each device.
struct OpWork {
  hal::OpClass op_class = hal::OpClass::kVector;
  hal::DType dtype = hal::DType::kF32;  // selects the device's peak FLOP/s
  double flops = 0;
  double bytes = 0;  // device-memory bytes read + written
  // The op kind when the work is one op (a calibration of that kind then applies);
  // kInvalid for summed or synthetic work, costed by its class.
  hal::OpKind op = hal::OpKind::kInvalid;
  // Operand layout, where it changes how fast a kernel runs: matmul bit 0 = A
  // transposed, bit 1 = B transposed (a decode matmul streams [K, N] and [N, K] weights
  // at different rates); 0 otherwise.
  int32_t layout = 0;
  // The op runs right after one that streamed weights or KV caches from memory, enough to
  // evict the caches (hal::runtime::evicts_caches), so the op's code and data come from
  // memory too. A calibration then predicts it from samples taken in the
  // same place (cost_model.h): a decode q rotary right after the q/k/v products took
  // 3-6 us where the k rotary of the same shape after it took 0.3-1.
  bool after_stream = false;

  // FLOPs and bytes from hal::analytic_cost, the class from hal::op_class, the dtype of
  // the first input (the output's when there is none), the op kind and layout from the
  // spec.
  static OpWork from_spec(const hal::OpSpec& spec);
};

struct Task {
  std::string name;
  int32_t layer = -1;             // transformer block index; -1 outside the blocks
  OpWork work;                    // used when costs come from a CostModel
  uint64_t activation_bytes = 0;  // output bytes (transient)
};

enum class ResidentKind : int32_t { kWeights = 0, kState = 1 };  // kState: KV caches
std::string_view resident_kind_name(ResidentKind kind);          // "weights", "state"

struct ResidentTensor {
  std::string name;
  uint64_t bytes = 0;
  ResidentKind kind = ResidentKind::kWeights;
};

struct Edge {
  TaskId from = kNoTask;
  TaskId to = kNoTask;
  double bytes = 0;
  int32_t data = 0;  // which output of `from` (see the contract)
};

class TaskGraph {
 public:
  TaskId add_task(Task task);
  ResidentId add_resident(std::string name, uint64_t bytes,
                          ResidentKind kind = ResidentKind::kWeights);
  // `task` needs `resident` on its device.
  void use_resident(TaskId task, ResidentId resident);
  // A task with its own weights: adds a resident tensor named after it and uses it.
  ResidentId add_weights(TaskId task, uint64_t bytes);
  // Returns the edge's index.
  int32_t add_edge(TaskId from, TaskId to, double bytes, int32_t data = 0);
  void reserve(size_t tasks, size_t edges);

  Status finalize();
  bool finalized() const { return finalized_; }

  size_t task_count() const { return tasks_.size(); }
  size_t edge_count() const { return edges_.size(); }
  size_t resident_count() const { return residents_.size(); }
  const Task& task(TaskId t) const { return tasks_[size_t(t)]; }
  Task& mutable_task(TaskId t) { return tasks_[size_t(t)]; }
  const std::vector<Task>& tasks() const { return tasks_; }
  const Edge& edge(int32_t e) const { return edges_[size_t(e)]; }
  const std::vector<Edge>& edges() const { return edges_; }
  const ResidentTensor& resident(ResidentId r) const { return residents_[size_t(r)]; }

  // ---- finalized ----
  // Edge indices leaving / entering a task, in insertion order.
  std::span<const int32_t> out_edges(TaskId t) const {
    return {out_edges_.data() + out_offsets_[size_t(t)],
            out_edges_.data() + out_offsets_[size_t(t) + 1]};
  }
  std::span<const int32_t> in_edges(TaskId t) const {
    return {in_edges_.data() + in_offsets_[size_t(t)],
            in_edges_.data() + in_offsets_[size_t(t) + 1]};
  }
  // Resident tensors a task uses (deduplicated).
  std::span<const ResidentId> residents_of(TaskId t) const {
    return {task_residents_.data() + resident_offsets_[size_t(t)],
            task_residents_.data() + resident_offsets_[size_t(t) + 1]};
  }
  // A topological order (Kahn's, smallest id first among ready tasks) and each task's
  // position in it.
  const std::vector<TaskId>& topological_order() const { return topo_; }
  int32_t topological_position(TaskId t) const { return topo_pos_[size_t(t)]; }
  // One past the largest layer index (0 when no task has a layer).
  int32_t layer_count() const { return layer_count_; }
  // Sum of all resident tensors' bytes.
  uint64_t total_resident_bytes() const;

 private:
  std::vector<Task> tasks_;
  std::vector<Edge> edges_;
  std::vector<ResidentTensor> residents_;
  std::vector<std::pair<TaskId, ResidentId>> uses_;
  bool finalized_ = false;

  std::vector<int32_t> out_offsets_, out_edges_, in_offsets_, in_edges_;
  std::vector<int32_t> resident_offsets_;
  std::vector<ResidentId> task_residents_;
  std::vector<TaskId> topo_;
  std::vector<int32_t> topo_pos_;
  int32_t layer_count_ = 0;
};

}  // namespace hal::scheduler
