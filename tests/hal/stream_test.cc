// Streams, events, buffers and accounting through the public API on cpu:0 (the CPU
// plugin, loaded through the C ABI): ordering of work enqueued from many threads, events
// across streams and their timestamps, allocator statistics, out-of-memory and bounds
// errors, command records, and a failed command aborting the rest of its stream until
// synchronize() reports and clears the error.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "hal/hal.h"
#include "hal/units.h"

namespace hal {
namespace {

class StreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto p = Platform::create();
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    platform_ = std::move(*p).release();
  }
  static void TearDownTestSuite() {
    delete platform_;
    platform_ = nullptr;
  }
  void SetUp() override {
    auto d = platform_->device("cpu:0");
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    cpu_ = *d;
  }
  Buffer alloc(uint64_t bytes) {
    auto b = cpu_->allocate(bytes);
    EXPECT_TRUE(b.ok()) << b.status().to_string();
    return b.ok() ? std::move(b).value() : Buffer();
  }
  Stream stream(bool records = false) {
    auto s = cpu_->create_stream({.record_commands = records});
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return s.ok() ? std::move(s).value() : Stream();
  }

  static Platform* platform_;
  Device* cpu_ = nullptr;
};
Platform* StreamTest::platform_ = nullptr;

TEST_F(StreamTest, WorkFromManyThreadsKeepsEachThreadsOrder) {
  Stream s = stream();
  constexpr int kThreads = 8, kPerThread = 400;
  std::vector<std::pair<int, int>> seen;  // appended only by the stream's worker
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i)
        ASSERT_TRUE(s.enqueue_host_func([&seen, t, i] { seen.emplace_back(t, i); }).ok());
    });
  for (auto& th : threads) th.join();
  ASSERT_TRUE(s.synchronize().ok());
  ASSERT_EQ(seen.size(), size_t(kThreads * kPerThread));
  std::vector<int> next(kThreads, 0);
  for (auto [t, i] : seen) {
    ASSERT_EQ(i, next[t]) << "thread " << t << "'s commands ran out of order";
    ++next[t];
  }
}

TEST_F(StreamTest, CopiesAndOpsFromManyThreadsApplyInEnqueueOrder) {
  // Each thread owns one float of a shared buffer and repeatedly fills it with i, then
  // doubles it with an op in place through a second buffer: the last value must be the
  // last one enqueued.
  Stream s = stream();
  constexpr int kThreads = 4, kRounds = 200;
  Buffer buf = alloc(kThreads * 4), tmp = alloc(kThreads * 4);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      OpAttributes twice;
      twice.alpha = 2.0f;
      const OpDescriptor dbl(OpKind::kScale, {TensorRef::contiguous(tmp, DType::kF32, {1}, 4 * t)},
                             TensorRef::contiguous(buf, DType::kF32, {1}, 4 * t), twice);
      for (int i = 1; i <= kRounds; ++i) {
        const float v = float(i);
        uint32_t pattern;
        std::memcpy(&pattern, &v, 4);
        ASSERT_TRUE(s.fill(tmp, 4 * t, 4, pattern, 4).ok());
        ASSERT_TRUE(s.dispatch(dbl).ok());
      }
    });
  for (auto& th : threads) th.join();
  std::vector<float> out(kThreads);
  ASSERT_TRUE(s.copy_to_host(buf, 0, out.data(), 4 * kThreads).ok());
  ASSERT_TRUE(s.synchronize().ok());
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(out[t], 2.0f * kRounds);
}

