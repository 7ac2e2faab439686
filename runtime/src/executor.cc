// The executor: creation (arenas, streams, events, staged transfers), bindings, and the
// outline of a run, whose steps are in executor_resolve.cc (a plan as ready HAL commands,
// once) and executor_issue.cc (checks, enqueues and the drain, per run); the run's
// timeline is timeline.cc.
#include "hal/runtime/executor.h"

#include "executor_impl.h"
#include "hal/device.h"

namespace hal::runtime {

Executor::Executor(ExecutionPlan plan, ExecutorOptions options)
    : plan_(std::move(plan)), options_(options), impl_(std::make_unique<Impl>()) {
  impl_->channels = options_.channels;
}

Executor::~Executor() {
  // Streams drain their work when destroyed; destroy them before the arenas they use.
  if (impl_) {
    impl_->inbound.clear();
    for (auto& d : impl_->devices) d.streams.clear();
    impl_->units.clear();
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
  // Compiled units: a scratch each (the executable's spills and internal values).
  for (const CompiledUnit& u : p.units) {
    Impl::UnitState state;
    Device* dev = p.devices[size_t(u.device)];
    if (u.info.scratch_bytes > 0) {
      auto scratch = dev->allocate(u.info.scratch_bytes);
      if (!scratch.ok())
        return scratch.status().with_context("executor: scratch of a compiled unit on " +
                                             dev->id());
      state.scratch = std::move(*scratch);
    }
    im.units.push_back(std::move(state));
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

Status Executor::run(const RunArgs& args) {
  Impl& im = *impl_;
  const Graph& g = graph();
  if (args.symbols.size() < g.symbols().size())
    return invalid_argument("executor: the graph has " + std::to_string(g.symbols().size()) +
                            " run-time symbols, " + std::to_string(args.symbols.size()) + " given");
  if (!im.resolved) {
    HAL_RETURN_IF_ERROR(check_bindings());
    HAL_RETURN_IF_ERROR(im.resolve(plan_));
  }
  // Everything that can be checked is checked before anything is enqueued.
  HAL_RETURN_IF_ERROR(im.check_io(g, args));
  HAL_RETURN_IF_ERROR(im.apply_run_values(plan_, args));

  HAL_RETURN_IF_ERROR(im.enqueue_uploads(g, args));
  Status first_error = im.enqueue_steps(plan_, args);
  if (first_error.ok()) first_error = im.enqueue_downloads_and_end(g, args);
  // Always drained, so nothing still runs when we return.
  if (Status drained = im.drain(plan_); first_error.ok()) first_error = drained;
  if (first_error.ok()) im.measure_device_seconds();
  if (options_.record_commands) {
    std::vector<StepRecord> run_records = im.take_stream_records(plan_);
    if (first_error.ok()) im.timeline = build_timeline(plan_, run_records);
    im.pending.insert(im.pending.end(), run_records.begin(), run_records.end());
  }
  return first_error;
}

const Timeline& Executor::last_timeline() const { return impl_->timeline; }

double Executor::last_device_seconds(int32_t d) const {
  if (d < 0 || size_t(d) >= impl_->devices.size()) return 0;
  return impl_->devices[size_t(d)].last_seconds;
}

std::vector<StepRecord> Executor::take_records() {
  std::vector<StepRecord> out = std::move(impl_->pending);
  impl_->pending.clear();
  std::vector<StepRecord> more = impl_->take_stream_records(plan_);
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

}  // namespace hal::runtime
