// The npu_sim plugin through the public HAL API: device selection, presets as
// DeviceInfo, simulated time (records, events, contention), accounting, capacity,
// timing-only planning, peer links, telemetry and agreement with the CPU backend.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "npu_test_support.h"

namespace hal::npu_sim {
namespace {

using testing::CleanNpuEnv;
using testing::Counters;
using testing::open_platform;
using testing::report_of;
using testing::ScopedEnv;

constexpr uint64_t kGiB = uint64_t(1) << 30;
constexpr uint64_t kMiB = uint64_t(1) << 20;

Device* dev(Platform& p, const std::string& id) {
  auto d = p.device(id);
  EXPECT_TRUE(d.ok()) << d.status().to_string();
  return d.ok() ? *d : nullptr;
}

Buffer alloc(Device* d, uint64_t size, MemoryKind kind = MemoryKind::kDevice) {
  auto b = d->allocate(size, kind);
  EXPECT_TRUE(b.ok()) << b.status().to_string();
  return b.ok() ? std::move(*b) : Buffer();
}

OpDescriptor matmul_op(const Buffer& a, const Buffer& b, const Buffer& c, DType t, int64_t m,
                       int64_t k, int64_t n) {
  return OpDescriptor(OpKind::kMatmul,
                      {TensorRef::contiguous(a, t, {m, k}), TensorRef::contiguous(b, t, {k, n})},
                      TensorRef::contiguous(c, t, {m, n}));
}

TEST(NpuPlugin, DefaultIsOneAtomWithCitedFigures) {
  auto p = open_platform({});
  ASSERT_TRUE(p);
  ASSERT_EQ(p->devices().size(), 1u);
  Device* d = dev(*p, "npu:0");
  ASSERT_TRUE(d);
  const DeviceInfo& i = d->info();
  EXPECT_EQ(i.kind, DeviceKind::kNpu);
  EXPECT_EQ(i.backend, "npu_sim");
  EXPECT_EQ(i.vendor, "Rebellions (simulated)");
  EXPECT_EQ(i.memory_bytes, 16 * kGiB - 288 * kMiB);
  EXPECT_EQ(i.memory_bandwidth_bytes_per_s, 256e9);
  EXPECT_EQ(i.peak_flops_for(DType::kF16), 32e12);
  EXPECT_EQ(i.sram_bytes, 64 * kMiB);
  EXPECT_EQ(i.compute_units, 8u);
  ASSERT_EQ(i.links.size(), 1u);
  EXPECT_EQ(i.links[0].peer, "host");
  EXPECT_EQ(i.links[0].kind, "pcie-gen5-x16");
  EXPECT_EQ(i.property("preset"), "atom");
  EXPECT_EQ(i.property("compute_precision"), "bf16");
  EXPECT_NE(i.property("source.memory_bandwidth_bytes_per_s").find("[R3 P]"), std::string::npos);
  EXPECT_NE(i.property("source.peak_flops.f16").find("[R3 P"), std::string::npos);
  EXPECT_NE(i.property("tunable").find("memory_efficiency"), std::string::npos);
  EXPECT_EQ(i.property("cts.tolerance.matmul"), "5e-2,2e-2");
}

TEST(NpuPlugin, EnvironmentSelectsSeveralDevices) {
  CleanNpuEnv clean;
  ScopedEnv env("HAL_NPU_SIM", "atom,atom");
  PlatformOptions o;
  o.only_plugins = {"npu_sim"};
  auto p = Platform::create(o);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ((*p)->devices().size(), 2u);
  Device* a = dev(**p, "npu:0");
  Device* b = dev(**p, "npu:1");
  // Two cards: no peer link; copies between them are staged through the host.
  EXPECT_EQ(a->info().links.size(), 1u);
  EXPECT_EQ((*p)->link(a, b).kind, "host-staged");
  EXPECT_EQ(a->info().property("devices_from"), "HAL_NPU_SIM");
  const uint64_t size = 8 * kMiB;
  Buffer x = alloc(a, size), y = alloc(b, size);
  std::vector<uint8_t> in(size), out(size);
  for (size_t i = 0; i < size; ++i) in[i] = uint8_t(i * 7 + 1);
  auto s = a->create_stream({.record_commands = true});
  auto sb = b->create_stream();
  ASSERT_TRUE(s.ok() && sb.ok());
  ASSERT_TRUE(s->copy_from_host(in.data(), x, 0, size).ok());
  ASSERT_TRUE(s->copy(x, 0, y, 0, size, 5).ok());
  ASSERT_TRUE(s->synchronize().ok());
  ASSERT_TRUE(sb->copy_to_host(y, 0, out.data(), size).ok());
  ASSERT_TRUE(sb->synchronize().ok());
  EXPECT_EQ(in, out);
  auto recs = s->take_records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].command, CommandKind::kCopyPeer);
  EXPECT_EQ(recs[1].tag, 5u);
  EXPECT_EQ(recs[1].bound, BoundBy::kLink);
  // Staged: both host-link latencies, then the bytes at the host links' rate.
  EXPECT_NEAR(recs[1].duration_s(), 4e-6 + double(size) / 50e9, 2e-9);
  EXPECT_GE(recs[1].start_ns, recs[0].end_ns);
}

