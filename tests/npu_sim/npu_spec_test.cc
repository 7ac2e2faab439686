// Presets, spec files, device selection and fp8 conversions of the NPU simulator.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "npu_config.h"
#include "npu_numerics.h"
#include "npu_spec.h"

namespace hal::npu_sim {
namespace {

constexpr uint64_t kGiB = uint64_t(1) << 30;
constexpr uint64_t kMiB = uint64_t(1) << 20;

// A directory of its own per test process, removed files and all at exit.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/npu_sim_test_XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    for (const std::string& f : files_) std::remove(f.c_str());
    ::rmdir(path_.c_str());
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    files_.push_back(p);
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

TEST(NpuPresets, AtomMatchesThePublishedFigures) {
  auto atom = preset("atom");
  ASSERT_TRUE(atom.ok()) << atom.status().to_string();
  EXPECT_EQ(atom->neural_engines, 8);
  EXPECT_EQ(atom->clock_hz, 1.5e9);
  EXPECT_EQ(atom->matrix_peak(DType::kF16), 32e12);
  EXPECT_EQ(atom->matrix_peak(DType::kBF16), 32e12);
  EXPECT_EQ(atom->matrix_peak(DType::kI8), 128e12);
  EXPECT_EQ(atom->matrix_peak(DType::kFP8E4M3), 0.0);  // not published for ATOM
  EXPECT_EQ(atom->sram_bytes(), 64 * kMiB);            // 8 x 4 MB local + 32 MB shared
  EXPECT_EQ(atom->usable_memory_bytes(), 16 * kGiB - 288 * kMiB);
  EXPECT_EQ(atom->memory_bandwidth_bytes_per_s, 256e9);
  EXPECT_EQ(atom->memory_kind, "GDDR6");
  EXPECT_EQ(atom->host_link.bandwidth_bytes_per_s, 50e9);
  EXPECT_FALSE(atom->peer_link.present);
  EXPECT_EQ(atom->dies_per_card, 1);
}

TEST(NpuPresets, AtomMaxIsFourAtomDiesWithPeerLinks) {
  auto max = preset("atom-max");
  auto atom = preset("atom");
  ASSERT_TRUE(max.ok() && atom.ok()) << max.status().to_string();
  EXPECT_EQ(max->dies_per_card, 4);
  EXPECT_TRUE(max->peer_link.present);
  EXPECT_GT(max->peer_link.bandwidth_bytes_per_s, 0);
  EXPECT_EQ(max->sku, "RBLN-CA25");
  // Each die is an ATOM: figures inherited with their sources.
  EXPECT_EQ(max->matrix_peak(DType::kF16), atom->matrix_peak(DType::kF16));
  EXPECT_EQ(max->usable_memory_bytes(), atom->usable_memory_bytes());
  EXPECT_EQ(max->source("peak_flops.f16"), atom->source("peak_flops.f16"));
  EXPECT_DOUBLE_EQ(max->tdp_watts * 4, 350.0);  // 350 W per card [R13]
}

TEST(NpuPresets, RebelQuadMatchesThePublishedFigures) {
  auto r = preset("rebel-quad");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->chiplets, 4);
  EXPECT_EQ(r->matrix_peak(DType::kF16), 1e15);
  EXPECT_EQ(r->matrix_peak(DType::kFP8E4M3), 2e15);
  EXPECT_EQ(r->memory_bytes, 144 * kGiB);
  EXPECT_EQ(r->usable_memory_bytes(), 140 * kGiB);
  EXPECT_EQ(r->memory_bandwidth_bytes_per_s, 4.8e12);
  EXPECT_EQ(r->memory_kind, "HBM3E");
  EXPECT_TRUE(r->die_to_die_link.present);
  EXPECT_EQ(r->die_to_die_link.bandwidth_bytes_per_s, 1e12);
  EXPECT_EQ(r->die_to_die_link.latency_s, 11e-9);
  EXPECT_NEAR(r->sustained_memory_bandwidth(), 2.7e12, 1e6);  // vendor's "effective" [R20]
}

// Every figure a preset file sets cites hw_facts.md: a tag [Rn P|S], [D] or [U].
TEST(NpuPresets, EveryFigureCitesItsSource) {
  const std::vector<std::string> figures = spec_keys();
  for (const std::string& name : preset_names()) {
    SCOPED_TRACE(name);
    auto spec = preset(name);
    ASSERT_TRUE(spec.ok()) << spec.status().to_string();
    const nlohmann::json doc = nlohmann::json::parse(preset_json(name));
    std::vector<std::string> set;
    for (const auto& [k, v] : doc.items()) {
      if (k == "sources" || k == "extends") continue;
      if (v.is_object()) {
        for (const auto& [sub, x] : v.items()) set.push_back(k + "." + sub);
      } else {
        set.push_back(k);
      }
    }
    ASSERT_FALSE(set.empty());
    for (const std::string& key : set) {
      if (std::find(figures.begin(), figures.end(), key) == figures.end()) continue;
      if (key == "display_name" || key == "description") continue;  // prose, not figures
      const std::string src = spec->source(key);
      EXPECT_FALSE(src.empty()) << key << " has no source";
      EXPECT_EQ(src.rfind('[', 0), 0u) << key << " cites no tag: " << src;
      const bool tagged = src.find("[R") != std::string::npos || src.rfind("[D]", 0) == 0 ||
                          src.rfind("[U]", 0) == 0;
      EXPECT_TRUE(tagged) << key << ": " << src;
    }
  }
}

TEST(NpuPresets, UnverifiedFiguresAreListedAsTunables) {
  auto atom = preset("atom");
  ASSERT_TRUE(atom.ok());
  const std::vector<std::string> t = atom->tunable_keys();
  auto has = [&](const std::string& k) { return std::find(t.begin(), t.end(), k) != t.end(); };
  EXPECT_TRUE(has("memory_efficiency"));
  EXPECT_TRUE(has("vector_flops"));
  EXPECT_TRUE(has("mac_array_rows"));
  EXPECT_TRUE(has("peak_flops.bf16"));  // assumed equal to FP16
  EXPECT_FALSE(has("memory_bandwidth_bytes_per_s"));
  EXPECT_FALSE(has("peak_flops.f16"));
}

TEST(NpuPresets, UnknownPresetNamesTheKnownOnes) {
  auto p = preset("atomm");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kNotFound);
  EXPECT_NE(p.status().message().find("atom, atom-max, rebel-chiplets, rebel-quad"),
            std::string::npos)
      << p.status().message();
}

