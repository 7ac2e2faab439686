// The plugin kit's collective engine across "processes": each rank a thread with its own
// KitChannel over a transport (tests/support/fake_transport.h stands in for MPI). Every
// kind and dtype at odd sizes against the serial reference, the bytes each member sends
// (a ring's), shape checks between neighbours, agreement on a start time, and a missing
// peer ending in an error. Also the reduction kernel's own edge cases.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <thread>
#include <vector>

#include "hal/plugin/collective_engine.h"
#include "support/collective_reference.h"
#include "support/fake_transport.h"

namespace hal {
namespace {

using plugin::CollectiveOutcome;
using plugin::KitChannel;
using plugin::MemberCollective;
using test::Bytes;

// Runs `body(rank, channel)` on `n` threads, each with its own transport-backed channel.
void on_ranks(int32_t n, test::FakeNetwork& net, double timeout_s,
              const std::function<void(int32_t, KitChannel&)>& body) {
  std::vector<hal_transport> transports;
  for (int32_t r = 0; r < n; ++r) transports.push_back(net.transport(r));
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      plugin::ChannelConfig config;
      config.rank = r;
      config.size = n;
      config.group = "engine";
      config.transport = transports[size_t(r)];
      config.timeout_s = timeout_s;
      auto ch = KitChannel::create(nullptr, config);
      ASSERT_TRUE(ch.ok()) << ch.status().to_string();
      EXPECT_TRUE((*ch)->across_processes());
      body(r, **ch);
    });
  for (auto& t : threads) t.join();
}

TEST(CollectiveEngine, AcrossProcessesEveryKindAndDtypeMatchesTheSerialReference) {
  for (int32_t n : {2, 3, 4}) {
    test::FakeNetwork net(n);
    const CollectiveKind kinds[] = {CollectiveKind::kAllReduce, CollectiveKind::kAllGather,
                                    CollectiveKind::kReduceScatter, CollectiveKind::kBroadcast};
    // Every rank's inputs for every case, made up front so each thread can build the reference.
    struct Case {
      CollectiveShape shape;
      std::vector<Bytes> sends;
    };
    std::vector<Case> cases;
    uint64_t seed = 5;
    for (CollectiveKind kind : kinds)
      for (DType t : test::collective_dtypes())
        for (uint64_t count : {uint64_t(1), uint64_t(5), uint64_t(1027)})
          for (Reduction op : {Reduction::kSum, Reduction::kMax}) {
            Case c;
            c.shape = {kind, op, t, count, n / 2};
            if (!c.shape.reduces() && op != Reduction::kSum) continue;
            for (int32_t r = 0; r < n; ++r) {
              const uint64_t elems =
                  kind == CollectiveKind::kReduceScatter ? count * uint64_t(n) : count;
              c.sends.push_back(test::random_elements(t, elems, seed++));
            }
            cases.push_back(std::move(c));
          }
    on_ranks(n, net, 30, [&](int32_t r, KitChannel& ch) {
      for (const Case& c : cases) {
        Bytes recv(c.shape.recv_bytes(r, n), 0xcd);
        MemberCollective m;
        m.shape = c.shape;
        m.send = c.sends[size_t(r)].data();
        m.recv = recv.data();
        CollectiveOutcome o;
        ASSERT_TRUE(ch.run(m, &o).ok()) << c.shape.describe();
        ASSERT_EQ(recv, test::expected_recv(c.shape, r, n, c.sends))
            << c.shape.describe() << " over " << n << " ranks, rank " << r;
        EXPECT_EQ(o.link, LinkClass::kNetwork);
      }
    });
  }
}

TEST(CollectiveEngine, AnAllReduceSendsWhatARingSends) {
  const int32_t n = 4;
  test::FakeNetwork net(n);
  on_ranks(n, net, 30, [&](int32_t, KitChannel& ch) {
    std::vector<float> data(1000, 1.0f);
    MemberCollective m;
    m.shape = {CollectiveKind::kAllReduce, Reduction::kSum, DType::kF32, 1000, 0};
    m.send = m.recv = data.data();  // in place
    CollectiveOutcome o;
    ASSERT_TRUE(ch.run(m, &o).ok());
    EXPECT_EQ(data[0], 4.0f);
    EXPECT_EQ(data[999], 4.0f);
    // (n-1)/n of 4000 bytes in each half: 3 blocks of 250 floats out, 3 in, twice.
    EXPECT_EQ(o.bytes_sent, 6000u);
    EXPECT_EQ(o.bytes_received, 6000u);
  });
}

TEST(CollectiveEngine, SendAndRecvAcrossProcessesAgreeOnTheirStart) {
  test::FakeNetwork net(2);
  on_ranks(2, net, 30, [&](int32_t r, KitChannel& ch) {
    int64_t v = r == 0 ? 1234567 : 0;
    MemberCollective m;
    m.shape = {r == 0 ? CollectiveKind::kSend : CollectiveKind::kRecv, Reduction::kSum, DType::kI64,
               1, 1 - r};
    if (r == 0) {
      m.send = &v;
    } else {
      m.recv = &v;
    }
    m.ready_ns = r == 0 ? 500 : 900;
    CollectiveOutcome o;
    ASSERT_TRUE(ch.run(m, &o, {}, /*agree_on_start=*/true).ok());
    EXPECT_EQ(v, 1234567);
    EXPECT_EQ(o.agreed_start_ns, 900u);
    EXPECT_EQ(o.peer_rank, 1 - r);
  });
}

