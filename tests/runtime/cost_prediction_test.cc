// Golden predictions of whole model steps: what the cost model says a decode step and a
// prefill of GPT-2 small and Llama-3-8B (their published configs; graphs only, no
// weights) take on fixed device figures, with and without a fixed calibration, summed
// over the ops the runtime dispatches (as the scheduler does on one device). The figures
// are this file's, never this machine's. A change that moves a value is a change of the
// cost model, the analytic costs or the model graphs: update it only with that reason.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "hal/platform.h"
#include "hal/runtime/calibration_sweep.h"
#include "hal/runtime/forecast.h"
#include "hal/runtime/model_graph.h"
#include "hal/runtime/scheduled_plan.h"
#include "hal/scheduler/calibration.h"
#include "hal/scheduler/cost_model.h"

namespace {

using namespace hal::runtime;
namespace sch = hal::scheduler;

hal::DeviceInfo fixed_cpu() {
  hal::DeviceInfo d;
  d.id = "cpu:0";
  d.backend = "cpu";
  d.name = "Golden CPU";
  d.kind = hal::DeviceKind::kCpu;
  d.memory_bytes = 256ull << 30;
  d.memory_bandwidth_bytes_per_s = 30e9;
  d.peak_flops[hal::DType::kF32] = 2e11;
  d.launch_overhead_s = 3e-6;
  return d;
}

// Matmuls calibrated (5 us overhead, 120 GFLOP/s, 26 GB/s, one sample 10% over its
// baseline at a GPT-2 decode projection), everything else from class efficiencies.
sch::Calibration fixed_calibration() {
  sch::Calibration cal;
  cal.device_name = "Golden CPU";
  cal.backend = "cpu";
  sch::OpCalibration mm;
  mm.op = hal::OpKind::kMatmul;
  mm.dtype = hal::DType::kF32;
  mm.overhead_s = 5e-6;
  mm.flops_per_s = 1.2e11;
  mm.bytes_per_s = 2.6e10;
  const double f = 2.0 * 768 * 768, b = 4.0 * 768 * 768;
  mm.samples = {{f, b, 1.1 * mm.baseline_seconds(f, b)}};
  cal.ops.push_back(mm);
  sch::ClassCalibration vector;
  vector.efficiency = {0.2, 0.3};
  cal.op_classes[size_t(hal::OpClass::kVector)] = vector;
  return cal;
}

struct Step {
  double total = 0;
  std::map<std::string, double> by_op;
};

Step predict_step(const std::string& model, int64_t seq, int64_t kv,
                  const sch::DeviceCostModel& cost) {
  auto config = resolve_model_config(model);
  EXPECT_TRUE(config.ok()) << config.status().to_string();
  ModelGraphShape shape;
  shape.seq = seq;
  shape.cache_len = 1024;
  auto mg = build_model_graph(*config, shape);
  EXPECT_TRUE(mg.ok()) << mg.status().to_string();
  Step s;
  const Graph& g = *mg->graph;
  for (NodeId n = 0; n < NodeId(g.nodes().size()); ++n)
    for (hal::OpSpec spec : node_op_specs(g, n)) {
      if (spec.kind == hal::OpKind::kAttention) spec.attrs.kv_length = kv;
      const double t = cost.seconds(sch::OpWork::from_spec(spec));
      s.total += t;
      s.by_op[std::string(hal::op_kind_name(spec.kind))] += t;
    }
  return s;
}

struct Golden {
  const char* model;
  int64_t seq, kv;
  double roofline_s, roofline_matmul_s, calibrated_s, calibrated_matmul_s;
};

TEST(GoldenSteps, DecodeAndPrefillOfGpt2AndLlamaOnFixedFigures) {
  const sch::DeviceCostModel roofline(fixed_cpu());
  const sch::DeviceCostModel calibrated(fixed_cpu(), fixed_calibration());
  const Golden golden[] = {
      {"gpt2", 1, 512, 0.02270438981111113, 0.020782576166666667, 0.02207429392426564,
       0.02009697947982119},
      {"gpt2", 128, 128, 0.15895670655777783, 0.15161432528666668, 0.201498265549512,
       0.18840428107840085},
      {"llama-3-8b", 1, 512, 1.259387997911104, 1.2519103706666626, 1.175601856087453,
       1.1670013616430108},
      {"llama-3-8b", 128, 128, 12.123325332560011, 11.999629122239998, 15.267257916221475,
       15.009267519234847},
  };
  for (const Golden& g : golden) {
    SCOPED_TRACE(std::string(g.model) + " seq " + std::to_string(g.seq));
    const Step r = predict_step(g.model, g.seq, g.kv, roofline);
    const Step c = predict_step(g.model, g.seq, g.kv, calibrated);
    EXPECT_NEAR(r.total, g.roofline_s, 1e-9 * g.roofline_s) << r.total;
    EXPECT_NEAR(r.by_op.at("matmul"), g.roofline_matmul_s, 1e-9 * g.roofline_matmul_s)
        << r.by_op.at("matmul");
    EXPECT_NEAR(c.total, g.calibrated_s, 1e-9 * g.calibrated_s) << c.total;
    EXPECT_NEAR(c.by_op.at("matmul"), g.calibrated_matmul_s, 1e-9 * g.calibrated_matmul_s)
        << c.by_op.at("matmul");
  }
}

// Decode streams the weights: on fixed figures the roofline's decode step is at least the
// weight bytes over the bandwidth, and a prefill of 128 tokens costs less than 128 steps.
TEST(GoldenSteps, DecodeIsBoundByTheWeightsAndPrefillAmortisesThem) {
  const sch::DeviceCostModel roofline(fixed_cpu());
  for (const char* model : {"gpt2", "llama-3-8b"}) {
    SCOPED_TRACE(model);
    auto config = resolve_model_config(model);
    ASSERT_TRUE(config.ok());
    const double weights = double(config->decode_weight_bytes(4));
    const Step decode = predict_step(model, 1, 512, roofline);
    EXPECT_GE(decode.by_op.at("matmul"), weights / 30e9);
    const Step prefill = predict_step(model, 128, 128, roofline);
    EXPECT_LT(prefill.total, 128 * decode.total);
  }
}

// The sweep `halctl bench --calibrate` measures: the ops of synthetic model graphs, each
// graph's ops one sequence in the graph's order, every kind a gpt2 or llama graph uses,
// weights and KV caches marked cold, activations not.
TEST(CalibrationSweep, CoversEveryOpKindOfTheModelGraphsInSequences) {
  const std::vector<CalibrationOp> ops = calibration_ops(hal::DType::kF32, /*quick=*/true);
  ASSERT_GT(ops.size(), 50u);
  std::set<std::string> kinds;
  std::set<int32_t> sequences;
  for (size_t i = 0; i < ops.size(); ++i) {
    const CalibrationOp& op = ops[i];
    // A sequence's ops are consecutive.
    if (i > 0 && op.sequence != ops[i - 1].sequence) {
      EXPECT_FALSE(sequences.count(op.sequence)) << op.label;
    }
    sequences.insert(op.sequence);
    kinds.insert(std::string(hal::op_kind_name(op.spec.kind)));
    EXPECT_TRUE(hal::validate_op(op.spec).ok())
        << op.label << ": " << hal::validate_op(op.spec).to_string();
    if (op.spec.kind == hal::OpKind::kMatmul) {
      EXPECT_FALSE(op.cold[0]) << op.label;  // activations
      EXPECT_TRUE(op.cold[1]) << op.label;   // the weight
    }
    if (op.spec.kind == hal::OpKind::kAttention) {
      EXPECT_TRUE(op.cold[1] && op.cold[2]) << op.label;  // the KV caches
      EXPECT_GT(op.kv_length, 0) << op.label;
      EXPECT_EQ(op.spec.attrs.kv_length, op.kv_length) << op.label;
    }
  }
  // Two families x two sizes x (two decode + two prefill shapes).
  EXPECT_EQ(sequences.size(), 16u);
  // A sequence starts with the embedding gather and ends with the head.
  EXPECT_EQ(ops.front().spec.kind, hal::OpKind::kEmbedding);
  EXPECT_EQ(ops.back().spec.kind, hal::OpKind::kMatmul);
  for (const char* k : {"matmul", "attention", "layer_norm", "rms_norm", "gelu", "silu", "add",
                        "mul", "rotary", "embedding", "transpose"})
    EXPECT_TRUE(kinds.count(k)) << k;
  // The full sweep adds sizes; bf16 compute gives bf16 ops.
  EXPECT_GT(calibration_ops(hal::DType::kF32, false).size(), ops.size());
  for (const CalibrationOp& op : calibration_ops(hal::DType::kBF16, true))
    if (op.spec.kind == hal::OpKind::kMatmul) {
      EXPECT_EQ(op.spec.inputs[0].dtype, hal::DType::kBF16);
    }
}

// Activations live where the executor's memory plan puts them: an op reads an activation
// (or a view of it, as attention's K of the fused qkv) inside the bytes its producer
// wrote, every use fits the sequence's arena, and values
// whose lifetimes do not overlap share bytes (an op writes memory a value that died
// lately used, as in a model, not a buffer last touched a step before).
TEST(CalibrationSweep, ActivationsLiveWhereTheExecutorsMemoryPlanPutsThem) {
  const std::vector<CalibrationOp> ops = calibration_ops(hal::DType::kF32, /*quick=*/true);
  // sequence -> value -> [begin, end) its producer wrote
  std::map<int32_t, std::map<int32_t, std::pair<uint64_t, uint64_t>>> written;
  std::map<int32_t, std::map<uint64_t, std::set<int32_t>>> tenants;  // offset -> values
  for (const CalibrationOp& op : ops) {
    ASSERT_GT(op.arena_bytes, 0u) << op.label;
    auto& seq = written[op.sequence];
    for (int i = 0; i < op.spec.num_inputs; ++i) {
      const int32_t v = op.input_value[size_t(i)];
      if (v < 0) continue;
      EXPECT_LE(op.input_offset[size_t(i)] + op.spec.inputs[i].extent_bytes(), op.arena_bytes)
          << op.label;
      if (auto it = seq.find(v); it != seq.end()) {
        EXPECT_GE(op.input_offset[size_t(i)], it->second.first) << op.label << ", input " << i;
        EXPECT_LE(op.input_offset[size_t(i)] + op.spec.inputs[i].extent_bytes(), it->second.second)
            << op.label << ", input " << i;
      }
    }
    if (op.output_value >= 0) {
      const uint64_t end = op.output_offset + op.spec.output.extent_bytes();
      EXPECT_LE(end, op.arena_bytes) << op.label;
      if (!seq.count(op.output_value)) seq[op.output_value] = {op.output_offset, end};
      tenants[op.sequence][op.output_offset].insert(op.output_value);
    }
  }
  // In each sequence some offset is written by two values: the plan reuses memory.
  for (const auto& [sequence, by_offset] : tenants) {
    size_t shared = 0;
    for (const auto& [offset, values] : by_offset) shared += values.size() > 1;
    EXPECT_GT(shared, 0u) << "sequence " << sequence;
  }
}

// A device whose memory cannot hold a sequence's activation arena skips every op of the
// sequence, each with the reason, and the sweep goes on (nothing stays allocated).
TEST(CalibrationSweep, ADeviceWithoutRoomForTheArenaSkipsTheSequenceSayingWhy) {
  const std::string path =
      ::testing::TempDir() + "/calibration_sweep_tiny_npu_" + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << R"({"extends": "atom", "name": "tiny-memory", "memory_bytes": 100000,
                             "sram_shared_bytes": 4096, "sram_local_bytes_per_engine": 8192,
                             "memory_reserved_bytes": 0})";
  hal::PlatformOptions o;
  o.only_plugins = {"npu_sim"};
  o.plugin_options["npu_sim"] = {{"devices", path}, {"timing_only", "true"}};
  auto platform = hal::Platform::create(o);
  std::remove(path.c_str());
  ASSERT_TRUE(platform.ok()) << platform.status().to_string();
  auto npu = (*platform)->device("npu:0");
  ASSERT_TRUE(npu.ok()) << npu.status().to_string();
  std::vector<CalibrationOp> few;
  for (const CalibrationOp& op : calibration_ops(hal::DType::kF32, true))
    if (op.sequence == 0) few.push_back(op);
  ASSERT_GT(few.front().arena_bytes, 100000u);  // the logits alone are 128 KiB
  CalibrationMeasureOptions mo;
  mo.rounds = 1;
  mo.min_time_s = 0;
  mo.min_reps = 1;
  mo.timing_only = true;
  std::vector<CalibrationSkip> skipped;
  auto measured = measure_calibration_ops(**npu, few, mo, &skipped);
  ASSERT_TRUE(measured.ok()) << measured.status().to_string();
  EXPECT_TRUE(measured->empty());
  ASSERT_EQ(skipped.size(), few.size());
  for (const CalibrationSkip& s : skipped)
    EXPECT_NE(s.why.find("activation arena of"), std::string::npos) << s.what << ": " << s.why;
  auto stats = (*npu)->memory_stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->bytes_in_use, 0u);
}

