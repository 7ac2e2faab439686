// The executor's resolution (executor_impl.h): every step of a plan as ready HAL
// commands (ops with their buffers and offsets, concat and KV-cache writes as strided
// copies, transfers with their two ends), and the graph's inputs and outputs as TensorRefs.
// Runs once, and again after the bindings change.
#include <algorithm>
#include <array>
#include <map>

#include "executor_impl.h"
#include "parallel/collective_step.h"

namespace hal::runtime {

namespace {

// The TensorRef of `v` as read on `device`.
Result<TensorRef> ref_of(
    const ExecutionPlan& p,
    const std::map<std::pair<ValueId, int32_t>, std::pair<const Buffer*, uint64_t>>& binds,
    const std::vector<const Buffer*>& arenas, ValueId v, int32_t device) {
  const Graph& g = *p.graph;
  const ValueId root = g.storage_root(v);
  uint64_t offset = 0;
  for (ValueId at = v; at != root; at = g.value(at).alias_of)
    offset += g.value(at).alias_offset_bytes;
  TensorRef ref;
  ref.desc = g.value(v).desc;
  const Value& r = g.value(root);
  if (r.kind == ValueKind::kConstant || r.kind == ValueKind::kState) {
    auto it = binds.find({root, device});
    if (it == binds.end())
      return failed_precondition(std::string(value_kind_name(r.kind)) + " '" + r.name +
                                 "' is not bound on " + p.devices[size_t(device)]->id());
    ref.buffer = it->second.first;
    ref.offset_bytes = it->second.second + offset;
    return ref;
  }
  const int32_t home = p.value_device[size_t(root)];
  const uint64_t base = p.memory[size_t(home)].offsets[size_t(root)];
  if (base == kNotPlanned || !arenas[size_t(home)])
    return internal_error("value '" + r.name + "' has no storage in the memory plan");
  ref.buffer = arenas[size_t(home)];
  ref.offset_bytes = base + offset;
  return ref;
}

}  // namespace

Status Executor::Impl::resolve(const ExecutionPlan& p) {
  const Graph& g = *p.graph;
  std::map<std::pair<ValueId, int32_t>, std::pair<const Buffer*, uint64_t>> binds;
  for (auto& [key, b] : bindings) binds[key] = {b.buffer, b.offset};
  std::vector<const Buffer*> arenas;
  for (auto& d : devices) arenas.push_back(d.arena.valid() ? &d.arena : nullptr);
  steps.clear();
  for (const PlannedStep& ps : p.steps) {
    const Node& node = g.node(ps.node);
    Step st;
    st.node = ps.node;
    st.device = ps.stream_device();  // where it is issued; data lives on ps.device
    st.stream = ps.stream;
    st.waits = ps.wait_events;
    st.record = ps.record_event;
    st.kind = node.kind;
    auto ctx = [&](const Status& s) { return s.with_context("executor: " + node_label(node)); };
    const int32_t unit = p.unit_of_node.empty() ? -1 : p.unit_of_node[size_t(ps.node)];
    if (unit >= 0) {
      const CompiledUnit& u = p.units[size_t(unit)];
      if (u.nodes.front() != ps.node) {
        // A later member: its waits and record move to the unit's first step.
        Step& first = steps[size_t(p.step_of_node[size_t(u.nodes.front())])];
        for (int32_t e : ps.wait_events)
          if (std::find(first.waits.begin(), first.waits.end(), e) == first.waits.end())
            first.waits.push_back(e);
        if (ps.record_event >= 0) first.extra_records.push_back(ps.record_event);
        st.waits.clear();
        st.record = -1;
        st.skip = true;
        steps.push_back(std::move(st));
        continue;
      }
      st.unit = unit;
      UnitState& us = units[size_t(unit)];
      us.bindings.clear();
      const GraphView& view = u.executable->view();
      for (size_t v = 0; v < view.values.size(); ++v) {
        if (!view.is_bound(int32_t(v))) continue;
        const ValueId gv = u.value_of[v];
        if (gv == kNoValue) return internal_error("executor: a compiled unit binds a slice");
        auto r = ref_of(p, binds, arenas, gv, u.device);
        if (!r.ok()) return ctx(r.status());
        us.bindings.push_back({int32_t(v), r->buffer, r->offset_bytes});
      }
      steps.push_back(std::move(st));
      continue;
    }
    switch (node.kind) {
      case NodeKind::kOp: {
        std::array<TensorRef, kMaxOpInputs> inputs{};
        const size_t n = std::min(node.inputs.size(), size_t(kMaxOpInputs));
        for (size_t k = 0; k < n; ++k) {
          auto r = ref_of(p, binds, arenas, node.inputs[k], ps.device);
          if (!r.ok()) return ctx(r.status());
          inputs[k] = *r;
        }
        auto o = ref_of(p, binds, arenas, node.outputs[0], ps.device);
        if (!o.ok()) return ctx(o.status());
        st.ops.push_back(node_op<OpDescriptor, TensorRef>(node, std::span(inputs.data(), n), *o));
        break;
      }
      case NodeKind::kConcat: {
        auto o = ref_of(p, binds, arenas, node.outputs[0], ps.device);
        if (!o.ok()) return ctx(o.status());
        int64_t at = 0;
        for (ValueId in : node.inputs) {
          auto r = ref_of(p, binds, arenas, in, ps.device);
          if (!r.ok()) return ctx(r.status());
          const int64_t len = g.value(in).desc.shape.dims[node.axis];
          OpDescriptor copy;  // identity transpose: a strided copy
          copy.kind = OpKind::kTranspose;
          copy.num_inputs = 1;
          copy.inputs[0] = *r;
          copy.output = narrow(*o, node.axis, at, len);
          at += len;
          if (len > 0) st.ops.push_back(copy);
        }
        break;
      }
      case NodeKind::kWriteSlice: {
        auto dst = ref_of(p, binds, arenas, node.inputs[0], ps.device);
        auto src = ref_of(p, binds, arenas, node.inputs[1], ps.device);
        if (!dst.ok()) return ctx(dst.status());
        if (!src.ok()) return ctx(src.status());
        OpDescriptor copy;
        copy.kind = OpKind::kTranspose;
        copy.num_inputs = 1;
        copy.inputs[0] = *src;
        copy.output = *dst;  // narrowed per run at the run-time offsets
        st.ops.push_back(copy);
        break;
      }
      case NodeKind::kCollective: {
        HAL_RETURN_IF_ERROR(
            ctx(check_collective_channel(node, channels, p.devices[size_t(ps.device)])));
        auto dst = ref_of(p, binds, arenas, node.outputs[0], ps.device);
        auto src = ref_of(p, binds, arenas, node.inputs[0], ps.device);
        if (!dst.ok()) return ctx(dst.status());
        if (!src.ok()) return ctx(src.status());
        st.src = *src;
        st.dst = *dst;
        break;
      }
      case NodeKind::kTransfer: {
        auto dst = ref_of(p, binds, arenas, node.outputs[0], ps.device);
        if (!dst.ok()) return ctx(dst.status());
        const int32_t from = p.value_device[size_t(g.storage_root(node.inputs[0]))];
        auto src = ref_of(p, binds, arenas, node.inputs[0], from);
        if (!src.ok()) return ctx(src.status());
        st.src = *src;
        st.dst = *dst;
        st.staged = staged_of_step[size_t(&ps - p.steps.data())];
        break;
      }
      default:
        break;  // views: no work
    }
    steps.push_back(std::move(st));
  }
  input_slot.clear();
  unread_inputs.clear();
  for (ValueId v : g.inputs()) {
    if (g.consumers(v).empty()) {
      unread_inputs.insert(v);
      continue;
    }
    const int32_t d = p.value_device[size_t(v)];
    auto r = ref_of(p, binds, arenas, v, d);
    if (!r.ok()) return r.status().with_context("executor: input '" + g.value(v).name + "'");
    input_slot[v] = {v, d, *r};
  }
  output_ref.clear();
  for (auto& [v, where] : output_stream) {
    auto r = ref_of(p, binds, arenas, v, where.first);
    if (!r.ok()) return r.status().with_context("executor: output '" + g.value(v).name + "'");
    output_ref[v] = *r;
  }
  resolved = true;
  return ok_status();
}

}  // namespace hal::runtime