TEST_F(StreamTest, EventsOrderWorkAcrossStreams) {
  Stream producer = stream(), consumer = stream();
  auto ev = cpu_->create_event();
  ASSERT_TRUE(ev.ok());
  Buffer buf = alloc(1 << 16);
  std::atomic<bool> producer_done{false};
  // The producer is slow; the consumer must wait for it through the event.
  ASSERT_TRUE(producer
                  .enqueue_host_func([&] {
                    std::this_thread::sleep_for(std::chrono::milliseconds(30));
                    producer_done = true;
                  })
                  .ok());
  ASSERT_TRUE(producer.fill(buf, 0, 1 << 16, 0x5A, 1).ok());
  ASSERT_TRUE(producer.record(*ev).ok());
  ASSERT_TRUE(consumer.wait(*ev).ok());
  bool done_when_consumer_ran = false;
  ASSERT_TRUE(
      consumer.enqueue_host_func([&] { done_when_consumer_ran = producer_done.load(); }).ok());
  std::vector<uint8_t> out(1 << 16);
  ASSERT_TRUE(consumer.copy_to_host(buf, 0, out.data(), out.size()).ok());
  ASSERT_TRUE(consumer.synchronize().ok());
  EXPECT_TRUE(done_when_consumer_ran);
  for (uint8_t b : out) ASSERT_EQ(b, 0x5A);
  ASSERT_TRUE(producer.synchronize().ok());
}

TEST_F(StreamTest, EventTimestampsFollowTheWork) {
  Stream s = stream();
  auto start = cpu_->create_event(), end = cpu_->create_event();
  ASSERT_TRUE(start.ok() && end.ok());
  // Never recorded: complete, but without a timestamp.
  EXPECT_TRUE(*start->query());
  EXPECT_TRUE(start->synchronize().ok());
  EXPECT_EQ(start->timestamp_ns().status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s.record(*start).ok());
  ASSERT_TRUE(
      s.enqueue_host_func([] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }).ok());
  ASSERT_TRUE(s.record(*end).ok());
  ASSERT_TRUE(end->synchronize().ok());
  EXPECT_TRUE(*end->query());
  auto t0 = start->timestamp_ns(), t1 = end->timestamp_ns();
  ASSERT_TRUE(t0.ok() && t1.ok());
  EXPECT_LE(*t0, *t1);
  auto elapsed = Event::elapsed_seconds(*start, *end);
  ASSERT_TRUE(elapsed.ok());
  EXPECT_GE(*elapsed, 0.020);  // the sleep lies between the two records
  // Re-recording resets the event: a wait sees the latest record.
  ASSERT_TRUE(
      s.enqueue_host_func([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }).ok());
  ASSERT_TRUE(s.record(*start).ok());
  ASSERT_TRUE(start->synchronize().ok());
  EXPECT_GT(*start->timestamp_ns(), *t1);
}

TEST_F(StreamTest, ManyThreadsChainStreamsThroughEvents) {
  // Thread i drives stream i: it waits for stream i-1's event, then runs a step. Earlier
  // steps sleep longer, so only the event waits make the steps run in chain order.
  constexpr int kStreams = 6;
  std::vector<Stream> streams;
  std::vector<Event> events;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(stream());
    events.push_back(std::move(cpu_->create_event()).value());
  }
  std::vector<int> order;
  std::mutex mu;
  // A wait sees the record issued before it: thread i issues its wait only after thread
  // i-1 has issued its record.
  std::vector<std::atomic<bool>> recorded(kStreams);
  std::vector<std::thread> threads;
  for (int i = kStreams - 1; i >= 0; --i) {
    threads.emplace_back([&, i] {
      if (i > 0) {
        while (!recorded[i - 1].load()) std::this_thread::yield();
        ASSERT_TRUE(streams[i].wait(events[i - 1]).ok());
      }
      ASSERT_TRUE(streams[i]
                      .enqueue_host_func([&, i] {
                        std::this_thread::sleep_for(std::chrono::milliseconds(2 * (kStreams - i)));
                        std::lock_guard<std::mutex> lock(mu);
                        order.push_back(i);
                      })
                      .ok());
      ASSERT_TRUE(streams[i].record(events[i]).ok());
      recorded[i] = true;
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(events.back().synchronize().ok());
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(order.size(), size_t(kStreams));
  for (int i = 0; i < kStreams; ++i) EXPECT_EQ(order[i], i);
}

TEST_F(StreamTest, AllocatorStatisticsReturnToZero) {
  auto before = cpu_->memory_stats();
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->bytes_in_use, 0u);
  EXPECT_EQ(before->allocation_count, 0u);
  {
    Buffer a = alloc(1000), b = alloc(4096);
    auto virt = cpu_->allocate(uint64_t(1) << 30, MemoryKind::kVirtual);
    ASSERT_TRUE(virt.ok()) << virt.status().to_string();
    auto mid = cpu_->memory_stats();
    ASSERT_TRUE(mid.ok());
    EXPECT_EQ(mid->bytes_in_use, 1000u + 4096u + (uint64_t(1) << 30));
    EXPECT_EQ(mid->allocation_count, 3u);
    EXPECT_GE(mid->peak_bytes_in_use, mid->bytes_in_use);
    EXPECT_EQ(mid->total_allocations, before->total_allocations + 3);
    EXPECT_EQ(virt->map().status().code(), StatusCode::kFailedPrecondition);
    b.reset();
    EXPECT_EQ(cpu_->memory_stats()->bytes_in_use, 1000u + (uint64_t(1) << 30));
  }
  auto after = cpu_->memory_stats();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->bytes_in_use, 0u);
  EXPECT_EQ(after->allocation_count, 0u);
  EXPECT_GE(after->peak_bytes_in_use, 1000u + 4096u + (uint64_t(1) << 30));
  EXPECT_EQ(after->capacity_bytes, cpu_->info().memory_bytes);
}

