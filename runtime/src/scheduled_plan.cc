// The runtime <-> scheduler bridge: graphs as task graphs, schedules as execution plans,
// and the session plan builder that keeps weights and KV caches where the first plan put
// them. Just over 800 lines: the graph-to-task builder that run and plan share lives here
// beside the plan assembly it feeds.
#include "hal/runtime/scheduled_plan.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <numeric>
#include <queue>
#include <set>

namespace hal::runtime {

namespace {

constexpr int32_t kUnplaced = -2;

OpSpec copy_spec(const TensorDesc& from, const TensorDesc& to) {
  OpSpec s;
  s.kind = OpKind::kTranspose;
  s.num_inputs = 1;
  s.inputs[0] = from;
  s.output = to;
  return s;
}

bool is_bound(ValueKind k) { return k == ValueKind::kConstant || k == ValueKind::kState; }

struct UnionFind {
  std::vector<int32_t> parent;
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int32_t find(int32_t x) {
    while (parent[size_t(x)] != x) x = parent[size_t(x)] = parent[size_t(parent[size_t(x)])];
    return x;
  }
  void unite(int32_t a, int32_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[size_t(std::max(a, b))] = std::min(a, b);
  }
};

}  // namespace

std::vector<OpSpec> node_op_specs(const Graph& g, NodeId n) {
  const Node& node = g.node(n);
  std::vector<OpSpec> out;
  switch (node.kind) {
    case NodeKind::kOp:
      out.push_back(node_op_spec(g, n));
      break;
    case NodeKind::kConcat: {
      const TensorDesc& o = g.value(node.outputs[0]).desc;
      for (ValueId in : node.inputs) {
        TensorDesc part = o;
        part.shape.dims[node.axis] = g.value(in).desc.shape.dims[node.axis];
        out.push_back(copy_spec(g.value(in).desc, part));
      }
      break;
    }
    case NodeKind::kWriteSlice: {
      const TensorDesc& src = g.value(node.inputs[1]).desc;
      TensorDesc dst = g.value(node.inputs[0]).desc;
      dst.shape = src.shape;
      out.push_back(copy_spec(src, dst));
      break;
    }
    default:
      break;
  }
  return out;
}

bool evicts_caches(const Graph& g, NodeId n) {
  constexpr uint64_t kEvictingBytes = uint64_t(1) << 20;
  const Node& node = g.node(n);
  if (node.kind != NodeKind::kOp) return false;
  // An embedding reads the rows it gathers, not its table.
  if (node.op == OpKind::kEmbedding)
    return !node.outputs.empty() && g.value(node.outputs[0]).desc.extent_bytes() >= kEvictingBytes;
  uint64_t bytes = 0;
  for (ValueId in : node.inputs) {
    const ValueKind k = g.value(g.storage_root(in)).kind;
    if (k == ValueKind::kConstant || k == ValueKind::kState)
      bytes += g.value(in).desc.extent_bytes();
  }
  return bytes >= kEvictingBytes;
}

scheduler::OpWork op_work(const OpSpec& spec) {
  scheduler::OpWork w = scheduler::OpWork::from_spec(spec);
  if (spec.kind == OpKind::kMatmul && spec.num_inputs > 1 && dtype_size(spec.inputs[1].dtype) == 1)
    w.dtype = spec.inputs[1].dtype;
  return w;
}

Result<GraphTasks> build_graph_tasks(const Graph& g, const TaskBuildOptions& options) {
  const std::span<const int32_t> unit_of_node = options.unit_of_node;
  HAL_RETURN_IF_ERROR(g.validate());
  HAL_ASSIGN_OR_RETURN(std::vector<NodeId> order, g.topological_order());
  const size_t n_nodes = g.nodes().size();
  const auto& values = g.values();
  auto works = [&](NodeId n) {
    const NodeKind k = g.node(n).kind;
    return !is_view_kind(k);
  };
  // Group nodes touching the same state or in-place written storage.
  UnionFind uf(n_nodes);
  std::vector<char> shared_root(values.size(), 0);
  for (size_t v = 0; v < values.size(); ++v)
    if (values[v].kind == ValueKind::kState) shared_root[v] = 1;
  for (size_t n = 0; n < n_nodes; ++n)
    if (g.node(NodeId(n)).kind == NodeKind::kWriteSlice)
      shared_root[size_t(g.storage_root(g.node(NodeId(n)).inputs[0]))] = 1;
  // Nodes of one compiled unit: one task.
  std::vector<int32_t> first_of_unit;
  for (size_t n = 0; n < unit_of_node.size() && n < n_nodes; ++n) {
    const int32_t u = unit_of_node[n];
    if (u < 0) continue;
    if (size_t(u) >= first_of_unit.size()) first_of_unit.resize(size_t(u) + 1, -1);
    if (first_of_unit[size_t(u)] < 0)
      first_of_unit[size_t(u)] = int32_t(n);
    else
      uf.unite(first_of_unit[size_t(u)], int32_t(n));
  }
  std::vector<int32_t> first_toucher(values.size(), -1);
  for (size_t n = 0; n < n_nodes; ++n) {
    if (!works(NodeId(n))) continue;
    const Node& node = g.node(NodeId(n));
    for (const auto* list : {&node.inputs, &node.outputs})
      for (ValueId v : *list) {
        const ValueId r = g.storage_root(v);
        if (!shared_root[size_t(r)]) continue;
        if (first_toucher[size_t(r)] < 0)
          first_toucher[size_t(r)] = int32_t(n);
        else
          uf.unite(first_toucher[size_t(r)], int32_t(n));
      }
  }
  GraphTasks out;
  out.task_of_node.assign(n_nodes, scheduler::kNoTask);
  std::vector<scheduler::TaskId> task_of_group(n_nodes, scheduler::kNoTask);
  for (NodeId n : order) {
    if (!works(n)) continue;
    const int32_t grp = uf.find(n);
    if (task_of_group[size_t(grp)] == scheduler::kNoTask) {
      task_of_group[size_t(grp)] = scheduler::TaskId(out.nodes_of_task.size());
      out.nodes_of_task.emplace_back();
    }
    out.task_of_node[size_t(n)] = task_of_group[size_t(grp)];
    out.nodes_of_task[size_t(task_of_group[size_t(grp)])].push_back(n);
  }
  const size_t n_tasks = out.nodes_of_task.size();
  out.specs_of_task.resize(n_tasks);
  out.cost_specs_of_task.resize(n_tasks);
  out.constants_of_task.resize(n_tasks);
  out.states_of_task.resize(n_tasks);
  // Weights stored in a 1-byte dtype (planning): matmul weights and embedding tables.
  std::vector<char> quantised(values.size(), 0);
  if (options.weight_dtype != DType::kInvalid)
    for (const Node& n : g.nodes()) {
      if (n.kind != NodeKind::kOp) continue;
      const int idx = n.op == OpKind::kMatmul ? 1 : n.op == OpKind::kEmbedding ? 0 : -1;
      if (idx < 0 || idx >= int(n.inputs.size())) continue;
      const ValueId root = g.storage_root(n.inputs[size_t(idx)]);
      const Value& w = values[size_t(root)];
      if (w.kind == ValueKind::kConstant && is_floating(w.desc.dtype) &&
          w.desc.dtype != DType::kF32 && w.desc.dtype != options.weight_dtype)
        quantised[size_t(root)] = 1;
    }
  // Whether value `v` (or a view of it) is read outside task `t` or is a graph output.
  std::function<bool(ValueId, scheduler::TaskId)> leaves_task = [&](ValueId v,
                                                                    scheduler::TaskId t) {
    if (values[size_t(v)].is_output) return true;
    for (NodeId c : g.consumers(v)) {
      if (!works(c)) {
        for (ValueId view : g.node(c).outputs)
          if (leaves_task(view, t)) return true;
      } else if (out.task_of_node[size_t(c)] != t) {
        return true;
      }
    }
    return false;
  };
  auto units_in_task = [&](size_t t) {
    std::set<int32_t> units;
    for (NodeId n : out.nodes_of_task[t])
      if (size_t(n) < unit_of_node.size() && unit_of_node[size_t(n)] >= 0)
        units.insert(unit_of_node[size_t(n)]);
    return units;
  };
  std::vector<scheduler::ResidentId> resident_of(values.size(), -1);
  scheduler::TaskGraph& tg = out.tasks;
  for (size_t t = 0; t < n_tasks; ++t) {
    const auto& members = out.nodes_of_task[t];
    scheduler::Task task;
    double best = -1;
    uint64_t activation = 0;
    for (NodeId n : members) {
      const Node& node = g.node(n);
      for (OpSpec spec : node_op_specs(g, n)) {
        if (node.kind == NodeKind::kOp && node.kv_length && !options.symbols.empty())
          spec.attrs.kv_length = node.kv_length->eval(options.symbols);
        OpSpec cost = spec;
        if (node.kind == NodeKind::kOp)
          for (size_t i = 0; i < node.inputs.size() && i < size_t(kMaxOpInputs); ++i)
            if (quantised[size_t(g.storage_root(node.inputs[i]))])
              cost.inputs[i].dtype = options.weight_dtype;
        const scheduler::OpWork w = op_work(cost);
        if (w.flops + w.bytes * 1e-3 > best) {
          best = w.flops + w.bytes * 1e-3;
          task.name = node.name;
          task.work.op_class = w.op_class;
          task.work.dtype = w.dtype;
        }
        task.work.flops += w.flops;
        task.work.bytes += w.bytes;
        out.specs_of_task[t].push_back(spec);
        out.cost_specs_of_task[t].push_back(cost);
      }
      const int32_t unit = size_t(n) < unit_of_node.size() ? unit_of_node[size_t(n)] : -1;
      for (ValueId o : node.outputs) {
        if (g.storage_root(o) != o || values[size_t(o)].kind != ValueKind::kIntermediate) continue;
        if (unit >= 0 && size_t(unit) < options.unit_scratch_bytes.size() &&
            !leaves_task(o, scheduler::TaskId(t)))
          continue;  // inside the executable: in its scratch or on chip
        activation += values[size_t(o)].desc.bytes();
      }
    }
    for (int32_t u : units_in_task(t))
      if (size_t(u) < options.unit_scratch_bytes.size())
        activation += options.unit_scratch_bytes[size_t(u)];
    if (task.name.empty()) task.name = g.node(members.front()).name;
    task.layer = g.node(members.front()).layer;
    task.activation_bytes = activation;
    tg.add_task(std::move(task));
  }
  // Residents and edges.
  std::set<std::tuple<int32_t, int32_t, int32_t>> edges;
  for (size_t t = 0; t < n_tasks; ++t) {
    for (NodeId n : out.nodes_of_task[t]) {
      for (ValueId v : g.node(n).inputs) {
        const ValueId r = g.storage_root(v);
        const Value& root = values[size_t(r)];
        if (is_bound(root.kind)) {
          if (resident_of[size_t(r)] < 0) {
            const uint64_t bytes = quantised[size_t(r)] ? uint64_t(root.desc.numel()) *
                                                              dtype_size(options.weight_dtype)
                                                        : root.desc.extent_bytes();
            const bool state = root.kind == ValueKind::kState;
            (state ? out.state_bytes : out.weight_bytes) += bytes;
            resident_of[size_t(r)] = tg.add_resident(
                root.name, bytes,
                state ? scheduler::ResidentKind::kState : scheduler::ResidentKind::kWeights);
          }
          tg.use_resident(scheduler::TaskId(t), resident_of[size_t(r)]);
          auto& list =
              root.kind == ValueKind::kState ? out.states_of_task[t] : out.constants_of_task[t];
          if (std::find(list.begin(), list.end(), r) == list.end()) list.push_back(r);
          continue;
        }
        if (root.producer == kNoNode) continue;  // a graph input: uploaded where read
        const scheduler::TaskId from = out.task_of_node[size_t(root.producer)];
        if (from == scheduler::kNoTask || from == scheduler::TaskId(t)) continue;
        if (edges.emplace(from, int32_t(t), r).second)
          tg.add_edge(from, scheduler::TaskId(t), double(root.desc.bytes()), r);
      }
    }
  }
  HAL_RETURN_IF_ERROR(tg.finalize());
  return out;
}

double op_seconds_on(const scheduler::CostModel& model, int32_t device, const OpSpec& spec,
                     const OpSeconds& op_seconds) {
  if (op_seconds)
    if (std::optional<double> s = op_seconds(device, spec)) return *s;
  return model.device(device).seconds(op_work(spec));
}

Result<scheduler::Problem> make_problem(const GraphTasks& tasks, const scheduler::CostModel& model,
                                        const OpSupport& supports, const OpSeconds& op_seconds) {
  HAL_ASSIGN_OR_RETURN(scheduler::Problem pb,
                       scheduler::Problem::from_cost_model(tasks.tasks, model));
  for (int32_t t = 0; t < pb.task_count(); ++t) {
    for (int32_t d = 0; d < pb.device_count(); ++d) {
      double seconds = 0;
      bool ok = true;
      const auto& specs = tasks.specs_of_task[size_t(t)];
      const auto& costs = tasks.cost_specs_of_task[size_t(t)];
      for (size_t k = 0; k < specs.size(); ++k) {
        seconds += op_seconds_on(model, d, costs[k], op_seconds);
        ok = ok && (!supports || supports(d, specs[k]));
      }
      pb.set_cost(t, d, seconds);
      pb.set_supported(t, d, ok);
    }
  }
  return pb;
}

std::vector<std::vector<std::string>> plan_stream_names(const ExecutionPlan& plan) {
  std::vector<std::vector<std::string>> names(plan.devices.size());
  for (size_t d = 0; d < plan.devices.size(); ++d) {
    const int32_t n = d < plan.streams_per_device.size() ? plan.streams_per_device[d] : 1;
    names[d].assign(size_t(std::max(n, 1)), "");
    names[d][0] = "compute";
    for (int32_t s = 1; s < n; ++s) names[d][size_t(s)] = "stream " + std::to_string(s);
  }
  if (!plan.graph) return names;
  for (const PlannedStep& st : plan.steps) {
    if (plan.graph->node(st.node).kind != NodeKind::kTransfer || st.stream == 0) continue;
    const int32_t sd = st.stream_device();
    names[size_t(sd)][size_t(st.stream)] = "copy->" + plan.devices[size_t(st.device)]->id();
  }
  return names;
}

Result<ExecutionPlan> plan_from_assignment(
    std::shared_ptr<const Graph> graph, std::vector<Device*> devices, const GraphTasks& tasks,
    std::span<const int32_t> task_device, std::span<const double> task_start,
    const std::map<std::pair<ValueId, int32_t>, double>& transfer_start) {
  if (!graph) return invalid_argument("plan_from_assignment: no graph");
  if (devices.empty()) return invalid_argument("plan_from_assignment: no devices");
  const size_t n_tasks = tasks.nodes_of_task.size();
  if (task_device.size() != n_tasks || task_start.size() != n_tasks)
    return invalid_argument("plan_from_assignment: " + std::to_string(n_tasks) + " tasks, " +
                            std::to_string(task_device.size()) + " devices and " +
                            std::to_string(task_start.size()) + " start times given");
  for (size_t t = 0; t < n_tasks; ++t)
    if (task_device[t] < 0 || size_t(task_device[t]) >= devices.size())
      return invalid_argument("plan_from_assignment: task '" + tasks.tasks.task(int32_t(t)).name +
                              "' placed on device index " + std::to_string(task_device[t]));
  auto g = std::make_shared<Graph>(*graph);
  const size_t original_nodes = g->nodes().size();
  if (tasks.task_of_node.size() != original_nodes)
    return invalid_argument("plan_from_assignment: the tasks were built for another graph");
  std::vector<int32_t> node_device(original_nodes, 0);
  std::vector<double> priority(original_nodes, -1.0);
  for (size_t n = 0; n < original_nodes; ++n) {
    const scheduler::TaskId t = tasks.task_of_node[n];
    if (t == scheduler::kNoTask) continue;
    node_device[n] = task_device[size_t(t)];
    priority[n] = task_start[size_t(t)];
  }
  // Homes of storage roots: producers' devices; inputs with their earliest reader.
  std::vector<int32_t> home(g->values().size(), kUnplaced);
  std::vector<NodeId> by_start;
  for (size_t n = 0; n < original_nodes; ++n)
    if (tasks.task_of_node[n] != scheduler::kNoTask) by_start.push_back(NodeId(n));
  std::stable_sort(by_start.begin(), by_start.end(),
                   [&](NodeId a, NodeId b) { return priority[size_t(a)] < priority[size_t(b)]; });
  for (NodeId n : by_start) {
    const Node& node = g->node(n);
    for (ValueId o : node.outputs)
      if (g->storage_root(o) == o) home[size_t(o)] = node_device[size_t(n)];
    for (ValueId v : node.inputs) {
      const ValueId r = g->storage_root(v);
      if (g->value(r).kind == ValueKind::kInput && home[size_t(r)] == kUnplaced)
        home[size_t(r)] = node_device[size_t(n)];
    }
  }
  for (size_t v = 0; v < home.size(); ++v)
    if (home[v] == kUnplaced && g->value(ValueId(v)).kind == ValueKind::kInput) home[v] = 0;
  // Views run where their storage lives (anywhere for weights and caches: bound per
  // device, so their device does not matter).
  for (size_t n = 0; n < original_nodes; ++n) {
    const Node& node = g->node(NodeId(n));
    if (!is_view_kind(node.kind)) continue;
    const int32_t h = home[size_t(g->storage_root(node.inputs[0]))];
    node_device[n] = h >= 0 ? h : 0;
  }
  // Transfers: one per (root, destination); views re-created on the destination.
  std::map<std::pair<ValueId, int32_t>, ValueId> moved;   // (root, dst) -> transferred root
  std::map<std::pair<ValueId, int32_t>, ValueId> viewed;  // (value, dst) -> its copy there
  std::map<int64_t, int32_t> copy_stream;                 // from * n + to -> stream on from
  std::vector<int32_t> streams(devices.size(), 1);
  struct TransferInfo {
    int32_t from = 0, stream = 0;
  };
  std::map<NodeId, TransferInfo> transfer_info;
  auto place_new = [&](int32_t dev, double prio) {
    while (node_device.size() < g->nodes().size()) {
      node_device.push_back(dev);
      priority.push_back(prio);
    }
  };
  std::function<Result<ValueId>(ValueId, ValueId, int32_t, double)> rebuild =
      [&](ValueId v, ValueId root, int32_t dst, double prio) -> Result<ValueId> {
    if (v == root) return moved.at({root, dst});
    if (auto it = viewed.find({v, dst}); it != viewed.end()) return it->second;
    const Node view = g->node(g->value(v).producer);  // a view node (v is not its root)
    HAL_ASSIGN_OR_RETURN(ValueId base, rebuild(view.inputs[0], root, dst, prio));
    const std::string name = view.name + "@" + devices[size_t(dst)]->id();
    ValueId made = kNoValue;
    switch (view.kind) {
      case NodeKind::kReshape:
        made = g->reshape(name, view.layer, base, view.new_shape);
        break;
      case NodeKind::kPermute:
        made = g->permute(name, view.layer, base,
                          std::span<const int32_t>(view.attrs.perm.data(),
                                                   size_t(g->value(base).desc.shape.rank)));
        break;
      case NodeKind::kSlice:
        made = g->slice(name, view.layer, base, view.axis, view.start, view.length);
        break;
      case NodeKind::kSplit: {
        const auto outs = g->split(name, view.layer, base, view.axis, view.sizes);
        for (size_t i = 0; i < view.outputs.size() && i < outs.size(); ++i)
          if (view.outputs[i] == v) made = outs[i];
        break;
      }
      default:
        return internal_error("plan_from_assignment: '" + g->value(v).name +
                              "' aliases storage through " + node_label(view) + ", not a view");
    }
    if (made == kNoValue) return g->status();
    place_new(dst, -1.0);
    viewed[{v, dst}] = made;
    return made;
  };
  for (size_t n = 0; n < original_nodes; ++n) {
    const Node node = g->node(NodeId(n));
    if (is_view_kind(node.kind)) continue;
    const int32_t dst = node_device[n];
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const ValueId v = node.inputs[k];
      const ValueId r = g->storage_root(v);
      if (is_bound(g->value(r).kind)) continue;
      const int32_t src = home[size_t(r)];
      if (src < 0 || src == dst) continue;
      if (!moved.count({r, dst})) {
        const int64_t key = int64_t(src) * int64_t(devices.size()) + dst;
        if (!copy_stream.count(key)) copy_stream[key] = streams[size_t(src)]++;
        auto ts = transfer_start.find({r, dst});
        const double prio = ts != transfer_start.end() ? ts->second : priority[n] - 1e-12;
        const ValueId t =
            g->transfer(g->value(r).name + ".to_" + devices[size_t(dst)]->id(), node.layer, r);
        if (t == kNoValue) return g->status();
        place_new(dst, prio);
        transfer_info[g->value(t).producer] = {src, copy_stream[key]};
        moved[{r, dst}] = t;
      }
      HAL_ASSIGN_OR_RETURN(ValueId here, rebuild(v, r, dst, priority[n]));
      g->replace_input(NodeId(n), int32_t(k), here);
    }
  }
  HAL_RETURN_IF_ERROR(g->validate());
  // Issue order: ready nodes by predicted start (views first: they cost nothing).
  const size_t n_all = g->nodes().size();
  std::vector<std::vector<NodeId>> succ(n_all);
  std::vector<int32_t> indegree(n_all, 0);
  for (auto [from, to] : g->dependencies()) {
    succ[size_t(from)].push_back(to);
    ++indegree[size_t(to)];
  }
  using Item = std::pair<double, NodeId>;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> ready;
  for (size_t n = 0; n < n_all; ++n)
    if (indegree[n] == 0) ready.emplace(priority[n], NodeId(n));
  ExecutionPlan plan;
  plan.graph = g;
  plan.devices = std::move(devices);
  plan.streams_per_device = streams;
  while (!ready.empty()) {
    const NodeId n = ready.top().second;
    ready.pop();
    PlannedStep step;
    step.node = n;
    step.device = node_device[size_t(n)];
    if (auto it = transfer_info.find(n); it != transfer_info.end()) {
      step.issue_device = it->second.from;
      step.stream = it->second.stream;
    }
    plan.steps.push_back(step);
    for (NodeId s : succ[size_t(n)])
      if (--indegree[size_t(s)] == 0) ready.emplace(priority[size_t(s)], s);
  }
  if (plan.steps.size() != n_all)
    return internal_error("plan_from_assignment: the graph's dependencies have a cycle");
  add_stream_events(plan);
  HAL_RETURN_IF_ERROR(finalize_plan(plan));
  return plan;
}

