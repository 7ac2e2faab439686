// The memory bandwidth probe (hal/memory_bandwidth.h): what it measures and reports, on a
// buffer small enough for a test. No figure's size is asserted: that is this machine's.
#include "hal/memory_bandwidth.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace {

TEST(MemoryBandwidth, RunsEveryPartOnTheTeamGivenAndReportsBothProbes) {
  std::mutex mu;
  std::multiset<int> parts;
  std::atomic<int> calls{0};
  const hal::ThreadTeam team = [&](int n, const std::function<void(int)>& part) {
    ++calls;
    EXPECT_EQ(n, 3);
    std::vector<std::thread> pool;
    for (int t = 0; t < n; ++t)
      pool.emplace_back([&, t] {
        part(t);
        std::lock_guard<std::mutex> lock(mu);
        parts.insert(t);
      });
    for (std::thread& th : pool) th.join();
  };
  const uint64_t asked = 48ull << 20;
  const hal::BandwidthMeasurement m = hal::measure_memory_bandwidth(asked, 2, 3, team);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.threads, 3);
  EXPECT_EQ(m.passes, 2);
  EXPECT_GT(m.buffer_bytes, asked - (1u << 20));  // rounded down to whole blocks only
  EXPECT_LE(m.buffer_bytes, asked);
  // First touch, then per pass a read and a triad: 5 team calls, each part once in each.
  EXPECT_EQ(calls.load(), 5);
  EXPECT_EQ(parts.count(0), 5u);
  EXPECT_EQ(parts.count(2), 5u);
  EXPECT_GE(m.read_best, m.read_median);
  EXPECT_GT(m.read_median, 0);
  EXPECT_GE(m.triad_best, m.triad_median);
  EXPECT_GT(m.triad_median, 0);
  EXPECT_GE(m.others_cpus, 0);
  EXPECT_GT(m.seconds, 0);
  const std::string how = m.describe();
  EXPECT_NE(how.find("read-only"), std::string::npos) << how;
  EXPECT_NE(how.find("best of 2 passes on 3 threads"), std::string::npos) << how;
}

TEST(MemoryBandwidth, WithoutATeamUsesThreadsOfItsOwn) {
  const hal::BandwidthMeasurement m = hal::measure_memory_bandwidth(16ull << 20, 1, 2);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m.threads, 2);
  EXPECT_EQ(m.passes, 1);
}

// A probe kept between measurements: its buffer is touched once, at construction; each
// measure() then runs only its passes (a read and a triad each) on the team.
TEST(MemoryBandwidth, AProbeKeptMeasuresAgainWithoutTouchingItsBufferAgain) {
  std::atomic<int> calls{0};
  const hal::ThreadTeam team = [&](int n, const std::function<void(int)>& part) {
    ++calls;
    std::vector<std::thread> pool;
    for (int t = 0; t < n; ++t) pool.emplace_back(part, t);
    for (std::thread& th : pool) th.join();
  };
  const hal::MemoryBandwidthProbe probe(24ull << 20, 2, team);
  ASSERT_TRUE(probe.ok());
  EXPECT_EQ(calls.load(), 1);  // first touch
  for (int passes : {1, 3}) {
    calls = 0;
    const hal::BandwidthMeasurement m = probe.measure(passes);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m.passes, passes);
    EXPECT_EQ(m.threads, 2);
    EXPECT_EQ(calls.load(), 2 * passes);
    EXPECT_GT(m.buffer_bytes, (24ull << 20) - (1u << 20));
    EXPECT_GE(m.read_best, m.read_median);
    EXPECT_GT(m.read_median, 0);
  }
  const hal::MemoryBandwidthProbe tiny(64, 4);
  EXPECT_FALSE(tiny.ok());
  EXPECT_FALSE(tiny.measure(1).ok());
}

TEST(MemoryBandwidth, ABufferTooSmallForOneBlockPerThreadMeasuresNothing) {
  const hal::BandwidthMeasurement m = hal::measure_memory_bandwidth(64, 1, 4);
  EXPECT_FALSE(m.ok());
  EXPECT_EQ(m.buffer_bytes, 0u);
}

TEST(MemoryBandwidth, BufferSizeIsPastEveryCacheAndWithinMemory) {
  // 4x a known last-level cache, at least 1 GiB; 2 GiB when unknown; never under 256 MiB
  // and (on a machine with less than 4x that available) at most a quarter of it.
  for (uint64_t llc : {uint64_t(0), uint64_t(32) << 20, uint64_t(512) << 20}) {
    const uint64_t b = hal::bandwidth_buffer_bytes(llc);
    EXPECT_GE(b, 256ull << 20) << llc;
    const uint64_t wanted = llc > 0 ? std::max<uint64_t>(4 * llc, 1ull << 30) : 2ull << 30;
    EXPECT_LE(b, wanted) << llc;
  }
}

}  // namespace
