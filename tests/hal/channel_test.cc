// Channels and collectives through the HAL API on the CPU backend (several ranks on
// cpu:0, one stream each, meeting in shared memory): every kind and dtype against the
// serial reference at odd sizes, in place, send/recv, records, and every failure path
// ending in an error rather than a hang.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hal/channel.h"
#include "hal/platform.h"
#include "support/collective_reference.h"

namespace hal {
namespace {

using test::Bytes;

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PlatformOptions o;
    o.only_plugins = {"cpu"};
    auto p = Platform::create(o);
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    platform_ = std::move(*p);
    cpu_ = *platform_->device("cpu:0");
  }

  struct Members {
    std::vector<Channel> channels;
    std::vector<Stream> streams;
  };
  Members make(int32_t n, const std::string& group, double timeout_s = 0) {
    Members m;
    ChannelOptions o;
    o.group = group;
    o.timeout_s = timeout_s;
    auto chans = Channel::create_group(std::vector<Device*>(size_t(n), cpu_), o);
    EXPECT_TRUE(chans.ok()) << chans.status().to_string();
    if (!chans.ok()) return m;
    m.channels = std::move(*chans);
    for (int32_t r = 0; r < n; ++r)
      m.streams.push_back(cpu_->create_stream({.record_commands = true}).value());
    return m;
  }
  Buffer buffer(uint64_t bytes) { return cpu_->allocate(std::max<uint64_t>(bytes, 1)).value(); }

  // Runs `shape` on every member with fresh random inputs; checks every recv buffer
  // against the serial reference. Returns the failure text, empty when all match.
  std::string run_and_check(Members& m, const CollectiveShape& shape, uint64_t seed) {
    const int32_t n = int32_t(m.channels.size());
    std::vector<Bytes> sends;
    std::vector<Buffer> send_bufs, recv_bufs;
    std::vector<Bytes> got(static_cast<size_t>(n));
    send_bufs.reserve(size_t(n));
    recv_bufs.reserve(size_t(n));
    for (int32_t r = 0; r < n; ++r) {
      const uint64_t sb = shape.send_bytes(r, n), rb = shape.recv_bytes(r, n);
      // Every rank has a send array (the reference reads the root's for broadcast).
      const uint64_t elems =
          std::max<uint64_t>(sb, shape.count * dtype_size(shape.dtype)) / dtype_size(shape.dtype);
      sends.push_back(test::random_elements(shape.dtype, elems, seed * 131 + uint64_t(r)));
      send_bufs.push_back(buffer(sends.back().size()));
      recv_bufs.push_back(buffer(rb));
      EXPECT_TRUE(m.streams[size_t(r)]
                      .copy_from_host(sends.back().data(), send_bufs.back(), 0, sends.back().size())
                      .ok());
      EXPECT_TRUE(
          m.streams[size_t(r)].fill(recv_bufs.back(), 0, recv_bufs.back().size(), 0xab, 1).ok());
      Collective c;
      c.shape = shape;
      c.send = &send_bufs.back();
      c.recv = &recv_bufs.back();
      Status s = m.streams[size_t(r)].collective(m.channels[size_t(r)], c);
      if (!s.ok()) return "enqueue on rank " + std::to_string(r) + ": " + s.to_string();
      got[size_t(r)].resize(rb);
      EXPECT_TRUE(
          m.streams[size_t(r)].copy_to_host(recv_bufs.back(), 0, got[size_t(r)].data(), rb).ok());
    }
    for (int32_t r = 0; r < n; ++r) {
      Status s = m.streams[size_t(r)].synchronize();
      if (!s.ok()) return "rank " + std::to_string(r) + ": " + s.to_string();
    }
    for (int32_t r = 0; r < n; ++r) {
      const Bytes want = test::expected_recv(shape, r, n, sends);
      if (got[size_t(r)] != want) {
        const uint32_t e = dtype_size(shape.dtype);
        for (size_t i = 0; i < want.size(); i += e)
          if (std::memcmp(want.data() + i, got[size_t(r)].data() + i, e) != 0)
            return shape.describe() + " over " + std::to_string(n) + " ranks: rank " +
                   std::to_string(r) + " element " + std::to_string(i / e) + " is " +
                   std::to_string(test::element_as_double(shape.dtype, got[size_t(r)].data() + i)) +
                   ", the reference " +
                   std::to_string(test::element_as_double(shape.dtype, want.data() + i));
      }
    }
    return "";
  }

