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

TEST(Platform, UnknownDeviceIsNotFoundAndListsKnownIds) {
  auto platform = Platform::create();
  ASSERT_TRUE(platform.ok());
  auto dev = (*platform)->device("tpu:3");
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), StatusCode::kNotFound);
  EXPECT_NE(dev.status().message().find("tpu:3"), std::string::npos) << dev.status().message();
  EXPECT_NE(dev.status().message().find("cpu:0"), std::string::npos) << dev.status().message();
}

TEST(Platform, CpuReportsRealFiguresWithSources) {
  auto platform = Platform::create();
  ASSERT_TRUE(platform.ok());
  auto dev = (*platform)->device("cpu:0");
  ASSERT_TRUE(dev.ok());
  const DeviceInfo& i = (*dev)->info();
  EXPECT_EQ(i.kind, DeviceKind::kCpu);
  EXPECT_GT(i.memory_bandwidth_bytes_per_s, 0.0);
  EXPECT_GT(i.peak_flops_for(DType::kF32), 0.0);
  EXPECT_EQ(i.peak_flops_for(DType::kBF16), i.peak_flops_for(DType::kF32));
  EXPECT_GT(i.compute_units, 0u);
  EXPECT_GT(i.clock_hz, 0.0);
  EXPECT_GT(i.launch_overhead_s, 0.0);
  for (const char* key : {"source.memory_bytes", "source.memory_bandwidth", "source.peak_flops",
                          "source.sram_bytes", "source.clock_hz", "source.launch_overhead"})
    EXPECT_FALSE(i.property(key).empty()) << key;
  const LinkInfo host = i.host_link();
  EXPECT_EQ(host.kind, "memory-bus");
  EXPECT_EQ(host.bandwidth_bytes_per_s, i.memory_bandwidth_bytes_per_s);
}

TEST(Platform, SupportQueriesFollowTheKernels) {
  auto platform = Platform::create();
  ASSERT_TRUE(platform.ok());
  Device* d = *(*platform)->device("cpu:0");
  OpSpec spec;
  spec.kind = OpKind::kMatmul;
  spec.num_inputs = 2;
  spec.inputs[0] = TensorDesc::contiguous(DType::kBF16, {4, 8});
  spec.inputs[1] = TensorDesc::contiguous(DType::kBF16, {8, 3});
  spec.output = TensorDesc::contiguous(DType::kBF16, {4, 3});
  EXPECT_TRUE(d->supports(spec));
  spec.inputs[1].dtype = DType::kFP8E5M2;
  EXPECT_FALSE(d->supports(spec));
}

}  // namespace
}  // namespace hal
