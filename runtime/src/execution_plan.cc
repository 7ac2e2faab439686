// Execution plans: the trivial single-device plan, stream events, and the checks and
// derived data (value placement, bindings, memory plans) every plan gets.
#include "hal/runtime/execution_plan.h"

#include <algorithm>
#include <set>

namespace hal::runtime {

namespace {

constexpr int32_t kUnplaced = -2;

std::string label(const Node& node) {
  return "node '" + node.name + "' (" +
         std::string(node.kind == NodeKind::kOp ? op_kind_name(node.op)
                                                : node_kind_name(node.kind)) +
         ")";
}

}  // namespace

uint64_t ExecutionPlan::peak_activation_bytes() const {
  uint64_t peak = 0;
  for (const MemoryPlan& m : memory) peak = std::max(peak, m.arena_bytes);
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
    PlannedStep& producer = plan.steps[size_t(ps)];
    PlannedStep& consumer = plan.steps[size_t(cs)];
    if (producer.device == consumer.device && producer.stream == consumer.stream) continue;
    if (producer.record_event < 0) {
      producer.record_event = int32_t(plan.event_producer.size());
      plan.event_producer.push_back(ps);
    }
    auto& waits = consumer.wait_events;
    if (std::find(waits.begin(), waits.end(), producer.record_event) == waits.end())
      waits.push_back(producer.record_event);
  }
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
      return invalid_argument("execution plan: " + label(node) + " is scheduled twice");
    if (step.device < 0 || step.device >= device_count)
      return invalid_argument("execution plan: " + label(node) + " is placed on device index " +
                              std::to_string(step.device) + " of " + std::to_string(device_count));
    if (step.stream < 0 || step.stream >= plan.streams_per_device[size_t(step.device)])
      return invalid_argument("execution plan: " + label(node) + " uses stream " +
                              std::to_string(step.stream) + " of " +
                              plan.devices[size_t(step.device)]->id() + ", which has " +
                              std::to_string(plan.streams_per_device[size_t(step.device)]));
    plan.step_of_node[size_t(step.node)] = int32_t(s);
  }
  for (size_t n = 0; n < node_count; ++n)
    if (plan.step_of_node[n] < 0)
      return invalid_argument("execution plan: " + label(g.node(NodeId(n))) + " is not scheduled");
  for (auto [from, to] : g.dependencies())
    if (plan.step_of_node[size_t(from)] > plan.step_of_node[size_t(to)])
      return invalid_argument("execution plan: " + label(g.node(to)) + " is issued before " +
                              label(g.node(from)) + ", which it depends on");

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
      return invalid_argument("execution plan: " + label(g.node(step.node)) + " records event " +
                              std::to_string(step.record_event) + " of " +
                              std::to_string(event_count));
    for (int32_t e : step.wait_events)
      if (e < 0 || e >= event_count || plan.event_producer[size_t(e)] >= int32_t(s))
        return invalid_argument("execution plan: " + label(g.node(step.node)) + " waits on event " +
                                std::to_string(e) + ", which is not recorded before it");
  }

  // Where each value lives, and which constants/states each device needs.
  const auto& values = g.values();
  plan.value_device.assign(values.size(), kUnplaced);
  for (size_t v = 0; v < values.size(); ++v)
    if (values[v].kind == ValueKind::kConstant || values[v].kind == ValueKind::kState)
      plan.value_device[v] = -1;
  std::set<std::pair<ValueId, int32_t>> bindings;
  for (const PlannedStep& step : plan.steps) {
    const Node& node = g.node(step.node);
    const Device* dev = plan.devices[size_t(step.device)];
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const ValueId v = node.inputs[k];
      int32_t& where = plan.value_device[size_t(v)];
      if (where == kUnplaced) where = step.device;  // an input: lives with its first reader
      const ValueId root = g.storage_root(v);
      const ValueKind root_kind = values[size_t(root)].kind;
      const bool bound = root_kind == ValueKind::kConstant || root_kind == ValueKind::kState;
      if (node.kind == NodeKind::kTransfer) {
        if (bound)
          return invalid_argument("execution plan: " + label(node) + " moves " +
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
        return invalid_argument("execution plan: " + label(node) + " runs on " + dev->id() +
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

  // One arena per device, planned over that device's steps.
  std::vector<NodeId> order;
  order.reserve(plan.steps.size());
  for (const PlannedStep& step : plan.steps) order.push_back(step.node);
  plan.memory.clear();
  for (int32_t d = 0; d < device_count; ++d) {
    auto intervals = live_intervals(
        g, order, [&](ValueId root) { return plan.value_device[size_t(root)] == d; });
    MemoryPlan m = plan_intervals(intervals, values.size());
    fill_view_offsets(g, m);
    plan.memory.push_back(std::move(m));
  }
  return ok_status();
}

}  // namespace hal::runtime
