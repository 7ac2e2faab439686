// Graph views (hal/graph_view.h) and the executable blob envelope
// (hal/plugin/executable_blob.h): validation names what is wrong, encode/decode round
// trips and refuses malformed bytes, units become standalone graphs with the right
// inputs and outputs, scratch layouts never overlap live values, and blobs with another
// key or changed contents are refused.
#include <gtest/gtest.h>

#include "hal/graph_view.h"
#include "hal/plugin/executable_blob.h"
#include "hal/plugin/node_sequence.h"

namespace hal {
namespace {

// x -> matmul(w) -> h -> gelu -> g -> add(x) -> out; a state written at a symbolic row.
GraphView small_view() {
  GraphView g;
  g.symbols.push_back({"pos", 0, 2});
  auto value = [&](std::string name, GraphValueKind kind, Shape shape) {
    GraphValue v;
    v.name = std::move(name);
    v.kind = kind;
    v.desc = TensorDesc::contiguous(DType::kF32, shape);
    g.values.push_back(v);
    return int32_t(g.values.size() - 1);
  };
  const int32_t x = value("x", GraphValueKind::kInput, {2, 4});
  const int32_t w = value("w", GraphValueKind::kConstant, {4, 4});
  const int32_t h = value("h", GraphValueKind::kIntermediate, {2, 4});
  const int32_t gl = value("g", GraphValueKind::kIntermediate, {2, 4});
  const int32_t out = value("out", GraphValueKind::kIntermediate, {2, 4});
  g.values[size_t(out)].is_output = true;
  const int32_t cache = value("cache", GraphValueKind::kState, {4, 4});
  const int32_t slot = value("slot", GraphValueKind::kState, {2, 4});
  g.values[size_t(slot)].alias_of = cache;
  g.values[size_t(slot)].offset_symbol = 0;
  g.values[size_t(slot)].offset_symbol_stride_bytes = 16;
  g.nodes.push_back({"mm", OpKind::kMatmul, {}, {x, w}, h, -1});
  g.nodes.push_back({"act", OpKind::kGelu, {}, {h}, gl, -1});
  g.nodes.push_back({"res", OpKind::kAdd, {}, {gl, x}, out, -1});
  g.nodes.push_back({"write", OpKind::kTranspose, {}, {out}, slot, -1});
  return g;
}

TEST(GraphView, AWellFormedViewValidatesAndNamesBoundValues) {
  const GraphView g = small_view();
  ASSERT_TRUE(g.validate().ok()) << g.validate().to_string();
  EXPECT_TRUE(g.is_bound(0));   // input
  EXPECT_TRUE(g.is_bound(1));   // constant
  EXPECT_FALSE(g.is_bound(2));  // internal intermediate
  EXPECT_TRUE(g.is_bound(4));   // output
  EXPECT_TRUE(g.is_bound(5));   // state
  EXPECT_FALSE(g.is_bound(6));  // a view is never bound
  const int64_t at[] = {2};
  EXPECT_EQ(g.offset_of(6, at), 32u);
}

TEST(GraphView, ValidationNamesTheProblem) {
  GraphView g = small_view();
  g.values[6].offset_symbol_stride_bytes = 32;  // row 2 * 32 + 32 bytes > 64 bytes of cache
  Status s = g.validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("runs past its owner"), std::string::npos) << s.message();

  g = small_view();
  std::swap(g.nodes[0], g.nodes[1]);  // gelu reads h before the matmul writes it
  s = g.validate();
  EXPECT_NE(s.message().find("before any node writes it"), std::string::npos) << s.message();

  g = small_view();
  g.nodes[0].inputs[1] = 99;
  EXPECT_NE(g.validate().message().find("reads value 99"), std::string::npos);

  g = small_view();
  g.nodes[2].output = 1;  // writes the constant
  EXPECT_NE(g.validate().message().find("a constant"), std::string::npos);

  g = small_view();
  g.values[3].desc.shape = {2, 5};  // gelu's output shape no longer matches
  EXPECT_NE(g.validate().message().find("node 1 'act'"), std::string::npos)
      << g.validate().message();

  g = small_view();
  const int64_t bad[] = {3};
  EXPECT_NE(g.check_symbols(bad).message().find("outside its range [0, 2]"), std::string::npos);
}

TEST(GraphView, EncodeDecodeRoundTripsAndRefusesMalformedBytes) {
  const GraphView g = small_view();
  const std::vector<uint8_t> bytes = g.encode();
  auto back = GraphView::decode(bytes);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->fingerprint(), g.fingerprint());
  EXPECT_EQ(back->nodes[1].name, "act");

  for (size_t cut : {size_t(0), size_t(7), bytes.size() / 2, bytes.size() - 1}) {
    auto r = GraphView::decode(std::span(bytes).first(cut));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << cut;
  }
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  EXPECT_FALSE(GraphView::decode(longer).ok());
}

