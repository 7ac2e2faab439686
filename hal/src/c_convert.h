// Internal: C++ op descriptions to their C ABI form.
#pragma once

#include <array>
#include <cstring>
#include <vector>

#include "hal/command_record.h"
#include "hal/graph_view.h"
#include "hal/op_descriptor.h"
#include "hal/plugin_abi.h"

namespace hal::detail {

// Storage for one C op descriptor; valid while this object lives.
struct COp {
  hal_op_desc desc{};
  hal_op_attrs attrs{};
  std::array<hal_tensor, kMaxOpInputs> inputs{};
  hal_tensor output{};

  static void fill_tensor(const TensorDesc& d, hal_buffer* buffer, uint64_t offset, hal_tensor* t) {
    t->buffer = buffer;
    t->offset_bytes = offset;
    t->dtype = hal_dtype(d.dtype);
    t->rank = d.shape.rank;
    for (int i = 0; i < HAL_MAX_RANK; ++i) {
      t->shape[i] = i < d.shape.rank ? d.shape.dims[i] : 0;
      t->strides[i] = i < d.shape.rank ? d.strides[i] : 0;
    }
  }

  void fill_attrs(const OpAttributes& a) {
    attrs.struct_size = sizeof(attrs);
    attrs.transpose_a = a.transpose_a;
    attrs.transpose_b = a.transpose_b;
    attrs.alpha = a.alpha;
    attrs.beta = a.beta;
    attrs.epsilon = a.epsilon;
    attrs.causal = a.causal;
    attrs.scale = a.scale;
    attrs.gelu_approximation = int32_t(a.gelu_approximation);
    attrs.rope_theta = a.rope_theta;
    attrs.rotary_dim = a.rotary_dim;
    attrs.rope_style = int32_t(a.rope_style);
    attrs.kv_length = a.kv_length;
    attrs.q_offset = a.q_offset;
    for (int i = 0; i < HAL_MAX_RANK; ++i) attrs.perm[i] = a.perm[i];
  }

  void finish(OpKind kind, int32_t num_inputs) {
    desc.struct_size = sizeof(desc);
    desc.kind = hal_op_kind(kind);
    desc.attrs = &attrs;
    desc.tensor_size = sizeof(hal_tensor);
    desc.inputs = inputs.data();
    desc.num_inputs = uint32_t(num_inputs < 0 ? 0 : num_inputs);
    desc.outputs = &output;
    desc.num_outputs = 1;
  }

  explicit COp(const OpSpec& spec) {
    fill_attrs(spec.attrs);
    const int n = spec.num_inputs < 0 ? 0 : (spec.num_inputs > kMaxOpInputs ? kMaxOpInputs : spec.num_inputs);
    for (int i = 0; i < n; ++i) fill_tensor(spec.inputs[i], nullptr, 0, &inputs[i]);
    fill_tensor(spec.output, nullptr, 0, &output);
    finish(spec.kind, n);
  }
  explicit COp(const OpDescriptor& op) {
    fill_attrs(op.attrs);
    const int n = op.num_inputs < 0 ? 0 : (op.num_inputs > kMaxOpInputs ? kMaxOpInputs : op.num_inputs);
    for (int i = 0; i < n; ++i)
      fill_tensor(op.inputs[i].desc, op.inputs[i].buffer ? op.inputs[i].buffer->handle() : nullptr,
                  op.inputs[i].offset_bytes, &inputs[i]);
    fill_tensor(op.output.desc, op.output.buffer ? op.output.buffer->handle() : nullptr,
                op.output.offset_bytes, &output);
    finish(op.kind, n);
  }
};

// Storage for one C graph view; valid while this object lives (and `view` unchanged).
struct CGraphView {
  hal_graph_view desc{};
  std::vector<hal_graph_symbol> symbols;
  std::vector<hal_graph_value> values;
  std::vector<hal_graph_node> nodes;
  std::vector<hal_op_attrs> attrs;
  std::vector<std::vector<int32_t>> inputs;

