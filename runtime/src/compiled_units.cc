// Whole-graph offload in the runtime: graphs as views, plans with compiled units
// (compiled_units.h; the cache is in executable_cache.cc).
#include "hal/runtime/compiled_units.h"

#include <algorithm>
#include <chrono>
#include <map>

namespace hal::runtime {

namespace {

bool is_working(const Node& n) { return !is_view_kind(n.kind) && n.kind != NodeKind::kTransfer; }

// Narrows `d` to [start, start + length) along `axis`; returns the byte offset added.
uint64_t narrow_desc(TensorDesc& d, int32_t axis, int64_t start, int64_t length) {
  d.shape.dims[axis] = length;
  return uint64_t(start * d.strides[axis]) * dtype_size(d.dtype);
}

struct ViewBuilder {
  const Graph& g;
  GraphViewMap out;
  std::vector<int32_t> index;  // graph value -> view value
  std::map<std::pair<int32_t, int64_t>, int32_t> symbol_index;

  explicit ViewBuilder(const Graph& graph) : g(graph), index(graph.values().size(), -1) {}

  // The offset of graph value v into its storage root.
  uint64_t root_offset(ValueId v) const {
    uint64_t off = 0;
    for (ValueId at = v; g.value(at).alias_of != kNoValue; at = g.value(at).alias_of)
      off += g.value(at).alias_offset_bytes;
    return off;
  }

  int32_t symbol(const SymInt& s, int64_t lo, int64_t hi) {
    auto [it, fresh] = symbol_index.emplace(std::make_pair(s.symbol, s.constant),
                                            int32_t(out.view.symbols.size()));
    if (fresh) {
      std::string name = s.symbol >= 0 ? g.symbols()[size_t(s.symbol)] : "const";
      if (s.constant != 0) {
        if (s.constant > 0) name.push_back('+');
        name.append(std::to_string(s.constant));
      }
      out.view.symbols.push_back({name, lo, hi});
      out.symbol_of.push_back(s);
    } else {
      GraphSymbol& sym = out.view.symbols[size_t(it->second)];
      sym.min_value = std::max(sym.min_value, lo);
      sym.max_value = std::min(sym.max_value, hi);
    }
    return it->second;
  }

  // A slice the view makes (a concat part, a KV-cache write target) of graph value `base`.
  int32_t slice(ValueId base, TensorDesc desc, uint64_t extra_offset, int32_t offset_symbol,
                int64_t symbol_stride_bytes, const std::string& name) {
    GraphValue v;
    const ValueId root = g.storage_root(base);
    v.name = name;
    v.kind = out.view.values[size_t(index[size_t(root)])].kind;
    v.desc = desc;
    v.alias_of = index[size_t(root)];
    v.offset_bytes = root_offset(base) + extra_offset;
    v.offset_symbol = offset_symbol;
    v.offset_symbol_stride_bytes = symbol_stride_bytes;
    out.view.values.push_back(std::move(v));
    out.value_of.push_back(kNoValue);
    return int32_t(out.view.values.size() - 1);
  }