TEST_F(StreamTest, OutOfMemoryNamesDeviceAndSizes) {
  const uint64_t capacity = cpu_->info().memory_bytes;
  auto b = cpu_->allocate(capacity + (uint64_t(1) << 30));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kOutOfMemory);
  const std::string& m = b.status().message();
  EXPECT_NE(m.find("cpu:0"), std::string::npos) << m;
  EXPECT_NE(m.find(format_bytes(capacity + (uint64_t(1) << 30))), std::string::npos) << m;
  EXPECT_NE(m.find(format_bytes(capacity)), std::string::npos) << m;  // "... free of <capacity>"
  EXPECT_EQ(cpu_->memory_stats()->bytes_in_use, 0u);  // nothing leaked by the failure
}

TEST_F(StreamTest, CopyAndFillBoundsAreCheckedAtEnqueue) {
  Stream s = stream();
  Buffer buf = alloc(64);
  std::vector<uint8_t> host(128);
  Status st = s.copy_from_host(host.data(), buf, 32, 64);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(
      st.message().find("copy of 64 bytes to offset 32 overruns the 64-byte destination buffer"),
      std::string::npos)
      << st.message();
  st = s.copy_to_host(buf, 65, host.data(), 1);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("overruns the 64-byte source buffer"), std::string::npos)
      << st.message();
  st = s.fill(buf, 0, 6, 0, 4);
  EXPECT_NE(st.message().find("size 6 is not a multiple of the pattern size 4"), std::string::npos)
      << st.message();
  st = s.fill(buf, 0, 8, 0, 3);
  EXPECT_NE(st.message().find("pattern size 3 is not 1, 2, 4 or 8"), std::string::npos)
      << st.message();
  st = s.fill(buf, 60, 8, 0, 4);
  EXPECT_NE(st.message().find("overruns the 64-byte buffer"), std::string::npos) << st.message();
  // An op whose view runs past its buffer fails at dispatch, naming the view.
  Buffer small = alloc(16);
  st = s.dispatch(OpDescriptor(OpKind::kScale, {TensorRef::contiguous(small, DType::kF32, {8})},
                               TensorRef::contiguous(buf, DType::kF32, {8})));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("needs 32 bytes but its buffer has 16"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("cpu:0"), std::string::npos) << st.message();
  // Nothing was enqueued by the failed calls.
  EXPECT_TRUE(s.synchronize().ok());
}

