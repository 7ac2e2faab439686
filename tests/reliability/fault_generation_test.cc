// Generation under injected device faults (issue 8): for each fault class — device lost,
// ECC error, command timeout — at many ops spread over the prefill and decode of
// gpt2-tiny and llama-tiny on two NPUs (npu:0,npu:1) and on cpu:0,npu:0, the run either
//  - fails cleanly (no failover): the fault's status code, a message naming the device,
//    the node and the injected fault; no hang; every buffer of the run freed, and every
//    buffer of the session once it goes; or
//  - with failover, completes with exactly the tokens of an undisturbed run, reporting
//    the recovery (device dropped or not), and frees everything when the session goes.
// A slow device changes durations only. Every run is under a watchdog: a hang fails
// the binary instead of stalling ctest.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "hal/platform.h"
#include "hal/runtime/model.h"
#include "hal/runtime/session.h"

namespace {

using namespace hal;
using namespace hal::runtime;
using ::testing::HasSubstr;

// Ends the process if a scenario does not finish in time: a hang is a failure.
class Watchdog {
 public:
  Watchdog(std::string what, std::chrono::seconds limit)
      : what_(std::move(what)), thread_([this, limit] {
          std::unique_lock<std::mutex> lock(mu_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: '%s' did not finish within %lld s: hang\n",
                         what_.c_str(), static_cast<long long>(limit.count()));
            std::fflush(stderr);
            std::_Exit(3);
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the rest exists
};

// The CPU plugin once for the binary (sessions mix its cpu:0 with each scenario's NPUs).
Platform* cpu_platform() {
  static Platform* p = [] {
    ::setenv("HAL_LOG", "3", 1);  // every scenario's "injecting faults" warning is expected
    PlatformOptions o;
    o.only_plugins = {"cpu"};
    auto made = Platform::create(o);
    return made.ok() ? made->release() : nullptr;
  }();
  return p;
}

std::shared_ptr<const Model> model(const std::string& name) {
  static std::map<std::string, std::shared_ptr<const Model>> cache;
  auto& m = cache[name];
  if (!m) {
    auto loaded = load_model(name);
    EXPECT_TRUE(loaded.ok()) << loaded.status().to_string();
    if (loaded.ok()) m = std::move(*loaded);
  }
  return m;
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t comma; (comma = list.find(',', start)) != std::string::npos; start = comma + 1)
    out.push_back(list.substr(start, comma - start));
  out.push_back(list.substr(start));
  return out;
}

const std::vector<std::vector<int32_t>> kPrompts = {{1, 2, 3, 4, 5}, {7, 8, 9}};
constexpr int64_t kNewTokens = 6;

// Fresh simulated NPUs (exact fp32 arithmetic, so every device set computes the same
// greedy tokens) with `faults`, plus cpu:0 when the device list asks for it.
struct Rig {
  std::unique_ptr<Platform> npus;
  std::vector<Device*> devices;

