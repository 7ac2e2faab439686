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
    off += uint64_t(sym[size_t(x.offset_symbol)]) * uint64_t(x.offset_symbol_stride_bytes);
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
    // No device holds 2^46 elements; past that the byte sizes computed below would
    // overflow (a blob read from disk may say anything).
    constexpr uint64_t kMaxElements = uint64_t(1) << 46;
    uint64_t elements = 1, last = 0;
    bool too_large = false;
    for (int i = 0; i < x.desc.shape.rank && !too_large; ++i) {
      const uint64_t d = uint64_t(x.desc.shape.dims[i]), st = uint64_t(x.desc.strides[i]);
      if (d > 0 && elements > kMaxElements / d) too_large = true;
      elements *= d;
      if (d > 1 && st > kMaxElements / (d - 1)) too_large = true;
      last += (d > 0 ? d - 1 : 0) * st;
      if (last > kMaxElements) too_large = true;
    }
    if (too_large)
      return invalid_argument(value_name(v) + " " + x.desc.to_string() +
                              " spans more than 2^46 elements");
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
    // Offsets within 2^50 bytes (validate's bound on sizes), so the sums below cannot wrap.
    constexpr uint64_t kMaxOffset = uint64_t(1) << 50;
    const uint64_t sym_max =
        x.offset_symbol >= 0 ? uint64_t(symbols[size_t(x.offset_symbol)].max_value) : 0;
    if (x.offset_bytes > kMaxOffset || uint64_t(x.offset_symbol_stride_bytes) > kMaxOffset ||
        (sym_max > 0 && uint64_t(x.offset_symbol_stride_bytes) > kMaxOffset / sym_max))
      return invalid_argument(value_name(v) + " has an offset past 2^50 bytes");
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

// ---- units --------------------------------------------------------------------------

UnitView extract_unit(const GraphView& view, std::span<const int32_t> nodes) {
  UnitView u;
  u.view.symbols = view.symbols;
  std::vector<char> in_unit(view.nodes.size(), 0);
  for (int32_t n : nodes) in_unit[size_t(n)] = 1;
  // Per owner: written inside / outside the unit, read outside.
  std::vector<char> written_in(view.values.size(), 0), written_out(view.values.size(), 0),
      read_out(view.values.size(), 0), used(view.values.size(), 0);
  for (size_t n = 0; n < view.nodes.size(); ++n) {
    const GraphNode& g = view.nodes[n];
    const size_t o = size_t(view.owner(g.output));
    (in_unit[n] ? written_in : written_out)[o] = 1;
    for (int32_t in : g.inputs)
      if (!in_unit[n]) read_out[size_t(view.owner(in))] = 1;
    if (in_unit[n]) {
      used[size_t(g.output)] = used[o] = 1;
      for (int32_t in : g.inputs) used[size_t(in)] = used[size_t(view.owner(in))] = 1;
    }
  }
  std::vector<int32_t> index(view.values.size(), -1);
  auto add = [&](size_t v) {
    GraphValue x = view.values[v];
    const size_t o = size_t(view.owner(int32_t(v)));
    if (view.values[o].kind == GraphValueKind::kIntermediate) {
      if (written_out[o]) {
        x.kind = written_in[o] ? GraphValueKind::kState : GraphValueKind::kInput;
        x.is_output = false;
      } else if (!x.is_view()) {
        x.is_output = view.values[o].is_output || read_out[o];
      }
    }
    if (x.is_view()) x.alias_of = index[size_t(x.alias_of)];
    index[v] = int32_t(u.view.values.size());
    u.value_of.push_back(int32_t(v));
    u.view.values.push_back(std::move(x));
  };
  for (size_t v = 0; v < view.values.size(); ++v)
    if (used[v] && !view.values[v].is_view()) add(v);
  for (size_t v = 0; v < view.values.size(); ++v)
    if (used[v] && view.values[v].is_view()) add(v);
  for (int32_t n : nodes) {
    GraphNode g = view.nodes[size_t(n)];
    for (int32_t& in : g.inputs) in = index[size_t(in)];
    g.output = index[size_t(g.output)];
    u.node_of.push_back(n);
    u.view.nodes.push_back(std::move(g));
  }
  return u;
}

// ---- encoding ------------------------------------------------------------------------

namespace {

constexpr char kViewMagic[8] = {'H', 'A', 'L', 'G', 'V', 'E', 'W', '1'};

class Writer {
 public:
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  void i64(int64_t v) { bytes(&v, sizeof v); }
  void f32(float v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    i64(int64_t(s.size()));
    bytes(s.data(), s.size());
  }
  std::vector<uint8_t> out;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  bool bytes(void* p, size_t n) {
    if (in_.size() - at_ < n) return false;
    std::memcpy(p, in_.data() + at_, n);
    at_ += n;
    return true;
  }
  bool i64(int64_t* v) { return bytes(v, sizeof *v); }
  bool f32(float* v) { return bytes(v, sizeof *v); }
  bool count(size_t* n, size_t limit) {
    int64_t v = 0;
    if (!i64(&v) || v < 0 || uint64_t(v) > limit) return false;
    *n = size_t(v);
    return true;
  }
  bool str(std::string* s) {
    int64_t v = 0;
    // The length is read first: the bytes left are counted after it.
    if (!i64(&v) || v < 0 || uint64_t(v) > in_.size() - at_) return false;
    const size_t n = size_t(v);
    s->assign(reinterpret_cast<const char*>(in_.data() + at_), n);
    at_ += n;
    return true;
  }
  bool done() const { return at_ == in_.size(); }