// q4_0 products on cpu:0 may read a copy of the weights in a faster layout (the CPU
// plugin's weight cache): new weights written by a copy, or through a mapped pointer,
// must be what the next product reads.
TEST_F(StreamTest, QuantizedWeightsRewrittenInPlaceAreReadAnew) {
  constexpr int kRows = 24, kK = 64, kBlocks = kK / 32;
  // Every weight (nibble - 8) x scale 1.0: one value per matrix.
  auto weights = [](uint8_t nibble) {
    std::vector<uint8_t> w(size_t(kRows * kBlocks * 18));
    for (size_t b = 0; b < w.size(); b += 18) {
      w[b] = 0x00;
      w[b + 1] = 0x3C;  // f16 1.0
      std::memset(&w[b + 2], nibble | (nibble << 4), 16);
    }
    return w;
  };
  Stream s = stream();
  Buffer a = alloc(4 * kK), w = alloc(kRows * kBlocks * 18), c = alloc(4 * kRows);
  const std::vector<float> av(kK, 1.0f);
  ASSERT_TRUE(s.copy_from_host(av.data(), a, 0, 4 * kK).ok());
  const OpDescriptor mm(OpKind::kMatmul,
                        {TensorRef::contiguous(a, DType::kF32, {1, kK}),
                         TensorRef::contiguous(w, DType::kQ4_0, {kRows, kK})},
                        TensorRef::contiguous(c, DType::kF32, {1, kRows}), [] {
                          OpAttributes at;
                          at.transpose_b = true;
                          return at;
                        }());
  auto product = [&]() {
    std::vector<float> cv(kRows, -1.0f);
    EXPECT_TRUE(s.dispatch(mm).ok());
    EXPECT_TRUE(s.copy_to_host(c, 0, cv.data(), 4 * kRows).ok());
    EXPECT_TRUE(s.synchronize().ok());
    return cv;
  };
  const std::vector<uint8_t> ones = weights(9), twos = weights(10), fours = weights(12);
  ASSERT_TRUE(s.copy_from_host(ones.data(), w, 0, ones.size()).ok());
  EXPECT_EQ(product(), std::vector<float>(kRows, 1.0f * kK));
  EXPECT_EQ(product(), std::vector<float>(kRows, 1.0f * kK));
  ASSERT_TRUE(s.copy_from_host(twos.data(), w, 0, twos.size()).ok());
  EXPECT_EQ(product(), std::vector<float>(kRows, 2.0f * kK));
  auto mapped = w.map();
  ASSERT_TRUE(mapped.ok()) << mapped.status().to_string();
  std::memcpy(*mapped, fours.data(), fours.size());
  EXPECT_EQ(product(), std::vector<float>(kRows, 4.0f * kK));
}

TEST_F(StreamTest, RecordsDescribeEachCommand) {
  Stream s = stream(/*records=*/true);
  Buffer a = alloc(4 * 6), b = alloc(4 * 6), c = alloc(4 * 4);
  std::vector<float> av = {1, 2, 3, 4, 5, 6}, bv = {1, 0, 0, 1, 1, 1}, cv(4);
  ASSERT_TRUE(s.copy_from_host(av.data(), a, 0, 24, /*tag=*/1).ok());
  ASSERT_TRUE(s.fill(b, 0, 24, 0, 4, /*tag=*/2).ok());
  ASSERT_TRUE(s.copy_from_host(bv.data(), b, 0, 24, /*tag=*/3).ok());
  const OpDescriptor mm(OpKind::kMatmul,
                        {TensorRef::contiguous(a, DType::kF32, {2, 3}),
                         TensorRef::contiguous(b, DType::kF32, {3, 2})},
                        TensorRef::contiguous(c, DType::kF32, {2, 2}));
  ASSERT_TRUE(s.dispatch(mm, /*tag=*/4).ok());
  ASSERT_TRUE(s.copy_to_host(c, 0, cv.data(), 16, /*tag=*/5).ok());
  ASSERT_TRUE(s.synchronize().ok());
  EXPECT_EQ(cv, (std::vector<float>{4, 5, 10, 11}));
  const std::vector<CommandRecord> r = s.take_records();
  ASSERT_EQ(r.size(), 5u);
  const CommandKind kinds[] = {CommandKind::kCopyHostToDevice, CommandKind::kFill,
                               CommandKind::kCopyHostToDevice, CommandKind::kOp,
                               CommandKind::kCopyDeviceToHost};
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].tag, i + 1);
    EXPECT_EQ(r[i].command, kinds[i]);
    EXPECT_LE(r[i].start_ns, r[i].end_ns);
    if (i > 0) {
      EXPECT_LE(r[i - 1].end_ns, r[i].start_ns) << "records out of stream order";
    }
  }
  EXPECT_EQ(r[0].link_bytes, 24u);
  EXPECT_EQ(r[0].bytes_written, 24u);
  EXPECT_EQ(r[1].bytes_written, 24u);
  EXPECT_EQ(r[3].op, OpKind::kMatmul);
  const OpCost cost = analytic_cost(mm.spec());
  EXPECT_EQ(r[3].flops, cost.flops);
  EXPECT_EQ(r[3].bytes_read, cost.bytes_read);
  EXPECT_EQ(r[3].bytes_written, cost.bytes_written);
  EXPECT_EQ(r[4].bytes_read, 16u);
  EXPECT_TRUE(s.take_records().empty());  // taken once
  // A stream without the flag keeps none.
  Stream quiet = stream();
  ASSERT_TRUE(quiet.fill(b, 0, 24, 0, 4).ok());
  ASSERT_TRUE(quiet.synchronize().ok());
  EXPECT_TRUE(quiet.take_records().empty());
}