  std::unique_ptr<Platform> platform_;
  Device* cpu_ = nullptr;
};

TEST_F(ChannelTest, EveryCollectiveAndDtypeMatchesTheSerialReferenceAtOddSizes) {
  const CollectiveKind kinds[] = {CollectiveKind::kAllReduce, CollectiveKind::kAllGather,
                                  CollectiveKind::kReduceScatter, CollectiveKind::kBroadcast};
  for (int32_t n : {1, 2, 3, 4}) {
    Members m = make(n, "reference" + std::to_string(n));
    ASSERT_EQ(m.channels.size(), size_t(n));
    uint64_t seed = 1;
    for (CollectiveKind kind : kinds)
      for (DType t : test::collective_dtypes())
        for (uint64_t count : {uint64_t(1), uint64_t(7), uint64_t(1031)}) {
          CollectiveShape s{kind, Reduction::kSum, t, count, n - 1};
          const std::vector<Reduction> ops =
              s.reduces() ? std::vector<Reduction>{Reduction::kSum, Reduction::kProd,
                                                   Reduction::kMin, Reduction::kMax}
                          : std::vector<Reduction>{Reduction::kSum};
          for (Reduction op : ops) {
            s.reduction = op;
            const std::string failure = run_and_check(m, s, seed++);
            ASSERT_TRUE(failure.empty()) << failure;
          }
        }
  }
}

TEST_F(ChannelTest, InPlaceCollectivesMatchTheReference) {
  const int32_t n = 3;
  Members m = make(n, "in-place");
  for (DType t : {DType::kF32, DType::kBF16, DType::kI8}) {
    const uint64_t count = 13;
    const uint32_t e = dtype_size(t);
    for (CollectiveKind kind : {CollectiveKind::kAllReduce, CollectiveKind::kAllGather,
                                CollectiveKind::kReduceScatter, CollectiveKind::kBroadcast}) {
      const CollectiveShape s{kind, Reduction::kSum, t, count, 1};
      // One buffer per rank holding the larger of send and recv; send/recv placed as the
      // in-place rule of the kind says.
      std::vector<Bytes> sends;
      std::vector<Buffer> bufs;
      std::vector<Bytes> got(n), inits(n);  // host data stays alive until synchronize
      bufs.reserve(n);
      for (int32_t r = 0; r < n; ++r) {
        const uint64_t big = std::max(s.send_bytes(r, n), s.recv_bytes(r, n));
        const uint64_t send_off = kind == CollectiveKind::kAllGather ? uint64_t(r) * count * e : 0;
        const uint64_t recv_off =
            kind == CollectiveKind::kReduceScatter ? uint64_t(r) * count * e : 0;
        Bytes& init = inits[r] = test::random_elements(t, big / e, 77 + uint64_t(r));
        // The reference's view of this rank's send data.
        Bytes send_view(
            init.begin() + ptrdiff_t(send_off),
            init.begin() + ptrdiff_t(send_off + std::max(s.send_bytes(r, n), count * e)));
        sends.push_back(send_view);
        bufs.push_back(buffer(big));
        ASSERT_TRUE(m.streams[r].copy_from_host(init.data(), bufs.back(), 0, big).ok());
        Collective c;
        c.shape = s;
        c.send = &bufs.back();
        c.send_offset = send_off;
        c.recv = &bufs.back();
        c.recv_offset = recv_off;
        ASSERT_TRUE(m.streams[r].collective(m.channels[r], c).ok()) << s.describe();
        got[r].resize(s.recv_bytes(r, n));
        ASSERT_TRUE(
            m.streams[r].copy_to_host(bufs.back(), recv_off, got[r].data(), got[r].size()).ok());
      }
      for (int32_t r = 0; r < n; ++r) ASSERT_TRUE(m.streams[r].synchronize().ok());
      for (int32_t r = 0; r < n; ++r)
        EXPECT_EQ(got[r], test::expected_recv(s, r, n, sends)) << s.describe() << " rank " << r;
    }
  }
}

