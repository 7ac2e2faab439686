// halctl as a user runs it: the built binary (HALCTL_PATH), its JSON output and its exit
// codes (0 ok, 1 the work failed, 2 bad usage or input).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "hal/dtype.h"
#include "halctl_invocation.h"

namespace {

using nlohmann::json;

using halctl_test::halctl;
using halctl_test::Invocation;

#ifdef HAL_FIXTURE_DIR
std::string fixture(const std::string& name) {
  return std::string(HAL_FIXTURE_DIR) + "/libhal_plugin_" + name + ".so";
}
#endif

const json* find_by(const json& array, const std::string& key, const std::string& value) {
  for (const json& e : array)
    if (e.contains(key) && e[key] == value) return &e;
  return nullptr;
}

TEST(HalctlList, JsonListsEveryDeviceWithTheDocumentedKeys) {
  const Invocation r = halctl({"list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json devices = r.parsed();
  ASSERT_TRUE(devices.is_array());
  ASSERT_NE(find_by(devices, "id", "cpu:0"), nullptr) << r.out;
  for (const json& d : devices) {
    for (const char* key : {"id", "backend", "name", "kind"}) {
      ASSERT_TRUE(d.contains(key) && d[key].is_string()) << key << " in " << d;
      EXPECT_FALSE(d[key].get<std::string>().empty()) << key;
    }
    ASSERT_TRUE(d["memory_bytes"].is_number_unsigned()) << d;
    ASSERT_TRUE(d["memory_bandwidth_bytes_per_s"].is_number()) << d;
    ASSERT_TRUE(d["peak_flops"].is_object()) << d;
    for (const auto& [dtype, flops] : d["peak_flops"].items()) {
      // Keys are dtype names halctl and the presets parse back (plain and quantized).
      EXPECT_TRUE(hal::parse_dtype(dtype).has_value()) << dtype;
      EXPECT_TRUE(flops.is_number() && flops.get<double>() > 0) << dtype;
    }
  }
  const json& cpu = *find_by(devices, "id", "cpu:0");
  EXPECT_EQ(cpu["backend"], "cpu");
  EXPECT_EQ(cpu["kind"], "cpu");
  EXPECT_GT(cpu["memory_bytes"].get<uint64_t>(), 0u);
}

TEST(HalctlList, TextNamesTheDevices) {
  const Invocation r = halctl({"list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("cpu:0"), std::string::npos) << r.out;
}

TEST(HalctlList, IdsPrintsExactlyTheIdsOfTheJsonList) {
  const Invocation ids = halctl({"list", "--ids"});
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  std::string expected;
  for (const json& d : halctl({"list", "--json"}).parsed())
    expected += d["id"].get<std::string>() + "\n";
  EXPECT_EQ(ids.out, expected);
  EXPECT_EQ(halctl({"list", "--ids", "--json"}).exit_code, 2);
}

TEST(HalctlInfo, JsonOfCpuHasFiguresSourcesLinksStatsAndOps) {
  const Invocation r = halctl({"info", "cpu:0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json info = r.parsed();
  EXPECT_EQ(info["id"], "cpu:0");
  EXPECT_EQ(info["id_prefix"], "cpu");
  ASSERT_TRUE(info["sources"].is_object());
  for (const char* field : {"memory_bytes", "memory_bandwidth_bytes_per_s", "compute_units"})
    EXPECT_TRUE(info["sources"][field].is_string()) << field;
  // The CPU plugin states where its memory size comes from.
  EXPECT_NE(info["sources"]["memory_bytes"], "unstated");
  ASSERT_TRUE(info["sources"]["peak_flops"].is_object());
  EXPECT_EQ(info["sources"]["peak_flops"].size(), info["peak_flops"].size());
  ASSERT_TRUE(info["links"].is_array());
  ASSERT_FALSE(info["links"].empty());
  EXPECT_EQ(info["links"][0]["peer"], "host");
  ASSERT_TRUE(info["memory_stats"].is_object());
  EXPECT_EQ(info["memory_stats"]["bytes_in_use"], 0);
  EXPECT_EQ(info["memory_stats"]["allocation_count"], 0);
  EXPECT_GT(info["memory_stats"]["capacity_bytes"].get<uint64_t>(), 0u);
  // Telemetry: readings, or null with the reason.
  EXPECT_TRUE(info["telemetry"].is_object() ||
              (info["telemetry"].is_null() && info["telemetry_unavailable"].is_string()))
      << info["telemetry"];
  ASSERT_TRUE(info["properties"].is_object());
  const json& ops = info["supported_ops"];
  ASSERT_TRUE(ops.is_object());
  EXPECT_EQ(ops.size(), 15u);  // every op kind, supported or not
  EXPECT_NE(std::find(ops["matmul"].begin(), ops["matmul"].end(), "f32"), ops["matmul"].end());
}

TEST(HalctlInfo, TextShowsFiguresWithTheirSources) {
  const Invocation r = halctl({"info", "cpu:0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("memory bandwidth"), std::string::npos);
  EXPECT_NE(r.out.find("["), std::string::npos) << "no source labels:\n" << r.out;
}

TEST(HalctlErrors, UnknownDeviceIsExit2NamingTheKnownDevices) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"info", "nope:7"},
        std::vector<std::string>{"info", "nope:7", "--json"},
        std::vector<std::string>{"bench", "nope:7"},
        std::vector<std::string>{"cts", "--device", "nope:7"}}) {
    const Invocation r = halctl(args);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_NE(r.err.find("unknown device 'nope:7'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("cpu:0"), std::string::npos)
        << "the message should list the known devices: " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(HalctlErrors, BadUsageIsExit2) {
  EXPECT_EQ(halctl({}).exit_code, 2);
  EXPECT_EQ(halctl({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(halctl({"info"}).exit_code, 2);
  EXPECT_EQ(halctl({"list", "--no-such-option"}).exit_code, 2);
  EXPECT_EQ(halctl({"cts"}).exit_code, 2);  // neither --device nor --plugin
  const Invocation bad_option = halctl({"list", "--plugin-option", "npu_sim-devices"});
  EXPECT_EQ(bad_option.exit_code, 2);
  EXPECT_NE(bad_option.err.find("PLUGIN.KEY=VALUE"), std::string::npos) << bad_option.err;
  const Invocation unknown_plugin = halctl({"list", "--plugin-option", "no_such_plugin.k=v"});
  EXPECT_EQ(unknown_plugin.exit_code, 2);
  EXPECT_NE(unknown_plugin.err.find("no_such_plugin"), std::string::npos) << unknown_plugin.err;
  const Invocation bad_dtype = halctl({"bench", "cpu:0", "--dtypes", "f33"});
  EXPECT_EQ(bad_dtype.exit_code, 2);
  EXPECT_NE(bad_dtype.err.find("f33"), std::string::npos) << bad_dtype.err;
  EXPECT_EQ(halctl({"bench", "cpu:0", "--sizes", "64..8"}).exit_code, 2);
  EXPECT_EQ(halctl({"--help"}).exit_code, 0);
  EXPECT_EQ(halctl({"list", "--help"}).exit_code, 0);
}

TEST(HalctlTopo, JsonHasEveryPairWithKindBandwidthAndLatency) {
  std::vector<std::string> args = {"topo", "--json"};
#ifdef HAL_TEMPLATE_PLUGIN
  args.push_back("--plugin-path");
  args.push_back(HAL_TEMPLATE_PLUGIN);
#endif
  const Invocation r = halctl(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json topo = r.parsed();
  const json& nodes = topo["nodes"];
  ASSERT_TRUE(nodes.is_array());
  ASSERT_GE(nodes.size(), 2u);
  EXPECT_EQ(nodes[0], "host");
  const size_t n = nodes.size();
  ASSERT_EQ(topo["links"].size(), n * n - 1) << "every ordered pair but host->host";
  for (const json& l : topo["links"]) {
    EXPECT_TRUE(l["kind"].is_string() && !l["kind"].get<std::string>().empty()) << l;
    EXPECT_GE(l["bandwidth_bytes_per_s"].get<double>(), 0) << l;
    EXPECT_GE(l["latency_s"].get<double>(), 0) << l;
  }
  bool host_to_cpu = false;
  for (const json& l : topo["links"])
    if (l["from"] == "host" && l["to"] == "cpu:0") {
      host_to_cpu = true;
      EXPECT_GT(l["bandwidth_bytes_per_s"].get<double>(), 0);
    }
  EXPECT_TRUE(host_to_cpu);
#ifdef HAL_TEMPLATE_PLUGIN
  // Two plugins: their devices reach each other through the host.
  bool staged = false;
  for (const json& l : topo["links"])
    if (l["from"] == "cpu:0" && l["to"] == "tmpl:0") staged = l["kind"] == "host-staged";
  EXPECT_TRUE(staged) << r.out;
#endif
}

#ifdef HAL_FIXTURE_DIR
TEST(HalctlPlugins, ShowsAWrongAbiPluginRejectedWithItsReasonNextToTheLoadedOnes) {
  const Invocation r = halctl({"plugins", "--json", "--plugin-path", fixture("fixture_wrong_major"),
                               "--plugin-path", fixture("fixture_old_minor")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = r.parsed();
  EXPECT_EQ(out["host_abi"], "1.2");
  ASSERT_TRUE(out["search_order"].is_array());
  EXPECT_EQ(out["search_order"][0]["origin"], "explicit");
  const json& plugins = out["plugins"];
  const json* wrong = find_by(plugins, "path", fixture("fixture_wrong_major"));
  ASSERT_NE(wrong, nullptr) << r.out;
  EXPECT_EQ((*wrong)["loaded"], false);
  EXPECT_EQ((*wrong)["state"], "refused");
  EXPECT_EQ((*wrong)["abi_version"], "2.0");
  EXPECT_EQ((*wrong)["origin"], "explicit");
  const std::string reason = (*wrong)["reason"];
  EXPECT_NE(reason.find("ABI mismatch"), std::string::npos) << reason;
  EXPECT_NE(reason.find("plugin ABI 2.0, host ABI 1.2"), std::string::npos) << reason;
  EXPECT_TRUE((*wrong)["devices"].empty());
  const json* old = find_by(plugins, "path", fixture("fixture_old_minor"));
  ASSERT_NE(old, nullptr);
  EXPECT_EQ((*old)["loaded"], true);
  EXPECT_EQ((*old)["state"], "loaded");
  EXPECT_EQ((*old)["abi_version"], "1.0");
  EXPECT_EQ((*old)["devices"], json::array({"fx:0"}));
  const json* cpu = find_by(plugins, "name", "cpu");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ((*cpu)["loaded"], true);
  EXPECT_EQ((*cpu)["origin"], "default");
}

TEST(HalctlPlugins, TextSaysWhyAPluginWasRejected) {
  const Invocation r = halctl(
      {"plugins", "--no-default-plugins", "--plugin-path", fixture("fixture_no_entry_point")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("REJECTED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no entry point"), std::string::npos) << r.out;
}

TEST(HalctlCts, ARefusedPluginIsExit2WithTheReason) {
  const Invocation r = halctl({"cts", "--plugin", fixture("fixture_wrong_major")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("ABI mismatch"), std::string::npos) << r.err;
}

TEST(HalctlCts, FailuresAreExit1AndListedInJson) {
  const Invocation r =
      halctl({"cts", "--plugin", fixture("fixture_buggy"), "--plugin-option",
              "fixture_buggy.bug=wrong_add", "--filter", "op.add.f32.*", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const json out = r.parsed();
  EXPECT_GT(out["summary"]["failed"].get<int>(), 0);
  EXPECT_EQ(out["plugin"]["name"], "fixture_buggy");
  const json& cases = out["devices"][0]["cases"];
  ASSERT_FALSE(cases.empty());
  bool failure_with_reason = false;
  for (const json& c : cases)
    if (c["outcome"] == "fail") failure_with_reason |= !c["reason"].get<std::string>().empty();
  EXPECT_TRUE(failure_with_reason);
}
#endif

#ifdef HAL_TEMPLATE_PLUGIN
TEST(HalctlCts, TheTemplatePluginPassesWhatItDeclares) {
  const Invocation r = halctl({"cts", "--plugin", HAL_TEMPLATE_PLUGIN, "--json", "--filter",
                               "op.matmul.*,op.gelu.*,copy.h2d_d2h.*,buffer.*"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json out = r.parsed();
  EXPECT_EQ(out["summary"]["failed"], 0);
  EXPECT_GT(out["summary"]["passed"].get<int>(), 10);
  // matmul f32 is declared and runs; gelu and bf16 matmul are not and are skipped.
  for (const json& c : out["devices"][0]["cases"]) {
    const std::string name = c["name"];
    std::string want;
    if (name.rfind("op.matmul.f32.", 0) == 0) want = "pass";
    if (name.rfind("op.gelu.", 0) == 0 || name.rfind("op.matmul.bf16.", 0) == 0) want = "skip";
    if (name == "buffer.allocate.virtual") want = "skip";
    if (!want.empty()) {
      EXPECT_EQ(c["outcome"], want) << name;
    }
  }
}
#endif

TEST(HalctlCts, ListNamesCasesWithoutRunningThem) {
  const Invocation r = halctl({"cts", "--device", "cpu:0", "--list", "--filter", "op.softmax.*"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("op.softmax.f32.3x17"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("op.matmul"), std::string::npos);
}

TEST(HalctlBench, JsonReportsCopiesAndMatmulAgainstPeak) {
  const Invocation r =
      halctl({"bench", "cpu:0", "--json", "--sizes", "32,64", "--dtypes", "f32", "--copy-sizes",
              "64K", "--min-time", "0", "--min-reps", "1", "--peers", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = r.parsed();
  EXPECT_EQ(out["device"], "cpu:0");
  std::vector<std::string> kinds;
  for (const json& c : out["copies"]) {
    kinds.push_back(c["kind"]);
    EXPECT_EQ(c["bytes"], 65536);
    EXPECT_EQ(c["clock"], "device");
    EXPECT_GT(c["seconds"].get<double>(), 0);
    const double expect_ratio =
        c["bytes_per_s"].get<double>() / c["peak_bytes_per_s"].get<double>();
    EXPECT_NEAR(c["ratio"].get<double>(), expect_ratio, 1e-9 * expect_ratio);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"h2d", "d2h", "d2d"}));
  ASSERT_EQ(out["matmul"].size(), 2u);
  for (const json& m : out["matmul"]) {
    const double n = m["n"].get<double>();
    EXPECT_EQ(m["flops"].get<double>(), 2 * n * n * n);
    EXPECT_EQ(m["dtype"], "f32");
    EXPECT_GT(m["seconds"].get<double>(), 0);
    EXPECT_NEAR(m["flops_per_s"].get<double>(),
                m["flops"].get<double>() / m["seconds"].get<double>(),
                1e-6 * m["flops_per_s"].get<double>());
    EXPECT_NEAR(m["ratio"].get<double>(),
                m["flops_per_s"].get<double>() / m["peak_flops_per_s"].get<double>(), 1e-9);
  }
}

}  // namespace