TEST(NpuSpecFile, ExtendsAPresetAndCitesTheFileForOverrides) {
  TempDir dir;
  const std::string path = dir.write("fast.json", R"({
    "extends": "atom", "name": "fast-atom",
    "memory_bandwidth_bytes_per_s": 512e9,
    "sources": {"memory_bandwidth_bytes_per_s": "my lab measurement"}
  })");
  auto s = load_spec_file(path);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->name, "fast-atom");
  EXPECT_EQ(s->memory_bandwidth_bytes_per_s, 512e9);
  EXPECT_EQ(s->source("memory_bandwidth_bytes_per_s"), "my lab measurement");
  EXPECT_EQ(s->neural_engines, 8);
  EXPECT_EQ(s->source("neural_engines"), preset("atom")->source("neural_engines"));
  EXPECT_EQ(s->origin, "spec file " + path);
}

TEST(NpuSpecFile, MinimalSpecGetsDocumentedDefaults) {
  TempDir dir;
  const std::string path = dir.write("min.json", R"({
    "name": "mini", "neural_engines": 4, "clock_hz": 1e9,
    "peak_flops": {"f16": 8e12},
    "memory_kind": "LPDDR5", "memory_bytes": 8589934592,
    "memory_bandwidth_bytes_per_s": 100e9,
    "sram_shared_bytes": 8388608,
    "host_link": {"kind": "pcie-gen4-x8", "bandwidth_bytes_per_s": 12e9, "latency_s": 3e-6}
  })");
  auto s = load_spec_file(path);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->matrix_peak(DType::kBF16), 8e12);  // the 16-bit rates stand in for each other
  EXPECT_EQ(s->matrix_peak(DType::kF32), 8e12);   // f32 downcast to bf16
  EXPECT_EQ(s->vector_flops, 8e12 / 16);
  EXPECT_EQ(s->memory_efficiency, 0.8);
  EXPECT_EQ(s->sram_bandwidth_bytes_per_s, 16 * 100e9);
  EXPECT_EQ(s->source("memory_efficiency").rfind("default:", 0), 0u);
  EXPECT_EQ(s->source("neural_engines"), "spec file " + path);
  EXPECT_EQ(s->compute_precision, ComputePrecision::kBf16);
}