TEST(GraphView, FingerprintChangesWithAnyField) {
  const GraphView g = small_view();
  GraphView h = g;
  h.nodes[1].attrs.gelu_approximation = GeluApproximation::kTanh;
  EXPECT_NE(h.fingerprint(), g.fingerprint());
  h = g;
  h.symbols[0].max_value = 1;
  EXPECT_NE(h.fingerprint(), g.fingerprint());
  EXPECT_EQ(small_view().fingerprint(), g.fingerprint());
}

TEST(GraphView, AUnitBecomesAGraphWithItsOwnInputsAndOutputs) {
  const GraphView g = small_view();
  // The gelu and the add: h comes from outside (an input), out is read by the write
  // outside (an output), g stays internal.
  const int32_t nodes[] = {1, 2};
  const UnitView u = extract_unit(g, nodes);
  ASSERT_TRUE(u.view.validate().ok()) << u.view.validate().to_string();
  ASSERT_EQ(u.view.nodes.size(), 2u);
  auto find = [&](const char* name) {
    for (size_t v = 0; v < u.view.values.size(); ++v)
      if (u.view.values[v].name == name) return int32_t(v);
    return int32_t(-1);
  };
  ASSERT_GE(find("h"), 0);
  EXPECT_EQ(u.view.values[size_t(find("h"))].kind, GraphValueKind::kInput);
  EXPECT_FALSE(u.view.is_bound(find("g")));
  EXPECT_TRUE(u.view.values[size_t(find("out"))].is_output);
  EXPECT_EQ(u.value_of[size_t(find("x"))], 0);
  EXPECT_EQ(u.node_of[1], 2);
  EXPECT_EQ(find("cache"), -1);  // not touched by the unit

  // The write alone: the state and its view come along, the symbol stays.
  const int32_t write[] = {3};
  const UnitView w = extract_unit(g, write);
  ASSERT_TRUE(w.view.validate().ok()) << w.view.validate().to_string();
  EXPECT_EQ(w.view.symbols.size(), 1u);
}

TEST(ScratchLayout, ValuesThatLiveAtTheSameTimeNeverShareBytes) {
  GraphView g = small_view();
  g.values[4].is_output = false;  // out internal too (the write still reads it)
  const plugin::ScratchLayout s = plugin::ScratchLayout::plan(g);
  const auto life = plugin::ScratchLayout::lifetimes(g);
  for (int32_t a : {2, 3, 4})
    for (int32_t b : {2, 3, 4}) {
      if (a >= b) continue;
      const bool overlap_in_time = life[size_t(a)].first <= life[size_t(b)].second &&
                                   life[size_t(b)].first <= life[size_t(a)].second;
      const uint64_t ea = s.offset[size_t(a)] + g.values[size_t(a)].desc.bytes();
      const uint64_t eb = s.offset[size_t(b)] + g.values[size_t(b)].desc.bytes();
      const bool overlap_in_space = s.offset[size_t(a)] < eb && s.offset[size_t(b)] < ea;
      EXPECT_FALSE(overlap_in_time && overlap_in_space) << a << " and " << b;
    }
  // h (nodes 0-1) and out (nodes 2-3) never live together: they may share.
  EXPECT_LT(s.bytes, 3u * 32u + 3u * 64u);
}

TEST(ExecutableBlob, RefusesAnotherKeyAndChangedContents) {
  const std::vector<uint8_t> payload = {1, 2, 3, 4, 5};
  const std::string key = plugin::executable_key("npu_sim", "0.1.0", "atom-1234");
  EXPECT_NE(key.find("abi 1.2"), std::string::npos);
  const std::vector<uint8_t> blob = plugin::wrap_blob(key, payload);
  auto ok = plugin::unwrap_blob(blob, key);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(std::vector<uint8_t>(ok->begin(), ok->end()), payload);

  auto foreign = plugin::unwrap_blob(blob, plugin::executable_key("npu_sim", "0.2.0", "atom-1234"));
  EXPECT_EQ(foreign.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(foreign.status().message().find("compiled for"), std::string::npos);

  std::vector<uint8_t> changed = blob;
  changed.back() ^= 1;
  auto c = plugin::unwrap_blob(changed, key);
  EXPECT_NE(c.status().message().find("checksum"), std::string::npos) << c.status().message();

  std::vector<uint8_t> cut(blob.begin(), blob.end() - 1);
  EXPECT_NE(plugin::unwrap_blob(cut, key).status().message().find("truncated"), std::string::npos);
  EXPECT_NE(plugin::unwrap_blob(std::vector<uint8_t>{1, 2}, key)
                .status()
                .message()
                .find("not an executable blob"),
            std::string::npos);
}

}  // namespace
}  // namespace hal
