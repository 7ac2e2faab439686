// Generic HAL behaviour, run on every device present (the simulated NPUs in three
// configurations, and cpu:0 and any other backend built): the simulator must behave as
// the CPU backend does for copies, fills, stream order, events, allocator statistics
// and error recovery.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "npu_test_support.h"

namespace hal::npu_sim {
namespace {

Platform* shared_platform() {
  // Shared by all cases (and by test listing); never destroyed, so devices stay valid.
  static Platform* p = [] {
    auto owned = testing::open_platform({{"devices", "atom,atom-max,rebel-quad"}}, false);
    return owned.release();
  }();
  return p;
}
Platform& platform() { return *shared_platform(); }

std::vector<std::string> device_ids() {
  std::vector<std::string> ids;
  if (!shared_platform()) return ids;
  for (Device* d : platform().devices()) ids.push_back(d->id());
  return ids;
}

class EveryDevice : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto d = platform().device(GetParam());
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    device_ = *d;
  }
  Buffer alloc(uint64_t size, MemoryKind kind = MemoryKind::kDevice) {
    auto b = device_->allocate(size, kind);
    EXPECT_TRUE(b.ok()) << b.status().to_string();
    return b.ok() ? std::move(*b) : Buffer();
  }
  Stream stream(bool records = false) {
    auto s = device_->create_stream({.record_commands = records});
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return std::move(*s);
  }
  Device* device_ = nullptr;
};

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 31 + seed);
  return v;
}

TEST_P(EveryDevice, CopiesRoundTripAtAnySizeAndOffset) {
  for (uint64_t size : {uint64_t(0), uint64_t(1), uint64_t(4097), uint64_t(3) << 20}) {
    for (uint64_t off : {uint64_t(0), uint64_t(3)}) {
      SCOPED_TRACE("size " + std::to_string(size) + " offset " + std::to_string(off));
      Buffer a = alloc(size + off + 1), b = alloc(size + off + 1);
      Stream s = stream();
      const std::vector<uint8_t> in = pattern(size, uint8_t(off));
      std::vector<uint8_t> out(size, 0);
      ASSERT_TRUE(s.copy_from_host(in.data(), a, off, size).ok());
      ASSERT_TRUE(s.copy(a, off, b, 1, size).ok());
      ASSERT_TRUE(s.copy_to_host(b, 1, out.data(), size).ok());
      ASSERT_TRUE(s.synchronize().ok());
      EXPECT_EQ(in, out);
    }
  }
}

