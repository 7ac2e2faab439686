// Executor and execution plans on real devices: small graphs against host arithmetic,
// run-time errors, memory planning of a real model graph, and layer-split plans
// (transfers and events) giving the single-device answers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "hal/runtime/executor.h"
#include "hal/runtime/model_graph.h"
#include "hal/runtime/session.h"
#include "test_devices.h"

namespace {

using namespace hal::runtime;
using hal::DType;
using hal::OpKind;
using ::testing::HasSubstr;

hal::Device* cpu() { return testdevices::all_devices().cpu(); }

// out = concat(x * 2 + 1, slice(w, 1, 2)) along axis 1, with a KV-style in-place write.
TEST(Executor, RunsOpsViewsConcatAndWrites) {
  auto g = std::make_shared<Graph>();
  const int32_t at = g->add_symbol("at");
  ValueId x = g->add_input("x", DType::kF32, {2, 3});
  ValueId w = g->add_constant("w", DType::kF32, {2, 4});
  ValueId state = g->add_state("state", DType::kF32, {2, 5});
  hal::OpAttributes sa;
  sa.alpha = 2.f;
  sa.beta = 1.f;
  ValueId y = g->op("scale", 0, OpKind::kScale, {x}, sa);
  ValueId ws = g->slice("w_cols", 0, w, 1, 1, 2);
  ValueId cat = g->concat("cat", 0, {y, ws}, 1);
  ValueId col = g->slice("x_col", 0, x, 1, 0, 1);
  ValueId written = g->write_slice("write", 0, state, col, 1, {hal::runtime::SymInt::of(at)});
  ValueId copy = g->op("state_copy", 0, OpKind::kTranspose, {written});
  g->mark_output(cat);
  g->mark_output(copy);
  ASSERT_TRUE(g->status().ok()) << g->status().to_string();
  auto plan = make_single_device_plan(g, cpu());
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  auto ex = Executor::create(std::move(*plan));
  ASSERT_TRUE(ex.ok()) << ex.status().to_string();

  const float wv[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  auto wbuf = cpu()->allocate(sizeof wv);
  auto sbuf = cpu()->allocate(10 * 4);
  ASSERT_TRUE(wbuf.ok() && sbuf.ok());
  std::memcpy(*wbuf->map(), wv, sizeof wv);
  std::memset(*sbuf->map(), 0, 40);
  // Unbound values are refused before anything runs.
  const float xv[6] = {1, 2, 3, 4, 5, 6};
  float out[10] = {}, st[10] = {};
  const int64_t sym[1] = {3};
  const HostInput in[] = {{x, xv, sizeof xv}};
  const HostOutput outs[] = {{cat, out, sizeof out}, {copy, st, sizeof st}};
  hal::Status s = (*ex)->run({sym, in, outs});
  EXPECT_EQ(s.code(), hal::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("constant 'w' is not bound on cpu:0"));
  ASSERT_TRUE((*ex)->bind(w, 0, *wbuf).ok());
  ASSERT_TRUE((*ex)->bind(state, 0, *sbuf).ok());
  ASSERT_TRUE((*ex)->run({sym, in, outs}).ok());
  const float expect_cat[10] = {3, 5, 7, 1, 2, 9, 11, 13, 5, 6};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(out[i], expect_cat[i]) << i;
  // The state got column 0 of x at column 3, in place, and keeps it across runs.
  EXPECT_EQ(st[3], 1);
  EXPECT_EQ(st[8], 4);
  EXPECT_EQ(static_cast<float*>(*sbuf->map())[3], 1);
  // A write past the end is refused before anything is enqueued.
  const int64_t past_end[1] = {5};
  s = (*ex)->run({past_end, in, outs});
  EXPECT_EQ(s.code(), hal::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("node 'write' (write_slice)"));
  EXPECT_THAT(s.message(), HasSubstr("runs past the 5 rows of 'state'"));
  // Inputs must be complete and exactly sized.
  const HostInput short_in[] = {{x, xv, 8}};
  EXPECT_THAT((*ex)->run({sym, short_in, outs}).message(), HasSubstr("input 'x' needs 24 bytes"));
  EXPECT_THAT((*ex)->run({sym, {}, outs}).message(), HasSubstr("input 'x' is missing"));
  EXPECT_THAT((*ex)->run({{}, in, outs}).message(), HasSubstr("1 run-time symbols, 0 given"));
  // Binding checks.
  EXPECT_FALSE((*ex)->bind(x, 0, *wbuf).ok());
  auto small = cpu()->allocate(4);
  EXPECT_THAT((*ex)->bind(w, 0, *small).message(), HasSubstr("needs 32 bytes"));
}

TEST(Executor, DeviceErrorsNameTheNode) {
  auto g = std::make_shared<Graph>();
  ValueId table = g->add_constant("table", DType::kF32, {4, 2});
  ValueId ids = g->add_input("ids", DType::kI32, {3});
  ValueId e = g->op("lookup", -1, OpKind::kEmbedding, {table, ids});
  g->mark_output(e);
  auto plan = make_single_device_plan(g, cpu());
  ASSERT_TRUE(plan.ok());
  auto ex = Executor::create(std::move(*plan));
  ASSERT_TRUE(ex.ok());
  auto buf = cpu()->allocate(32);
  ASSERT_TRUE((*ex)->bind(table, 0, *buf).ok());
  const int32_t bad_ids[3] = {0, 7, 1};
  float out[6];
  const HostInput in[] = {{ids, bad_ids, sizeof bad_ids}};
  const HostOutput o[] = {{e, out, sizeof out}};
  hal::Status s = (*ex)->run({{}, in, o});
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("id 7"));
  // The CPU names the failed command by tag (a structured detail): the node is named.
  EXPECT_THAT(s.message(), HasSubstr("executor: node 'lookup' (embedding) on cpu:0"));
  // The executor recovers: a good run afterwards works.
  const int32_t good_ids[3] = {0, 3, 1};
  const HostInput in2[] = {{ids, good_ids, sizeof good_ids}};
  EXPECT_TRUE((*ex)->run({{}, in2, o}).ok());
}

// The planner reuses memory across a transformer's layers: the arena is far below the
// sum of all intermediates and at least the live peak; decode needs less than prefill.
TEST(MemoryPlanning, ModelGraphArenaReusesAcrossLayers) {
  ModelConfig c;
  c.family = ModelFamily::kGpt2;
  c.model_type = "gpt2";
  c.vocab_size = 1000;
  c.hidden_size = 128;
  c.num_layers = 6;
  c.num_heads = 4;
  c.num_kv_heads = 4;
  c.head_dim = 32;
  c.intermediate_size = 512;
  c.max_positions = 256;
  ModelGraphShape shape;
  shape.batch = 2;
  shape.seq = 32;
  shape.cache_len = 64;
  auto prefill = build_model_graph(c, shape);
  ASSERT_TRUE(prefill.ok()) << prefill.status().to_string();
  auto plan = make_single_device_plan(prefill->graph, cpu());
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const ArenaLayout& m = plan->memory[0];
  EXPECT_GE(m.arena_bytes, m.live_peak_bytes);
  EXPECT_LT(m.arena_bytes, m.unshared_bytes / 4);
  // The largest single intermediate: the MLP's [2, 32, 512] f32 activations (x2 live:
  // c_fc output and GELU output), so the peak is at least that.
  EXPECT_GE(m.live_peak_bytes, 2u * 2 * 32 * 512 * 4);
  shape.seq = 1;
  auto decode = build_model_graph(c, shape);
  ASSERT_TRUE(decode.ok());
  auto dplan = make_single_device_plan(decode->graph, cpu());
  ASSERT_TRUE(dplan.ok());
  EXPECT_LT(dplan->peak_activation_bytes(), plan->peak_activation_bytes());
  // Node names and layers are there for placement and reports.
  const Graph& g = *prefill->graph;
  int layer3 = 0;
  for (const Node& n : g.nodes()) layer3 += n.layer == 3;
  EXPECT_GT(layer3, 10);
  EXPECT_TRUE(g.find_value("h.3.attn.qkv").has_value());
}

// Two device slots (cpu:0 twice, and cpu:0 + every other device): blocks split by
// layers, transfers between, same logits as one device.
TEST(LayerSplit, SameLogitsAsOneDevice) {
  auto model = load_model("llama-tiny");
  ASSERT_TRUE(model.ok());
  std::shared_ptr<const Model> shared(std::move(*model));
  SessionOptions one;
  one.devices = {cpu()};
  auto single = Session::create(shared, one);
  ASSERT_TRUE(single.ok()) << single.status().to_string();
  GenerationOptions go;
  go.max_new_tokens = 6;
  go.keep_logits = true;
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {9, 8, 7, 6, 5}};
  auto want = (*single)->generate(prompts, go);
  ASSERT_TRUE(want.ok()) << want.status().to_string();

