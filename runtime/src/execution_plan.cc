// Execution plans: the trivial single-device plan, stream events, and the checks and
// derived data (value placement, bindings, memory plans) every plan gets.
#include "hal/runtime/execution_plan.h"

#include <algorithm>
#include <map>
#include <set>

namespace hal::runtime {

namespace {

constexpr int32_t kUnplaced = -2;

}  // namespace

uint64_t ExecutionPlan::peak_activation_bytes() const {
  uint64_t peak = 0;
  for (const ArenaLayout& m : memory) peak = std::max(peak, m.arena_bytes);
  return peak;
}

Result<ExecutionPlan> make_single_device_plan(std::shared_ptr<const Graph> graph, Device* device) {
  if (!graph) return invalid_argument("make_single_device_plan: no graph");
  if (!device) return invalid_argument("make_single_device_plan: no device");
  HAL_RETURN_IF_ERROR(graph->validate());
  HAL_ASSIGN_OR_RETURN(std::vector<NodeId> order, graph->topological_order());
  ExecutionPlan plan;
  plan.graph = std::move(graph);
  plan.devices = {device};
  plan.streams_per_device = {1};
  plan.steps.reserve(order.size());
  for (NodeId n : order) {
    PlannedStep step;
    step.node = n;
    plan.steps.push_back(step);
  }
  HAL_RETURN_IF_ERROR(finalize_plan(plan));
  return plan;
}

namespace {

// Makes step `to` wait for step `from` when they run on different streams.
void add_event_edge(ExecutionPlan& plan, int32_t from, int32_t to) {
  if (from < 0 || to < 0 || from >= to) return;
  PlannedStep& producer = plan.steps[size_t(from)];
  PlannedStep& consumer = plan.steps[size_t(to)];
  if (producer.stream_device() == consumer.stream_device() && producer.stream == consumer.stream)
    return;
  if (producer.record_event < 0) {
    producer.record_event = int32_t(plan.event_producer.size());
    plan.event_producer.push_back(from);
  }
  auto& waits = consumer.wait_events;
  if (std::find(waits.begin(), waits.end(), producer.record_event) == waits.end())
    waits.push_back(producer.record_event);
}

// Events for memory reuse across streams (see finalize_plan's contract).
void add_reuse_events(ExecutionPlan& plan) {
  const Graph& g = *plan.graph;
  const auto& values = g.values();
  // Steps touching each root (views issue no work and touch nothing).
  std::vector<std::vector<int32_t>> touches(values.size());
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const Node& node = g.node(plan.steps[s].node);
    if (is_view_kind(node.kind)) continue;
    for (const auto* list : {&node.inputs, &node.outputs})
      for (ValueId v : *list) {
        const ValueId root = g.storage_root(v);
        auto& t = touches[size_t(root)];
        if (t.empty() || t.back() != int32_t(s)) t.push_back(int32_t(s));
      }
  }
  auto pair_of = [&](int32_t s) {
    return std::make_pair(plan.steps[size_t(s)].stream_device(), plan.steps[size_t(s)].stream);
  };
  for (size_t d = 0; d < plan.devices.size(); ++d) {
    const ArenaLayout& m = plan.memory[d];
    // With one stream and every touch of this device's memory issued on it, stream
    // order already orders every reuse.
    const auto home = std::make_pair(int32_t(d), 0);
    bool foreign = plan.streams_per_device[d] > 1;
    for (const LiveInterval& r : m.intervals)
      for (int32_t s : touches[size_t(r.value)]) foreign |= pair_of(s) != home;
    if (!foreign) continue;
    // Candidates in step order; per r1, once a stream has an overlapping later root, the
    // stream's order covers every later one on it, so each r1 stops when every stream
    // that writes this device's memory is covered.
    std::vector<const LiveInterval*> by_start;
    std::set<std::pair<int32_t, int32_t>> writers;
    for (const LiveInterval& r : m.intervals) {
      by_start.push_back(&r);
      if (!touches[size_t(r.value)].empty())
        writers.insert(pair_of(touches[size_t(r.value)].front()));
    }
    std::sort(by_start.begin(), by_start.end(), [](const LiveInterval* a, const LiveInterval* b) {
      return a->first_step < b->first_step;
    });
    for (const LiveInterval& r1 : m.intervals) {
      const auto& t1 = touches[size_t(r1.value)];
      const uint64_t o1 = m.offsets[size_t(r1.value)];
      std::set<std::pair<int32_t, int32_t>> covered;
      auto it = std::upper_bound(
          by_start.begin(), by_start.end(), r1.last_step,
          [](int32_t step, const LiveInterval* r) { return step < r->first_step; });
      for (; it != by_start.end() && covered.size() < writers.size(); ++it) {
        const LiveInterval& r2 = **it;
        const auto& t2 = touches[size_t(r2.value)];
        if (t2.empty()) continue;
        const auto writer = pair_of(t2.front());
        if (covered.count(writer)) continue;
        const uint64_t o2 = m.offsets[size_t(r2.value)];
        if (!(o1 < o2 + std::max<uint64_t>(r2.bytes, 1) &&
              o2 < o1 + std::max<uint64_t>(r1.bytes, 1)))
          continue;
        // The first touch of r2 writes it; it waits for every touch of r1 on another stream.
        for (int32_t s : t1) add_event_edge(plan, s, t2.front());
        covered.insert(writer);
      }
    }
  }
}

// Units: known nodes, consecutive working steps of one device's first stream, no transfers.
Status check_units(ExecutionPlan& plan) {
  const Graph& g = *plan.graph;
  plan.unit_of_node.assign(g.nodes().size(), -1);
  for (size_t u = 0; u < plan.units.size(); ++u) {
    const CompiledUnit& unit = plan.units[u];
    const std::string name = "execution plan: compiled unit " + std::to_string(u);
    if (unit.nodes.empty() || !unit.executable)
      return invalid_argument(name + " has no nodes or no executable");
    int32_t last_step = -1;
    for (NodeId n : unit.nodes) {
      if (n < 0 || size_t(n) >= g.nodes().size() || plan.unit_of_node[size_t(n)] >= 0)
        return invalid_argument(name + " names node " + std::to_string(n) +
                                ", which does not exist or is in another unit");
      const int32_t s = plan.step_of_node[size_t(n)];
      const PlannedStep& step = plan.steps[size_t(s)];
      const Node& node = g.node(n);
      if (is_view_kind(node.kind) || node.kind == NodeKind::kTransfer ||
          step.device != unit.device || step.stream != 0 || step.issue_device >= 0)
        return invalid_argument(name + ": " + node_label(node) +
                                " is a view or transfer, or not on the unit's device's first "
                                "stream");
      if (last_step >= 0)
        for (int32_t k = last_step + 1; k < s; ++k)
          if (!is_view_kind(g.node(plan.steps[size_t(k)].node).kind))
            return invalid_argument(name + ": its steps are not consecutive (" +
                                    node_label(g.node(plan.steps[size_t(k)].node)) +
                                    " runs between them)");
      if (s <= last_step) return invalid_argument(name + ": its nodes are not in issue order");
      last_step = s;
      plan.unit_of_node[size_t(n)] = int32_t(u);
    }
  }
  return ok_status();
}

// Roots that only one unit's nodes touch and that are no graph output.
std::vector<char> unit_internal_roots(const ExecutionPlan& plan) {
  const Graph& g = *plan.graph;
  const auto& values = g.values();
  std::vector<int32_t> unit(values.size(), -2);  // -2 untouched, -1 touched outside units
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const Node& node = g.node(NodeId(n));
    if (is_view_kind(node.kind)) continue;
    const int32_t u = plan.unit_of_node.empty() ? -1 : plan.unit_of_node[n];
    for (const auto* list : {&node.inputs, &node.outputs})
      for (ValueId v : *list) {
        int32_t& at = unit[size_t(g.storage_root(v))];
        at = at == -2 || at == u ? u : -1;
      }
  }
  std::vector<char> internal(values.size(), 0);
  for (size_t v = 0; v < values.size(); ++v)
    if (unit[v] >= 0 && values[v].kind == ValueKind::kIntermediate) internal[v] = 1;
  for (size_t v = 0; v < values.size(); ++v)
    if (values[v].is_output) internal[size_t(g.storage_root(ValueId(v)))] = 0;
  return internal;
}

}  // namespace

