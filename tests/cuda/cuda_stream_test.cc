// Streams, events and copies on the GPU: copies of every direction at odd sizes and
// offsets (pinned and pageable host memory), fills of every pattern size, in-order
// execution, cross-stream waits, host functions, event timestamps, per-command records
// (durations from CUDA events, bytes and FLOPs from hal::analytic_cost), and peer copies
// where two GPUs are present.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "cuda_test_support.h"

namespace hal::cuda_test {
namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 131 + seed);
  return v;
}

TEST(CudaStream, CopiesEveryDirectionAtOddSizes) {
  HAL_CUDA_GPU_OR_SKIP(d);
  auto s = d->create_stream();
  ASSERT_TRUE(s.ok());
  for (uint64_t size : {uint64_t(1), uint64_t(3), uint64_t(4097), uint64_t(5) << 20}) {
    for (uint64_t off : {uint64_t(0), uint64_t(7)}) {
      SCOPED_TRACE("size " + std::to_string(size) + " offset " + std::to_string(off));
      auto a = d->allocate(size + off), b = d->allocate(size + 16);
      auto pinned = d->allocate(size + off, MemoryKind::kHostPinned);
      ASSERT_TRUE(a.ok() && b.ok() && pinned.ok());
      const std::vector<uint8_t> in = pattern(size, uint8_t(off));
      std::vector<uint8_t> out(size, 0);
      ASSERT_TRUE(s->copy_from_host(in.data(), *a, off, size).ok());      // pageable -> device
      ASSERT_TRUE(s->copy(*a, off, *b, 16 - off % 16, size).ok());        // device -> device
      ASSERT_TRUE(s->copy(*b, 16 - off % 16, *pinned, off, size).ok());   // device -> pinned
      ASSERT_TRUE(s->copy_to_host(*pinned, off, out.data(), size).ok());  // host buffer -> pageable
      ASSERT_TRUE(s->synchronize().ok());
      EXPECT_EQ(in, out);
      auto p = pinned->map();
      ASSERT_TRUE(p.ok());
      EXPECT_EQ(std::memcmp(static_cast<uint8_t*>(*p) + off, in.data(), size), 0);
    }
  }
}

TEST(CudaStream, FillsEveryPatternSize) {
  HAL_CUDA_GPU_OR_SKIP(d);
  auto s = d->create_stream();
  auto b = d->allocate(4096 + 64);
  ASSERT_TRUE(s.ok() && b.ok());
  for (uint32_t ps : {1u, 2u, 4u, 8u}) {
    for (uint64_t off : {uint64_t(0), uint64_t(3)}) {
      const uint64_t pat = 0x0123456789ABCDEFull;
      const uint64_t n = 4096 - 4096 % ps;
      std::vector<uint8_t> back(4096 + 64, 0);
      ASSERT_TRUE(s->fill(*b, 0, 4096 + 64, 0, 1).ok());
      ASSERT_TRUE(s->fill(*b, off, n, pat, ps).ok());
      ASSERT_TRUE(s->copy_to_host(*b, 0, back.data(), back.size()).ok());
      ASSERT_TRUE(s->synchronize().ok());
      for (uint64_t i = 0; i < back.size(); ++i) {
        const uint8_t want = (i >= off && i < off + n) ? uint8_t(pat >> (8 * ((i - off) % ps))) : 0;
        ASSERT_EQ(back[i], want) << "pattern size " << ps << " offset " << off << " byte " << i;
      }
    }
  }
}

// A chain of dependent commands on one stream runs in order; another stream that waits on
// an event sees the chain's result.
TEST(CudaStream, InOrderAndCrossStreamWaits) {
  HAL_CUDA_GPU_OR_SKIP(d);
  auto s1 = d->create_stream();
  auto s2 = d->create_stream();
  auto ev = d->create_event();
  const int64_t n = 1 << 22;
  auto x = d->allocate(n * 4), y = d->allocate(n * 4);
  ASSERT_TRUE(s1.ok() && s2.ok() && ev.ok() && x.ok() && y.ok());
  ASSERT_TRUE(s1->fill(*x, 0, n * 4, 0, 4).ok());  // x = 0
  OpAttributes inc;
  inc.beta = 1.0f;
  const OpDescriptor add_one(OpKind::kScale, {TensorRef::contiguous(*x, DType::kF32, {n})},
                             TensorRef::contiguous(*y, DType::kF32, {n}), inc);
  const OpDescriptor back_one(OpKind::kScale, {TensorRef::contiguous(*y, DType::kF32, {n})},
                              TensorRef::contiguous(*x, DType::kF32, {n}), inc);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(s1->dispatch(add_one).ok());   // y = x + 1
    ASSERT_TRUE(s1->dispatch(back_one).ok());  // x = y + 1
  }
  ASSERT_TRUE(s1->record(*ev).ok());
  ASSERT_TRUE(s2->wait(*ev).ok());
  std::vector<float> out(n);
  ASSERT_TRUE(s2->copy_to_host(*x, 0, out.data(), n * 4).ok());
  ASSERT_TRUE(s2->synchronize().ok());
  EXPECT_EQ(out[0], 100.0f);
  EXPECT_EQ(out[n - 1], 100.0f);
  auto done = ev->query();
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(*done);
}

