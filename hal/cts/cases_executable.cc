// CTS executable cases (plugin ABI 1.2, hal/executable.h): partition answers consistent
// with supports_op, compile-then-execute equal to the device's own op-by-op dispatch of
// the same nodes, records and info that add up, serialize/deserialize round trips, and
// foreign, modified and badly bound executions refused.
//
// The graph is a small transformer-like block in f32 (matmul + bias, gelu, matmul,
// residual add, layer norm, a write into a state at a symbolic position, a scale of the
// state), so every device compiles the runs of it that it supports.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cts_internal.h"

namespace hal::cts::detail {

namespace {

constexpr int64_t kRows = 4, kWidth = 16, kHidden = 32, kCacheRows = 8;

// The CTS block (see the top comment); symbol 0 is the write position in [0, 4].
GraphView block_view() {
  GraphView g;
  g.symbols.push_back({"pos", 0, kCacheRows - kRows});
  auto value = [&](std::string name, GraphValueKind kind, Shape shape) {
    GraphValue v;
    v.name = std::move(name);
    v.kind = kind;
    v.desc = TensorDesc::contiguous(DType::kF32, shape);
    g.values.push_back(v);
    return int32_t(g.values.size() - 1);
  };
  using K = GraphValueKind;
  const int32_t x = value("x", K::kInput, {kRows, kWidth});
  const int32_t w1 = value("w1", K::kConstant, {kWidth, kHidden});
  const int32_t b1 = value("b1", K::kConstant, {kHidden});
  const int32_t h = value("h", K::kIntermediate, {kRows, kHidden});
  const int32_t a = value("a", K::kIntermediate, {kRows, kHidden});
  const int32_t w2 = value("w2", K::kConstant, {kHidden, kWidth});
  const int32_t y = value("y", K::kIntermediate, {kRows, kWidth});
  const int32_t r = value("r", K::kIntermediate, {kRows, kWidth});
  const int32_t gamma = value("gamma", K::kConstant, {kWidth});
  const int32_t beta = value("beta", K::kConstant, {kWidth});
  const int32_t n = value("n", K::kIntermediate, {kRows, kWidth});
  g.values[size_t(n)].is_output = true;
  const int32_t cache = value("cache", K::kState, {kCacheRows, kWidth});
  const int32_t slot = value("cache.slot", K::kState, {kRows, kWidth});
  g.values[size_t(slot)].alias_of = cache;
  g.values[size_t(slot)].offset_symbol = 0;
  g.values[size_t(slot)].offset_symbol_stride_bytes = kWidth * 4;
  const int32_t scaled = value("scaled", K::kIntermediate, {kCacheRows, kWidth});
  g.values[size_t(scaled)].is_output = true;
  auto node = [&](std::string name, OpKind op, std::vector<int32_t> in, int32_t out,
                  OpAttributes attrs = {}) {
    GraphNode nd;
    nd.name = std::move(name);
    nd.op = op;
    nd.attrs = attrs;
    nd.inputs = std::move(in);
    nd.output = out;
    g.nodes.push_back(std::move(nd));
  };
  node("fc1", OpKind::kMatmul, {x, w1, b1}, h);
  node("act", OpKind::kGelu, {h}, a);
  node("fc2", OpKind::kMatmul, {a, w2}, y);
  node("residual", OpKind::kAdd, {y, x}, r);
  node("norm", OpKind::kLayerNorm, {r, gamma, beta}, n);
  node("cache.write", OpKind::kTranspose, {n}, slot);
  OpAttributes twice;
  twice.alpha = 2.0f;
  node("cache.scale", OpKind::kScale, {cache}, scaled, twice);
  return g;
}

// Device buffers for every owner of a view with host contents, seeded per value name.
struct Storage {
  std::vector<Buffer> buffers;              // per value (owners only)
  std::vector<std::vector<uint8_t>> bytes;  // host images of the bound owners
};

Result<Storage> make_storage(Context& ctx, Stream& s, const GraphView& g) {
  Storage st;
  st.buffers.resize(g.values.size());
  st.bytes.resize(g.values.size());
  for (size_t v = 0; v < g.values.size(); ++v) {
    const GraphValue& x = g.values[v];
    if (x.is_view()) continue;
    HAL_ASSIGN_OR_RETURN(st.buffers[v], ctx.device.allocate(std::max<uint64_t>(x.desc.bytes(), 4)));
    auto rng = ctx.rng("executable." + x.name);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> data(size_t(x.desc.numel()));
    for (float& f : data) f = x.kind == GraphValueKind::kIntermediate ? 0.0f : dist(rng);
    st.bytes[v].resize(data.size() * 4);
    std::memcpy(st.bytes[v].data(), data.data(), st.bytes[v].size());
    HAL_RETURN_IF_ERROR(upload(s, st.buffers[v], 0, st.bytes[v].data(), st.bytes[v].size()));
  }
  return st;
}

// Runs nodes of `g` op by op on the stream over `st` at these symbol values.
Status run_op_by_op(Stream& s, const GraphView& g, const Storage& st,
                    std::span<const int32_t> nodes, std::span<const int64_t> symbols) {
  for (int32_t n : nodes) {
    const OpSpec spec = g.node_spec(size_t(n), symbols);
    OpDescriptor op;
    op.kind = spec.kind;
    op.attrs = spec.attrs;
    op.num_inputs = spec.num_inputs;
    auto ref = [&](int32_t v) {
      return TensorRef{&st.buffers[size_t(g.owner(v))], g.offset_of(v, symbols),
                       g.values[size_t(v)].desc};
    };
    for (int i = 0; i < spec.num_inputs; ++i)
      op.inputs[i] = ref(g.nodes[size_t(n)].inputs[size_t(i)]);
    op.output = ref(g.nodes[size_t(n)].output);
    HAL_RETURN_IF_ERROR(s.dispatch(op, uint64_t(n) + 1));
  }
  return s.synchronize();
}

std::vector<ExecutableBinding> bindings_of(const GraphView& unit, const Storage& st) {
  std::vector<ExecutableBinding> b;
  for (size_t v = 0; v < unit.values.size(); ++v)
    if (unit.is_bound(int32_t(v))) b.push_back({int32_t(v), &st.buffers[v], 0});
  return b;
}

// Everything a unit case needs: the device's first unit that compiles, with storage for
// its own view.
struct CompiledUnit {
  UnitView unit;
  Executable exe;
  ExecutableInfo info;
};

// The first unit of the block's partition; a skip verdict when the device takes none.
Result<std::optional<CompiledUnit>> first_unit(Context& ctx, std::string* skip_reason) {
  const GraphView g = block_view();
  HAL_ASSIGN_OR_RETURN(Partition p, ctx.device.partition(g));
  if (p.units == 0) {
    *skip_reason = "the device compiles none of the block's nodes (" +
                   (p.reasons.empty() ? std::string() : p.reasons[0]) + ")";
    return std::optional<CompiledUnit>();
  }
  // The largest unit, so the case covers as much of the device's compiler as it can.
  int32_t best = 0;
  for (int32_t u = 1; u < p.units; ++u)
    if (p.nodes_of(u).size() > p.nodes_of(best).size()) best = u;
  CompiledUnit c;
  const std::vector<int32_t> nodes = p.nodes_of(best);
  c.unit = extract_unit(g, nodes);
  HAL_ASSIGN_OR_RETURN(c.exe, ctx.device.compile(c.unit.view));
  HAL_ASSIGN_OR_RETURN(c.info, c.exe.info());
  return std::optional<CompiledUnit>(std::move(c));
}

Result<Buffer> scratch_for(Context& ctx, const ExecutableInfo& info) {
  return ctx.device.allocate(std::max<uint64_t>(info.scratch_bytes, 64));
}

// Outputs (and states) of `unit` after one execution at `symbols`, as host bytes.
Result<std::vector<std::vector<uint8_t>>> execute_once(Context& ctx, Stream& s,
                                                       const Executable& exe,
                                                       const ExecutableInfo& info, Storage& st,
                                                       std::span<const int64_t> symbols,
                                                       uint64_t tag = 1) {
  const GraphView& u = exe.view();
  HAL_ASSIGN_OR_RETURN(Buffer scratch, scratch_for(ctx, info));
  const std::vector<ExecutableBinding> b = bindings_of(u, st);
  HAL_RETURN_IF_ERROR(s.execute(exe, {b, &scratch, 0, symbols}, tag));
  HAL_RETURN_IF_ERROR(s.synchronize());
  std::vector<std::vector<uint8_t>> out;
  for (size_t v = 0; v < u.values.size(); ++v) {
    const GraphValue& x = u.values[v];
    if (x.is_view() || !(x.is_output || x.kind == GraphValueKind::kState)) continue;
    std::vector<uint8_t> bytes(x.desc.bytes());
    HAL_RETURN_IF_ERROR(download(s, st.buffers[v], 0, bytes.data(), bytes.size()));
    out.push_back(std::move(bytes));
  }
  return out;
}

std::string compare_floats(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
                           double atol, double rtol) {
  const size_t n = std::min(got.size(), want.size()) / 4;
  for (size_t i = 0; i < n; ++i) {
    float g, w;
    std::memcpy(&g, got.data() + 4 * i, 4);
    std::memcpy(&w, want.data() + 4 * i, 4);
    if (!(std::fabs(double(g) - double(w)) <= atol + rtol * std::fabs(double(w))))
      return "element " + std::to_string(i) + ": executable " + std::to_string(g) + ", op by op " +
             std::to_string(w);
  }
  return got.size() == want.size() ? "" : "sizes differ";
}

// ---- the cases ---------------------------------------------------------------------

Verdict partition_consistent(Context& ctx) {
  const GraphView g = block_view();
  CTS_ASSIGN(Partition p, ctx.device.partition(g), "partition");
  CTS_EXPECT(p.node_unit.size() == g.nodes.size(), "partition answered for the wrong node count");
  if (p.units == 0) return skip("the device compiles none of the block's nodes: " + p.reasons[0]);
  std::vector<int32_t> last_index(size_t(p.units), -1);
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const int32_t u = p.node_unit[n];
    const bool supported = ctx.device.supports(g.node_spec(n));
    if (u >= 0) {
      CTS_EXPECT(supported, "node '" + g.nodes[n].name + "' is taken by unit " + std::to_string(u) +
                                " but supports_op refuses it");
      last_index[size_t(u)] = int32_t(n);
    } else {
      CTS_EXPECT(!p.reasons[n].empty(), "node '" + g.nodes[n].name + "' declined without a reason");
    }
  }
  // Convex units: no path leaves a unit and comes back. Nodes are in dependency order, so
  // a node outside a unit between two of its nodes that depends on the unit and feeds it
  // breaks it.
  for (int32_t u = 0; u < p.units; ++u) {
    const std::vector<int32_t> nodes = p.nodes_of(u);
    CTS_EXPECT(!nodes.empty(), "unit " + std::to_string(u) + " is empty");
    // Owners the unit wrote (1) and owners outside nodes derived from those (2).
    std::vector<char> reach(g.values.size(), 0);
    for (size_t n = size_t(nodes.front()); n <= size_t(nodes.back()); ++n) {
      const GraphNode& node = g.nodes[n];
      char& out = reach[size_t(g.owner(node.output))];
      if (p.node_unit[n] == u) {
        for (int32_t in : node.inputs)
          CTS_EXPECT(reach[size_t(g.owner(in))] != 2,
                     "unit " + std::to_string(u) + " is not convex: node '" + node.name +
                         "' reads what a node outside it computed from it");
        out = std::max<char>(out, 1);
      } else {
        for (int32_t in : node.inputs)
          if (reach[size_t(g.owner(in))] != 0) out = 2;
      }
    }
  }
  return pass(std::to_string(p.units) + " unit(s)");
}

Verdict compile_execute_matches(Context& ctx) {
  std::string why;
  CTS_ASSIGN(auto compiled, first_unit(ctx, &why), "partition and compile");
  if (!compiled) return skip(why);
  CompiledUnit& c = *compiled;
  const GraphView& u = c.unit.view;
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  Drain drain{{&s}, nullptr};
  CTS_ASSIGN(Storage exe_store, make_storage(ctx, s, u), "allocate");
  CTS_ASSIGN(Storage ref_store, make_storage(ctx, s, u), "allocate");
  // Two executions at different symbol values (state carried across), against the same
  // nodes dispatched op by op.
  std::vector<int32_t> all(u.nodes.size());
  for (size_t n = 0; n < all.size(); ++n) all[n] = int32_t(n);
  double atol = 1e-5, rtol = 1e-4;
  const std::string declared = ctx.device.info().property("cts.tolerance.executable");
  if (!declared.empty() && std::sscanf(declared.c_str(), "%lf,%lf", &atol, &rtol) != 2)
    return fail("device property cts.tolerance.executable = '" + declared + "' is not atol,rtol");
  for (int64_t pos : {int64_t(0), u.symbols.empty() ? int64_t(0) : u.symbols[0].max_value - 1}) {
    std::vector<int64_t> sym(u.symbols.size(), pos);
    CTS_ASSIGN(auto got, execute_once(ctx, s, c.exe, c.info, exe_store, sym), "execute");
    CTS_OK(run_op_by_op(s, u, ref_store, all, sym), "op by op");
    size_t k = 0;
    for (size_t v = 0; v < u.values.size(); ++v) {
      const GraphValue& x = u.values[v];
      if (x.is_view() || !(x.is_output || x.kind == GraphValueKind::kState)) continue;
      std::vector<uint8_t> want(x.desc.bytes());
      CTS_OK(download(s, ref_store.buffers[v], 0, want.data(), want.size()), "download");
      const std::string diff = compare_floats(got[k++], want, atol, rtol);
      CTS_EXPECT(diff.empty(), "'" + x.name + "' at symbol " + std::to_string(pos) + ": " + diff);
    }
  }
  return pass(std::to_string(u.nodes.size()) + " nodes in " + std::to_string(c.info.groups.size()) +
              " fused group(s)");
}

Verdict info_and_records(Context& ctx) {
  std::string why;
  CTS_ASSIGN(auto compiled, first_unit(ctx, &why), "partition and compile");
  if (!compiled) return skip(why);
  CompiledUnit& c = *compiled;
  const GraphView& u = c.unit.view;
  CTS_EXPECT(c.info.predicted_seconds > 0, "the executable predicts no time");
  std::vector<int> covered(u.nodes.size(), 0);
  for (const FusedGroupInfo& g : c.info.groups)
    for (int32_t n : g.nodes) {
      CTS_EXPECT(n >= 0 && size_t(n) < u.nodes.size(),
                 "group '" + g.name + "' names node " + std::to_string(n));
      ++covered[size_t(n)];
    }
  for (size_t n = 0; n < covered.size(); ++n)
    CTS_EXPECT(covered[n] == 1, "node '" + u.nodes[n].name + "' is in " +
                                    std::to_string(covered[n]) + " fused groups, not 1");
  StreamOptions so;
  so.record_commands = true;
  CTS_ASSIGN(Stream s, ctx.device.create_stream(so), "create stream");
  Drain drain{{&s}, nullptr};
  CTS_ASSIGN(Storage st, make_storage(ctx, s, u), "allocate");
  s.take_records();
  std::vector<int64_t> sym(u.symbols.size(), 0);
  CTS_ASSIGN(auto outs, execute_once(ctx, s, c.exe, c.info, st, sym, 77), "execute");
  (void)outs;
  const std::vector<CommandRecord> records = s.take_records();
  const CommandRecord* whole = nullptr;
  double group_flops = 0;
  uint64_t group_read = 0, group_written = 0;
  size_t groups = 0;
  for (const CommandRecord& r : records) {
    if (r.tag != 77) continue;
    if (r.command == CommandKind::kExecute) {
      CTS_EXPECT(!whole, "two execute records for one execution");
      whole = &r;
    } else if (r.command == CommandKind::kExecuteGroup) {
      ++groups;
      CTS_EXPECT(r.group >= 0 && size_t(r.group) < c.info.groups.size(),
                 "a group record names group " + std::to_string(r.group));
      group_flops += r.flops;
      group_read += r.bytes_read;
      group_written += r.bytes_written;
    }
  }
  CTS_EXPECT(whole, "no execute record with the execution's tag");
  CTS_EXPECT(groups == c.info.groups.size(), std::to_string(groups) + " group records for " +
                                                 std::to_string(c.info.groups.size()) + " groups");
  for (const CommandRecord& r : records)
    if (r.tag == 77 && r.command == CommandKind::kExecuteGroup)
      CTS_EXPECT(r.start_ns >= whole->start_ns && r.end_ns <= whole->end_ns,
                 "a group record lies outside its execution's span");
  CTS_EXPECT(std::fabs(group_flops - whole->flops) <= 1e-6 * std::max(1.0, whole->flops),
             "group FLOPs " + std::to_string(group_flops) + " do not add up to the execution's " +
                 std::to_string(whole->flops));
  CTS_EXPECT(group_read == whole->bytes_read && group_written == whole->bytes_written,
             "group bytes do not add up to the execution's");
  return pass();
}

Verdict serialize_round_trip(Context& ctx) {
  std::string why;
  CTS_ASSIGN(auto compiled, first_unit(ctx, &why), "partition and compile");
  if (!compiled) return skip(why);
  CompiledUnit& c = *compiled;
  auto blob = c.exe.serialize();
  if (!blob.ok() && blob.status().code() == StatusCode::kUnimplemented)
    return skip("the device does not serialize executables: " + blob.status().message());
  CTS_OK(blob.status(), "serialize");
  CTS_ASSIGN(Executable loaded, ctx.device.load_executable(*blob, c.unit.view), "load");
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  Drain drain{{&s}, nullptr};
  CTS_ASSIGN(Storage a, make_storage(ctx, s, c.unit.view), "allocate");
  CTS_ASSIGN(Storage b, make_storage(ctx, s, c.unit.view), "allocate");
  std::vector<int64_t> sym(c.unit.view.symbols.size(), 0);
  CTS_ASSIGN(ExecutableInfo loaded_info, loaded.info(), "info of the loaded executable");
  CTS_EXPECT(loaded_info.groups.size() == c.info.groups.size(),
             "the loaded executable has other fused groups");
  CTS_ASSIGN(auto want, execute_once(ctx, s, c.exe, c.info, a, sym), "execute the original");
  CTS_ASSIGN(auto got, execute_once(ctx, s, loaded, loaded_info, b, sym), "execute the loaded");
  for (size_t i = 0; i < want.size(); ++i)
    CTS_EXPECT(got[i] == want[i], "output " + std::to_string(i) + " differs after the round trip");
  return pass(std::to_string(blob->size()) + "-byte blob");
}

Verdict foreign_and_modified_refused(Context& ctx) {
  std::string why;
  CTS_ASSIGN(auto compiled, first_unit(ctx, &why), "partition and compile");
  if (!compiled) return skip(why);
  CompiledUnit& c = *compiled;
  auto blob = c.exe.serialize();
  if (!blob.ok() && blob.status().code() == StatusCode::kUnimplemented)
    return skip("the device does not serialize executables");
  CTS_OK(blob.status(), "serialize");
  CTS_ASSIGN(std::string key, ctx.device.executable_key(), "executable key");
  // A modified byte at the end (in the compiled contents).
  std::vector<uint8_t> modified = *blob;
  modified.back() ^= 0x5A;
  auto m = ctx.device.load_executable(modified, c.unit.view);
  CTS_EXPECT(!m.ok() && m.status().code() == StatusCode::kFailedPrecondition,
             "a blob with a modified last byte was " +
                 (m.ok() ? std::string("accepted") : "refused as " + code_name(m.status())));
  // Another device's key: the key is altered where the blob carries it.
  std::vector<uint8_t> foreign = *blob;
  auto at = std::search(foreign.begin(), foreign.end(), key.begin(), key.end());
  if (at == foreign.end() || key.empty())
    return pass(
        "modified blob refused; the blob does not carry the key verbatim, so the foreign "
        "key check was not run");
  *(at + std::ptrdiff_t(key.size() - 1)) ^= 0x01;
  auto f = ctx.device.load_executable(foreign, c.unit.view);
  CTS_EXPECT(!f.ok() && f.status().code() == StatusCode::kFailedPrecondition,
             "a blob with another device's key was " +
                 (f.ok() ? std::string("accepted") : "refused as " + code_name(f.status())));
  return pass("refused: " + f.status().message());
}

Verdict bad_executions_refused(Context& ctx) {
  std::string why;
  CTS_ASSIGN(auto compiled, first_unit(ctx, &why), "partition and compile");
  if (!compiled) return skip(why);
  CompiledUnit& c = *compiled;
  const GraphView& u = c.unit.view;
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  Drain drain{{&s}, nullptr};
  CTS_ASSIGN(Storage st, make_storage(ctx, s, u), "allocate");
  CTS_ASSIGN(Buffer scratch, scratch_for(ctx, c.info), "allocate scratch");
  std::vector<ExecutableBinding> b = bindings_of(u, st);
  std::vector<int64_t> sym(u.symbols.size(), 0);
  if (!b.empty()) {
    std::vector<ExecutableBinding> missing(b.begin() + 1, b.end());
    Status st1 = s.execute(c.exe, {missing, &scratch, 0, sym});
    CTS_EXPECT(st1.code() == StatusCode::kInvalidArgument,
               "an execution missing a binding: " + st1.to_string());
    CTS_ASSIGN(Buffer tiny, ctx.device.allocate(4), "allocate");
    std::vector<ExecutableBinding> small = b;
    small[0].buffer = &tiny;
    Status st2 = s.execute(c.exe, {small, &scratch, 0, sym});
    CTS_EXPECT(st2.code() == StatusCode::kInvalidArgument,
               "an execution with a too-small buffer: " + st2.to_string());
  }
  if (!u.symbols.empty()) {
    std::vector<int64_t> out_of_range = sym;
    out_of_range[0] = u.symbols[0].max_value + 1;
    Status st3 = s.execute(c.exe, {b, &scratch, 0, out_of_range});
    CTS_EXPECT(st3.code() == StatusCode::kInvalidArgument,
               "an execution with a symbol out of range: " + st3.to_string());
  }
  CTS_OK(s.execute(c.exe, {b, &scratch, 0, sym}), "a well-formed execution after the refusals");
  CTS_OK(s.synchronize(), "run");
  return pass();
}

}  // namespace

void add_executable_cases(const Context&, std::vector<Case>& cases) {
  cases.push_back({"executable.partition.consistent_with_supports_op", partition_consistent});
  cases.push_back({"executable.compile_execute.equals_op_by_op", compile_execute_matches});
  cases.push_back({"executable.info_and_records.add_up", info_and_records});
  cases.push_back({"executable.serialize.round_trip", serialize_round_trip});
  cases.push_back(
      {"executable.serialize.foreign_or_modified_refused", foreign_and_modified_refused});
  cases.push_back({"executable.execute.bad_bindings_refused", bad_executions_refused});
}

}  // namespace hal::cts::detail