Result<ExecutionPlan> plan_from_schedule(std::shared_ptr<const Graph> graph,
                                         std::vector<Device*> devices, const GraphTasks& tasks,
                                         const scheduler::Schedule& schedule) {
  std::vector<int32_t> device;
  std::vector<double> start;
  for (const scheduler::TaskPlacement& p : schedule.tasks) {
    device.push_back(p.device);
    start.push_back(p.start);
  }
  std::map<std::pair<ValueId, int32_t>, double> transfer_start;
  for (const scheduler::Transfer& t : schedule.transfers) {
    auto [it, fresh] =
        transfer_start.emplace(std::make_pair(ValueId(t.data), t.to_device), t.start);
    if (!fresh) it->second = std::min(it->second, t.start);
  }
  return plan_from_assignment(std::move(graph), std::move(devices), tasks, device, start,
                              transfer_start);
}

PlanFootprint plan_footprint(const ExecutionPlan& plan) {
  PlanFootprint f;
  const size_t n = plan.devices.size();
  f.weight_bytes.assign(n, 0);
  f.streamed_weight_bytes.assign(n, 0);
  f.state_bytes.assign(n, 0);
  f.activation_bytes.assign(n, 0);
  for (size_t d = 0; d < n && d < plan.memory.size(); ++d)
    f.activation_bytes[d] = plan.memory[d].arena_bytes;
  if (plan.graph) {
    const Graph& g = *plan.graph;
    // (root, device) pairs read in full by some op there.
    std::set<std::pair<ValueId, int32_t>> streamed;
    for (const PlannedStep& st : plan.steps) {
      const Node& node = g.node(st.node);
      if (is_view_kind(node.kind) || (node.kind == NodeKind::kOp && node.op == OpKind::kEmbedding))
        continue;
      for (ValueId v : node.inputs) streamed.emplace(g.storage_root(v), st.device);
    }
    for (const RequiredBinding& b : plan.required_bindings) {
      const Value& v = g.value(b.value);
      if (b.device < 0 || size_t(b.device) >= n) continue;
      const uint64_t bytes = v.desc.extent_bytes();
      if (v.kind == ValueKind::kState) {
        f.state_bytes[size_t(b.device)] += bytes;
      } else {
        f.weight_bytes[size_t(b.device)] += bytes;
        if (streamed.count({b.value, b.device})) f.streamed_weight_bytes[size_t(b.device)] += bytes;
      }
    }
  }
  f.stream_names = plan_stream_names(plan);
  return f;
}

