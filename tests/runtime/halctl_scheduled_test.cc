// `halctl run` across devices and `halctl report` as users drive them: the scheduler's
// placement gives the single device's tokens (NPU simulator in fp32 mode), pins and a
// too-small NPU split the model, a device lacking ops falls back (or fails with
// --strict-placement), --report / --trace files are well formed with figures that hold
// (HBM bytes per decode token >= the weights read there, not inflated), and the roofline
// SVG has a point per op class.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include "support/cli_run.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using hal::test::CliRun;

CliRun halctl(const std::string& args) {
  return hal::test::run_command_line(std::string(HALCTL_PATH) + " " + args);
}

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() /
         ("halctl_sched_test_" + std::to_string(::getpid()) + "_" + name);
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f, nullptr, false);
}

const char* kExact = " --plugin-option npu_sim.compute_precision=fp32";

std::vector<int32_t> tokens_of(const CliRun& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.contains("generated_ids")) return {};
  return j["generated_ids"].get<std::vector<int32_t>>();
}

class HalctlScheduled : public ::testing::TestWithParam<std::string> {};

TEST_P(HalctlScheduled, CpuAndNpuGiveTheSingleDeviceTokensWithReportAndTrace) {
  const std::string common =
      "run --model " + GetParam() + " --prompt-ids 5,6,7,8 --max-new-tokens 8 --json" + kExact;
  CliRun single = halctl(common + " --devices cpu:0");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const fs::path report = temp_path(GetParam() + "_r.json"), trace = temp_path("t.json");
  CliRun both = halctl(common + " --devices cpu:0,npu:0 --report " + report.string() + " --trace " +
                       trace.string());
  if (both.exit_code != 0 && both.err.find("npu:0") != std::string::npos &&
      both.err.find("not found") != std::string::npos)
    GTEST_SKIP() << "no NPU simulator in this build";
  ASSERT_EQ(both.exit_code, 0) << both.err;
  EXPECT_EQ(tokens_of(both), tokens_of(single));
  auto out = nlohmann::json::parse(both.out);
  ASSERT_TRUE(out["scheduling"]["graphs"].is_array());
  EXPECT_GT(out["scheduling"]["graphs"][0]["predicted_makespan_s"].get<double>(), 0);

  auto r = read_json(report);
  ASSERT_FALSE(r.is_discarded());
  EXPECT_EQ(r["format"], "hal-run-report");
  ASSERT_EQ(r["devices"].size(), 2u);
  EXPECT_EQ(r["decode_tokens"], 7);
  double weights = 0;
  for (const auto& d : r["devices"]) {
    SCOPED_TRACE(d["id"].get<std::string>());
    const double per_token = d["decode_hbm_bytes_per_token"].get<double>();
    const double streamed = d["decode_streamed_weight_bytes"].get<double>();
    const double held = d["decode_weight_bytes"].get<double>();
    const double kv = d["decode_kv_cache_bytes"].get<double>();
    weights += held;
    // At least the weights read in full there, at most 1.5x the weights plus the KV cache.
    EXPECT_GE(per_token, streamed);
    EXPECT_LE(per_token, 1.5 * held + kv);
    EXPECT_LE(d["peak_memory_bytes"].get<double>(), d["capacity_bytes"].get<double>());
    for (const auto& c : d["op_classes"]) {
      const std::string bound = c["bound"];
      EXPECT_TRUE(bound == "memory" || bound == "compute") << bound;
    }
  }
  EXPECT_EQ(weights, out["weight_bytes"].get<double>());
  ASSERT_EQ(r["phases"].size(), 2u);
  for (const auto& ph : r["phases"]) {
    EXPECT_GT(ph["predicted_makespan_s"].get<double>(), 0);
    EXPECT_GT(ph["measured_makespan_s"].get<double>(), 0);
  }

  auto t = read_json(trace);
  ASSERT_FALSE(t.is_discarded()) << "trace is not JSON";
  std::set<std::string> processes;
  for (const auto& e : t["traceEvents"])
    if (e["ph"] == "M" && e["name"] == "process_name")
      processes.insert(e["args"]["name"].get<std::string>().substr(0, 5));
  EXPECT_EQ(processes, (std::set<std::string>{"cpu:0", "npu:0"}));
  fs::remove(report);
  fs::remove(trace);
}