struct BadSpec {
  const char* what;
  const char* json;
  std::vector<const char*> message_has;
};

class NpuBadSpec : public ::testing::TestWithParam<BadSpec> {};

TEST_P(NpuBadSpec, IsAClearErrorNamingFileAndKey) {
  TempDir dir;
  const std::string path = dir.write("bad.json", GetParam().json);
  auto s = load_spec_file(path);
  ASSERT_FALSE(s.ok()) << GetParam().what << " was accepted";
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  const std::string m = s.status().message();
  EXPECT_NE(m.find(path), std::string::npos) << m;
  for (const char* part : GetParam().message_has) EXPECT_NE(m.find(part), std::string::npos) << m;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, NpuBadSpec,
    ::testing::Values(
        BadSpec{"unknown key",
                R"({"extends": "atom", "name": "x", "memory_bandwith_bytes_per_s": 1e9})",
                {"key 'memory_bandwith_bytes_per_s' is unknown",
                 "did you mean 'memory_bandwidth_bytes_per_s'"}},
        BadSpec{"negative bandwidth",
                R"({"extends": "atom", "name": "x", "memory_bandwidth_bytes_per_s": -5})",
                {"memory_bandwidth_bytes_per_s", "outside"}},
        BadSpec{"zero link bandwidth",
                R"({"extends": "atom", "name": "x", "host_link": {"bandwidth_bytes_per_s": 0}})",
                {"host_link.bandwidth_bytes_per_s", "outside"}},
        BadSpec{
            "sram above memory",
            R"({"extends": "atom", "name": "x", "memory_bytes": 1073741824, "memory_reserved_bytes": 0,
                    "sram_shared_bytes": 2147483648})",
            {"sram", "not less than the device memory"}},
        BadSpec{"sram beyond sensible",
                R"({"extends": "rebel-quad", "name": "x", "sram_shared_bytes": 137438953472})",
                {"sram_shared_bytes", "outside"}},
        BadSpec{
            "too little sram",
            R"({"extends": "atom", "name": "x", "sram_local_bytes_per_engine": 0, "sram_shared_bytes": 1024})",
            {"at least 64 KiB"}},
        BadSpec{"reservation above capacity",
                R"({"extends": "atom", "name": "x", "memory_reserved_bytes": 17179869184})",
                {"memory_reserved_bytes", "leaves nothing"}},
        BadSpec{"malformed JSON",
                "{\n  \"name\": \"x\",\n  \"clock_hz\": ,\n}",
                {"not valid JSON at line 3"}},
        BadSpec{"wrong type",
                R"({"extends": "atom", "name": "x", "neural_engines": "eight"})",
                {"neural_engines", "expected an integer"}},
        BadSpec{"missing required",
                R"({"name": "x", "neural_engines": 2, "clock_hz": 1e9,
                    "peak_flops": {"f16": 1e12}, "memory_kind": "DDR5",
                    "memory_bandwidth_bytes_per_s": 1e11})",
                {"'memory_bytes' is required"}},
        BadSpec{
            "unknown base", R"({"extends": "atomz", "name": "x"})", {"'atomz' is not a preset"}},
        BadSpec{"chiplets without link",
                R"({"extends": "atom", "name": "x", "chiplets": 4})",
                {"die_to_die_link"}},
        BadSpec{"peer link on a single die",
                R"({"extends": "atom", "name": "x",
                    "peer_link": {"kind": "pcie", "bandwidth_bytes_per_s": 1e9, "latency_s": 1e-6}})",
                {"peer_link", "dies_per_card is 1"}},
        BadSpec{"incomplete new link",
                R"({"extends": "atom", "name": "x", "dies_per_card": 2,
                    "peer_link": {"kind": "pcie"}})",
                {"peer_link", "missing 'bandwidth_bytes_per_s'"}},
        BadSpec{"unknown link field",
                R"({"extends": "atom", "name": "x", "host_link": {"bandwidth": 1e9}})",
                {"host_link.bandwidth", "is unknown", "did you mean 'bandwidth_bytes_per_s'"}},
        BadSpec{"efficiency above one",
                R"({"extends": "atom", "name": "x", "memory_efficiency": 1.5})",
                {"memory_efficiency", "outside (0, 1]"}},
        BadSpec{"unknown dtype",
                R"({"extends": "atom", "name": "x", "peak_flops": {"int3": 1e12}})",
                {"peak_flops.int3", "not a matrix-engine dtype"}},
        BadSpec{"source for no figure",
                R"({"extends": "atom", "name": "x", "sources": {"memory_bandwith": "x"}})",
                {"sources.memory_bandwith", "names no figure"}},
        BadSpec{"not an object", "[1, 2]", {"must be a JSON object"}},
        BadSpec{
            "bad name", R"({"extends": "atom", "name": "my npu!"})", {"name", "may only contain"}},
        BadSpec{"idle above tdp",
                R"({"extends": "atom", "name": "x", "idle_watts": 80})",
                {"idle_watts", "not below tdp_watts"}}),
    [](const ::testing::TestParamInfo<BadSpec>& info) {
      std::string n = info.param.what;
      for (char& c : n)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return n;
    });

