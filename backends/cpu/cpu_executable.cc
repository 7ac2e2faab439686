// The CPU backend's executables: fusions by rewriting the unit's view, one command per
// execution (cpu_executable.h).
#include "cpu_executable.h"

#include <algorithm>
#include <optional>

#include "cpu_kernels.h"
#include "hal/plugin/fused_groups.h"
#include "hal/plugin/host_queue_stream.h"

namespace hal::cpu {

namespace {

bool in_place_epilogue(OpKind k) {
  return k == OpKind::kGelu || k == OpKind::kSilu || k == OpKind::kScale || k == OpKind::kAdd;
}

bool same_layout(const TensorDesc& a, const TensorDesc& b) {
  if (a.dtype != b.dtype || !(a.shape == b.shape)) return false;
  for (int i = 0; i < a.shape.rank; ++i)
    if (a.strides[i] != b.strides[i]) return false;
  return a.is_contiguous();
}

// The program nodes reading each owner (through any view).
std::vector<std::vector<int32_t>> readers(const GraphView& g) {
  std::vector<std::vector<int32_t>> r(g.values.size());
  for (size_t n = 0; n < g.nodes.size(); ++n)
    for (int32_t in : g.nodes[n].inputs) {
      auto& list = r[size_t(g.owner(in))];
      if (list.empty() || list.back() != int32_t(n)) list.push_back(int32_t(n));
    }
  return r;
}

// Makes internal owner `from` live in `into`'s storage (same layout): `from` becomes a
// view of `into` at offset 0, and so do its own views.
bool share_storage(GraphView& g, int32_t from, int32_t into) {
  if (into >= from || g.is_bound(from) || g.is_bound(into)) return false;
  if (g.values[size_t(from)].is_view() || g.values[size_t(into)].is_view()) return false;
  g.values[size_t(from)].alias_of = into;
  for (GraphValue& v : g.values)
    if (v.alias_of == from) v.alias_of = into;
  return true;
}

}  // namespace

CpuExecutable::CpuExecutable(GraphView view, const DeviceInfo& device)
    : ExecutableImpl(std::move(view)), program_(this->view()), device_(device) {
  std::vector<std::vector<int32_t>> covers(program_.nodes.size());
  for (size_t n = 0; n < covers.size(); ++n) covers[n] = {int32_t(n)};
  // Rotary straight into the KV cache: a rotary whose output only an identity copy reads.
  for (size_t n = 0; n < program_.nodes.size(); ++n) {
    GraphNode& rot = program_.nodes[n];
    if (rot.op != OpKind::kRotary) continue;
    const int32_t out = rot.output;
    if (program_.values[size_t(out)].is_view() || program_.is_bound(out)) continue;
    const auto r = readers(program_);
    if (r[size_t(out)].size() != 1) continue;
    const size_t c = size_t(r[size_t(out)][0]);
    const GraphNode& copy = program_.nodes[c];
    bool identity = copy.op == OpKind::kTranspose && copy.inputs[0] == out;
    for (int i = 0; i < kMaxRank && identity; ++i) identity = copy.attrs.perm[size_t(i)] == i;
    const TensorDesc& target = program_.values[size_t(copy.output)].desc;
    if (!identity || !(target.shape == program_.values[size_t(out)].desc.shape) ||
        target.dtype != program_.values[size_t(out)].desc.dtype)
      continue;
    // Writing the slot earlier is safe only when nothing between touches its storage.
    const int32_t slot_owner = program_.owner(copy.output);
    bool touched = false;
    for (size_t k = n + 1; k < c && !touched; ++k) {
      for (int32_t in : program_.nodes[k].inputs) touched |= program_.owner(in) == slot_owner;
      touched |= program_.owner(program_.nodes[k].output) == slot_owner;
    }
    if (touched) continue;
    rot.output = copy.output;
    covers[n].insert(covers[n].end(), covers[c].begin(), covers[c].end());
    program_.nodes.erase(program_.nodes.begin() + std::ptrdiff_t(c));
    covers.erase(covers.begin() + std::ptrdiff_t(c));
  }
  // In-place epilogues: activation / scale / residual add onto the only-read output of the
  // node just before.
  for (size_t n = 1; n < program_.nodes.size(); ++n) {
    const GraphNode& node = program_.nodes[n];
    if (!in_place_epilogue(node.op)) continue;
    const int32_t out = node.output;
    if (program_.values[size_t(out)].is_view() || program_.is_bound(out)) continue;
    const auto r = readers(program_);
    for (int32_t in : node.inputs) {
      const int32_t o = program_.owner(in);
      if (in != o || program_.nodes[n - 1].output != o || r[size_t(o)].size() != 1) continue;
      if (!same_layout(program_.values[size_t(in)].desc, program_.values[size_t(out)].desc))
        continue;
      if (share_storage(program_, out, o)) break;
    }
  }
  layout_ = plugin::ScratchLayout::plan(program_);
  for (size_t n = 0; n < program_.nodes.size(); ++n) specs_.push_back(program_.node_spec(n));
  for (size_t n = 0; n < program_.nodes.size(); ++n) origin_.push_back(covers[n].front());
  for (const plugin::FusedGroup& g : plugin::group_consecutive(program_)) {
    Group group;
    group.program_nodes = g.nodes;
    group.main_node = origin_[size_t(g.main_node)];
    for (int32_t p : g.nodes)
      group.view_nodes.insert(group.view_nodes.end(), covers[size_t(p)].begin(),
                              covers[size_t(p)].end());
    groups_.push_back(std::move(group));
  }
}

Result<ExecutableInfo> CpuExecutable::info(std::span<const int64_t> symbols) const {
  ExecutableInfo info;
  info.scratch_bytes = layout_.bytes;
  info.predicted_seconds = device_.launch_overhead_s;
  const double bw = device_.memory_bandwidth_bytes_per_s;
  // Every kernel computes in f32.
  const double peak =
      device_.peak_flops.count(DType::kF32) ? device_.peak_flops.at(DType::kF32) : 0.0;
  const auto f32_peak = [peak](const OpSpec&) { return peak; };
  for (const Group& g : groups_) {
    FusedGroupInfo f;
    f.main_node = g.main_node;
    f.main_op = view().nodes[size_t(g.main_node)].op;
    f.nodes = g.view_nodes;
    f.name = view().nodes[size_t(g.main_node)].name + " [";
    for (size_t i = 0; i < g.program_nodes.size(); ++i)
      f.name.append(i ? "+" : "")
          .append(op_kind_name(program_.nodes[size_t(g.program_nodes[i])].op));
    f.name.append("]");
    plugin::add_roofline(&f, program_, g.program_nodes, symbols, f32_peak, bw);
    plugin::append_group(&info, std::move(f));
  }
  return info;
}

Status CpuExecutable::run(const plugin::ExecuteCall& call,
                          const std::function<char*(plugin::BufferImpl*)>& data, uint64_t tag,
                          std::vector<CommandRecord>* records) const {
  bool storage = !layout_.bytes || data(call.scratch);
  for (size_t v = 0; v < program_.values.size() && storage; ++v)
    if (program_.is_bound(int32_t(v))) storage = data(call.bindings[v].buffer) != nullptr;
  const uint64_t start = plugin::steady_clock_ns();
  CommandRecord whole;
  whole.tag = tag;
  whole.command = CommandKind::kExecute;
  whole.start_ns = start;
  std::vector<CommandRecord> parts;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const Group& g = groups_[gi];
    CommandRecord r;
    r.tag = tag;
    r.command = CommandKind::kExecuteGroup;
    r.op = view().nodes[size_t(g.main_node)].op;
    r.group = int32_t(gi);
    r.node = g.main_node;
    r.start_ns = plugin::steady_clock_ns();
    for (int32_t p : g.program_nodes) {
      const GraphNode& node = program_.nodes[size_t(p)];
      std::optional<OpSpec> with_symbols;  // built only for the nodes a symbol changes
      const OpSpec* spec = &specs_[size_t(p)];
      if (node.kv_length_symbol >= 0) {
        with_symbols = program_.node_spec(size_t(p), call.symbols);
        spec = &*with_symbols;
      }
      if (storage) {
        auto address = [&](int32_t v) {
          const plugin::ValueStorage at = plugin::value_storage(program_, call, layout_, v);
          return data(at.buffer) + at.offset_bytes;
        };
        const void* inputs[kMaxOpInputs] = {};
        for (int i = 0; i < spec->num_inputs; ++i) inputs[i] = address(node.inputs[size_t(i)]);
        Status s = run_op(*spec, inputs, address(node.output));
        if (!s.ok())
          return s.with_context("node '" + view().nodes[size_t(origin_[size_t(p)])].name + "'")
              .with_command_tag(tag)
              .with_node(origin_[size_t(p)], int32_t(gi));
      }
      const OpCost cost = analytic_cost(*spec);
      r.flops += cost.flops;
      r.bytes_read += cost.bytes_read;
      r.bytes_written += cost.bytes_written;
    }
    r.end_ns = plugin::steady_clock_ns();
    whole.flops += r.flops;
    whole.bytes_read += r.bytes_read;
    whole.bytes_written += r.bytes_written;
    parts.push_back(r);
  }
  whole.end_ns = plugin::steady_clock_ns();
  if (records) {
    records->push_back(whole);
    records->insert(records->end(), parts.begin(), parts.end());
  }
  return ok_status();
}

}  // namespace hal::cpu