TEST_F(ChannelTest, SendsAndReceivesPairInOrder) {
  Members m = make(4, "p2p");
  // 0 -> 1 and 2 -> 3, two messages each, of odd sizes and different dtypes.
  const Bytes a = test::random_elements(DType::kF16, 5, 1),
              b = test::random_elements(DType::kI64, 3, 2);
  Buffer ra = buffer(a.size()), rb = buffer(b.size());
  // Each sender's own buffers: its stream writes them while the other's send reads its own.
  Buffer sa_of[2] = {buffer(a.size()), buffer(a.size())};
  Buffer sb_of[2] = {buffer(b.size()), buffer(b.size())};
  for (int32_t from : {0, 2}) {
    Buffer& sa = sa_of[from / 2];
    Buffer& sb = sb_of[from / 2];
    ASSERT_TRUE(m.streams[from].copy_from_host(a.data(), sa, 0, a.size()).ok());
    ASSERT_TRUE(m.streams[from].copy_from_host(b.data(), sb, 0, b.size()).ok());
    ASSERT_TRUE(send(m.streams[from], m.channels[from], sa, 5, DType::kF16, from + 1).ok());
    ASSERT_TRUE(send(m.streams[from], m.channels[from], sb, 3, DType::kI64, from + 1).ok());
  }
  Bytes got_a(a.size()), got_b(b.size());
  ASSERT_TRUE(recv(m.streams[1], m.channels[1], ra, 5, DType::kF16, 0).ok());
  ASSERT_TRUE(recv(m.streams[1], m.channels[1], rb, 3, DType::kI64, 0).ok());
  ASSERT_TRUE(m.streams[1].copy_to_host(ra, 0, got_a.data(), got_a.size()).ok());
  ASSERT_TRUE(m.streams[1].copy_to_host(rb, 0, got_b.data(), got_b.size()).ok());
  Buffer ra3 = buffer(a.size()), rb3 = buffer(b.size());
  ASSERT_TRUE(recv(m.streams[3], m.channels[3], ra3, 5, DType::kF16, 2).ok());
  ASSERT_TRUE(recv(m.streams[3], m.channels[3], rb3, 3, DType::kI64, 2).ok());
  for (auto& s : m.streams) ASSERT_TRUE(s.synchronize().ok());
  EXPECT_EQ(got_a, a);
  EXPECT_EQ(got_b, b);
  for (Stream& s : m.streams)
    for (const CommandRecord& r : s.take_records())
      if (r.command == CommandKind::kCollective) {
        EXPECT_TRUE(r.collective == CollectiveKind::kSend || r.collective == CollectiveKind::kRecv);
        if (r.collective == CollectiveKind::kSend) {
          EXPECT_GT(r.link_bytes, 0u);
          EXPECT_EQ(r.peer_rank, r.channel_rank + 1);
        } else {
          EXPECT_GT(r.link_bytes_received, 0u);
        }
      }
}

TEST_F(ChannelTest, ARingOfSendsOnSeparateStreamsCompletes) {
  const int32_t n = 3;
  Members m = make(n, "ring");
  std::vector<Stream> recv_streams;
  for (int32_t r = 0; r < n; ++r) recv_streams.push_back(cpu_->create_stream().value());
  std::vector<Buffer> out, in;
  std::vector<int32_t> got(n, -1), values(n);
  for (int32_t r = 0; r < n; ++r) {
    out.push_back(buffer(4));
    in.push_back(buffer(4));
    values[r] = 100 + r;
    ASSERT_TRUE(m.streams[r].copy_from_host(&values[r], out.back(), 0, 4).ok());
  }
  for (int32_t r = 0; r < n; ++r) {
    ASSERT_TRUE(send(m.streams[r], m.channels[r], out[r], 1, DType::kI32, (r + 1) % n).ok());
    ASSERT_TRUE(recv(recv_streams[r], m.channels[r], in[r], 1, DType::kI32, (r + n - 1) % n).ok());
    ASSERT_TRUE(recv_streams[r].copy_to_host(in[r], 0, &got[r], 4).ok());
  }
  for (int32_t r = 0; r < n; ++r) {
    ASSERT_TRUE(m.streams[r].synchronize().ok());
    ASSERT_TRUE(recv_streams[r].synchronize().ok());
    EXPECT_EQ(got[r], 100 + (r + n - 1) % n);
  }
}