// ---- ScheduledPlanBuilder -------------------------------------------------------------

Result<std::shared_ptr<ScheduledPlanBuilder>> ScheduledPlanBuilder::create(
    std::vector<Device*> devices, SchedulingOptions options) {
  if (devices.empty()) return invalid_argument("scheduling planner: no devices");
  for (Device* d : devices)
    if (!d) return invalid_argument("scheduling planner: a device is null");
  if (!options.capacity_bytes.empty() && options.capacity_bytes.size() != devices.size())
    return invalid_argument("scheduling planner: " + std::to_string(options.capacity_bytes.size()) +
                            " capacities for " + std::to_string(devices.size()) + " devices");
  std::shared_ptr<ScheduledPlanBuilder> p(new ScheduledPlanBuilder());
  if (!options.placement.empty()) {
    HAL_ASSIGN_OR_RETURN(p->placement_, scheduler::parse_placement(options.placement));
  }
  if (!options.device_figures.empty() && options.device_figures.size() != devices.size())
    return invalid_argument("scheduling planner: " + std::to_string(options.device_figures.size()) +
                            " device figures for " + std::to_string(devices.size()) + " devices");
  p->cost_model_ = options.device_figures.empty()
                       ? scheduler::CostModel::from_platform(devices.front()->platform(), devices,
                                                             options.calibration, &p->notes_)
                       : scheduler::CostModel::from_infos(options.device_figures,
                                                          options.calibration, &p->notes_);
  p->devices_ = std::move(devices);
  p->options_ = std::move(options);
  return p;
}