TEST(NpuPlugin, AtomMaxDiesHavePeerLinks) {
  auto p = open_platform({{"devices", "atom-max"}});
  ASSERT_TRUE(p);
  ASSERT_EQ(p->devices().size(), 4u);
  for (Device* d : p->devices()) {
    ASSERT_EQ(d->info().links.size(), 4u) << d->id();  // host + 3 sibling dies
    for (size_t l = 1; l < 4; ++l) {
      EXPECT_EQ(d->info().links[l].kind, "pcie-gen5-switch");
      EXPECT_NE(d->info().links[l].peer, d->id());
    }
  }
  Device* a = dev(*p, "npu:0");
  Device* b = dev(*p, "npu:3");
  EXPECT_EQ(p->link(a, b).kind, "pcie-gen5-switch");
  const uint64_t size = 32 * kMiB;
  Buffer x = alloc(a, size), y = alloc(b, size);
  std::vector<uint32_t> in(size / 4), out(size / 4);
  for (size_t i = 0; i < in.size(); ++i) in[i] = uint32_t(i * 2654435761u);
  auto up = a->create_stream();
  auto s = b->create_stream({.record_commands = true});
  ASSERT_TRUE(up.ok() && s.ok());
  ASSERT_TRUE(up->copy_from_host(in.data(), x, 0, size).ok());
  ASSERT_TRUE(up->synchronize().ok());
  ASSERT_TRUE(s->copy(x, 0, y, 0, size).ok());  // a stream of npu:3 pulls from npu:0
  ASSERT_TRUE(s->copy_to_host(y, 0, out.data(), size).ok());
  ASSERT_TRUE(s->synchronize().ok());
  EXPECT_EQ(in, out);
  auto recs = s->take_records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].command, CommandKind::kCopyPeer);
  EXPECT_NEAR(recs[0].duration_s(), 2e-6 + double(size) / 50e9, 2e-9);
  const Counters c = Counters::find(*p);
  ASSERT_TRUE(c.device && c.stream);
  EXPECT_GT(c.of(*a).peer_link_busy_ns, 0u);
  EXPECT_EQ(c.of(*b).peer_link_busy_ns, 0u);
  EXPECT_EQ(c.of(*a).dram_bytes_read, size);     // read by the peer copy
  EXPECT_EQ(c.of(*b).dram_bytes_written, size);  // written by the peer copy
  EXPECT_EQ(c.of(*b).dram_bytes_read, size);     // read by the copy to host
  // Dies share the card's x16 uplink: uploads to two dies at once queue on it.
  auto s0 = a->create_stream({.record_commands = true});
  auto s3 = b->create_stream({.record_commands = true});
  ASSERT_TRUE(s0->copy_from_host(in.data(), x, 0, size).ok());
  ASSERT_TRUE(s3->copy_from_host(in.data(), y, 0, size).ok());
  ASSERT_TRUE(s0->synchronize().ok());
  ASSERT_TRUE(s3->synchronize().ok());
  const CommandRecord r0 = s0->take_records().at(0), r3 = s3->take_records().at(0);
  EXPECT_TRUE(r0.end_ns <= r3.start_ns || r3.end_ns <= r0.start_ns);
}

