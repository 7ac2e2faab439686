// The CPU backend's parallel loops (backends/cpu/cpu_threading.h): every index runs exactly
// once whether a loop runs on the hot team or through oneTBB, from one caller or several
// at once, nested or not; a part's exception reaches the caller and leaves the team
// usable. Registered with HAL_CPU_THREADS=4 (and once more with the team off), so the
// team has helpers on any machine; also run under ThreadSanitizer in CI.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cpu_threading.h"

namespace {

using hal::cpu::parallel_for;
using hal::cpu::parallel_for_static;

bool team_enabled() {
  const char* env = std::getenv("HAL_CPU_SPIN_US");
  return hal::cpu::thread_budget() > 1 && !(env && std::string(env) == "0");
}

// Runs one loop of each kind over n indices and checks each index ran once.
void expect_each_index_once(int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  parallel_for(n, grain, [&](int64_t b, int64_t e) {
    ASSERT_LE(0, b);
    ASSERT_LT(b, e);
    ASSERT_LE(e, n);
    for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
  });
  parallel_for_static(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(hits[size_t(i)].load(), 2) << "index " << i << " of " << n;
}

// Runs one budget-wide loop whose parts wait (up to 10 s) for a second thread; true when
// it ran on the hot team and its parts did run on two threads at once.
bool next_hot_loop_runs_on_two_threads() {
  std::atomic<int> arrived{0};
  const int64_t hot_before = hal::cpu::hot_team_loops();
  parallel_for_static(hal::cpu::thread_budget(), [&](int64_t, int64_t) {
    arrived.fetch_add(1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (arrived.load() < 2 && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
  });
  return hal::cpu::hot_team_loops() > hot_before && arrived.load() >= 2;
}

TEST(CpuThreading, EveryIndexRunsOnce) {
  for (int round = 0; round < 50; ++round)
    for (int64_t n : {1, 2, 3, 7, 64, 1000, 4099})
      for (int64_t grain : {1, 3, 16, 5000}) expect_each_index_once(n, grain);
}

TEST(CpuThreading, TheHotTeamRunsLoopsOnceItIsUp) {
  if (!team_enabled()) GTEST_SKIP() << "one thread, or HAL_CPU_SPIN_US=0: no team";
  // The helpers start as tasks oneTBB hands to its workers; on a busy machine that takes
  // a while, so loop (without a bound on speed) until one loop has run on the team.
  const int64_t before = hal::cpu::hot_team_loops();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (hal::cpu::hot_team_loops() == before && std::chrono::steady_clock::now() < deadline) {
    hal::cpu::prepare_threads();
    expect_each_index_once(256, 1);
  }
  EXPECT_GT(hal::cpu::hot_team_loops(), before);
  // Parts of a hot loop run on more than one thread (each helper claims parts while the
  // caller runs its own; next_hot_loop_runs_on_two_threads says whether one loop did).
  bool saw_two = false;
  for (int attempt = 0; attempt < 100 && !saw_two; ++attempt)
    saw_two = next_hot_loop_runs_on_two_threads();
  EXPECT_TRUE(saw_two) << "no hot loop ran its parts on two threads";
}

// After rest_threads() (a graph's execution ended) the helpers yield instead of spinning,
// but they stay: the next loop still runs on the team, its parts on two threads, and
// every index once.
TEST(CpuThreading, ARestingTeamTakesTheNextLoop) {
  if (!team_enabled()) GTEST_SKIP() << "one thread, or HAL_CPU_SPIN_US=0: no team";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool saw_two = false;
  while (!saw_two && std::chrono::steady_clock::now() < deadline) {
    hal::cpu::prepare_threads();
    expect_each_index_once(256, 1);  // the team up (a loop ran on it) or starting
    hal::cpu::rest_threads();
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // helpers now yielding
    saw_two = next_hot_loop_runs_on_two_threads();
    hal::cpu::rest_threads();
    expect_each_index_once(4099, 16);
  }
  EXPECT_TRUE(saw_two) << "no loop after rest_threads() ran on the team's two threads";
}

TEST(CpuThreading, APartsExceptionReachesTheCaller) {
  for (int round = 0; round < 20; ++round) {
    EXPECT_THROW(parallel_for(100, 1,
                              [&](int64_t b, int64_t e) {
                                for (int64_t i = b; i < e; ++i)
                                  if (i == 57) throw std::runtime_error("part 57");
                              }),
                 std::runtime_error);
    EXPECT_THROW(parallel_for_static(4,
                                     [&](int64_t b, int64_t) {
                                       if (b == 0) throw std::runtime_error("first part");
                                     }),
                 std::runtime_error);
    expect_each_index_once(1000, 4);  // the team is still usable
  }
}

TEST(CpuThreading, NestedLoopsRunEveryIndexOnce) {
  constexpr int64_t kOuter = 16, kInner = 300;
  std::vector<std::atomic<int>> hits(static_cast<size_t>(kOuter * kInner));
  for (int round = 0; round < 20; ++round) {
    for (auto& h : hits) h = 0;
    parallel_for(kOuter, 1, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o)
        parallel_for(kInner, 8, [&](int64_t ib, int64_t ie) {
          for (int64_t i = ib; i < ie; ++i) hits[size_t(o * kInner + i)].fetch_add(1);
        });
    });
    for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i;
  }
}

TEST(CpuThreading, LoopsFromSeveralThreadsAtOnce) {
  // Streams run their ops on threads of their own: one loop holds the team, the others
  // run through oneTBB (pausing the team), and every loop still covers its range once.
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        const int64_t n = 100 + 37 * t + round;
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        parallel_for(n, 1 + t, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[size_t(i)].fetch_add(1);
        });
        for (auto& h : hits) failures += h.load() != 1;
      }
    });
  for (auto& c : callers) c.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
