// Whole-graph offload in the runtime (hal/runtime/compiled_units.h): the same models
// compiled and op by op give the same logits bit for bit on cpu:0 and the simulated NPU
// (whose compiled numerics are its op-by-op ones), batches of unequal prompts included;
// plans keep unit-internal values out of the arena; a device fault inside an executable
// names the graph node and fused group; a 1.1 plugin is declined with its reason and runs
// op by op; strict placement refuses that; the cache hits, refuses a modified entry and
// compiles again, and an artifact directory refuses a missing or modified executable.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "hal/platform.h"
#include "hal/runtime/compiled_units.h"
#include "hal/runtime/forecast.h"
#include "hal/runtime/model.h"
#include "hal/runtime/scheduled_plan.h"
#include "hal/runtime/session.h"

namespace hal::runtime {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<Platform> platform(const std::string& npu_faults = "") {
  PlatformOptions o;
  if (!npu_faults.empty()) o.plugin_options["npu_sim"] = {{"faults", npu_faults}};
  auto p = Platform::create(o);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(*p) : nullptr;
}

struct Generated {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::vector<float>> logits;
  uint64_t decode_activation_bytes = 0;
  double decode_device_seconds = 0;
};

Result<Generated> generate(Device* device, const std::string& model, bool compile,
                           const std::vector<std::vector<int32_t>>& prompts,
                           std::shared_ptr<ExecutableCache> cache = nullptr) {
  HAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> m, load_model(model));
  SessionOptions so;
  so.devices = {device};
  so.compile.enabled = compile;
  so.compile.cache = std::move(cache);
  HAL_ASSIGN_OR_RETURN(std::unique_ptr<Session> s, Session::create(std::move(m), so));
  GenerationOptions go;
  go.max_new_tokens = 6;
  go.keep_logits = true;
  HAL_ASSIGN_OR_RETURN(GenerationResult r, s->generate(prompts, go));
  return Generated{r.tokens, r.logits, r.decode_activation_bytes, r.decode_device_seconds};
}

class CompiledRun : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(CompiledRun, GivesTheOpByOpLogitsBitForBit) {
  auto p = platform();
  ASSERT_NE(p, nullptr);
  const auto& [device_id, model] = GetParam();
  auto d = p->device(device_id);
  if (!d.ok()) GTEST_SKIP() << device_id << " is not built: " << d.status().to_string();
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3, 4, 5}, {7, 8}};
  auto op = generate(*d, model, false, prompts);
  ASSERT_TRUE(op.ok()) << op.status().to_string();
  auto compiled = generate(*d, model, true, prompts);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
  EXPECT_EQ(compiled->tokens, op->tokens);
  ASSERT_EQ(compiled->logits.size(), op->logits.size());
  for (size_t b = 0; b < op->logits.size(); ++b)
    EXPECT_TRUE(compiled->logits[b] == op->logits[b]) << "row " << b << " differs";
  // Values inside the compiled units take no arena memory.
  EXPECT_LE(compiled->decode_activation_bytes, op->decode_activation_bytes);
  // On the simulator the executable's time is the compiled plan's: fewer command
  // overheads, activations on chip.
  if (device_id.rfind("npu", 0) == 0) {
    EXPECT_LT(compiled->decode_device_seconds, op->decode_device_seconds);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CompiledRun,
                         ::testing::Combine(::testing::Values("cpu:0", "npu:0"),
                                            ::testing::Values("gpt2-tiny", "llama-tiny")));

// A plan of gpt2-tiny on one device, op by op.
Result<ExecutionPlan> tiny_plan(Device* device, int64_t batch, int64_t seq) {
  HAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> m, load_model("gpt2-tiny"));
  ModelGraphShape shape;
  shape.batch = batch;
  shape.seq = seq;
  shape.cache_len = 64;
  HAL_ASSIGN_OR_RETURN(ModelGraph mg, build_model_graph(m->config(), shape));
  return make_single_device_plan(mg.graph, device);
}