  std::vector<std::vector<hal::Device*>> pairs = {{cpu(), cpu()}};
  for (const auto& td : testdevices::all_devices().list())
    if (td.device != cpu() && !td.reduced_precision) pairs.push_back({cpu(), td.device});
  for (const auto& devices : pairs) {
    SCOPED_TRACE(devices[0]->id() + "," + devices[1]->id());
    SessionOptions so;
    so.devices = devices;
    auto split = Session::create(shared, so);
    ASSERT_TRUE(split.ok()) << split.status().to_string();
    EXPECT_EQ((*split)->layer_devices(), (std::vector<int32_t>{0, 0, 1, 1}));
    auto got = (*split)->generate(prompts, go);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_EQ(got->tokens, want->tokens);
    for (size_t b = 0; b < prompts.size(); ++b)
      for (size_t i = 0; i < want->logits[b].size(); ++i)
        ASSERT_NEAR(got->logits[b][i], want->logits[b][i], 1e-4) << b << " " << i;
  }
}

// A planner passed in SessionOptions (how the scheduler plugs in) places the graphs.
TEST(LayerSplit, CustomPlannerPlacesEveryGraph) {
  auto model = load_model("gpt2-tiny");
  ASSERT_TRUE(model.ok());
  std::shared_ptr<const Model> shared(std::move(*model));
  int calls = 0;
  SessionOptions so;
  so.devices = {cpu(), cpu()};
  so.planner = [&](std::shared_ptr<const Graph> g, const std::vector<hal::Device*>& devices) {
    ++calls;
    return make_layer_split_plan(std::move(g), devices, {0, 1, 1, 1});
  };
  auto session = Session::create(shared, so);
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  EXPECT_EQ((*session)->layer_devices(), (std::vector<int32_t>{0, 1, 1, 1}));
  GenerationOptions go;
  go.max_new_tokens = 5;
  auto got = (*session)->generate({{4, 5, 6}}, go);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(calls, 3);  // prototype, prefill, decode
  SessionOptions one;
  one.devices = {cpu()};
  auto single = Session::create(shared, one);
  ASSERT_TRUE(single.ok());
  auto want = (*single)->generate({{4, 5, 6}}, go);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(got->tokens, want->tokens);
  // A planner that places on other devices is refused.
  so.planner = [&](std::shared_ptr<const Graph> g, const std::vector<hal::Device*>&) {
    return make_single_device_plan(std::move(g), cpu());
  };
  EXPECT_THAT(Session::create(shared, so).status().message(),
              HasSubstr("planner must place on the session's devices"));
}

