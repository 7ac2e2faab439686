// The executor: resolves a plan into ready HAL commands once, then replays them per run.
#include "hal/runtime/executor.h"

#include <algorithm>
#include <array>
#include <map>
#include <optional>

#include "hal/device.h"
#include "hal/platform.h"

namespace hal::runtime {

namespace {

// Context for a failure a stream reports at synchronize(): the node, when the device
// names the failed command by its tag (StatusDetail::command_tag; tags are node id + 1),
// else just the device.
std::string async_failure_context(const Graph& g, const Status& s, const std::string& device) {
  const std::optional<uint64_t> tag = s.detail().command_tag;
  if (tag && *tag >= 1 && *tag <= g.nodes().size())
    return "executor: " + node_label(g.node(NodeId(*tag - 1))) + " on " + device;
  return "executor: running on " + device;
}

// Narrows `ref` to [start, start + length) along `axis`.
TensorRef narrow(TensorRef ref, int32_t axis, int64_t start, int64_t length) {
  ref.offset_bytes += uint64_t(start * ref.desc.strides[axis]) * dtype_size(ref.desc.dtype);
  ref.desc.shape.dims[axis] = length;
  return ref;
}

}  // namespace

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
  struct Upload {
    ValueId value;
    int32_t device;
    TensorRef ref;
  };

  std::vector<DeviceState> devices;
  std::vector<Event> events;
  std::map<std::pair<ValueId, int32_t>, Binding> bindings;
  std::vector<Step> steps;
  std::vector<Upload> uploads;
  std::map<ValueId, Upload> input_slot;                          // by value
  std::map<ValueId, std::pair<int32_t, int32_t>> output_stream;  // value -> device, stream
  std::map<ValueId, TensorRef> output_ref;
  bool resolved = false;
  std::vector<StepRecord> pending;  // records taken from the streams, not yet handed out
  std::vector<Staged> staged;
  std::vector<int32_t> staged_of_step;       // by plan step: index into staged or -1
  std::vector<std::vector<Stream>> inbound;  // per device: 0 or 1 stream for staged halves
  Timeline timeline;
};

Executor::Executor(ExecutionPlan plan, ExecutorOptions options)
    : plan_(std::move(plan)), options_(options), impl_(std::make_unique<Impl>()) {}

Executor::~Executor() {
  // Streams drain their work when destroyed; destroy them before the arenas they use.
  if (impl_) {
    impl_->inbound.clear();
    for (auto& d : impl_->devices) d.streams.clear();
  }
}

