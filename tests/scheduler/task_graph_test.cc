// Task graphs: validation errors, adjacency, topological order, resident tensors; the
// generators' graphs (random DAGs as in the HEFT paper, transformer blocks).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "hal/scheduler/random_dag.h"
#include "hal/scheduler/task_graph.h"

namespace hal::scheduler {
namespace {

TEST(TaskGraph, AdjacencyOrderAndResidents) {
  TaskGraph g;
  const TaskId a = g.add_task(Task{"a", 0, {}, 10});
  const TaskId b = g.add_task(Task{"b", 0, {}, 20});
  const TaskId c = g.add_task(Task{"c", 1, {}, 30});
  g.add_edge(b, c, 5);
  g.add_edge(a, c, 7);
  g.add_edge(a, b, 3);
  const ResidentId w = g.add_resident("w", 100);
  g.use_resident(a, w);
  g.use_resident(a, w);  // deduplicated
  g.use_resident(c, w);
  g.add_weights(b, 50);
  ASSERT_TRUE(g.finalize().ok());
  EXPECT_EQ(g.topological_order(), (std::vector<TaskId>{a, b, c}));
  EXPECT_EQ(g.topological_position(c), 2);
  ASSERT_EQ(g.in_edges(c).size(), 2u);
  EXPECT_EQ(g.edge(g.in_edges(c)[0]).from, b);
  EXPECT_EQ(g.edge(g.in_edges(c)[1]).from, a);
  EXPECT_EQ(g.out_edges(a).size(), 2u);
  EXPECT_EQ(g.residents_of(a).size(), 1u);
  ASSERT_EQ(g.residents_of(b).size(), 1u);
  EXPECT_EQ(g.resident(g.residents_of(b)[0]).name, "b.weights");
  EXPECT_EQ(g.total_resident_bytes(), 150u);
  EXPECT_EQ(g.layer_count(), 2);
  g.add_task(Task{"d", -1, {}, 0});
  EXPECT_FALSE(g.finalized());  // editing un-finalizes
}

TEST(TaskGraph, CycleIsNamed) {
  TaskGraph g;
  for (const char* n : {"x", "a", "b", "c"}) g.add_task(Task{n, -1, {}, 0});
  g.add_edge(0, 1, 1);
  g.add_edge(1, 2, 1);
  g.add_edge(2, 3, 1);
  g.add_edge(3, 1, 1);
  const Status s = g.finalize();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "task graph: the edges form a cycle: 'a' -> 'b' -> 'c' -> 'a'");
  EXPECT_FALSE(g.finalized());
}

TEST(TaskGraph, BadEdgesAndFigures) {
  {
    TaskGraph g;
    g.add_task(Task{"only", -1, {}, 0});
    g.add_edge(0, 3, 1);
    EXPECT_EQ(g.finalize().message(), "task graph: edge 0 (0 -> 3) names a task outside 0..0");
  }
  {
    TaskGraph g;
    g.add_task(Task{"self", -1, {}, 0});
    g.add_edge(0, 0, 1);
    EXPECT_EQ(g.finalize().message(), "task graph: task 'self' has an edge to itself");
  }
  {
    TaskGraph g;
    g.add_task(Task{"a", -1, {}, 0});
    g.add_task(Task{"b", -1, {}, 0});
    g.add_edge(0, 1, std::nan(""));
    EXPECT_NE(g.finalize().message().find("negative or non-finite bytes"), std::string::npos);
  }
  {
    TaskGraph g;
    Task t{"w", -1, {}, 0};
    t.work.flops = -5;
    g.add_task(t);
    EXPECT_NE(g.finalize().message().find("'w' has negative or non-finite FLOPs"),
              std::string::npos);
  }
  {
    TaskGraph g;
    g.add_task(Task{"l", -3, {}, 0});
    EXPECT_NE(g.finalize().message().find("has layer -3"), std::string::npos);
  }
  {
    TaskGraph g;
    g.add_task(Task{"r", -1, {}, 0});
    g.use_resident(0, 4);
    EXPECT_NE(g.finalize().message().find("uses resident tensor 4, which does not exist"),
              std::string::npos);
  }
}

TEST(RandomDag, FollowsTheParameters) {
  RandomDagParams p;
  p.tasks = 2000;
  p.alpha = 1.0;
  p.out_degree = 3;
  p.ccr = 5.0;
  p.beta = 0.5;
  p.processors = 4;
  p.seed = 11;
  auto pb = random_dag(p);
  ASSERT_TRUE(pb.ok()) << pb.status().to_string();
  const TaskGraph& g = pb->graph();
  EXPECT_EQ(g.task_count(), 2000u);
  EXPECT_EQ(pb->device_count(), 4);
  // Entry tasks are only in the first level; every other task has a parent.
  size_t entries = 0;
  for (TaskId t = 0; t < 2000; ++t) entries += g.in_edges(t).empty();
  EXPECT_LT(entries, 2 * size_t(std::sqrt(2000.0)) + 1);
  // Mean out-degree near the parameter (the last levels have fewer children to pick).
  const double mean_out = double(g.edge_count()) / 2000;
  EXPECT_GT(mean_out, 2.3);
  EXPECT_LT(mean_out, 3.5);
  // CCR: mean communication / mean computation.
  double comm = 0, comp = 0;
  for (const Edge& e : g.edges()) comm += e.bytes;
  for (TaskId t = 0; t < 2000; ++t)
    for (int32_t d = 0; d < 4; ++d) comp += pb->cost(t, d);
  const double ccr = (comm / double(g.edge_count())) / (comp / (2000.0 * 4));
  EXPECT_NEAR(ccr, 5.0, 0.5);
  // Heterogeneity: per task, costs stay within w(1 +- beta/2).
  for (TaskId t = 0; t < 2000; ++t) {
    double lo = 1e300, hi = 0;
    for (int32_t d = 0; d < 4; ++d) {
      lo = std::min(lo, pb->cost(t, d));
      hi = std::max(hi, pb->cost(t, d));
    }
    EXPECT_LE(hi, lo * (1.25 / 0.75) + 1e-9);
  }
  // Deterministic for a seed, different across seeds.
  auto again = random_dag(p);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->graph().edge_count(), g.edge_count());
  EXPECT_EQ(again->cost(1234, 2), pb->cost(1234, 2));
  p.seed = 12;
  EXPECT_NE(random_dag(p)->cost(1234, 2), pb->cost(1234, 2));
  // Shape: the depth (levels) is about sqrt(v) / alpha: alpha = 4 makes it ~4x shorter.
  auto depth = [](const TaskGraph& graph) {
    std::vector<int32_t> level(graph.task_count(), 0);
    int32_t deepest = 0;
    for (TaskId t : graph.topological_order())
      for (int32_t e : graph.in_edges(t)) {
        level[size_t(t)] = std::max(level[size_t(t)], level[size_t(graph.edge(e).from)] + 1);
        deepest = std::max(deepest, level[size_t(t)]);
      }
    return deepest + 1;
  };
  const int32_t narrow_depth = depth(g);
  EXPECT_GT(narrow_depth, 30);  // sqrt(2000) = 44.7 levels expected
  EXPECT_LT(narrow_depth, 65);
  p.alpha = 4;
  auto wide = random_dag(p);
  ASSERT_TRUE(wide.ok());
  EXPECT_LT(depth(wide->graph()) * 2, narrow_depth);
  p.tasks = 0;
  EXPECT_EQ(random_dag(p).status().code(), StatusCode::kInvalidArgument);
}