void add_stream_events(ExecutionPlan& plan) {
  if (!plan.graph) return;
  std::vector<int32_t> step_of(plan.graph->nodes().size(), -1);
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const NodeId n = plan.steps[s].node;
    if (n >= 0 && size_t(n) < step_of.size()) step_of[size_t(n)] = int32_t(s);
  }
  for (auto [from, to] : plan.graph->dependencies()) {
    const int32_t ps = step_of[size_t(from)];
    const int32_t cs = step_of[size_t(to)];
    if (ps < 0 || cs < 0) continue;
    add_event_edge(plan, ps, cs);
  }
}

Result<ExecutionPlan> make_layer_split_plan(std::shared_ptr<const Graph> graph,
                                            std::vector<Device*> devices,
                                            std::vector<int32_t> layer_device) {
  if (!graph) return invalid_argument("make_layer_split_plan: no graph");
  if (devices.empty()) return invalid_argument("make_layer_split_plan: no devices");
  HAL_RETURN_IF_ERROR(graph->validate());
  auto g = std::make_shared<Graph>(*graph);
  HAL_ASSIGN_OR_RETURN(std::vector<NodeId> order, g->topological_order());
  const int32_t last = int32_t(devices.size()) - 1;
  std::vector<int32_t> node_device(g->nodes().size(), 0);
  std::vector<int32_t> value_device(g->values().size(), kUnplaced);
  // Whether a value descends from a transformer block (then layer -1 is the epilogue).
  std::vector<char> after_block(g->values().size(), 0);
  int32_t last_block_device = 0;
  for (NodeId n : order) {
    const Node& node = g->node(n);
    bool late = false;
    for (ValueId v : node.inputs) late |= after_block[size_t(v)] != 0;
    int32_t dev;
    if (is_view_kind(node.kind)) {
      const int32_t where = value_device[size_t(g->storage_root(node.inputs[0]))];
      dev = where >= 0 ? where : (node.layer >= 0 ? layer_device[size_t(node.layer)] : 0);
    } else if (node.layer >= 0) {
      if (size_t(node.layer) >= layer_device.size())
        return invalid_argument("make_layer_split_plan: " + node_label(node) + " is in layer " +
                                std::to_string(node.layer) + " but only " +
                                std::to_string(layer_device.size()) + " layers are placed");
      dev = layer_device[size_t(node.layer)];
      if (dev < 0 || dev > last)
        return invalid_argument("make_layer_split_plan: layer " + std::to_string(node.layer) +
                                " placed on device index " + std::to_string(dev));
      last_block_device = dev;
    } else {
      dev = late ? last_block_device : 0;
    }
    node_device[size_t(n)] = dev;
    for (ValueId v : node.inputs)
      if (value_device[size_t(v)] == kUnplaced && g->value(v).kind == ValueKind::kInput)
        value_device[size_t(v)] = dev;
    for (ValueId o : node.outputs) {
      const ValueId root = g->storage_root(o);
      const ValueKind rk = g->value(root).kind;
      value_device[size_t(o)] = (rk == ValueKind::kConstant || rk == ValueKind::kState) ? -1
                                : root != o ? value_device[size_t(root)]
                                            : dev;
      after_block[size_t(o)] = char(late || node.layer >= 0);
    }
  }
  // Transfers for values read away from home (one per value and destination).
  std::map<std::pair<ValueId, int32_t>, ValueId> moved;
  const size_t original_nodes = g->nodes().size();
  for (size_t n = 0; n < original_nodes; ++n) {
    const Node node = g->node(NodeId(n));
    if (is_view_kind(node.kind)) continue;
    const int32_t dev = node_device[n];
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const ValueId v = node.inputs[k];
      const int32_t home = value_device[size_t(g->storage_root(v))];
      if (home < 0 || home == dev) continue;
      auto it = moved.find({v, dev});
      if (it == moved.end()) {
        const ValueId t =
            g->transfer(g->value(v).name + ".to_" + devices[size_t(dev)]->id(), node.layer, v);
        if (t == kNoValue) return g->status();
        node_device.push_back(dev);
        it = moved.emplace(std::make_pair(v, dev), t).first;
      }
      g->replace_input(NodeId(n), int32_t(k), it->second);
    }
  }
  HAL_RETURN_IF_ERROR(g->validate());
  HAL_ASSIGN_OR_RETURN(std::vector<NodeId> final_order, g->topological_order());
  ExecutionPlan plan;
  plan.graph = g;
  plan.devices = std::move(devices);
  plan.streams_per_device.assign(plan.devices.size(), 1);
  for (NodeId n : final_order) {
    PlannedStep step;
    step.node = n;
    step.device = node_device[size_t(n)];
    plan.steps.push_back(step);
  }
  add_stream_events(plan);
  HAL_RETURN_IF_ERROR(finalize_plan(plan));
  return plan;
}

