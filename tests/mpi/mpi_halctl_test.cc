// `mpirun -np K halctl run --tensor-parallel N --pipeline-parallel M` as a user runs it:
// the tokens rank 0 prints are the single-device tokens (a llama checkpoint directory,
// the built-in models; text prompts), on cpu:0 and on simulated NPUs; a rank whose device
// is lost ends the job with its error instead of leaving the others waiting.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "hal/runtime/model.h"
#include "support/cli_run.h"

namespace {

using nlohmann::json;

const std::string kHalctl = HALCTL_PATH;

std::string quote(const std::string& s) { return "'" + s + "'"; }

json run_json(const std::string& command) {
  const hal::test::CliRun r = hal::test::run_command_line(command);
  EXPECT_EQ(r.exit_code, 0) << command << "\n" << r.err;
  try {
    return json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << command << ": stdout is not JSON: " << r.out << "\n" << r.err;
    return json();
  }
}

std::string mpirun(int ranks, const std::string& env = "") {
  return "HAL_PLUGIN_PATH= HAL_COLLECTIVE_TIMEOUT=120 " + env + " " HAL_MPIRUN " -np " +
         std::to_string(ranks) + " ";
}

const char* kRun = " run --prompt-ids 5,9,200 --max-new-tokens 8 --json";

TEST(MpiHalctl, TensorParallelRanksPrintTheSingleDeviceTokens) {
  // A llama checkpoint directory, as a user downloads one (written from llama-tiny).
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("hal_mpi_llama_" + std::to_string(::getpid()));
  auto m = hal::runtime::make_builtin_model("llama-tiny");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(hal::runtime::save_checkpoint(**m, dir.string(), hal::DType::kF32).ok());
  const std::string model = " --model " + quote(dir.string());
  const std::string want_logits = (dir / "single.bin").string(),
                    logits = (dir / "tp2.bin").string();
  const json single = run_json("HAL_PLUGIN_PATH= " + quote(kHalctl) + kRun + model +
                               " --dump-logits " + quote(want_logits));
  const json tp2 = run_json(mpirun(2) + quote(kHalctl) + kRun + model +
                            " --tensor-parallel 2 --dump-logits " + quote(logits));
  EXPECT_EQ(tp2["generated_ids"], single["generated_ids"]);
  EXPECT_EQ(tp2["tensor_parallel"], 2);
  EXPECT_EQ(tp2["processes"], 2);
  // Rank 0 writes the logits each token was chosen from: the single run's, to rounding
  // (partial sums added in another order).
  auto read_floats = [](const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), {});
    std::vector<float> v(bytes.size() / 4);
    std::memcpy(v.data(), bytes.data(), v.size() * 4);
    return v;
  };
  const std::vector<float> want = read_floats(want_logits), got = read_floats(logits);
  ASSERT_EQ(want.size(), 8u * 512);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-3) << "value " << i;
  std::filesystem::remove_all(dir);
}

TEST(MpiHalctl, FourRanksInEveryLayoutPrintTheSingleDeviceTokens) {
  for (const char* name : {"gpt2-tiny", "llama-tiny"}) {
    const std::string model = std::string(" --model ") + name;
    const json single = run_json("HAL_PLUGIN_PATH= " + quote(kHalctl) + kRun + model);
    for (const char* layout : {" --tensor-parallel 4", " --tensor-parallel 2 --pipeline-parallel 2",
                               " --pipeline-parallel 4"}) {
      const json j = run_json(mpirun(4) + quote(kHalctl) + kRun + model + layout);
      EXPECT_EQ(j["generated_ids"], single["generated_ids"]) << name << layout;
    }
  }
}

TEST(MpiHalctl, TextPromptsGiveThePlainRunsText) {
  // llama-tiny's Llama 3 style tokenizer; a stop string every process honours alike.
  const std::string args =
      " run --json --model llama-tiny --prompt 'The quick brown fox' --ignore-eos "
      "--max-new-tokens 10 --stop 'istr'";
  const json single = run_json("HAL_PLUGIN_PATH= " + quote(kHalctl) + args);
  const json tp =
      run_json(mpirun(4) + quote(kHalctl) + args + " --tensor-parallel 2 --pipeline-parallel 2");
  ASSERT_EQ(single["finish_reason"], "stop");  // the stop string is in this model's text
  EXPECT_EQ(tp["generated_ids"], single["generated_ids"]);
  EXPECT_EQ(tp["generated_text"], single["generated_text"]);
  EXPECT_EQ(tp["finish_reason"], single["finish_reason"]);
  EXPECT_EQ(tp["processes"], 4);
}

TEST(MpiHalctl, SimulatedNpuRanksPrintTheSingleDieTokens) {
  const std::string model = " --model llama-tiny --devices npu:0..3";
  const json single = run_json("HAL_PLUGIN_PATH= HAL_NPU_SIM=atom-max " + quote(kHalctl) + kRun +
                               " --model llama-tiny --devices npu:0");
  const json j = run_json(mpirun(2, "HAL_NPU_SIM=atom-max") + quote(kHalctl) + kRun + model +
                          " --tensor-parallel 2");
  EXPECT_EQ(j["generated_ids"], single["generated_ids"]);
}

TEST(MpiHalctl, ARankWhoseDeviceIsLostEndsTheJob) {
  // MPMD: rank 1 runs with a fault injected into its simulated die.
  const std::string args =
      std::string(kRun) + " --model llama-tiny --devices npu:0 --tensor-parallel 2";
  const std::string cmd =
      "HAL_PLUGIN_PATH= HAL_COLLECTIVE_TIMEOUT=60 HAL_NPU_SIM=atom " HAL_MPIRUN " -np 1 " +
      quote(kHalctl) + args + " : -np 1 -x HAL_NPU_SIM_FAULTS=npu:0:lost@op=30 " + quote(kHalctl) +
      args;
  const hal::test::CliRun r = hal::test::run_command_line(cmd);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.err.find("device lost"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ending the job"), std::string::npos) << r.err;
}

}  // namespace
