// The loader and the ABI policy (hal/plugin_abi.h, hal/platform.h) against the fixture
// plugins of this directory: older and newer minors load and work (and pass the CTS),
// every broken plugin is refused with a reason that names what is wrong, and the host
// and the other plugins keep working next to them. Also the documented search order.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "hal/channel.h"
#include "hal/cts.h"
#include "hal/hal.h"

namespace hal {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  return std::string(HAL_FIXTURE_DIR) + "/libhal_plugin_" + name + ".so";
}

// Only the given plugin files: no HAL_PLUGIN_PATH, no installed plugins.
std::unique_ptr<Platform> load_only(std::vector<std::string> paths) {
  PlatformOptions options;
  options.plugin_paths = std::move(paths);
  options.use_env_plugin_path = false;
  options.use_default_plugin_dir = false;
  auto p = Platform::create(options);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(p).value() : nullptr;
}

const PluginReport* report_for(const Platform& p, const std::string& path) {
  for (const PluginReport& r : p.plugin_reports())
    if (r.path == path) return &r;
  return nullptr;
}

// A small op round trip on `device`: out = 2 * x + 1.
void expect_scale_works(Device& device) {
  auto x = device.allocate(16);
  auto y = device.allocate(16);
  ASSERT_TRUE(x.ok() && y.ok());
  auto s = device.create_stream();
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  const float in[4] = {1, 2, 3, -4};
  float out[4] = {};
  OpAttributes attrs;
  attrs.alpha = 2;
  attrs.beta = 1;
  ASSERT_TRUE(s->copy_from_host(in, *x, 0, 16).ok());
  ASSERT_TRUE(
      s->dispatch(OpDescriptor(OpKind::kScale, {TensorRef::contiguous(*x, DType::kF32, {4})},
                               TensorRef::contiguous(*y, DType::kF32, {4}), attrs))
          .ok());
  ASSERT_TRUE(s->copy_to_host(*y, 0, out, 16).ok());
  ASSERT_TRUE(s->synchronize().ok());
  EXPECT_EQ(out[0], 3.0f);
  EXPECT_EQ(out[3], -7.0f);
}

// ---- older and newer minors -------------------------------------------------------

// Runs an embedding whose ids are out of range (found only when it runs) as the command
// with tag `tag`; returns what synchronize() reports.
Status failing_gather(Device& device, uint64_t tag) {
  auto table = device.allocate(4 * 2 * 4);
  auto ids = device.allocate(8);
  auto out = device.allocate(2 * 2 * 4);
  auto s = device.create_stream();
  if (!table.ok() || !ids.ok() || !out.ok() || !s.ok()) return internal_error("setup failed");
  const int32_t bad_ids[2] = {1, 9};  // 9 is outside the table's 4 rows
  const OpDescriptor gather(OpKind::kEmbedding,
                            {TensorRef::contiguous(*table, DType::kF32, {4, 2}),
                             TensorRef::contiguous(*ids, DType::kI32, {2})},
                            TensorRef::contiguous(*out, DType::kF32, {2, 2}));
  if (Status st = s->copy_from_host(bad_ids, *ids, 0, 8); !st.ok()) return st;
  if (Status st = s->dispatch(gather, tag); !st.ok()) return st;
  return s->synchronize();
}

TEST(AbiPolicy, PluginOfThePreviousMinorLoadsWithoutTheNewerEntries) {
  auto p = load_only({fixture("fixture_old_minor")});
  ASSERT_NE(p, nullptr);
  const PluginReport* r = report_for(*p, fixture("fixture_old_minor"));
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->loaded) << r->reason;
  EXPECT_EQ(r->abi_major, 1u);
  EXPECT_EQ(r->abi_minor, 0u);
  EXPECT_NE(r->reason.find("plugin ABI 1.0, host ABI 1.2"), std::string::npos) << r->reason;
  EXPECT_NE(r->reason.find("older plugin"), std::string::npos) << r->reason;
  ASSERT_EQ(r->device_ids, std::vector<std::string>{"fx:0"});
  Device* d = *p->device("fx:0");
  // device_get_telemetry arrived in 1.1: absent from a 1.0 table, so the documented
  // default applies even though the plugin's code has it.
  auto t = d->telemetry();
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(t.status().message().find("ABI 1.0"), std::string::npos) << t.status().message();
  expect_scale_works(*d);
}

