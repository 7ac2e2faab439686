// Executables of the CUDA backend (ABI 1.2): a compiled unit's nodes captured as a CUDA
// graph per stream and executable (its shape bucket), replayed, updated in place when the
// launch parameters change, or instantiated (cuda_graph_reuse.h decides). Numerics are the
// op-by-op kernels' (the same run_op, captured instead of launched one by one).
#include <algorithm>
#include <atomic>

#include "cuda_internal.h"
#include "cuda_ops.h"
#include "hal/plugin/fused_groups.h"
#include "hal/plugin/node_sequence.h"

namespace hal::cuda {

namespace {

std::atomic<uint64_t> next_serial{1};

// A unit compiled for a GPU: the view, its scratch layout and fused groups (for records
// and predictions; the kernels are the op-by-op ones, captured into one graph).
class CudaExecutable : public plugin::ExecutableImpl {
 public:
  CudaExecutable(GraphView view, DeviceInfo device)
      : ExecutableImpl(std::move(view)),
        layout_(plugin::ScratchLayout::plan(this->view())),
        groups_(plugin::group_consecutive(this->view())),
        serial_(next_serial.fetch_add(1)),
        device_(std::move(device)) {}

  uint64_t scratch_bytes() const override { return layout_.bytes; }
  const plugin::ScratchLayout& layout() const { return layout_; }
  const std::vector<plugin::FusedGroup>& groups() const { return groups_; }
  uint64_t serial() const { return serial_; }

  // Per group its nodes' roofline times on the device's figures (the launch overhead is
  // paid once: the graph is one launch).
  Result<ExecutableInfo> info(std::span<const int64_t> symbols) const override {
    ExecutableInfo info;
    info.scratch_bytes = layout_.bytes;
    info.predicted_seconds = device_.launch_overhead_s;
    for (const plugin::FusedGroup& g : groups_) {
      FusedGroupInfo f;
      f.main_node = g.main_node;
      f.main_op = view().nodes[size_t(g.main_node)].op;
      f.nodes = g.nodes;
      f.name = view().nodes[size_t(g.main_node)].name;
      plugin::add_roofline(
          &f, view(), g.nodes, symbols,
          [this](const OpSpec& spec) { return device_.peak_flops_for(spec.inputs[0].dtype); },
          device_.memory_bandwidth_bytes_per_s);
      plugin::append_group(&info, std::move(f));
    }
    return info;
  }

  Result<std::vector<uint8_t>> serialize() const override { return view().encode(); }

 private:
  plugin::ScratchLayout layout_;
  std::vector<plugin::FusedGroup> groups_;
  uint64_t serial_;
  DeviceInfo device_;  // the figures predictions use (a copy: no reference into the device)
};

}  // namespace

// ---- CudaDevice ----------------------------------------------------------------------------

Result<Partition> CudaDevice::partition(const GraphView& view) const {
  return plugin::partition_contiguous(view, [&](size_t, const OpSpec& spec) {
    return supports(spec) ? std::string()
                          : "cuda has no kernel for " + std::string(op_kind_name(spec.kind)) +
                                " with " + std::string(dtype_name(spec.output.dtype)) + " output";
  });
}

Result<std::unique_ptr<plugin::ExecutableImpl>> CudaDevice::compile(const GraphView& view,
                                                                    const CompileOptions& options) {
  if (!options.empty())
    return invalid_argument("cuda compiler: unknown option '" + options.begin()->first + "'");
  for (size_t n = 0; n < view.nodes.size(); ++n)
    if (!supports(view.node_spec(n)))
      return unimplemented("node '" + view.nodes[n].name + "' (" +
                           std::string(op_kind_name(view.nodes[n].op)) + ") has no CUDA kernel")
          .with_node(int32_t(n));
  return std::unique_ptr<plugin::ExecutableImpl>(new CudaExecutable(view, info_));
}

Result<std::unique_ptr<plugin::ExecutableImpl>> CudaDevice::deserialize(
    std::span<const uint8_t> payload) {
  auto view = GraphView::decode(payload);
  if (!view.ok()) return failed_precondition(view.status().message());
  return compile(*view, {});
}

// ---- CudaStream ----------------------------------------------------------------------------

void CudaStream::destroy_graphs() {
  for (auto& [serial, exec] : graph_execs_)
    if (exec) cudaGraphExecDestroy(exec);
  graph_execs_.clear();
  graphs_ = GraphReuse();
  cudaGetLastError();
}

Status CudaStream::execute(const plugin::ExecuteCall& call, uint64_t tag) {
  std::lock_guard<std::mutex> lock(mu_);
  if (device_->lost()) return device_->lost_status();
  DeviceScope scope(device_->ordinal());
  refresh_fallible();
  if (known_failed()) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    return ok_status();
  }
  const auto& exe = static_cast<const CudaExecutable&>(*call.executable);
  // The launch parameters: buffers, offsets, scratch and symbols.
  bool virt = call.scratch && static_cast<CudaBuffer*>(call.scratch)->is_virtual();
  std::vector<uint64_t> words;
  for (const plugin::BoundTensor& b : call.bindings) {
    if (!b.buffer) continue;
    virt |= static_cast<CudaBuffer*>(b.buffer)->is_virtual();
    words.push_back(
        uint64_t(reinterpret_cast<uintptr_t>(static_cast<CudaBuffer*>(b.buffer)->at(0))));
    words.push_back(b.offset_bytes);
  }
  words.push_back(call.scratch ? uint64_t(reinterpret_cast<uintptr_t>(
                                     static_cast<CudaBuffer*>(call.scratch)->at(0)))
                               : 0);
  words.push_back(call.scratch_offset);
  for (int64_t s : call.symbols) words.push_back(uint64_t(s));
  const uint64_t params = GraphReuse::params_key(words);

