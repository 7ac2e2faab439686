// `halctl plan` and `halctl bench --calibrate` as a user runs them: the built binary
// (HALCTL_PATH) on simulated NPUs (timing-only, so 70B models cost no memory here), its
// JSON, its text and its exit codes (0 ok, 1 the work failed, 2 bad usage or input).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "halctl_invocation.h"

namespace {

using nlohmann::json;

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/halctl_plan_test_XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

using halctl_test::halctl;
using halctl_test::Invocation;

// Plans read no stored calibration unless a test asks (the user's cache must not change
// what the tests see).
const char* kNoCache = "HAL_CALIBRATION_DIR=/nonexistent/halctl-plan-test";

TEST(HalctlPlan, Llama3_8BOnRebelQuadIsBelowTheBandwidthLimitAndSaysWhy) {
  const Invocation r = halctl(
      {"plan", "--model", "llama-3-8b", "--devices", "npu:0", "--preset", "rebel-quad", "--batch",
       "1", "--prompt-len", "128", "--max-new-tokens", "128", "--dtype", "bf16", "--json"},
      kNoCache);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json p = r.parsed();
  const double weight_bytes = p["weight_bytes"].get<double>();
  EXPECT_GT(weight_bytes, 16.0e9);  // 8.03 B parameters x 2 bytes
  EXPECT_LT(weight_bytes, 16.1e9);
  const double limit = 4.8e12 / weight_bytes;
  EXPECT_NEAR(p["bandwidth_limit"]["all_weights_tokens_per_s"].get<double>(), limit, 1e-9 * limit);
  // The stated limit counts the bytes a step reads (the embedding table only its rows).
  EXPECT_GE(p["bandwidth_limit"]["tokens_per_s"].get<double>(), limit);
  EXPECT_LT(p["bandwidth_limit"]["tokens_per_s"].get<double>(), 1.1 * limit);
  const double tps = p["decode"]["tokens_per_s"].get<double>();
  EXPECT_GT(tps, 0);
  EXPECT_LT(tps, limit);
  EXPECT_EQ(p["decode"]["bound"]["bound"], "memory");
  EXPECT_NE(p["why"].get<std::string>().find("memory-bandwidth bound"), std::string::npos);
  // Compiled by the simulated NPU (the default) and timed by its executables; ops outside
  // them by the simulator's timing-only execution.
  EXPECT_EQ(p["devices"][0]["timing"],
            "compiled executables; other ops: npu_sim timing-only execution");
  EXPECT_TRUE(p["decode"]["compiled"]["compiled"].get<bool>());
  EXPECT_EQ(p["decode"]["compiled"]["declined_nodes"].get<int>(), 0);
  EXPECT_NE(p["method"].get<std::string>().find("npu_sim timing-only execution"),
            std::string::npos);
  // Every weight but the embedding table's unread rows (1 GiB of 15): at least 90%.
  EXPECT_GE(p["decode"]["hbm_bytes_per_token"].get<double>(), 0.9 * weight_bytes);

  // The text says the same, with the limit's formula.
  const Invocation t =
      halctl({"plan", "--model", "llama-3-8b", "--preset", "rebel-quad"}, kNoCache);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("memory-bandwidth bound"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("bandwidth / weight bytes read per step = 4.8 TB/s / 14.0 GiB"),
            std::string::npos)
      << t.out;
  EXPECT_NE(t.out.find("4.8 TB/s"), std::string::npos) << t.out;
}

TEST(HalctlPlan, Llama3_70BDoesNotFitOneAtomAndSaysHowBig) {
  const Invocation r = halctl(
      {"plan", "--model", "llama-3-70b", "--devices", "npu:0", "--preset", "atom"}, kNoCache);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("out of memory"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("GiB of bf16 weights"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("npu:0"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(HalctlPlan, Llama3_70BIsSplitByLayersOverEnoughAtomDies) {
  // int8: 65.7 GiB of weights over eight ATOM dies (two ATOM-Max cards) of 15.7 GiB.
  const Invocation r =
      halctl({"plan", "--model", "llama-3-70b", "--preset", "atom-max", "--devices",
              "npu:0,npu:1,npu:2,npu:3,npu:4,npu:5,npu:6,npu:7", "--dtype", "int8", "--prompt-len",
              "32", "--max-new-tokens", "32", "--algorithm", "layer-partition", "--json"},
             kNoCache);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json p = r.parsed();
  int layers = 0, used = 0;
  for (const json& d : p["devices"]) {
    layers += d["layer_count"].get<int>();
    used += d["layer_count"].get<int>() > 0;
    EXPECT_LE(d["memory"]["peak_bytes"].get<double>(), d["memory"]["capacity_bytes"].get<double>())
        << d;
  }
  EXPECT_EQ(layers, 80);  // each layer on one die
  EXPECT_GE(used, 5);     // 65.7 GiB needs at least five 15.7 GiB dies
  EXPECT_LT(p["decode"]["tokens_per_s"].get<double>(),
            p["bandwidth_limit"]["tokens_per_s"].get<double>());
  EXPECT_NE(p["placement"].get<std::string>().find("layers="), std::string::npos) << p["placement"];
}

// Tensor parallelism over the eight dies of two ATOM-Max cards: chosen, with every
// all-reduce priced over the cards' links, and bf16 refused naming how many dies it needs.
TEST(HalctlPlan, Llama3_70BOnEightAtomMaxDiesIsTensorParallel) {
  const Invocation r =
      halctl({"plan", "--model", "llama-3-70b", "--preset", "atom-max", "--devices", "npu:0..7",
              "--dtype", "int8", "--prompt-len", "32", "--max-new-tokens", "32",
              "--tensor-parallel", "auto", "--pipeline-parallel", "auto", "--json"},
             kNoCache);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json p = r.parsed();
  EXPECT_TRUE(p["chosen"].get<bool>());
  EXPECT_EQ(p["tensor_parallel"].get<int>() * p["pipeline_parallel"].get<int>(), 8);
  EXPECT_EQ(p["decode"]["all_reduces_per_step"].get<int>(), 2 * 80);
  EXPECT_GT(p["decode"]["all_reduce_seconds_per_step"].get<double>(), 0);
  EXPECT_LT(p["decode"]["all_reduce_seconds_per_step"].get<double>(),
            p["decode"]["seconds_per_step"].get<double>());
  EXPECT_GT(p["decode"]["tokens_per_s"].get<double>(), 0);
  for (const json& s : p["stages"])
    EXPECT_LE(s["per_device"]["peak_bytes"].get<double>(),
              s["per_device"]["capacity_bytes"].get<double>());
  bool refused = false;
  for (const json& c : p["candidates"]) refused |= !c["feasible"].get<bool>();
  EXPECT_TRUE(refused);  // TP 1 x PP 1 cannot hold 65.7 GiB on one die

  const Invocation bf16 = halctl({"plan", "--model", "llama-3-70b", "--preset", "atom-max",
                                  "--devices", "npu:0..7", "--tensor-parallel", "auto"},
                                 kNoCache);
  EXPECT_EQ(bf16.exit_code, 1) << bf16.out;
  EXPECT_NE(bf16.err.find("at least 9 devices"), std::string::npos) << bf16.err;

  const Invocation bad = halctl({"plan", "--model", "llama-3-70b", "--preset", "atom-max",
                                 "--devices", "npu:0..7", "--tensor-parallel", "3"},
                                kNoCache);
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.err.find("divisible by 3"), std::string::npos) << bad.err;
}

TEST(HalctlPlan, Gpt2JsonHasTheDocumentedKeys) {
  const Invocation r = halctl({"plan", "--model", "gpt2", "--json"}, kNoCache);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json p = r.parsed();
  for (const char* key :
       {"model",          "source",          "config",        "parameters",    "batch",
        "prompt_len",     "max_new_tokens",  "dtype",         "compute_dtype", "weight_bytes",
        "kv_cache_bytes", "placement",       "method",        "devices",       "prefill",
        "decode",         "bandwidth_limit", "total_seconds", "why",           "notes"})
    EXPECT_TRUE(p.contains(key)) << key;
  EXPECT_EQ(p["model"], "gpt2");
  ASSERT_EQ(p["devices"].size(), 1u);
  for (const char* key : {"id", "name", "timing", "layers", "layer_count", "embedding", "head",
                          "memory", "memory_bandwidth_bytes_per_s", "decode_hbm_bytes_per_step"})
    EXPECT_TRUE(p["devices"][0].contains(key)) << key;
  for (const char* key : {"weights_bytes", "kv_cache_bytes", "prefill_activation_bytes",
                          "decode_activation_bytes", "peak_bytes", "capacity_bytes"})
    EXPECT_TRUE(p["devices"][0]["memory"].contains(key)) << key;
  for (const char* key : {"seconds", "tokens", "tokens_per_s", "flops", "hbm_bytes", "bound"})
    EXPECT_TRUE(p["prefill"].contains(key)) << key;
  for (const char* key : {"seconds_per_step", "tokens_per_s", "hbm_bytes_per_token", "bound"})
    EXPECT_TRUE(p["decode"].contains(key)) << key;
  EXPECT_EQ(p["devices"][0]["layer_count"], 12);
  EXPECT_GT(p["prefill"]["seconds"].get<double>(), 0);
}

TEST(HalctlPlan, BadInputExitsTwoNamingTheProblem) {
  TempDir dir;
  const std::string bad = dir.path + "/config.json";
  std::ofstream(bad) << "{\"model_type\": \"llama\", \"hidden_size\": ";
  Invocation r = halctl({"plan", "--model", bad}, kNoCache);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not valid JSON"), std::string::npos) << r.err;

  r = halctl({"plan", "--model", "gpt5"}, kNoCache);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown model 'gpt5'"), std::string::npos) << r.err;

  r = halctl({"plan", "--model", "gpt2", "--dtype", "fp4"}, kNoCache);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("dtype 'fp4'"), std::string::npos) << r.err;

  r = halctl({"plan", "--model", "gpt2", "--devices", "npu:0,cuda:7"}, kNoCache);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cuda:7 is not a device here"), std::string::npos) << r.err;

  r = halctl({"plan"}, kNoCache);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("which model"), std::string::npos) << r.err;
}

// Calibration on a real device (cpu:0) and a simulated one (npu:0), stored in a temp
// directory, read back by a later plan.
void calibrate_and_reuse(const std::string& device) {
  TempDir dir;
  const Invocation r =
      halctl({"bench", device, "--calibrate", "--quick", "--calibration-dir", dir.path, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  const json j = r.parsed();
  const std::string path = j["path"].get<std::string>();
  EXPECT_EQ(path.rfind(dir.path, 0), 0u) << path;
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  const json stored = json::parse(slurp(path));
  EXPECT_EQ(stored, j["calibration"]);
  EXPECT_EQ(stored["format"], "hal-calibration");
  for (const char* cls : {"matrix", "vector", "data"}) {
    ASSERT_TRUE(stored["op_classes"].contains(cls)) << cls << " in " << stored;
    for (const char* e : {"compute_efficiency", "memory_efficiency"}) {
      const double v = stored["op_classes"][cls][e].get<double>();
      EXPECT_GT(v, 0) << cls << "." << e;
      EXPECT_LE(v, 1) << cls << "." << e;
    }
  }
  EXPECT_GT(j["samples"].size(), 10u);

  // The text form says where it stored it.
  const Invocation t =
      halctl({"bench", device, "--calibrate", "--quick", "--calibration-dir", dir.path});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("stored: " + path), std::string::npos) << t.out;

  // A later plan on the cost model reads it (through the environment variable, as runs do).
  const Invocation p =
      halctl({"plan", "--model", "gpt2", "--devices", device, "--timing", "cost-model", "--json"},
             "HAL_CALIBRATION_DIR='" + dir.path + "'");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const json pj = p.parsed();
  // (A device with a compiler times its compiled units by their executables; the other
  // ops by the calibrated cost model.)
  const std::string timing = pj["devices"][0]["timing"].get<std::string>();
  EXPECT_TRUE(timing == "roofline cost model, calibrated" ||
              timing == "compiled executables; other ops: roofline cost model, calibrated")
      << timing;
  bool noted = false;
  for (const json& n : pj["notes"])
    noted = noted || n.get<std::string>().find("calibration from " + path) != std::string::npos;
  EXPECT_TRUE(noted) << pj["notes"];
}

TEST(HalctlBenchCalibrate, CpuStoresEfficienciesALaterPlanUses) { calibrate_and_reuse("cpu:0"); }

TEST(HalctlBenchCalibrate, SimulatedNpuStoresEfficienciesALaterPlanUses) {
  calibrate_and_reuse("npu:0");
}

TEST(HalctlBenchCalibrate, OptionsOnlyWithCalibrate) {
  const Invocation r = halctl({"bench", "cpu:0", "--quick"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--calibrate"), std::string::npos) << r.err;
}

}  // namespace
