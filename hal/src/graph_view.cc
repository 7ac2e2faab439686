// Graph views for whole-graph offload: queries, validation and fingerprint (graph_view.h).
#include "hal/graph_view.h"

#include <algorithm>
#include <cstring>

namespace hal {

std::string_view graph_value_kind_name(GraphValueKind kind) {
  switch (kind) {
    case GraphValueKind::kInput:
      return "input";
    case GraphValueKind::kConstant:
      return "constant";
    case GraphValueKind::kState:
      return "state";
    case GraphValueKind::kIntermediate:
      return "intermediate";
  }
  return "unknown";
}

uint64_t fnv1a64(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = seed;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

int32_t GraphView::owner(int32_t v) const {
  const int32_t a = values[size_t(v)].alias_of;
  return a >= 0 ? a : v;
}

bool GraphView::is_bound(int32_t v) const {
  const GraphValue& x = values[size_t(v)];
  if (x.is_view()) return false;
  return x.kind != GraphValueKind::kIntermediate || x.is_output;
}

std::vector<int64_t> GraphView::max_symbols() const {
  std::vector<int64_t> out;
  out.reserve(symbols.size());
  for (const GraphSymbol& s : symbols) out.push_back(s.max_value);
  return out;
}

uint64_t GraphView::offset_of(int32_t v, std::span<const int64_t> sym) const {
  const GraphValue& x = values[size_t(v)];
  uint64_t off = x.offset_bytes;
  if (x.offset_symbol >= 0 && size_t(x.offset_symbol) < sym.size())
    off += uint64_t(sym[size_t(x.offset_symbol)] * x.offset_symbol_stride_bytes);
  return off;
}

OpSpec GraphView::node_spec(size_t n, std::span<const int64_t> sym) const {
  const GraphNode& node = nodes[n];
  OpSpec s;
  s.kind = node.op;
  s.attrs = node.attrs;
  s.num_inputs = int32_t(std::min<size_t>(node.inputs.size(), kMaxOpInputs));
  for (int i = 0; i < s.num_inputs; ++i) s.inputs[i] = values[size_t(node.inputs[size_t(i)])].desc;
  s.output = values[size_t(node.output)].desc;
  if (node.kv_length_symbol >= 0 && size_t(node.kv_length_symbol) < symbols.size())
    s.attrs.kv_length = size_t(node.kv_length_symbol) < sym.size()
                            ? sym[size_t(node.kv_length_symbol)]
                            : symbols[size_t(node.kv_length_symbol)].max_value;
  return s;
}

std::vector<int32_t> GraphView::readers_of_owner(int32_t v) const {
  const int32_t o = owner(v);
  std::vector<int32_t> out;
  for (size_t n = 0; n < nodes.size(); ++n)
    for (int32_t in : nodes[n].inputs)
      if (owner(in) == o) {
        out.push_back(int32_t(n));
        break;
      }
  return out;
}

Status GraphView::check_symbols(std::span<const int64_t> sym) const {
  if (sym.size() != symbols.size())
    return invalid_argument("the graph has " + std::to_string(symbols.size()) + " symbols, " +
                            std::to_string(sym.size()) + " values given");
  for (size_t i = 0; i < sym.size(); ++i)
    if (sym[i] < symbols[i].min_value || sym[i] > symbols[i].max_value)
      return invalid_argument("symbol '" + symbols[i].name + "' = " + std::to_string(sym[i]) +
                              " is outside its range [" + std::to_string(symbols[i].min_value) +
                              ", " + std::to_string(symbols[i].max_value) + "]");
  return ok_status();
}

Status GraphView::validate() const {
  auto value_name = [&](size_t v) {
    return "value " + std::to_string(v) +
           (values[v].name.empty() ? std::string() : " '" + values[v].name + "'");
  };
  auto node_name = [&](size_t n) {
    return "node " + std::to_string(n) +
           (nodes[n].name.empty() ? std::string() : " '" + nodes[n].name + "'") + " (" +
           std::string(op_kind_name(nodes[n].op)) + ")";
  };
  if (nodes.empty()) return invalid_argument("the graph has no nodes");
  for (size_t i = 0; i < symbols.size(); ++i)
    if (symbols[i].min_value > symbols[i].max_value || symbols[i].min_value < 0)
      return invalid_argument("symbol '" + symbols[i].name + "' has the range [" +
                              std::to_string(symbols[i].min_value) + ", " +
                              std::to_string(symbols[i].max_value) + "]");
  for (size_t v = 0; v < values.size(); ++v) {
    const GraphValue& x = values[v];
    const int32_t dt = int32_t(x.desc.dtype);
    if (dt <= 0 || dt >= kDTypeCount)
      return invalid_argument(value_name(v) + " has no valid dtype");
    if (x.desc.shape.rank < 0 || x.desc.shape.rank > kMaxRank)
      return invalid_argument(value_name(v) + " has rank " + std::to_string(x.desc.shape.rank));
    for (int i = 0; i < x.desc.shape.rank; ++i)
      if (x.desc.shape.dims[i] < 0 || x.desc.strides[i] < 0)
        return invalid_argument(value_name(v) + " " + x.desc.to_string() +
                                " has a negative dim or stride");
    const int32_t kind = int32_t(x.kind);
    if (kind < 0 || kind > int32_t(GraphValueKind::kIntermediate))
      return invalid_argument(value_name(v) + " has kind " + std::to_string(kind));
    if (x.offset_symbol >= int32_t(symbols.size()) || x.offset_symbol < -1)
      return invalid_argument(value_name(v) + " names symbol " + std::to_string(x.offset_symbol));
    if (x.offset_symbol_stride_bytes < 0)
      return invalid_argument(value_name(v) + " has a negative symbol stride");
    if (!x.is_view()) {
      if (x.offset_bytes != 0 || x.offset_symbol >= 0)
        return invalid_argument(value_name(v) + " owns its storage but has an offset");
      continue;
    }
    if (x.alias_of >= int32_t(v) || values[size_t(x.alias_of)].is_view())
      return invalid_argument(value_name(v) + " views value " + std::to_string(x.alias_of) +
                              ", which is not an earlier value owning storage");
    const GraphValue& o = values[size_t(x.alias_of)];
    if (o.kind != x.kind)
      return invalid_argument(value_name(v) + " is a " +
                              std::string(graph_value_kind_name(x.kind)) + " view of a " +
                              std::string(graph_value_kind_name(o.kind)));
    if (x.is_output) return invalid_argument(value_name(v) + " is a view marked as an output");
    const uint64_t at_max = offset_of(int32_t(v), max_symbols());
    if (at_max + x.desc.extent_bytes() > o.desc.extent_bytes())
      return invalid_argument(value_name(v) + " " + x.desc.to_string() + " at offset " +
                              std::to_string(at_max) + " runs past its owner " +
                              value_name(size_t(x.alias_of)) + " (" +
                              std::to_string(o.desc.extent_bytes()) + " bytes)");
  }
  std::vector<char> written(values.size(), 0);
  for (size_t n = 0; n < nodes.size(); ++n) {
    const GraphNode& node = nodes[n];
    const int32_t k = int32_t(node.op);
    if (k <= 0 || k >= kOpKindCount)
      return invalid_argument("node " + std::to_string(n) + " has op kind " + std::to_string(k));
    if (node.inputs.size() > size_t(kMaxOpInputs))
      return invalid_argument(node_name(n) + " has " + std::to_string(node.inputs.size()) +
                              " inputs");
    for (int32_t in : node.inputs)
      if (in < 0 || in >= int32_t(values.size()))
        return invalid_argument(node_name(n) + " reads value " + std::to_string(in));
    if (node.output < 0 || node.output >= int32_t(values.size()))
      return invalid_argument(node_name(n) + " writes value " + std::to_string(node.output));
    if (node.kv_length_symbol < -1 || node.kv_length_symbol >= int32_t(symbols.size()))
      return invalid_argument(node_name(n) + " names symbol " +
                              std::to_string(node.kv_length_symbol));
    if (node.kv_length_symbol >= 0 && node.op != OpKind::kAttention)
      return invalid_argument(node_name(n) + " takes a kv_length symbol but is not attention");
    const GraphValueKind out_kind = values[size_t(node.output)].kind;
    if (out_kind == GraphValueKind::kInput || out_kind == GraphValueKind::kConstant)
      return invalid_argument(node_name(n) + " writes " + value_name(size_t(node.output)) + ", a " +
                              std::string(graph_value_kind_name(out_kind)));
    for (int32_t in : node.inputs) {
      const int32_t o = owner(in);
      if (values[size_t(o)].kind == GraphValueKind::kIntermediate && !written[size_t(o)])
        return invalid_argument(node_name(n) + " reads " + value_name(size_t(in)) +
                                " before any node writes it");
    }
    if (Status s = validate_op(node_spec(n)); !s.ok()) return s.with_context(node_name(n));
    written[size_t(owner(node.output))] = 1;
  }
  for (size_t v = 0; v < values.size(); ++v)
    if (values[v].is_output && !written[v])
      return invalid_argument(value_name(v) + " is an output no node writes");
  return ok_status();
}

uint64_t GraphView::fingerprint() const {
  uint64_t h = fnv1a64("hal.graph_view.1", 16);
  auto mix = [&h](const void* p, size_t n) { h = fnv1a64(p, n, h); };
  auto mix_i = [&](int64_t v) { mix(&v, sizeof v); };
  auto mix_s = [&](const std::string& s) {
    mix_i(int64_t(s.size()));
    mix(s.data(), s.size());
  };
  auto mix_desc = [&](const TensorDesc& d) {
    mix_i(int64_t(d.dtype));
    mix_i(d.shape.rank);
    for (int i = 0; i < d.shape.rank; ++i) {
      mix_i(d.shape.dims[i]);
      mix_i(d.strides[i]);
    }
  };
  mix_i(int64_t(symbols.size()));
  for (const GraphSymbol& s : symbols) {
    mix_s(s.name);
    mix_i(s.min_value);
    mix_i(s.max_value);
  }
  mix_i(int64_t(values.size()));
  for (const GraphValue& v : values) {
    mix_s(v.name);
    mix_i(int64_t(v.kind));
    mix_i(v.is_output);
    mix_desc(v.desc);
    mix_i(v.alias_of);
    mix_i(int64_t(v.offset_bytes));
    mix_i(v.offset_symbol);
    mix_i(v.offset_symbol_stride_bytes);
  }
  mix_i(int64_t(nodes.size()));
  for (const GraphNode& n : nodes) {
    mix_s(n.name);
    mix_i(int64_t(n.op));
    const OpAttributes& a = n.attrs;
    for (int64_t x : {int64_t(a.transpose_a), int64_t(a.transpose_b), int64_t(a.causal),
                      int64_t(a.gelu_approximation), int64_t(a.rotary_dim), int64_t(a.rope_style),
                      a.kv_length, a.q_offset})
      mix_i(x);
    for (float f : {a.alpha, a.beta, a.epsilon, a.scale, a.rope_theta}) mix(&f, sizeof f);
    for (int32_t p : a.perm) mix_i(p);
    mix_i(int64_t(n.inputs.size()));
    for (int32_t in : n.inputs) mix_i(in);
    mix_i(n.output);
    mix_i(n.kv_length_symbol);
  }
  return h;
}

}  // namespace hal
