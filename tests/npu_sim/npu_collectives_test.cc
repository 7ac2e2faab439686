// Collectives on the simulated NPU: the same bits as the serial reference (the kit's
// engine), and simulated time from the modelled links: PCIe peer-to-peer between the dies
// of an ATOM-Max, host-staged between cards, UCIe between Rebel100 chiplets; ring vs tree;
// a late member delaying everyone; timing-only planning; a failed die releasing its peers.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "hal/channel.h"
#include "npu_test_support.h"
#include "support/collective_reference.h"

namespace hal::npu_sim {
namespace {

using testing::open_platform;

struct Group {
  std::vector<Device*> devices;
  std::vector<Channel> channels;
  std::vector<Stream> streams;
};

Group make_group(Platform& p, int32_t n, const std::string& name, double timeout_s = 0) {
  Group g;
  for (int32_t i = 0; i < n; ++i) g.devices.push_back(*p.device("npu:" + std::to_string(i)));
  ChannelOptions o;
  o.group = name;
  o.timeout_s = timeout_s;
  auto c = Channel::create_group(g.devices, o);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  if (c.ok()) g.channels = std::move(*c);
  for (Device* d : g.devices)
    g.streams.push_back(d->create_stream({.record_commands = true}).value());
  return g;
}

// Runs one all_reduce of `count` bf16 per member; returns each member's collective record.
std::vector<CommandRecord> all_reduce_records(Group& g, uint64_t count,
                                              MemoryKind kind = MemoryKind::kDevice) {
  std::vector<Buffer> bufs;
  bufs.reserve(g.devices.size());
  for (size_t r = 0; r < g.devices.size(); ++r) {
    bufs.push_back(g.devices[r]->allocate(count * 2, kind).value());
    EXPECT_TRUE(
        all_reduce(g.streams[r], g.channels[r], bufs.back(), bufs.back(), count, DType::kBF16)
            .ok());
  }
  std::vector<CommandRecord> out;
  for (auto& s : g.streams) {
    EXPECT_TRUE(s.synchronize().ok());
    for (const CommandRecord& r : s.take_records())
      if (r.command == CommandKind::kCollective) out.push_back(r);
  }
  return out;
}

TEST(NpuCollectives, DataMatchesTheSerialReferenceOnAnAtomMax) {
  auto p = open_platform({{"devices", "atom-max"}});
  ASSERT_NE(p, nullptr);
  Group g = make_group(*p, 4, "npu-data");
  for (DType t : {DType::kF32, DType::kBF16, DType::kFP8E4M3, DType::kI32}) {
    const CollectiveShape s{CollectiveKind::kAllReduce, Reduction::kSum, t, 37, 0};
    std::vector<test::Bytes> sends, got(4);
    std::vector<Buffer> send, recv;
    send.reserve(4);
    recv.reserve(4);
    for (int r = 0; r < 4; ++r) sends.push_back(test::random_elements(t, 37, 900 + uint64_t(r)));
    for (int r = 0; r < 4; ++r) {
      send.push_back(g.devices[r]->allocate(sends[r].size()).value());
      recv.push_back(g.devices[r]->allocate(sends[r].size()).value());
      ASSERT_TRUE(
          g.streams[r].copy_from_host(sends[r].data(), send.back(), 0, sends[r].size()).ok());
      ASSERT_TRUE(all_reduce(g.streams[r], g.channels[r], send.back(), recv.back(), 37, t).ok());
      got[r].resize(sends[r].size());
      ASSERT_TRUE(g.streams[r].copy_to_host(recv.back(), 0, got[r].data(), got[r].size()).ok());
    }
    for (auto& st : g.streams) ASSERT_TRUE(st.synchronize().ok());
    for (int r = 0; r < 4; ++r)
      EXPECT_EQ(got[r], test::expected_recv(s, r, 4, sends)) << dtype_name(t);
  }
}

TEST(NpuCollectives, ALargeAllReduceOnAnAtomMaxIsARingOverThePcieSwitch) {
  auto p = open_platform({{"devices", "atom-max"}, {"timing_only", "true"}});
  ASSERT_NE(p, nullptr);
  Group g = make_group(*p, 4, "npu-ring");
  const uint64_t count = uint64_t(32) << 20;  // 64 MiB of bf16 per die
  const auto recs = all_reduce_records(g, count);
  ASSERT_EQ(recs.size(), 4u);
  // The closed form: command overhead + 2(n-1) steps of (alpha + S/n / beta) on the
  // switch's 50 GB/s, 2 us peer link (presets/atom-max.json).
  const double S = double(count) * 2;
  const double want = 3e-6 + 6 * (2e-6 + S / 4 / 50e9);
  for (const CommandRecord& r : recs) {
    EXPECT_EQ(r.algorithm, CollectiveAlgorithm::kRing);
    EXPECT_EQ(r.link_class, LinkClass::kPeer);
    EXPECT_NEAR(r.duration_s(), want, 1e-9 + want * 1e-6);  // whole simulated ns
    EXPECT_EQ(r.link_bytes, uint64_t(1.5 * S));
    EXPECT_EQ(r.link_bytes_received, uint64_t(1.5 * S));
    EXPECT_EQ(r.peer_rank, (r.channel_rank + 1) % 4);
    EXPECT_EQ(r.bound, BoundBy::kLink);
    EXPECT_EQ(r.start_ns, recs[0].start_ns);  // every member books the same interval
  }
}

TEST(NpuCollectives, SmallMessagesAcrossTwoCardsTakeTheTreeLargeOnesTheRing) {
  auto p = open_platform({{"devices", "atom-max,atom-max"}, {"timing_only", "true"}});
  ASSERT_NE(p, nullptr);
  Group g = make_group(*p, 8, "npu-two-cards");
  const auto small = all_reduce_records(g, 512);
  const auto large = all_reduce_records(g, uint64_t(16) << 20);
  ASSERT_EQ(small.size(), 8u);
  ASSERT_EQ(large.size(), 8u);
  EXPECT_EQ(small[0].algorithm, CollectiveAlgorithm::kTree);
  EXPECT_EQ(large[0].algorithm, CollectiveAlgorithm::kRing);
  // Ring members 3 and 7 send across cards, through host memory.
  for (const CommandRecord& r : large)
    EXPECT_EQ(r.link_class, (r.channel_rank == 3 || r.channel_rank == 7) ? LinkClass::kHostStaged
                                                                         : LinkClass::kPeer)
        << "rank " << r.channel_rank;
  // The ring's slowest step is the host-staged one: 4 us and 50 GB/s.
  const double S = double(uint64_t(16) << 20) * 2;
  const double want = 3e-6 + 14 * (4e-6 + S / 8 / 50e9);
  EXPECT_NEAR(large[0].duration_s(), want, 1e-9 + want * 1e-6);
}

TEST(NpuCollectives, RebelChipletsAllReduceOverUcie) {
  auto p = open_platform({{"devices", "rebel-chiplets"}, {"timing_only", "true"}});
  ASSERT_NE(p, nullptr);
  Group g = make_group(*p, 4, "npu-ucie");
  const auto recs = all_reduce_records(g, uint64_t(8) << 20);
  ASSERT_EQ(recs.size(), 4u);
  for (const CommandRecord& r : recs) EXPECT_EQ(r.link_class, LinkClass::kDieToDie);
  // 1 TB/s UCIe is faster than the chiplet's HBM traffic the collective causes: the
  // memory term decides.
  EXPECT_EQ(recs[0].bound, BoundBy::kMemory);
}

TEST(NpuCollectives, ALateMemberDelaysEveryone) {
  auto p = open_platform({{"devices", "atom-max"}, {"timing_only", "true"}});
  ASSERT_NE(p, nullptr);
  Group g = make_group(*p, 2, "npu-late");
  // npu:1 is busy with a fill of 1 GiB first (~5 ms at 205 GB/s).
  Buffer big = g.devices[1]->allocate(uint64_t(1) << 30).value();
  ASSERT_TRUE(g.streams[1].fill(big, 0, big.size(), 0, 1).ok());
  const auto recs = all_reduce_records(g, 1024);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].start_ns, recs[1].start_ns);
  EXPECT_GT(recs[0].start_ns, uint64_t(4e6));  // after npu:1's fill
}

