// hal::runtime::forecast_model on devices described by hand (no plugin): what it accounts
// (weights by dtype, KV caches, HBM bytes per token), that a model too big for the devices
// fails naming the sizes, that a big one is split by layers, that stored calibrations
// change the cost model's predictions, and the config/dtype resolution errors.
#include "hal/runtime/forecast.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "hal/scheduler/calibration.h"

namespace {

namespace rt = hal::runtime;
namespace sch = hal::scheduler;

constexpr uint64_t kGiB = uint64_t(1) << 30;

// An HBM accelerator with round figures (not a preset: the test controls every number).
hal::DeviceInfo hbm_device(const std::string& id, uint64_t memory, double bandwidth) {
  hal::DeviceInfo info;
  info.id = id;
  info.id_prefix = "npu";
  info.backend = "planner_test";
  info.kind = hal::DeviceKind::kNpu;
  info.name = "test-hbm-" + std::to_string(memory / kGiB) + "g";
  info.memory_bytes = memory;
  info.memory_bandwidth_bytes_per_s = bandwidth;
  info.peak_flops = {{hal::DType::kBF16, 500e12},
                     {hal::DType::kF16, 500e12},
                     {hal::DType::kF32, 500e12},
                     {hal::DType::kFP8E4M3, 1000e12}};
  info.launch_overhead_s = 2e-6;
  info.links.push_back({"host", -1, "pcie-gen5-x16", 50e9, 2e-6});
  return info;
}

std::vector<rt::PlanDevice> devices_of(std::vector<hal::DeviceInfo> infos) {
  std::vector<rt::PlanDevice> out;
  for (auto& i : infos) out.push_back(rt::PlanDevice{std::move(i), {}, {}, {}});
  return out;
}

rt::ForecastRequest request(const std::string& model, hal::DType dtype = hal::DType::kBF16) {
  rt::ForecastRequest r;
  auto c = rt::resolve_model_config(model);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  r.config = *c;
  r.model_name = model;
  r.batch = 1;
  r.prompt_len = 64;
  r.max_new_tokens = 64;
  r.weight_dtype = dtype;
  r.calibration.load = false;
  return r;
}

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char t[] = "/tmp/planner_test_XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

TEST(Forecast, BuiltinConfigsParseWithTheirPublishedSizes) {
  for (const std::string& name : rt::public_model_names()) {
    auto c = rt::resolve_model_config(name);
    ASSERT_TRUE(c.ok()) << name << ": " << c.status().to_string();
  }
  // Parameter counts the model cards state: 124M, 8.03B, 70.6B.
  EXPECT_NEAR(double(rt::resolve_model_config("gpt2")->parameter_count()), 124.4e6, 1e6);
  EXPECT_NEAR(double(rt::resolve_model_config("llama-3-8b")->parameter_count()), 8.03e9, 0.01e9);
  EXPECT_NEAR(double(rt::resolve_model_config("llama-3-70b")->parameter_count()), 70.55e9, 0.05e9);
}

TEST(Forecast, ModelAndDtypeErrorsNameWhatWasWrong) {
  auto unknown = rt::resolve_model_config("llama-9-400b");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("unknown model 'llama-9-400b'"), std::string::npos)
      << unknown.status().message();
  EXPECT_NE(unknown.status().message().find("llama-3-8b"), std::string::npos);

  TempDir dir;
  { std::ofstream(dir.path / "config.json") << R"({"model_type": "llama", "hidden_size": 64})"; }
  auto bad = rt::resolve_model_config(dir.path.string());  // a directory: its config.json
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("config.json"), std::string::npos)
      << bad.status().message();

  auto dt = rt::parse_plan_dtype("fp4");
  ASSERT_FALSE(dt.ok());
  EXPECT_NE(dt.status().message().find("'fp4'"), std::string::npos);
  EXPECT_EQ(*rt::parse_plan_dtype("fp8"), hal::DType::kFP8E4M3);
  EXPECT_EQ(*rt::parse_plan_dtype("INT8"), hal::DType::kI8);
}

