// The scheduler as the session's planner: graphs as task graphs (KV-cache writers kept
// with their readers), plans across cpu:0 and the NPU simulator (exact fp32 mode, so
// tokens must equal a single device's), placement pins, capacity splits, fallbacks and
// strict placement; the profiled timeline and the report built from it (HBM bytes per
// decode token against the weights placed, trace and roofline well formed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "hal/platform.h"
#include "hal/runtime/model.h"
#include "hal/runtime/model_graph.h"
#include "hal/runtime/run_report.h"
#include "hal/runtime/scheduled_plan.h"
#include "hal/runtime/session.h"

namespace {

using namespace hal::runtime;
using ::testing::HasSubstr;

// cpu:0 and npu:0, the simulator in its exact fp32 mode.
struct Devices {
  std::unique_ptr<hal::Platform> platform;
  hal::Device* cpu = nullptr;
  hal::Device* npu = nullptr;
  Devices() {
    hal::PlatformOptions o;
    o.plugin_options["npu_sim"] = {{"compute_precision", "fp32"}};
    auto p = hal::Platform::create(o);
    if (!p.ok()) return;
    platform = std::move(*p);
    if (auto c = platform->device("cpu:0"); c.ok()) cpu = *c;
    if (auto n = platform->device("npu:0"); n.ok()) npu = *n;
  }
};

Devices& devices() {
  static Devices* d = new Devices();  // outlives every session
  return *d;
}

#define NEED_DEVICES() \
  if (!devices().cpu || !devices().npu) GTEST_SKIP() << "needs cpu:0 and the NPU simulator"

std::shared_ptr<const Model> model(const std::string& name) {
  auto m = load_model(name);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return std::shared_ptr<const Model>(std::move(*m));
}

struct RunOut {
  std::vector<std::vector<int32_t>> tokens;
  GenerationResult result;
  std::shared_ptr<ScheduledPlanBuilder> planner;
  std::vector<int32_t> layer_devices;
  std::vector<hal::Device*> devs;
};

hal::Result<RunOut> run(const std::string& name, std::vector<hal::Device*> devs,
                        const SchedulingOptions* scheduling, bool profile = false,
                        int64_t new_tokens = 6) {
  RunOut out;
  out.devs = devs;
  SessionOptions so;
  so.devices = devs;
  so.profile = profile;
  if (scheduling) {
    HAL_ASSIGN_OR_RETURN(out.planner, ScheduledPlanBuilder::create(devs, *scheduling));
    so.planner = out.planner->planner();
  }
  HAL_ASSIGN_OR_RETURN(auto session, Session::create(model(name), so));
  GenerationOptions go;
  go.max_new_tokens = new_tokens;
  HAL_ASSIGN_OR_RETURN(out.result, session->generate({{3, 1, 4, 1, 5, 9, 2, 6}, {5, 3, 5}}, go));
  out.tokens = out.result.tokens;
  out.layer_devices = session->layer_devices();
  return out;
}

// The report input of a run made by run() (its runs stay owned by `out`).
RunReportInput report_input(const RunOut& out, const std::string& model) {
  RunReportInput in;
  in.model = model;
  in.devices = out.devs;
  in.runs = out.result.runs;
  in.planner = out.planner.get();
  return in;
}

TEST(GraphTasks, KvCacheWritersRunWithTheAttentionThatReadsThem) {
  auto m = model("gpt2-tiny");
  ModelGraphShape shape;
  shape.cache_len = 64;
  auto mg = build_model_graph(m->config(), shape);
  ASSERT_TRUE(mg.ok());
  auto tasks = build_graph_tasks(*mg->graph);
  ASSERT_TRUE(tasks.ok()) << tasks.status().to_string();
  const Graph& g = *mg->graph;
  size_t work_nodes = 0;
  for (size_t n = 0; n < g.nodes().size(); ++n) {
    const bool view = is_view_kind(g.node(NodeId(n)).kind);
    work_nodes += view ? 0 : 1;
    EXPECT_EQ(tasks->task_of_node[n] == hal::scheduler::kNoTask, view) << g.node(NodeId(n)).name;
  }
  // Each layer's two cache writes join its attention: two tasks fewer per layer.
  EXPECT_EQ(tasks->tasks.task_count(), work_nodes - 2 * size_t(m->config().num_layers));
  // Every state is touched by exactly one task, and that task holds the attention.
  std::map<ValueId, std::set<int32_t>> state_tasks;
  for (size_t t = 0; t < tasks->nodes_of_task.size(); ++t)
    for (ValueId s : tasks->states_of_task[t]) state_tasks[s].insert(int32_t(t));
  EXPECT_EQ(state_tasks.size(), 2 * size_t(m->config().num_layers));
  for (const auto& [s, ts] : state_tasks) {
    ASSERT_EQ(ts.size(), 1u) << g.value(s).name;
    bool has_attention = false;
    for (NodeId n : tasks->nodes_of_task[size_t(*ts.begin())])
      has_attention |= g.node(n).op == hal::OpKind::kAttention;
    EXPECT_TRUE(has_attention) << g.value(s).name;
  }
  // Costs: every task costs something on each device and a transfer edge moves bytes.
  EXPECT_GT(tasks->tasks.edge_count(), 0u);
  for (const auto& e : tasks->tasks.edges()) EXPECT_GT(e.bytes, 0);
}

class ScheduledRun : public ::testing::TestWithParam<std::string> {};

TEST_P(ScheduledRun, TwoDevicesGiveTheSingleDeviceTokens) {
  NEED_DEVICES();
  auto single = run(GetParam(), {devices().cpu}, nullptr);
  ASSERT_TRUE(single.ok()) << single.status().to_string();
  SchedulingOptions so;  // auto
  auto both = run(GetParam(), {devices().cpu, devices().npu}, &so);
  ASSERT_TRUE(both.ok()) << both.status().to_string();
  EXPECT_EQ(both->tokens, single->tokens);
  ASSERT_FALSE(both->planner->scheduled().empty());
  EXPECT_GT(both->planner->scheduled().front().predicted_makespan_s, 0);
  // The first (unpinned) placement crosses devices only when that beats everything on
  // the fastest device by >= 1% (min_gain); later graphs follow its pins.
  const ScheduledGraph& first = both->planner->scheduled().front();
  if (first.transfers > 0) {
    for (const auto& c : first.candidates) {
      if (c.algorithm == hal::scheduler::Algorithm::kAllOnFastest) {
        EXPECT_LE(first.predicted_makespan_s, 0.99 * c.makespan);
      }
    }
  }
}

TEST_P(ScheduledRun, PinnedSplitMovesDataBetweenDevicesAndKeepsTheTokens) {
  NEED_DEVICES();
  auto single = run(GetParam(), {devices().cpu}, nullptr);
  ASSERT_TRUE(single.ok()) << single.status().to_string();
  // Layer 0 on the NPU, everything else (embeddings, later layers, head) on the CPU:
  // the residual stream crosses twice each step.
  SchedulingOptions so;
  so.placement = "layers=0:npu:0;rest=cpu:0";
  auto split = run(GetParam(), {devices().cpu, devices().npu}, &so, /*profile=*/true);
  ASSERT_TRUE(split.ok()) << split.status().to_string();
  EXPECT_EQ(split->tokens, single->tokens);
  ASSERT_GE(split->layer_devices.size(), 2u);
  EXPECT_EQ(split->layer_devices[0], 1);
  EXPECT_EQ(split->layer_devices[1], 0);
  // The timeline has work on both devices and transfers between them.
  bool transfers = false;
  std::set<int32_t> busy;
  for (const ProfiledRun& r : split->result.runs)
    for (const TimelineEntry& e : r.timeline.entries) {
      if (e.kind == TimelineEntry::Kind::kOp) busy.insert(e.device);
      transfers |= e.kind == TimelineEntry::Kind::kTransfer;
    }
  EXPECT_EQ(busy, (std::set<int32_t>{0, 1}));
  EXPECT_TRUE(transfers);
}

INSTANTIATE_TEST_SUITE_P(Models, ScheduledRun, ::testing::Values("gpt2-tiny", "llama-tiny"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// Fixed figures for the cost model, so its decisions do not depend on how fast this
// machine measured today: the CPU's measured bandwidth, launch overhead and links and its
// peak from the CPU model are replaced; the simulator's figures are presets already. No
// stored calibration is read.
SchedulingOptions fixed_figures(const std::vector<hal::Device*>& devs) {
  SchedulingOptions so;
  so.calibration.load = false;
  for (hal::Device* d : devs) {
    hal::DeviceInfo info = d->info();
    if (info.kind == hal::DeviceKind::kCpu) {
      info.memory_bandwidth_bytes_per_s = 20e9;
      info.peak_flops = {
          {hal::DType::kF32, 2e11}, {hal::DType::kF16, 2e11}, {hal::DType::kBF16, 2e11}};
      info.launch_overhead_s = 5e-6;
      for (hal::LinkInfo& l : info.links) {
        l.bandwidth_bytes_per_s = 20e9;
        l.latency_s = 5e-6;
      }
    }
    so.device_figures.push_back(info);
  }
  return so;
}

TEST(ScheduledRunCapacity, AModelTooBigForOneDeviceIsSplitByLayers) {
  NEED_DEVICES();
  const std::vector<hal::Device*> both = {devices().cpu, devices().npu};
  // What the whole model needs on one device (weights, KV caches, activations), from a
  // plan with room everywhere.
  SchedulingOptions roomy = fixed_figures(both);
  roomy.placement = "rest=cpu:0";
  auto single = run("gpt2-tiny", both, &roomy);
  ASSERT_TRUE(single.ok()) << single.status().to_string();
  const hal::scheduler::DeviceMemory& whole = single->planner->scheduled().front().memory[0];
  ASSERT_GT(whole.weights_bytes, 0u);
  // Each device may hold all of it but 30% of the weights: neither holds the model, both
  // together do, so the scheduler must split it whatever the devices' speeds.
  SchedulingOptions so = fixed_figures(both);
  const uint64_t capacity = whole.peak_bytes() - whole.weights_bytes * 3 / 10;
  so.capacity_bytes = {capacity, capacity};
  auto split = run("gpt2-tiny", both, &so);
  ASSERT_TRUE(split.ok()) << split.status().to_string();
  EXPECT_EQ(split->tokens, single->tokens);
  std::set<int32_t> used(split->layer_devices.begin(), split->layer_devices.end());
  EXPECT_EQ(used.size(), 2u) << "layers on one device only";
  for (const hal::scheduler::DeviceMemory& mem : split->planner->scheduled().front().memory)
    EXPECT_LE(mem.peak_bytes(), capacity);
  // Too little everywhere: a clear error naming the capacity problem.
  so.capacity_bytes = {whole.weights_bytes / 4, whole.weights_bytes / 4};
  auto none = run("gpt2-tiny", both, &so);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), hal::StatusCode::kOutOfMemory) << none.status().to_string();
}

TEST(ScheduledRunCapacity, FixedFiguresMakeTheSameDecisionsWhateverTheMachineMeasured) {
  NEED_DEVICES();
  const std::vector<hal::Device*> both = {devices().cpu, devices().npu};
  // The planner's cost model sees the fixed figures, not the devices' own.
  SchedulingOptions so = fixed_figures(both);
  auto planner = ScheduledPlanBuilder::create(both, so);
  ASSERT_TRUE(planner.ok()) << planner.status().to_string();
  EXPECT_EQ((*planner)->cost_model().device(0).info().memory_bandwidth_bytes_per_s, 20e9);
  EXPECT_EQ((*planner)->cost_model().device(0).launch_overhead_s(), 5e-6);
  EXPECT_FALSE((*planner)->cost_model().device(0).calibration().has_value());
  // A figure list that does not match the devices is refused.
  so.device_figures.pop_back();
  auto bad = ScheduledPlanBuilder::create(both, so);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("1 device figures for 2 devices"));
}