Result<std::unique_ptr<Executor>> Executor::create(ExecutionPlan plan, ExecutorOptions options) {
  if (!plan.graph) return invalid_argument("executor: the plan has no graph");
  if (plan.value_device.size() != plan.graph->values().size() ||
      plan.memory.size() != plan.devices.size())
    HAL_RETURN_IF_ERROR(finalize_plan(plan));
  std::unique_ptr<Executor> ex(new Executor(std::move(plan), options));
  Impl& im = *ex->impl_;
  const ExecutionPlan& p = ex->plan_;
  const Graph& g = *p.graph;

  for (size_t d = 0; d < p.devices.size(); ++d) {
    Impl::DeviceState state;
    Device* dev = p.devices[d];
    if (p.memory[d].arena_bytes > 0) {
      auto arena = dev->allocate(p.memory[d].arena_bytes);
      if (!arena.ok())
        return arena.status().with_context("executor: activation arena of " +
                                           std::to_string(p.memory[d].arena_bytes) + " bytes on " +
                                           dev->id());
      state.arena = std::move(*arena);
    }
    StreamOptions so;
    so.record_commands = options.record_commands;
    for (int32_t s = 0; s < p.streams_per_device[d]; ++s) {
      auto stream = dev->create_stream(so);
      if (!stream.ok()) return stream.status().with_context("executor: stream on " + dev->id());
      state.streams.push_back(std::move(*stream));
      if (s == 0) continue;
      auto done = dev->create_event();
      if (!done.ok()) return done.status().with_context("executor: event on " + dev->id());
      state.stream_done.push_back(std::move(*done));
    }
    for (Event* ev : {&state.run_start, &state.run_end}) {
      auto made = dev->create_event();
      if (!made.ok()) return made.status().with_context("executor: event on " + dev->id());
      *ev = std::move(*made);
    }
    if (p.devices.size() > 1 || p.streams_per_device[d] > 1) {
      auto ev = dev->create_event();
      if (!ev.ok()) return ev.status().with_context("executor: event on " + dev->id());
      state.uploads_done = std::move(*ev);
    }
    im.devices.push_back(std::move(state));
  }
  // Transfers between plugins issued on the source device's stream are staged here.
  im.staged_of_step.assign(p.steps.size(), -1);
  im.inbound.resize(p.devices.size());
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const PlannedStep& ps = p.steps[i];
    const Node& node = g.node(ps.node);
    if (node.kind != NodeKind::kTransfer) continue;
    const int32_t from = p.value_device[size_t(g.storage_root(node.inputs[0]))];
    if (from < 0 || ps.stream_device() != from || from == ps.device) continue;
    Device* src = p.devices[size_t(from)];
    Device* dst = p.devices[size_t(ps.device)];
    if (&src->plugin() == &dst->plugin()) continue;
    Impl::Staged sg;
    sg.destination = ps.device;
    sg.host.resize(size_t(g.value(node.outputs[0]).desc.bytes()));
    auto sent = src->create_event();
    if (!sent.ok()) return sent.status().with_context("executor: event on " + src->id());
    auto landed = dst->create_event();
    if (!landed.ok()) return landed.status().with_context("executor: event on " + dst->id());
    sg.sent = std::move(*sent);
    sg.landed = std::move(*landed);
    if (im.inbound[size_t(ps.device)].empty()) {
      StreamOptions so;
      so.record_commands = options.record_commands;
      auto stream = dst->create_stream(so);
      if (!stream.ok()) return stream.status().with_context("executor: stream on " + dst->id());
      im.inbound[size_t(ps.device)].push_back(std::move(*stream));
    }
    im.staged_of_step[i] = int32_t(im.staged.size());
    im.staged.push_back(std::move(sg));
  }
  for (int32_t producer : p.event_producer) {
    Device* dev = p.devices[size_t(p.steps[size_t(producer)].stream_device())];
    auto ev = dev->create_event();
    if (!ev.ok()) return ev.status().with_context("executor: event on " + dev->id());
    im.events.push_back(std::move(*ev));
  }
  // Graph outputs come back with a single copy each: they must be dense.
  for (ValueId v : g.outputs()) {
    const Value& value = g.value(v);
    if (!value.desc.is_contiguous())
      return invalid_argument("executor: output '" + value.name + "' is a strided view " +
                              value.desc.to_string() + "; make a contiguous copy the output");
    int32_t device = p.value_device[size_t(v)];
    int32_t stream = 0;
    if (value.producer != kNoNode) {
      const PlannedStep& st = p.steps[size_t(p.step_of_node[size_t(value.producer)])];
      stream = st.stream;
      device = st.stream_device();
    }
    im.output_stream[v] = {device < 0 ? 0 : device, stream};
  }
  return ex;
}

