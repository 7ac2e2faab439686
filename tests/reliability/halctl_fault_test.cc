// `halctl run` under injected NPU faults, as a user drives it: without --failover the
// run exits 1 with the status naming device, node and op; with --failover it prints
// the same tokens as an undisturbed run and reports the recovery on stderr and in
// --json.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include "support/cli_run.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using hal::test::CliRun;

CliRun halctl_run(const std::string& args) {
  // Two simulated ATOMs computing in exact fp32, and nothing from the environment.
  return hal::test::run_command_line(
      "env -u HAL_NPU_SIM -u HAL_NPU_SIM_FAULTS -u HAL_NPU_SIM_CONFIG " + std::string(HALCTL_PATH) +
      " run --model gpt2-tiny --devices npu:0,npu:1 --prompts '1,2,3;4,5' "
      "--max-new-tokens 6 --plugin-option npu_sim.devices=atom,atom "
      "--plugin-option npu_sim.compute_precision=fp32 " +
      args);
}

const std::string kFault = "--plugin-option npu_sim.faults=npu:0:lost@op=30";

TEST(HalctlRunFaults, ADeviceFaultFailsTheRunWithItsStatus) {
  CliRun r = halctl_run(kFault);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("halctl run: device lost: "));
  EXPECT_THAT(r.err, HasSubstr("executor: node '"));
  EXPECT_THAT(r.err, HasSubstr("on npu:0: npu:0: device lost during op 30 ("));
  EXPECT_THAT(r.err, HasSubstr("(injected fault 'npu:0:lost@op=30')"));
}

TEST(HalctlRunFaults, FailoverPrintsTheUndisturbedTokensAndReportsTheRecovery) {
  CliRun clean = halctl_run("--json");
  ASSERT_EQ(clean.exit_code, 0) << clean.err;
  const auto want = nlohmann::json::parse(clean.out);
  EXPECT_FALSE(want.contains("failovers"));  // only with --failover

  CliRun r = halctl_run(kFault + " --failover --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto got = nlohmann::json::parse(r.out);
  EXPECT_EQ(got["generated_ids"], want["generated_ids"]);
  ASSERT_EQ(got["failovers"].size(), 1u) << r.out;
  const auto& ev = got["failovers"][0];
  EXPECT_EQ(ev["code"], "device lost");
  EXPECT_THAT(ev["fault"].get<std::string>(), HasSubstr("injected fault 'npu:0:lost@op=30'"));
  EXPECT_EQ(ev["lost"], nlohmann::json::array({"npu:0"}));
  EXPECT_EQ(ev["devices"], nlohmann::json::array({"npu:1"}));
  EXPECT_EQ(got["devices"], nlohmann::json::array({"npu:1"}));  // what it finished on
  EXPECT_THAT(r.err, HasSubstr("halctl run: failover after device lost: "));
  EXPECT_THAT(r.err, HasSubstr("lost npu:0; continued on npu:1: "));

  // A transient fault: the same devices, the same tokens.
  CliRun t = halctl_run("--plugin-option npu_sim.faults=npu:0:timeout@op=40 --failover --json");
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const auto tj = nlohmann::json::parse(t.out);
  EXPECT_EQ(tj["generated_ids"], want["generated_ids"]);
  ASSERT_EQ(tj["failovers"].size(), 1u);
  EXPECT_EQ(tj["failovers"][0]["code"], "deadline exceeded");
  EXPECT_TRUE(tj["failovers"][0]["lost"].empty());
  EXPECT_THAT(t.err, HasSubstr("no device lost (transient)"));
}

TEST(HalctlRunFaults, ASlowDeviceChangesNothingButTime) {
  CliRun clean = halctl_run("--json");
  CliRun slow = halctl_run("--plugin-option npu_sim.faults=npu:0:slow=8x --json");
  ASSERT_EQ(slow.exit_code, 0) << slow.err;
  EXPECT_EQ(nlohmann::json::parse(slow.out)["generated_ids"],
            nlohmann::json::parse(clean.out)["generated_ids"]);
}

}  // namespace