TEST(NpuPlugin, BadSpecRejectsThePluginNotThePlatform) {
  const std::string path = "/tmp/npu_sim_plugin_test_bad_spec.json";
  std::ofstream(path) << R"({"extends": "atom", "name": "x", "memory_bandwidth_bytes_per_s": 0})";
  CleanNpuEnv clean;
  PlatformOptions o;
  o.plugin_options["npu_sim"] = {{"devices", path}};
  auto p = Platform::create(o);
  std::remove(path.c_str());
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  const PluginReport* r = report_of(**p, "npu_sim");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->loaded);
  EXPECT_NE(r->reason.find(path), std::string::npos) << r->reason;
  EXPECT_NE(r->reason.find("memory_bandwidth_bytes_per_s"), std::string::npos) << r->reason;
  for (Device* d : (*p)->devices()) EXPECT_NE(d->info().backend, "npu_sim");
  const PluginReport* cpu = report_of(**p, "cpu");
  if (cpu) {
    EXPECT_TRUE(cpu->loaded) << cpu->reason;
    EXPECT_TRUE((*p)->device("cpu:0").ok());
  }
}

TEST(NpuPlugin, UnknownOptionRejectsThePlugin) {
  CleanNpuEnv clean;
  PlatformOptions o;
  o.only_plugins = {"npu_sim"};
  o.plugin_options["npu_sim"] = {{"presets", "atom"}};
  auto p = Platform::create(o);
  ASSERT_TRUE(p.ok());
  const PluginReport* r = report_of(**p, "npu_sim");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->loaded);
  EXPECT_NE(r->reason.find("plugin option 'presets' is unknown"), std::string::npos) << r->reason;
}

// Events carry simulated time: elapsed(e0, e1) around a host copy is its modelled time.
TEST(NpuPlugin, EventsMeasureSimulatedTime) {
  auto p = open_platform({{"devices", "atom"}});
  Device* d = dev(*p, "npu:0");
  const uint64_t size = 64 * kMiB;
  Buffer b = alloc(d, size);
  std::vector<uint8_t> host(size, 3);
  auto s = d->create_stream();
  auto e0 = d->create_event();
  auto e1 = d->create_event();
  ASSERT_TRUE(s.ok() && e0.ok() && e1.ok());
  ASSERT_TRUE(s->record(*e0).ok());
  ASSERT_TRUE(s->copy_from_host(host.data(), b, 0, size).ok());
  ASSERT_TRUE(s->record(*e1).ok());
  ASSERT_TRUE(e1->synchronize().ok());
  auto elapsed = Event::elapsed_seconds(*e0, *e1);
  ASSERT_TRUE(elapsed.ok());
  EXPECT_NEAR(*elapsed, 2e-6 + double(size) / 50e9, 2e-9);
}

// Decode- and prefill-shaped matmuls (virtual buffers: timed, not computed).
TEST(NpuPlugin, DecodeIsMemoryBoundPrefillIsComputeBound) {
  for (const char* preset : {"atom", "rebel-quad"}) {
    SCOPED_TRACE(preset);
    auto p = open_platform({{"devices", preset}});
    Device* d = dev(*p, "npu:0");
    const DeviceInfo& info = d->info();
    Buffer a = alloc(d, 2048 * 4096 * 2, MemoryKind::kVirtual);
    Buffer w = alloc(d, 4096 * 4096 * 2, MemoryKind::kVirtual);
    Buffer c = alloc(d, 2048 * 4096 * 2, MemoryKind::kVirtual);
    auto s = d->create_stream({.record_commands = true});
    ASSERT_TRUE(s->dispatch(matmul_op(a, w, c, DType::kBF16, 1, 4096, 4096), 1).ok());
    ASSERT_TRUE(s->dispatch(matmul_op(a, w, c, DType::kBF16, 2048, 4096, 4096), 2).ok());
    ASSERT_TRUE(s->synchronize().ok());
    auto recs = s->take_records();
    ASSERT_EQ(recs.size(), 2u);
    EXPECT_EQ(recs[0].bound, BoundBy::kMemory);
    EXPECT_EQ(recs[1].bound, BoundBy::kCompute);
    for (const CommandRecord& r : recs) {
      const double roof =
          std::max(r.flops / info.peak_flops_for(DType::kBF16),
                   double(r.bytes_read + r.bytes_written) / info.memory_bandwidth_bytes_per_s);
      EXPECT_GE(r.duration_s(), roof);
    }
    // Decode streams the weights once: the record's bytes are the analytic minimum.
    EXPECT_EQ(recs[0].bytes_read, uint64_t(4096 * 4096 * 2 + 4096 * 2));
    EXPECT_EQ(recs[0].flops, 2.0 * 4096 * 4096);
    const double achieved =
        recs[1].flops / recs[1].duration_s() / info.peak_flops_for(DType::kBF16);
    EXPECT_GT(achieved, 0.5);
    EXPECT_LE(achieved, 1.0);
  }
}