// Channels arrived in 1.2: a 1.0 plugin has none, and the host says so instead of failing
// later; a 1.2 plugin whose device has no collectives refuses the channel itself.
TEST(AbiPolicy, ChannelsOnAPluginWithoutThemAreRefusedNamingThePlugin) {
  auto p = load_only({fixture("fixture_old_minor"), fixture("fixture_good")});
  ASSERT_NE(p, nullptr);
  const PluginReport* old_report = report_for(*p, fixture("fixture_old_minor"));
  const PluginReport* good_report = report_for(*p, fixture("fixture_good"));
  ASSERT_TRUE(old_report && good_report && old_report->loaded && good_report->loaded);
  Device* old_device = *p->device(old_report->device_ids.at(0));
  EXPECT_FALSE(Channel::available(*old_device));
  auto c = Channel::create(*old_device, 0, 2);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("ABI 1.0"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("tensor and pipeline parallelism"), std::string::npos)
      << c.status().message();
  Device* good = *p->device(good_report->device_ids.at(0));
  EXPECT_TRUE(Channel::available(*good));
  auto g = Channel::create(*good, 0, 2);
  EXPECT_EQ(g.status().code(), StatusCode::kUnimplemented) << g.status().to_string();
  EXPECT_NE(g.status().message().find("no channels"), std::string::npos) << g.status().message();
}

TEST(AbiPolicy, PluginOfANewerMinorLoadsAndItsExtraEntryIsIgnored) {
  auto p = load_only({fixture("fixture_new_minor")});
  ASSERT_NE(p, nullptr);
  const PluginReport* r = report_for(*p, fixture("fixture_new_minor"));
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->loaded) << r->reason;
  EXPECT_EQ(r->abi_minor, 3u);
  EXPECT_NE(r->reason.find("plugin ABI 1.3, host ABI 1.2"), std::string::npos) << r->reason;
  EXPECT_NE(r->reason.find("newer plugin"), std::string::npos) << r->reason;
  Device* d = *p->device("fx:0");
  auto t = d->telemetry();  // a 1.1 entry: present and used
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->utilization_percent, 12.5);
  EXPECT_LT(t->power_watts, 0);  // not read by the device
  expect_scale_works(*d);
}

// ABI 1.2 added error details and extensions: a 1.2 plugin names the failed command by
// tag; a 1.1 plugin loads and works, and its errors simply carry no detail.
TEST(AbiPolicy, ErrorDetailsComeFromPluginsOf1_2AndAreAbsentBefore) {
  auto current = load_only({fixture("fixture_good")});
  ASSERT_NE(current, nullptr);
  const Status with_detail = failing_gather(**current->device("fx:0"), 27);
  EXPECT_EQ(with_detail.code(), StatusCode::kInvalidArgument) << with_detail.to_string();
  EXPECT_EQ(with_detail.detail().command_tag, std::optional<uint64_t>(27));

  auto p = load_only({fixture("fixture_minor_1_1")});
  ASSERT_NE(p, nullptr);
  const PluginReport* r = report_for(*p, fixture("fixture_minor_1_1"));
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->loaded) << r->reason;
  EXPECT_EQ(r->abi_minor, 1u);
  EXPECT_NE(r->reason.find("plugin ABI 1.1, host ABI 1.2"), std::string::npos) << r->reason;
  Device* d = *p->device("fx:0");
  EXPECT_TRUE(d->telemetry().ok());  // 1.1's entry is there
  const Status without = failing_gather(*d, 27);
  EXPECT_EQ(without.code(), StatusCode::kInvalidArgument) << without.to_string();
  EXPECT_NE(without.message().find("embedding"), std::string::npos) << without.message();
  EXPECT_FALSE(without.detail().command_tag.has_value());
  EXPECT_EQ(d->extension(1), nullptr);  // no get_extension entry before 1.2
  expect_scale_works(*d);
}