// The sweep's embedding ids: distinct rows spread over the table, in range, for any table.
TEST(CalibrationSweep, TokenIdsAreDistinctRowsOfTheTable) {
  for (int64_t rows :
       {int64_t(1), int64_t(7), int64_t(512), int64_t(7919), int64_t(32768), int64_t(50257)}) {
    const int64_t count = std::min<int64_t>(rows, 300);
    const std::vector<int64_t> ids = calibration_token_ids(count, rows, 5);
    ASSERT_EQ(ids.size(), size_t(count));
    std::set<int64_t> seen(ids.begin(), ids.end());
    EXPECT_EQ(seen.size(), ids.size()) << rows << " rows";
    for (int64_t id : ids) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, rows);
    }
    if (rows >= 512) {
      EXPECT_GT(*seen.rbegin() - *seen.begin(), rows / 2) << "spread";
    }
  }
  EXPECT_TRUE(calibration_token_ids(4, 0).size() == 4);  // no table: zeros, no division
}

// A prefill sequence (several ids per embedding) measures every op: the ids are rows
// of the table (an id outside it would fail the op, and the sweep would skip it).
TEST(CalibrationSweep, PrefillEmbeddingsGatherValidRows) {
  auto platform = hal::Platform::create();
  ASSERT_TRUE(platform.ok()) << platform.status().to_string();
  auto cpu = (*platform)->device("cpu:0");
  ASSERT_TRUE(cpu.ok());
  std::vector<CalibrationOp> ops = calibration_ops(hal::DType::kF32, true);
  int32_t prefill = -1;
  for (const CalibrationOp& op : ops)
    if (op.spec.kind == hal::OpKind::kEmbedding && op.spec.inputs[1].shape.numel() > 1) {
      prefill = op.sequence;
      break;
    }
  ASSERT_GE(prefill, 0);
  std::vector<CalibrationOp> few;
  for (const CalibrationOp& op : ops)
    if (op.sequence == prefill) few.push_back(op);
  CalibrationMeasureOptions mo;
  mo.rounds = 1;
  mo.min_time_s = 0;
  mo.min_reps = 1;
  mo.cold_bytes = 16ull << 20;
  std::vector<CalibrationSkip> skipped;
  auto measured = measure_calibration_ops(**cpu, few, mo, &skipped);
  ASSERT_TRUE(measured.ok()) << measured.status().to_string();
  EXPECT_EQ(measured->size(), few.size()) << (skipped.empty() ? "" : skipped[0].why);
}

