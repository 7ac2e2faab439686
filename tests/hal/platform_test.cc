#include <gtest/gtest.h>

#include <vector>

#include "hal/hal.h"

namespace hal {
namespace {

TEST(Platform, LoadsCpuPluginThroughTheAbi) {
  auto platform = Platform::create();
  ASSERT_TRUE(platform.ok()) << platform.status().to_string();
  auto dev = (*platform)->device("cpu:0");
  ASSERT_TRUE(dev.ok()) << dev.status().to_string();
  EXPECT_EQ((*dev)->info().backend, "cpu");
  EXPECT_GT((*dev)->info().memory_bytes, 0u);
}

TEST(Platform, MatmulRoundTrip) {
  auto platform = Platform::create();
  ASSERT_TRUE(platform.ok());
  Device* d = *(*platform)->device("cpu:0");
  auto a = d->allocate(4 * 6);
  auto b = d->allocate(4 * 6);
  auto c = d->allocate(4 * 4);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  auto s = d->create_stream({.record_commands = true});
  ASSERT_TRUE(s.ok());
  std::vector<float> av = {1, 2, 3, 4, 5, 6}, bv = {1, 0, 0, 1, 1, 1}, cv(4);
  ASSERT_TRUE(s->copy_from_host(av.data(), *a, 0, 24).ok());
  ASSERT_TRUE(s->copy_from_host(bv.data(), *b, 0, 24).ok());
  OpDescriptor op(OpKind::kMatmul,
                  {TensorRef::contiguous(*a, DType::kF32, {2, 3}),
                   TensorRef::contiguous(*b, DType::kF32, {3, 2})},
                  TensorRef::contiguous(*c, DType::kF32, {2, 2}));
  ASSERT_TRUE(s->dispatch(op, 7).ok());
  ASSERT_TRUE(s->copy_to_host(*c, 0, cv.data(), 16).ok());
  ASSERT_TRUE(s->synchronize().ok());
  EXPECT_EQ(cv, (std::vector<float>{4, 5, 10, 11}));
  auto recs = s->take_records();
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[2].tag, 7u);
  EXPECT_EQ(recs[2].flops, 2.0 * 2 * 2 * 3);
}

}  // namespace
}  // namespace hal