// ABI 1.2 added executables: a 1.1 plugin loads, is asked nothing it cannot answer, and
// every node of a graph is declined with the reason (so the runtime dispatches op by op);
// a 1.2 plugin made with the adapter that overrides nothing declines too, in its words.
TEST(AbiPolicy, PluginsWithoutACompilerDeclineEveryNodeWithTheReason) {
  GraphView view;
  GraphValue x;
  x.name = "x";
  x.kind = GraphValueKind::kInput;
  x.desc = TensorDesc::contiguous(DType::kF32, {4});
  view.values.push_back(x);
  GraphValue y = x;
  y.name = "y";
  y.kind = GraphValueKind::kIntermediate;
  y.is_output = true;
  view.values.push_back(y);
  OpAttributes twice;
  twice.alpha = 2;
  view.nodes.push_back({"scale", OpKind::kScale, twice, {0}, 1, -1});

  auto old = load_only({fixture("fixture_minor_1_1")});
  ASSERT_NE(old, nullptr);
  Device* d = *old->device("fx:0");
  EXPECT_FALSE(d->compiles());
  auto p = d->partition(view);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->units, 0);
  EXPECT_EQ(p->node_unit[0], -1);
  EXPECT_NE(p->reasons[0].find("(ABI 1.1) has no compiler"), std::string::npos) << p->reasons[0];
  auto c = d->compile(view);
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(d->executable_key().status().code(), StatusCode::kUnimplemented);
  expect_scale_works(*d);  // and op by op it runs

  auto current = load_only({fixture("fixture_good")});
  ASSERT_NE(current, nullptr);
  Device* g = *current->device("fx:0");
  EXPECT_TRUE(g->compiles());
  auto q = g->partition(view);
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  EXPECT_EQ(q->units, 0);
  EXPECT_EQ(q->reasons[0], "this device compiles no graphs");
  EXPECT_EQ(g->compile(view).status().code(), StatusCode::kUnimplemented);
  // A malformed view is refused before any plugin sees it.
  view.nodes[0].output = 7;
  EXPECT_EQ(g->partition(view).status().code(), StatusCode::kInvalidArgument);
}

// The old and new fixtures are complete devices: the whole conformance suite passes.
TEST(AbiPolicy, OlderAndNewerMinorPluginsPassTheConformanceSuite) {
  for (const char* name : {"fixture_old_minor", "fixture_minor_1_1", "fixture_new_minor"}) {
    auto p = load_only({fixture(name)});
    ASSERT_NE(p, nullptr);
    Device* d = *p->device("fx:0");
    const cts::Report report = cts::run(*p, *d);
    EXPECT_TRUE(report.ok()) << name << ":\n" << cts::format_text(report, false);
    EXPECT_GT(report.summary().passed, 200) << name;
  }
}

// ---- refusals ---------------------------------------------------------------------

struct Refusal {
  const char* fixture;
  std::vector<const char*> reason_contains;
};

// Names the case in test listings (and so in ctest's test names).
void PrintTo(const Refusal& r, std::ostream* os) { *os << r.fixture; }

class RefusedPlugin : public ::testing::TestWithParam<Refusal> {};