TEST(TransformerGraph, StructureWeightsAndKvCache) {
  TransformerShape s;
  s.layers = 4;
  s.hidden = 256;
  s.heads = 4;
  s.ffn = 1024;
  s.vocab = 1000;
  s.context = 128;
  TaskGraph g = transformer_task_graph(s);
  ASSERT_TRUE(g.finalize().ok());
  EXPECT_EQ(g.task_count(), size_t(1 + 10 * 4 + 3));
  EXPECT_EQ(g.layer_count(), 4);
  const uint64_t per_layer_params = 2 * 256 + (256 * 768 + 768) + (256 * 256 + 256) + 2 * 256 +
                                    (256 * 1024 + 1024) + (1024 * 256 + 256);
  const uint64_t params = 1000 * 256 + 4 * per_layer_params + 2 * 256 + 256 * 1000;
  const uint64_t kv = 4 * uint64_t(2 * 1 * 128 * 256);
  EXPECT_EQ(g.total_resident_bytes(), 2 * (params + kv));
  uint64_t state = 0;
  for (size_t r = 0; r < g.resident_count(); ++r)
    if (g.resident(ResidentId(r)).kind == ResidentKind::kState)
      state += g.resident(ResidentId(r)).bytes;
  EXPECT_EQ(state, 2 * kv);
  // A decode step's matmuls are memory bound by construction: bytes ~ weights.
  for (const Task& t : g.tasks())
    if (t.name == "h.0.mlp.fc1") {
      EXPECT_EQ(t.work.op_class, OpClass::kMatrix);
      EXPECT_DOUBLE_EQ(t.work.flops, 2.0 * 256 * 1024 + 1024);
      EXPECT_GE(t.work.bytes, 2.0 * 256 * 1024);
    }
}

}  // namespace
}  // namespace hal::scheduler