  void node(const std::string& name, OpKind op, OpAttributes attrs, std::vector<int32_t> inputs,
            int32_t output, int32_t kv_symbol, NodeId from) {
    GraphNode n;
    n.name = name;
    n.op = op;
    n.attrs = attrs;
    n.inputs = std::move(inputs);
    n.output = output;
    n.kv_length_symbol = kv_symbol;
    out.view.nodes.push_back(std::move(n));
    out.node_of.push_back(from);
  }
};

}  // namespace

Result<GraphViewMap> graph_view_of(const Graph& g, std::span<const NodeId> nodes) {
  ViewBuilder b(g);
  const auto& values = g.values();
  std::vector<char> in_set(g.nodes().size(), 0), touched(values.size(), 0),
      written(values.size(), 0), read_outside(values.size(), 0);
  for (NodeId n : nodes) {
    if (n < 0 || size_t(n) >= g.nodes().size() || !is_working(g.node(n)))
      return invalid_argument("graph view: node " + std::to_string(n) +
                              " is not a working node of the graph");
    in_set[size_t(n)] = 1;
  }
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const Node& node = g.node(NodeId(n));
    if (is_view_kind(node.kind)) continue;
    for (ValueId v : node.inputs) {
      if (in_set[n]) touched[size_t(v)] = touched[size_t(g.storage_root(v))] = 1;
      if (!in_set[n]) read_outside[size_t(g.storage_root(v))] = 1;
    }
    if (in_set[n])
      for (ValueId o : node.outputs) {
        touched[size_t(o)] = touched[size_t(g.storage_root(o))] = 1;
        written[size_t(g.storage_root(o))] = 1;
      }
  }
  // Owners first (roots), then the graph's views of them.
  for (size_t v = 0; v < values.size(); ++v) {
    const Value& x = values[v];
    if (!touched[v] || x.alias_of != kNoValue) continue;
    GraphValue gv;
    gv.name = x.name;
    gv.desc = x.desc;
    switch (x.kind) {
      case ValueKind::kInput:
        gv.kind = GraphValueKind::kInput;
        break;
      case ValueKind::kConstant:
        gv.kind = GraphValueKind::kConstant;
        break;
      case ValueKind::kState:
        gv.kind = GraphValueKind::kState;
        break;
      case ValueKind::kIntermediate:
        gv.kind = written[v] ? GraphValueKind::kIntermediate : GraphValueKind::kInput;
        break;
    }
    if (gv.kind == GraphValueKind::kIntermediate) gv.is_output = x.is_output || read_outside[v];
    b.index[v] = int32_t(b.out.view.values.size());
    b.out.view.values.push_back(std::move(gv));
    b.out.value_of.push_back(ValueId(v));
  }
  for (size_t v = 0; v < values.size(); ++v) {
    const Value& x = values[v];
    if (!touched[v] || x.alias_of == kNoValue) continue;
    const ValueId root = g.storage_root(ValueId(v));
    if (x.is_output) b.out.view.values[size_t(b.index[size_t(root)])].is_output = true;
    GraphValue gv;
    gv.name = x.name;
    gv.kind = b.out.view.values[size_t(b.index[size_t(root)])].kind;
    gv.desc = x.desc;
    gv.alias_of = b.index[size_t(root)];
    gv.offset_bytes = b.root_offset(ValueId(v));
    b.index[v] = int32_t(b.out.view.values.size());
    b.out.view.values.push_back(std::move(gv));
    b.out.value_of.push_back(ValueId(v));
  }
  OpAttributes copy;  // identity transpose: a strided copy
  for (NodeId n : nodes) {
    const Node& node = g.node(n);
    switch (node.kind) {
      case NodeKind::kOp: {
        std::vector<int32_t> in;
        for (ValueId v : node.inputs) in.push_back(b.index[size_t(v)]);
        int32_t kv = -1;
        if (node.kv_length) {
          const int64_t cap = g.value(node.inputs.at(1)).desc.shape.dims[1];
          kv = b.symbol(*node.kv_length, 1, cap);
        }
        b.node(node.name, node.op, node.attrs, std::move(in), b.index[size_t(node.outputs[0])], kv,
               n);
        break;
      }
      case NodeKind::kConcat: {
        const ValueId out = node.outputs[0];
        int64_t at = 0;
        for (size_t i = 0; i < node.inputs.size(); ++i) {
          const ValueId in = node.inputs[i];
          const int64_t len = g.value(in).desc.shape.dims[node.axis];
          TensorDesc part = g.value(out).desc;
          const uint64_t off = narrow_desc(part, node.axis, at, len);
          at += len;
          if (len == 0) continue;
          const int32_t dst =
              b.slice(out, part, off, -1, 0, node.name + ".part" + std::to_string(i));
          b.node(node.name, OpKind::kTranspose, copy, {b.index[size_t(in)]}, dst, -1, n);
        }
        break;
      }
      case NodeKind::kWriteSlice: {
        const ValueId dst = node.inputs[0], src = node.inputs[1];
        const TensorDesc& dd = g.value(dst).desc;
        const TensorDesc& sd = g.value(src).desc;
        const int64_t len = sd.shape.dims[node.axis];
        const int64_t room = dd.shape.dims[node.axis] - len;
        const int64_t stride = dd.strides[node.axis] * int64_t(dtype_size(dd.dtype));
        const bool per_row = node.write_offsets.size() > 1;
        const size_t rows = per_row ? node.write_offsets.size() : 1;
        for (size_t r = 0; r < rows; ++r) {
          const SymInt& at = node.write_offsets[r];
          TensorDesc target = dd;
          uint64_t target_off = 0;
          int32_t src_value = b.index[size_t(src)];
          if (per_row) {
            target_off += narrow_desc(target, node.batch_axis, int64_t(r), 1);
            TensorDesc row = sd;
            const uint64_t row_off = narrow_desc(row, node.batch_axis, int64_t(r), 1);
            src_value = b.slice(src, row, row_off, -1, 0, node.name + ".row" + std::to_string(r));
          }
          target_off += narrow_desc(target, node.axis, 0, len);
          int32_t sym = -1;
          if (at.is_fixed()) {
            target_off += uint64_t(at.constant * stride);
          } else {
            sym = b.symbol(at, 0, room);
          }
          const int32_t t = b.slice(dst, target, target_off, sym, sym >= 0 ? stride : 0,
                                    node.name + ".at" + std::to_string(r));
          b.node(node.name, OpKind::kTranspose, copy, {src_value}, t, -1, n);
        }
        break;
      }
      default:
        break;
    }
  }
  if (Status s = b.out.view.validate(); !s.ok())
    return internal_error("graph view of " + std::to_string(nodes.size()) +
                          " nodes is malformed: " + s.message());
  return std::move(b.out);
}