TEST_P(RefusedPlugin, IsRejectedWithAReasonAndPresentsNoDevice) {
  const Refusal& c = GetParam();
  const std::string path = fixture(c.fixture);
  auto p = load_only({path});
  ASSERT_NE(p, nullptr);
  const PluginReport* r = report_for(*p, path);
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(r->loaded);
  EXPECT_EQ(r->state, PluginState::kRefused);
  EXPECT_TRUE(r->refused());
  for (const char* needle : c.reason_contains)
    EXPECT_NE(r->reason.find(needle), std::string::npos) << "reason: " << r->reason;
  EXPECT_TRUE(r->device_ids.empty());
  EXPECT_TRUE(p->devices().empty());
  // Asking for a device then says which plugin was refused and why.
  auto d = p->device("fix:0");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_NE(d.status().message().find("was refused: " + r->reason), std::string::npos)
      << d.status().to_string();
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, RefusedPlugin,
    ::testing::Values(
        Refusal{"fixture_wrong_major",
                {"ABI mismatch", "plugin ABI 2.0, host ABI 1.2", "major versions must match"}},
        Refusal{"fixture_missing_required", {"required entries missing", "stream_fill"}},
        Refusal{"fixture_partial_channels",
                {"channel entries come as a set", "channel_create", "not stream_collective"}},
        Refusal{"fixture_short_table", {"shorter than ABI 1.0"}},
        Refusal{"fixture_no_entry_point", {"no entry point 'hal_plugin_get_api'"}},
        Refusal{"fixture_null_table", {"entry point returned no function table"}},
        Refusal{"fixture_create_fails",
                {"plugin_create failed", "unavailable", "failed to initialise"}},
        Refusal{"fixture_create_throws",
                {"plugin_create failed", "plugin threw", "exception from the factory"}},
        Refusal{"fixture_bad_prefix", {"inconsistent device report", "'Bad-Prefix'"}},
        Refusal{"fixture_bad_peer", {"inconsistent device report", "device index 3 of 1"}},
        Refusal{"fixture_nan_bandwidth",
                {"inconsistent device report", "memory bandwidth that is negative or not finite"}},
        Refusal{"fixture_count_lies",
                {"inconsistent device report", "device_get(1) returned no device"}},
        Refusal{"fixture_same_handle",
                {"inconsistent device report", "device 1 is the same handle as an earlier one"}},
        Refusal{"fixture_huge_count", {"inconsistent device report", "device_count says 5000"}},
        Refusal{"fixture_create_no_plugin", {"plugin_create succeeded but returned no plugin"}},
        Refusal{"fixture_undefined_symbol",
                {"dlopen failed", "hal_fixture_symbol_that_does_not_exist"}},
        Refusal{"fixture_garbage", {"dlopen failed"}}),
    [](const ::testing::TestParamInfo<Refusal>& info) { return std::string(info.param.fixture); });

// All fixtures at once, next to the installed plugins: the good ones load, the broken
// ones are refused, and the CPU device keeps working.
TEST(PluginLoading, BrokenPluginsDoNotDisturbTheHostOrTheOthers) {
  PlatformOptions options;
  options.plugin_paths = {HAL_FIXTURE_DIR};
  options.use_env_plugin_path = false;
  auto created = Platform::create(options);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  Platform& p = **created;
  int loaded = 0, refused = 0;
  for (const PluginReport& r : p.plugin_reports()) {
    if (r.origin != "explicit") continue;
    EXPECT_FALSE(r.reason.empty()) << r.path;
    (r.loaded ? loaded : refused)++;
  }
  EXPECT_EQ(loaded, 5);  // good, old_minor, minor_1_1, new_minor, buggy (no bug chosen)
  EXPECT_EQ(refused, 17);
  // Fixture devices are numbered in load order (directory order: sorted by file name).
  std::vector<std::string> fx;
  for (Device* d : p.devices())
    if (d->info().id_prefix == "fx") fx.push_back(d->id() + "=" + d->info().backend);
  EXPECT_EQ(fx, (std::vector<std::string>{"fx:0=fixture_buggy", "fx:1=fixture_good",
                                          "fx:2=fixture_minor_1_1", "fx:3=fixture_new_minor",
                                          "fx:4=fixture_old_minor"}));
  for (Device* d : p.devices()) expect_scale_works(*d);
  if (auto cpu = p.device("cpu:0"); cpu.ok()) {
    EXPECT_EQ((*cpu)->info().backend, "cpu");
  }
  // The installed plugins present the same devices as in a process that never saw the
  // fixtures: refusing the broken ones (some after plugin_create ran) cost them nothing.
  PlatformOptions plain_options;
  plain_options.use_env_plugin_path = false;
  auto plain = Platform::create(plain_options);
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  std::vector<std::string> others, expected;
  for (Device* d : p.devices())
    if (d->info().id_prefix != "fx") others.push_back(d->id() + "=" + d->info().backend);
  for (Device* d : (*plain)->devices()) expected.push_back(d->id() + "=" + d->info().backend);
  EXPECT_EQ(others, expected);
  EXPECT_FALSE(expected.empty()) << "no installed plugin was found to check against";
}