TEST(NpuSpecFile, UnreadableFileIsNotFound) {
  auto s = load_spec_file("/nonexistent/dir/spec.json");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_NE(s.status().message().find("/nonexistent/dir/spec.json"), std::string::npos);
}

// ---- device selection ------------------------------------------------------------------

TEST(NpuConfig, DefaultIsOneAtom) {
  auto c = resolve_config(ConfigInputs{});
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  ASSERT_EQ(c->cards.size(), 1u);
  EXPECT_EQ(c->cards[0].name, "atom");
  EXPECT_EQ(c->devices_from, "default");
  EXPECT_FALSE(c->timing_only);
}

TEST(NpuConfig, PluginOptionBeatsEnvironmentBeatsConfigFile) {
  TempDir dir;
  const std::string cfg =
      dir.write("cfg.json", R"({"devices": ["rebel-quad"], "timing_only": true})");
  ConfigInputs in;
  in.env_config = cfg;
  auto from_file = resolve_config(in);
  ASSERT_TRUE(from_file.ok()) << from_file.status().to_string();
  EXPECT_EQ(from_file->cards[0].name, "rebel-quad");
  EXPECT_TRUE(from_file->timing_only);

  in.env_devices = "atom,atom";
  in.env_timing_only = "0";
  auto from_env = resolve_config(in);
  ASSERT_TRUE(from_env.ok());
  ASSERT_EQ(from_env->cards.size(), 2u);
  EXPECT_EQ(from_env->devices_from, "HAL_NPU_SIM");
  EXPECT_FALSE(from_env->timing_only);

  in.plugin_options["devices"] = "atom-max";
  in.plugin_options["compute_precision"] = "fp32";
  auto from_option = resolve_config(in);
  ASSERT_TRUE(from_option.ok());
  ASSERT_EQ(from_option->cards.size(), 1u);
  EXPECT_EQ(from_option->cards[0].dies_per_card, 4);
  EXPECT_EQ(from_option->cards[0].compute_precision, ComputePrecision::kFp32);
}

TEST(NpuConfig, ConfigFileTakesPresetsPathsAndInlineSpecs) {
  TempDir dir;
  dir.write("mine.json", R"({"extends": "atom", "name": "mine", "clock_hz": 2e9})");
  const std::string cfg = dir.write("cfg.json", R"({
    "devices": ["atom", "mine.json", {"extends": "rebel-quad", "name": "inline-quad", "memory_efficiency": 0.9}],
    "compute_precision": "fp32"
  })");
  ConfigInputs in;
  in.plugin_options["config"] = cfg;
  auto c = resolve_config(in);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  ASSERT_EQ(c->cards.size(), 3u);
  EXPECT_EQ(c->cards[1].name, "mine");  // relative to the config file
  EXPECT_EQ(c->cards[1].clock_hz, 2e9);
  EXPECT_EQ(c->cards[2].name, "inline-quad");
  EXPECT_EQ(c->cards[2].memory_efficiency, 0.9);
  for (const DeviceSpec& s : c->cards) EXPECT_EQ(s.compute_precision, ComputePrecision::kFp32);
}