TEST(ScheduledRunFallback, UnsupportedOpsFallBackWithReasonOrFailWhenStrict) {
  NEED_DEVICES();
  auto single = run("gpt2-tiny", {devices().cpu}, nullptr);
  ASSERT_TRUE(single.ok());
  // Everything pinned to the NPU, which (here) lacks layer norm.
  SchedulingOptions so;
  so.placement = "rest=npu:0";
  so.supports = [](const hal::Device& d, const hal::OpSpec& spec) {
    return d.id() != "npu:0" || spec.kind != hal::OpKind::kLayerNorm;
  };
  auto fb = run("gpt2-tiny", {devices().cpu, devices().npu}, &so);
  ASSERT_TRUE(fb.ok()) << fb.status().to_string();
  EXPECT_EQ(fb->tokens, single->tokens);
  const auto& fallbacks = fb->planner->scheduled().front().fallbacks;
  // gpt2: two norms per layer and the final one.
  EXPECT_EQ(fallbacks.size(), 2 * size_t(model("gpt2-tiny")->config().num_layers) + 1);
  for (const PlacementFallback& f : fallbacks) {
    EXPECT_EQ(f.op, "layer_norm") << f.node;
    EXPECT_EQ(f.preferred_device, 1);
    EXPECT_EQ(f.chosen_device, 0);
    EXPECT_THAT(f.reason, HasSubstr("npu:0"));
    EXPECT_GE(f.cost_s, 0);
  }
  so.strict_placement = true;
  auto strict = run("gpt2-tiny", {devices().cpu, devices().npu}, &so);
  ASSERT_FALSE(strict.ok());
  EXPECT_THAT(strict.status().message(), HasSubstr("strict placement"));
  EXPECT_THAT(strict.status().message(), HasSubstr("npu:0"));
}

