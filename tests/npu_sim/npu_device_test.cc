// The simulator's device and stream classes used directly (below the C ABI): the
// command gate (fault-injection seam) and the simulated clock.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <vector>

#include "npu_device.h"

namespace hal::npu_sim {
namespace {

std::unique_ptr<NpuSystem> make_system(const std::string& devices, bool timing_only = false) {
  ConfigInputs in;
  in.plugin_options["devices"] = devices;
  in.plugin_options["timing_only"] = timing_only ? "true" : "false";
  auto cfg = resolve_config(in);
  EXPECT_TRUE(cfg.ok()) << cfg.status().to_string();
  auto sys = NpuSystem::create(*cfg);
  EXPECT_TRUE(sys.ok()) << sys.status().to_string();
  return std::move(*sys);
}

plugin::FillCall fill_call(plugin::BufferImpl* b, uint64_t size, uint64_t tag) {
  plugin::FillCall f;
  f.buffer = b;
  f.size_bytes = size;
  f.pattern_size = 1;
  f.pattern[0] = 7;
  f.tag = tag;
  return f;
}

// Fails the Nth command (a device lost at op N) and stretches the others.
class TestGate : public CommandGate {
 public:
  explicit TestGate(uint64_t fail_at) : fail_at_(fail_at) {}
  Status admit(CommandTicket& t) override {
    seen.push_back(t);
    if (t.sequence == fail_at_)
      return device_lost("npu " + std::to_string(t.device_index) + " lost at command " +
                         std::to_string(t.sequence));
    t.duration_scale = 2.0;
    return ok_status();
  }
  std::vector<CommandTicket> seen;

 private:
  uint64_t fail_at_;
};

TEST(NpuCommandGate, EveryCommandPassesTheGateInOrder) {
  auto sys = make_system("atom");
  NpuDevice* dev = sys->npu(0);
  auto gate = std::make_shared<TestGate>(2);
  dev->set_command_gate(gate);
  auto buf = dev->allocate(4096, MemoryKind::kDevice, 0);
  ASSERT_TRUE(buf.ok());
  std::unique_ptr<plugin::BufferImpl> b = std::move(*buf);
  auto st = dev->create_stream(HAL_STREAM_FLAG_RECORD_COMMANDS);
  ASSERT_TRUE(st.ok());
  std::unique_ptr<plugin::StreamImpl> s = std::move(*st);
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(s->fill(fill_call(b.get(), 4096, i)).ok());
  const Status r = s->synchronize();
  EXPECT_EQ(r.code(), StatusCode::kDeviceLost);
  EXPECT_NE(r.message().find("lost at command 2"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("1 later command(s)"), std::string::npos) << r.message();
  ASSERT_EQ(gate->seen.size(), 3u);  // the 4th was skipped, never admitted
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(gate->seen[i].sequence, i);
    EXPECT_EQ(gate->seen[i].tag, i);
    EXPECT_EQ(gate->seen[i].kind, CommandKind::kFill);
    EXPECT_EQ(gate->seen[i].bytes, 4096u);
    EXPECT_GT(gate->seen[i].modeled_duration_s, 0);
  }
  std::vector<CommandRecord> recs(8);
  ASSERT_EQ(s->take_records(recs.data(), recs.size()), 2u);
  // Slow device: each admitted command took twice its modelled time.
  const uint64_t modeled = to_sim_ns(gate->seen[0].modeled_duration_s);
  EXPECT_NEAR(double(recs[0].end_ns - recs[0].start_ns), 2.0 * double(modeled), 1.0);
  // After the error was reported the stream works again.
  dev->set_command_gate(nullptr);
  ASSERT_TRUE(s->fill(fill_call(b.get(), 16, 9)).ok());
  EXPECT_TRUE(s->synchronize().ok());
}

TEST(NpuClock, HostFenceOrdersWorkEnqueuedAfterASynchronize) {
  auto sys = make_system("atom", true);
  NpuDevice* dev = sys->npu(0);
  auto buf = dev->allocate(uint64_t(1) << 30, MemoryKind::kDevice, 0);
  ASSERT_TRUE(buf.ok());
  std::unique_ptr<plugin::BufferImpl> b = std::move(*buf);
  std::unique_ptr<plugin::StreamImpl> s1 =
      dev->create_stream(HAL_STREAM_FLAG_RECORD_COMMANDS).value();
  ASSERT_TRUE(s1->fill(fill_call(b.get(), uint64_t(1) << 30, 1)).ok());
  ASSERT_TRUE(s1->synchronize().ok());
  const uint64_t t1 = static_cast<NpuStream*>(s1.get())->clock_ns();
  EXPECT_GT(t1, 0u);
  EXPECT_EQ(sys->host_fence(), t1);
  // A stream created afterwards starts at the host's view of time, and a new copy on
  // the host link (an idle engine) cannot start before it either.
  std::unique_ptr<plugin::StreamImpl> s2 =
      dev->create_stream(HAL_STREAM_FLAG_RECORD_COMMANDS).value();
  std::vector<char> host(4096);
  plugin::CopyCall c;
  c.src_host = host.data();
  c.dst_buffer = b.get();
  c.size_bytes = host.size();
  c.direction = CommandKind::kCopyHostToDevice;
  ASSERT_TRUE(s2->copy(c).ok());
  ASSERT_TRUE(s2->synchronize().ok());
  CommandRecord r;
  ASSERT_EQ(s2->take_records(&r, 1), 1u);
  EXPECT_EQ(r.start_ns, t1);
}

}  // namespace
}  // namespace hal::npu_sim