// ---- plans with units ---------------------------------------------------------------------

Status compile_plan_units(ExecutionPlan& plan, const CompileSettings& settings,
                          CompileReport* report) {
  if (!settings.enabled || !plan.graph) return ok_status();
  CompileReport local;
  CompileReport& rep = report ? *report : local;
  const auto t0 = std::chrono::steady_clock::now();
  const Graph& g = *plan.graph;
  plan.units.clear();
  for (size_t d = 0; d < plan.devices.size(); ++d) {
    Device& device = *plan.devices[d];
    // The device's working steps on its first stream, in issue order.
    std::vector<NodeId> nodes;
    for (const PlannedStep& st : plan.steps)
      if (st.device == int32_t(d) && st.stream == 0 && st.issue_device < 0 &&
          is_working(g.node(st.node)))
        nodes.push_back(st.node);
    if (nodes.empty()) continue;
    HAL_ASSIGN_OR_RETURN(GraphViewMap full, graph_view_of(g, nodes));
    HAL_ASSIGN_OR_RETURN(Partition part, device.partition(full.view));
    // A graph node is taken when all its view nodes are in one unit.
    std::map<NodeId, int32_t> unit_of;
    std::map<NodeId, std::string> why;
    for (size_t k = 0; k < full.view.nodes.size(); ++k) {
      const NodeId n = full.node_of[k];
      const int32_t u = part.node_unit[k];
      auto [it, fresh] = unit_of.emplace(n, u);
      if (u < 0 && why[n].empty()) why[n] = part.reasons[k];
      if (!fresh && it->second != u) {
        it->second = -1;
        if (why[n].empty()) why[n] = "the device put its parts in different units";
      }
    }
    // Units: maximal runs of consecutive working steps in one device unit.
    std::vector<std::vector<NodeId>> runs;
    int32_t open = -1;
    for (const PlannedStep& st : plan.steps) {
      const Node& node = g.node(st.node);
      if (is_view_kind(node.kind)) continue;
      const bool mine =
          st.device == int32_t(d) && st.stream == 0 && st.issue_device < 0 && is_working(node);
      const int32_t u = mine ? unit_of[st.node] : -1;
      if (u < 0) {
        open = -1;
        if (mine) {
          rep.declined.push_back({st.node, int32_t(d), why[st.node]});
          if (settings.strict)
            return failed_precondition("strict placement: " + node_label(node) + " on " +
                                       device.id() + " runs op by op: " + why[st.node]);
        }
        continue;
      }
      if (u != open) runs.emplace_back();
      open = u;
      runs.back().push_back(st.node);
    }
    // Index of each graph node's view nodes.
    std::map<NodeId, std::vector<int32_t>> view_nodes;
    for (size_t k = 0; k < full.view.nodes.size(); ++k)
      view_nodes[full.node_of[k]].push_back(int32_t(k));
    for (const std::vector<NodeId>& run : runs) {
      std::vector<int32_t> members;
      for (NodeId n : run)
        for (int32_t k : view_nodes[n]) members.push_back(k);
      std::sort(members.begin(), members.end());
      const UnitView uv = extract_unit(full.view, members);
      CompiledUnit unit;
      unit.device = int32_t(d);
      unit.nodes = run;
      for (int32_t v : uv.value_of) unit.value_of.push_back(full.value_of[size_t(v)]);
      unit.symbols = full.symbol_of;
      for (int32_t k : uv.node_of) unit.node_of.push_back(full.node_of[size_t(k)]);
      const auto c0 = std::chrono::steady_clock::now();
      CacheOutcome outcome = CacheOutcome::kCompiled;
      std::string note;
      Result<Executable> exe =
          settings.cache
              ? settings.cache->get(device, uv.view, settings.options, &outcome, &note, &unit.entry)
              : device.compile(uv.view, settings.options);
      if (!exe.ok())
        return exe.status().with_context("compiling " + std::to_string(run.size()) +
                                         " nodes from " + node_label(g.node(run.front())) + " on " +
                                         device.id());
      if (!note.empty()) rep.notes.push_back(device.id() + ": " + note);
      unit.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
      unit.source = std::string(cache_outcome_name(outcome));
      HAL_ASSIGN_OR_RETURN(unit.info, exe->info());
      unit.executable = std::make_shared<const Executable>(std::move(*exe));
      plan.units.push_back(std::move(unit));
    }
  }
  rep.compile_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (plan.units.empty()) return ok_status();
  return finalize_plan(plan);
}

}  // namespace hal::runtime