PlanBuilder ScheduledPlanBuilder::planner() {
  std::shared_ptr<ScheduledPlanBuilder> self = shared_from_this();
  return [self](std::shared_ptr<const Graph> graph, const std::vector<Device*>& devices) {
    return self->plan(std::move(graph), devices);
  };
}

const ScheduledGraph* ScheduledPlanBuilder::find(const Graph* plan_graph) const {
  for (const ScheduledGraph& s : scheduled_)
    if (s.graph.get() == plan_graph) return &s;
  return nullptr;
}

Result<ExecutionPlan> ScheduledPlanBuilder::plan(std::shared_ptr<const Graph> graph,
                                                 const std::vector<Device*>& devices) {
  if (!graph) return invalid_argument("scheduling planner: no graph");
  if (devices != devices_)
    return invalid_argument("scheduling planner: asked to place on other devices than it models");
  const auto t0 = std::chrono::steady_clock::now();
  HAL_ASSIGN_OR_RETURN(GraphTasks tasks, build_graph_tasks(*graph));
  HAL_ASSIGN_OR_RETURN(scheduler::Problem pb, make_problem(tasks, cost_model_, support(),
                                                           op_seconds(options_.compile.enabled)));
  for (size_t d = 0; d < options_.capacity_bytes.size(); ++d)
    if (options_.capacity_bytes[d] > 0) pb.set_capacity(int32_t(d), options_.capacity_bytes[d]);
  const Graph& g = *graph;
  // Pins from earlier graphs: the same node, else the KV cache or weight it touches.
  const size_t n_tasks = tasks.nodes_of_task.size();
  std::vector<int32_t> pins(n_tasks, -1);
  bool any_pin = false;
  for (size_t t = 0; t < n_tasks; ++t) {
    int32_t pin = -1;
    for (NodeId n : tasks.nodes_of_task[t])
      if (auto it = node_device_.find(g.node(n).name); pin < 0 && it != node_device_.end())
        pin = it->second;
    for (ValueId s : tasks.states_of_task[t])
      if (auto it = state_device_.find(g.value(s).name); pin < 0 && it != state_device_.end())
        pin = it->second;
    for (ValueId c : tasks.constants_of_task[t])
      if (auto it = weight_devices_.find(g.value(c).name);
          pin < 0 && it != weight_devices_.end() && !it->second.empty())
        pin = *it->second.begin();
    pins[t] = pin;
    any_pin |= pin >= 0;
  }
  scheduler::Options so;
  so.algorithm = options_.algorithm;
  so.strict_placement = options_.strict_placement;
  so.placement = placement_;
  if (any_pin) so.task_pins = pins;
  auto sched = scheduler::schedule(pb, so);
  if (!sched.ok()) return sched.status().with_context("placing the graph on the devices");
  // A split that the model says saves less than min_gain of the time is within the
  // model's error, while the weights it duplicates and the transfers it adds are real:
  // keep everything on the fastest device then (when that holds no more memory). Only
  // for free placements: pins say where the user or the first graph wants things.
  if (options_.algorithm == scheduler::Algorithm::kAuto && placement_.empty() && !any_pin &&
      !sched->transfers.empty()) {
    double fastest = scheduler::kInfinity;
    for (const scheduler::CandidateResult& c : sched->candidates)
      if (c.algorithm == scheduler::Algorithm::kAllOnFastest) fastest = c.makespan;
    if (sched->makespan >= (1.0 - options_.min_gain) * fastest) {
      scheduler::Options fo = so;
      fo.algorithm = scheduler::Algorithm::kAllOnFastest;
      auto alt = scheduler::schedule(pb, fo);
      auto resident = [](const scheduler::Schedule& x) {
        uint64_t total = 0;
        for (const scheduler::DeviceMemory& m : x.memory) total += m.resident_bytes;
        return total;
      };
      if (alt.ok() && resident(*alt) <= resident(*sched)) {
        alt->candidates = sched->candidates;
        sched = std::move(alt);
      }
    }
  }
  const scheduler::Schedule& s = *sched;
  HAL_ASSIGN_OR_RETURN(ExecutionPlan plan, plan_from_schedule(graph, devices_, tasks, s));

  ScheduledGraph rec;
  rec.graph = plan.graph;
  rec.tasks = int64_t(n_tasks);
  rec.algorithm = s.algorithm;
  rec.predicted_makespan_s = s.makespan;
  rec.placement = scheduler::format_placement(scheduler::placement_of(pb, s));
  rec.memory = s.memory;
  rec.transfers = int64_t(s.transfers.size());
  rec.candidates = s.candidates;
  for (const scheduler::Fallback& f : s.fallbacks) {
    PlacementFallback pf;
    pf.node = tasks.tasks.task(f.task).name;
    const NodeId main = tasks.nodes_of_task[size_t(f.task)].front();
    pf.op = g.node(main).kind == NodeKind::kOp ? std::string(op_kind_name(g.node(main).op))
                                               : std::string(node_kind_name(g.node(main).kind));
    for (NodeId n : tasks.nodes_of_task[size_t(f.task)])
      if (g.node(n).name == pf.node && g.node(n).kind == NodeKind::kOp)
        pf.op = std::string(op_kind_name(g.node(n).op));
    pf.preferred_device = f.preferred_device;
    pf.chosen_device = f.chosen_device;
    pf.reason = f.reason;
    pf.cost_s = f.cost_seconds();
    rec.fallbacks.push_back(std::move(pf));
  }
  if (options_.compile.enabled) {
    CompileReport report;
    HAL_RETURN_IF_ERROR(compile_plan_units(plan, options_.compile, &report));
    rec.graph = plan.graph;
    rec.declined = std::move(report.declined);
    rec.compile_notes = std::move(report.notes);
    rec.compile_seconds = report.compile_seconds;
    if (!plan.units.empty()) {
      rec.op_by_op_makespan_s = s.makespan;
      HAL_ASSIGN_OR_RETURN(UnitSchedule us,
                           schedule_with_units(plan, cost_model_, op_seconds(false), {}));
      rec.predicted_makespan_s = us.schedule.makespan;
      for (const CompiledUnit& u : plan.units) {
        CompiledUnitSummary sum;
        sum.device = u.device;
        sum.first_node = plan.graph->node(u.nodes.front()).name;
        sum.nodes = int64_t(u.nodes.size());
        for (const FusedGroupInfo& fg : u.info.groups) sum.groups.push_back(fg.name);
        sum.predicted_seconds = u.info.predicted_seconds;
        sum.dram_bytes = u.info.dram_bytes();
        sum.sram_bytes = u.info.sram_bytes;
        sum.scratch_bytes = u.info.scratch_bytes;
        sum.source = u.source;
        sum.entry = u.entry;
        sum.seconds = u.seconds;
        sum.node_ids = u.nodes;
        rec.units.push_back(std::move(sum));
      }
    }
  }
  // Fix where weights and caches live for the graphs that follow.
  for (size_t t = 0; t < n_tasks; ++t) {
    if (tasks.constants_of_task[t].empty() && tasks.states_of_task[t].empty()) continue;
    const int32_t d = s.tasks[t].device;
    for (NodeId n : tasks.nodes_of_task[t]) node_device_.emplace(g.node(n).name, d);
    for (ValueId st : tasks.states_of_task[t]) state_device_.emplace(g.value(st).name, d);
    for (ValueId c : tasks.constants_of_task[t]) weight_devices_[g.value(c).name].insert(d);
  }
  rec.scheduling_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  scheduled_.push_back(std::move(rec));
  return plan;
}

