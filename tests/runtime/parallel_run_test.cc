// Tensor- and pipeline-parallel generation in one process (ParallelRun): every rank on
// cpu:0 (several ranks share it) or on the dies of a simulated ATOM-Max. The tokens and the
// logits they were chosen from match a single-device run of the same model; a die lost
// mid-run ends every rank with its error; collectives show in the run report.
#include <gtest/gtest.h>

#include <cmath>

#include "hal/platform.h"
#include "hal/runtime/parallel.h"
#include "hal/runtime/run_report.h"

namespace {

namespace rt = hal::runtime;

struct Case {
  const char* model;
  int32_t tp, pp;
};

std::unique_ptr<hal::Platform> platform(const std::string& npu = "",
                                        const std::string& faults = "") {
  hal::PlatformOptions o;
  o.only_plugins = {"cpu", "npu_sim"};
  if (!npu.empty()) o.plugin_options["npu_sim"] = {{"devices", npu}};
  if (!faults.empty()) o.plugin_options["npu_sim"].push_back({"faults", faults});
  auto p = hal::Platform::create(o);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(*p) : nullptr;
}

std::shared_ptr<const rt::Model> model(const char* name) {
  auto m = rt::make_builtin_model(name);
  EXPECT_TRUE(m.ok());
  return std::shared_ptr<const rt::Model>(std::move(*m));
}

rt::GenerationOptions greedy(int64_t n) {
  rt::GenerationOptions g;
  g.max_new_tokens = n;
  g.keep_logits = true;
  return g;
}

const std::vector<std::vector<int32_t>> kPrompts = {{5, 9, 200}, {7}};

// The single-device reference run.
rt::GenerationResult reference(const std::shared_ptr<const rt::Model>& m, hal::Device* d) {
  rt::SessionOptions so;
  so.devices = {d};
  auto s = rt::Session::create(m, so);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  auto r = (*s)->generate(kPrompts, greedy(6));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return std::move(*r);
}

void expect_same_run(const rt::GenerationResult& want, const rt::GenerationResult& got,
                     double tolerance, const std::string& what) {
  ASSERT_EQ(got.tokens, want.tokens) << what;
  ASSERT_EQ(got.logits.size(), want.logits.size()) << what;
  for (size_t b = 0; b < want.logits.size(); ++b) {
    ASSERT_EQ(got.logits[b].size(), want.logits[b].size()) << what;
    double worst = 0;
    for (size_t i = 0; i < want.logits[b].size(); ++i)
      worst = std::max(worst, double(std::abs(got.logits[b][i] - want.logits[b][i])));
    EXPECT_LE(worst, tolerance) << what << ", prompt " << b;
  }
}

TEST(ParallelRun, CpuRanksGiveTheSingleDeviceTokensAndLogits) {
  auto p = platform();
  ASSERT_NE(p, nullptr);
  hal::Device* cpu = *p->device("cpu:0");
  for (const Case& c : {Case{"gpt2-tiny", 2, 1}, Case{"gpt2-tiny", 4, 1}, Case{"gpt2-tiny", 1, 2},
                        Case{"gpt2-tiny", 2, 2}, Case{"llama-tiny", 2, 1}, Case{"llama-tiny", 4, 1},
                        Case{"llama-tiny", 1, 2}, Case{"llama-tiny", 2, 2}}) {
    auto m = model(c.model);
    const rt::GenerationResult want = reference(m, cpu);
    rt::ParallelRunOptions o;
    o.degrees = {c.tp, c.pp};
    o.devices.assign(size_t(c.tp * c.pp), cpu);
    auto run = rt::ParallelRun::create(m, o);
    ASSERT_TRUE(run.ok()) << run.status().to_string();
    auto got = (*run)->generate(kPrompts, greedy(6));
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    // f32 partial sums added in another order: the logits agree to rounding.
    expect_same_run(want, *got, 1e-3, std::string(c.model) + " " + o.degrees.to_string());
  }
}

TEST(ParallelRun, AtomMaxDiesGiveTheSingleDieTokens) {
  auto p = platform("atom-max");
  ASSERT_NE(p, nullptr);
  std::vector<hal::Device*> dies;
  for (int i = 0; i < 4; ++i) dies.push_back(*p->device("npu:" + std::to_string(i)));
  for (const Case& c :
       {Case{"llama-tiny", 4, 1}, Case{"llama-tiny", 2, 2}, Case{"gpt2-tiny", 2, 2}}) {
    auto m = model(c.model);
    const rt::GenerationResult want = reference(m, dies[0]);
    rt::ParallelRunOptions o;
    o.degrees = {c.tp, c.pp};
    o.devices = dies;
    o.profile = true;
    auto run = rt::ParallelRun::create(m, o);
    ASSERT_TRUE(run.ok()) << run.status().to_string();
    auto got = (*run)->generate(kPrompts, greedy(6));
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    // The dies round matmul operands to bf16: split products differ in the last bits.
    expect_same_run(want, *got, 5e-2, std::string(c.model) + " " + o.degrees.to_string());
    // Communication shows next to compute in rank 0's report.
    rt::RunReportInput in;
    in.model = c.model;
    in.devices = {dies[0]};
    in.runs = got->runs;
    const rt::RunReport rep = rt::build_run_report(in);
    ASSERT_FALSE(rep.collectives.empty());
    for (const rt::CollectiveReport& cr : rep.collectives) {
      EXPECT_GT(cr.count, 0);
      EXPECT_GT(cr.seconds, 0);
      if (cr.collective == "all_reduce") {
        EXPECT_EQ(cr.link, "peer");  // the ATOM-Max switch
        EXPECT_GT(cr.bytes_sent, 0u);
      }
    }
  }
}

TEST(ParallelRun, ALostDieEndsEveryRankWithItsError) {
  auto p = platform("atom-max", "npu:1:lost@op=60");
  ASSERT_NE(p, nullptr);
  std::vector<hal::Device*> dies;
  for (int i = 0; i < 2; ++i) dies.push_back(*p->device("npu:" + std::to_string(i)));
  rt::ParallelRunOptions o;
  o.degrees = {2, 1};
  o.devices = dies;
  auto run = rt::ParallelRun::create(model("llama-tiny"), o);
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  auto got = (*run)->generate(kPrompts, greedy(6));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), hal::StatusCode::kDeviceLost) << got.status().to_string();
  EXPECT_NE(got.status().message().find("npu:1"), std::string::npos) << got.status().to_string();
}