TEST(ScheduledRunPlacement, BadPlacementIsAClearError) {
  NEED_DEVICES();
  SchedulingOptions so;
  so.placement = "layers=0-x:npu:0";
  auto p = ScheduledPlanBuilder::create({devices().cpu, devices().npu}, so);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("layers=0-x:npu:0"));
  so.placement = "layers=0-1:gpu:7";
  auto bad_device = run("gpt2-tiny", {devices().cpu, devices().npu}, &so);
  ASSERT_FALSE(bad_device.ok());
  EXPECT_THAT(bad_device.status().message(), HasSubstr("gpu:7"));
}

// The timeline respects the plan: every step starts after the steps it depends on end.
TEST(Timeline, StepsStartAfterTheirDependencies) {
  NEED_DEVICES();
  SchedulingOptions so;
  so.placement = "layers=0:npu:0;rest=cpu:0";
  auto r = run("gpt2-tiny", {devices().cpu, devices().npu}, &so, true, 3);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->result.runs.size(), 3u);  // prefill + 2 decode steps
  for (const ProfiledRun& run : r->result.runs) {
    const Graph& g = *run.graph;
    std::map<NodeId, const TimelineEntry*> at;
    for (const TimelineEntry& e : run.timeline.entries)
      if (e.node != kNoNode) at[e.node] = &e;
    size_t checked = 0;
    for (auto [from, to] : g.dependencies()) {
      if (!at.count(from) || !at.count(to)) continue;
      EXPECT_GE(at[to]->start_s, at[from]->end_s - 1e-12)
          << g.node(from).name << " -> " << g.node(to).name;
      ++checked;
    }
    EXPECT_GT(checked, 10u);
    for (const TimelineEntry& e : run.timeline.entries) {
      EXPECT_LE(e.start_s, e.end_s);
      EXPECT_LE(e.end_s, run.timeline.makespan_s + 1e-12);
      if (e.kind == TimelineEntry::Kind::kOp) {
        EXPECT_GT(e.commands, 0) << g.node(e.node).name;
      }
      if (e.kind == TimelineEntry::Kind::kTransfer) {
        EXPECT_EQ(e.commands, 2) << g.node(e.node).name;  // staged: out of one, into the other
        EXPECT_TRUE(e.measured);
        EXPECT_NE(e.peer, e.device);
      }
    }
    EXPECT_GT(run.timeline.busy_seconds(0), 0);
    EXPECT_GT(run.timeline.busy_seconds(1), 0);
  }
}

