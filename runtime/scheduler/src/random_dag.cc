#include "hal/scheduler/random_dag.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace hal::scheduler {

namespace {

// splitmix64: the same numbers on every platform and standard library (the standard
// distributions are implementation-defined), so benchmark tables reproduce anywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int64_t uniform_int(int64_t lo, int64_t hi) {  // [lo, hi]
    return lo + int64_t(uniform() * double(hi - lo + 1));
  }

 private:
  uint64_t state_;
};

}  // namespace

Result<Problem> random_dag(const RandomDagParams& prm) {
  if (prm.tasks < 1 || prm.processors < 1 || !(prm.alpha > 0) || !(prm.out_degree >= 1) ||
      !(prm.ccr >= 0) || !(prm.beta >= 0 && prm.beta <= 2) || !(prm.mean_cost > 0) || prm.jump < 1)
    return invalid_argument(
        "random DAG: need tasks >= 1, processors >= 1, alpha > 0, out_degree >= 1, ccr >= 0, "
        "0 <= beta <= 2, mean_cost > 0, jump >= 1");
  Rng rng(prm.seed);
  const int32_t v = prm.tasks;
  const double mean_width = prm.alpha * std::sqrt(double(v));
  const int64_t max_width = std::max<int64_t>(1, std::llround(2 * mean_width - 1));
  std::vector<std::vector<TaskId>> levels;
  TaskGraph g;
  g.reserve(size_t(v), size_t(double(v) * prm.out_degree));
  int32_t made = 0;
  while (made < v) {
    const int32_t w = int32_t(std::min<int64_t>(rng.uniform_int(1, max_width), v - made));
    levels.emplace_back();
    for (int32_t i = 0; i < w; ++i) {
      levels.back().push_back(made);
      g.add_task(Task{std::string("t").append(std::to_string(made)), -1, {}, 0});
      ++made;
    }
  }
  // Edges: children from the next `jump` levels; each non-entry task gets a parent in the
  // level before it.
  const int64_t max_degree = std::max<int64_t>(1, std::llround(2 * prm.out_degree - 1));
  std::vector<int32_t> out_count(size_t(v), 0);
  std::vector<uint8_t> has_parent(size_t(v), 0);
  std::vector<TaskId> pool;
  std::vector<std::pair<TaskId, TaskId>> pairs;
  for (size_t l = 0; l + 1 < levels.size(); ++l) {
    pool.clear();
    for (size_t k = l + 1; k < levels.size() && k <= l + size_t(prm.jump); ++k)
      pool.insert(pool.end(), levels[k].begin(), levels[k].end());
    for (TaskId u : levels[l]) {
      const int64_t k = std::min<int64_t>(rng.uniform_int(1, max_degree), int64_t(pool.size()));
      // Partial Fisher-Yates: k distinct children.
      for (int64_t i = 0; i < k; ++i) {
        const int64_t j = rng.uniform_int(i, int64_t(pool.size()) - 1);
        std::swap(pool[size_t(i)], pool[size_t(j)]);
        pairs.emplace_back(u, pool[size_t(i)]);
        has_parent[size_t(pool[size_t(i)])] = 1;
      }
    }
  }
  for (size_t l = 1; l < levels.size(); ++l)
    for (TaskId c : levels[l])
      if (!has_parent[size_t(c)]) {
        const auto& prev = levels[l - 1];
        pairs.emplace_back(prev[size_t(rng.uniform_int(0, int64_t(prev.size()) - 1))], c);
      }
  std::sort(pairs.begin(), pairs.end());
  for (const auto& [u, c] : pairs) {
    const double comm = rng.uniform(0, 2 * prm.ccr * prm.mean_cost);
    g.add_edge(u, c, comm, out_count[size_t(u)]++);  // each edge its own data
  }
  const size_t p = size_t(prm.processors);
  std::vector<double> cost(size_t(v) * p);
  for (int32_t t = 0; t < v; ++t) {
    const double w = rng.uniform(0, 2 * prm.mean_cost);
    for (size_t d = 0; d < p; ++d)
      cost[size_t(t) * p + d] = rng.uniform(w * (1 - prm.beta / 2), w * (1 + prm.beta / 2));
  }
  std::vector<DeviceSlot> devices;
  for (size_t d = 0; d < p; ++d)
    devices.push_back(DeviceSlot{std::string("p:").append(std::to_string(d)), 0});
  std::vector<LinkCost> links(p * p, LinkCost{"unit", 1.0, 0.0});
  return Problem::from_costs(std::move(g), std::move(devices), std::move(cost), std::move(links));
}

