// AWQ and GPTQ checkpoints (4-bit qweight/qzeros/scales with the group size from
// config.json's quantization_config), packed by the tests' own code from the packing
// side of each format's definition (the loader implements the unpacking side), load and
// give the logits of the double-precision reference on the dequantized weights, on every
// device; act-order GPTQ and malformed tensors are refused naming the tensor.
//
// Tolerances as gguf_model_test.cc: 2e-5 on exact devices (cpu:0's full-sequence passes
// run through f32 panels; the NPU simulator in f32 mode), 4e-2 in bf16.
#include <gtest/gtest.h>

#include <filesystem>

#include "hal/runtime/session.h"
#include "test_devices.h"
#include "test_models.h"

namespace {

namespace fs = std::filesystem;
using namespace hal::runtime;
using testmodels::Spec;

struct Entry {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

void write_safetensors(const fs::path& path, const std::vector<Entry>& entries) {
  nlohmann::json h = nlohmann::json::object();
  uint64_t off = 0;
  for (const Entry& e : entries) {
    h[e.name] = {
        {"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {off, off + e.bytes.size()}}};
    off += e.bytes.size();
  }
  std::string text = h.dump();
  while (text.size() % 8) text.push_back(' ');
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i) out[size_t(i)] = uint8_t(uint64_t(text.size()) >> (8 * i));
  out.insert(out.end(), text.begin(), text.end());
  for (const Entry& e : entries) out.insert(out.end(), e.bytes.begin(), e.bytes.end());
  testmodels::write_file(path, out);
}

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

struct Options {
  std::string method = "awq";
  int64_t group = 128;
  bool act_order = false;  // gptq: a permuted g_idx
};

// Writes `w` as an AWQ or GPTQ checkpoint; returns the weights it holds (dequantized).
testmodels::Tensors write_quantized(const fs::path& dir, const Spec& s,
                                    const testmodels::Tensors& w, const Options& o) {
  fs::create_directories(dir);
  nlohmann::json cfg = testmodels::config_json(s);
  if (o.method == "awq")
    cfg["quantization_config"] = {{"quant_method", "awq"},
                                  {"bits", 4},
                                  {"group_size", o.group},
                                  {"zero_point", true},
                                  {"version", "gemm"}};
  else
    cfg["quantization_config"] = {{"quant_method", "gptq"},
                                  {"bits", 4},
                                  {"group_size", o.group},
                                  {"desc_act", o.act_order},
                                  {"sym", false}};
  testmodels::write_text(dir / "config.json", cfg.dump(2));
  testmodels::Tensors held = w;
  std::vector<Entry> entries;
  for (const auto& [name, t] : w) {
    const bool table = name == "wte.weight" || name == "wpe.weight" || name == "lm_head.weight" ||
                       name == "model.embed_tokens.weight";
    const bool projection = t.shape.size() == 2;  // every 2-D weight but the tables
    if (!projection || table) {
      entries.push_back({name, "F32", t.shape, as_bytes(t.values)});
      continue;
    }
    // Canonical: gpt2 Conv1D [in, out]; llama Linear [out, in].
    const bool in_out = !s.llama;
    const int64_t in = in_out ? t.shape[0] : t.shape[1], out = in_out ? t.shape[1] : t.shape[0];
    // The held tensor by pointer: clang before 16 cannot capture a structured binding.
    std::vector<float>* held_values = &held[name].values;
    auto at = [&](int64_t k, int64_t n) -> float& {
      return (*held_values)[size_t(in_out ? k * out + n : n * in + k)];
    };
    const int64_t groups = in / o.group;
    std::vector<int> q(size_t(in * out)), z(size_t(groups * out));
    std::vector<uint16_t> scale(size_t(groups * out));
    for (int64_t n = 0; n < out; ++n)
      for (int64_t g = 0; g < groups; ++g) {
        float lo = 1e30f, hi = -1e30f;
        for (int64_t k = g * o.group; k < (g + 1) * o.group; ++k) {
          lo = std::min(lo, at(k, n));
          hi = std::max(hi, at(k, n));
        }
        const uint16_t sb = testmodels::to_f16_bits(std::max(hi - lo, 1e-4f) / 15.0f);
        const float sv = testmodels::from_f16_bits(sb);
        const int zero = std::clamp(int(std::lround(-lo / sv)), 0, 15);
        scale[size_t(g * out + n)] = sb;
        z[size_t(g * out + n)] = zero;
        for (int64_t k = g * o.group; k < (g + 1) * o.group; ++k) {
          const int v = std::clamp(int(std::lround(at(k, n) / sv)) + zero, 0, 15);
          q[size_t(k * out + n)] = v;
          at(k, n) = float(v - zero) * sv;  // what the checkpoint holds
        }
      }
    const std::string base = name.substr(0, name.rfind('.'));
    std::vector<int32_t> qweight, qzeros;
    if (o.method == "awq") {
      static const int order[8] = {0, 2, 4, 6, 1, 3, 5, 7};  // nibble i holds feature order[i]
      for (int64_t k = 0; k < in; ++k)
        for (int64_t c = 0; c < out / 8; ++c) {
          uint32_t word = 0;
          for (int i = 0; i < 8; ++i)
            word |= uint32_t(q[size_t(k * out + 8 * c + order[i])]) << (4 * i);
          qweight.push_back(int32_t(word));
        }
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t c = 0; c < out / 8; ++c) {
          uint32_t word = 0;
          for (int i = 0; i < 8; ++i)
            word |= uint32_t(z[size_t(g * out + 8 * c + order[i])]) << (4 * i);
          qzeros.push_back(int32_t(word));
        }
      entries.push_back({base + ".qweight", "I32", {in, out / 8}, as_bytes(qweight)});
    } else {
      for (int64_t r = 0; r < in / 8; ++r)
        for (int64_t n = 0; n < out; ++n) {
          uint32_t word = 0;
          for (int i = 0; i < 8; ++i) word |= uint32_t(q[size_t((8 * r + i) * out + n)]) << (4 * i);
          qweight.push_back(int32_t(word));
        }
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t c = 0; c < out / 8; ++c) {
          uint32_t word = 0;  // GPTQ's original format stores zero - 1
          for (int i = 0; i < 8; ++i)
            word |= uint32_t((z[size_t(g * out + 8 * c + i)] - 1) & 15) << (4 * i);
          qzeros.push_back(int32_t(word));
        }
      std::vector<int32_t> g_idx;
      for (int64_t k = 0; k < in; ++k)
        g_idx.push_back(int32_t(o.act_order ? (in - 1 - k) / o.group : k / o.group));
      entries.push_back({base + ".qweight", "I32", {in / 8, out}, as_bytes(qweight)});
      entries.push_back({base + ".g_idx", "I32", {in}, as_bytes(g_idx)});
    }
    entries.push_back({base + ".qzeros", "I32", {groups, out / 8}, as_bytes(qzeros)});
    entries.push_back({base + ".scales", "F16", {groups, out}, as_bytes(scale)});
  }
  write_safetensors(dir / "model.safetensors", entries);
  return held;
}

Spec spec(bool llama) {
  Spec s;
  s.llama = llama;
  s.vocab = 96;
  s.hidden = 256;
  s.heads = 4;
  s.kv_heads = llama ? 2 : 4;
  s.inter = 512;
  s.positions = 32;
  s.tied = !llama;
  s.seed = llama ? 21 : 22;
  return s;
}

void check(const std::string& label, bool llama, const Options& o) {
  const Spec s = spec(llama);
  const fs::path dir =
      fs::temp_directory_path() / ("hal_awq_gptq_" + std::to_string(::getpid()) + "_" + label);
  fs::remove_all(dir);
  const testmodels::Tensors held =
      write_quantized(dir, s, testmodels::make_weights(s, testmodels::FileDType::kF32), o);
  auto model = load_model(dir.string());
  ASSERT_TRUE(model.ok()) << label << ": " << model.status().to_string();
  std::shared_ptr<const Model> shared(std::move(*model));
  auto w = shared->weight(llama ? "model.layers.0.mlp.up_proj.weight" : "h.0.mlp.c_fc.weight");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->dtype, o.group == 32   ? hal::DType::kI4G32
                      : o.group == 64 ? hal::DType::kI4G64
                                      : hal::DType::kI4G128);
  const std::vector<std::vector<int32_t>> seqs = {{3, 17, 42, 5, 88, 1, 9, 30, 61}};
  const testmodels::Matrix ref = testmodels::reference_logits(s, held, seqs[0]);
  for (const auto& td : testdevices::all_devices().list()) {
    SCOPED_TRACE(label + " on " + td.label);
    SessionOptions so;
    so.devices = {td.device};
    auto session = Session::create(shared, so);
    ASSERT_TRUE(session.ok()) << session.status().to_string();
    auto logits = (*session)->forward_all(seqs);
    ASSERT_TRUE(logits.ok()) << logits.status().to_string();
    const double err = testmodels::relative_logit_error(ref, (*logits)[0]);
    EXPECT_LT(err, td.reduced_precision ? 4e-2 : 2e-5);
    std::printf("  %-22s %-14s max relative logit error %.2e\n", label.c_str(), td.label.c_str(),
                err);
  }
  fs::remove_all(dir);
}