TEST_F(StreamTest, FailedCommandAbortsLaterOnesUntilSynchronize) {
  Stream s = stream(/*records=*/true);
  Buffer table = alloc(4 * 4 * 2), ids = alloc(8), out = alloc(4 * 2 * 2), marker = alloc(4);
  const int32_t bad_ids[2] = {1, 7};  // 7 is outside the table's 4 rows
  ASSERT_TRUE(s.copy_from_host(bad_ids, ids, 0, 8).ok());
  ASSERT_TRUE(s.fill(marker, 0, 4, 0x11, 1).ok());
  ASSERT_TRUE(s.synchronize().ok());
  s.take_records();
  const OpDescriptor gather(OpKind::kEmbedding,
                            {TensorRef::contiguous(table, DType::kF32, {4, 2}),
                             TensorRef::contiguous(ids, DType::kI32, {2})},
                            TensorRef::contiguous(out, DType::kF32, {2, 2}));
  ASSERT_TRUE(s.dispatch(gather, 10).ok());             // fails when it runs
  ASSERT_TRUE(s.fill(marker, 0, 4, 0x22, 1, 11).ok());  // skipped
  ASSERT_TRUE(s.dispatch(gather, 12).ok());             // skipped
  bool host_func_ran = false;                           // host functions always run
  ASSERT_TRUE(s.enqueue_host_func([&] { host_func_ran = true; }).ok());
  const Status st = s.synchronize();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("embedding: id 7"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("2 later command(s) of the stream were skipped"), std::string::npos)
      << st.message();
  // The failed command is named by its tag in the structured detail (ABI 1.2).
  EXPECT_EQ(st.detail().command_tag, std::optional<uint64_t>(10));
  EXPECT_TRUE(host_func_ran);
  EXPECT_TRUE(s.take_records().empty());  // neither the failed nor the skipped ran to completion
  uint8_t m[4];
  ASSERT_TRUE(s.copy_to_host(marker, 0, m, 4).ok());
  ASSERT_TRUE(s.synchronize().ok());  // the error was cleared: work runs again
  EXPECT_EQ(m[0], 0x11);              // the skipped fill never happened
  // Fixed input: the same op now succeeds.
  const int32_t good_ids[2] = {3, 0};
  ASSERT_TRUE(s.copy_from_host(good_ids, ids, 0, 8).ok());
  ASSERT_TRUE(s.dispatch(gather).ok());
  EXPECT_TRUE(s.synchronize().ok());
}

TEST_F(StreamTest, InvalidOpsFailAtDispatchWithClearMessages) {
  Stream s = stream();
  Buffer a = alloc(64), b = alloc(64), c = alloc(64);
  Status st = s.dispatch(OpDescriptor(OpKind::kMatmul,
                                      {TensorRef::contiguous(a, DType::kF32, {2, 3}),
                                       TensorRef::contiguous(b, DType::kF32, {4, 2})},
                                      TensorRef::contiguous(c, DType::kF32, {2, 2})));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("inner dims differ"), std::string::npos) << st.message();
  // fp8 is for planning only: the CPU refuses it as unimplemented.
  st = s.dispatch(OpDescriptor(OpKind::kScale, {TensorRef::contiguous(a, DType::kFP8E4M3, {4})},
                               TensorRef::contiguous(b, DType::kFP8E4M3, {4})));
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented) << st.to_string();
  EXPECT_TRUE(s.synchronize().ok());
}

}  // namespace
}  // namespace hal
