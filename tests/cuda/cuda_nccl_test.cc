// The CUDA backend's NCCL logic that needs no GPU: loading the toolkit's libnccl, the
// HAL's dtypes and reductions in NCCL's numbering, the link bytes its ring schedule puts
// on each member, and rank 0's unique id reaching every rank over a transport.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "cuda_nccl_api.h"
#include "support/fake_transport.h"

namespace hal::cuda {
namespace {

TEST(NcclApi, TheToolkitsLibraryLoadsWithoutAGpu) {
  const NcclApi& api = NcclApi::get();
  if (!api.ok()) GTEST_SKIP() << "no NCCL on this machine: " << api.error;
  EXPECT_GE(api.version, 21000) << api.path;
  EXPECT_NE(api.AllReduce, nullptr);
  EXPECT_NE(api.CommInitRank, nullptr);
}

TEST(NcclApi, AMissingLibraryIsAnErrorNamingWhatWasTried) {
  const NcclApi api = NcclApi::load({"/nonexistent/libnccl.so.2"});
  EXPECT_FALSE(api.ok());
  EXPECT_NE(api.error.find("/nonexistent/libnccl.so.2"), std::string::npos) << api.error;
}

TEST(NcclMapping, DtypesAndReductions) {
  EXPECT_EQ(*nccl_dtype(DType::kBF16, 22809), ncclBfloat16);
  EXPECT_EQ(*nccl_dtype(DType::kF16, 22809), ncclFloat16);
  EXPECT_EQ(*nccl_dtype(DType::kU8, 22809), ncclUint8);
  EXPECT_EQ(*nccl_dtype(DType::kFP8E5M2, 22809), ncclFloat8e5m2);
  EXPECT_FALSE(nccl_dtype(DType::kFP8E4M3, 22300).has_value());  // before NCCL 2.24
  EXPECT_FALSE(nccl_dtype(DType::kInvalid, 22809).has_value());
  // NCCL numbers max (2) before min (3); the HAL numbers min first.
  EXPECT_EQ(nccl_op(Reduction::kMin), ncclMin);
  EXPECT_EQ(nccl_op(Reduction::kMax), ncclMax);
  EXPECT_EQ(nccl_op(Reduction::kSum), ncclSum);
}

TEST(NcclMapping, LinkBytesFollowTheRingSchedule) {
  const CollectiveShape ar{CollectiveKind::kAllReduce, Reduction::kSum, DType::kBF16, 1000, 0};
  EXPECT_EQ(nccl_link_bytes(ar, 0, 4), 3000u);  // 2(n-1)/n x 2000 bytes
  const CollectiveShape ag{CollectiveKind::kAllGather, Reduction::kSum, DType::kF32, 10, 0};
  EXPECT_EQ(nccl_link_bytes(ag, 1, 4), 120u);  // (n-1)/n x 4 x 40 bytes
  const CollectiveShape bc{CollectiveKind::kBroadcast, Reduction::kSum, DType::kF32, 10, 1};
  EXPECT_EQ(nccl_link_bytes(bc, 0, 4), 0u);  // the chain's last member forwards nothing
  EXPECT_EQ(nccl_link_bytes(bc, 1, 4), 40u);
  EXPECT_EQ(nccl_link_bytes(ar, 0, 1), 0u);
}

TEST(NcclBootstrap, RankZerosUniqueIdReachesEveryRank) {
  const int32_t n = 3;
  test::FakeNetwork net(n);
  std::vector<hal_transport> t;
  for (int32_t r = 0; r < n; ++r) t.push_back(net.transport(r));
  std::vector<ncclUniqueId> ids(n);
  std::vector<Status> results(n);
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      results[size_t(r)] = share_unique_id(
          t[size_t(r)], 10,
          [](ncclUniqueId* id) {
            for (int i = 0; i < NCCL_UNIQUE_ID_BYTES; ++i) id->internal[i] = char(i * 7);
            return ok_status();
          },
          &ids[size_t(r)]);
    });
  for (auto& th : threads) th.join();
  for (int32_t r = 0; r < n; ++r) {
    ASSERT_TRUE(results[size_t(r)].ok()) << results[size_t(r)].to_string();
    EXPECT_EQ(std::memcmp(&ids[size_t(r)], &ids[0], sizeof(ncclUniqueId)), 0) << "rank " << r;
    EXPECT_EQ(ids[size_t(r)].internal[5], char(35));
  }
}

TEST(NcclBootstrap, ALostRankZeroIsADeadlineError) {
  test::FakeNetwork net(2);
  const hal_transport t1 = net.transport(1);
  ncclUniqueId id{};
  Status s = share_unique_id(
      t1, 0.1, [](ncclUniqueId*) { return ok_status(); }, &id);
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.to_string();
  EXPECT_NE(s.message().find("unique id"), std::string::npos) << s.to_string();
}

}  // namespace
}  // namespace hal::cuda