// Two streams of one device contend for its neural engines; a copy on the host link
// overlaps them.
TEST(NpuPlugin, StreamsContendForTheEngines) {
  auto p = open_platform({{"devices", "atom"}, {"timing_only", "true"}});
  Device* d = dev(*p, "npu:0");
  Buffer a = alloc(d, 1024 * 1024 * 2), w = alloc(d, 1024 * 1024 * 2),
         c = alloc(d, 1024 * 1024 * 2);
  std::vector<uint8_t> host(16 * kMiB);
  Buffer h = alloc(d, host.size());
  auto s1 = d->create_stream({.record_commands = true});
  auto s2 = d->create_stream({.record_commands = true});
  auto s3 = d->create_stream({.record_commands = true});
  const OpDescriptor op = matmul_op(a, w, c, DType::kBF16, 1024, 1024, 1024);
  ASSERT_TRUE(s1->dispatch(op).ok());
  ASSERT_TRUE(s2->dispatch(op).ok());
  ASSERT_TRUE(s3->copy_from_host(host.data(), h, 0, host.size()).ok());
  ASSERT_TRUE(s1->synchronize().ok() && s2->synchronize().ok() && s3->synchronize().ok());
  const CommandRecord r1 = s1->take_records().at(0), r2 = s2->take_records().at(0),
                      r3 = s3->take_records().at(0);
  EXPECT_EQ(r1.duration_s(), r2.duration_s());
  EXPECT_TRUE(r1.end_ns <= r2.start_ns || r2.end_ns <= r1.start_ns) << "engines double-booked";
  EXPECT_EQ(std::max(r1.end_ns, r2.end_ns), r1.end_ns - r1.start_ns + r2.end_ns - r2.start_ns);
  EXPECT_EQ(r3.start_ns, 0u);  // the host link was idle
}

TEST(NpuPlugin, WaitingOnAnEventAdvancesTheStreamClock) {
  auto p = open_platform({{"devices", "atom,atom"}, {"timing_only", "true"}});
  Device* d0 = dev(*p, "npu:0");
  Device* d1 = dev(*p, "npu:1");
  Buffer a = alloc(d0, 8 * kMiB), w = alloc(d0, 8 * kMiB), c = alloc(d0, 8 * kMiB);
  Buffer x = alloc(d1, kMiB);
  auto s0 = d0->create_stream({.record_commands = true});
  auto s1 = d1->create_stream({.record_commands = true});
  auto done = d0->create_event();
  ASSERT_TRUE(s0->dispatch(matmul_op(a, w, c, DType::kBF16, 2048, 2048, 2048)).ok());
  ASSERT_TRUE(s0->record(*done).ok());
  ASSERT_TRUE(s1->wait(*done).ok());  // another device of the plugin: one epoch
  ASSERT_TRUE(s1->fill(x, 0, kMiB, 0, 1).ok());
  ASSERT_TRUE(s1->synchronize().ok());
  auto ts = done->timestamp_ns();
  ASSERT_TRUE(ts.ok());
  const CommandRecord op = s0->take_records().at(0), fill = s1->take_records().at(0);
  EXPECT_EQ(*ts, op.end_ns);
  EXPECT_EQ(fill.start_ns, op.end_ns);
}