Status Executor::bind(ValueId value, int32_t device, const Buffer& buffer, uint64_t offset_bytes) {
  const Graph& g = graph();
  if (value < 0 || size_t(value) >= g.values().size())
    return invalid_argument("executor: bind of value " + std::to_string(value) +
                            ", which does not exist");
  const Value& v = g.value(value);
  if (v.kind != ValueKind::kConstant && v.kind != ValueKind::kState)
    return invalid_argument("executor: '" + v.name + "' is " +
                            std::string(value_kind_name(v.kind)) +
                            "; only constants and states are bound");
  if (device < 0 || size_t(device) >= plan_.devices.size())
    return invalid_argument("executor: bind of '" + v.name + "' to device index " +
                            std::to_string(device));
  if (!buffer.valid() || &buffer.device() != plan_.devices[size_t(device)])
    return invalid_argument("executor: '" + v.name + "' must be bound to a buffer of " +
                            plan_.devices[size_t(device)]->id());
  const uint64_t need = v.desc.extent_bytes();
  if (offset_bytes > buffer.size() || buffer.size() - offset_bytes < need)
    return invalid_argument("executor: '" + v.name + "' needs " + std::to_string(need) +
                            " bytes at offset " + std::to_string(offset_bytes) +
                            " of a buffer of " + std::to_string(buffer.size()));
  impl_->bindings[{value, device}] = {&buffer, offset_bytes};
  impl_->resolved = false;
  return ok_status();
}

Status Executor::check_bindings() const {
  for (const RequiredBinding& b : plan_.required_bindings)
    if (!impl_->bindings.count({b.value, b.device}))
      return failed_precondition(
          "executor: " + std::string(value_kind_name(graph().value(b.value).kind)) + " '" +
          graph().value(b.value).name + "' is not bound on " +
          plan_.devices[size_t(b.device)]->id());
  return ok_status();
}

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

