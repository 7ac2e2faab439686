// The conformance suite must be able to fail: the fixture_buggy plugin (tests/plugins)
// has one bug per plugin option, and each must be caught by the cases meant for it,
// while the same device without a bug passes everything.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "hal/cts.h"
#include "hal/hal.h"

namespace hal {
namespace {

const std::string kBuggy = std::string(HAL_FIXTURE_DIR) + "/libhal_plugin_fixture_buggy.so";

std::unique_ptr<Platform> load_buggy(const std::string& bug) {
  PlatformOptions options;
  options.plugin_paths = {kBuggy};
  options.use_env_plugin_path = false;
  options.use_default_plugin_dir = false;
  options.plugin_options["fixture_buggy"] = {{"bug", bug}};
  auto p = Platform::create(options);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  if (!p.ok()) return nullptr;
  EXPECT_EQ((*p)->devices().size(), 1u) << (*p)->plugin_reports().front().reason;
  return std::move(p).value();
}

cts::Report run(const std::string& bug, const std::string& filter, double wait_probe_s = 0.05) {
  auto p = load_buggy(bug);
  if (!p || p->devices().empty()) return {};
  cts::Options options;
  options.filter = filter;
  options.wait_probe_s = wait_probe_s;
  return cts::run(*p, *p->devices().front(), options);
}

// Every case whose name matches `failing` failed with `reason`, all others passed or
// were skipped.
void expect_failures(const cts::Report& r, const std::string& failing, const std::string& reason) {
  int failed = 0;
  for (const cts::CaseResult& c : r.cases) {
    const bool should_fail = cts::matches_filter(c.name, failing);
    if (should_fail) {
      EXPECT_EQ(c.outcome, cts::Outcome::kFail) << c.name << ": " << c.reason;
      EXPECT_NE(c.reason.find(reason), std::string::npos) << c.name << ": " << c.reason;
      ++failed;
    } else {
      EXPECT_NE(c.outcome, cts::Outcome::kFail) << c.name << ": " << c.reason;
    }
  }
  EXPECT_GT(failed, 0) << "no case matched " << failing;
  EXPECT_FALSE(r.ok());
}

TEST(CtsSelfTest, TheFixtureWithoutBugsPassesTheWholeSuite) {
  const cts::Report r = run("none", "");
  EXPECT_TRUE(r.ok()) << cts::format_text(r, false);
  EXPECT_GT(r.summary().passed, 200);
  // What it cannot test alone is skipped with a reason, not failed.
  for (const cts::CaseResult& c : r.cases) {
    if (c.outcome == cts::Outcome::kSkip) {
      EXPECT_FALSE(c.reason.empty()) << c.name;
    }
  }
}

TEST(CtsSelfTest, CatchesAWrongResult) {
  // add is off by 0.5 in its first element; mul is right. Empty adds have no element.
  expect_failures(run("wrong_add", "op.add.*,op.mul.*"), "op.add.*,-op.add.*.empty.*",
                  "elements outside the tolerance");
}

TEST(CtsSelfTest, CatchesALeak) {
  // Buffers never give their bytes back: every case that allocates fails its leak check.
  expect_failures(run("leak", "buffer.zero_size,copy.h2d_d2h.size_64.*,alloc.stats.device"), "*",
                  "in use");
}

TEST(CtsSelfTest, CatchesWritesOutsideTheOutputView) {
  expect_failures(run("write_outside", "op.scale.*"), "*", "wrote outside its output view");
}

TEST(CtsSelfTest, CatchesAWaitThatDoesNotWait) {
  // A broken wait shows within milliseconds; the long probe only guards against a loaded
  // machine (the case returns as soon as the early work ran).
  expect_failures(run("ignore_wait", "event.cross_stream,stream.*", /*wait_probe_s=*/30),
                  "event.cross_stream", "the wait ran");
}

TEST(CtsSelfTest, CatchesAMissingRecord) {
  expect_failures(run("drop_record", "record.*"), "record.commands", "records for");
}

TEST(CtsSelfTest, ReportsAHungCaseAndStops) {
  // An event that never completes hangs its case. The hung work keeps the device busy, so
  // this runs in a child process that leaves without tearing the platform down.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        auto p = load_buggy("lost_event");
        cts::Options options;
        options.filter = "event.record_synchronize,event.timestamps";
        options.case_timeout_s = 0.5;
        const cts::Report r = cts::run(*p, *p->devices().front(), options);
        const bool stopped_at_first = r.hung && r.cases.size() == 1 &&
                                      r.cases[0].outcome == cts::Outcome::kFail &&
                                      r.cases[0].reason.find("hung") != std::string::npos;
        std::_Exit(stopped_at_first ? 42 : 1);
      },
      ::testing::ExitedWithCode(42), "");
}

}  // namespace
}  // namespace hal