Result<double> ScheduledPlanBuilder::predict(const ExecutionPlan& plan,
                                             std::span<const int64_t> symbols) const {
  if (plan.devices != devices_)
    return invalid_argument("scheduling planner: the plan is on other devices");
  HAL_ASSIGN_OR_RETURN(UnitSchedule us,
                       schedule_with_units(plan, cost_model_, op_seconds(false), symbols));
  return us.schedule.makespan;
}

OpSupport ScheduledPlanBuilder::support() const {
  std::vector<Device*> devices = devices_;
  auto custom = options_.supports;
  return [devices, custom](int32_t d, const OpSpec& spec) {
    return custom ? custom(*devices[size_t(d)], spec) : devices[size_t(d)]->supports(spec);
  };
}

OpSeconds ScheduledPlanBuilder::op_seconds(bool fused) const {
  // Timers where given; fused: devices that compile lose the per-command overhead.
  std::vector<OpTimer> timers = options_.timers;
  std::vector<double> overhead(devices_.size(), 0.0);
  if (fused)
    for (size_t d = 0; d < devices_.size(); ++d)
      if (devices_[d]->compiles()) overhead[d] = cost_model_.device(int32_t(d)).launch_overhead_s();
  const scheduler::CostModel* model = &cost_model_;
  return [timers, overhead, model](int32_t d, const OpSpec& spec) -> std::optional<double> {
    double s = 0;
    std::optional<OpTiming> t;
    if (size_t(d) < timers.size() && timers[size_t(d)]) {
      auto r = timers[size_t(d)](spec);
      if (r.ok()) t = *r;
    }
    s = t ? t->seconds : model->device(d).seconds(op_work(spec));
    return std::max(0.0, s - overhead[size_t(d)]);
  };
}