TEST_P(EveryDevice, CopiesOutOfBoundsFailTheCall) {
  Buffer a = alloc(64);
  Stream s = stream();
  std::vector<uint8_t> host(128);
  EXPECT_EQ(s.copy_from_host(host.data(), a, 1, 64).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.copy_to_host(a, 65, host.data(), 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.fill(a, 60, 8, 0, 4).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(s.synchronize().ok());
}

TEST_P(EveryDevice, FillsWritePatternsAndNothingElse) {
  for (uint32_t psize : {1u, 2u, 4u, 8u}) {
    SCOPED_TRACE("pattern size " + std::to_string(psize));
    const uint64_t size = 256, off = 8, len = 64 * psize > 200 ? 200 / psize * psize : 64 * psize;
    Buffer b = alloc(size);
    Stream s = stream();
    ASSERT_TRUE(s.fill(b, 0, size, 0xAA, 1).ok());
    ASSERT_TRUE(s.fill(b, off, len, 0x1122334455667788ull, psize).ok());
    std::vector<uint8_t> out(size);
    ASSERT_TRUE(s.copy_to_host(b, 0, out.data(), size).ok());
    ASSERT_TRUE(s.synchronize().ok());
    const uint8_t p[8] = {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
    for (uint64_t i = 0; i < size; ++i) {
      const bool inside = i >= off && i < off + len;
      ASSERT_EQ(out[i], inside ? p[(i - off) % psize] : 0xAA) << "byte " << i;
    }
  }
}

// 40 dependent adds on one stream: each sees the previous result.
TEST_P(EveryDevice, StreamRunsWorkInOrder) {
  Buffer x = alloc(64), y = alloc(64), one = alloc(64);
  Stream s = stream(true);
  const std::vector<float> ones(16, 1.0f), zeros(16, 0.0f);
  ASSERT_TRUE(s.copy_from_host(ones.data(), one, 0, 64).ok());
  ASSERT_TRUE(s.copy_from_host(zeros.data(), x, 0, 64).ok());
  for (int i = 0; i < 40; ++i) {
    const Buffer& from = i % 2 ? y : x;
    const Buffer& to = i % 2 ? x : y;
    ASSERT_TRUE(s.dispatch(OpDescriptor(OpKind::kAdd,
                                        {TensorRef::contiguous(from, DType::kF32, {16}),
                                         TensorRef::contiguous(one, DType::kF32, {16})},
                                        TensorRef::contiguous(to, DType::kF32, {16})),
                           uint64_t(100 + i))
                    .ok());
  }
  std::vector<float> out(16);
  ASSERT_TRUE(s.copy_to_host(x, 0, out.data(), 64).ok());
  ASSERT_TRUE(s.synchronize().ok());
  EXPECT_EQ(out, std::vector<float>(16, 40.0f));
  const std::vector<CommandRecord> recs = s.take_records();
  ASSERT_EQ(recs.size(), 43u);
  for (size_t i = 0; i < 40; ++i) {
    EXPECT_EQ(recs[i + 2].tag, 100 + i);
    EXPECT_EQ(recs[i + 2].op, OpKind::kAdd);
    EXPECT_EQ(recs[i + 2].flops, 16.0);
    EXPECT_EQ(recs[i + 2].bytes_read, 128u);
    EXPECT_EQ(recs[i + 2].bytes_written, 64u);
  }
  for (const CommandRecord& r : recs) EXPECT_LE(r.start_ns, r.end_ns);
  for (size_t i = 1; i < recs.size(); ++i) EXPECT_GE(recs[i].start_ns, recs[i - 1].start_ns);
  EXPECT_TRUE(s.take_records().empty());
}

// A consumer stream waits on the producer's event: it sees the data, and events carry
// ordered timestamps.
TEST_P(EveryDevice, EventsOrderWorkAcrossStreams) {
  const uint64_t size = 1 << 20;
  Buffer b = alloc(size);
  Stream producer = stream(), consumer = stream();
  auto start = device_->create_event();
  auto ready = device_->create_event();
  ASSERT_TRUE(start.ok() && ready.ok());
  EXPECT_TRUE(*ready->query());  // never recorded: complete
  for (int round = 0; round < 5; ++round) {
    std::vector<uint8_t> out(size, 0);
    ASSERT_TRUE(producer.record(*start).ok());
    ASSERT_TRUE(producer.fill(b, 0, size, uint64_t(round + 1), 1).ok());
    ASSERT_TRUE(producer.record(*ready).ok());
    ASSERT_TRUE(consumer.wait(*ready).ok());
    ASSERT_TRUE(consumer.copy_to_host(b, 0, out.data(), size).ok());
    ASSERT_TRUE(consumer.synchronize().ok());
    EXPECT_EQ(out, std::vector<uint8_t>(size, uint8_t(round + 1)));
    ASSERT_TRUE(producer.synchronize().ok());
    auto elapsed = Event::elapsed_seconds(*start, *ready);
    ASSERT_TRUE(elapsed.ok()) << elapsed.status().to_string();
    EXPECT_GE(*elapsed, 0.0);
  }
}

// Waits across devices (another device of the same plugin, or of another plugin).
TEST_P(EveryDevice, StreamsWaitOnEventsOfOtherDevices) {
  Device* other = nullptr;
  for (Device* d : platform().devices())
    if (d != device_) other = d;
  if (!other) GTEST_SKIP() << "only one device";
  const uint64_t size = 4096;
  auto ob = other->allocate(size);
  ASSERT_TRUE(ob.ok());
  auto os = other->create_stream();
  auto oe = other->create_event();
  ASSERT_TRUE(os.ok() && oe.ok());
  Buffer mine = alloc(size);
  Stream s = stream();
  const std::vector<uint8_t> in = pattern(size, 9);
  std::vector<uint8_t> out(size);
  ASSERT_TRUE(os->copy_from_host(in.data(), *ob, 0, size).ok());
  ASSERT_TRUE(os->record(*oe).ok());
  ASSERT_TRUE(s.wait(*oe).ok());
  ASSERT_TRUE(s.copy(*ob, 0, mine, 0, size).ok());
  ASSERT_TRUE(s.copy_to_host(mine, 0, out.data(), size).ok());
  ASSERT_TRUE(s.synchronize().ok());
  ASSERT_TRUE(os->synchronize().ok());
  EXPECT_EQ(in, out);
}

TEST_P(EveryDevice, AllocatorStatisticsReturnToZero) {
  auto base = device_->memory_stats();
  ASSERT_TRUE(base.ok());
  for (MemoryKind kind : {MemoryKind::kDevice, MemoryKind::kHostPinned, MemoryKind::kHostVisible,
                          MemoryKind::kVirtual}) {
    SCOPED_TRACE(std::string(memory_kind_name(kind)));
    {
      std::vector<Buffer> bufs;
      uint64_t total = 0;
      for (uint64_t size : {uint64_t(0), uint64_t(1), uint64_t(1000), uint64_t(5) << 20}) {
        auto b = device_->allocate(size, kind);
        if (!b.ok()) {
          EXPECT_NE(b.status().code(), StatusCode::kInternal) << b.status().to_string();
          continue;
        }
        total += size;
        bufs.push_back(std::move(*b));
      }
      auto mid = device_->memory_stats();
      ASSERT_TRUE(mid.ok());
      EXPECT_EQ(mid->bytes_in_use, base->bytes_in_use + total);
      EXPECT_EQ(mid->allocation_count, base->allocation_count + bufs.size());
      EXPECT_GE(mid->peak_bytes_in_use, mid->bytes_in_use);
      for (Buffer& b : bufs) {
        if (kind == MemoryKind::kHostPinned || kind == MemoryKind::kHostVisible) {
          EXPECT_TRUE(b.map().ok()) << b.map().status().to_string();
        } else if (kind == MemoryKind::kVirtual) {
          EXPECT_EQ(b.map().status().code(), StatusCode::kFailedPrecondition);
        }
      }
    }
    auto after = device_->memory_stats();
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->bytes_in_use, base->bytes_in_use);
    EXPECT_EQ(after->allocation_count, base->allocation_count);
  }
}

// A command that fails while running is reported by the next synchronize; the stream's
// later work is skipped, then the stream works again.
TEST_P(EveryDevice, FailedCommandAbortsLaterWorkThenRecovers) {
  Buffer table = alloc(4 * 8 * 4), ids = alloc(8), out = alloc(2 * 8 * 4);
  Stream s = stream();
  const std::vector<int32_t> bad_ids = {1, 7};
  ASSERT_TRUE(s.copy_from_host(bad_ids.data(), ids, 0, 8).ok());
  ASSERT_TRUE(s.dispatch(OpDescriptor(OpKind::kEmbedding,
                                      {TensorRef::contiguous(table, DType::kF32, {4, 8}),
                                       TensorRef::contiguous(ids, DType::kI32, {2})},
                                      TensorRef::contiguous(out, DType::kF32, {2, 8})))
                  .ok());
  std::vector<uint8_t> host(8, 0x5A);
  ASSERT_TRUE(s.copy_to_host(ids, 0, host.data(), 8).ok());
  const Status st = s.synchronize();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("7"), std::string::npos) << st.message();
  EXPECT_EQ(host, std::vector<uint8_t>(8, 0x5A));  // skipped
  ASSERT_TRUE(s.copy_to_host(ids, 0, host.data(), 8).ok());
  EXPECT_TRUE(s.synchronize().ok());
  EXPECT_EQ(std::memcmp(host.data(), bad_ids.data(), 8), 0);
}

TEST_P(EveryDevice, HostFunctionsRunInStreamOrder) {
  Buffer b = alloc(4096);
  Stream s = stream();
  std::vector<int> order;
  std::vector<uint8_t> out(4096);
  const std::vector<uint8_t> in = pattern(4096, 1);
  ASSERT_TRUE(s.copy_from_host(in.data(), b, 0, 4096).ok());
  ASSERT_TRUE(s.enqueue_host_func([&] { order.push_back(1); }).ok());
  ASSERT_TRUE(s.copy_to_host(b, 0, out.data(), 4096).ok());
  ASSERT_TRUE(s.enqueue_host_func([&] {
                 order.push_back(out == in ? 2 : -2);  // the copy before it is done
               }).ok());
  ASSERT_TRUE(s.synchronize().ok());
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST_P(EveryDevice, StreamsOfSeveralThreadsStayCorrect) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto b = device_->allocate(1 << 16);
      auto s = device_->create_stream();
      if (!b.ok() || !s.ok()) {
        ++failures;
        return;
      }
      for (int i = 0; i < 20; ++i) {
        const std::vector<uint8_t> in = pattern(1 << 16, uint8_t(t * 20 + i));
        std::vector<uint8_t> out(1 << 16);
        if (!s->copy_from_host(in.data(), *b, 0, in.size()).ok() ||
            !s->copy_to_host(*b, 0, out.data(), out.size()).ok() || !s->synchronize().ok() ||
            in != out)
          ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_P(EveryDevice, DestroyingAStreamWaitsForItsWork) {
  const uint64_t size = 8 << 20;
  Buffer b = alloc(size);
  std::vector<uint8_t> out(size, 0);
  const std::vector<uint8_t> in = pattern(size, 3);
  {
    Stream s = stream();
    ASSERT_TRUE(s.copy_from_host(in.data(), b, 0, size).ok());
    ASSERT_TRUE(s.copy_to_host(b, 0, out.data(), size).ok());
  }
  EXPECT_EQ(in, out);
}

INSTANTIATE_TEST_SUITE_P(Devices, EveryDevice, ::testing::ValuesIn(device_ids()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == ':') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace hal::npu_sim
