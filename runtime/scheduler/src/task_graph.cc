#include "hal/scheduler/task_graph.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <string>

#include "internal.h"

namespace hal::scheduler {

using detail::task_label;

OpWork OpWork::from_spec(const hal::OpSpec& spec) {
  const hal::OpCost c = hal::analytic_cost(spec);
  OpWork w;
  w.op_class = hal::op_class(spec.kind);
  w.dtype = spec.num_inputs > 0 ? spec.inputs[0].dtype : spec.output.dtype;
  w.flops = c.flops;
  w.bytes = double(c.bytes_read) + double(c.bytes_written);
  w.op = spec.kind;
  if (spec.kind == hal::OpKind::kMatmul)
    w.layout = (spec.attrs.transpose_a ? 1 : 0) | (spec.attrs.transpose_b ? 2 : 0);
  return w;
}

std::string_view resident_kind_name(ResidentKind kind) {
  return kind == ResidentKind::kState ? "state" : "weights";
}

TaskId TaskGraph::add_task(Task task) {
  finalized_ = false;
  tasks_.push_back(std::move(task));
  return TaskId(tasks_.size() - 1);
}

ResidentId TaskGraph::add_resident(std::string name, uint64_t bytes, ResidentKind kind) {
  finalized_ = false;
  residents_.push_back(ResidentTensor{std::move(name), bytes, kind});
  return ResidentId(residents_.size() - 1);
}

void TaskGraph::use_resident(TaskId task, ResidentId resident) {
  finalized_ = false;
  uses_.emplace_back(task, resident);
}

ResidentId TaskGraph::add_weights(TaskId task, uint64_t bytes) {
  const std::string name = task >= 0 && size_t(task) < tasks_.size()
                               ? tasks_[size_t(task)].name + ".weights"
                               : "weights";
  const ResidentId r = add_resident(name, bytes, ResidentKind::kWeights);
  use_resident(task, r);
  return r;
}

int32_t TaskGraph::add_edge(TaskId from, TaskId to, double bytes, int32_t data) {
  finalized_ = false;
  edges_.push_back(Edge{from, to, bytes, data});
  return int32_t(edges_.size() - 1);
}

void TaskGraph::reserve(size_t tasks, size_t edges) {
  tasks_.reserve(tasks);
  edges_.reserve(edges);
}

uint64_t TaskGraph::total_resident_bytes() const {
  uint64_t s = 0;
  for (const ResidentTensor& r : residents_) s += r.bytes;
  return s;
}

namespace {

// Builds CSR offsets/items from (key, item) pairs with keys in [0, n).
template <typename Key>
void build_csr(size_t n, size_t count, Key key_of, std::vector<int32_t>& offsets,
               std::vector<int32_t>& items, auto item_of) {
  offsets.assign(n + 1, 0);
  for (size_t i = 0; i < count; ++i) ++offsets[size_t(key_of(i)) + 1];
  for (size_t k = 0; k < n; ++k) offsets[k + 1] += offsets[k];
  items.assign(count, 0);
  std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
  for (size_t i = 0; i < count; ++i) items[size_t(fill[size_t(key_of(i))]++)] = item_of(i);
}

}  // namespace

Status TaskGraph::finalize() {
  finalized_ = false;
  const size_t n = tasks_.size();
  if (n > size_t(INT32_MAX) || edges_.size() > size_t(INT32_MAX))
    return invalid_argument("task graph: too many tasks or edges");
  for (size_t i = 0; i < n; ++i) {
    const OpWork& w = tasks_[i].work;
    if (!(w.flops >= 0) || !(w.bytes >= 0) || !std::isfinite(w.flops) || !std::isfinite(w.bytes))
      return invalid_argument("task graph: task " + task_label(*this, TaskId(i)) +
                              " has negative or non-finite FLOPs or bytes");
    if (tasks_[i].layer < -1)
      return invalid_argument("task graph: task " + task_label(*this, TaskId(i)) + " has layer " +
                              std::to_string(tasks_[i].layer) +
                              " (layers are >= 0, or -1 outside the blocks)");
  }
  for (size_t e = 0; e < edges_.size(); ++e) {
    const Edge& ed = edges_[e];
    if (ed.from < 0 || size_t(ed.from) >= n || ed.to < 0 || size_t(ed.to) >= n)
      return invalid_argument("task graph: edge " + std::to_string(e) + " (" +
                              std::to_string(ed.from) + " -> " + std::to_string(ed.to) +
                              ") names a task outside 0.." + std::to_string(int64_t(n) - 1));
    if (ed.from == ed.to)
      return invalid_argument("task graph: task " + task_label(*this, ed.from) +
                              " has an edge to itself");
    if (!(ed.bytes >= 0) || !std::isfinite(ed.bytes))
      return invalid_argument("task graph: edge " + task_label(*this, ed.from) + " -> " +
                              task_label(*this, ed.to) + " has negative or non-finite bytes");
    if (ed.data < 0)
      return invalid_argument("task graph: edge " + task_label(*this, ed.from) + " -> " +
                              task_label(*this, ed.to) + " has a negative data index");
  }
  for (const auto& [t, r] : uses_) {
    if (t < 0 || size_t(t) >= n)
      return invalid_argument("task graph: a resident-tensor use names task " + std::to_string(t) +
                              ", outside 0.." + std::to_string(int64_t(n) - 1));
    if (r < 0 || size_t(r) >= residents_.size())
      return invalid_argument("task graph: task " + task_label(*this, t) +
                              " uses resident tensor " + std::to_string(r) +
                              ", which does not exist");
  }

  build_csr(
      n, edges_.size(), [&](size_t i) { return edges_[i].from; }, out_offsets_, out_edges_,
      [](size_t i) { return int32_t(i); });
  build_csr(
      n, edges_.size(), [&](size_t i) { return edges_[i].to; }, in_offsets_, in_edges_,
      [](size_t i) { return int32_t(i); });
  // Resident uses, deduplicated per task.
  std::sort(uses_.begin(), uses_.end());
  uses_.erase(std::unique(uses_.begin(), uses_.end()), uses_.end());
  build_csr(
      n, uses_.size(), [&](size_t i) { return uses_[i].first; }, resident_offsets_, task_residents_,
      [&](size_t i) { return uses_[i].second; });

  // Kahn's algorithm, smallest id first: deterministic and close to insertion order.
  std::vector<int32_t> indegree(n);
  for (const Edge& e : edges_) ++indegree[size_t(e.to)];
  std::priority_queue<TaskId, std::vector<TaskId>, std::greater<>> ready;
  for (size_t i = 0; i < n; ++i)
    if (indegree[i] == 0) ready.push(TaskId(i));
  topo_.clear();
  topo_.reserve(n);
  while (!ready.empty()) {
    const TaskId t = ready.top();
    ready.pop();
    topo_.push_back(t);
    for (int32_t e : out_edges(t))
      if (--indegree[size_t(edges_[size_t(e)].to)] == 0) ready.push(edges_[size_t(e)].to);
  }
  if (topo_.size() != n) {
    // Name a cycle: walk predecessors among the tasks left until one repeats.
    TaskId start = kNoTask;
    for (size_t i = 0; i < n; ++i)
      if (indegree[i] > 0) {
        start = TaskId(i);
        break;
      }
    std::vector<int32_t> seen_at(n, -1);
    std::vector<TaskId> path;
    TaskId cur = start;
    while (seen_at[size_t(cur)] < 0) {
      seen_at[size_t(cur)] = int32_t(path.size());
      path.push_back(cur);
      for (int32_t e : in_edges(cur)) {
        const TaskId p = edges_[size_t(e)].from;
        if (indegree[size_t(p)] > 0) {
          cur = p;
          break;
        }
      }
    }
    // path[k + 1] feeds path[k]; the cycle runs cur -> path.back() -> ... -> cur.
    const size_t first = size_t(seen_at[size_t(cur)]);
    std::string cycle = task_label(*this, cur);
    for (size_t i = path.size(); i-- > first;) cycle += " -> " + task_label(*this, path[i]);
    return invalid_argument("task graph: the edges form a cycle: " + cycle);
  }
  topo_pos_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) topo_pos_[size_t(topo_[i])] = int32_t(i);
  layer_count_ = 0;
  for (const Task& t : tasks_) layer_count_ = std::max(layer_count_, t.layer + 1);
  finalized_ = true;
  return ok_status();
}

std::string detail::task_label(const TaskGraph& graph, TaskId t) {
  const std::string& n = graph.task(t).name;
  if (n.empty()) return std::string("#").append(std::to_string(t));
  return std::string("'").append(n).append("'");
}

}  // namespace hal::scheduler