INSTANTIATE_TEST_SUITE_P(Models, HalctlScheduled, ::testing::Values("gpt2-tiny", "llama-tiny"),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST(HalctlScheduledPlacement, PinsAndATooSmallNpuSplitTheModel) {
  const std::string common =
      "run --model gpt2-tiny --prompt-ids 1,2,3 --max-new-tokens 5 --json --devices cpu:0,npu:0";
  CliRun single = halctl("run --model gpt2-tiny --prompt-ids 1,2,3 --max-new-tokens 5 --json");
  ASSERT_EQ(single.exit_code, 0) << single.err;
  CliRun pinned = halctl(common + kExact + " --placement \"layers=0:npu:0;rest=cpu:0\"");
  ASSERT_EQ(pinned.exit_code, 0) << pinned.err;
  EXPECT_EQ(tokens_of(pinned), tokens_of(single));
  auto pj = nlohmann::json::parse(pinned.out);
  EXPECT_EQ(pj["layer_devices"][0], 1);
  EXPECT_EQ(pj["layer_devices"][1], 0);

  // An NPU with room for about half of gpt2-small (its memory must exceed its 64 MiB of
  // SRAM, so the tiny model would fit whole).
  const std::string small =
      "run --model gpt2-small-random --prompt-ids 1,2,3 --max-new-tokens 3 --json";
  CliRun small_cpu = halctl(small + " --devices cpu:0");
  ASSERT_EQ(small_cpu.exit_code, 0) << small_cpu.err;
  const double weights = nlohmann::json::parse(small_cpu.out)["weight_bytes"].get<double>();
  const fs::path config = temp_path("small_npu.json");
  {
    std::ofstream f(config);
    f << R"({"devices": [{"extends": "atom", "name": "small-atom", "memory_reserved_bytes": 0, )"
      << R"("memory_bytes": )" << uint64_t(weights * 0.6) << R"(}], "compute_precision": "fp32"})";
  }
  // Which layers go where depends on the devices' figures: fixed ones (the CPU's
  // bandwidth set, no stored calibration read), so this machine's speed today cannot
  // make the CPU the faster device that keeps everything; contiguous layer ranges, so
  // the first op of each block tells its device.
  CliRun split = hal::test::run_command_line(
      "HAL_CPU_MEMORY_BANDWIDTH=20e9 HAL_CALIBRATION_DIR=" + temp_path("no_calibration").string() +
      " " + HALCTL_PATH + " " + small +
      " --scheduler layer-partition --devices cpu:0,npu:0 --plugin-option npu_sim.config=" +
      config.string());
  ASSERT_EQ(split.exit_code, 0) << split.err;
  EXPECT_EQ(tokens_of(split), tokens_of(small_cpu));
  auto sj = nlohmann::json::parse(split.out);
  std::set<int32_t> used;
  for (const auto& d : sj["layer_devices"]) used.insert(d.get<int32_t>());
  EXPECT_EQ(used, (std::set<int32_t>{0, 1})) << split.out;
  fs::remove(config);

  CliRun bad = halctl(common + " --placement layers=0-x:npu:0");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("layers=0-x:npu:0"));
  CliRun unknown = halctl(common + " --scheduler fastest");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("--scheduler"));
}