TEST(NpuCollectives, SendAndRecvTimeThePairsLink) {
  auto p = open_platform({{"devices", "atom,atom"}, {"timing_only", "true"}});
  ASSERT_NE(p, nullptr);
  Group g = make_group(*p, 2, "npu-p2p");
  Buffer a = g.devices[0]->allocate(1 << 20).value(), b = g.devices[1]->allocate(1 << 20).value();
  ASSERT_TRUE(send(g.streams[0], g.channels[0], a, 1 << 18, DType::kF32, 1).ok());
  ASSERT_TRUE(recv(g.streams[1], g.channels[1], b, 1 << 18, DType::kF32, 0).ok());
  std::vector<CommandRecord> recs;
  for (auto& s : g.streams) {
    ASSERT_TRUE(s.synchronize().ok());
    for (auto& r : s.take_records()) recs.push_back(r);
  }
  ASSERT_EQ(recs.size(), 2u);
  // Two separate cards: host-staged, both host links' 2 us, 50 GB/s.
  const double want = 3e-6 + 4e-6 + double(1 << 20) / 50e9;
  for (const CommandRecord& r : recs) {
    EXPECT_NEAR(r.duration_s(), want, 1e-9 + want * 1e-6);  // whole simulated ns
    EXPECT_EQ(r.link_class, LinkClass::kHostStaged);
  }
  EXPECT_EQ(recs[0].link_bytes, uint64_t(1) << 20);
  EXPECT_EQ(recs[0].peer_rank, 1);
  EXPECT_EQ(recs[1].link_bytes_received, uint64_t(1) << 20);
}

TEST(NpuCollectives, ALostDieReleasesItsPeersWithItsError) {
  auto p = open_platform({{"devices", "atom-max"}, {"faults", "npu:1:lost@cmd=0"}});
  ASSERT_NE(p, nullptr);
  Group g = make_group(*p, 2, "npu-fault");  // default timeout: only the abort releases npu:0
  Buffer a = g.devices[0]->allocate(64).value(), b = g.devices[1]->allocate(64).value();
  ASSERT_TRUE(all_reduce(g.streams[0], g.channels[0], a, a, 16, DType::kF32).ok());
  ASSERT_TRUE(all_reduce(g.streams[1], g.channels[1], b, b, 16, DType::kF32).ok());
  Status lost = g.streams[1].synchronize();
  EXPECT_EQ(lost.code(), StatusCode::kDeviceLost) << lost.to_string();
  Status peer = g.streams[0].synchronize();
  EXPECT_EQ(peer.code(), StatusCode::kAborted) << peer.to_string();
  EXPECT_NE(peer.message().find("device lost"), std::string::npos) << peer.to_string();
}

}  // namespace
}  // namespace hal::npu_sim
