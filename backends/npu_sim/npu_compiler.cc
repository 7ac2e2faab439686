// The simulated NPU's graph compiler: fusion, SRAM allocation and timing of executables
// (npu_compiler.h states the rules).
#include "npu_compiler.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "hal/plugin/fused_groups.h"
#include "hal/plugin/node_sequence.h"

namespace hal::npu_sim {

namespace {

constexpr uint64_t kAlign = 64;

uint64_t align_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

double nbytes(const TensorDesc& t) {
  return double(std::max<int64_t>(t.numel(), 0)) * double(dtype_size(t.dtype));
}

uint64_t to_bytes(double v) { return v <= 0 ? 0 : uint64_t(std::llround(v)); }

// SRAM the working tiles of one node take (all engines), at the bucket's largest shapes.
uint64_t working_bytes(const OpSpec& s, const DeviceSpec& spec) {
  const double engines = spec.neural_engines;
  const double rows = spec.mac_array_rows, cols = spec.mac_array_cols;
  const TensorDesc& o = s.output;
  switch (s.kind) {
    case OpKind::kMatmul: {
      const TensorDesc& a = s.inputs[0];
      const TensorDesc& b = s.inputs[1];
      const double k = double(s.attrs.transpose_a ? a.shape.back(2) : a.shape.back(1));
      const double n = double(o.shape.back());
      const double m_total = n > 0 ? double(o.numel()) / n : 0;
      const double kc = std::clamp(k, 1.0, 256.0);
      // Per engine: a double-buffered weight panel and fp32 accumulators for every row of
      // its column slice (A is read in place).
      const double per_engine = 2 * kc * cols * dtype_size(b.dtype) + m_total * cols * 4;
      return to_bytes(engines * per_engine);
    }
    case OpKind::kAttention: {
      const TensorDesc& q = s.inputs[0];
      const TensorDesc& kd = s.inputs[1];
      const TensorDesc& vd = s.inputs[2];
      const double units = std::min(double(q.shape[0] * kd.shape[2]), engines);
      const double group = double(q.shape[2]) / double(std::max<int64_t>(kd.shape[2], 1));
      const double kc = 128;
      const double kv_row =
          double(kd.shape[3] * dtype_size(kd.dtype) + vd.shape[3] * dtype_size(vd.dtype));
      const double qb = std::min<double>(double(q.shape[1]), rows);
      const double per_query =
          group * (double(q.shape[3] * dtype_size(q.dtype)) + double(vd.shape[3]) * 4 + 8 + kc * 4);
      return to_bytes(units * (2 * kc * kv_row + qb * per_query));
    }
    case OpKind::kTranspose:
    case OpKind::kCast:
    case OpKind::kEmbedding:
      return to_bytes(std::min(nbytes(o), 2.0 * double(spec.dma_burst_bytes) * engines));
    default: {
      const double row = o.shape.rank > 0 ? double(o.shape.back()) * 4 : 4;
      return to_bytes(engines * 3 * row);
    }
  }
}

// Values live at each node, by liveness; the SRAM they hold there.
std::vector<uint64_t> sram_live_at(const CompiledPlan& p, const GraphView& view,
                                   const std::vector<std::pair<int32_t, int32_t>>& life) {
  std::vector<uint64_t> live(view.nodes.size(), 0);
  for (size_t v = 0; v < view.values.size(); ++v) {
    if (p.where[v] != Residency::kSram) continue;
    for (int32_t n = life[v].first; n >= 0 && n <= life[v].second; ++n)
      live[size_t(n)] += align_up(view.values[v].desc.extent_bytes());
  }
  return live;
}

}  // namespace

// ---- compile ----------------------------------------------------------------------------

Result<CompiledPlan> compile_plan(const GraphView& view, const DeviceSpec& spec, bool fusion) {
  CompiledPlan p;
  p.fusion = fusion;
  for (plugin::FusedGroup& g : plugin::group_consecutive(view, fusion))
    p.groups.push_back({g.main_node, std::move(g.nodes)});
  const size_t nv = view.values.size(), nn = view.nodes.size();
  p.where.assign(nv, Residency::kBound);
  p.offset.assign(nv, 0);
  p.working.assign(nn, 0);
  for (size_t n = 0; n < nn; ++n) p.working[n] = working_bytes(view.node_spec(n), spec);
  p.sram_capacity = uint64_t(double(spec.sram_bytes()) * spec.sram_usable_fraction);
  const auto life = plugin::ScratchLayout::lifetimes(view);

  std::vector<int32_t> internal;
  for (size_t v = 0; v < nv; ++v) {
    if (view.values[v].is_view()) {
      p.where[v] = Residency::kView;
    } else if (!view.is_bound(int32_t(v)) && life[v].first >= 0) {
      p.where[v] = Residency::kSpill;
      internal.push_back(int32_t(v));
    }
  }
  if (fusion) {
    // First-fit in production order, below the capacity the working tiles leave over the
    // value's whole lifetime.
    std::stable_sort(internal.begin(), internal.end(), [&](int32_t a, int32_t b) {
      return life[size_t(a)].first < life[size_t(b)].first;
    });
    struct Placed {
      uint64_t begin, end;
      int32_t first, last;
    };
    std::vector<Placed> placed;
    for (int32_t v : internal) {
      const auto [first, last] = life[size_t(v)];
      const uint64_t size = align_up(view.values[size_t(v)].desc.extent_bytes());
      uint64_t limit = p.sram_capacity;
      for (int32_t n = first; n <= last; ++n)
        limit = std::min(limit, p.sram_capacity > p.working[size_t(n)]
                                    ? p.sram_capacity - p.working[size_t(n)]
                                    : uint64_t(0));
      std::vector<std::pair<uint64_t, uint64_t>> busy;
      for (const Placed& q : placed)
        if (q.first <= last && first <= q.last) busy.push_back({q.begin, q.end});
      std::sort(busy.begin(), busy.end());
      uint64_t at = 0;
      for (auto [b, e] : busy) {
        if (at + size <= b) break;
        at = std::max(at, e);
      }
      if (at + size > limit) continue;  // does not fit: stays spilled
      p.where[size_t(v)] = Residency::kSram;
      p.offset[size_t(v)] = at;
      placed.push_back({at, at + size, first, last});
      p.sram_image_bytes = std::max(p.sram_image_bytes, at + size);
    }
  }
  const plugin::ScratchLayout spill = plugin::ScratchLayout::plan(
      view, [&](int32_t v) { return p.where[size_t(v)] == Residency::kSpill; });
  for (size_t v = 0; v < nv; ++v)
    if (p.where[v] == Residency::kSpill) {
      p.offset[v] = spill.offset[v];
      p.spilled_bytes += view.values[v].desc.extent_bytes();
    }
  p.scratch_bytes = spill.bytes;
  const std::vector<uint64_t> live = sram_live_at(p, view, life);
  for (size_t n = 0; n < nn; ++n)
    p.sram_peak = std::max(p.sram_peak, std::min(p.sram_capacity, p.working[n]) + live[n]);
  return p;
}

std::vector<std::string> group_names(const CompiledPlan& plan, const GraphView& view) {
  std::vector<std::string> names;
  for (const CompiledGroup& g : plan.groups) {
    std::string ops;
    uint64_t spilled = 0;
    for (int32_t n : g.nodes) {
      if (!ops.empty()) ops.push_back('+');
      ops.append(op_kind_name(view.nodes[size_t(n)].op));
      const int32_t o = view.owner(view.nodes[size_t(n)].output);
      if (plan.where[size_t(o)] == Residency::kSpill && plan.fusion)
        spilled += view.values[size_t(o)].desc.extent_bytes();
    }
    std::string name = view.nodes[size_t(g.main_node)].name;
    name.append(" [").append(ops).append("]");
    if (spilled > 0) name.append(" (spills ").append(std::to_string(spilled)).append(" bytes)");
    names.push_back(std::move(name));
  }
  return names;
}

// ---- checks and encoding ------------------------------------------------------------------

Status check_plan(const CompiledPlan& p, const GraphView& view, const DeviceSpec& spec) {
  auto bad = [](const std::string& what) {
    return failed_precondition("compiled plan does not match its graph: " + what);
  };
  const size_t nv = view.values.size(), nn = view.nodes.size();
  if (p.where.size() != nv || p.offset.size() != nv || p.working.size() != nn)
    return bad("array sizes");
  if (p.sram_capacity > spec.sram_bytes() || p.sram_image_bytes > p.sram_capacity)
    return bad("SRAM sizes beyond the device's");
  size_t next = 0;
  for (const CompiledGroup& g : p.groups) {
    if (g.nodes.empty()) return bad("an empty group");
    bool has_main = false;
    for (int32_t n : g.nodes) {
      if (n != int32_t(next)) return bad("groups out of order");
      has_main |= n == g.main_node;
      ++next;
    }
    if (!has_main) return bad("a group's main node is not its own");
  }
  if (next != nn) return bad("groups do not cover every node");
  const auto life = plugin::ScratchLayout::lifetimes(view);
  for (size_t v = 0; v < nv; ++v) {
    const bool view_value = view.values[v].is_view();
    const bool bound = !view_value && view.is_bound(int32_t(v));
    const Residency w = p.where[v];
    if (view_value != (w == Residency::kView) || (bound && w != Residency::kBound) ||
        (!view_value && !bound && life[v].first >= 0 && w != Residency::kSram &&
         w != Residency::kSpill))
      return bad("value " + std::to_string(v) + " has residency " + std::to_string(int(w)));
    const uint64_t end = p.offset[v] + view.values[v].desc.extent_bytes();
    if (end < p.offset[v] || (w == Residency::kSram && end > p.sram_image_bytes) ||
        (w == Residency::kSpill && end > p.scratch_bytes))
      return bad("value " + std::to_string(v) + " lies outside its memory");
  }
  for (size_t a = 0; a < nv; ++a)
    for (size_t b = a + 1; b < nv; ++b) {
      const Residency w = p.where[a];
      if (w != p.where[b] || (w != Residency::kSram && w != Residency::kSpill)) continue;
      if (life[a].first > life[b].second || life[b].first > life[a].second) continue;
      const uint64_t ea = p.offset[a] + view.values[a].desc.extent_bytes();
      const uint64_t eb = p.offset[b] + view.values[b].desc.extent_bytes();
      if (p.offset[a] < eb && p.offset[b] < ea)
        return bad("values " + std::to_string(a) + " and " + std::to_string(b) +
                   " share bytes while both live");
    }
  return ok_status();
}

std::vector<uint8_t> CompiledPlan::encode() const {
  std::vector<int64_t> w = {int64_t(0x4e505550'4c414e31), fusion ? 1 : 0, int64_t(groups.size())};
  for (const CompiledGroup& g : groups) {
    w.push_back(g.main_node);
    w.push_back(int64_t(g.nodes.size()));
    w.insert(w.end(), g.nodes.begin(), g.nodes.end());
  }
  w.push_back(int64_t(where.size()));
  for (size_t v = 0; v < where.size(); ++v) {
    w.push_back(int64_t(where[v]));
    w.push_back(int64_t(offset[v]));
  }
  w.push_back(int64_t(working.size()));
  for (uint64_t x : working) w.push_back(int64_t(x));
  for (uint64_t x : {sram_capacity, sram_peak, sram_image_bytes, scratch_bytes, spilled_bytes})
    w.push_back(int64_t(x));
  std::vector<uint8_t> out(w.size() * sizeof(int64_t));
  std::memcpy(out.data(), w.data(), out.size());
  return out;
}

Result<CompiledPlan> CompiledPlan::decode(std::span<const uint8_t> bytes) {
  auto bad = [] { return failed_precondition("malformed compiled plan"); };
  if (bytes.size() % sizeof(int64_t) != 0) return bad();
  std::vector<int64_t> w(bytes.size() / sizeof(int64_t));
  std::memcpy(w.data(), bytes.data(), bytes.size());
  size_t at = 0;
  auto next = [&](int64_t* v) {
    if (at >= w.size()) return false;
    *v = w[at++];
    return true;
  };
  auto count = [&](size_t* n) {
    int64_t v = 0;
    if (!next(&v) || v < 0 || uint64_t(v) > w.size()) return false;
    *n = size_t(v);
    return true;
  };
  CompiledPlan p;
  int64_t magic = 0, fusion = 0;
  size_t n = 0;
  if (!next(&magic) || magic != int64_t(0x4e505550'4c414e31) || !next(&fusion) || !count(&n))
    return bad();
  p.fusion = fusion != 0;
  p.groups.resize(n);
  for (CompiledGroup& g : p.groups) {
    int64_t main = 0;
    size_t k = 0;
    if (!next(&main) || !count(&k)) return bad();
    g.main_node = int32_t(main);
    g.nodes.resize(k);
    for (int32_t& x : g.nodes) {
      int64_t v = 0;
      if (!next(&v)) return bad();
      x = int32_t(v);
    }
  }
  if (!count(&n)) return bad();
  p.where.resize(n);
  p.offset.resize(n);
  for (size_t v = 0; v < n; ++v) {
    int64_t r = 0, o = 0;
    if (!next(&r) || !next(&o) || r < 0 || r > int64_t(Residency::kView) || o < 0) return bad();
    p.where[v] = Residency(r);
    p.offset[v] = uint64_t(o);
  }
  if (!count(&n)) return bad();
  p.working.resize(n);
  for (uint64_t& x : p.working) {
    int64_t v = 0;
    if (!next(&v) || v < 0) return bad();
    x = uint64_t(v);
  }
  for (uint64_t* x :
       {&p.sram_capacity, &p.sram_peak, &p.sram_image_bytes, &p.scratch_bytes, &p.spilled_bytes}) {
    int64_t v = 0;
    if (!next(&v) || v < 0) return bad();
    *x = uint64_t(v);
  }
  if (at != w.size()) return bad();
  return p;
}

// ---- timing ------------------------------------------------------------------------------

ExecutionTiming time_plan(const CompiledPlan& p, const GraphView& view, const PerfModel& model,
                          std::span<const int64_t> symbols) {
  const DeviceSpec& spec = model.spec();
  const double bw = spec.sustained_memory_bandwidth();
  auto on_chip = [&](int32_t v) { return p.where[size_t(view.owner(v))] == Residency::kSram; };
  const auto life = plugin::ScratchLayout::lifetimes(view);
  const std::vector<uint64_t> live = sram_live_at(p, view, life);
  ExecutionTiming t;
  t.overhead_s = spec.command_overhead_s;
  double compute_total = 0, memory_total = 0, link_total = 0;
  for (size_t gi = 0; gi < p.groups.size(); ++gi) {
    const CompiledGroup& grp = p.groups[gi];
    GroupTiming g;
    double compute = 0, sram = 0, dram = 0, link = 0;
    for (int32_t n : grp.nodes) {
      const GraphNode& node = view.nodes[size_t(n)];
      const OpSpec s = view.node_spec(size_t(n), symbols);
      const CommandCost c = model.op(s);
      if (gi == 0 && n == grp.nodes.front()) t.fill_s = c.fill_s;
      double read = 0;
      for (size_t i = 0; i < node.inputs.size(); ++i) {
        if (on_chip(node.inputs[i])) continue;
        double bytes = c.input_dram_bytes[i];
        // With A on chip the accumulators hold every row: B streams once.
        if (s.kind == OpKind::kMatmul && i == 1 && on_chip(node.inputs[0]) && c.b_rereads > 1)
          bytes /= c.b_rereads;
        read += bytes;
      }
      const double written = on_chip(node.output) ? 0.0 : nbytes(s.output);
      compute += c.compute_s;
      sram += c.sram_s;
      link += c.link_s;
      dram += read + written;
      g.flops += c.flops;
      g.dram_bytes_read += to_bytes(read);
      g.dram_bytes_written += to_bytes(written);
      g.sram_bytes_read += c.sram_bytes_read;
      g.sram_bytes_written += c.sram_bytes_written;
      g.link_bytes += c.link_bytes;
      g.sram_bytes =
          std::max(g.sram_bytes, std::min(p.sram_capacity, p.working[size_t(n)]) + live[size_t(n)]);
    }
    const double memory = dram / bw;
    g.seconds = std::max({compute, sram, memory, link});
    g.bound = g.seconds == memory ? BoundBy::kMemory
              : g.seconds == link ? BoundBy::kLink
                                  : BoundBy::kCompute;
    compute_total += g.bound == BoundBy::kCompute ? g.seconds : 0;
    memory_total += g.bound == BoundBy::kMemory ? g.seconds : 0;
    link_total += g.bound == BoundBy::kLink ? g.seconds : 0;
    t.seconds += g.seconds;
    GroupTiming& tot = t.total;
    tot.flops += g.flops;
    tot.dram_bytes_read += g.dram_bytes_read;
    tot.dram_bytes_written += g.dram_bytes_written;
    tot.sram_bytes_read += g.sram_bytes_read;
    tot.sram_bytes_written += g.sram_bytes_written;
    tot.link_bytes += g.link_bytes;
    tot.sram_bytes = std::max(tot.sram_bytes, g.sram_bytes);
    t.groups.push_back(g);
  }
  const double body = t.seconds;
  t.seconds += t.overhead_s + t.fill_s;
  t.total.seconds = t.seconds;
  if (t.overhead_s >= body) {
    t.total.bound = BoundBy::kOverhead;
  } else if (memory_total >= compute_total && memory_total >= link_total) {
    t.total.bound = BoundBy::kMemory;
  } else {
    t.total.bound = link_total > compute_total ? BoundBy::kLink : BoundBy::kCompute;
  }
  return t;
}

}  // namespace hal::npu_sim