 private:
  std::span<const uint8_t> in_;
  size_t at_ = 0;
};

void write_desc(Writer& w, const TensorDesc& d) {
  w.i64(int64_t(d.dtype));
  w.i64(d.shape.rank);
  for (int i = 0; i < d.shape.rank; ++i) {
    w.i64(d.shape.dims[i]);
    w.i64(d.strides[i]);
  }
}

bool read_desc(Reader& r, TensorDesc* d) {
  int64_t dtype = 0, rank = 0;
  if (!r.i64(&dtype) || !r.i64(&rank) || rank < 0 || rank > kMaxRank || dtype <= 0 ||
      dtype >= kDTypeCount)
    return false;
  d->dtype = DType(dtype);
  d->shape.rank = int32_t(rank);
  for (int i = 0; i < rank; ++i)
    if (!r.i64(&d->shape.dims[i]) || !r.i64(&d->strides[i])) return false;
  return true;
}

}  // namespace

std::vector<uint8_t> GraphView::encode() const {
  Writer w;
  w.bytes(kViewMagic, sizeof kViewMagic);
  w.i64(int64_t(symbols.size()));
  for (const GraphSymbol& s : symbols) {
    w.str(s.name);
    w.i64(s.min_value);
    w.i64(s.max_value);
  }
  w.i64(int64_t(values.size()));
  for (const GraphValue& v : values) {
    w.str(v.name);
    w.i64(int64_t(v.kind));
    w.i64(v.is_output);
    write_desc(w, v.desc);
    w.i64(v.alias_of);
    w.i64(int64_t(v.offset_bytes));
    w.i64(v.offset_symbol);
    w.i64(v.offset_symbol_stride_bytes);
  }
  w.i64(int64_t(nodes.size()));
  for (const GraphNode& n : nodes) {
    w.str(n.name);
    w.i64(int64_t(n.op));
    const OpAttributes& a = n.attrs;
    for (int64_t x : {int64_t(a.transpose_a), int64_t(a.transpose_b), int64_t(a.causal),
                      int64_t(a.gelu_approximation), int64_t(a.rotary_dim), int64_t(a.rope_style),
                      a.kv_length, a.q_offset})
      w.i64(x);
    for (float f : {a.alpha, a.beta, a.epsilon, a.scale, a.rope_theta}) w.f32(f);
    for (int32_t p : a.perm) w.i64(p);
    w.i64(int64_t(n.inputs.size()));
    for (int32_t in : n.inputs) w.i64(in);
    w.i64(n.output);
    w.i64(n.kv_length_symbol);
  }
  return std::move(w.out);
}

Result<GraphView> GraphView::decode(std::span<const uint8_t> bytes) {
  Reader r(bytes);
  auto bad = [] { return invalid_argument("malformed graph view encoding"); };
  char magic[8];
  if (!r.bytes(magic, 8) || std::memcmp(magic, kViewMagic, 8) != 0) return bad();
  GraphView v;
  const size_t limit = bytes.size();  // every element takes at least a byte
  size_t n = 0;
  if (!r.count(&n, limit)) return bad();
  v.symbols.resize(n);
  for (GraphSymbol& s : v.symbols)
    if (!r.str(&s.name) || !r.i64(&s.min_value) || !r.i64(&s.max_value)) return bad();
  if (!r.count(&n, limit)) return bad();
  v.values.resize(n);
  for (GraphValue& x : v.values) {
    int64_t kind = 0, out = 0, alias = 0, off = 0, sym = 0;
    if (!r.str(&x.name) || !r.i64(&kind) || !r.i64(&out) || !read_desc(r, &x.desc) ||
        !r.i64(&alias) || !r.i64(&off) || !r.i64(&sym) || !r.i64(&x.offset_symbol_stride_bytes))
      return bad();
    if (kind < 0 || kind > int64_t(GraphValueKind::kIntermediate)) return bad();
    x.kind = GraphValueKind(kind);
    x.is_output = out != 0;
    x.alias_of = int32_t(alias);
    x.offset_bytes = uint64_t(off);
    x.offset_symbol = int32_t(sym);
  }
  if (!r.count(&n, limit)) return bad();
  v.nodes.resize(n);
  for (GraphNode& node : v.nodes) {
    int64_t op = 0;
    if (!r.str(&node.name) || !r.i64(&op) || op <= 0 || op >= kOpKindCount) return bad();
    node.op = OpKind(op);
    int64_t x[8];
    for (int64_t& e : x)
      if (!r.i64(&e)) return bad();
    OpAttributes& a = node.attrs;
    a.transpose_a = x[0] != 0;
    a.transpose_b = x[1] != 0;
    a.causal = x[2] != 0;
    a.gelu_approximation = GeluApproximation(int32_t(x[3]));
    a.rotary_dim = int32_t(x[4]);
    a.rope_style = RopeStyle(int32_t(x[5]));
    a.kv_length = x[6];
    a.q_offset = x[7];
    for (float* f : {&a.alpha, &a.beta, &a.epsilon, &a.scale, &a.rope_theta})
      if (!r.f32(f)) return bad();
    for (int32_t& p : a.perm) {
      int64_t e = 0;
      if (!r.i64(&e)) return bad();
      p = int32_t(e);
    }
    size_t inputs = 0;
    if (!r.count(&inputs, size_t(kMaxOpInputs))) return bad();
    node.inputs.resize(inputs);
    for (int32_t& in : node.inputs) {
      int64_t e = 0;
      if (!r.i64(&e)) return bad();
      in = int32_t(e);
    }
    int64_t output = 0, kv = 0;
    if (!r.i64(&output) || !r.i64(&kv)) return bad();
    node.output = int32_t(output);
    node.kv_length_symbol = int32_t(kv);
  }
  if (!r.done()) return bad();
  HAL_RETURN_IF_ERROR(v.validate().with_context("decoded graph view"));
  return v;
}

}  // namespace hal