TEST(ParallelRun, BadLayoutsAreRefusedNamingWhy) {
  auto p = platform();
  ASSERT_NE(p, nullptr);
  hal::Device* cpu = *p->device("cpu:0");
  rt::ParallelRunOptions o;
  o.degrees = {3, 1};
  o.devices.assign(3, cpu);
  auto three = rt::ParallelRun::create(model("llama-tiny"), o);
  EXPECT_EQ(three.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_NE(three.status().message().find("divisible by 3"), std::string::npos);
  o.degrees = {2, 1};
  o.devices.assign(3, cpu);
  auto count = rt::ParallelRun::create(model("llama-tiny"), o);
  EXPECT_EQ(count.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_NE(count.status().message().find("needs 2 devices"), std::string::npos);
}

// Streaming and stop decisions (what halctl's text prompts use): each local rank has its
// own on_token; a row one of them ends (here: after its second token, as a stop string
// would) ends on every rank, and the run ends with the single-device tokens up to there.
TEST(ParallelRun, EachRanksOwnOnTokenEndsRowsAlike) {
  auto p = platform();
  ASSERT_NE(p, nullptr);
  hal::Device* cpu = *p->device("cpu:0");
  auto m = model("llama-tiny");
  const rt::GenerationResult want = reference(m, cpu);
  rt::ParallelRunOptions o;
  o.degrees = {2, 2};
  o.devices.assign(4, cpu);
  auto run = rt::ParallelRun::create(m, o);
  ASSERT_TRUE(run.ok()) << run.status().to_string();

  rt::GenerationOptions go = greedy(6);
  go.on_token = [](int64_t, int32_t) { return true; };
  auto shared = (*run)->generate(kPrompts, go);
  ASSERT_FALSE(shared.ok());
  EXPECT_EQ(shared.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_NE(shared.status().message().find("per_rank"), std::string::npos);

  // Row 0 ends after its second token on every rank; row 1 runs to the length limit.
  std::vector<std::vector<std::vector<int32_t>>> seen(4);
  auto got = (*run)->generate(kPrompts, go, [&seen](size_t rank, rt::GenerationOptions& o) {
    seen[rank].resize(2);
    o.on_token = [&tokens = seen[rank]](int64_t row, int32_t token) {
      tokens[size_t(row)].push_back(token);
      return !(row == 0 && tokens[0].size() == 2);
    };
  });
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  const std::vector<int32_t> row0(want.tokens[0].begin(), want.tokens[0].begin() + 2);
  EXPECT_EQ(got->tokens[0], row0);
  EXPECT_EQ(got->tokens[1], want.tokens[1]);
  EXPECT_EQ(got->stopped, (std::vector<uint8_t>{1, 0}));
  for (size_t r = 0; r < 4; ++r) {
    EXPECT_EQ(seen[r][0], row0) << "rank " << r;
    EXPECT_EQ(seen[r][1], want.tokens[1]) << "rank " << r;
  }
}

}  // namespace
