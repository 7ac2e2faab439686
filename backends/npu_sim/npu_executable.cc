// Executables of the simulated NPU (npu_executable.h): the device's partition, compile,
// load and fingerprint, and the stream's execution of a compiled plan.
#include "npu_executable.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "hal/plugin/node_sequence.h"
#include "npu_device.h"
#include "npu_kernels.h"

namespace hal::npu_sim {

namespace {

char* data_of(plugin::BufferImpl* b) { return b ? static_cast<NpuBuffer*>(b)->data() : nullptr; }

// "matmul(f32, f32) -> f32"
std::string describe_dtypes(const OpSpec& s) {
  std::string t = std::string(op_kind_name(s.kind)) + "(";
  for (int i = 0; i < s.num_inputs; ++i)
    t.append(i ? ", " : "").append(dtype_name(s.inputs[i].dtype));
  return t.append(") -> ").append(dtype_name(s.output.dtype));
}

// A per-thread host image of the SRAM's activation space (64-byte aligned), reused
// across executions.
char* sram_image(uint64_t bytes) {
  struct Image {
    char* data = nullptr;
    uint64_t size = 0;
    ~Image() { std::free(data); }
  };
  thread_local Image image;
  if (image.size < bytes) {
    std::free(image.data);
    image.data = static_cast<char*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    image.size = image.data ? bytes : 0;
  }
  return image.data;
}

}  // namespace

// ---- NpuExecutable -----------------------------------------------------------------------

NpuExecutable::NpuExecutable(GraphView view, CompiledPlan plan, const PerfModel& model)
    : ExecutableImpl(std::move(view)), plan_(std::move(plan)), model_(model) {
  names_ = group_names(plan_, this->view());
}

Result<ExecutableInfo> NpuExecutable::info(std::span<const int64_t> symbols) const {
  const ExecutionTiming t = time_plan(plan_, view(), model_, symbols);
  ExecutableInfo info;
  info.predicted_seconds = t.seconds;
  info.scratch_bytes = plan_.scratch_bytes;
  info.dram_bytes_read = t.total.dram_bytes_read;
  info.dram_bytes_written = t.total.dram_bytes_written;
  info.sram_bytes = plan_.sram_peak;
  info.flops = t.total.flops;
  for (size_t g = 0; g < plan_.groups.size(); ++g) {
    FusedGroupInfo f;
    f.name = names_[g];
    f.main_node = plan_.groups[g].main_node;
    f.main_op = view().nodes[size_t(f.main_node)].op;
    f.nodes = plan_.groups[g].nodes;
    f.predicted_seconds = t.groups[g].seconds;
    f.flops = t.groups[g].flops;
    f.dram_bytes_read = t.groups[g].dram_bytes_read;
    f.dram_bytes_written = t.groups[g].dram_bytes_written;
    f.sram_bytes = t.groups[g].sram_bytes;
    f.bound = t.groups[g].bound;
    info.groups.push_back(std::move(f));
  }
  return info;
}

Result<std::vector<uint8_t>> NpuExecutable::serialize() const {
  const std::vector<uint8_t> v = view().encode();
  const std::vector<uint8_t> p = plan_.encode();
  std::vector<uint8_t> out(8 + v.size() + p.size());
  const uint64_t n = v.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, v.data(), v.size());
  std::memcpy(out.data() + 8 + v.size(), p.data(), p.size());
  return out;
}

// ---- NpuDevice ---------------------------------------------------------------------------

Result<Partition> NpuDevice::partition(const GraphView& view) const {
  return plugin::partition_contiguous(view, [&](size_t, const OpSpec& spec) {
    return supports(spec)
               ? std::string()
               : "the simulated " + spec_.name + " does not run " + describe_dtypes(spec);
  });
}

