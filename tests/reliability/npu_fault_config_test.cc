// Configured faults of the simulated NPU (backends/npu_sim/npu_faults.h), below the C
// ABI: the syntax and its errors, where the setting comes from, and what each fault
// does to the commands of a device (and only that device).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "npu_device.h"

namespace hal::npu_sim {
namespace {

using ::testing::HasSubstr;

Result<std::unique_ptr<NpuSystem>> make_system(const std::string& devices,
                                               const std::string& faults) {
  ConfigInputs in;
  in.plugin_options["devices"] = devices;
  in.plugin_options["faults"] = faults;
  HAL_ASSIGN_OR_RETURN(SimConfig cfg, resolve_config(in));
  return NpuSystem::create(cfg);
}

TEST(NpuFaultSyntax, ParsesEveryKindAndTrigger) {
  auto f = parse_faults(
      " npu:0:lost@op=120; npu:1:ecc@op=40;npu:0:timeout@cmd=7 ; npu:2:slow=4x;"
      "npu:3:slow=1.5@op=9;",
      "test");
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_EQ(f->size(), 5u);
  EXPECT_EQ((*f)[0].device, 0u);
  EXPECT_EQ((*f)[0].kind, FaultKind::kLost);
  EXPECT_TRUE((*f)[0].count_ops);
  EXPECT_EQ((*f)[0].at, 120u);
  EXPECT_EQ((*f)[0].text, "npu:0:lost@op=120");
  EXPECT_EQ((*f)[1].kind, FaultKind::kEcc);
  EXPECT_EQ((*f)[1].device, 1u);
  EXPECT_EQ((*f)[2].kind, FaultKind::kTimeout);
  EXPECT_FALSE((*f)[2].count_ops);
  EXPECT_EQ((*f)[2].at, 7u);
  EXPECT_EQ((*f)[3].kind, FaultKind::kSlow);
  EXPECT_EQ((*f)[3].factor, 4.0);
  EXPECT_EQ((*f)[3].at, 0u);
  EXPECT_EQ((*f)[4].factor, 1.5);
  EXPECT_EQ((*f)[4].at, 9u);
  auto none = parse_faults("  ; ", "test");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(NpuFaultSyntax, MalformedEntriesSayWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"gpu:0:lost@op=1", "does not start with npu:N"},
      {"npu:x:lost@op=1", "'x' is not a device number"},
      {"npu:0", "expected npu:N:lost@op=K"},
      {"npu:0:lsot@op=1", "unknown fault kind 'lsot' (kinds: lost, ecc, timeout, slow)"},
      {"npu:0:lost", "lost needs a trigger: @op=K or @cmd=K"},
      {"npu:0:ecc@", "'@' needs a trigger"},
      {"npu:0:timeout@step=3", "trigger '@step=3' is not @op=K or @cmd=K"},
      {"npu:0:lost@op=-1", "'-1' is not a command number"},
      {"npu:0:lost=3@op=1", "lost takes no value"},
      {"npu:0:slow", "slow needs a factor, e.g. slow=4x"},
      {"npu:0:slow=0.5x", "slow factor '0.5x' is not a number in [1, 1e6]"},
      {"npu:0:slow=fast", "slow factor 'fast'"},
  };
  for (const auto& [text, why] : cases) {
    auto f = parse_faults(std::string("npu:0:slow=2;") + text, "HAL_NPU_SIM_FAULTS");
    ASSERT_FALSE(f.ok()) << text;
    EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(f.status().message(), HasSubstr("HAL_NPU_SIM_FAULTS: fault '"));
    EXPECT_THAT(f.status().message(), HasSubstr(why)) << text;
  }
}

TEST(NpuFaultConfig, OptionBeatsEnvironmentBeatsConfigFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("npu_fault_cfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "sim.json").string();
  std::ofstream(path)
      << R"({"devices": "atom,atom", "faults": ["npu:1:ecc@op=3", "npu:0:slow=2x"]})";
  ConfigInputs in;
  in.env_config = path;
  auto from_file = resolve_config(in);
  ASSERT_TRUE(from_file.ok()) << from_file.status().to_string();
  ASSERT_EQ(from_file->faults.size(), 2u);
  EXPECT_EQ(from_file->faults[0].text, "npu:1:ecc@op=3");
  EXPECT_THAT(from_file->faults_from, HasSubstr("config file"));
  in.env_faults = "npu:0:timeout@op=1";
  auto from_env = resolve_config(in);
  ASSERT_TRUE(from_env.ok());
  ASSERT_EQ(from_env->faults.size(), 1u);
  EXPECT_EQ(from_env->faults_from, "HAL_NPU_SIM_FAULTS");
  in.plugin_options["faults"] = "npu:1:lost@op=5";
  auto from_option = resolve_config(in);
  ASSERT_TRUE(from_option.ok());
  ASSERT_EQ(from_option->faults.size(), 1u);
  EXPECT_EQ(from_option->faults[0].kind, FaultKind::kLost);
  // A bad entry in the file names the file.
  std::ofstream(path) << R"({"faults": [7]})";
  in = ConfigInputs();
  in.env_config = path;
  auto bad = resolve_config(in);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr(path + ": faults[0]: expected a string"));
  std::filesystem::remove_all(dir);
}

TEST(NpuFaultConfig, AFaultOnADeviceThatIsNotConfiguredIsRefused) {
  auto sys = make_system("atom,atom", "npu:2:lost@op=1");
  ASSERT_FALSE(sys.ok());
  EXPECT_EQ(sys.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(sys.status().message(),
              HasSubstr("fault 'npu:2:lost@op=1' names npu:2, but only 2 device(s) are "
                        "configured (npu:0..npu:1)"));
}

// A device with one stream and a buffer, issuing fills and ops through the simulator's
// own classes.
struct Rig {
  std::unique_ptr<NpuSystem> sys;
  std::unique_ptr<plugin::BufferImpl> buf;
  std::unique_ptr<plugin::StreamImpl> stream;

  Rig(const std::string& devices, const std::string& faults, uint32_t device = 0) {
    auto s = make_system(devices, faults);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    sys = std::move(*s);
    NpuDevice* dev = sys->npu(device);
    buf = dev->allocate(1 << 16, MemoryKind::kDevice, 0).value();
    stream = dev->create_stream(HAL_STREAM_FLAG_RECORD_COMMANDS).value();
  }
  ~Rig() {
    stream.reset();
    buf.reset();
  }
  Status fill(uint64_t tag) {
    plugin::FillCall f;
    f.buffer = buf.get();
    f.size_bytes = 4096;
    f.pattern_size = 4;
    const float v = 1.5f;
    std::memcpy(f.pattern.data(), &v, 4);
    f.tag = tag;
    return stream->fill(f);
  }
  // out = 2 * in over 256 floats: one op.
  Status op(uint64_t tag) {
    plugin::OpCall call;
    call.kind = OpKind::kScale;
    call.num_inputs = 1;
    call.inputs[0].buffer = buf.get();
    call.inputs[0].desc = TensorDesc::contiguous(DType::kF32, Shape({256}));
    call.output = call.inputs[0];
    call.output.offset_bytes = 4096;
    call.attrs.alpha = 2.0f;
    return stream->dispatch(call, tag);
  }
  std::vector<CommandRecord> records() {
    std::vector<CommandRecord> r(256);
    r.resize(stream->take_records(r.data(), r.size()));
    return r;
  }
};

TEST(NpuFaultGate, LostAtOpFailsThatOpAndEveryLaterCommandForGood) {
  Rig rig("atom", "npu:0:lost@op=2");
  for (uint64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(rig.fill(100 + i).ok());
    ASSERT_TRUE(rig.op(200 + i).ok());
  }
  Status s = rig.stream->synchronize();
  EXPECT_EQ(s.code(), StatusCode::kDeviceLost);
  EXPECT_THAT(s.message(), HasSubstr("device lost during op 2 (scale, tag 202) (injected fault "
                                     "'npu:0:lost@op=2'); it accepts no more commands"));
  EXPECT_EQ(rig.records().size(), 5u);  // fill, op, fill, op, fill before op 2
  // Still lost: a later fill (no op) is refused, naming the loss.
  ASSERT_TRUE(rig.fill(7).ok());
  s = rig.stream->synchronize();
  EXPECT_EQ(s.code(), StatusCode::kDeviceLost);
  EXPECT_THAT(s.message(), HasSubstr("device lost at op 2"));
  EXPECT_THAT(s.message(),
              HasSubstr("command 6 (fill of 4096 bytes, tag 7) refused"));  // 6: the skipped ones
                                                                            // were never admitted
}

TEST(NpuFaultGate, EccAndTimeoutFailOneOpOnce) {
  Rig rig("atom", "npu:0:ecc@op=1;npu:0:timeout@cmd=4");
  ASSERT_TRUE(rig.op(10).ok());
  ASSERT_TRUE(rig.op(11).ok());
  Status s = rig.stream->synchronize();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("uncorrectable ECC error in device memory during "
                                     "op 1 (scale, tag 11) (injected fault 'npu:0:ecc@op=1')"));
  ASSERT_TRUE(rig.op(12).ok());    // command 2
  ASSERT_TRUE(rig.fill(13).ok());  // command 3
  ASSERT_TRUE(rig.fill(14).ok());  // command 4: times out
  ASSERT_TRUE(rig.op(15).ok());
  s = rig.stream->synchronize();
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(s.message(), HasSubstr("command 4 (fill of 4096 bytes, tag 14) did not "
                                     "complete in time (injected fault 'npu:0:timeout@cmd=4')"));
  // Transient: the device works afterwards.
  ASSERT_TRUE(rig.op(16).ok());
  EXPECT_TRUE(rig.stream->synchronize().ok());
}

TEST(NpuFaultGate, SlowStretchesDurationsFromItsTriggerAndKeepsResults) {
  Rig fast("atom", "");
  Rig slow("atom", "npu:0:slow=3x@op=1");
  for (Rig* r : {&fast, &slow}) {
    ASSERT_TRUE(r->fill(1).ok());
    ASSERT_TRUE(r->op(2).ok());
    ASSERT_TRUE(r->op(3).ok());
    ASSERT_TRUE(r->fill(4).ok());
    ASSERT_TRUE(r->stream->synchronize().ok());
  }
  auto a = fast.records(), b = slow.records();
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  auto ns = [](const CommandRecord& r) { return double(r.end_ns - r.start_ns); };
  EXPECT_EQ(ns(b[0]), ns(a[0]));             // before op 1
  EXPECT_EQ(ns(b[1]), ns(a[1]));             // op 0
  EXPECT_NEAR(ns(b[2]), 3 * ns(a[2]), 3.0);  // op 1 on: 3x (ns rounding)
  EXPECT_NEAR(ns(b[3]), 3 * ns(a[3]), 3.0);
  EXPECT_GT(ns(a[2]), 0);
  const auto* fa = static_cast<NpuBuffer*>(fast.buf.get())->data();
  const auto* fb = static_cast<NpuBuffer*>(slow.buf.get())->data();
  EXPECT_EQ(std::memcmp(fa, fb, 8192), 0);
  float out = 0;
  std::memcpy(&out, fb + 4096, 4);
  EXPECT_EQ(out, 3.0f);  // 2 x the filled 1.5
}

TEST(NpuFaultGate, OnlyTheNamedDeviceIsAffected) {
  Rig other("atom,atom", "npu:1:lost@op=0", 0);
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(other.op(i).ok());
  EXPECT_TRUE(other.stream->synchronize().ok());
}

}  // namespace
}  // namespace hal::npu_sim
