// Graph IR: shape inference and its errors, views, ordering with in-place writes,
// validation after edits, and liveness-based memory planning.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "hal/runtime/arena_layout.h"
#include "hal/runtime/execution_plan.h"
#include "hal/runtime/graph.h"

namespace hal::runtime {
namespace {

using ::testing::HasSubstr;

TEST(Graph, MatmulShapeErrorNamesNodeAndShapes) {
  Graph g;
  ValueId x = g.add_input("x", DType::kF32, {1, 7, 768});
  ValueId w = g.add_constant("w", DType::kF32, {767, 2304});
  EXPECT_EQ(g.op("h.3.attn.qkv", 3, OpKind::kMatmul, {x, w}), kNoValue);
  ASSERT_FALSE(g.status().ok());
  const std::string& msg = g.status().message();
  EXPECT_THAT(msg, HasSubstr("node 'h.3.attn.qkv' (matmul)"));
  EXPECT_THAT(msg, HasSubstr("[1, 7, 768]"));
  EXPECT_THAT(msg, HasSubstr("[767, 2304]"));
  // Sticky: later calls do nothing and keep the first error.
  EXPECT_EQ(g.op("later", 0, OpKind::kGelu, {x}), kNoValue);
  EXPECT_THAT(g.status().message(), HasSubstr("h.3.attn.qkv"));
  EXPECT_EQ(g.nodes().size(), 0u);
}

TEST(Graph, OpOutputShapesFollowHalRules) {
  Graph g;
  ValueId x = g.add_input("x", DType::kF32, {2, 5, 64});
  ValueId w = g.add_constant("w", DType::kF32, {64, 192});
  ValueId b = g.add_constant("b", DType::kF32, {192});
  ValueId y = g.op("proj", 0, OpKind::kMatmul, {x, w, b});
  ASSERT_TRUE(g.status().ok()) << g.status().to_string();
  EXPECT_EQ(g.value(y).desc.shape, (Shape{2, 5, 192}));
  ValueId c = g.op("cast", 0, OpKind::kCast, {y}, {}, DType::kBF16);
  EXPECT_EQ(g.value(c).desc.dtype, DType::kBF16);
  ValueId am = g.op("argmax", 0, OpKind::kArgmax, {y});
  EXPECT_EQ(g.value(am).desc.dtype, DType::kI32);
  EXPECT_EQ(g.value(am).desc.shape, (Shape{2, 5}));
  // A cast needs its dtype.
  EXPECT_EQ(g.op("bad_cast", 0, OpKind::kCast, {y}), kNoValue);
  EXPECT_THAT(g.status().message(), HasSubstr("node 'bad_cast' (cast)"));
}

TEST(Graph, SplitReshapePermuteAreViewsWithStrides) {
  Graph g;
  ValueId qkv = g.add_input("qkv", DType::kF32, {2, 5, 3 * 64});
  auto parts = g.split("split", 0, qkv, 2, {64, 64, 64});
  ASSERT_EQ(parts.size(), 3u);
  const Value& k = g.value(parts[1]);
  EXPECT_EQ(k.desc.shape, (Shape{2, 5, 64}));
  EXPECT_EQ(k.alias_of, qkv);
  EXPECT_EQ(k.alias_offset_bytes, 64u * 4);
  EXPECT_EQ(k.desc.strides[0], 5 * 192);
  EXPECT_EQ(k.desc.strides[1], 192);
  // Splitting the last dim of a strided view is still a view.
  ValueId heads = g.reshape("heads", 0, parts[1], {2, 5, 4, 16});
  ASSERT_TRUE(g.status().ok()) << g.status().to_string();
  const Value& h = g.value(heads);
  EXPECT_EQ(h.alias_of, parts[1]);
  EXPECT_EQ(h.desc.strides[0], 5 * 192);
  EXPECT_EQ(h.desc.strides[1], 192);
  EXPECT_EQ(h.desc.strides[2], 16);
  EXPECT_EQ(h.desc.strides[3], 1);
  EXPECT_EQ(g.storage_root(heads), qkv);
  // Merging dims that are not adjacent in memory needs a copy: the builder inserts one.
  const int32_t perm[4] = {0, 2, 1, 3};
  ValueId t = g.permute("t", 0, heads, perm);
  ValueId flat = g.reshape("flat", 0, t, {2, 4 * 5 * 16});
  ASSERT_TRUE(g.status().ok()) << g.status().to_string();
  EXPECT_TRUE(g.value(flat).desc.is_contiguous());
  const ValueId copied = g.value(flat).alias_of;
  const Node& copy = g.node(g.value(copied).producer);
  EXPECT_EQ(copy.kind, NodeKind::kOp);
  EXPECT_EQ(copy.op, OpKind::kTranspose);
  EXPECT_EQ(copy.name, "flat.contiguous");
  EXPECT_TRUE(g.validate().ok()) << g.validate().to_string();
}

TEST(Graph, ShapeOpErrorsNameTheNode) {
  {
    Graph g;
    ValueId x = g.add_input("x", DType::kF32, {2, 6});
    g.split("bad_split", 1, x, 1, {2, 2});
    EXPECT_THAT(g.status().message(), HasSubstr("node 'bad_split' (split)"));
    EXPECT_THAT(g.status().message(), HasSubstr("add up to 4"));
  }
  {
    Graph g;
    ValueId x = g.add_input("x", DType::kF32, {2, 6});
    g.reshape("bad_reshape", 1, x, {5, 2});
    EXPECT_THAT(g.status().message(), HasSubstr("node 'bad_reshape' (reshape)"));
    EXPECT_THAT(g.status().message(), HasSubstr("[2, 6] (12 elements)"));
  }
  {
    Graph g;
    ValueId x = g.add_input("x", DType::kF32, {2, 6});
    g.slice("bad_slice", 1, x, 1, 4, 3);
    EXPECT_THAT(g.status().message(), HasSubstr("slice [4, 7) of axis 1 is outside [2, 6]"));
  }
  {
    Graph g;
    ValueId a = g.add_input("a", DType::kF32, {2, 6});
    ValueId b = g.add_input("b", DType::kF32, {3, 5});
    g.concat("bad_concat", 1, {a, b}, 1);
    EXPECT_THAT(g.status().message(), HasSubstr("node 'bad_concat' (concat)"));
  }
  {
    Graph g;
    ValueId w = g.add_constant("w", DType::kF32, {4, 4});
    ValueId s = g.add_input("s", DType::kF32, {1, 4});
    g.write_slice("write_weight", 0, w, s, 0, {SymInt::fixed(0)});
    EXPECT_THAT(g.status().message(), HasSubstr("cannot write into constant 'w'"));
  }
}

TEST(Graph, ConcatShapeAndSliceOffset) {
  Graph g;
  ValueId a = g.add_input("a", DType::kF16, {2, 3});
  ValueId b = g.add_input("b", DType::kF16, {2, 5});
  ValueId c = g.concat("cat", 0, {a, b}, 1);
  EXPECT_EQ(g.value(c).desc.shape, (Shape{2, 8}));
  ValueId s = g.slice("s", 0, c, 1, 3, 5);
  EXPECT_EQ(g.value(s).alias_offset_bytes, 3u * 2);
  EXPECT_EQ(g.value(s).desc.strides[0], 8);
  EXPECT_TRUE(g.validate().ok());
}

TEST(Graph, WriteSliceOrdersAfterReadersOfOldContents) {
  Graph g;
  const int32_t past = g.add_symbol("past");
  ValueId cache = g.add_state("cache", DType::kF32, {1, 16, 2, 8});
  ValueId x = g.add_input("x", DType::kF32, {1, 1, 2, 8});
  // n0 reads the old cache, n1 overwrites it, n2 reads the new contents.
  ValueId old_view = g.slice("old_view", 0, cache, 1, 0, 4);
  ValueId old_sum = g.op("old_reader", 0, OpKind::kScale, {old_view});
  ValueId updated = g.write_slice("write", 0, cache, x, 1, {SymInt::of(past)});
  ValueId reader = g.op("new_reader", 0, OpKind::kScale, {updated});
  ASSERT_TRUE(g.status().ok()) << g.status().to_string();
  EXPECT_EQ(g.value(updated).alias_of, cache);
  auto order = g.topological_order();
  ASSERT_TRUE(order.ok());
  auto pos = [&](ValueId v) {
    return std::find(order->begin(), order->end(), g.value(v).producer) - order->begin();
  };
  EXPECT_LT(pos(old_sum), pos(updated));
  EXPECT_LT(pos(updated), pos(reader));
  // Per-row offsets must match the batch axis.
  g.write_slice("bad_rows", 0, cache, x, 1, {SymInt::of(past), SymInt::of(past)});
  EXPECT_THAT(g.status().message(), HasSubstr("2 per-row offsets for 1 rows"));
}

TEST(Graph, CycleIsReported) {
  Graph g;
  ValueId x = g.add_input("x", DType::kF32, {4});
  ValueId a = g.op("a", 0, OpKind::kScale, {x});
  ValueId b = g.op("b", 0, OpKind::kScale, {a});
  ASSERT_TRUE(g.status().ok());
  g.replace_input(g.value(a).producer, 0, b);  // a <- b <- a
  auto order = g.topological_order();
  ASSERT_FALSE(order.ok());
  EXPECT_THAT(order.status().message(), HasSubstr("cycle"));
  EXPECT_FALSE(g.validate().ok());
}

TEST(Graph, ValidateCatchesShapeMismatchAfterEdit) {
  Graph g;
  ValueId x = g.add_input("x", DType::kF32, {4, 8});
  ValueId y = g.add_input("y", DType::kF32, {4, 9});
  ValueId w = g.add_constant("w", DType::kF32, {8, 8});
  g.op("mm", 2, OpKind::kMatmul, {x, w});
  ASSERT_TRUE(g.validate().ok());
  g.replace_input(0, 0, y);
  Status s = g.validate();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("node 'mm' (matmul)"));
  EXPECT_THAT(s.message(), HasSubstr("[4, 9]"));
}

// A chain x -> a -> b -> c -> d of equal sizes: at most two live at once, so the
// planner must reuse memory: arena = 2 buffers, not 5.
TEST(ArenaLayout, ChainReusesBuffers) {
  Graph g;
  ValueId v = g.add_input("x", DType::kF32, {1024});
  for (int i = 0; i < 4; ++i)
    v = g.op(std::string("n").append(std::to_string(i)), 0, OpKind::kScale, {v});
  g.mark_output(v);
  auto order = g.topological_order();
  ASSERT_TRUE(order.ok());
  ArenaLayout plan = plan_memory(g, *order);
  EXPECT_EQ(plan.unshared_bytes, 5u * 4096);
  EXPECT_EQ(plan.live_peak_bytes, 2u * 4096);
  EXPECT_EQ(plan.arena_bytes, 2u * 4096);
  // Neighbours never share memory; values two apart do.
  std::vector<uint64_t> offs;
  for (size_t i = 0; i < g.values().size(); ++i) offs.push_back(plan.offsets[i]);
  for (size_t i = 0; i + 1 < offs.size(); ++i) EXPECT_NE(offs[i], offs[i + 1]);
  EXPECT_EQ(offs[0], offs[2]);
}

// Values live at the same time never overlap, views share their root's bytes, and
// constants are not planned.
TEST(ArenaLayout, LiveValuesNeverOverlapAndViewsShare) {
  Graph g;
  ValueId x = g.add_input("x", DType::kF32, {4, 96});
  ValueId w = g.add_constant("w", DType::kF32, {96, 96});
  ValueId big = g.op("big", 0, OpKind::kMatmul, {x, w});
  auto parts = g.split("parts", 0, big, 1, {32, 32, 32});
  ValueId a = g.op("a", 0, OpKind::kScale, {parts[0]});
  ValueId b = g.op("b", 0, OpKind::kAdd, {a, parts[2]});  // keeps `big` alive through a view
  ValueId c = g.op("c", 0, OpKind::kScale, {b});
  g.mark_output(c);
  ASSERT_TRUE(g.status().ok()) << g.status().to_string();
  auto order = g.topological_order();
  ASSERT_TRUE(order.ok());
  ArenaLayout plan = plan_memory(g, *order);
  EXPECT_EQ(plan.offsets[size_t(w)], kNotPlanned);
  EXPECT_EQ(plan.offsets[size_t(parts[2])], plan.offsets[size_t(big)] + 64 * 4);
  // Check no two intervals alive together overlap in bytes.
  for (const LiveInterval& p : plan.intervals)
    for (const LiveInterval& q : plan.intervals) {
      if (p.value >= q.value) continue;
      const bool together = p.first_step <= q.last_step && q.first_step <= p.last_step;
      const uint64_t po = plan.offsets[size_t(p.value)], qo = plan.offsets[size_t(q.value)];
      const bool overlap = po < qo + q.bytes && qo < po + p.bytes;
      EXPECT_FALSE(together && overlap)
          << g.value(p.value).name << " and " << g.value(q.value).name;
    }
  // `big` lives until `b` (through its view), so `a` cannot reuse it.
  const auto it = std::find_if(plan.intervals.begin(), plan.intervals.end(),
                               [&](const LiveInterval& i) { return i.value == big; });
  ASSERT_NE(it, plan.intervals.end());
  EXPECT_EQ(order->at(size_t(it->last_step)), g.value(b).producer);
  EXPECT_GE(plan.arena_bytes, plan.live_peak_bytes);
}

}  // namespace
}  // namespace hal::runtime
