// The CUDA plugin as a whole: it loads through hal::Platform on any machine (with or
// without a GPU) and reports exactly the GPUs the CUDA runtime sees; on a GPU its device
// description, telemetry, memory kinds, allocator statistics and out-of-memory statuses.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "cuda_test_support.h"
#include "hal/plugin_abi.h"
#include "support/cli_run.h"

namespace hal::cuda_test {
namespace {

// Runs everywhere: this is the test that proves the plugin on a machine without a GPU.
TEST(CudaPlugin, LoadsAndReportsTheGpusTheRuntimeSees) {
  Platform* p = cuda_platform();
  ASSERT_NE(p, nullptr);
  const PluginReport* r = cuda_report(*p);
  ASSERT_NE(r, nullptr) << "libhal_plugin_cuda.so was not found in the plugin directory";
  EXPECT_TRUE(r->loaded) << r->reason;
  EXPECT_EQ(r->abi_major, HAL_ABI_VERSION_MAJOR);
  int expected = 0;
  if (cudaGetDeviceCount(&expected) != cudaSuccess) expected = 0;  // no driver: no GPU
  EXPECT_EQ(int(p->devices().size()), expected);
  EXPECT_EQ(r->device_ids.size(), p->devices().size());
  for (size_t i = 0; i < p->devices().size(); ++i)
    EXPECT_EQ(p->devices()[i]->id(), "cuda:" + std::to_string(i));
}

TEST(CudaPlugin, RefusesUnknownOptions) {
  PlatformOptions o;
  o.only_plugins = {"cuda"};
  o.plugin_options["cuda"] = {{"compute_precision", "fp64"}};
  auto p = Platform::create(o);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  const PluginReport* r = cuda_report(**p);
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(r->loaded);
  EXPECT_NE(r->reason.find("compute_precision"), std::string::npos) << r->reason;
}

TEST(CudaDevice, DescribesTheGpu) {
  HAL_CUDA_GPU_OR_SKIP(d);
  const DeviceInfo& i = d->info();
  EXPECT_EQ(i.kind, DeviceKind::kGpu);
  EXPECT_EQ(i.vendor, "NVIDIA");
  EXPECT_FALSE(i.name.empty());
  EXPECT_GT(i.memory_bytes, uint64_t(1) << 30);
  // Every GPU since 2017 has > 100 GB/s; nothing has > 20 TB/s yet.
  EXPECT_GT(i.memory_bandwidth_bytes_per_s, 100e9);
  EXPECT_LT(i.memory_bandwidth_bytes_per_s, 20e12);
  EXPECT_GT(i.peak_flops_for(DType::kF32), 1e12);
  EXPECT_GT(i.compute_units, 0u);
  EXPECT_GT(i.sram_bytes, 0u);
  ASSERT_FALSE(i.links.empty());
  EXPECT_EQ(i.links[0].peer, "host");
  EXPECT_GT(i.links[0].bandwidth_bytes_per_s, 1e9);
  EXPECT_FALSE(i.property("compute_capability").empty());
  EXPECT_FALSE(i.property("source.memory_bandwidth").empty());
  EXPECT_FALSE(i.property("source.peak_flops").empty());
  const std::string cc = i.property("compute_capability");
  if (cc >= "8.0") {
    EXPECT_GT(i.peak_flops_for(DType::kBF16), i.peak_flops_for(DType::kF32));
  }
}

TEST(CudaDevice, ReportsTelemetry) {
  HAL_CUDA_GPU_OR_SKIP(d);
  auto t = d->telemetry();
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  // Memory in use is known with or without NVML (the runtime's cudaMemGetInfo).
  EXPECT_GT(t->memory_used_bytes, 0);
  EXPECT_LE(t->memory_used_bytes, double(d->info().memory_bytes) * 1.01);
  if (t->temperature_celsius >= 0) {
    EXPECT_LT(t->temperature_celsius, 120);
  }
  if (t->utilization_percent >= 0) {
    EXPECT_LE(t->utilization_percent, 100);
  }
}

TEST(CudaDevice, AllocatorStatisticsReturnToZero) {
  HAL_CUDA_GPU_OR_SKIP(d);
  auto before = d->memory_stats();
  ASSERT_TRUE(before.ok());
  {
    std::vector<Buffer> bufs;
    for (uint64_t size : {uint64_t(0), uint64_t(1), uint64_t(4097), uint64_t(64) << 20}) {
      auto b = d->allocate(size);
      ASSERT_TRUE(b.ok()) << b.status().to_string();
      bufs.push_back(std::move(*b));
    }
    auto v = d->allocate(uint64_t(1) << 30, MemoryKind::kVirtual);
    ASSERT_TRUE(v.ok()) << v.status().to_string();
    bufs.push_back(std::move(*v));
    auto mid = d->memory_stats();
    ASSERT_TRUE(mid.ok());
    EXPECT_EQ(mid->bytes_in_use - before->bytes_in_use,
              1 + 4097 + (uint64_t(64) << 20) + (uint64_t(1) << 30));
    EXPECT_EQ(mid->allocation_count - before->allocation_count, 5u);
  }
  auto after = d->memory_stats();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->bytes_in_use, before->bytes_in_use);
  EXPECT_EQ(after->allocation_count, before->allocation_count);
}

TEST(CudaDevice, OutOfMemoryIsAStatus) {
  HAL_CUDA_GPU_OR_SKIP(d);
  const uint64_t cap = d->info().memory_bytes;
  // Beyond the capacity: refused by the accountant.
  auto huge = d->allocate(cap + 1);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kOutOfMemory) << huge.status().to_string();
  // Within the capacity but beyond what is free (the CUDA context itself uses memory):
  // refused by CUDA, mapped to the same status, naming what is free.
  auto almost = d->allocate(cap - 4096);
  ASSERT_FALSE(almost.ok());
  EXPECT_EQ(almost.status().code(), StatusCode::kOutOfMemory) << almost.status().to_string();
  EXPECT_NE(almost.status().message().find("free"), std::string::npos)
      << almost.status().to_string();
  // The device still works afterwards.
  auto small = d->allocate(1 << 20);
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  auto s = d->create_stream();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->fill(*small, 0, 1 << 20, 7, 1).ok());
  EXPECT_TRUE(s->synchronize().ok());
}