TEST(CollectiveEngine, MembersAgreeOnTheLatestReadyTime) {
  const int32_t n = 3;
  test::FakeNetwork net(n);
  on_ranks(n, net, 30, [&](int32_t r, KitChannel& ch) {
    MemberCollective m;
    m.shape = {CollectiveKind::kAllGather, Reduction::kSum, DType::kU8, 0, 0};
    m.ready_ns = uint64_t(100 * (r + 1));  // rank 2 is latest
    CollectiveOutcome o;
    ASSERT_TRUE(ch.run(m, &o, {}, true).ok());
    EXPECT_EQ(o.agreed_start_ns, 300u);
  });
}

TEST(CollectiveEngine, NeighboursThatDisagreeFailNamingBothShapes) {
  test::FakeNetwork net(2);
  on_ranks(2, net, 2, [&](int32_t r, KitChannel& ch) {
    std::vector<float> d(8, 0.f);
    MemberCollective m;
    m.shape = {CollectiveKind::kAllReduce, Reduction::kSum, DType::kF32, uint64_t(r == 0 ? 8 : 7),
               0};
    m.send = m.recv = d.data();
    CollectiveOutcome o;
    Status s = ch.run(m, &o);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    EXPECT_NE(s.message().find("of 8 f32"), std::string::npos) << s.to_string();
    EXPECT_NE(s.message().find("of 7 f32"), std::string::npos) << s.to_string();
  });
}

TEST(CollectiveEngine, AMissingPeerIsADeadlineErrorAndAbortReachesTheTransport) {
  test::FakeNetwork net(2);
  on_ranks(2, net, 0.2, [&](int32_t r, KitChannel& ch) {
    if (r == 1) return;  // rank 1 never takes part
    float x = 1;
    MemberCollective m;
    m.shape = {CollectiveKind::kAllReduce, Reduction::kSum, DType::kF32, 1, 0};
    m.send = m.recv = &x;
    CollectiveOutcome o;
    Status s = ch.run(m, &o);
    EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.to_string();
    EXPECT_NE(s.message().find("member 0 of channel 'engine': no message from rank 1"),
              std::string::npos)
        << s.to_string();
    ch.abort("giving up");
  });
  EXPECT_EQ(net.abort_reason(), "member 0 of channel 'engine': giving up");
}

TEST(ReduceElements, FloatsFoldInRankOrderAndRoundOnce) {
  // In bf16, 1 + 2^-8 + 2^-8 rounds to 1 when rounded per step but to 1 + 2^-7 once.
  const uint16_t one = float_to_bf16(1.0f), tiny = float_to_bf16(std::ldexp(1.0f, -8));
  const uint16_t a[1] = {one}, b[1] = {tiny}, c[1] = {tiny};
  const void* in[3] = {a, b, c};
  uint16_t out[1];
  reduce_elements(DType::kBF16, Reduction::kSum, in, 3, 1, out);
  EXPECT_EQ(bf16_to_float(out[0]), 1.0f + std::ldexp(1.0f, -7));
}

TEST(ReduceElements, IntegersWrapAndNaNPropagatesThroughMinAndMax) {
  const int8_t a[2] = {100, -128}, b[2] = {100, -1};
  const void* in[2] = {a, b};
  int8_t out[2];
  reduce_elements(DType::kI8, Reduction::kSum, in, 2, 2, out);
  EXPECT_EQ(out[0], int8_t(-56));
  EXPECT_EQ(out[1], int8_t(127));
  const float x[2] = {NAN, 1.f}, y[2] = {2.f, NAN};
  const void* fin[2] = {x, y};
  float fout[2];
  reduce_elements(DType::kF32, Reduction::kMax, fin, 2, 2, fout);
  EXPECT_TRUE(std::isnan(fout[0]));
  EXPECT_TRUE(std::isnan(fout[1]));
}

TEST(CollectiveShapes, SizesChecksAndBusBandwidthFactors) {
  const CollectiveShape ag{CollectiveKind::kAllGather, Reduction::kSum, DType::kBF16, 10, 0};
  EXPECT_EQ(ag.send_bytes(1, 4), 20u);
  EXPECT_EQ(ag.recv_bytes(1, 4), 80u);
  const CollectiveShape bc{CollectiveKind::kBroadcast, Reduction::kSum, DType::kF32, 3, 2};
  EXPECT_EQ(bc.send_bytes(2, 4), 12u);
  EXPECT_EQ(bc.send_bytes(1, 4), 0u);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kAllReduce, 4), 1.5);
  EXPECT_DOUBLE_EQ(bus_bandwidth_factor(CollectiveKind::kAllGather, 4), 0.75);
  EXPECT_FALSE(
      validate_collective({CollectiveKind::kAllReduce, Reduction(9), DType::kF32, 1, 0}, 0, 2)
          .ok());
  EXPECT_FALSE(
      validate_collective(
          {CollectiveKind::kAllReduce, Reduction::kSum, DType::kF32, uint64_t(1) << 62, 0}, 0, 2)
          .ok());
  EXPECT_TRUE(check_collective_overlap(ag, 1, 4, true, 20, 0).ok());   // in place: block 1
  EXPECT_FALSE(check_collective_overlap(ag, 1, 4, true, 22, 0).ok());  // off by one element
}

}  // namespace
}  // namespace hal