Problem heft_paper_example() {
  static constexpr double kCost[10][3] = {{14, 16, 9},  {13, 19, 18}, {11, 13, 19}, {13, 8, 17},
                                          {12, 13, 10}, {13, 16, 9},  {7, 15, 11},  {5, 11, 14},
                                          {18, 12, 20}, {21, 7, 16}};
  static constexpr int kEdges[15][3] = {{1, 2, 18},  {1, 3, 12},  {1, 4, 9},  {1, 5, 11},
                                        {1, 6, 14},  {2, 8, 19},  {2, 9, 16}, {3, 7, 23},
                                        {4, 8, 27},  {4, 9, 23},  {5, 9, 13}, {6, 8, 15},
                                        {7, 10, 17}, {8, 10, 11}, {9, 10, 13}};
  TaskGraph g;
  for (int i = 1; i <= 10; ++i)
    g.add_task(Task{std::string("n").append(std::to_string(i)), -1, {}, 0});
  std::vector<int32_t> out(10, 0);
  for (const auto& e : kEdges) g.add_edge(e[0] - 1, e[1] - 1, e[2], out[size_t(e[0] - 1)]++);
  std::vector<double> cost;
  for (const auto& row : kCost) cost.insert(cost.end(), std::begin(row), std::end(row));
  std::vector<DeviceSlot> devices = {{"p:0", 0}, {"p:1", 0}, {"p:2", 0}};
  std::vector<LinkCost> links(9, LinkCost{"unit", 1.0, 0.0});
  auto pb =
      Problem::from_costs(std::move(g), std::move(devices), std::move(cost), std::move(links));
  return std::move(pb).value();  // fixed data: always valid (tests check it)
}