Result<UnitSchedule> schedule_with_units(const ExecutionPlan& plan,
                                         const scheduler::CostModel& model,
                                         const OpSeconds& op_seconds,
                                         std::span<const int64_t> symbols,
                                         const TaskBuildOptions& build) {
  const Graph& g = *plan.graph;
  UnitSchedule out;
  // Each unit's prediction at these symbols.
  out.unit_info.resize(plan.units.size());
  for (size_t u = 0; u < plan.units.size(); ++u) {
    const CompiledUnit& unit = plan.units[u];
    if (symbols.empty()) {
      out.unit_info[u] = unit.info;
      continue;
    }
    std::vector<int64_t> values;
    const GraphView& view = unit.executable->view();
    for (size_t k = 0; k < unit.symbols.size(); ++k)
      values.push_back(std::clamp(unit.symbols[k].eval(symbols), view.symbols[k].min_value,
                                  view.symbols[k].max_value));
    HAL_ASSIGN_OR_RETURN(out.unit_info[u], unit.executable->info(values));
  }
  std::vector<uint64_t> scratch;
  for (const ExecutableInfo& info : out.unit_info) scratch.push_back(info.scratch_bytes);
  TaskBuildOptions o = build;
  o.unit_of_node = plan.unit_of_node;
  o.unit_scratch_bytes = scratch;
  o.symbols = symbols;
  HAL_ASSIGN_OR_RETURN(out.tasks, build_graph_tasks(g, o));
  HAL_ASSIGN_OR_RETURN(scheduler::Problem pb, make_problem(out.tasks, model, {}, op_seconds));
  const size_t n_tasks = out.tasks.nodes_of_task.size();
  std::vector<int32_t> pins(n_tasks, -1);
  out.task_units.resize(n_tasks);
  for (size_t t = 0; t < n_tasks; ++t) {
    const NodeId first = out.tasks.nodes_of_task[t].front();
    const int32_t d = plan.steps[size_t(plan.step_of_node[size_t(first)])].device;
    pins[t] = d;
    // A unit costs what its executable predicts, plus any op-by-op node sharing its task.
    std::set<int32_t> units;
    double seconds = 0;
    for (NodeId n : out.tasks.nodes_of_task[t]) {
      const int32_t u = plan.unit_of_node.empty() ? -1 : plan.unit_of_node[size_t(n)];
      if (u >= 0) {
        units.insert(u);
        continue;
      }
      for (OpSpec spec : node_op_specs(g, n)) {
        const Node& node = g.node(n);
        if (node.kind == NodeKind::kOp && node.kv_length && !symbols.empty())
          spec.attrs.kv_length = node.kv_length->eval(symbols);
        seconds += op_seconds_on(model, d, spec, op_seconds);
      }
    }
    if (units.empty()) continue;
    for (int32_t u : units) seconds += out.unit_info[size_t(u)].predicted_seconds;
    out.task_units[t].assign(units.begin(), units.end());
    pb.set_cost(scheduler::TaskId(t), d, seconds);
    pb.set_supported(scheduler::TaskId(t), d, true);
  }
  scheduler::Options so;
  so.algorithm = scheduler::Algorithm::kHeft;
  so.task_pins = pins;
  auto sched = scheduler::schedule(pb, so);
  if (!sched.ok()) return sched.status().with_context("timing the compiled units");
  out.problem = std::move(pb);
  out.schedule = std::move(*sched);
  return out;
}

}  // namespace hal::runtime