TEST(RunReport, DecodeBytesPerTokenCoverTheWeightsWithoutInflation) {
  NEED_DEVICES();
  SchedulingOptions so;
  so.placement = "layers=0:npu:0;rest=cpu:0";
  const std::vector<hal::Device*> devs = {devices().cpu, devices().npu};
  auto planner = ScheduledPlanBuilder::create(devs, so);
  ASSERT_TRUE(planner.ok());
  SessionOptions opts;
  opts.devices = devs;
  opts.profile = true;
  opts.planner = (*planner)->planner();
  auto session = Session::create(model("gpt2-tiny"), opts);
  ASSERT_TRUE(session.ok()) << session.status().to_string();
  GenerationOptions go;
  go.max_new_tokens = 8;
  auto result = (*session)->generate({{1, 2, 3, 4}}, go);  // batch 1: a token per step
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  RunReportInput in;
  in.model = "gpt2-tiny";
  in.devices = devs;
  in.runs = result->runs;
  in.planner = planner->get();
  const RunReport rep = build_run_report(in);
  EXPECT_EQ(rep.decode_tokens, 7);
  ASSERT_EQ(rep.devices.size(), 2u);
  uint64_t placed = 0;
  for (const DeviceReport& d : rep.devices) {
    SCOPED_TRACE(d.id);
    EXPECT_GT(d.decode_weight_bytes, 0u);
    placed += d.decode_weight_bytes;
    // The physical minimum: every weight held here is read once per token (embedding
    // tables only gathered: a row per token) ...
    EXPECT_GT(d.decode_streamed_weight_bytes, 0u);
    EXPECT_LE(d.decode_streamed_weight_bytes, d.decode_weight_bytes);
    EXPECT_GE(d.decode_hbm_bytes_per_token, double(d.decode_streamed_weight_bytes));
    // ... and not much more: weights once, the KV cache at most once, small activations.
    EXPECT_LE(d.decode_hbm_bytes_per_token,
              1.5 * double(d.decode_weight_bytes) + double(d.decode_kv_cache_bytes));
    EXPECT_GT(d.total.busy_s, 0);
    EXPECT_GT(d.total.flops, 0);
    EXPECT_FALSE(d.op_classes.empty());
    for (const WorkStats& c : d.op_classes)
      EXPECT_TRUE(c.bound == "memory" || c.bound == "compute");
    EXPECT_LE(d.peak_memory_bytes, d.capacity_bytes);
  }
  EXPECT_EQ(placed, (*session)->weight_bytes());
  ASSERT_FALSE(rep.transfers.empty());
  for (const TransferReport& t : rep.transfers) {
    EXPECT_GT(t.bytes, 0u);
    EXPECT_GT(t.seconds, 0);
    // Issued on the source's copy stream: device-to-host and host-to-device, both recorded.
    EXPECT_TRUE(t.measured) << t.from << " -> " << t.to;
  }
  ASSERT_EQ(rep.phases.size(), 2u);
  EXPECT_EQ(rep.phases[0].name, "prefill");
  EXPECT_EQ(rep.phases[1].name, "decode");
  EXPECT_EQ(rep.phases[1].runs, 7);
  for (const PhaseReport& p : rep.phases) {
    EXPECT_GT(p.predicted_makespan_s, 0);
    EXPECT_GT(p.measured_makespan_s, 0);
  }

  // JSON round trip.
  auto back = parse_run_report(run_report_to_json(rep), "test");
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->devices.size(), 2u);
  EXPECT_EQ(back->devices[1].op_classes.size(), rep.devices[1].op_classes.size());
  EXPECT_DOUBLE_EQ(back->devices[0].decode_hbm_bytes_per_token,
                   rep.devices[0].decode_hbm_bytes_per_token);
  EXPECT_EQ(back->phases.size(), 2u);
  auto broken = parse_run_report(R"({"format": "hal-run-report", "model": "m"})", "r.json");
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(broken.status().message(), HasSubstr("r.json"));

  // Trace: valid JSON, a process per device, ops on both, transfers on their own track.
  auto trace = nlohmann::json::parse(chrome_trace_json(devs, result->runs), nullptr, false);
  ASSERT_FALSE(trace.is_discarded());
  std::set<int> process_names, pids_with_ops;
  bool transfer_track = false;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_name") process_names.insert(e["pid"].get<int>());
    if (e["ph"] == "M" && e["name"] == "thread_name" &&
        e["args"]["name"].get<std::string>().rfind("transfers->", 0) == 0)
      transfer_track = true;
    if (e["ph"] == "X") {
      EXPECT_GE(e["dur"].get<double>(), 0);
      pids_with_ops.insert(e["pid"].get<int>());
    }
  }
  EXPECT_EQ(process_names, (std::set<int>{1, 2}));
  EXPECT_EQ(pids_with_ops, (std::set<int>{1, 2}));
  EXPECT_TRUE(transfer_track);

  // Roofline: one point per op class of each device, and balanced tags.
  const std::string svg = roofline_svg(rep);
  size_t points = 0, expected = 0;
  for (size_t at = svg.find("<circle class=\"op\""); at != std::string::npos;
       at = svg.find("<circle class=\"op\"", at + 1))
    ++points;
  for (const DeviceReport& d : rep.devices) expected += d.op_classes.size();
  EXPECT_EQ(points, expected);
  EXPECT_NE(svg.find("data-op=\"matmul\""), std::string::npos);
  EXPECT_EQ(svg.rfind("</svg>"), svg.size() - 7);
}

