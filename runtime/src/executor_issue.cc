// One run of the executor (executor_impl.h): the checks of its inputs and run-time values,
// then the uploads, the steps in plan order (ops, strided copies, KV-cache writes at this
// run's offsets, transfers with their events), the downloads and the end-of-run events,
// and the drain that names a failed node.
#include <algorithm>
#include <optional>
#include <string>

#include "executor_impl.h"
#include "hal/device.h"
#include "parallel/collective_step.h"

namespace hal::runtime {

namespace {

// Context for a failure a stream reports at synchronize(): the node, when the device
// names the failed command by its tag (StatusDetail::command_tag; tags are node id + 1),
// else just the device.
// A compiled unit's execution carries its first node's tag; the device's detail then
// names the unit's own node, which maps back to the graph node.
std::string async_failure_context(const ExecutionPlan& p, const Status& s,
                                  const std::string& device) {
  const Graph& g = *p.graph;
  const std::optional<uint64_t> tag = s.detail().command_tag;
  if (!tag || *tag < 1 || *tag > g.nodes().size()) return "executor: running on " + device;
  NodeId node = NodeId(*tag - 1);
  std::string unit_text;
  const int32_t unit = p.unit_of_node.empty() ? -1 : p.unit_of_node[size_t(node)];
  if (unit >= 0) {
    const CompiledUnit& u = p.units[size_t(unit)];
    unit_text = " (compiled unit of " + std::to_string(u.nodes.size()) + " nodes";
    if (const std::optional<int32_t> at = s.detail().node;
        at && *at >= 0 && size_t(*at) < u.node_of.size()) {
      node = u.node_of[size_t(*at)];
      if (const std::optional<int32_t> group = s.detail().group;
          group && *group >= 0 && size_t(*group) < u.info.groups.size())
        unit_text += ", fused group '" + u.info.groups[size_t(*group)].name + "'";
    }
    unit_text += ")";
  }
  return "executor: " + node_label(g.node(node)) + unit_text + " on " + device;
}

// Keeps the first failure of several tries.
struct FirstError {
  Status status;
  void add(Status s) {
    if (status.ok()) status = std::move(s);
  }
};

// A KV-cache write at this run's offsets: one strided copy when every batch row writes at
// the same offset, else one per row.
template <typename Context>
void dispatch_write_slice(Stream& stream, const Node& node, const OpDescriptor& base,
                          const RunArgs& args, uint64_t tag, FirstError& error,
                          const Context& ctx) {
  const int64_t len = base.inputs[0].desc.shape.dims[node.axis];
  const int64_t first = node.write_offsets[0].eval(args.symbols);
  bool uniform = true;
  for (const SymInt& o : node.write_offsets) uniform &= o.eval(args.symbols) == first;
  if (uniform) {
    OpDescriptor op = base;
    op.output = narrow(base.output, node.axis, first, len);
    Status s = stream.dispatch(op, tag);
    if (!s.ok()) error.add(ctx(s));
    return;
  }
  for (size_t b = 0; b < node.write_offsets.size(); ++b) {
    OpDescriptor op = base;
    op.inputs[0] = narrow(base.inputs[0], node.batch_axis, int64_t(b), 1);
    op.output = narrow(narrow(base.output, node.batch_axis, int64_t(b), 1), node.axis,
                       node.write_offsets[b].eval(args.symbols), len);
    Status s = stream.dispatch(op, tag);
    if (!s.ok()) error.add(ctx(s));
  }
}

}  // namespace

Status Executor::Impl::check_io(const Graph& g, const RunArgs& args) const {
  // Inputs: every graph input must be given, with its exact size.
  for (const HostInput& in : args.inputs) {
    auto it = input_slot.find(in.value);
    if (it == input_slot.end() && !unread_inputs.count(in.value))
      return invalid_argument("executor: value " + std::to_string(in.value) +
                              " is not a graph input");
    if (in.bytes != g.value(in.value).desc.bytes() || (!in.data && in.bytes))
      return invalid_argument("executor: input '" + g.value(in.value).name + "' needs " +
                              std::to_string(g.value(in.value).desc.bytes()) + " bytes, got " +
                              std::to_string(in.bytes));
  }
  if (args.inputs.size() < input_slot.size()) {
    for (auto& [v, slot] : input_slot) {
      bool given = false;
      for (const HostInput& in : args.inputs) given |= in.value == v;
      if (!given) return invalid_argument("executor: input '" + g.value(v).name + "' is missing");
    }
  }
  for (const HostOutput& out : args.outputs) {
    if (!output_stream.count(out.value))
      return invalid_argument("executor: value " + std::to_string(out.value) +
                              " is not a graph output");
    if (out.bytes != g.value(out.value).desc.bytes() || (!out.data && out.bytes))
      return invalid_argument("executor: output '" + g.value(out.value).name + "' has " +
                              std::to_string(g.value(out.value).desc.bytes()) +
                              " bytes, the host buffer " + std::to_string(out.bytes));
  }
  return ok_status();
}

Status Executor::Impl::apply_run_values(const ExecutionPlan& p, const RunArgs& args) {
  const Graph& g = *p.graph;
  for (size_t u = 0; u < units.size(); ++u) {
    const CompiledUnit& unit = p.units[u];
    std::vector<int64_t>& values = units[u].symbols;
    values.clear();
    for (const SymInt& s : unit.symbols) values.push_back(s.eval(args.symbols));
    if (Status s = unit.executable->view().check_symbols(values); !s.ok())
      return s.with_context("executor: compiled unit of " + node_label(g.node(unit.nodes.front())) +
                            " on " + p.devices[size_t(unit.device)]->id());
  }
  for (Step& st : steps) {
    if (st.skip || st.unit >= 0) continue;
    const Node& node = g.node(st.node);
    if (node.kind == NodeKind::kOp && node.kv_length) {
      const int64_t kv = node.kv_length->eval(args.symbols);
      const int64_t cap = st.ops[0].inputs[1].desc.shape.dims[1];
      if (kv < 1 || kv > cap)
        return invalid_argument("executor: " + node_label(node) + ": kv_length " +
                                std::to_string(kv) + " outside [1, " + std::to_string(cap) + "]");
      st.ops[0].attrs.kv_length = kv;
    }
    if (node.kind == NodeKind::kWriteSlice) {
      const int64_t len = g.value(node.inputs[1]).desc.shape.dims[node.axis];
      const int64_t cap = g.value(node.inputs[0]).desc.shape.dims[node.axis];
      for (const SymInt& o : node.write_offsets) {
        const int64_t at = o.eval(args.symbols);
        if (at < 0 || at + len > cap)
          return invalid_argument("executor: " + node_label(node) + ": writing " +
                                  std::to_string(len) + " rows at offset " + std::to_string(at) +
                                  " runs past the " + std::to_string(cap) + " rows of '" +
                                  g.value(node.inputs[0]).name + "' (cache full?)");
      }
    }
  }
  return ok_status();
}

Status Executor::Impl::enqueue_uploads(const Graph& g, const RunArgs& args) {
  for (auto& d : devices) HAL_RETURN_IF_ERROR(d.streams[0].record(d.run_start));
  // Uploads, on each device's first stream; other streams of that device wait for them.
  for (const HostInput& in : args.inputs) {
    if (unread_inputs.count(in.value)) continue;
    const Upload& slot = input_slot.at(in.value);
    Stream& s = devices[size_t(slot.device)].streams[0];
    HAL_RETURN_IF_ERROR(
        s.copy_from_host(in.data, *slot.ref.buffer, slot.ref.offset_bytes, in.bytes, 0)
            .with_context("executor: upload of '" + g.value(in.value).name + "'"));
  }
  // Every other stream (of any device: transfers read inputs across devices) waits for
  // the uploads of each device that received some.
  for (size_t d = 0; d < devices.size(); ++d) {
    if (!devices[d].uploads_done.valid()) continue;
    bool uploaded = false;
    for (const HostInput& in : args.inputs)
      uploaded |= !unread_inputs.count(in.value) && input_slot.at(in.value).device == int32_t(d);
    if (!uploaded) continue;
    HAL_RETURN_IF_ERROR(devices[d].streams[0].record(devices[d].uploads_done));
    for (size_t e = 0; e < devices.size(); ++e)
      for (size_t s = 0; s < devices[e].streams.size(); ++s)
        if (e != d || s != 0)
          HAL_RETURN_IF_ERROR(devices[e].streams[s].wait(devices[d].uploads_done));
  }
  return ok_status();
}

Status Executor::Impl::enqueue_steps(const ExecutionPlan& p, const RunArgs& args) {
  const Graph& g = *p.graph;
  FirstError error;
  for (Step& st : steps) {
    if (!error.status.ok()) break;
    if (st.skip) continue;
    Stream& stream = devices[size_t(st.device)].streams[size_t(st.stream)];
    for (int32_t e : st.waits) {
      Status s = stream.wait(events[size_t(e)]);
      if (!s.ok())
        error.add(s.with_context("executor: wait before " + node_label(g.node(st.node))));
    }
    const uint64_t tag = uint64_t(st.node) + 1;
    const Node& node = g.node(st.node);
    auto ctx = [&](const Status& s) {
      return s.with_context("executor: " + node_label(node) + " on " +
                            p.devices[size_t(st.device)]->id());
    };
    if (st.unit >= 0) {
      UnitState& us = units[size_t(st.unit)];
      const CompiledUnit& u = p.units[size_t(st.unit)];
      ExecuteArgs ea;
      ea.bindings = us.bindings;
      ea.scratch = us.scratch.valid() ? &us.scratch : nullptr;
      ea.symbols = us.symbols;
      Status s = stream.execute(*u.executable, ea, tag);
      if (!s.ok())
        error.add(s.with_context("executor: compiled unit of " + std::to_string(u.nodes.size()) +
                                 " nodes from " + node_label(node) + " on " +
                                 p.devices[size_t(st.device)]->id()));
    } else {
      switch (st.kind) {
        case NodeKind::kOp:
        case NodeKind::kConcat:
          for (const OpDescriptor& op : st.ops) {
            Status s = stream.dispatch(op, tag);
            if (!s.ok()) error.add(ctx(s));
          }
          break;
        case NodeKind::kWriteSlice:
          dispatch_write_slice(stream, node, st.ops[0], args, tag, error, ctx);
          break;
        case NodeKind::kTransfer: {
          const uint64_t bytes = st.dst.desc.bytes();
          if (st.staged >= 0) {
            // Device-to-host here, host-to-device on the destination's inbound stream.
            Staged& sg = staged[size_t(st.staged)];
            Stream& in = inbound[size_t(sg.destination)][0];
            Status s = stream.copy_to_host(*st.src.buffer, st.src.offset_bytes, sg.host.data(),
                                           bytes, tag);
            if (s.ok()) s = stream.record(sg.sent);
            if (s.ok()) s = in.wait(sg.sent);
            if (s.ok())
              s = in.copy_from_host(sg.host.data(), *st.dst.buffer, st.dst.offset_bytes, bytes,
                                    tag);
            if (s.ok()) s = in.record(sg.landed);
            if (s.ok()) s = stream.wait(sg.landed);
            if (!s.ok()) error.add(ctx(s));
            break;
          }
          Status s = stream.copy(*st.src.buffer, st.src.offset_bytes, *st.dst.buffer,
                                 st.dst.offset_bytes, bytes, tag);
          if (!s.ok()) error.add(ctx(s));
          break;
        }
        case NodeKind::kCollective: {
          Status s = issue_collective(stream, *channels[size_t(node.channel)], node, st.src,
                                      st.dst, tag);
          if (!s.ok()) error.add(ctx(s));
          break;
        }
        default:
          break;
      }
    }
    if (st.record >= 0) {
      Status s = stream.record(events[size_t(st.record)]);
      if (!s.ok()) error.add(ctx(s));
    }
    for (int32_t e : st.extra_records) {
      Status s = stream.record(events[size_t(e)]);
      if (!s.ok()) error.add(ctx(s));
    }
  }
  return error.status;
}

Status Executor::Impl::enqueue_downloads_and_end(const Graph& g, const RunArgs& args) {
  FirstError error;
  for (const HostOutput& out : args.outputs) {
    auto [device, stream] = output_stream[out.value];
    const TensorRef& r = output_ref[out.value];
    Status s = devices[size_t(device)].streams[size_t(stream)].copy_to_host(
        *r.buffer, r.offset_bytes, out.data, out.bytes, 0);
    if (!s.ok())
      error.add(s.with_context("executor: download of '" + g.value(out.value).name + "'"));
  }
  if (!error.status.ok()) return error.status;
  // The end of the run on each device: its first stream, after every other stream
  // (joined through stream_done).
  for (auto& d : devices) {
    for (size_t s = 1; s < d.streams.size(); ++s) {
      Status st = d.streams[s].record(d.stream_done[s - 1]);
      if (st.ok()) st = d.streams[0].wait(d.stream_done[s - 1]);
      if (!st.ok()) error.add(st);
    }
    Status st = d.streams[0].record(d.run_end);
    if (!st.ok()) error.add(st);
  }
  return error.status;
}

Status Executor::Impl::drain(const ExecutionPlan& p) {
  FirstError error;
  for (size_t d = 0; d < devices.size(); ++d)
    for (auto* list : {&devices[d].streams, &inbound[d]})
      for (Stream& s : *list) {
        Status st = s.synchronize();
        if (!st.ok()) error.add(st.with_context(async_failure_context(p, st, p.devices[d]->id())));
      }
  return error.status;
}

void Executor::Impl::measure_device_seconds() {
  for (auto& d : devices) {
    auto t = Event::elapsed_seconds(d.run_start, d.run_end);
    d.last_seconds = t.ok() ? std::max(0.0, *t) : 0.0;
  }
}

std::vector<StepRecord> Executor::Impl::take_stream_records(const ExecutionPlan& p) {
  std::vector<StepRecord> out;
  for (size_t d = 0; d < devices.size(); ++d)
    for (auto* list : {&devices[d].streams, &inbound[d]})
      for (Stream& s : *list) {
        std::optional<uint64_t> execution_start;  // of the execution whose groups follow
        for (CommandRecord r : s.take_records()) {
          NodeId node = r.tag == 0 ? kNoNode : NodeId(r.tag - 1);
          const int32_t unit =
              node == kNoNode || p.unit_of_node.empty() ? -1 : p.unit_of_node[size_t(node)];
          if (unit >= 0 && r.command == CommandKind::kExecute) {
            execution_start = r.start_ns;
            continue;
          }
          if (unit >= 0 && r.command == CommandKind::kExecuteGroup) {
            const CompiledUnit& u = p.units[size_t(unit)];
            if (r.node >= 0 && size_t(r.node) < u.node_of.size()) node = u.node_of[size_t(r.node)];
            if (execution_start && r.group == 0)
              r.start_ns = std::min(r.start_ns, *execution_start);
          }
          out.push_back({int32_t(d), node, r});
        }
      }
  return out;
}

}  // namespace hal::runtime