// Transfers issued on the source device's stream (as a scheduler that gives each link a
// copy stream owned by the source would plan them) give the same answers.
TEST(LayerSplit, TransfersIssuedOnTheSourceDevice) {
  auto model = load_model("llama-tiny");
  ASSERT_TRUE(model.ok());
  std::shared_ptr<const Model> shared(std::move(*model));
  int moved = 0;
  SessionOptions so;
  so.devices = {cpu(), cpu()};
  so.planner = [&](std::shared_ptr<const Graph> g,
                   const std::vector<hal::Device*>& devices) -> hal::Result<ExecutionPlan> {
    HAL_ASSIGN_OR_RETURN(ExecutionPlan plan,
                         make_layer_split_plan(std::move(g), devices, {0, 1, 1, 1}));
    plan.event_producer.clear();
    plan.streams_per_device = {2, 1};  // device 0: compute stream 0, copy stream 1
    for (PlannedStep& st : plan.steps) {
      st.wait_events.clear();
      st.record_event = -1;
      if (plan.graph->node(st.node).kind == NodeKind::kTransfer) {
        st.issue_device = 0;
        st.stream = 1;
        ++moved;
      }
    }
    add_stream_events(plan);
    HAL_RETURN_IF_ERROR(finalize_plan(plan));
    return plan;
  };
  auto split = Session::create(shared, so);
  ASSERT_TRUE(split.ok()) << split.status().to_string();
  SessionOptions one;
  one.devices = {cpu()};
  auto single = Session::create(shared, one);
  ASSERT_TRUE(single.ok());
  GenerationOptions go;
  go.max_new_tokens = 6;
  go.keep_logits = true;
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {9, 8, 7, 6, 5}};
  auto got = (*split)->generate(prompts, go);
  auto want = (*single)->generate(prompts, go);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_TRUE(want.ok());
  EXPECT_GT(moved, 0);
  EXPECT_EQ(got->tokens, want->tokens);
  for (size_t b = 0; b < prompts.size(); ++b)
    for (size_t i = 0; i < want->logits[b].size(); ++i)
      ASSERT_NEAR(got->logits[b][i], want->logits[b][i], 1e-4);
  // Only transfers may name an issue device.
  auto g = std::make_shared<Graph>();
  ValueId x = g->add_input("x", DType::kF32, {4});
  g->mark_output(g->op("s", 0, OpKind::kScale, {x}));
  ExecutionPlan bad;
  bad.graph = g;
  bad.devices = {cpu()};
  PlannedStep step;
  step.node = 0;
  step.issue_device = 0;
  bad.steps = {step};
  EXPECT_THAT(finalize_plan(bad).message(), HasSubstr("only transfers may"));
}