// Predicted beside measured, per op class and phase: on one device the phase's predicted
// makespan is the sum of its ops' predictions (the scheduler's plan with each attention
// at the kv length the run used), every op class has both figures, and the JSON keeps
// them. Fixed figures: the predictions do not depend on this machine.
TEST(RunReport, PredictedBesideMeasuredPerOpClassAndPhase) {
  NEED_DEVICES();
  const std::vector<hal::Device*> devs = {devices().cpu};
  SchedulingOptions so = fixed_figures(devs);
  auto out = run("llama-tiny", devs, &so, /*profile=*/true, /*new_tokens=*/5);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const RunReportInput in = report_input(*out, "llama-tiny");
  const RunReport rep = build_run_report(in);
  ASSERT_EQ(rep.phases.size(), 2u);
  for (const PhaseReport& p : rep.phases) {
    SCOPED_TRACE(p.name);
    ASSERT_FALSE(p.op_classes.empty());
    double predicted = 0;
    std::set<std::string> names;
    for (const WorkStats& c : p.op_classes) {
      EXPECT_GT(c.predicted_s, 0) << c.name;
      EXPECT_GT(c.busy_s, 0) << c.name;
      EXPECT_GT(c.commands, 0) << c.name;
      EXPECT_DOUBLE_EQ(c.prediction_error(), c.predicted_s / c.busy_s - 1);
      predicted += c.predicted_s;
      names.insert(c.name);
    }
    for (const char* op : {"matmul", "attention", "rms_norm", "rotary"})
      EXPECT_TRUE(names.count(op)) << op;
    EXPECT_NEAR(predicted / double(p.runs), p.predicted_makespan_s, 1e-9 * p.predicted_makespan_s);
    // The text form has a line per op class with the error.
    const std::string text = phase_prediction_text(p);
    EXPECT_THAT(text, HasSubstr("predicted"));
    EXPECT_THAT(text, HasSubstr("matmul"));
    EXPECT_THAT(text, HasSubstr("%"));
  }
  // Decode steps attend over more keys as they go: the prediction of the planned cache
  // length (64 here) is moved to the run's, so it is below the plan's.
  const ScheduledGraph* decode_plan = nullptr;
  for (const ProfiledRun& r : out->result.runs)
    if (r.phase == "decode") decode_plan = out->planner->find(r.graph.get());
  ASSERT_NE(decode_plan, nullptr);
  EXPECT_LT(rep.phases[1].predicted_makespan_s, decode_plan->predicted_makespan_s);
  // Device op classes carry their predictions too, and the JSON keeps them all.
  for (const WorkStats& c : rep.devices[0].op_classes) EXPECT_GT(c.predicted_s, 0) << c.name;
  auto back = parse_run_report(run_report_to_json(rep), "test");
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->phases.size(), 2u);
  ASSERT_EQ(back->phases[1].op_classes.size(), rep.phases[1].op_classes.size());
  EXPECT_DOUBLE_EQ(back->phases[1].op_classes[0].predicted_s,
                   rep.phases[1].op_classes[0].predicted_s);
  EXPECT_DOUBLE_EQ(back->devices[0].op_classes[0].predicted_s,
                   rep.devices[0].op_classes[0].predicted_s);
}