  Rig(const std::string& device_list, const std::string& faults) {
    const bool with_cpu = device_list.find("cpu:0") != std::string::npos;
    if (!cpu_platform()) ADD_FAILURE() << "no CPU plugin";  // also quiets the warnings
    PlatformOptions o;
    o.only_plugins = {"npu_sim"};
    o.plugin_options["npu_sim"] = {{"devices", with_cpu ? "atom" : "atom,atom"},
                                   {"compute_precision", "fp32"},
                                   {"faults", faults}};
    auto p = Platform::create(o);
    EXPECT_TRUE(p.ok()) << p.status().to_string();
    if (!p.ok()) return;
    npus = std::move(*p);
    for (const std::string& id : split(device_list)) {
      auto d = id == "cpu:0" ? cpu_platform()->device(id) : npus->device(id);
      EXPECT_TRUE(d.ok()) << d.status().to_string();
      if (d.ok()) devices.push_back(*d);
    }
    // The simulator reports an injected configuration it could not load as a plugin
    // failure; make it visible.
    for (const auto& r : npus->plugin_reports())
      if (r.name == "npu_sim") {
        EXPECT_TRUE(r.loaded) << r.reason;
      }
  }
  std::vector<uint64_t> bytes_in_use() const {
    std::vector<uint64_t> out;
    for (Device* d : devices) {
      auto s = d->memory_stats();
      out.push_back(s.ok() ? s->bytes_in_use : ~uint64_t(0));
    }
    return out;
  }
  std::vector<uint64_t> allocation_counts() const {
    std::vector<uint64_t> out;
    for (Device* d : devices) {
      auto s = d->memory_stats();
      out.push_back(s.ok() ? s->allocation_count : ~uint64_t(0));
    }
    return out;
  }
};

struct Outcome {
  Status status;
  GenerationResult result;
  std::vector<uint64_t> before, after_create, after_run, after_destroy;
  std::vector<uint64_t> allocations_before, allocations_after_destroy;
  std::vector<std::string> devices_after;  // the session's devices after the run
  std::vector<StepRecord> records;
};

// The layer split with every transfer on a second stream of its device: a plan with
// several streams per device, whose executor joins them at the end of each run.
Result<ExecutionPlan> two_stream_plan(std::shared_ptr<const Graph> graph,
                                      const std::vector<Device*>& devices) {
  std::vector<int32_t> layer_device;
  for (int32_t l = 0; l < 4; ++l) layer_device.push_back(l * int32_t(devices.size()) / 4);
  HAL_ASSIGN_OR_RETURN(ExecutionPlan plan, make_layer_split_plan(graph, devices, layer_device));
  plan.streams_per_device.assign(devices.size(), 2);
  plan.event_producer.clear();
  for (PlannedStep& st : plan.steps) {
    st.wait_events.clear();
    st.record_event = -1;
    if (plan.graph->node(st.node).kind == NodeKind::kTransfer) st.stream = 1;
  }
  add_stream_events(plan);
  HAL_RETURN_IF_ERROR(finalize_plan(plan));
  return plan;
}

Outcome run(const std::string& model_name, const std::string& device_list,
            const std::string& faults, bool failover, bool record = false,
            PlanBuilder planner = nullptr, GenerationOptions go = {}) {
  Watchdog dog(model_name + " on " + device_list + " with '" + faults + "'",
               std::chrono::seconds(60));
  Outcome out;
  Rig rig(device_list, faults);
  if (rig.devices.empty()) {
    out.status = internal_error("no devices");
    return out;
  }
  out.before = rig.bytes_in_use();
  out.allocations_before = rig.allocation_counts();
  {
    SessionOptions so;
    so.devices = rig.devices;
    so.record_commands = record;
    so.planner = planner;
    auto session = Session::create(model(model_name), so);
    if (!session.ok()) {
      out.status = session.status();
    } else {
      out.after_create = rig.bytes_in_use();
      go.max_new_tokens = kNewTokens;
      go.failover = failover;
      auto r = (*session)->generate(kPrompts, go);
      out.after_run = rig.bytes_in_use();
      for (Device* d : (*session)->options().devices) out.devices_after.push_back(d->id());
      if (record) out.records = (*session)->last_records();
      if (r.ok()) {
        out.result = std::move(*r);
      } else {
        out.status = r.status();
      }
    }
  }
  out.after_destroy = rig.bytes_in_use();
  out.allocations_after_destroy = rig.allocation_counts();
  return out;
}

// An undisturbed run: its tokens, and how many ops each NPU of the set executes.
struct Reference {
  std::vector<std::vector<int32_t>> tokens;
  std::map<std::string, uint64_t> ops;  // "npu:1" -> ops dispatched during generate()
};

const Reference& reference(const std::string& model_name, const std::string& device_list) {
  static std::map<std::string, Reference> cache;
  const std::string key = model_name + "|" + device_list;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Reference ref;
  Outcome o = run(model_name, device_list, "", false, true);
  EXPECT_TRUE(o.status.ok()) << o.status.to_string();
  ref.tokens = o.result.tokens;
  const std::vector<std::string> ids = split(device_list);
  for (const StepRecord& s : o.records)
    if (s.record.command == CommandKind::kOp && s.device >= 0 && size_t(s.device) < ids.size())
      ++ref.ops[ids[size_t(s.device)]];
  return cache[key] = std::move(ref);
}

struct FaultClass {
  const char* name;  // as in the fault syntax
  StatusCode code;
  bool loses_device;
};
const FaultClass kClasses[] = {
    {"lost", StatusCode::kDeviceLost, true},
    {"ecc", StatusCode::kDataLoss, false},
    {"timeout", StatusCode::kDeadlineExceeded, false},
};

// `count` ops spread evenly over [0, total): the first, the last and between.
std::vector<uint64_t> sweep(uint64_t total, int count) {
  std::vector<uint64_t> at;
  for (int i = 0; i < count; ++i) {
    const uint64_t k = total <= 1 ? 0 : uint64_t(i) * (total - 1) / uint64_t(count - 1);
    if (at.empty() || at.back() != k) at.push_back(k);
  }
  return at;
}

struct Tally {
  int injected = 0, clean_failures = 0, identical_failovers = 0;
  int in_prefill = 0, in_decode = 0;  // where the faults hit (failover runs)
};
std::map<std::string, Tally>& tallies() {
  static std::map<std::string, Tally> t;
  return t;
}

using Param = std::tuple<std::string, std::string>;  // model, device list

class FaultSweep : public ::testing::TestWithParam<Param> {
 protected:
  static constexpr int kPoints = 16;  // per device, class and mode
};

TEST_P(FaultSweep, EveryFaultFailsCleanlyOrFailsOverToIdenticalTokens) {
  const auto& [model_name, device_list] = GetParam();
  const Reference& ref = reference(model_name, device_list);
  ASSERT_EQ(ref.tokens.size(), kPrompts.size());
  ASSERT_FALSE(ref.ops.empty());
  for (const auto& [device, total_ops] : ref.ops) {
    if (device.rfind("npu:", 0) != 0) continue;
    ASSERT_GT(total_ops, 10u) << device;
    std::printf("%s on %s: %s runs %llu ops undisturbed\n", model_name.c_str(), device_list.c_str(),
                device.c_str(), static_cast<unsigned long long>(total_ops));
    for (const FaultClass& fc : kClasses) {
      for (uint64_t k : sweep(total_ops, kPoints)) {
        const std::string fault = device + ":" + fc.name + "@op=" + std::to_string(k);
        SCOPED_TRACE(model_name + " on " + device_list + ", fault " + fault + " (of " +
                     std::to_string(total_ops) + " ops)");
        Tally& tally = tallies()[fc.name];

        // Without failover: a clean failure.
        Outcome fail = run(model_name, device_list, fault, false);
        ++tally.injected;
        EXPECT_EQ(fail.status.code(), fc.code) << fail.status.to_string();
        const std::string& m = fail.status.message();
        EXPECT_THAT(m, HasSubstr(device + ": "));
        EXPECT_THAT(m, HasSubstr("injected fault '" + fault + "'"));
        EXPECT_THAT(m, HasSubstr("op " + std::to_string(k) + " ("));
        EXPECT_THAT(m, HasSubstr("executor: node '"));  // the graph node that failed
        EXPECT_THAT(m, ::testing::AnyOf(HasSubstr("prefill"), HasSubstr("decode step")));
        EXPECT_EQ(fail.after_run, fail.after_create) << "the failed run's buffers were kept";
        EXPECT_EQ(fail.after_destroy, fail.before) << "the session's buffers were kept";
        EXPECT_EQ(fail.allocations_after_destroy, fail.allocations_before);
        if (!fail.status.ok() && fail.status.code() == fc.code &&
            fail.after_destroy == fail.before && fail.after_run == fail.after_create)
          ++tally.clean_failures;

        // With failover: the undisturbed tokens.
        Outcome over = run(model_name, device_list, fault, true);
        ++tally.injected;
        ASSERT_TRUE(over.status.ok()) << over.status.to_string();
        EXPECT_EQ(over.result.tokens, ref.tokens);
        ASSERT_EQ(over.result.failovers.size(), 1u);
        const FailoverEvent& ev = over.result.failovers[0];
        EXPECT_EQ(ev.fault.code(), fc.code);
        EXPECT_THAT(ev.fault.message(), HasSubstr("injected fault '" + fault + "'"));
        if (fc.loses_device) {
          EXPECT_EQ(ev.lost, std::vector<std::string>{device});
          EXPECT_THAT(ev.devices, ::testing::Not(::testing::Contains(device)));
          EXPECT_THAT(over.devices_after, ::testing::Not(::testing::Contains(device)));
        } else {
          EXPECT_TRUE(ev.lost.empty());
          EXPECT_EQ(over.devices_after.size(), over.before.size());
        }
        // Kept tokens are re-prefilled with their prompts; finished rows never are.
        int64_t expect_prefilled = 0;
        const int64_t kept_per_row = ev.tokens_kept / int64_t(kPrompts.size());
        for (const auto& p : kPrompts) expect_prefilled += int64_t(p.size()) + kept_per_row;
        EXPECT_EQ(ev.tokens_kept % int64_t(kPrompts.size()), 0);
        EXPECT_EQ(ev.tokens_prefilled, expect_prefilled);
        EXPECT_LT(ev.tokens_kept, kNewTokens * int64_t(kPrompts.size()));
        EXPECT_EQ(over.after_destroy, over.before) << "buffers left after the session";
        EXPECT_EQ(over.allocations_after_destroy, over.allocations_before);
        (ev.tokens_kept == 0 ? tally.in_prefill : tally.in_decode) += 1;
        if (over.status.ok() && over.result.tokens == ref.tokens &&
            over.after_destroy == over.before)
          ++tally.identical_failovers;
        if (HasFailure()) return;  // one broken point says enough
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ModelsAndDevices, FaultSweep,
                         ::testing::Values(Param{"gpt2-tiny", "npu:0,npu:1"},
                                           Param{"gpt2-tiny", "cpu:0,npu:0"},
                                           Param{"llama-tiny", "npu:0,npu:1"},
                                           Param{"llama-tiny", "cpu:0,npu:0"}),
                         [](const ::testing::TestParamInfo<Param>& i) {
                           std::string n = std::get<0>(i.param) + "_" + std::get<1>(i.param);
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

// A device that fails races through its skipped commands; with several streams per
// device that once left another plugin's stream waiting for work queued behind itself
// (executor.cc: stream_done). Every fault class at many points, both outcomes.
TEST(FaultInjection, PlansWithSeveralStreamsPerDeviceNeitherHangNorDiverge) {
  const std::string devices = "cpu:0,npu:0";
  Outcome ref = run("gpt2-tiny", devices, "", false, true, two_stream_plan);
  ASSERT_TRUE(ref.status.ok()) << ref.status.to_string();
  uint64_t npu_ops = 0;
  for (const StepRecord& s : ref.records)
    npu_ops += s.device == 1 && s.record.command == CommandKind::kOp;
  ASSERT_GT(npu_ops, 10u);
  EXPECT_EQ(ref.result.tokens, reference("gpt2-tiny", devices).tokens);
  for (const FaultClass& fc : kClasses)
    for (uint64_t k : sweep(npu_ops, 6)) {
      const std::string fault = "npu:0:" + std::string(fc.name) + "@op=" + std::to_string(k);
      SCOPED_TRACE(fault);
      Outcome fail = run("gpt2-tiny", devices, fault, false, false, two_stream_plan);
      EXPECT_EQ(fail.status.code(), fc.code) << fail.status.to_string();
      EXPECT_EQ(fail.after_destroy, fail.before);
      Outcome over = run("gpt2-tiny", devices, fault, true, false, two_stream_plan);
      ASSERT_TRUE(over.status.ok()) << over.status.to_string();
      EXPECT_EQ(over.result.tokens, ref.result.tokens);
      EXPECT_EQ(over.after_destroy, over.before);
    }
}

// Sampling continues each row's generator where it stopped; a row that finished (eos)
// before the fault is not resumed. Both: the undisturbed run's tokens.
TEST(FaultInjection, FailoverKeepsSamplingStreamsAndFinishedRows) {
  const std::string devices = "npu:0,npu:1";
  GenerationOptions sampled;
  sampled.sampling.temperature = 30.0f;  // the built-in models have wide top-1 margins
  sampled.sampling.top_k = 40;
  sampled.sampling.seed = 7;
  Outcome ref = run("llama-tiny", devices, "", false, true, nullptr, sampled);
  ASSERT_TRUE(ref.status.ok()) << ref.status.to_string();
  EXPECT_NE(ref.result.tokens, reference("llama-tiny", devices).tokens);  // really sampled
  uint64_t ops = 0;
  for (const StepRecord& s : ref.records)
    ops += s.device == 1 && s.record.command == CommandKind::kOp;
  for (uint64_t k : sweep(ops, 6)) {
    const std::string fault = "npu:1:lost@op=" + std::to_string(k);
    Outcome o = run("llama-tiny", devices, fault, true, false, nullptr, sampled);
    ASSERT_TRUE(o.status.ok()) << fault << ": " << o.status.to_string();
    EXPECT_EQ(o.result.tokens, ref.result.tokens) << fault;
  }

  // Row 1 stops at its second token (eos); faults after that resume row 0 only.
  const auto& greedy = reference("gpt2-tiny", devices).tokens;
  GenerationOptions eos;
  eos.eos_token_id = greedy[1][1];
  Outcome eref = run("gpt2-tiny", devices, "", false, true, nullptr, eos);
  ASSERT_TRUE(eref.status.ok());
  ASSERT_LT(eref.result.tokens[1].size(), size_t(kNewTokens));
  ASSERT_EQ(eref.result.tokens[0].size(), size_t(kNewTokens))
      << "pick an eos that only row 1 produces";
  uint64_t eops = 0;
  for (const StepRecord& s : eref.records)
    eops += s.device == 0 && s.record.command == CommandKind::kOp;
  int resumed_alone = 0;
  for (uint64_t k : sweep(eops, 8)) {
    const std::string fault = "npu:0:ecc@op=" + std::to_string(k);
    Outcome o = run("gpt2-tiny", devices, fault, true, false, nullptr, eos);
    ASSERT_TRUE(o.status.ok()) << fault << ": " << o.status.to_string();
    EXPECT_EQ(o.result.tokens, eref.result.tokens) << fault;
    ASSERT_EQ(o.result.failovers.size(), 1u);
    const FailoverEvent& ev = o.result.failovers[0];
    // Row 1 finished: only row 0 (prompt + its tokens) is prefilled again.
    if (ev.tokens_kept >= 2 * 2)
      resumed_alone += ev.tokens_prefilled == int64_t(kPrompts[0].size()) + ev.tokens_kept -
                                                  int64_t(eref.result.tokens[1].size());
  }
  EXPECT_GT(resumed_alone, 0);
}

TEST(FaultInjection, LosingEveryDeviceFailsCleanlyEvenWithFailover) {
  Outcome o = run("gpt2-tiny", "npu:0,npu:1", "npu:1:lost@op=30; npu:0:lost@op=0", true);
  EXPECT_EQ(o.status.code(), StatusCode::kDeviceLost) << o.status.to_string();
  EXPECT_THAT(o.status.message(), HasSubstr("failover: no device left (lost: npu:0, npu:1)"));
  EXPECT_EQ(o.after_destroy, o.before);
}

TEST(FaultInjection, SuccessiveLossesAndTransientFaultsAreAllSurvived) {
  const Reference& ref = reference("gpt2-tiny", "npu:0,npu:1");
  // A timeout, then npu:0 lost, then an ECC error on the survivor (its op numbers keep
  // counting across the recoveries).
  Outcome o = run("gpt2-tiny", "npu:0,npu:1",
                  "npu:1:timeout@op=20; npu:0:lost@op=60; npu:1:ecc@op=150", true);
  ASSERT_TRUE(o.status.ok()) << o.status.to_string();
  EXPECT_EQ(o.result.tokens, ref.tokens);
  ASSERT_EQ(o.result.failovers.size(), 3u);
  EXPECT_TRUE(o.result.failovers[0].lost.empty());
  EXPECT_EQ(o.result.failovers[1].lost, std::vector<std::string>{"npu:0"});
  EXPECT_EQ(o.result.failovers[2].fault.code(), StatusCode::kDataLoss);
  EXPECT_EQ(o.result.failovers[2].devices, std::vector<std::string>{"npu:1"});
  EXPECT_EQ(o.devices_after, std::vector<std::string>{"npu:1"});
  EXPECT_EQ(o.after_destroy, o.before);
}

TEST(FaultInjection, TransientFaultsAreRetriedABoundedNumberOfTimes) {
  std::string faults;
  for (int i = 0; i <= Session::kMaxTransientRecoveries; ++i)
    faults += "npu:0:ecc@op=" + std::to_string(5 + 10 * i) + ";";
  Outcome o = run("gpt2-tiny", "npu:0,npu:1", faults, true);
  EXPECT_EQ(o.status.code(), StatusCode::kDataLoss) << o.status.to_string();
  EXPECT_THAT(o.status.message(), HasSubstr(std::to_string(Session::kMaxTransientRecoveries) +
                                            " recoveries without a device lost; giving up"));
  EXPECT_EQ(o.after_destroy, o.before);
}

TEST(FaultInjection, ALostDeviceStaysLostForLaterRuns) {
  Watchdog dog("later runs on a lost device", std::chrono::seconds(60));
  Rig rig("npu:0,npu:1", "npu:1:lost@op=10");
  SessionOptions so;
  so.devices = rig.devices;
  auto s = Session::create(model("gpt2-tiny"), so);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  GenerationOptions go;
  go.max_new_tokens = 3;
  for (int i = 0; i < 2; ++i) {
    auto r = (*s)->generate(kPrompts, go);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDeviceLost);
    EXPECT_THAT(r.status().message(), HasSubstr("npu:1: device lost"));
  }
}

TEST(FaultInjection, AFaultWhileUploadingWeightsFailsSessionCreationCleanly) {
  // Command 3 of npu:1 is one of its weight uploads (copies, counted by @cmd).
  Outcome o = run("llama-tiny", "npu:0,npu:1", "npu:1:ecc@cmd=3", false);
  EXPECT_EQ(o.status.code(), StatusCode::kDataLoss) << o.status.to_string();
  EXPECT_THAT(o.status.message(), HasSubstr("session: uploading '"));
  EXPECT_THAT(o.status.message(), HasSubstr("npu:1: uncorrectable ECC error"));
  EXPECT_EQ(o.after_destroy, o.before);
}

TEST(FaultInjection, ASlowDeviceOnlyStretchesItsOwnDurations) {
  const Reference& ref = reference("gpt2-tiny", "npu:0,npu:1");
  Outcome fast = run("gpt2-tiny", "npu:0,npu:1", "", false, true);
  Outcome slow = run("gpt2-tiny", "npu:0,npu:1", "npu:1:slow=4x", false, true);
  ASSERT_TRUE(slow.status.ok()) << slow.status.to_string();
  EXPECT_EQ(slow.result.tokens, ref.tokens);
  EXPECT_TRUE(slow.result.failovers.empty());
  ASSERT_EQ(fast.records.size(), slow.records.size());
  double fast_ns[2] = {0, 0}, slow_ns[2] = {0, 0};
  size_t ops[2] = {0, 0};
  for (size_t i = 0; i < fast.records.size(); ++i) {
    const auto& f = fast.records[i];
    const int32_t d = f.device;
    ASSERT_TRUE(d == 0 || d == 1);
    fast_ns[d] += double(f.record.end_ns - f.record.start_ns);
    ++ops[d];
  }
  for (const auto& s : slow.records)
    slow_ns[s.device] += double(s.record.end_ns - s.record.start_ns);
  EXPECT_GT(ops[1], 10u);
  EXPECT_EQ(slow_ns[0], fast_ns[0]);  // npu:0 is not slowed
  // Each of npu:1's commands took 4x its modelled time (to within ns rounding).
  EXPECT_NEAR(slow_ns[1], 4.0 * fast_ns[1], 4.0 * double(ops[1]));
}

// Printed once: the figures for the closing note.
class TallyPrinter : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& [name, t] : tallies())
      std::printf(
          "fault class %-8s injected %3d times: %3d clean failures, %3d failovers with "
          "identical tokens (%d hit the prefill, %d a decode step)\n",
          name.c_str(), t.injected, t.clean_failures, t.identical_failovers, t.in_prefill,
          t.in_decode);
  }
};
const auto* const kTallyPrinter = ::testing::AddGlobalTestEnvironment(new TallyPrinter);

}  // namespace
