// The CUDA backend's graph reuse policy (backends/cuda/cuda_graph_reuse.h), which needs no
// GPU: a compiled unit's CUDA graph is replayed for the same launch parameters, updated in
// place when they change (the next decode step), instantiated when there is none, and the
// least recently used executable's graph is evicted beyond the capacity. The graphs
// themselves run in the CTS executable.* cases on a GPU.
#include <gtest/gtest.h>

#include "cuda_graph_reuse.h"

namespace hal::cuda {
namespace {

using Action = GraphReuse::Action;

TEST(GraphReuse, ReplaysUpdatesAndInstantiatesAsTheParametersSay) {
  GraphReuse r(2);
  const uint64_t step1[] = {0x1000, 64, 7};  // buffers, offsets, kv length 7
  const uint64_t step2[] = {0x1000, 64, 8};  // the next decode step
  const uint64_t k1 = GraphReuse::params_key(step1), k2 = GraphReuse::params_key(step2);
  EXPECT_NE(k1, k2);
  EXPECT_EQ(r.plan(1, k1), Action::kInstantiate);
  EXPECT_EQ(r.done(1, k1), std::nullopt);
  EXPECT_EQ(r.plan(1, k1), Action::kReplay);
  EXPECT_EQ(r.plan(1, k2), Action::kUpdate);
  r.done(1, k2);
  EXPECT_EQ(r.plan(1, k2), Action::kReplay);
  EXPECT_EQ(r.plan(1, k1), Action::kUpdate);
  // A failed update drops the graph: the next execution instantiates.
  r.forget(1);
  EXPECT_EQ(r.plan(1, k2), Action::kInstantiate);
}

TEST(GraphReuse, EvictsTheLeastRecentlyUsedBeyondCapacity) {
  GraphReuse r(2);
  EXPECT_EQ(r.done(1, 10), std::nullopt);
  EXPECT_EQ(r.done(2, 20), std::nullopt);
  r.done(1, 11);  // 1 is now the most recent
  EXPECT_EQ(r.done(3, 30), std::optional<uint64_t>(2));
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.plan(2, 20), Action::kInstantiate);
  EXPECT_EQ(r.plan(1, 11), Action::kReplay);
  EXPECT_EQ(r.plan(3, 30), Action::kReplay);
}

TEST(GraphReuse, ParameterKeysDifferForAnyWord) {
  const uint64_t a[] = {1, 2, 3}, b[] = {1, 2, 4}, c[] = {2, 1, 3};
  EXPECT_NE(GraphReuse::params_key(a), GraphReuse::params_key(b));
  EXPECT_NE(GraphReuse::params_key(a), GraphReuse::params_key(c));
  EXPECT_EQ(GraphReuse::params_key(a), GraphReuse::params_key(std::vector<uint64_t>{1, 2, 3}));
}

}  // namespace
}  // namespace hal::cuda