// Compiled executables fuse ops into groups whose time comes back on one node: the ops
// fused away have no time of their own, so the report counts them as fused in their class
// and adds their predictions to the class that timed them (each class then compares like
// with like); KV-cache writes are transposes, never an "invalid" class.
TEST(RunReport, FusedOpsCountWithTheOpThatTimedThem) {
  NEED_DEVICES();
  const std::vector<hal::Device*> devs = {devices().cpu};
  SchedulingOptions so = fixed_figures(devs);
  so.compile.enabled = true;
  auto out = run("gpt2-tiny", devs, &so, /*profile=*/true, /*new_tokens=*/3);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  size_t fused_entries = 0;
  for (const ProfiledRun& r : out->result.runs) {
    std::map<NodeId, const TimelineEntry*> at;
    for (const TimelineEntry& e : r.timeline.entries)
      if (e.node != kNoNode) at[e.node] = &e;
    for (const TimelineEntry& e : r.timeline.entries) {
      if (e.kind != TimelineEntry::Kind::kOp) continue;
      EXPECT_NE(e.op, hal::OpKind::kInvalid) << r.graph->node(e.node).name;
      if (e.commands > 0) continue;
      // No command of its own: it ran in a group whose main node has the records.
      ASSERT_NE(e.fused_into, kNoNode) << r.graph->node(e.node).name;
      ASSERT_TRUE(at.count(e.fused_into));
      EXPECT_GT(at[e.fused_into]->commands, 0);
      ++fused_entries;
    }
  }
  ASSERT_GT(fused_entries, 0u) << "the CPU compiler fuses norms and activations into groups";

  const RunReportInput in = report_input(*out, "gpt2-tiny");
  const RunReport rep = build_run_report(in);
  // The same runs with the fusion forgotten: every op its own class entry.
  std::vector<ProfiledRun> plain_runs = out->result.runs;
  for (ProfiledRun& r : plain_runs)
    for (TimelineEntry& e : r.timeline.entries) e.fused_into = kNoNode;
  RunReportInput plain = in;
  plain.runs = plain_runs;
  const RunReport unfused = build_run_report(plain);
  ASSERT_EQ(rep.phases.size(), unfused.phases.size());
  for (size_t p = 0; p < rep.phases.size(); ++p) {
    SCOPED_TRACE(rep.phases[p].name);
    double predicted = 0, predicted_unfused = 0;
    int64_t fused = 0;
    for (const WorkStats& c : rep.phases[p].op_classes) {
      EXPECT_NE(c.name, "invalid");
      predicted += c.predicted_s;
      fused += c.fused;
      if (c.fused == c.commands) {
        EXPECT_EQ(c.busy_s, 0) << c.name;
        EXPECT_EQ(c.predicted_s, 0) << c.name << ": its prediction went to the group's class";
      }
    }
    for (const WorkStats& c : unfused.phases[p].op_classes) predicted_unfused += c.predicted_s;
    EXPECT_GT(fused, 0);
    // Predictions moved between classes, none lost or counted twice.
    EXPECT_NEAR(predicted, predicted_unfused, 1e-9 * predicted_unfused);
    const std::string text = phase_prediction_text(rep.phases[p]);
    EXPECT_THAT(text, HasSubstr("fused"));
  }
  // The roofline plots the classes that have a time of their own.
  const std::string svg = roofline_svg(rep);
  for (const WorkStats& c : rep.devices[0].op_classes) {
    const bool plotted = svg.find("data-op=\"" + c.name + "\"") != std::string::npos;
    EXPECT_EQ(plotted, c.fused < c.commands) << c.name;
  }
  // The JSON keeps the counts.
  auto back = parse_run_report(run_report_to_json(rep), "test");
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  int64_t fused_back = 0, fused_here = 0;
  for (const WorkStats& c : back->devices[0].op_classes) fused_back += c.fused;
  for (const WorkStats& c : rep.devices[0].op_classes) fused_here += c.fused;
  EXPECT_GT(fused_here, 0);
  EXPECT_EQ(fused_back, fused_here);
}

}  // namespace