  explicit CGraphView(const GraphView& view) {
    for (const GraphSymbol& sym : view.symbols) {
      hal_graph_symbol c{};
      c.struct_size = sizeof(c);
      c.name = sym.name.c_str();
      c.min_value = sym.min_value;
      c.max_value = sym.max_value;
      symbols.push_back(c);
    }
    for (const GraphValue& v : view.values) {
      hal_graph_value c{};
      c.struct_size = sizeof(c);
      c.name = v.name.c_str();
      c.kind = hal_graph_value_kind(v.kind);
      c.is_output = v.is_output ? 1 : 0;
      COp::fill_tensor(v.desc, nullptr, v.offset_bytes, &c.tensor);
      c.alias_of = v.alias_of;
      c.offset_symbol = v.offset_symbol;
      c.offset_symbol_stride_bytes = v.offset_symbol_stride_bytes;
      values.push_back(c);
    }
    attrs.resize(view.nodes.size());
    inputs.resize(view.nodes.size());
    for (size_t n = 0; n < view.nodes.size(); ++n) {
      const GraphNode& g = view.nodes[n];
      COp op{OpSpec{}};
      op.fill_attrs(g.attrs);
      attrs[n] = op.attrs;
      inputs[n] = g.inputs;
    }
    for (size_t n = 0; n < view.nodes.size(); ++n) {
      const GraphNode& g = view.nodes[n];
      hal_graph_node c{};
      c.struct_size = sizeof(c);
      c.name = g.name.c_str();
      c.op = hal_op_kind(g.op);
      c.attrs = &attrs[n];
      c.inputs = inputs[n].data();
      c.num_inputs = uint32_t(inputs[n].size());
      c.output = g.output;
      c.kv_length_symbol = g.kv_length_symbol;
      nodes.push_back(c);
    }
    desc.struct_size = sizeof(desc);
    desc.values = values.data();
    desc.num_values = values.size();
    desc.value_size = sizeof(hal_graph_value);
    desc.nodes = nodes.data();
    desc.num_nodes = nodes.size();
    desc.node_size = sizeof(hal_graph_node);
    desc.symbols = symbols.data();
    desc.num_symbols = symbols.size();
    desc.symbol_size = sizeof(hal_graph_symbol);
  }
  CGraphView(const CGraphView&) = delete;
  CGraphView& operator=(const CGraphView&) = delete;
};

// The collective fields (ABI 1.2) of a record a plugin wrote; defaults when its record
// is shorter (a 1.0/1.1 plugin) or the command is not a collective.
inline void read_collective_fields(const hal_command_record& r, CommandRecord* c) {
  if (!HAL_ABI_HAS_FIELD(hal_command_record, algorithm, r.struct_size) ||
      c->command != CommandKind::kCollective)
    return;
  auto in_range = [](int32_t v, int32_t count) { return v >= 0 && v < count; };
  int32_t kind, link, algorithm;
  static_assert(sizeof(r.collective) == sizeof(int32_t) && sizeof(r.link_class) == sizeof(int32_t));
  std::memcpy(&kind, &r.collective, sizeof kind);
  std::memcpy(&link, &r.link_class, sizeof link);
  std::memcpy(&algorithm, &r.algorithm, sizeof algorithm);
  c->collective =
      in_range(kind, kCollectiveKindCount) ? CollectiveKind(kind) : CollectiveKind::kInvalid;
  c->channel_rank = r.channel_rank;
  c->channel_size = r.channel_size;
  c->peer_rank = r.peer_rank;
  c->link_bytes_received = r.link_bytes_received;
  c->link_class = in_range(link, kLinkClassCount) ? LinkClass(link) : LinkClass::kNone;
  c->algorithm =
      in_range(algorithm, 4) ? CollectiveAlgorithm(algorithm) : CollectiveAlgorithm::kDefault;
}

}  // namespace hal::detail