// Memory reuse across streams: a root read on stream 1 and whose bytes a later root on
// stream 0 reuses makes that later writer wait for the read.
TEST(ExecutionPlanEvents, ReuseAcrossStreamsIsOrdered) {
  auto g = std::make_shared<Graph>();
  ValueId x = g->add_input("x", DType::kF32, {1024});
  ValueId a = g->op("a", 0, OpKind::kScale, {x});   // step 0, stream 0
  ValueId b = g->op("b", 0, OpKind::kScale, {a});   // step 1, stream 1: last read of a
  ValueId c = g->op("c", 0, OpKind::kScale, {b});   // step 2, stream 1
  ValueId d = g->op("d", 0, OpKind::kScale, {x});   // step 3, stream 0: may reuse a's bytes
  ValueId e = g->op("e", 0, OpKind::kAdd, {c, d});  // step 4, stream 0
  g->mark_output(e);
  ASSERT_TRUE(g->status().ok());
  ExecutionPlan plan;
  plan.graph = g;
  plan.devices = {cpu()};
  plan.streams_per_device = {2};
  const int32_t streams[5] = {0, 1, 1, 0, 0};
  for (NodeId n = 0; n < 5; ++n) {
    PlannedStep st;
    st.node = n;
    st.stream = streams[n];
    plan.steps.push_back(st);
  }
  add_stream_events(plan);
  ASSERT_TRUE(finalize_plan(plan).ok());
  // d reuses the bytes of a or b (both dead by step 3); b is only touched on stream 1
  // (written at step 1, read at step 2), a last at step 1 on stream 1.
  const ArenaLayout& m = plan.memory[0];
  const bool reuses_a = m.offsets[size_t(d)] == m.offsets[size_t(a)];
  const bool reuses_b = m.offsets[size_t(d)] == m.offsets[size_t(b)];
  ASSERT_TRUE(reuses_a || reuses_b) << "the planner should reuse memory for d";
  const int32_t last_stream1_touch = reuses_b ? 2 : 1;
  bool waits = false;
  for (int32_t ev : plan.steps[3].wait_events)
    waits |= plan.event_producer[size_t(ev)] == last_stream1_touch;
  EXPECT_TRUE(waits) << "d must wait for step " << last_stream1_touch << " on stream 1";
  auto ex = Executor::create(std::move(plan));
  ASSERT_TRUE(ex.ok());
  std::vector<float> xv(1024, 1.f), out(1024);
  const HostInput in[] = {{x, xv.data(), 4096}};
  const HostOutput o[] = {{e, out.data(), 4096}};
  ASSERT_TRUE((*ex)->run({{}, in, o}).ok());
  EXPECT_EQ(out[0], 2.f);  // c = x, d = x (scale defaults: alpha 1, beta 0)
}

TEST(LayerSplit, PlanHasTransfersEventsAndPerDeviceBindings) {
  auto model = load_model("gpt2-tiny");
  ASSERT_TRUE(model.ok());
  ModelGraphShape shape;
  shape.seq = 4;
  shape.cache_len = 16;
  auto mg = build_model_graph((*model)->config(), shape);
  ASSERT_TRUE(mg.ok());
  auto plan = make_layer_split_plan(mg->graph, {cpu(), cpu()}, {0, 0, 1, 1});
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const Graph& g = *plan->graph;
  std::vector<std::string> moved;
  for (const PlannedStep& st : plan->steps) {
    const Node& n = g.node(st.node);
    if (n.kind != NodeKind::kTransfer) continue;
    moved.push_back(g.value(n.inputs[0]).name);
    EXPECT_EQ(st.device, 1);
    // The moved value is produced on device 0 (the residual stream) or uploaded there
    // (kv_lengths, which every attention reads).
    EXPECT_EQ(plan->value_device[size_t(n.inputs[0])], 0);
    if (g.value(n.inputs[0]).producer != kNoNode) {
      EXPECT_FALSE(st.wait_events.empty()) << n.name;  // waits for its producer on device 0
    }
  }
  std::sort(moved.begin(), moved.end());
  EXPECT_EQ(moved, (std::vector<std::string>{"h.1.mlp.residual", "kv_lengths"}));
  // Layer 3's weights are bound on device 1 only; wte (read by the embedding) on 0.
  bool h3_on_1 = false, wte_on_0 = false;
  for (const RequiredBinding& b : plan->required_bindings) {
    const std::string& name = g.value(b.value).name;
    if (name == "h.3.mlp.c_fc.weight") h3_on_1 = b.device == 1;
    if (name == "wte.weight") wte_on_0 |= b.device == 0;
  }
  EXPECT_TRUE(h3_on_1);
  EXPECT_TRUE(wte_on_0);
  // The original graph is untouched.
  for (const Node& n : mg->graph->nodes()) EXPECT_NE(n.kind, NodeKind::kTransfer);
}

}  // namespace