Status Executor::run(const RunArgs& args) {
  Impl& im = *impl_;
  const ExecutionPlan& p = plan_;
  const Graph& g = *p.graph;

  if (args.symbols.size() < g.symbols().size())
    return invalid_argument("executor: the graph has " + std::to_string(g.symbols().size()) +
                            " run-time symbols, " + std::to_string(args.symbols.size()) + " given");

  if (!im.resolved) {
    HAL_RETURN_IF_ERROR(check_bindings());
    std::map<std::pair<ValueId, int32_t>, std::pair<const Buffer*, uint64_t>> binds;
    for (auto& [key, b] : im.bindings) binds[key] = {b.buffer, b.offset};
    std::vector<const Buffer*> arenas;
    for (auto& d : im.devices) arenas.push_back(d.arena.valid() ? &d.arena : nullptr);
    im.steps.clear();
    for (const PlannedStep& ps : p.steps) {
      const Node& node = g.node(ps.node);
      Impl::Step st;
      st.node = ps.node;
      st.device = ps.stream_device();  // where it is issued; data lives on ps.device
      st.stream = ps.stream;
      st.waits = ps.wait_events;
      st.record = ps.record_event;
      st.kind = node.kind;
      auto ctx = [&](const Status& s) { return s.with_context("executor: " + node_label(node)); };
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
        case NodeKind::kTransfer: {
          auto dst = ref_of(p, binds, arenas, node.outputs[0], ps.device);
          if (!dst.ok()) return ctx(dst.status());
          const int32_t from = p.value_device[size_t(g.storage_root(node.inputs[0]))];
          auto src = ref_of(p, binds, arenas, node.inputs[0], from);
          if (!src.ok()) return ctx(src.status());
          st.src = *src;
          st.dst = *dst;
          st.staged = im.staged_of_step[size_t(&ps - p.steps.data())];
          break;
        }
        default:
          break;  // views: no work
      }
      im.steps.push_back(std::move(st));
    }
    im.input_slot.clear();
    for (ValueId v : g.inputs()) {
      const int32_t d = p.value_device[size_t(v)];
      auto r = ref_of(p, binds, arenas, v, d);
      if (!r.ok()) return r.status().with_context("executor: input '" + g.value(v).name + "'");
      im.input_slot[v] = {v, d, *r};
    }
    im.output_ref.clear();
    for (auto& [v, where] : im.output_stream) {
      auto r = ref_of(p, binds, arenas, v, where.first);
      if (!r.ok()) return r.status().with_context("executor: output '" + g.value(v).name + "'");
      im.output_ref[v] = *r;
    }
    im.resolved = true;
  }

  // Inputs: every graph input must be given, with its exact size.
  for (const HostInput& in : args.inputs) {
    auto it = im.input_slot.find(in.value);
    if (it == im.input_slot.end())
      return invalid_argument("executor: value " + std::to_string(in.value) +
                              " is not a graph input");
    if (in.bytes != g.value(in.value).desc.bytes() || (!in.data && in.bytes))
      return invalid_argument("executor: input '" + g.value(in.value).name + "' needs " +
                              std::to_string(g.value(in.value).desc.bytes()) + " bytes, got " +
                              std::to_string(in.bytes));
  }
  if (args.inputs.size() < im.input_slot.size()) {
    for (auto& [v, slot] : im.input_slot) {
      bool given = false;
      for (const HostInput& in : args.inputs) given |= in.value == v;
      if (!given) return invalid_argument("executor: input '" + g.value(v).name + "' is missing");
    }
  }
  for (const HostOutput& out : args.outputs) {
    if (!im.output_stream.count(out.value))
      return invalid_argument("executor: value " + std::to_string(out.value) +
                              " is not a graph output");
    if (out.bytes != g.value(out.value).desc.bytes() || (!out.data && out.bytes))
      return invalid_argument("executor: output '" + g.value(out.value).name + "' has " +
                              std::to_string(g.value(out.value).desc.bytes()) +
                              " bytes, the host buffer " + std::to_string(out.bytes));
  }
  // Run-time values: check them all before anything is enqueued.
  for (Impl::Step& st : im.steps) {
    const Node& node = g.node(st.node);
    if (node.kind == NodeKind::kOp && node.kv_length) {
      const int64_t kv = node.kv_length->eval(args.symbols);
      const int64_t cap = st.ops[0].inputs[1].desc.shape.dims[1];
      if (kv < 1 || kv > cap)
        return invalid_argument("executor: " + node_label(node) + ": kv_length " + std::to_string(kv) +
                                " outside [1, " + std::to_string(cap) + "]");
      st.ops[0].attrs.kv_length = kv;
    }
    if (node.kind == NodeKind::kWriteSlice) {
      const int64_t len = g.value(node.inputs[1]).desc.shape.dims[node.axis];
      const int64_t cap = g.value(node.inputs[0]).desc.shape.dims[node.axis];
      for (const SymInt& o : node.write_offsets) {
        const int64_t at = o.eval(args.symbols);
        if (at < 0 || at + len > cap)
          return invalid_argument("executor: " + node_label(node) + ": writing " + std::to_string(len) +
                                  " rows at offset " + std::to_string(at) + " runs past the " +
                                  std::to_string(cap) + " rows of '" +
                                  g.value(node.inputs[0]).name + "' (cache full?)");
      }
    }
  }

  for (auto& d : im.devices) HAL_RETURN_IF_ERROR(d.streams[0].record(d.run_start));
  // Uploads, on each device's first stream; other streams of that device wait for them.
  for (const HostInput& in : args.inputs) {
    const Impl::Upload& slot = im.input_slot[in.value];
    Stream& s = im.devices[size_t(slot.device)].streams[0];
    HAL_RETURN_IF_ERROR(
        s.copy_from_host(in.data, *slot.ref.buffer, slot.ref.offset_bytes, in.bytes, 0)
            .with_context("executor: upload of '" + g.value(in.value).name + "'"));
  }
  // Every other stream (of any device: transfers read inputs across devices) waits for
  // the uploads of each device that received some.
  for (size_t d = 0; d < im.devices.size(); ++d) {
    if (!im.devices[d].uploads_done.valid()) continue;
    bool uploaded = false;
    for (const HostInput& in : args.inputs)
      uploaded |= im.input_slot[in.value].device == int32_t(d);
    if (!uploaded) continue;
    HAL_RETURN_IF_ERROR(im.devices[d].streams[0].record(im.devices[d].uploads_done));
    for (size_t e = 0; e < im.devices.size(); ++e)
      for (size_t s = 0; s < im.devices[e].streams.size(); ++s)
        if (e != d || s != 0)
          HAL_RETURN_IF_ERROR(im.devices[e].streams[s].wait(im.devices[d].uploads_done));
  }

  Status first_error;
  auto fail = [&](Status s) {
    if (first_error.ok()) first_error = std::move(s);
  };
  for (Impl::Step& st : im.steps) {
    if (!first_error.ok()) break;
    Stream& stream = im.devices[size_t(st.device)].streams[size_t(st.stream)];
    for (int32_t e : st.waits) {
      Status s = stream.wait(im.events[size_t(e)]);
      if (!s.ok()) fail(s.with_context("executor: wait before " + node_label(g.node(st.node))));
    }
    const uint64_t tag = uint64_t(st.node) + 1;
    const Node& node = g.node(st.node);
    auto ctx = [&](const Status& s) {
      return s.with_context("executor: " + node_label(node) + " on " +
                            p.devices[size_t(st.device)]->id());
    };
    switch (st.kind) {
      case NodeKind::kOp:
      case NodeKind::kConcat:
        for (const OpDescriptor& op : st.ops) {
          Status s = stream.dispatch(op, tag);
          if (!s.ok()) fail(ctx(s));
        }
        break;
      case NodeKind::kWriteSlice: {
        const OpDescriptor& base = st.ops[0];
        const int64_t len = base.inputs[0].desc.shape.dims[node.axis];
        const int64_t first = node.write_offsets[0].eval(args.symbols);
        bool uniform = true;
        for (const SymInt& o : node.write_offsets) uniform &= o.eval(args.symbols) == first;
        if (uniform) {
          OpDescriptor op = base;
          op.output = narrow(base.output, node.axis, first, len);
          Status s = stream.dispatch(op, tag);
          if (!s.ok()) fail(ctx(s));
        } else {
          for (size_t b = 0; b < node.write_offsets.size(); ++b) {
            OpDescriptor op = base;
            op.inputs[0] = narrow(base.inputs[0], node.batch_axis, int64_t(b), 1);
            op.output = narrow(narrow(base.output, node.batch_axis, int64_t(b), 1), node.axis,
                               node.write_offsets[b].eval(args.symbols), len);
            Status s = stream.dispatch(op, tag);
            if (!s.ok()) fail(ctx(s));
          }
        }
        break;
      }
      case NodeKind::kTransfer: {
        const uint64_t bytes = st.dst.desc.bytes();
        if (st.staged >= 0) {
          Impl::Staged& sg = im.staged[size_t(st.staged)];
          Stream& in = im.inbound[size_t(sg.destination)][0];
          Status s =
              stream.copy_to_host(*st.src.buffer, st.src.offset_bytes, sg.host.data(), bytes, tag);
          if (s.ok()) s = stream.record(sg.sent);
          if (s.ok()) s = in.wait(sg.sent);
          if (s.ok())
            s = in.copy_from_host(sg.host.data(), *st.dst.buffer, st.dst.offset_bytes, bytes, tag);
          if (s.ok()) s = in.record(sg.landed);
          if (s.ok()) s = stream.wait(sg.landed);
          if (!s.ok()) fail(ctx(s));
          break;
        }
        Status s = stream.copy(*st.src.buffer, st.src.offset_bytes, *st.dst.buffer,
                               st.dst.offset_bytes, bytes, tag);
        if (!s.ok()) fail(ctx(s));
        break;
      }
      default:
        break;
    }
    if (st.record >= 0) {
      Status s = stream.record(im.events[size_t(st.record)]);
      if (!s.ok()) fail(ctx(s));
    }
  }
  if (first_error.ok()) {
    for (const HostOutput& out : args.outputs) {
      auto [device, stream] = im.output_stream[out.value];
      const TensorRef& r = im.output_ref[out.value];
      Status s = im.devices[size_t(device)].streams[size_t(stream)].copy_to_host(
          *r.buffer, r.offset_bytes, out.data, out.bytes, 0);
      if (!s.ok()) fail(s.with_context("executor: download of '" + g.value(out.value).name + "'"));
    }
  }
  // The end of the run on each device: its first stream, after every other stream
  // (joined through stream_done).
  if (first_error.ok()) {
    for (auto& d : im.devices) {
      for (size_t s = 1; s < d.streams.size(); ++s) {
        Status st = d.streams[s].record(d.stream_done[s - 1]);
        if (st.ok()) st = d.streams[0].wait(d.stream_done[s - 1]);
        if (!st.ok()) fail(st);
      }
      Status st = d.streams[0].record(d.run_end);
      if (!st.ok()) fail(st);
    }
  }
  // Always drain every stream, so nothing still runs when we return.
  for (size_t d = 0; d < im.devices.size(); ++d)
    for (auto* list : {&im.devices[d].streams, &im.inbound[d]})
      for (Stream& s : *list) {
        Status st = s.synchronize();
        if (!st.ok()) fail(st.with_context(async_failure_context(g, st, p.devices[d]->id())));
      }
  if (first_error.ok())
    for (auto& d : im.devices) {
      auto t = Event::elapsed_seconds(d.run_start, d.run_end);
      d.last_seconds = t.ok() ? std::max(0.0, *t) : 0.0;
    }
  if (options_.record_commands) {
    std::vector<StepRecord> run_records;
    for (size_t d = 0; d < im.devices.size(); ++d)
      for (auto* list : {&im.devices[d].streams, &im.inbound[d]})
        for (Stream& s : *list)
          for (const CommandRecord& r : s.take_records())
            run_records.push_back({int32_t(d), r.tag == 0 ? kNoNode : NodeId(r.tag - 1), r});
    if (first_error.ok()) im.timeline = build_timeline(p, run_records);
    im.pending.insert(im.pending.end(), run_records.begin(), run_records.end());
  }
  return first_error;
}

