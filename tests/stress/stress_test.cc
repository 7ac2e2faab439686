// Stress: many threads x many streams x every device the platform presents (cpu:0,
// npu:0 and whatever else is loaded), for a bounded time.
//
// Each thread repeats a round on a device pair (d1, d2) of its choosing (often d1 = d2):
//   stream a (d1): copy host -> A, fill F, record e1
//   stream b (d1): wait e1; dispatch scale B = 2A + 1; dispatch add S = A + B;
//                  copy F -> host; record e2
//   stream c (d2): wait e2 (an event of another stream, often of another device or
//                  plugin); copy S (d1) -> C (d2); copy C -> host; record e3
//   host: synchronize e3, check every element (values are small integers, exact in
//         bf16 too, so the NPU simulator's reduced precision changes nothing), free.
// Streams are shared by all threads (enqueue is thread-safe), so the work of different
// threads interleaves on every stream; only events order one thread's steps.
//
// Checked: every result; no command fails; each device's allocator statistics back to
// their starting values (zero in use, zero live allocations) after the run; no deadlock:
// a watchdog prints what each thread was doing and ends the process with a failure if
// the run has not finished HAL_STRESS_WATCHDOG_SECONDS (default 300) after its deadline.
// Leaks are LeakSanitizer's job (CI runs this test under ASan/LSan and TSan).
//
// Environment: HAL_STRESS_SECONDS (default 5; CI sets it), HAL_STRESS_THREADS (default 6),
// HAL_STRESS_STREAMS (per device, default 3). The test prints the duration and the
// commands completed, and records them as test properties.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hal/hal.h"