TEST(PluginLoading, OptionsReachThePluginAndBadOnesRejectIt) {
  PlatformOptions options;
  options.plugin_paths = {fixture("fixture_buggy")};
  options.use_env_plugin_path = false;
  options.use_default_plugin_dir = false;
  options.plugin_options["fixture_buggy"] = {{"bug", "no_such_bug"}};
  auto p = Platform::create(options);
  ASSERT_TRUE(p.ok());
  const PluginReport* r = report_for(**p, fixture("fixture_buggy"));
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(r->loaded);
  EXPECT_NE(r->reason.find("unknown bug 'no_such_bug'"), std::string::npos) << r->reason;

  options.plugin_options = {{"no_such_plugin", {{"k", "v"}}}};
  auto bad = Platform::create(options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("no_such_plugin"), std::string::npos);
}

// ---- search order -----------------------------------------------------------------

// A temporary directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/hal_plugin_test_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Sets an environment variable for the test's duration.
struct ScopedEnv {
  std::string name;
  ScopedEnv(const char* n, const std::string& value) : name(n) { ::setenv(n, value.c_str(), 1); }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

TEST(PluginSearch, ExplicitPathsComeBeforeHalPluginPathAndShadowIt) {
  TempDir dir;
  fs::copy_file(fixture("fixture_good"), dir.path / "libhal_plugin_fixture_good.so");
  fs::copy_file(fixture("fixture_old_minor"), dir.path / "libhal_plugin_fixture_old_minor.so");
  fs::create_symlink("/nonexistent", dir.path / "libhal_plugin_dangling.so");
  fs::copy_file(fixture("fixture_good"), dir.path / "not_a_plugin_name.so");  // ignored in dirs
  ScopedEnv env("HAL_PLUGIN_PATH", "/no/such/dir:" + dir.path.string());

  PlatformOptions options;
  options.plugin_paths = {fixture("fixture_good")};
  options.use_default_plugin_dir = false;
  auto created = Platform::create(options);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  const auto& reports = (*created)->plugin_reports();
  ASSERT_GE(reports.size(), 4u);
  // 1. the explicit file
  EXPECT_EQ(reports[0].origin, "explicit");
  EXPECT_EQ(reports[0].path, fixture("fixture_good"));
  EXPECT_TRUE(reports[0].loaded) << reports[0].reason;
  EXPECT_EQ(reports[0].state, PluginState::kLoaded);
  // 2. HAL_PLUGIN_PATH, in its order: a missing directory, then the temp dir's files.
  EXPECT_EQ(reports[1].origin, "HAL_PLUGIN_PATH");
  EXPECT_EQ(reports[1].path, "/no/such/dir");
  EXPECT_NE(reports[1].reason.find("no such file or directory"), std::string::npos);
  EXPECT_EQ(reports[1].state, PluginState::kRefused);
  bool saw_shadowed = false, saw_old = false, saw_dangling = false;
  for (const PluginReport& r : reports) {
    if (r.path == (dir.path / "libhal_plugin_fixture_good.so").string()) {
      saw_shadowed = true;
      EXPECT_FALSE(r.loaded);
      EXPECT_EQ(r.state, PluginState::kShadowed);
      EXPECT_FALSE(r.refused());  // not a problem worth telling a user about
      EXPECT_NE(r.reason.find("shadowed"), std::string::npos) << r.reason;
      EXPECT_NE(r.reason.find(fixture("fixture_good")), std::string::npos) << r.reason;
    }
    if (r.path == (dir.path / "libhal_plugin_fixture_old_minor.so").string()) {
      saw_old = true;
      EXPECT_TRUE(r.loaded) << r.reason;
      EXPECT_EQ(r.origin, "HAL_PLUGIN_PATH");
    }
    if (r.path == (dir.path / "libhal_plugin_dangling.so").string()) {
      saw_dangling = true;
      EXPECT_FALSE(r.loaded);
    }
    EXPECT_EQ(r.path.find("not_a_plugin_name"), std::string::npos) << "scanned a non-plugin name";
  }
  EXPECT_TRUE(saw_shadowed);
  EXPECT_TRUE(saw_old);
  EXPECT_TRUE(saw_dangling);
  EXPECT_EQ((*created)->devices().size(), 2u);
}

// A plugin left out by only_plugins is reported as not selected, by state, and an
// unknown device's error lists refused plugins only.
TEST(PluginSearch, DeselectedPluginsAreNotRefusals) {
  PlatformOptions options;
  options.plugin_paths = {fixture("fixture_good"), fixture("fixture_wrong_major")};
  options.use_env_plugin_path = false;
  options.use_default_plugin_dir = false;
  options.only_plugins = {"fixture_wrong_major"};
  auto p = Platform::create(options);
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  const PluginReport* good = report_for(**p, fixture("fixture_good"));
  ASSERT_NE(good, nullptr);
  EXPECT_EQ(good->state, PluginState::kNotSelected);
  EXPECT_EQ(plugin_state_name(good->state), "not selected");
  const PluginReport* wrong = report_for(**p, fixture("fixture_wrong_major"));
  ASSERT_NE(wrong, nullptr);
  EXPECT_EQ(wrong->state, PluginState::kRefused);
  const std::string message = (*p)->device("fx:0").status().message();
  EXPECT_NE(message.find("plugin fixture_wrong_major was refused"), std::string::npos) << message;
  EXPECT_EQ(message.find("fixture_good"), std::string::npos) << message;
}

TEST(PluginSearch, TheDefaultDirectoryIsNextToLibhal) {
  const std::string dir = Platform::default_plugin_dir();
  EXPECT_NE(dir.find("/hal/plugins"), std::string::npos) << dir;
  PlatformOptions options;
  options.use_env_plugin_path = false;
  auto p = Platform::create(options);
  ASSERT_TRUE(p.ok());
  for (const PluginReport& r : (*p)->plugin_reports()) {
    EXPECT_EQ(r.origin, "default");
    EXPECT_EQ(r.path.rfind(dir, 0), 0u) << r.path;
  }
}

// A plugin's copy of the HAL core must stay its own: if it exported those symbols they
// would bind to the host's libhal.so, and a plugin built against another hal version
// would run the host's code on its own struct layouts.
TEST(PluginIsolation, PluginsExportTheirEntryPointButNotTheCore) {
  std::vector<std::string> plugins = {fixture("fixture_good")};
  const std::string cpu = Platform::default_plugin_dir() + "/libhal_plugin_cpu.so";
  if (fs::exists(cpu)) plugins.push_back(cpu);
  for (const std::string& path : plugins) {
    void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(h, nullptr) << ::dlerror();
    EXPECT_NE(::dlsym(h, "hal_plugin_get_api"), nullptr) << path;
    // hal::validate_op(hal::OpSpec const&) and hal::Status::to_string() const
    EXPECT_EQ(::dlsym(h, "_ZN3hal11validate_opERKNS_6OpSpecE"), nullptr) << path;
    EXPECT_EQ(::dlsym(h, "_ZNK3hal6Status9to_stringB5cxx11Ev"), nullptr) << path;
  }
}

}  // namespace
}  // namespace hal
