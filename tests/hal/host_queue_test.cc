// The plugin kit's HostQueue and HostEvent (hal/plugin/host_queue.h) on their own:
// order, captures stored in place or on the heap and released before completion,
// exceptions turned into statuses, failure skipping and clearing, concurrent producers
// and synchronizers, sleeping synchronizers woken for their own work, and draining on
// destruction.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "hal/plugin/host_queue.h"

namespace hal::plugin {
namespace {

TEST(HostQueue, RunsInOrderWithSmallAndLargeCaptures) {
  HostQueue q;
  std::vector<int> seen;
  std::array<char, 4000> big{};  // larger than the inline storage: kept on the heap
  big[3999] = 7;
  for (int i = 0; i < 100; ++i) {
    if (i % 10 == 0) {
      q.enqueue([&seen, i, big] {
        seen.push_back(i + big[3999] - 7);
        return ok_status();
      });
    } else {
      q.enqueue([&seen, i] {
        seen.push_back(i);
        return ok_status();
      });
    }
  }
  ASSERT_TRUE(q.synchronize().ok());
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_TRUE(q.idle());
}

TEST(HostQueue, CapturesAreReleasedBeforeCompletion) {
  HostQueue q;
  auto token = std::make_shared<int>(1);
  std::weak_ptr<int> watch = token;
  q.enqueue([t = std::move(token)] { return ok_status(); });
  ASSERT_TRUE(q.synchronize().ok());
  EXPECT_TRUE(watch.expired());
}

TEST(HostQueue, FailureSkipsSkippableTasksUntilSynchronize) {
  HostQueue q;
  std::atomic<int> ran{0}, always{0};
  q.enqueue([] { return invalid_argument("first failure"); });
  q.enqueue([] { return invalid_argument("second failure (never reported)"); });
  q.enqueue([&] {
    ++ran;
    return ok_status();
  });
  q.enqueue(
      [&] {
        ++always;
        return ok_status();
      },
      HostQueue::Policy::kAlways);
  const Status s = q.synchronize();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "first failure (2 later command(s) of the stream were skipped)");
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(always.load(), 1);
  // Cleared: work runs again and the next synchronize is clean.
  q.enqueue([&] {
    ++ran;
    return ok_status();
  });
  EXPECT_TRUE(q.synchronize().ok());
  EXPECT_EQ(ran.load(), 1);
}

TEST(HostQueue, ExceptionsBecomeStatuses) {
  HostQueue q;
  q.enqueue([]() -> Status { throw std::runtime_error("boom"); });
  Status s = q.synchronize();
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "command threw: boom");
  q.enqueue([]() -> Status { throw std::bad_alloc(); });
  s = q.synchronize();
  EXPECT_EQ(s.code(), StatusCode::kOutOfMemory);
}

TEST(HostQueue, ConcurrentProducersAndSynchronizers) {
  HostQueue q;
  std::atomic<int64_t> sum{0};
  constexpr int kThreads = 6, kEach = 3000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        q.enqueue([&sum, i] {
          sum += i;
          return ok_status();
        });
        if (i % 500 == 0) {
          EXPECT_TRUE(q.synchronize().ok());
        }
      }
      EXPECT_TRUE(q.synchronize().ok());
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(sum.load(), int64_t(kThreads) * kEach * (kEach - 1) / 2);
}

// Waiters asleep on different commands (each task outlasts synchronize()'s spin, so they
// sleep): the worker wakes the one whose command ran first, and the later one sleeps on
// until its own has run; neither is missed nor returns early.
TEST(HostQueue, SleepingSynchronizersWakeWhenTheirOwnWorkIsDone) {
  for (int round = 0; round < 20; ++round) {
    HostQueue q;
    std::atomic<int> done{0};
    auto slow = [&] {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      ++done;
      return ok_status();
    };
    for (int i = 0; i < 5; ++i) q.enqueue(slow);
    std::atomic<int> first_saw{-1}, second_saw{-1};
    std::thread first([&] {
      EXPECT_TRUE(q.synchronize().ok());
      first_saw = done.load();
    });
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    for (int i = 0; i < 5; ++i) q.enqueue(slow);
    std::thread second([&] {
      EXPECT_TRUE(q.synchronize().ok());
      second_saw = done.load();
    });
    first.join();
    second.join();
    EXPECT_GE(first_saw.load(), 5);
    EXPECT_EQ(second_saw.load(), 10);
  }
}

TEST(HostQueue, SynchronizeWaitsOnlyForEarlierWorkAndDestructorDrains) {
  std::atomic<int> done{0};
  {
    HostQueue q;
    q.enqueue([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      ++done;
      return ok_status();
    });
    ASSERT_TRUE(q.synchronize().ok());
    EXPECT_EQ(done.load(), 1);
    for (int i = 0; i < 50; ++i)
      q.enqueue([&] {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        ++done;
        return ok_status();
      });
  }  // destructor drains the 50 pending tasks
  EXPECT_EQ(done.load(), 51);
}

TEST(HostEvent, GenerationsAndTimestamps) {
  HostQueue q;
  HostEvent e;
  EXPECT_TRUE(*e.query());  // never recorded
  EXPECT_EQ(e.timestamp_ns().status().code(), StatusCode::kFailedPrecondition);
  const uint64_t g1 = e.begin_record();
  EXPECT_FALSE(*e.query());
  EXPECT_EQ(e.timestamp_ns().status().code(), StatusCode::kFailedPrecondition);
  q.enqueue([&e, g1] {
    e.complete(g1, 100);
    return ok_status();
  });
  EXPECT_EQ(e.wait_for(g1), 100u);
  const uint64_t g2 = e.begin_record();
  EXPECT_EQ(e.current_generation(), g2);
  q.enqueue([&e, g2] {
    e.complete(g2, 250);
    return ok_status();
  });
  EXPECT_TRUE(e.synchronize().ok());
  EXPECT_EQ(*e.timestamp_ns(), 250u);
  e.complete(g1, 50);  // a stale generation does not move the timestamp back
  EXPECT_EQ(*e.timestamp_ns(), 250u);
  ASSERT_TRUE(q.synchronize().ok());
}

}  // namespace
}  // namespace hal::plugin