// Measured through a recording stream: every op gets a time and repetitions, or a skip
// with its reason; timing says nothing about speed here (a test asserts none).
TEST(CalibrationSweep, MeasuresOpsThroughTheDevicesStream) {
  auto platform = hal::Platform::create();
  ASSERT_TRUE(platform.ok()) << platform.status().to_string();
  auto cpu = (*platform)->device("cpu:0");
  ASSERT_TRUE(cpu.ok());
  // The first sequence: the smallest gpt2-style decode step.
  std::vector<CalibrationOp> few;
  for (const CalibrationOp& op : calibration_ops(hal::DType::kF32, true))
    if (op.sequence == 0) few.push_back(op);
  ASSERT_GT(few.size(), 10u);
  CalibrationMeasureOptions mo;
  mo.rounds = 2;
  mo.min_time_s = 0;
  mo.min_reps = 3;
  mo.cold_bytes = 16ull << 20;
  size_t progress_calls = 0;
  mo.progress = [&](size_t done, size_t total) {
    ++progress_calls;
    EXPECT_LE(done, total);
  };
  std::vector<CalibrationSkip> skipped;
  auto measured = measure_calibration_ops(**cpu, few, mo, &skipped);
  ASSERT_TRUE(measured.ok()) << measured.status().to_string();
  EXPECT_EQ(measured->size() + skipped.size(), few.size());
  EXPECT_EQ(measured->size(), few.size()) << (skipped.empty() ? "" : skipped[0].why);
  for (const MeasuredOp& m : *measured) {
    EXPECT_GT(m.seconds, 0) << m.op->label;
    EXPECT_GT(m.mean_seconds, 0) << m.op->label;
    EXPECT_GE(m.gap_seconds, 0) << m.op->label;
    EXPECT_GE(m.reps, 6) << m.op->label;  // 3 steps in each of the 2 rounds
  }
  EXPECT_EQ(progress_calls, 3u);  // before the sequence in each round, and at the end
  // Nothing stays allocated.
  auto stats = (*cpu)->memory_stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->bytes_in_use, 0u);
}

}  // namespace