Result<std::unique_ptr<plugin::ExecutableImpl>> NpuDevice::compile(const GraphView& view,
                                                                   const CompileOptions& options) {
  bool fusion = true;
  for (const auto& [key, value] : options) {
    if (key != "fusion")
      return invalid_argument("npu_sim compiler: unknown option '" + key + "' (known: fusion)");
    if (value != "on" && value != "off")
      return invalid_argument("npu_sim compiler: fusion must be on or off, got '" + value + "'");
    fusion = value == "on";
  }
  for (size_t n = 0; n < view.nodes.size(); ++n) {
    const OpSpec s = view.node_spec(n);
    if (!supports(s))
      return unimplemented("node '" + view.nodes[n].name + "': the simulated " + spec_.name +
                           " does not run " + describe_dtypes(s))
          .with_node(int32_t(n));
  }
  HAL_ASSIGN_OR_RETURN(CompiledPlan plan, compile_plan(view, spec_, fusion));
  return std::unique_ptr<plugin::ExecutableImpl>(new NpuExecutable(view, std::move(plan), model_));
}

Result<std::unique_ptr<plugin::ExecutableImpl>> NpuDevice::deserialize(
    std::span<const uint8_t> payload) {
  uint64_t n = 0;
  if (payload.size() < 8) return failed_precondition("npu_sim executable payload truncated");
  std::memcpy(&n, payload.data(), 8);
  if (n > payload.size() - 8) return failed_precondition("npu_sim executable payload truncated");
  auto view = GraphView::decode(payload.subspan(8, n));
  if (!view.ok()) return failed_precondition(view.status().message());
  for (size_t k = 0; k < view->nodes.size(); ++k)
    if (!supports(view->node_spec(k)))
      return failed_precondition("npu_sim executable has node '" + view->nodes[k].name +
                                 "', which this device does not run");
  HAL_ASSIGN_OR_RETURN(CompiledPlan plan, CompiledPlan::decode(payload.subspan(8 + n)));
  HAL_RETURN_IF_ERROR(check_plan(plan, *view, spec_));
  return std::unique_ptr<plugin::ExecutableImpl>(
      new NpuExecutable(std::move(*view), std::move(plan), model_));
}

std::string NpuDevice::fingerprint() const {
  const DeviceSpec& s = spec_;
  std::string text;
  auto add = [&text](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g|", v);
    text.append(buf);
  };
  for (double v : {double(s.chiplets),
                   double(s.neural_engines),
                   s.clock_hz,
                   s.vector_flops,
                   double(s.mac_array_rows),
                   double(s.mac_array_cols),
                   double(s.memory_bytes),
                   double(s.memory_reserved_bytes),
                   s.memory_bandwidth_bytes_per_s,
                   s.memory_efficiency,
                   double(s.sram_local_bytes_per_engine),
                   double(s.sram_shared_bytes),
                   s.sram_bandwidth_bytes_per_s,
                   s.sram_usable_fraction,
                   double(s.dma_burst_bytes),
                   s.command_overhead_s,
                   s.die_to_die_link.bandwidth_bytes_per_s,
                   s.die_to_die_link.latency_s,
                   double(int(s.compute_precision)),
                   timing_only_ ? 1.0 : 0.0})
    add(v);
  for (const auto& [t, f] : s.peak_flops) {
    add(double(int(t)));
    add(f);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(fnv1a64(text.data(), text.size())));
  return s.name + "-" + hex;
}

// ---- NpuStream::execute ------------------------------------------------------------------