const Timeline& Executor::last_timeline() const { return impl_->timeline; }

double Timeline::busy_seconds(int32_t device) const {
  double busy = 0;
  for (const TimelineEntry& e : entries)
    if (e.device == device) busy += e.seconds();
  return busy;
}

Timeline build_timeline(const ExecutionPlan& p, std::span<const StepRecord> records) {
  Timeline tl;
  if (!p.graph) return tl;
  const Graph& g = *p.graph;
  const size_t n_dev = p.devices.size();
  // Records by node; uploads and downloads by device, in completion order.
  std::map<NodeId, std::vector<const StepRecord*>> of_node;
  std::vector<std::vector<const StepRecord*>> uploads(n_dev), downloads(n_dev);
  for (const StepRecord& r : records) {
    if (r.device < 0 || size_t(r.device) >= n_dev) continue;
    if (r.node != kNoNode) {
      of_node[r.node].push_back(&r);
    } else if (r.record.command == CommandKind::kCopyHostToDevice) {
      uploads[size_t(r.device)].push_back(&r);
    } else {
      downloads[size_t(r.device)].push_back(&r);
    }
  }
  auto add_records = [](TimelineEntry& e, const std::vector<const StepRecord*>& rs) {
    double seconds = 0;
    for (const StepRecord* r : rs) {
      seconds += r->record.duration_s();
      e.flops += r->record.flops;
      e.bytes_read += r->record.bytes_read;
      e.bytes_written += r->record.bytes_written;
      if (r->record.command != CommandKind::kOp)
        e.bytes_moved += std::max(r->record.bytes_read, r->record.bytes_written);
      if (e.op == OpKind::kInvalid && r->record.command == CommandKind::kOp) e.op = r->record.op;
      ++e.commands;
    }
    return seconds;
  };
  std::vector<std::vector<double>> free_at(n_dev);
  for (size_t d = 0; d < n_dev; ++d)
    free_at[d].assign(
        size_t(std::max(1, d < p.streams_per_device.size() ? p.streams_per_device[d] : 1)), 0.0);
  // Uploads on each device's first stream; every stream then waits for all of them.
  double uploads_done = 0;
  for (size_t d = 0; d < n_dev; ++d) {
    double t = 0;
    for (const StepRecord* r : uploads[d]) {
      TimelineEntry e;
      e.kind = TimelineEntry::Kind::kUpload;
      e.device = int32_t(d);
      e.start_s = t;
      t += add_records(e, {r});
      e.end_s = t;
      tl.entries.push_back(e);
    }
    uploads_done = std::max(uploads_done, t);
  }
  for (auto& streams : free_at) std::fill(streams.begin(), streams.end(), uploads_done);
  std::vector<double> event_at(p.event_producer.size(), 0.0);
  for (const PlannedStep& st : p.steps) {
    const Node& node = g.node(st.node);
    const int32_t sd = st.stream_device();
    if (sd < 0 || size_t(sd) >= n_dev) continue;
    auto& stream_free =
        free_at[size_t(sd)][size_t(std::max(0, st.stream)) % free_at[size_t(sd)].size()];
    double start = stream_free;
    for (int32_t e : st.wait_events)
      if (e >= 0 && size_t(e) < event_at.size()) start = std::max(start, event_at[size_t(e)]);
    double end = start;
    if (!is_view_kind(node.kind)) {
      TimelineEntry e;
      e.node = st.node;
      e.device = sd;
      e.stream = st.stream;
      e.start_s = start;
      if (node.kind == NodeKind::kOp) e.op = node.op;
      double seconds = 0;
      if (auto it = of_node.find(st.node); it != of_node.end())
        seconds = add_records(e, it->second);
      if (node.kind == NodeKind::kTransfer) {
        e.kind = TimelineEntry::Kind::kTransfer;
        e.peer = st.device;
        const uint64_t bytes = g.value(node.outputs[0]).desc.bytes();
        e.bytes_moved = bytes;
        if (e.commands == 0) {
          // Staged through the host (no device record): the link's model.
          const int32_t from = p.value_device[size_t(g.storage_root(node.inputs[0]))];
          const Device* a = p.devices[size_t(from >= 0 ? from : sd)];
          const Device* b = p.devices[size_t(st.device)];
          const LinkInfo link = a->platform().link(a, b);
          seconds =
              link.latency_s +
              (link.bandwidth_bytes_per_s > 0 ? double(bytes) / link.bandwidth_bytes_per_s : 0.0);
          e.measured = false;
        }
      }
      end = start + seconds;
      e.end_s = end;
      tl.entries.push_back(e);
    }
    stream_free = end;
    if (st.record_event >= 0 && size_t(st.record_event) < event_at.size())
      event_at[size_t(st.record_event)] = end;
  }
  // Downloads after the last step of each device's streams.
  for (size_t d = 0; d < n_dev; ++d) {
    double t = 0;
    for (double f : free_at[d]) t = std::max(t, f);
    for (const StepRecord* r : downloads[d]) {
      TimelineEntry e;
      e.kind = TimelineEntry::Kind::kDownload;
      e.device = int32_t(d);
      e.start_s = t;
      t += add_records(e, {r});
      e.end_s = t;
      tl.entries.push_back(e);
    }
    free_at[d][0] = t;
  }
  for (const TimelineEntry& e : tl.entries) tl.makespan_s = std::max(tl.makespan_s, e.end_s);
  return tl;
}

double Executor::last_device_seconds(int32_t d) const {
  if (d < 0 || size_t(d) >= impl_->devices.size()) return 0;
  return impl_->devices[size_t(d)].last_seconds;
}

std::vector<StepRecord> Executor::take_records() {
  std::vector<StepRecord> out = std::move(impl_->pending);
  impl_->pending.clear();
  for (size_t d = 0; d < impl_->devices.size(); ++d)
    for (auto* list : {&impl_->devices[d].streams, &impl_->inbound[d]})
      for (Stream& s : *list)
        for (const CommandRecord& r : s.take_records())
          out.push_back({int32_t(d), r.tag == 0 ? kNoNode : NodeId(r.tag - 1), r});
  return out;
}

}  // namespace hal::runtime