TEST(Forecast, DecodeIsMemoryBoundBelowTheBandwidthLimitAndMovesAtLeastTheWeights) {
  auto plan = rt::forecast_model(request("llama-3-8b"),
                                 devices_of({hbm_device("npu:0", 140 * kGiB, 4.8e12)}));
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  // bf16: two bytes per parameter.
  // (and the rotary table, 64 floats)
  EXPECT_NEAR(double(plan->weight_bytes),
              2.0 * double(rt::resolve_model_config("llama-3-8b")->parameter_count()), 1024);
  const double limit = 4.8e12 / double(plan->weight_bytes);
  EXPECT_NEAR(plan->all_weights_tokens_per_s(), limit, 1e-9 * limit);
  // The limit the plan states counts what a step reads: the embedding table (1 of the
  // 15 GiB) only its rows, so it is higher, by about 1/15.
  EXPECT_GT(plan->bandwidth_limit_tokens_per_s(), limit);
  EXPECT_LT(plan->bandwidth_limit_tokens_per_s(), 1.1 * limit);
  EXPECT_LT(plan->decode_tokens_per_s(), plan->bandwidth_limit_tokens_per_s());
  EXPECT_GT(plan->decode_tokens_per_s(), 0);
  EXPECT_LT(plan->decode_tokens_per_s(), limit);
  EXPECT_EQ(plan->decode.bound.dominant(), "memory");
  EXPECT_NE(plan->why.find("memory-bandwidth bound"), std::string::npos) << plan->why;
  // A decode step reads every weight once (the embedding table only its rows: 1 GiB of
  // the 15 GiB is not read), plus the KV cache.
  EXPECT_GE(plan->decode.hbm_bytes, 0.9 * double(plan->weight_bytes));
  EXPECT_LE(plan->decode.hbm_bytes, 1.10 * double(plan->weight_bytes));
  // All on the one device.
  ASSERT_EQ(plan->devices.size(), 1u);
  EXPECT_EQ(plan->devices[0].layer_count, 32);
  EXPECT_TRUE(plan->devices[0].embedding);
  EXPECT_TRUE(plan->devices[0].head);
  // KV cache: 2 (k, v) x layers x positions x kv heads x head dim x 2 bytes.
  EXPECT_EQ(plan->kv_cache_bytes, uint64_t(2 * 32 * 128 * 8 * 128 * 2));
  // Prefill of 64 tokens does the layers' work 64 times (the head once: logits of the last
  // token only).
  EXPECT_GT(plan->prefill.flops, 50 * plan->decode.flops);
  EXPECT_LT(plan->prefill.flops, 64 * plan->decode.flops);
}

TEST(Forecast, OneByteWeightsHalveTheWeightBytesAndRaiseTheLimit) {
  const auto devs = devices_of({hbm_device("npu:0", 140 * kGiB, 4.8e12)});
  auto bf16 = rt::forecast_model(request("llama-3-8b"), devs);
  auto fp8 = rt::forecast_model(request("llama-3-8b", hal::DType::kFP8E4M3), devs);
  auto int8 = rt::forecast_model(request("llama-3-8b", hal::DType::kI8), devs);
  ASSERT_TRUE(bf16.ok() && fp8.ok() && int8.ok());
  // Matmul weights and embeddings at 1 byte; only the norms stay bf16.
  EXPECT_LT(fp8->weight_bytes, bf16->weight_bytes / 2 + bf16->weight_bytes / 1000);
  EXPECT_GT(fp8->weight_bytes, bf16->weight_bytes / 2);
  EXPECT_EQ(fp8->weight_bytes, int8->weight_bytes);
  EXPECT_EQ(fp8->kv_cache_bytes, bf16->kv_cache_bytes);  // KV cache stays bf16
  EXPECT_GT(fp8->decode_tokens_per_s(), 1.5 * bf16->decode_tokens_per_s());
  EXPECT_LT(fp8->decode_tokens_per_s(), fp8->bandwidth_limit_tokens_per_s());
}

TEST(Forecast, TooBigForTheDevicesFailsNamingTheSizes) {
  auto plan = rt::forecast_model(request("llama-3-70b"),
                                 devices_of({hbm_device("npu:0", 16 * kGiB, 256e9)}));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), hal::StatusCode::kOutOfMemory);
  const std::string& m = plan.status().message();
  EXPECT_NE(m.find("llama-3-70b needs"), std::string::npos) << m;
  EXPECT_NE(m.find("131.4 GiB of bf16 weights"), std::string::npos) << m;
  EXPECT_NE(m.find("npu:0"), std::string::npos) << m;
  EXPECT_NE(m.find("16.0 GiB"), std::string::npos) << m;
  EXPECT_NE(m.find("at least 9 devices"), std::string::npos) << m;
}