#ifdef HAL_TEMPLATE_PLUGIN
// The template device runs only add, mul, scale and matmul: pinned there, the rest of
// gpt2 falls back to cpu:0, each fallback printed; --strict-placement refuses.
TEST(HalctlScheduledFallback, UnsupportedOpsFallBackOrFailWhenStrict) {
  const std::string common = std::string("run --model gpt2-tiny --prompt-ids 1,2,3 ") +
                             "--max-new-tokens 3 --plugin-path " + HAL_TEMPLATE_PLUGIN +
                             " --devices cpu:0,tmpl:0 --placement rest=tmpl:0";
  CliRun fb = halctl(common);
  ASSERT_EQ(fb.exit_code, 0) << fb.err;
  EXPECT_THAT(fb.out, HasSubstr("fallback   "));
  EXPECT_THAT(fb.out, HasSubstr("(layer_norm): tmpl:0 -> cpu:0"));
  EXPECT_THAT(fb.out, HasSubstr("(attention): tmpl:0 -> cpu:0"));
  CliRun js = halctl(common + " --json");
  ASSERT_EQ(js.exit_code, 0) << js.err;
  auto j = nlohmann::json::parse(js.out);
  const auto& fallbacks = j["scheduling"]["graphs"][0]["fallbacks"];
  ASSERT_FALSE(fallbacks.empty());
  for (const auto& f : fallbacks) {
    EXPECT_EQ(f["preferred"], "tmpl:0");
    EXPECT_EQ(f["chosen"], "cpu:0");
    EXPECT_THAT(f["reason"].get<std::string>(), HasSubstr("tmpl:0"));
    // What the fallback costs against the pinned device (negative: the fallback device
    // is the faster one, as cpu:0 is here).
    EXPECT_TRUE(std::isfinite(f["cost_s"].get<double>()));
  }
  CliRun strict = halctl(common + " --strict-placement");
  EXPECT_EQ(strict.exit_code, 1);
  EXPECT_THAT(strict.err, HasSubstr("strict placement"));
  EXPECT_THAT(strict.err, HasSubstr("tmpl:0"));
}
#endif

TEST(HalctlReport, SummaryAndRooflineFromARunReport) {
  const fs::path report = temp_path("report.json"), svg = temp_path("roofline.svg");
  CliRun run = halctl(std::string("run --model gpt2-tiny --prompt-ids 1,2 --max-new-tokens 4 ") +
                      "--devices cpu:0,npu:0 --placement \"layers=0:npu:0;rest=cpu:0\" --report " +
                      report.string());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("makespan   decode: measured"));
  CliRun rep = halctl("report " + report.string() + " --roofline " + svg.string());
  ASSERT_EQ(rep.exit_code, 0) << rep.err;
  EXPECT_THAT(rep.out, HasSubstr("device     cpu:0"));
  EXPECT_THAT(rep.out, HasSubstr("device     npu:0"));
  EXPECT_THAT(rep.out, HasSubstr("matmul"));
  EXPECT_THAT(rep.out, HasSubstr("transfer   "));
  std::ifstream f(svg);
  const std::string text((std::istreambuf_iterator<char>(f)), {});
  ASSERT_EQ(text.rfind("<?xml", 0), 0u);
  EXPECT_EQ(text.substr(text.size() - 7), "</svg>\n");
  // One point per op class of each device that has a time of its own (not every op of it
  // fused into other ops' groups), each naming both.
  const auto r = read_json(report);
  std::set<std::string> want, got;
  for (const auto& d : r["devices"])
    for (const auto& c : d["op_classes"])
      if (c.value("fused", 0) < c["commands"].get<int64_t>())
        want.insert(d["id"].get<std::string>() + "/" + c["name"].get<std::string>());
  for (size_t at = text.find("<circle class=\"op\""); at != std::string::npos;
       at = text.find("<circle class=\"op\"", at + 1)) {
    const size_t dv = text.find("data-device=\"", at) + 13;
    const size_t op = text.find("data-op=\"", at) + 9;
    got.insert(text.substr(dv, text.find('"', dv) - dv) + "/" +
               text.substr(op, text.find('"', op) - op));
  }
  EXPECT_EQ(got, want);
  EXPECT_GE(want.size(), 4u);
  // Every element opened is closed (a well-formedness check without an XML parser).
  size_t opens = 0, closes = 0, self = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] != '<') continue;
    if (text[i + 1] == '/') {
      ++closes;
    } else if (text[i + 1] != '?' && text[i + 1] != '!') {
      ++opens;
      const size_t end = text.find('>', i);
      if (end != std::string::npos && text[end - 1] == '/') ++self;
    }
  }
  EXPECT_EQ(opens, closes + self);

  CliRun missing = halctl("report " + temp_path("nope.json").string());
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("nope.json"));
  const fs::path broken = temp_path("broken.json");
  std::ofstream(broken) << R"({"format": "hal-run-report", "model": "x"})";
  CliRun bad = halctl("report " + broken.string());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("broken.json"));
  for (const auto& p : {report, svg, broken}) fs::remove(p);
}

}  // namespace