TEST(CudaStream, HostFunctionsRunInStreamOrder) {
  HAL_CUDA_GPU_OR_SKIP(d);
  auto s = d->create_stream();
  auto b = d->allocate(1 << 24);
  ASSERT_TRUE(s.ok() && b.ok());
  std::vector<int> order;
  std::mutex mu;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(s->fill(*b, 0, 1 << 24, uint64_t(i), 1).ok());
    ASSERT_TRUE(s->enqueue_host_func([&, i] {
                   std::lock_guard<std::mutex> lock(mu);
                   order.push_back(i);
                 }).ok());
  }
  // A host function may use CUDA through another stream (the HAL's staged copies do).
  auto other = d->create_stream();
  ASSERT_TRUE(other.ok());
  uint8_t seen = 0;
  ASSERT_TRUE(s->enqueue_host_func([&] {
                 (void)other->copy_to_host(*b, 0, &seen, 1);
                 (void)other->synchronize();
               }).ok());
  ASSERT_TRUE(s->synchronize().ok());
  std::vector<int> want(20);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(order, want);
  EXPECT_EQ(seen, 19);
}

TEST(CudaStream, EventTimestampsAndRecords) {
  HAL_CUDA_GPU_OR_SKIP(d);
  auto s = d->create_stream({.record_commands = true});
  auto e0 = d->create_event(), e1 = d->create_event();
  const int64_t m = 512, k = 256, n = 384;
  auto a = d->allocate(m * k * 4), b = d->allocate(k * n * 4), c = d->allocate(m * n * 4);
  ASSERT_TRUE(s.ok() && e0.ok() && e1.ok() && a.ok() && b.ok() && c.ok());
  ASSERT_TRUE(s->fill(*a, 0, m * k * 4, 0, 4, 1).ok());
  ASSERT_TRUE(s->fill(*b, 0, k * n * 4, 0, 4, 2).ok());
  ASSERT_TRUE(s->record(*e0).ok());
  const OpDescriptor mm(OpKind::kMatmul,
                        {TensorRef::contiguous(*a, DType::kF32, {m, k}),
                         TensorRef::contiguous(*b, DType::kF32, {k, n})},
                        TensorRef::contiguous(*c, DType::kF32, {m, n}));
  ASSERT_TRUE(s->dispatch(mm, 3).ok());
  ASSERT_TRUE(s->record(*e1).ok());
  ASSERT_TRUE(s->synchronize().ok());
  auto t0 = e0->timestamp_ns(), t1 = e1->timestamp_ns();
  ASSERT_TRUE(t0.ok() && t1.ok()) << t0.status().to_string();
  EXPECT_LT(*t0, *t1);
  auto el = Event::elapsed_seconds(*e0, *e1);
  ASSERT_TRUE(el.ok());
  EXPECT_GT(*el, 0.0);

  const std::vector<CommandRecord> recs = s->take_records();
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].command, CommandKind::kFill);
  EXPECT_EQ(recs[0].bytes_written, uint64_t(m * k * 4));
  const CommandRecord& r = recs[2];
  EXPECT_EQ(r.tag, 3u);
  EXPECT_EQ(r.command, CommandKind::kOp);
  EXPECT_EQ(r.op, OpKind::kMatmul);
  const OpCost cost = analytic_cost(mm.spec());
  EXPECT_EQ(r.flops, cost.flops);
  EXPECT_EQ(r.bytes_read, cost.bytes_read);
  EXPECT_EQ(r.bytes_written, cost.bytes_written);
  EXPECT_GT(r.end_ns, r.start_ns);
  // The op ran between the two events (same clock).
  EXPECT_GE(r.start_ns, *t0);
  EXPECT_LE(r.end_ns, *t1);
  EXPECT_TRUE(s->take_records().empty());
}

TEST(CudaStream, CopyOutOfBoundsIsRefused) {
  HAL_CUDA_GPU_OR_SKIP(d);
  auto s = d->create_stream();
  auto b = d->allocate(100);
  ASSERT_TRUE(s.ok() && b.ok());
  std::vector<uint8_t> host(200);
  Status st = s->copy_from_host(host.data(), *b, 50, 51);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_TRUE(s->synchronize().ok());
}

TEST(CudaStream, PeerCopiesBetweenGpus) {
  Platform* p = cuda_platform();
  if (!p || p->devices().size() < 2)
    GTEST_SKIP() << "needs two GPUs (" << (p ? p->devices().size() : 0) << " present)";
  Device& d0 = *p->devices()[0];
  Device& d1 = *p->devices()[1];
  const uint64_t size = (uint64_t(3) << 20) + 5;
  auto a = d0.allocate(size), b = d1.allocate(size);
  auto s = d0.create_stream();
  ASSERT_TRUE(a.ok() && b.ok() && s.ok());
  const std::vector<uint8_t> in = pattern(size, 9);
  std::vector<uint8_t> out(size);
  ASSERT_TRUE(s->copy_from_host(in.data(), *a, 0, size).ok());
  ASSERT_TRUE(s->copy(*a, 0, *b, 0, size).ok());
  ASSERT_TRUE(s->synchronize().ok());
  auto s1 = d1.create_stream();
  ASSERT_TRUE(s1.ok());
  ASSERT_TRUE(s1->copy_to_host(*b, 0, out.data(), size).ok());
  ASSERT_TRUE(s1->synchronize().ok());
  EXPECT_EQ(in, out);
  // An event of one GPU orders a stream of the other.
  auto ev = d0.create_event();
  ASSERT_TRUE(ev.ok());
  ASSERT_TRUE(s->fill(*a, 0, size, 0xEE, 1).ok());
  ASSERT_TRUE(s->record(*ev).ok());
  ASSERT_TRUE(s1->wait(*ev).ok());
  ASSERT_TRUE(s1->copy(*a, 0, *b, 0, size).ok());
  ASSERT_TRUE(s1->copy_to_host(*b, 0, out.data(), size).ok());
  ASSERT_TRUE(s1->synchronize().ok());
  EXPECT_EQ(out[0], 0xEE);
  EXPECT_EQ(out[size - 1], 0xEE);
}

}  // namespace
}  // namespace hal::cuda_test