TEST(CudaDevice, DeviceMemoryIsNotMappableHostMemoryIs) {
  HAL_CUDA_GPU_OR_SKIP(d);
  auto dev = d->allocate(256);
  ASSERT_TRUE(dev.ok());
  auto m = dev->map();
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kFailedPrecondition);
  for (MemoryKind k : {MemoryKind::kHostPinned, MemoryKind::kHostVisible}) {
    auto h = d->allocate(4096, k, 4096);
    ASSERT_TRUE(h.ok()) << h.status().to_string();
    auto p = h->map();
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(*p) % 4096, 0u);
    std::memset(*p, 0x5A, 4096);
    // The device reads pinned memory directly (a copy from it into device memory).
    auto s = d->create_stream();
    ASSERT_TRUE(s.ok());
    std::vector<uint8_t> back(4096);
    ASSERT_TRUE(s->copy(*h, 0, *dev, 0, 256).ok());
    ASSERT_TRUE(s->copy_to_host(*dev, 0, back.data(), 256).ok());
    ASSERT_TRUE(s->synchronize().ok());
    for (int i = 0; i < 256; ++i) ASSERT_EQ(back[i], 0x5A);
  }
}

}  // namespace
}  // namespace hal::cuda_test

#ifdef HAL_HALCTL_PATH
// `halctl plugins` shows the CUDA plugin loaded, with as many devices as the runtime sees
// (on a machine without a GPU: loaded, none).
TEST(CudaPlugin, HalctlPluginsShowsIt) {
  if (::access(HAL_HALCTL_PATH, X_OK) != 0)
    GTEST_SKIP() << HAL_HALCTL_PATH << " has not been built";
  const hal::test::CliRun r =
      hal::test::run_program(HAL_HALCTL_PATH, {"plugins"}, "HAL_PLUGIN_PATH=");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string& out = r.out;
  const size_t at = out.find("libhal_plugin_cuda.so");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string block =
      out.substr(out.rfind('\n', at) + 1, out.find("note", at) - out.rfind('\n', at));
  EXPECT_EQ(block.rfind("loaded", 0), 0u) << block;
  int expected = 0;
  if (cudaGetDeviceCount(&expected) != cudaSuccess) expected = 0;
  if (expected == 0) {
    EXPECT_NE(block.find("devices  none (0 devices)"), std::string::npos) << block;
  } else {
    EXPECT_NE(block.find("cuda:0"), std::string::npos) << block;
  }
}
#endif