  PendingRecord rec;
  if (record_) {
    auto info = exe.info(call.symbols);
    if (info.ok()) {
      rec.record.flops = info->flops;
      rec.record.bytes_read = info->dram_bytes_read;
      rec.record.bytes_written = info->dram_bytes_written;
      double groups = 0;
      for (const FusedGroupInfo& g : info->groups) groups += g.predicted_seconds;
      for (size_t g = 0; g < info->groups.size(); ++g) {
        const FusedGroupInfo& f = info->groups[g];
        CommandRecord part;
        part.tag = tag;
        part.command = CommandKind::kExecuteGroup;
        part.op = f.main_op;
        part.group = int32_t(g);
        part.node = f.main_node;
        part.flops = f.flops;
        part.bytes_read = f.dram_bytes_read;
        part.bytes_written = f.dram_bytes_written;
        part.bound = f.bound;
        rec.parts.push_back({part, groups > 0 ? f.predicted_seconds / groups : 0.0});
      }
    }
  }
  HAL_RETURN_IF_ERROR(begin_command(&rec, CommandKind::kExecute, tag));
  Status launched = virt ? ok_status() : launch_graph(exe, call, params, tag);
  if (!launched.ok()) {
    discard_command(&rec);
    return launched;
  }
  end_command(&rec);
  return ok_status();
}

Status CudaStream::launch_graph(const plugin::ExecutableImpl& executable,
                                const plugin::ExecuteCall& call, uint64_t params, uint64_t tag) {
  const auto& exe = static_cast<const CudaExecutable&>(executable);
  const GraphView& view = exe.view();
  if (Result<cublasLtHandle_t> h = blaslt_handle(); !h.ok()) cudaGetLastError();  // workspace
  GraphReuse::Action action = graphs_.plan(exe.serial(), params);
  cudaGraphExec_t& exec = graph_execs_[exe.serial()];  // null until instantiated
  if (action != GraphReuse::Action::kReplay) {
    HAL_RETURN_IF_ERROR(
        device_
            ->check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal),
                    "cudaStreamBeginCapture")
            .with_command_tag(tag));
    Status s;
    int32_t failed_node = -1;
    for (size_t n = 0; n < view.nodes.size() && s.ok(); ++n) {
      s = run_op(*this, plugin::node_call(view, call, exe.layout(), n));
      if (!s.ok()) failed_node = int32_t(n);
    }
    for (void* p : scratch_) device_->free_scratch(p, stream_);
    scratch_.clear();
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
    if (!s.ok() || ended != cudaSuccess) {
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();
      if (s.ok()) s = device_->check(ended, "end of capture");
      s = s.with_command_tag(tag);
      return failed_node >= 0 ? s.with_node(failed_node) : s;
    }
    if (action == GraphReuse::Action::kUpdate) {
      cudaGraphExecUpdateResultInfo result{};
      if (cudaGraphExecUpdate(exec, graph, &result) != cudaSuccess) {
        cudaGetLastError();
        cudaGraphExecDestroy(exec);
        exec = nullptr;
        action = GraphReuse::Action::kInstantiate;
      }
    }
    if (action == GraphReuse::Action::kInstantiate) {
      const Status made = device_->check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
      if (!made.ok()) {
        cudaGraphDestroy(graph);
        graph_execs_.erase(exe.serial());
        graphs_.forget(exe.serial());
        return made.with_command_tag(tag);
      }
    }
    cudaGraphDestroy(graph);
  }
  HAL_RETURN_IF_ERROR(
      device_->check(cudaGraphLaunch(exec, stream_), "cudaGraphLaunch").with_command_tag(tag));
  if (std::optional<uint64_t> evicted = graphs_.done(exe.serial(), params)) {
    auto it = graph_execs_.find(*evicted);
    if (it != graph_execs_.end()) {
      if (it->second) cudaGraphExecDestroy(it->second);
      graph_execs_.erase(it);
    }
  }
  mark_fallible();  // kernels of the graph may report data errors (embedding ids)
  return ok_status();
}

}  // namespace hal::cuda