TEST(NpuPlugin, AllocationsBeyondCapacityAreOutOfMemory) {
  auto p = open_platform({{"devices", "atom"}});
  Device* d = dev(*p, "npu:0");
  const uint64_t cap = d->info().memory_bytes;
  auto too_big = d->allocate(cap + 1);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), StatusCode::kOutOfMemory);
  const std::string m = too_big.status().message();
  EXPECT_NE(m.find("npu:0"), std::string::npos) << m;
  EXPECT_NE(m.find("15.7 GiB free of 15.7 GiB"), std::string::npos) << m;
  {
    Buffer half1 = alloc(d, cap / 2), half2 = alloc(d, cap - cap / 2);  // lazily backed
    auto one_more = d->allocate(1, MemoryKind::kVirtual);
    EXPECT_EQ(one_more.status().code(), StatusCode::kOutOfMemory);
    EXPECT_NE(one_more.status().message().find("0 B free"), std::string::npos)
        << one_more.status().message();
    auto stats = d->memory_stats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->bytes_in_use, cap);
    EXPECT_EQ(stats->capacity_bytes, cap);
    auto tel = d->telemetry();
    ASSERT_TRUE(tel.ok());
    EXPECT_EQ(tel->memory_used_bytes, double(cap));
  }
  auto stats = d->memory_stats();
  EXPECT_EQ(stats->bytes_in_use, 0u);
  EXPECT_EQ(stats->allocation_count, 0u);
  EXPECT_EQ(stats->peak_bytes_in_use, cap);
}

// Timing-only: plan a 70B-class model's weights on one rebel-quad without host memory.
TEST(NpuPlugin, TimingOnlyPlansModelsLargerThanThisMachine) {
  auto p = open_platform({{"devices", "rebel-quad"}, {"timing_only", "true"}});
  Device* d = dev(*p, "npu:0");
  EXPECT_EQ(d->info().property("timing_only"), "true");
  Buffer weights = alloc(d, 130 * kGiB);  // far more than this machine's RAM
  Buffer act = alloc(d, 64 * kMiB), out = alloc(d, 64 * kMiB);
  ASSERT_TRUE(weights.valid());
  EXPECT_EQ(weights.map().status().code(), StatusCode::kFailedPrecondition);
  auto s = d->create_stream({.record_commands = true});
  // One decode step of an 80-layer, 8192-wide MLP (weights 28672 x 8192, bf16).
  for (int layer = 0; layer < 80; ++layer) {
    const uint64_t off = uint64_t(layer) * 28672 * 8192 * 2 * 3;
    OpDescriptor up(OpKind::kMatmul,
                    {TensorRef::contiguous(act, DType::kBF16, {1, 8192}),
                     TensorRef::contiguous(weights, DType::kBF16, {8192, 28672}, off)},
                    TensorRef::contiguous(out, DType::kBF16, {1, 28672}));
    ASSERT_TRUE(s->dispatch(up).ok());
  }
  std::vector<uint8_t> host(4096, 0xff);
  ASSERT_TRUE(s->copy_to_host(out, 0, host.data(), host.size()).ok());
  ASSERT_TRUE(s->synchronize().ok());
  EXPECT_EQ(host, std::vector<uint8_t>(4096, 0));  // no storage reads as zeros
  double seconds = 0;
  uint64_t bytes = 0;
  for (const CommandRecord& r : s->take_records())
    if (r.command == CommandKind::kOp) {
      seconds += r.duration_s();
      bytes += r.bytes_read;
      EXPECT_EQ(r.bound, BoundBy::kMemory);
    }
  EXPECT_GE(bytes, uint64_t(80) * 28672 * 8192 * 2);
  // Below the 4.8 TB/s roof, near the 2.7 TB/s sustained figure.
  EXPECT_GT(seconds, double(bytes) / 4.8e12);
  EXPECT_NEAR(double(bytes) / seconds, 2.7e12, 0.2e12);
}

// Virtual buffers are timed and accounted but never computed, even when the device
// computes: the output of an op reading one keeps its contents.
TEST(NpuPlugin, VirtualBuffersAreNotComputed) {
  auto p = open_platform({{"devices", "atom"}});
  Device* d = dev(*p, "npu:0");
  Buffer v = alloc(d, 64, MemoryKind::kVirtual);
  Buffer out = alloc(d, 64);
  auto s = d->create_stream({.record_commands = true});
  ASSERT_TRUE(s->fill(out, 0, 64, 0x3f800000, 4).ok());  // 1.0f
  ASSERT_TRUE(
      s->dispatch(OpDescriptor(OpKind::kScale, {TensorRef::contiguous(v, DType::kF32, {16})},
                               TensorRef::contiguous(out, DType::kF32, {16})))
          .ok());
  std::vector<float> host(16);
  ASSERT_TRUE(s->copy_to_host(out, 0, host.data(), 64).ok());
  ASSERT_TRUE(s->synchronize().ok());
  EXPECT_EQ(host, std::vector<float>(16, 1.0f));
  EXPECT_EQ(s->take_records().size(), 3u);
}