namespace hal {
namespace {

double env_or(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const double d = std::strtod(v, &end);
  return (end && *end == '\0' && d > 0) ? d : fallback;
}

// Ends the process with a message when the run overstays: a deadlock must fail the test
// with a diagnosis instead of hanging CI until its global timeout.
class Watchdog {
 public:
  Watchdog(double seconds, std::function<std::string()> describe)
      : thread_([this, seconds, describe = std::move(describe)] {
          std::unique_lock<std::mutex> lock(mu_);
          if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return done_; })) {
            std::fprintf(stderr,
                         "stress watchdog: the run has not finished %.0f s after its deadline "
                         "(deadlock?)\n%s\n",
                         seconds, describe().c_str());
            std::fflush(stderr);
            std::_Exit(1);
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

struct DeviceStreams {
  Device* device;
  std::vector<Stream> streams;
};

// What a thread is doing, for the watchdog's report.
struct ThreadState {
  std::atomic<const char*> stage{"starting"};
  std::atomic<uint64_t> rounds{0};
  std::atomic<uint64_t> commands{0};
  std::string failure;  // first failure, written by the thread itself
};

TEST(Stress, ThreadsStreamsAndDevicesSubmitCopiesOpsAndEvents) {
  const double seconds = env_or("HAL_STRESS_SECONDS", 5);
  const int threads = int(env_or("HAL_STRESS_THREADS", 6));
  const int streams_per_device = int(env_or("HAL_STRESS_STREAMS", 3));
  const double watchdog_s = env_or("HAL_STRESS_WATCHDOG_SECONDS", 300);

  auto created = Platform::create();
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  Platform& platform = **created;
  std::vector<DeviceStreams> devices;
  std::vector<MemoryStats> before;
  for (Device* d : platform.devices()) {
    DeviceStreams ds{d, {}};
    for (int i = 0; i < streams_per_device; ++i) {
      auto s = d->create_stream();
      ASSERT_TRUE(s.ok()) << s.status().to_string();
      ds.streams.push_back(std::move(*s));
    }
    auto stats = d->memory_stats();
    ASSERT_TRUE(stats.ok()) << stats.status().to_string();
    EXPECT_EQ(stats->bytes_in_use, 0u) << d->id();
    EXPECT_EQ(stats->allocation_count, 0u) << d->id();
    before.push_back(*stats);
    devices.push_back(std::move(ds));
  }
  ASSERT_GE(devices.size(), 1u);
  std::string ids;
  for (const DeviceStreams& d : devices) ids += (ids.empty() ? "" : ", ") + d.device->id();

  std::vector<ThreadState> state(static_cast<size_t>(threads));
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(seconds);
  {
    Watchdog watchdog(seconds + watchdog_s, [&] {
      std::string s;
      for (int t = 0; t < threads; ++t)
        s += "  thread " + std::to_string(t) + ": " + state[size_t(t)].stage.load() + " after " +
             std::to_string(state[size_t(t)].rounds.load()) + " rounds\n";
      return s;
    });
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        ThreadState& me = state[size_t(t)];
        std::mt19937 rng(uint32_t(1234 + t));
        auto pick = [&](size_t n) { return size_t(rng() % n); };
        auto fail = [&](const std::string& what, const Status& st) {
          if (me.failure.empty()) me.failure = what + ": " + st.to_string();
        };
        // One event per device and step, reused round after round.
        std::vector<Event> e1, e2, e3;
        for (DeviceStreams& d : devices) {
          e1.push_back(std::move(d.device->create_event()).value());
          e2.push_back(std::move(d.device->create_event()).value());
          e3.push_back(std::move(d.device->create_event()).value());
        }
        while (std::chrono::steady_clock::now() < deadline && me.failure.empty()) {
          const size_t i1 = pick(devices.size());
          const size_t i2 = pick(2) ? i1 : pick(devices.size());
          DeviceStreams &d1 = devices[i1], &d2 = devices[i2];
          Stream& a = d1.streams[pick(d1.streams.size())];
          Stream& b = d1.streams[pick(d1.streams.size())];
          Stream& c = d2.streams[pick(d2.streams.size())];
          const int64_t n = int64_t(1 + pick(4096));
          const uint64_t bytes = uint64_t(n) * 4;
          std::vector<float> src(static_cast<size_t>(n)), out(static_cast<size_t>(n), -1.0f);
          std::vector<uint32_t> filled(static_cast<size_t>(n), 0);
          for (int64_t k = 0; k < n; ++k) src[size_t(k)] = float((k * 7 + t) % 64);
          const uint32_t pattern = 0x3f800000u + uint32_t(t);  // a float near 1.0

          me.stage = "allocating";
          auto A = d1.device->allocate(bytes), B = d1.device->allocate(bytes),
               S = d1.device->allocate(bytes), F = d1.device->allocate(bytes),
               C = d2.device->allocate(bytes);
          if (!A.ok() || !B.ok() || !S.ok() || !F.ok() || !C.ok()) {
            fail("allocate", !A.ok() ? A.status() : !C.ok() ? C.status() : B.status());
            break;
          }
          OpAttributes twice;
          twice.alpha = 2.0f;
          twice.beta = 1.0f;
          const OpDescriptor scale(OpKind::kScale, {TensorRef::contiguous(*A, DType::kF32, {n})},
                                   TensorRef::contiguous(*B, DType::kF32, {n}), twice);
          const OpDescriptor add(OpKind::kAdd,
                                 {TensorRef::contiguous(*A, DType::kF32, {n}),
                                  TensorRef::contiguous(*B, DType::kF32, {n})},
                                 TensorRef::contiguous(*S, DType::kF32, {n}));
          me.stage = "enqueueing";
          Status st;
          const std::pair<const char*, std::function<Status()>> steps[] = {
              {"copy to device", [&] { return a.copy_from_host(src.data(), *A, 0, bytes); }},
              {"fill", [&] { return a.fill(*F, 0, bytes, pattern, 4); }},
              {"record e1", [&] { return a.record(e1[i1]); }},
              {"wait e1", [&] { return b.wait(e1[i1]); }},
              {"scale", [&] { return b.dispatch(scale); }},
              {"add", [&] { return b.dispatch(add); }},
              {"copy fill to host", [&] { return b.copy_to_host(*F, 0, filled.data(), bytes); }},
              {"record e2", [&] { return b.record(e2[i1]); }},
              {"wait e2", [&] { return c.wait(e2[i1]); }},
              {"copy device to device", [&] { return c.copy(*S, 0, *C, 0, bytes); }},
              {"copy to host", [&] { return c.copy_to_host(*C, 0, out.data(), bytes); }},
              {"record e3", [&] { return c.record(e3[i2]); }},
          };
          bool ok = true;
          for (const auto& [what, step] : steps) {
            if (st = step(); !st.ok()) {
              fail(what, st);
              ok = false;
              break;
            }
          }
          me.stage = "synchronizing";
          // Even after a failed enqueue, wait for what was enqueued before freeing.
          for (Stream* s : {&a, &b, &c})
            if (Status sync = s->synchronize(); !sync.ok() && ok) {
              fail("synchronize " + s->device().id(), sync);
              ok = false;
            }
          if (ok) {
            if (Status sync = e3[i2].synchronize(); !sync.ok()) {
              fail("event synchronize", sync);
              ok = false;
            }
          }
          if (!ok) break;
          me.stage = "checking";
          for (int64_t k = 0; k < n; ++k) {
            const float x = src[size_t(k)];
            if (out[size_t(k)] != x + (2 * x + 1) || filled[size_t(k)] != pattern) {
              me.failure =
                  d1.device->id() + " -> " + d2.device->id() + ": element " + std::to_string(k) +
                  " of " + std::to_string(n) + " is " + std::to_string(out[size_t(k)]) + " (fill " +
                  std::to_string(filled[size_t(k)]) + "), expected " + std::to_string(3 * x + 1);
              break;
            }
          }
          me.rounds++;
          me.commands += std::size(steps);
          me.stage = "freeing";
        }
        me.stage = "done";
      });
    }
    for (std::thread& w : workers) w.join();
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  uint64_t rounds = 0, commands = 0;
  for (int t = 0; t < threads; ++t) {
    EXPECT_TRUE(state[size_t(t)].failure.empty())
        << "thread " << t << ": " << state[size_t(t)].failure;
    rounds += state[size_t(t)].rounds;
    commands += state[size_t(t)].commands;
    EXPECT_GT(state[size_t(t)].rounds.load(), 0u) << "thread " << t << " completed no round";
  }
  for (DeviceStreams& d : devices)
    for (Stream& s : d.streams) EXPECT_TRUE(s.synchronize().ok()) << d.device->id();
  for (size_t i = 0; i < devices.size(); ++i) {
    auto after = devices[i].device->memory_stats();
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->bytes_in_use, before[i].bytes_in_use) << devices[i].device->id();
    EXPECT_EQ(after->allocation_count, before[i].allocation_count) << devices[i].device->id();
    EXPECT_GT(after->total_allocations, before[i].total_allocations)
        << devices[i].device->id() << " was never used";
  }
  std::printf(
      "stress: %.1f s on %s, %d threads x %d streams per device: %llu rounds, %llu "
      "commands completed and checked\n",
      elapsed, ids.c_str(), threads, streams_per_device, (unsigned long long)rounds,
      (unsigned long long)commands);
  ::testing::Test::RecordProperty("seconds", std::to_string(elapsed));
  ::testing::Test::RecordProperty("rounds", std::to_string(rounds));
  ::testing::Test::RecordProperty("commands", std::to_string(commands));
}

}  // namespace
}  // namespace hal