TEST(AwqGptq, AwqLlamaAndGpt2MatchTheReference) {
  check("awq-llama-g128", true, {"awq", 128, false});
  check("awq-gpt2-g64", false, {"awq", 64, false});
}

TEST(AwqGptq, GptqLlamaAndGpt2MatchTheReference) {
  check("gptq-llama-g32", true, {"gptq", 32, false});
  check("gptq-gpt2-g128", false, {"gptq", 128, false});
}

TEST(AwqGptq, ActOrderAndMalformedTensorsAreRefused) {
  const Spec s = spec(true);
  const fs::path dir =
      fs::temp_directory_path() / ("hal_awq_gptq_" + std::to_string(::getpid()) + "_bad");
  fs::remove_all(dir);
  write_quantized(dir, s, testmodels::make_weights(s, testmodels::FileDType::kF32),
                  {"gptq", 128, true});
  auto m = load_model(dir.string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("g_idx' puts input"), std::string::npos)
      << m.status().message();
  EXPECT_NE(m.status().message().find("act-order"), std::string::npos) << m.status().message();
  // A group size the format does not have.
  nlohmann::json cfg = testmodels::config_json(s);
  cfg["quantization_config"] = {
      {"quant_method", "awq"}, {"bits", 4}, {"group_size", 96}, {"version", "gemm"}};
  testmodels::write_text(dir / "config.json", cfg.dump());
  m = load_model(dir.string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("group_size 96 is not supported"), std::string::npos)
      << m.status().message();
  cfg["quantization_config"] = {{"quant_method", "awq"}, {"bits", 3}, {"group_size", 128}};
  testmodels::write_text(dir / "config.json", cfg.dump());
  m = load_model(dir.string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("bits 3 is not supported"), std::string::npos)
      << m.status().message();
  // An AWQ config over GPTQ-shaped tensors: the qweight's shape is named.
  cfg["quantization_config"] = {
      {"quant_method", "awq"}, {"bits", 4}, {"group_size", 128}, {"version", "gemm"}};
  testmodels::write_text(dir / "config.json", cfg.dump());
  m = load_model(dir.string());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("q_proj.qweight' is i32[32, 256]; expected i32[256, 32]"),
            std::string::npos)
      << m.status().message();
  fs::remove_all(dir);
}

}  // namespace