TEST(CompiledUnits, APlanBecomesUnitsOfConsecutiveStepsWithGroupsAndSymbols) {
  auto p = platform();
  ASSERT_NE(p, nullptr);
  auto d = p->device("npu:0");
  if (!d.ok()) GTEST_SKIP() << "no npu_sim";
  auto plan = tiny_plan(*d, 2, 1);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const uint64_t op_arena = plan->memory[0].arena_bytes;
  CompileSettings cs;
  cs.enabled = true;
  CompileReport report;
  ASSERT_TRUE(compile_plan_units(*plan, cs, &report).ok());
  ASSERT_EQ(plan->units.size(), 1u);  // the simulator runs every op of the model
  EXPECT_TRUE(report.declined.empty());
  const CompiledUnit& u = plan->units[0];
  EXPECT_LT(plan->memory[0].arena_bytes, op_arena);
  // Symbols: each row's write position and the longest kv length, with their ranges.
  ASSERT_EQ(u.symbols.size(), 3u);
  const GraphView& view = u.executable->view();
  for (const GraphSymbol& s : view.symbols) EXPECT_LE(s.max_value, 64) << s.name;
  // Groups cover every view node once; names say what was fused.
  std::vector<int> seen(view.nodes.size(), 0);
  bool norm_into_matmul = false;
  for (const FusedGroupInfo& g : u.info.groups) {
    for (int32_t n : g.nodes) ++seen[size_t(n)];
    norm_into_matmul |= g.name.find("layer_norm+matmul") != std::string::npos;
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  EXPECT_TRUE(norm_into_matmul);
  // A second finalize keeps it valid (the plan is consistent).
  EXPECT_TRUE(finalize_plan(*plan).ok());
}

TEST(CompiledUnits, AFaultInsideAnExecutableNamesTheNodeAndGroup) {
  // Op 40 of the device: inside the compiled prefill (every node is admitted as an op).
  auto p = platform("npu:0:ecc@op=40");
  ASSERT_NE(p, nullptr);
  auto d = p->device("npu:0");
  if (!d.ok()) GTEST_SKIP() << "no npu_sim";
  auto r = generate(*d, "gpt2-tiny", true, {{1, 2, 3}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().to_string();
  const std::string m = r.status().message();
  EXPECT_NE(m.find("compiled unit"), std::string::npos) << m;
  EXPECT_NE(m.find("fused group"), std::string::npos) << m;
  EXPECT_NE(m.find("node '"), std::string::npos) << m;
}

// A graph of two scale ops on one device.
Result<ExecutionPlan> scale_plan(Device* device, std::shared_ptr<Graph>* out) {
  auto g = std::make_shared<Graph>();
  const ValueId x = g->add_input("x", DType::kF32, {8});
  OpAttributes a;
  a.alpha = 2.0f;
  const ValueId y = g->op("double", -1, OpKind::kScale, {x}, a);
  a.alpha = 0.5f;
  a.beta = 1.0f;
  const ValueId z = g->op("half_plus_one", -1, OpKind::kScale, {y}, a);
  g->mark_output(z);
  HAL_RETURN_IF_ERROR(g->status());
  *out = g;
  return make_single_device_plan(g, device);
}

TEST(CompiledUnits, APlugin1_1IsDeclinedWithItsReasonAndRunsOpByOpUnlessStrict) {
  PlatformOptions o;
  o.plugin_paths = {std::string(HAL_FIXTURE_DIR) + "/libhal_plugin_fixture_minor_1_1.so"};
  o.use_env_plugin_path = false;
  o.use_default_plugin_dir = false;
  auto p = Platform::create(o);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  auto d = (*p)->device("fx:0");
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  std::shared_ptr<Graph> g;
  auto plan = scale_plan(*d, &g);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  CompileSettings cs;
  cs.enabled = true;
  CompileReport report;
  ASSERT_TRUE(compile_plan_units(*plan, cs, &report).ok());
  EXPECT_TRUE(plan->units.empty());
  ASSERT_EQ(report.declined.size(), 2u);
  EXPECT_NE(report.declined[0].reason.find("ABI 1.1"), std::string::npos)
      << report.declined[0].reason;
  // Op by op, the right numbers.
  auto ex = Executor::create(std::move(*plan));
  ASSERT_TRUE(ex.ok()) << ex.status().to_string();
  const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  float z[8] = {};
  const HostInput in[] = {{*g->find_value("x"), x, sizeof x}};
  const HostOutput outs[] = {{g->outputs()[0], z, sizeof z}};
  ASSERT_TRUE((*ex)->run({{}, in, outs}).ok());
  for (int i = 0; i < 8; ++i) EXPECT_EQ(z[i], x[i] + 1.0f);
  // Strict: a node run op by op is an error naming it and why.
  auto strict_plan = scale_plan(*d, &g);
  ASSERT_TRUE(strict_plan.ok());
  cs.strict = true;
  Status s = compile_plan_units(*strict_plan, cs);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("'double'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("no compiler"), std::string::npos) << s.message();
}

TEST(ExecutableCache, HitsRefusesAModifiedEntryAndCompilesAgain) {
  auto p = platform();
  ASSERT_NE(p, nullptr);
  auto d = p->device("npu:0");
  if (!d.ok()) GTEST_SKIP() << "no npu_sim";
  const fs::path dir = fs::temp_directory_path() / ("hal_cache_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto cache = std::make_shared<ExecutableCache>(dir.string());
  auto plan = tiny_plan(*d, 1, 1);
  ASSERT_TRUE(plan.ok());
  auto compile_with = [&](std::shared_ptr<ExecutableCache> c) {
    auto fresh = tiny_plan(*d, 1, 1);
    EXPECT_TRUE(fresh.ok());
    CompileSettings cs;
    cs.enabled = true;
    cs.cache = std::move(c);
    CompileReport report;
    Status s = compile_plan_units(*fresh, cs, &report);
    return std::make_tuple(s, fresh->units.empty() ? std::string() : fresh->units[0].source,
                           report.notes, fresh->units.empty() ? "" : fresh->units[0].entry);
  };
  auto [s1, source1, notes1, entry] = compile_with(cache);
  ASSERT_TRUE(s1.ok()) << s1.to_string();
  EXPECT_EQ(source1, "compiled");
  ASSERT_TRUE(fs::exists(dir / entry));
  auto [s2, source2, notes2, entry2] = compile_with(cache);
  EXPECT_EQ(source2, "cache hit");
  // A byte changed in the entry: the device refuses it, it is compiled and written again.
  {
    std::fstream f(dir / entry, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('\x7f');
  }
  auto [s3, source3, notes3, entry3] = compile_with(cache);
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(source3, "refused blob, compiled");
  ASSERT_EQ(notes3.size(), 1u);
  EXPECT_NE(notes3[0].find("checksum"), std::string::npos) << notes3[0];
  auto [s4, source4, notes4, entry4] = compile_with(cache);
  EXPECT_EQ(source4, "cache hit");
  // As artifacts: an entry that is not there is an error naming the file.
  auto artifacts = std::make_shared<ExecutableCache>((dir / "empty").string(),
                                                     ExecutableCache::Mode::kArtifacts);
  auto [s5, source5, notes5, entry5] = compile_with(artifacts);
  EXPECT_EQ(s5.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s5.message().find("no compiled executable"), std::string::npos) << s5.message();
  fs::remove_all(dir);
}

// halctl plan and halctl run's planner place and time graphs through the same builder,
// timers and compiler: for the same graphs at the same run-time integers they predict the
// same times, op by op and compiled.
TEST(PlanAndRun, PredictTheSameTimesForTheSameGraphs) {
  auto p = platform();
  ASSERT_NE(p, nullptr);
  auto npu = p->device("npu:0");
  if (!npu.ok()) GTEST_SKIP() << "no npu_sim";
  auto m = load_model("gpt2-tiny");
  ASSERT_TRUE(m.ok());
  const int64_t prompt = 8, new_tokens = 56, cache = prompt + new_tokens;
  for (bool compile : {false, true}) {
    ForecastRequest req;
    req.config = (*m)->config();
    req.model_name = "gpt2-tiny";
    req.prompt_len = prompt;
    req.max_new_tokens = new_tokens;
    req.calibration.load = false;
    req.compile.enabled = compile;
    PlanDevice pd;
    pd.info = (*npu)->info();
    pd.supports = [d = *npu](const OpSpec& s) { return d->supports(s); };
    pd.timer = simulated_op_timer(**npu);
    pd.timing_source = "npu_sim timing-only execution";
    pd.device = *npu;
    auto plan = forecast_model(req, {pd});
    ASSERT_TRUE(plan.ok()) << plan.status().to_string();
    EXPECT_EQ(plan->compiled, compile);

    SchedulingOptions so;
    so.calibration.load = false;
    so.compile.enabled = compile;
    so.timers = {simulated_op_timer(**npu)};
    auto planner = ScheduledPlanBuilder::create({*npu}, so);
    ASSERT_TRUE(planner.ok()) << planner.status().to_string();
    auto predicted = [&](int64_t seq, int64_t past, int64_t kv) -> double {
      ModelGraphShape shape;
      shape.seq = seq;
      shape.cache_len = cache;
      shape.logits_at = LogitsAt::kLast;
      shape.compute_dtype = DType::kBF16;
      auto mg = build_model_graph((*m)->config(), shape);
      EXPECT_TRUE(mg.ok());
      auto ep = (*planner)->plan(mg->graph, {*npu});
      EXPECT_TRUE(ep.ok()) << ep.status().to_string();
      EXPECT_EQ(!ep->units.empty(), compile);
      std::vector<int64_t> symbols;
      for (const std::string& name : mg->graph->symbols())
        symbols.push_back(name.rfind("past.", 0) == 0 ? past : kv);
      auto t = (*planner)->predict(*ep, symbols);
      EXPECT_TRUE(t.ok()) << t.status().to_string();
      return t.ok() ? *t : 0.0;
    };
    const int64_t ctx = plan->decode.context;
    const double decode = predicted(1, ctx - 1, ctx);
    const double prefill = predicted(prompt, 0, prompt);
    EXPECT_NEAR(plan->decode.seconds, decode, 1e-9 * decode) << "compile " << compile;
    EXPECT_NEAR(plan->prefill.seconds, prefill, 1e-9 * prefill) << "compile " << compile;
  }
}

}  // namespace
}  // namespace hal::runtime