TEST_F(ChannelTest, RecordsStateTheBytesEachMemberSentAndReceived) {
  const int32_t n = 4;
  Members m = make(n, "records");
  std::vector<Buffer> bufs;
  for (int32_t r = 0; r < n; ++r) {
    bufs.push_back(buffer(4000));
    ASSERT_TRUE(m.streams[r].fill(bufs.back(), 0, 4000, 0, 1).ok());
    ASSERT_TRUE(all_reduce(m.streams[r], m.channels[r], bufs.back(), bufs.back(), 1000, DType::kF32,
                           Reduction::kSum, /*tag=*/42)
                    .ok());
  }
  for (int32_t r = 0; r < n; ++r) {
    ASSERT_TRUE(m.streams[r].synchronize().ok());
    int found = 0;
    for (const CommandRecord& rec : m.streams[r].take_records()) {
      if (rec.command != CommandKind::kCollective) continue;
      ++found;
      EXPECT_EQ(rec.tag, 42u);
      EXPECT_EQ(rec.collective, CollectiveKind::kAllReduce);
      EXPECT_EQ(rec.channel_rank, r);
      EXPECT_EQ(rec.channel_size, n);
      // Shared memory, direct: (n-1) blocks of 250 floats reduced in, (n-1) copied out.
      EXPECT_EQ(rec.link_bytes_received, 2u * 3u * 1000u);
      EXPECT_EQ(rec.link_bytes, 2u * 3u * 1000u);
      EXPECT_EQ(rec.link_class, LinkClass::kSharedMemory);
      EXPECT_EQ(rec.bytes_written, 4000u);
      EXPECT_GE(rec.end_ns, rec.start_ns);
      EXPECT_EQ(rec.flops, 750.0);
    }
    EXPECT_EQ(found, 1);
  }
}

TEST_F(ChannelTest, VirtualBuffersMeetWithoutMovingData) {
  Members m = make(2, "virtual");
  std::vector<Buffer> v;
  for (int r = 0; r < 2; ++r) {
    v.push_back(cpu_->allocate(1 << 20, MemoryKind::kVirtual).value());
    ASSERT_TRUE(
        all_reduce(m.streams[r], m.channels[r], v.back(), v.back(), (1 << 20) / 2, DType::kBF16)
            .ok());
  }
  for (auto& s : m.streams) EXPECT_TRUE(s.synchronize().ok());
}

TEST_F(ChannelTest, AMemberThatNeverArrivesEndsTheOthersWithAnErrorNamingIt) {
  Members m = make(3, "missing", /*timeout_s=*/0.3);
  std::vector<Buffer> b;
  for (int r = 0; r < 2; ++r) {  // rank 2 never issues it
    b.push_back(buffer(64));
    ASSERT_TRUE(all_reduce(m.streams[r], m.channels[r], b.back(), b.back(), 16, DType::kF32).ok());
  }
  for (int r = 0; r < 2; ++r) {
    Status s = m.streams[r].synchronize();
    ASSERT_FALSE(s.ok());
    EXPECT_TRUE(s.code() == StatusCode::kDeadlineExceeded || s.code() == StatusCode::kAborted)
        << s.to_string();
    EXPECT_NE(s.message().find("rank(s) 2"), std::string::npos) << s.to_string();
    EXPECT_NE(s.message().find("'missing'"), std::string::npos) << s.to_string();
  }
  // The communicator is broken: even rank 2's collective now fails at once.
  Buffer late = buffer(64);
  ASSERT_TRUE(all_reduce(m.streams[2], m.channels[2], late, late, 16, DType::kF32).ok());
  Status s = m.streams[2].synchronize();
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s.to_string();
  EXPECT_NE(s.message().find("broken"), std::string::npos) << s.to_string();
}