TEST(NpuConfig, BadInputsNameTheirOrigin) {
  TempDir dir;
  struct Case {
    ConfigInputs in;
    std::string has;
  };
  std::vector<Case> cases;
  {
    ConfigInputs in;
    in.plugin_options["device"] = "atom";
    cases.push_back({in, "plugin option 'device' is unknown"});
  }
  {
    ConfigInputs in;
    in.env_devices = "atom,quad";
    cases.push_back({in, "HAL_NPU_SIM: 'quad' is not an NPU preset"});
  }
  {
    ConfigInputs in;
    in.plugin_options["timing_only"] = "maybe";
    cases.push_back({in, "'maybe' is not a boolean"});
  }
  {
    ConfigInputs in;
    in.env_precision = "fp8";
    cases.push_back({in, "HAL_NPU_SIM_PRECISION: 'fp8'"});
  }
  {
    ConfigInputs in;
    in.env_config = dir.write("c.json", R"({"devices": ["atom"], "timeing_only": true})");
    cases.push_back({in, "key 'timeing_only' is unknown"});
  }
  {
    ConfigInputs in;
    in.plugin_options["devices"] = dir.path() + "/missing.json";
    cases.push_back({in, "missing.json: no such file"});
  }
  {
    ConfigInputs in;
    in.plugin_options["devices"] = " , ";
    cases.push_back({in, "names no device"});
  }
  for (const Case& c : cases) {
    auto r = resolve_config(c.in);
    ASSERT_FALSE(r.ok()) << c.has;
    EXPECT_NE(r.status().message().find(c.has), std::string::npos) << r.status().message();
  }
}

// ---- fp8 ----------------------------------------------------------------------------------

TEST(NpuFp8, E4m3KnownValues) {
  EXPECT_EQ(float_to_fp8e4m3(1.0f), 0x38);
  EXPECT_EQ(float_to_fp8e4m3(-2.0f), 0xc0);
  EXPECT_EQ(float_to_fp8e4m3(448.0f), 0x7e);
  EXPECT_EQ(float_to_fp8e4m3(1000.0f), 0x7e);  // satfinite
  EXPECT_EQ(float_to_fp8e4m3(INFINITY), 0x7e);
  EXPECT_EQ(float_to_fp8e4m3(std::ldexp(1.0f, -9)), 0x01);   // smallest subnormal
  EXPECT_EQ(float_to_fp8e4m3(std::ldexp(1.0f, -11)), 0x00);  // below half of it
  EXPECT_EQ(float_to_fp8e4m3(1.0625f), 0x38);                // tie -> even mantissa (1.0)
  EXPECT_EQ(float_to_fp8e4m3(1.1875f), 0x3a);                // tie -> even mantissa (1.25)
  EXPECT_EQ(float_to_fp8e4m3(-0.0f), 0x80);
  EXPECT_TRUE(std::isnan(fp8e4m3_to_float(float_to_fp8e4m3(NAN))));
  EXPECT_EQ(fp8e4m3_to_float(0x7e), 448.0f);
  EXPECT_EQ(fp8e4m3_to_float(0x01), std::ldexp(1.0f, -9));
}

TEST(NpuFp8, E5m2KnownValues) {
  EXPECT_EQ(float_to_fp8e5m2(1.0f), 0x3c);
  EXPECT_EQ(float_to_fp8e5m2(57344.0f), 0x7b);
  EXPECT_EQ(float_to_fp8e5m2(1e6f), 0x7b);  // satfinite
  EXPECT_EQ(float_to_fp8e5m2(-INFINITY), 0xfc);
  EXPECT_EQ(fp8e5m2_to_float(0x7c), INFINITY);
  EXPECT_EQ(fp8e5m2_to_float(0x01), std::ldexp(1.0f, -16));
}

TEST(NpuFp8, EveryCodeRoundTrips) {
  for (int i = 0; i < 256; ++i) {
    const float a = fp8e4m3_to_float(uint8_t(i)), b = fp8e5m2_to_float(uint8_t(i));
    if (!std::isnan(a)) {
      EXPECT_EQ(float_to_fp8e4m3(a), i) << i;
    }
    if (!std::isnan(b)) {
      EXPECT_EQ(float_to_fp8e5m2(b), i) << i;
    }
  }
}

}  // namespace
}  // namespace hal::npu_sim