TEST(Forecast, BigModelIsSplitByLayersAcrossEnoughDevices) {
  std::vector<hal::DeviceInfo> infos;
  for (int i = 0; i < 8; ++i)
    infos.push_back(hbm_device("npu:" + std::to_string(i), 16 * kGiB, 256e9));
  // int8: 65.7 GiB. (The scheduler's layer partition considers at most six devices, so
  // bf16's 131 GiB cannot be split by it over 16 GiB devices; see below for bf16.)
  rt::ForecastRequest req = request("llama-3-70b", hal::DType::kI8);
  req.algorithm = sch::Algorithm::kLayerPartition;
  auto plan = rt::forecast_model(req, devices_of(infos));
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  int32_t layers = 0, used = 0;
  for (const rt::DevicePlan& d : plan->devices) {
    layers += d.layer_count;
    used += d.layer_count > 0;
    EXPECT_LE(d.peak_bytes(), d.capacity_bytes) << d.id;
    EXPECT_LE(d.layers.size(), 1u) << d.id << ": one contiguous range per device";
  }
  EXPECT_EQ(layers, 80);
  EXPECT_GE(used, 5);  // 65.7 GiB of weights cannot sit on fewer 16 GiB devices
  EXPECT_FALSE(plan->placement.empty());
  EXPECT_GT(plan->decode.transfer_bytes, 0);  // the residual stream crosses devices
  // A pipeline: the limit is the sum over devices of weights / bandwidth.
  EXPECT_NEAR(plan->bandwidth_limit_step_s, plan->weight_read_bytes / 256e9,
              1e-6 * plan->bandwidth_limit_step_s);
  EXPECT_NEAR(plan->all_weights_step_s, double(plan->weight_bytes) / 256e9,
              1e-6 * plan->all_weights_step_s);
  EXPECT_LT(plan->decode_tokens_per_s(), plan->bandwidth_limit_tokens_per_s());

  // bf16 over ten devices with the scheduler's default, which may also run independent
  // ops of a layer on several devices at once: every layer placed, every device within
  // its memory, still below the limit of its placement.
  for (int i = 8; i < 10; ++i)
    infos.push_back(hbm_device("npu:" + std::to_string(i), 16 * kGiB, 256e9));
  auto any = rt::forecast_model(request("llama-3-70b"), devices_of(infos));
  ASSERT_TRUE(any.ok()) << any.status().to_string();
  std::vector<int> seen(80, 0);
  for (const rt::DevicePlan& d : any->devices) {
    EXPECT_LE(d.peak_bytes(), d.capacity_bytes) << d.id;
    for (auto [a, b] : d.layers)
      for (int l = a; l <= b; ++l) seen[size_t(l)] = 1;
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 80);
  EXPECT_LT(any->decode_tokens_per_s(), any->bandwidth_limit_tokens_per_s());
}

TEST(Forecast, StoredCalibrationChangesTheCostModelsPrediction) {
  TempDir dir;
  const hal::DeviceInfo info = hbm_device("npu:0", 140 * kGiB, 4.8e12);
  rt::ForecastRequest req = request("llama-3-8b");
  auto before = rt::forecast_model(req, devices_of({info}));
  ASSERT_TRUE(before.ok());
  // A device that streams at half its peak bandwidth in every class.
  sch::Calibration cal;
  cal.device_name = info.name;
  cal.backend = info.backend;
  for (int c = 0; c < sch::kOpClassCount; ++c)
    cal.op_classes[size_t(c)] = sch::ClassCalibration{{0.9, 0.4}, 10, {}};
  ASSERT_TRUE(sch::save_calibration(cal, sch::calibration_path(info, dir.path)).ok());
  req.calibration.load = true;
  req.calibration.directory = dir.path;
  auto after = rt::forecast_model(req, devices_of({info}));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->devices[0].timing, "roofline cost model, calibrated");
  EXPECT_EQ(before->devices[0].timing, "roofline cost model, default efficiencies");
  // Memory-bound decode: time scales with 1 / memory efficiency (0.8 default -> 0.4).
  EXPECT_LT(after->decode_tokens_per_s(), 0.6 * before->decode_tokens_per_s());
  bool noted = false;
  for (const std::string& n : after->notes)
    noted = noted || n.find("calibration from") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(Forecast, OpTimerReplacesTheCostModelWhereGiven) {
  // A timer that says every op takes 1 ms: decode time is then ops x 1 ms on one device.
  rt::PlanDevice d{hbm_device("npu:0", 140 * kGiB, 4.8e12), {}, {}, "fixed test timer"};
  int calls = 0;
  d.timer = [&calls](const hal::OpSpec&) -> hal::Result<std::optional<rt::OpTiming>> {
    ++calls;
    return std::optional<rt::OpTiming>(rt::OpTiming{1e-3, "compute", 0});
  };
  auto plan = rt::forecast_model(request("gpt2"), {d});
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  EXPECT_GT(calls, 0);
  // Identical ops of different layers are timed once.
  EXPECT_LT(calls, plan->decode.tasks + plan->prefill.tasks);
  EXPECT_EQ(plan->decode.bound.dominant(), "compute");
  EXPECT_NE(plan->method.find("fixed test timer"), std::string::npos) << plan->method;
  EXPECT_GE(plan->decode.seconds, 1e-3 * 12);  // at least one op per layer
}

TEST(Forecast, RejectsImpossibleRequests) {
  rt::ForecastRequest r = request("gpt2");
  r.prompt_len = 1000;
  r.max_new_tokens = 100;  // 1100 > gpt2's 1024 positions
  auto plan = rt::forecast_model(r, devices_of({hbm_device("npu:0", 16 * kGiB, 256e9)}));
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("1024"), std::string::npos) << plan.status().message();
  r = request("gpt2");
  r.batch = 0;
  EXPECT_EQ(
      rt::forecast_model(r, devices_of({hbm_device("npu:0", 16 * kGiB, 256e9)})).status().code(),
      hal::StatusCode::kInvalidArgument);
}

}  // namespace
