// A rank's failure ends every rank with a clear error, never a hang: mpirun jobs of
// hal_mpi_rank_check in which one rank stops (its peers time out, name it and end the job)
// or is killed (the launcher ends the others). The suite's own timeout is the backstop;
// nothing here measures time.
#include <gtest/gtest.h>

#include <string>

#include "support/cli_run.h"

namespace hal {
namespace {

std::string job(int ranks, const std::string& args, const std::string& env = "") {
  return env + " HAL_PLUGIN_PATH= " HAL_MPIRUN " -np " + std::to_string(ranks) +
         " " HAL_MPI_RANK_CHECK + " " + args;
}

TEST(MpiFailure, AStoppedRankMakesTheOthersTimeOutNamingItAndEndTheJob) {
  const test::CliRun r =
      test::run_command_line(job(2, "--stop-rank 1", "HAL_COLLECTIVE_TIMEOUT=3"));
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("no message from rank 1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ending the job"), std::string::npos) << r.err;
}

TEST(MpiFailure, AKilledRankEndsTheJob) {
  const test::CliRun r =
      test::run_command_line(job(4, "--kill-rank 2", "HAL_COLLECTIVE_TIMEOUT=60"));
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  // mpirun names the rank that died.
  EXPECT_NE((r.out + r.err).find("rank 2"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace hal