Status NpuStream::execute(const plugin::ExecuteCall& call, uint64_t tag) {
  const uint64_t not_before = enqueue_fence_ns();
  enqueue([this, call, tag, not_before]() -> Status {
    const auto& exe = static_cast<const NpuExecutable&>(*call.executable);
    const GraphView& view = exe.view();
    const CompiledPlan& plan = exe.plan();
    const ExecutionTiming timing = time_plan(plan, view, exe.model(), call.symbols);

    // The gate sees every node as an op: a fault names the node and its group.
    std::vector<double> scale(plan.groups.size(), 1.0);
    for (size_t g = 0; g < plan.groups.size(); ++g)
      for (int32_t n : plan.groups[g].nodes) {
        CommandTicket ticket;
        ticket.kind = CommandKind::kOp;
        ticket.op = view.nodes[size_t(n)].op;
        ticket.tag = tag;
        ticket.modeled_duration_s = timing.groups[g].seconds / double(plan.groups[g].nodes.size());
        if (Status s = device_->admit(ticket); !s.ok())
          return s.with_command_tag(tag).with_node(n, int32_t(g));
        scale[g] = std::max(scale[g], ticket.duration_scale);
      }

    // Functional execution, when every buffer has storage (not timing-only).
    bool storage = !plan.scratch_bytes || data_of(call.scratch);
    for (size_t v = 0; v < view.values.size() && storage; ++v)
      if (view.is_bound(int32_t(v))) storage = data_of(call.bindings[v].buffer) != nullptr;
    if (storage) {
      char* image = plan.sram_image_bytes ? sram_image(plan.sram_image_bytes) : nullptr;
      if (plan.sram_image_bytes && !image)
        return out_of_memory("no host memory for the simulated SRAM image").with_command_tag(tag);
      auto address = [&](int32_t v) -> char* {
        const int32_t o = view.owner(v);
        char* base = nullptr;
        switch (plan.where[size_t(o)]) {
          case Residency::kSram:
            base = image + plan.offset[size_t(o)];
            break;
          case Residency::kSpill:
            base = data_of(call.scratch) + call.scratch_offset + plan.offset[size_t(o)];
            break;
          default:
            base = data_of(call.bindings[size_t(o)].buffer) + call.bindings[size_t(o)].offset_bytes;
        }
        return base + view.offset_of(v, call.symbols);
      };
      for (size_t g = 0; g < plan.groups.size(); ++g)
        for (int32_t n : plan.groups[g].nodes) {
          const GraphNode& node = view.nodes[size_t(n)];
          const OpSpec spec = view.node_spec(size_t(n), call.symbols);
          const void* inputs[kMaxOpInputs] = {};
          for (size_t i = 0; i < node.inputs.size(); ++i) inputs[i] = address(node.inputs[i]);
          Status s =
              execute_op(spec, inputs, address(node.output), device_->spec().compute_precision);
          if (!s.ok())
            return s
                .with_context("node '" + node.name + "' (" + std::string(op_kind_name(node.op)) +
                              ")")
                .with_command_tag(tag)
                .with_node(n, int32_t(g));
        }
    }

    // One command on the engines: overhead, fill, then the groups back to back.
    double seconds = timing.overhead_s + timing.fill_s;
    for (size_t g = 0; g < plan.groups.size(); ++g) seconds += timing.groups[g].seconds * scale[g];
    CommandCost total;
    total.duration_s = seconds;
    total.flops = timing.total.flops;
    total.dram_bytes_read = timing.total.dram_bytes_read;
    total.dram_bytes_written = timing.total.dram_bytes_written;
    total.sram_bytes_read = timing.total.sram_bytes_read;
    total.sram_bytes_written = timing.total.sram_bytes_written;
    total.link_bytes = timing.total.link_bytes;
    const auto [start, end] =
        book(total, to_sim_ns(seconds), Booking{&device_->lane(Lane::kCompute), nullptr}, {},
             not_before, view.nodes.size());
    if (records().enabled()) {
      CommandRecord r;
      r.tag = tag;
      r.command = CommandKind::kExecute;
      r.start_ns = start;
      r.end_ns = end;
      r.flops = total.flops;
      r.bytes_read = total.dram_bytes_read;
      r.bytes_written = total.dram_bytes_written;
      r.sram_bytes_read = total.sram_bytes_read;
      r.sram_bytes_written = total.sram_bytes_written;
      r.link_bytes = total.link_bytes;
      r.bound = timing.total.bound;
      records().add(r);
      uint64_t at = start + to_sim_ns(timing.overhead_s + timing.fill_s);
      for (size_t g = 0; g < plan.groups.size(); ++g) {
        const GroupTiming& gt = timing.groups[g];
        CommandRecord q;
        q.tag = tag;
        q.command = CommandKind::kExecuteGroup;
        q.op = view.nodes[size_t(plan.groups[g].main_node)].op;
        q.start_ns = std::min(at, end);
        at += to_sim_ns(gt.seconds * scale[g]);
        q.end_ns = std::min(at, end);
        q.flops = gt.flops;
        q.bytes_read = gt.dram_bytes_read;
        q.bytes_written = gt.dram_bytes_written;
        q.sram_bytes_read = gt.sram_bytes_read;
        q.sram_bytes_written = gt.sram_bytes_written;
        q.link_bytes = gt.link_bytes;
        q.bound = gt.bound;
        q.group = int32_t(g);
        q.node = plan.groups[g].main_node;
        records().add(q);
      }
    }
    return ok_status();
  });
  return ok_status();
}

}  // namespace hal::npu_sim