Status finalize_plan(ExecutionPlan& plan) {
  if (!plan.graph) return invalid_argument("execution plan has no graph");
  const Graph& g = *plan.graph;
  HAL_RETURN_IF_ERROR(g.validate());
  const int32_t device_count = int32_t(plan.devices.size());
  if (device_count == 0) return invalid_argument("execution plan has no devices");
  for (Device* d : plan.devices)
    if (!d) return invalid_argument("execution plan lists a null device");
  if (plan.streams_per_device.empty()) plan.streams_per_device.assign(size_t(device_count), 1);
  if (int32_t(plan.streams_per_device.size()) != device_count)
    return invalid_argument("execution plan: streams_per_device has " +
                            std::to_string(plan.streams_per_device.size()) + " entries for " +
                            std::to_string(device_count) + " devices");
  for (int32_t s : plan.streams_per_device)
    if (s < 1) return invalid_argument("execution plan: every device needs at least one stream");

  // Every node exactly once, in dependency order.
  const size_t node_count = g.nodes().size();
  plan.step_of_node.assign(node_count, -1);
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const PlannedStep& step = plan.steps[s];
    if (step.node < 0 || size_t(step.node) >= node_count)
      return invalid_argument("execution plan: step " + std::to_string(s) + " names node " +
                              std::to_string(step.node) + ", which does not exist");
    const Node& node = g.node(step.node);
    if (plan.step_of_node[size_t(step.node)] >= 0)
      return invalid_argument("execution plan: " + node_label(node) + " is scheduled twice");
    if (step.device < 0 || step.device >= device_count)
      return invalid_argument("execution plan: " + node_label(node) +
                              " is placed on device index " + std::to_string(step.device) + " of " +
                              std::to_string(device_count));
    if (step.issue_device >= 0 &&
        (node.kind != NodeKind::kTransfer || step.issue_device >= device_count))
      return invalid_argument("execution plan: " + node_label(node) + " has an issue device (" +
                              std::to_string(step.issue_device) +
                              "); only transfers may, and it must be in range");
    const int32_t sd = step.stream_device();
    if (step.stream < 0 || step.stream >= plan.streams_per_device[size_t(sd)])
      return invalid_argument("execution plan: " + node_label(node) + " uses stream " +
                              std::to_string(step.stream) + " of " +
                              plan.devices[size_t(sd)]->id() + ", which has " +
                              std::to_string(plan.streams_per_device[size_t(sd)]));
    plan.step_of_node[size_t(step.node)] = int32_t(s);
  }
  for (size_t n = 0; n < node_count; ++n)
    if (plan.step_of_node[n] < 0)
      return invalid_argument("execution plan: " + node_label(g.node(NodeId(n))) +
                              " is not scheduled");
  for (auto [from, to] : g.dependencies())
    if (plan.step_of_node[size_t(from)] > plan.step_of_node[size_t(to)])
      return invalid_argument("execution plan: " + node_label(g.node(to)) + " is issued before " +
                              node_label(g.node(from)) + ", which it depends on");

  // Events: recorded by the step that owns them, before any step waiting on them.
  const int32_t event_count = int32_t(plan.event_producer.size());
  for (int32_t e = 0; e < event_count; ++e) {
    const int32_t ps = plan.event_producer[size_t(e)];
    if (ps < 0 || size_t(ps) >= plan.steps.size() || plan.steps[size_t(ps)].record_event != e)
      return invalid_argument("execution plan: event " + std::to_string(e) +
                              " is not recorded by the step it names");
  }
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const PlannedStep& step = plan.steps[s];
    if (step.record_event >= event_count)
      return invalid_argument("execution plan: " + node_label(g.node(step.node)) +
                              " records event " + std::to_string(step.record_event) + " of " +
                              std::to_string(event_count));
    for (int32_t e : step.wait_events)
      if (e < 0 || e >= event_count || plan.event_producer[size_t(e)] >= int32_t(s))
        return invalid_argument("execution plan: " + node_label(g.node(step.node)) +
                                " waits on event " + std::to_string(e) +
                                ", which is not recorded before it");
  }

  // Where each value lives, and which constants/states each device needs.
  const auto& values = g.values();
  plan.value_device.assign(values.size(), kUnplaced);
  for (size_t v = 0; v < values.size(); ++v)
    if (values[v].kind == ValueKind::kConstant || values[v].kind == ValueKind::kState)
      plan.value_device[v] = -1;
  // Inputs live with their first reader that is not a transfer.
  for (const PlannedStep& step : plan.steps) {
    const Node& node = g.node(step.node);
    if (node.kind == NodeKind::kTransfer) continue;
    for (ValueId v : node.inputs)
      if (plan.value_device[size_t(v)] == kUnplaced && values[size_t(v)].kind == ValueKind::kInput)
        plan.value_device[size_t(v)] = step.device;
  }
  std::set<std::pair<ValueId, int32_t>> bindings;
  for (const PlannedStep& step : plan.steps) {
    const Node& node = g.node(step.node);
    const Device* dev = plan.devices[size_t(step.device)];
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const ValueId v = node.inputs[k];
      int32_t& where = plan.value_device[size_t(v)];
      if (where == kUnplaced) where = step.device;  // an input read only by transfers
      const ValueId root = g.storage_root(v);
      const ValueKind root_kind = values[size_t(root)].kind;
      const bool bound = root_kind == ValueKind::kConstant || root_kind == ValueKind::kState;
      if (node.kind == NodeKind::kTransfer) {
        if (bound)
          return invalid_argument("execution plan: " + node_label(node) + " moves " +
                                  std::string(value_kind_name(root_kind)) + " '" +
                                  values[size_t(root)].name +
                                  "': bind it on the destination device instead");
        continue;
      }
      if (bound) {
        if (!is_view_kind(node.kind)) bindings.emplace(root, step.device);
        continue;
      }
      if (where != step.device)
        return invalid_argument("execution plan: " + node_label(node) + " runs on " + dev->id() +
                                " but its input '" + values[size_t(v)].name + "' lives on " +
                                plan.devices[size_t(where)]->id() +
                                " (a transfer node must move it)");
    }
    for (ValueId o : node.outputs) {
      const ValueId alias = values[size_t(o)].alias_of;
      plan.value_device[size_t(o)] =
          alias != kNoValue ? plan.value_device[size_t(alias)] : step.device;
    }
  }
  // Inputs nobody reads still need a home for upload/download.
  for (size_t v = 0; v < values.size(); ++v)
    if (plan.value_device[v] == kUnplaced) plan.value_device[v] = 0;
  plan.required_bindings.clear();
  for (auto [v, d] : bindings) plan.required_bindings.push_back({v, d});

  HAL_RETURN_IF_ERROR(check_units(plan));
  const std::vector<char> internal = unit_internal_roots(plan);

  // One arena per device, planned over that device's steps.
  std::vector<NodeId> order;
  order.reserve(plan.steps.size());
  for (const PlannedStep& step : plan.steps) order.push_back(step.node);
  plan.memory.clear();
  for (int32_t d = 0; d < device_count; ++d) {
    auto intervals = live_intervals(g, order, [&](ValueId root) {
      return plan.value_device[size_t(root)] == d && !internal[size_t(root)];
    });
    ArenaLayout m = plan_intervals(intervals, values.size());
    fill_view_offsets(g, m);
    plan.memory.push_back(std::move(m));
  }
  add_reuse_events(plan);
  return ok_status();
}

}  // namespace hal::runtime