TaskGraph transformer_task_graph(const TransformerShape& s) {
  using hal::DType;
  using hal::OpKind;
  using hal::OpSpec;
  using hal::TensorDesc;
  const DType dt = s.dtype;
  const int64_t b = s.batch, q = s.new_tokens, c = s.context, h = s.hidden, nh = s.heads;
  const int64_t hd = h / std::max<int64_t>(nh, 1);
  const uint64_t esize = hal::dtype_size(dt);
  TaskGraph g;
  auto desc = [&](DType t, hal::Shape shape) { return TensorDesc::contiguous(t, shape); };
  auto add = [&](const std::string& name, int32_t layer, OpKind kind,
                 std::initializer_list<TensorDesc> inputs, TensorDesc out,
                 hal::OpAttributes attrs = {}) {
    OpSpec spec;
    spec.kind = kind;
    spec.attrs = attrs;
    for (const TensorDesc& in : inputs) spec.inputs[size_t(spec.num_inputs++)] = in;
    spec.output = out;
    Task t;
    t.name = name;
    t.layer = layer;
    t.work = OpWork::from_spec(spec);
    t.activation_bytes = out.bytes();
    return g.add_task(std::move(t));
  };
  auto edge = [&](TaskId from, TaskId to) {
    g.add_edge(from, to, double(g.task(from).activation_bytes), 0);
  };
  const TensorDesc x = desc(dt, {b, q, h});
  const TaskId embed =
      add("embed", -1, OpKind::kEmbedding, {desc(dt, {s.vocab, h}), desc(DType::kI32, {b, q})}, x);
  g.add_weights(embed, uint64_t(s.vocab * h) * esize);
  TaskId prev = embed;
  hal::OpAttributes causal;
  causal.causal = true;
  causal.kv_length = c;
  for (int32_t l = 0; l < s.layers; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    const TaskId ln1 = add(p + "ln1", l, OpKind::kLayerNorm, {x, desc(dt, {h}), desc(dt, {h})}, x);
    g.add_weights(ln1, uint64_t(2 * h) * esize);
    const TaskId qkv = add(p + "attn.qkv", l, OpKind::kMatmul,
                           {x, desc(dt, {h, 3 * h}), desc(dt, {3 * h})}, desc(dt, {b, q, 3 * h}));
    g.add_weights(qkv, uint64_t(h * 3 * h + 3 * h) * esize);
    const TaskId attn =
        add(p + "attn", l, OpKind::kAttention,
            {desc(dt, {b, q, nh, hd}), desc(dt, {b, c, nh, hd}), desc(dt, {b, c, nh, hd})},
            desc(dt, {b, q, nh, hd}), causal);
    const ResidentId kv =
        g.add_resident(p + "kv_cache", uint64_t(2 * b * c * h) * esize, ResidentKind::kState);
    g.use_resident(attn, kv);
    const TaskId proj =
        add(p + "attn.proj", l, OpKind::kMatmul, {x, desc(dt, {h, h}), desc(dt, {h})}, x);
    g.add_weights(proj, uint64_t(h * h + h) * esize);
    const TaskId add1 = add(p + "add1", l, OpKind::kAdd, {x, x}, x);
    const TaskId ln2 = add(p + "ln2", l, OpKind::kLayerNorm, {x, desc(dt, {h}), desc(dt, {h})}, x);
    g.add_weights(ln2, uint64_t(2 * h) * esize);
    const TaskId fc1 = add(p + "mlp.fc1", l, OpKind::kMatmul,
                           {x, desc(dt, {h, s.ffn}), desc(dt, {s.ffn})}, desc(dt, {b, q, s.ffn}));
    g.add_weights(fc1, uint64_t(h * s.ffn + s.ffn) * esize);
    const TaskId gelu =
        add(p + "mlp.gelu", l, OpKind::kGelu, {desc(dt, {b, q, s.ffn})}, desc(dt, {b, q, s.ffn}));
    const TaskId fc2 = add(p + "mlp.fc2", l, OpKind::kMatmul,
                           {desc(dt, {b, q, s.ffn}), desc(dt, {s.ffn, h}), desc(dt, {h})}, x);
    g.add_weights(fc2, uint64_t(s.ffn * h + h) * esize);
    const TaskId add2 = add(p + "add2", l, OpKind::kAdd, {x, x}, x);
    edge(prev, ln1);
    edge(ln1, qkv);
    edge(qkv, attn);
    edge(attn, proj);
    edge(prev, add1);
    edge(proj, add1);
    edge(add1, ln2);
    edge(ln2, fc1);
    edge(fc1, gelu);
    edge(gelu, fc2);
    edge(add1, add2);
    edge(fc2, add2);
    prev = add2;
  }
  const TaskId lnf = add("ln_f", -1, OpKind::kLayerNorm, {x, desc(dt, {h}), desc(dt, {h})}, x);
  g.add_weights(lnf, uint64_t(2 * h) * esize);
  const TaskId head =
      add("lm_head", -1, OpKind::kMatmul, {x, desc(dt, {h, s.vocab})}, desc(dt, {b, q, s.vocab}));
  g.add_weights(head, uint64_t(h * s.vocab) * esize);
  const TaskId argmax =
      add("argmax", -1, OpKind::kArgmax, {desc(dt, {b, q, s.vocab})}, desc(DType::kI32, {b, q}));
  edge(prev, lnf);
  edge(lnf, head);
  edge(head, argmax);
  return g;
}

}  // namespace hal::scheduler