TEST(NpuPlugin, CountersAndTelemetrySumTheRecords) {
  auto p = open_platform({{"devices", "atom"}});
  Device* d = dev(*p, "npu:0");
  const Counters c = Counters::find(*p);
  ASSERT_TRUE(c.device && c.stream);
  const hal_npu_sim_counters before = c.of(*d);
  Buffer a = alloc(d, 256 * 256 * 4), w = alloc(d, 256 * 256 * 4), o = alloc(d, 256 * 256 * 4);
  std::vector<float> host(256 * 256, 0.5f);
  auto s = d->create_stream({.record_commands = true});
  ASSERT_TRUE(s->copy_from_host(host.data(), a, 0, host.size() * 4).ok());
  ASSERT_TRUE(s->copy_from_host(host.data(), w, 0, host.size() * 4).ok());
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(s->dispatch(matmul_op(a, w, o, DType::kF32, 256, 256, 256)).ok());
  ASSERT_TRUE(s->copy_to_host(o, 0, host.data(), host.size() * 4).ok());
  ASSERT_TRUE(s->synchronize().ok());
  EXPECT_NEAR(host[0], 0.25f * 256, 1e-3);
  hal_npu_sim_counters sum{};
  uint64_t busy = 0;
  for (const CommandRecord& r : s->take_records()) {
    ++sum.commands;
    sum.ops += r.command == CommandKind::kOp;
    sum.flops += r.flops;
    sum.dram_bytes_read += r.bytes_read;
    sum.dram_bytes_written += r.bytes_written;
    sum.sram_bytes_read += r.sram_bytes_read;
    sum.link_bytes += r.link_bytes;
    if (r.command == CommandKind::kOp) busy += r.end_ns - r.start_ns;
  }
  const hal_npu_sim_counters st = c.of(*s), dv = c.of(*d);
  EXPECT_EQ(st.commands, sum.commands);
  EXPECT_EQ(st.ops, 3u);
  EXPECT_EQ(st.flops, sum.flops);
  EXPECT_EQ(st.dram_bytes_read, sum.dram_bytes_read);
  EXPECT_EQ(st.dram_bytes_written, sum.dram_bytes_written);
  EXPECT_EQ(st.sram_bytes_read, sum.sram_bytes_read);
  EXPECT_EQ(st.link_bytes, 3 * host.size() * 4);
  EXPECT_EQ(dv.commands - before.commands, sum.commands);
  EXPECT_EQ(dv.dram_bytes_read - before.dram_bytes_read, sum.dram_bytes_read);
  EXPECT_EQ(dv.compute_busy_ns - before.compute_busy_ns, busy);
  EXPECT_GT(dv.host_link_busy_ns, 0u);
  EXPECT_EQ(c.device(nullptr, nullptr), -1);
  hal_npu_sim_counters bogus{};
  bogus.struct_size = sizeof(bogus);
  int not_a_device = 0;
  EXPECT_EQ(c.device(reinterpret_cast<hal_device*>(&not_a_device), &bogus), -1);
  auto t = d->telemetry();
  ASSERT_TRUE(t.ok());
  EXPECT_GT(t->utilization_percent, 0);
  EXPECT_LE(t->utilization_percent, 100);
  EXPECT_GE(t->power_watts, 20);
  EXPECT_LE(t->power_watts, 75);
  EXPECT_EQ(t->core_clock_hz, 1.5e9);
}