TEST_F(ChannelTest, SendsThatWaitOnEachOtherTimeOutInsteadOfHanging) {
  Members m = make(2, "deadlock", /*timeout_s=*/0.3);
  Buffer a = buffer(16), b = buffer(16);
  ASSERT_TRUE(send(m.streams[0], m.channels[0], a, 4, DType::kF32, 1).ok());
  ASSERT_TRUE(send(m.streams[1], m.channels[1], b, 4, DType::kF32, 0).ok());
  for (auto& st : m.streams) {
    Status s = st.synchronize();
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("to receive it"), std::string::npos) << s.to_string();
  }
}

TEST_F(ChannelTest, AbortReleasesAWaitingMemberAtOnce) {
  Members m = make(2, "abort");  // default timeout: only the abort can release rank 0
  Buffer b = buffer(64);
  ASSERT_TRUE(all_reduce(m.streams[0], m.channels[0], b, b, 16, DType::kF32).ok());
  std::thread aborter([&] { EXPECT_TRUE(m.channels[1].abort("rank 1 lost its device")); });
  Status s = m.streams[0].synchronize();
  aborter.join();
  EXPECT_EQ(s.code(), StatusCode::kAborted) << s.to_string();
  EXPECT_NE(s.message().find("rank 1 lost its device"), std::string::npos) << s.to_string();
}

TEST_F(ChannelTest, MembersThatDisagreeAllFailNamingBoth) {
  Members m = make(2, "mismatch", 5);
  Buffer a = buffer(64), b = buffer(64);
  ASSERT_TRUE(all_reduce(m.streams[0], m.channels[0], a, a, 8, DType::kF32).ok());
  ASSERT_TRUE(all_reduce(m.streams[1], m.channels[1], b, b, 9, DType::kF32).ok());
  for (auto& st : m.streams) {
    Status s = st.synchronize();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    EXPECT_NE(s.message().find("all_reduce(sum) of 8 f32"), std::string::npos) << s.to_string();
    EXPECT_NE(s.message().find("all_reduce(sum) of 9 f32"), std::string::npos) << s.to_string();
  }
}

TEST_F(ChannelTest, BadCallsFailAtEnqueueNamingWhatIsWrong) {
  Members m = make(2, "bad");
  Buffer small = buffer(16), big = buffer(1024);
  auto expect_invalid = [](const Status& s, const std::string& needle) {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.to_string();
  };
  expect_invalid(all_reduce(m.streams[0], m.channels[0], big, small, 100, DType::kF32), "overruns");
  expect_invalid(all_gather(m.streams[0], m.channels[0], small, small, 4, DType::kF32), "overruns");
  expect_invalid(send(m.streams[0], m.channels[0], small, 1, DType::kF32, 0), "itself");
  expect_invalid(send(m.streams[0], m.channels[0], small, 1, DType::kF32, 5), "outside");
  expect_invalid(broadcast(m.streams[0], m.channels[0], big, big, 4, DType::kF32, -1), "root");
  expect_invalid(all_reduce(m.streams[0], m.channels[0], big, big, 4, DType::kInvalid), "dtype");
  Collective c;
  c.shape = {CollectiveKind::kAllReduce, Reduction::kSum, DType::kF32, 8, 0};
  c.send = &big;
  c.recv = &big;
  c.recv_offset = 4;  // overlaps the send range without being in place
  expect_invalid(m.streams[0].collective(m.channels[0], c), "overlap");
  // Nothing was enqueued: the stream is healthy.
  EXPECT_TRUE(m.streams[0].synchronize().ok());
}

TEST_F(ChannelTest, GroupMembershipIsChecked) {
  auto a = Channel::create(*cpu_, 0, 2, {.group = "membership"});
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  auto dup = Channel::create(*cpu_, 0, 2, {.group = "membership"});
  EXPECT_EQ(dup.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dup.status().message().find("already has a rank 0"), std::string::npos);
  auto other_size = Channel::create(*cpu_, 1, 3, {.group = "membership"});
  EXPECT_EQ(other_size.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(other_size.status().message().find("has 2 members"), std::string::npos);
  auto out_of_range = Channel::create(*cpu_, 2, 2, {.group = "membership"});
  EXPECT_EQ(out_of_range.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Channel::available(*cpu_));
  // A rank's slot is free again once its channel is gone.
  *a = Channel();
  EXPECT_TRUE(Channel::create(*cpu_, 0, 2, {.group = "membership"}).ok());
}

}  // namespace
}  // namespace hal