// The counters are an ABI 1.2 typed extension: found by type id, with its type, version
// and size in the header; other type ids and other plugins give nothing.
TEST(NpuPlugin, CountersExtensionIsFoundByTypeId) {
  auto p = open_platform({{"devices", "atom"}}, /*npu_only=*/false);
  Device* npu = dev(*p, "npu:0");
  const hal_extension_header* h = npu->extension(HAL_EXTENSION_TYPE_NPU_SIM_COUNTERS);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->type, HAL_EXTENSION_TYPE_NPU_SIM_COUNTERS);
  EXPECT_EQ(h->version, HAL_NPU_SIM_COUNTERS_EXT_VERSION);
  EXPECT_GE(h->struct_size, sizeof(hal_npu_sim_counters_ext));
  EXPECT_EQ(npu->extension(HAL_EXTENSION_TYPE_PRIVATE_FIRST + 7), nullptr);
  EXPECT_EQ(npu->extension(0), nullptr);
  Device* cpu = dev(*p, "cpu:0");
  EXPECT_EQ(cpu->extension(HAL_EXTENSION_TYPE_NPU_SIM_COUNTERS), nullptr);
}

// Runs a few ops on the simulated NPU and on cpu:0 with the same inputs.
std::vector<float> run_chain(Device* d, const std::vector<float>& x, const std::vector<float>& w,
                             const std::vector<float>& gamma) {
  const int64_t m = 8, k = 64, n = 48;
  Buffer bx = alloc(d, x.size() * 4), bw = alloc(d, w.size() * 4), bg = alloc(d, gamma.size() * 4);
  Buffer t0 = alloc(d, m * n * 4), t1 = alloc(d, m * n * 4), t2 = alloc(d, m * n * 4);
  auto s = d->create_stream();
  EXPECT_TRUE(s->copy_from_host(x.data(), bx, 0, x.size() * 4).ok());
  EXPECT_TRUE(s->copy_from_host(w.data(), bw, 0, w.size() * 4).ok());
  EXPECT_TRUE(s->copy_from_host(gamma.data(), bg, 0, gamma.size() * 4).ok());
  EXPECT_TRUE(s->dispatch(matmul_op(bx, bw, t0, DType::kF32, m, k, n)).ok());
  EXPECT_TRUE(s->dispatch(OpDescriptor(OpKind::kLayerNorm,
                                       {TensorRef::contiguous(t0, DType::kF32, {m, n}),
                                        TensorRef::contiguous(bg, DType::kF32, {n})},
                                       TensorRef::contiguous(t1, DType::kF32, {m, n})))
                  .ok());
  EXPECT_TRUE(
      s->dispatch(OpDescriptor(OpKind::kGelu, {TensorRef::contiguous(t1, DType::kF32, {m, n})},
                               TensorRef::contiguous(t2, DType::kF32, {m, n})))
          .ok());
  EXPECT_TRUE(
      s->dispatch(OpDescriptor(OpKind::kSoftmax, {TensorRef::contiguous(t2, DType::kF32, {m, n})},
                               TensorRef::contiguous(t0, DType::kF32, {m, n})))
          .ok());
  std::vector<float> out(size_t(m * n));
  EXPECT_TRUE(s->copy_to_host(t0, 0, out.data(), out.size() * 4).ok());
  EXPECT_TRUE(s->synchronize().ok());
  return out;
}

TEST(NpuPlugin, AgreesWithTheCpuBackend) {
  for (const char* precision : {"fp32", "bf16"}) {
    SCOPED_TRACE(precision);
    auto p = open_platform({{"devices", "atom"}, {"compute_precision", precision}}, false);
    auto cpu = p->device("cpu:0");
    if (!cpu.ok()) GTEST_SKIP() << "no cpu:0 in this build";
    Device* npu = dev(*p, "npu:0");
    EXPECT_EQ(npu->info().property("compute_precision"), precision);
    std::mt19937 g(7);
    std::uniform_real_distribution<float> dist(-1, 1);
    std::vector<float> x(8 * 64), w(64 * 48), gamma(48);
    for (float& v : x) v = dist(g);
    for (float& v : w) v = dist(g);
    for (float& v : gamma) v = 0.5f + dist(g) * 0.25f;
    const std::vector<float> want = run_chain(*cpu, x, w, gamma);
    const std::vector<float> got = run_chain(npu, x, w, gamma);
    // Softmax probabilities: fp32 agrees to rounding; bf16 operands of the matmul move
    // each probability by at most a few percent of itself (README.md, "Numerics").
    const bool exact = std::string(precision) == "fp32";
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got[i], want[i], exact ? 1e-5 : 1e-3 + 0.05 * want[i]) << i;
  }
}

}  // namespace
}  // namespace hal::npu_sim
