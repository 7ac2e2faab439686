// Loading Hugging Face checkpoint directories and configs: what is accepted (prefixes,
// shards, extra buffers, dtypes) and a clear error naming the file and tensor for each
// way a checkpoint can be broken; built-in models; writing checkpoints back out.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "hal/runtime/model.h"
#include "test_models.h"

namespace {

namespace fs = std::filesystem;
using hal::StatusCode;
using namespace hal::runtime;
using ::testing::HasSubstr;
using testmodels::Spec;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hal_ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CheckpointTest, LoadsGpt2WithPrefixAndExtraBuffers) {
  Spec s;
  auto w = testmodels::make_weights(s, testmodels::FileDType::kF16);
  testmodels::WriteOptions wo;
  wo.dtype = testmodels::FileDType::kF16;
  wo.gpt2_prefix = "transformer.";
  wo.extra_tensors = true;
  testmodels::write_checkpoint(dir_, s, w, wo);
  auto m = load_model(dir_.string());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ((*m)->config().family, ModelFamily::kGpt2);
  EXPECT_EQ((*m)->config().hidden_size, 64);
  auto t = (*m)->weight("h.1.mlp.c_fc.weight");
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->dtype, hal::DType::kF16);
  EXPECT_EQ(t->shape, (hal::Shape{64, 128}));
  const auto& ref = w.at("h.1.mlp.c_fc.weight").values;
  for (size_t i = 0; i < ref.size(); i += 97)
    EXPECT_EQ(hal::load_as_float(t->data, t->dtype, int64_t(i)), ref[i]);
}

TEST_F(CheckpointTest, LoadsShardedLlamaAndDerivesInvFreq) {
  Spec s;
  s.llama = true;
  s.kv_heads = 2;
  s.llama3_scaling = true;
  s.tied = false;
  auto w = testmodels::make_weights(s, testmodels::FileDType::kBF16);
  testmodels::WriteOptions wo;
  wo.dtype = testmodels::FileDType::kBF16;
  wo.shards = 3;
  testmodels::write_checkpoint(dir_, s, w, wo);
  EXPECT_TRUE(fs::exists(dir_ / "model-00002-of-00003.safetensors"));
  auto m = load_model(dir_.string());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ((*m)->config().num_kv_heads, 2);
  ASSERT_TRUE((*m)->config().rope_scaling.has_value());
  auto inv = (*m)->weight("rope.inv_freq");
  ASSERT_TRUE(inv.ok());
  const std::vector<double> expect = testmodels::llama_inv_freq(s);
  ASSERT_EQ(inv->shape, (hal::Shape{int64_t(expect.size())}));
  for (size_t i = 0; i < expect.size(); ++i)
    EXPECT_NEAR(static_cast<const float*>(inv->data)[i], expect[i], 1e-6 * expect[i]) << i;
}

TEST_F(CheckpointTest, MissingDirectoryConfigOrWeights) {
  auto r = load_model((dir_ / "nope").string());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(),
              HasSubstr("neither a directory, a GGUF file nor a built-in model"));
  EXPECT_THAT(r.status().message(), HasSubstr("gpt2-tiny"));
  fs::create_directories(dir_);
  r = load_model(dir_.string());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("no config.json"));
  testmodels::write_text(dir_ / "config.json", testmodels::config_json(Spec{}).dump());
  r = load_model(dir_.string());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("no model.safetensors"));
}

TEST_F(CheckpointTest, BadConfigs) {
  fs::create_directories(dir_);
  auto config_error = [&](const std::string& text) {
    testmodels::write_text(dir_ / "config.json", text);
    auto r = load_model(dir_.string());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
    return r.status().message();
  };
  EXPECT_THAT(config_error("{ not json"), HasSubstr("config.json: not valid JSON"));
  EXPECT_THAT(config_error("{\"model_type\": \"bert\"}"),
              HasSubstr("model_type 'bert' is not supported (supported: gpt2, llama)"));
  auto j = testmodels::config_json(Spec{});
  j["n_embd"] = "sixty-four";
  EXPECT_THAT(config_error(j.dump()), HasSubstr("'n_embd' must be an integer"));
  j = testmodels::config_json(Spec{});
  j["n_head"] = 5;
  EXPECT_THAT(config_error(j.dump()), HasSubstr("n_head 5 does not divide n_embd 64"));
  j = testmodels::config_json(Spec{});
  j.erase("n_layer");
  EXPECT_THAT(config_error(j.dump()), HasSubstr("missing 'n_layer'"));
  j = testmodels::config_json(Spec{});
  j["activation_function"] = "relu";
  EXPECT_THAT(config_error(j.dump()), HasSubstr("activation_function 'relu' is not supported"));
  Spec ls;
  ls.llama = true;
  j = testmodels::config_json(ls);
  j["num_key_value_heads"] = 3;
  EXPECT_THAT(config_error(j.dump()), HasSubstr("num_key_value_heads 3 does not divide"));
  j = testmodels::config_json(ls);
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_THAT(config_error(j.dump()), HasSubstr("type 'yarn' is not supported"));
  j = testmodels::config_json(ls);
  j["vocab_size"] = int64_t(1) << 40;
  EXPECT_THAT(config_error(j.dump()), HasSubstr("implausibly large"));
  // Found with tests/fuzz/fuzz_model_config: 16M layers listed 200M weights (minutes and
  // gigabytes) and sizes each under the limit overflowed the parameter count.
  j = testmodels::config_json(ls);
  j["num_hidden_layers"] = int64_t(1) << 24;
  EXPECT_THAT(config_error(j.dump()), HasSubstr("layer count 16777216 is implausibly large"));
  j = testmodels::config_json(ls);
  j["hidden_size"] = j["intermediate_size"] = int64_t(1) << 24;
  j["num_hidden_layers"] = 1 << 14;
  j["head_dim"] = 64;
  EXPECT_THAT(config_error(j.dump()), HasSubstr("parameters, implausibly many"));
  // Found with fuzz_model_config: n_inner's default, 4 x n_embd, overflowed int64.
  j = testmodels::config_json(Spec{});
  j.erase("n_inner");
  j["n_embd"] = int64_t(3333333333333333772);
  EXPECT_THAT(config_error(j.dump()),
              HasSubstr("hidden size 3333333333333333772 is implausibly large"));
  // Found with fuzz_model_config: an integer past int64 was read wrapped to a negative
  // n_embd, whose n_inner default overflowed.
  j = testmodels::config_json(Spec{});
  j.erase("n_inner");
  j["n_embd"] = uint64_t(12555555555555555555ull);
  EXPECT_THAT(config_error(j.dump()), HasSubstr("'n_embd' is 12555555555555555555, too large"));
  j = testmodels::config_json(Spec{});
  j["n_ctx"] = -5;
  j.erase("n_positions");
  EXPECT_THAT(config_error(j.dump()), HasSubstr("'n_ctx' is -5, must be >= 1"));
  j = testmodels::config_json(ls);
  j["head_dim"] = int64_t(1) << 40;
  EXPECT_THAT(config_error(j.dump()), HasSubstr("head_dim 1099511627776 is implausibly large"));
}

TEST_F(CheckpointTest, MissingTensorNamesItAndTheNamesTried) {
  Spec s;
  auto w = testmodels::make_weights(s, testmodels::FileDType::kF32);
  w.erase("h.1.ln_2.bias");
  testmodels::write_checkpoint(dir_, s, w);
  auto r = load_model(dir_.string());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("tensor 'h.1.ln_2.bias' is missing"));
  EXPECT_THAT(r.status().message(), HasSubstr("'transformer.h.1.ln_2.bias'"));
}

TEST_F(CheckpointTest, UntiedHeadMissing) {
  Spec s;
  s.llama = true;
  s.tied = false;
  auto w = testmodels::make_weights(s, testmodels::FileDType::kF32);
  w.erase("lm_head.weight");
  testmodels::write_checkpoint(dir_, s, w);
  EXPECT_THAT(load_model(dir_.string()).status().message(),
              HasSubstr("tensor 'lm_head.weight' is missing"));
}

TEST_F(CheckpointTest, ShapeNotMatchingConfig) {
  Spec s;
  auto w = testmodels::make_weights(s, testmodels::FileDType::kF32);
  auto& t = w.at("h.0.attn.c_attn.weight");
  t.shape = {64, 191};
  t.values.resize(64 * 191);
  testmodels::write_checkpoint(dir_, s, w);
  auto r = load_model(dir_.string());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("model.safetensors: tensor 'h.0.attn.c_attn.weight' "
                        "has shape [64, 191]; config.json implies [64, 192]"));
}

TEST_F(CheckpointTest, NonFloatWeight) {
  Spec s;
  auto w = testmodels::make_weights(s, testmodels::FileDType::kF32);
  testmodels::write_checkpoint(dir_, s, w);
  // Rewrite the file with one tensor declared I32 (same byte size as F32).
  std::vector<std::pair<std::string, const testmodels::Tensor*>> all;
  for (const auto& [n, t] : w) all.emplace_back(n, &t);
  auto bytes = testmodels::safetensors_bytes(all, testmodels::FileDType::kF32);
  std::string text(bytes.begin(), bytes.end());
  const size_t at = text.find("\"ln_f.bias\"");
  ASSERT_NE(at, std::string::npos);
  const size_t dt = text.find("\"F32\"", at);
  text.replace(dt, 5, "\"I32\"");
  testmodels::write_file(dir_ / "model.safetensors",
                         std::vector<uint8_t>(text.begin(), text.end()));
  auto r = load_model(dir_.string());
  EXPECT_THAT(r.status().message(), HasSubstr("tensor 'ln_f.bias' has dtype i32; weights must be"));
}

TEST_F(CheckpointTest, TruncatedWeightsFile) {
  Spec s;
  testmodels::write_checkpoint(dir_, s, testmodels::make_weights(s, testmodels::FileDType::kF32));
  const fs::path f = dir_ / "model.safetensors";
  fs::resize_file(f, fs::file_size(f) - 100);
  auto r = load_model(dir_.string());
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("model.safetensors"));
  EXPECT_THAT(r.status().message(), HasSubstr("run past the data section"));
  fs::resize_file(f, 5);
  EXPECT_EQ(load_model(dir_.string()).status().code(), StatusCode::kDataLoss);
}

TEST_F(CheckpointTest, BrokenShardIndex) {
  Spec s;
  testmodels::WriteOptions wo;
  wo.shards = 2;
  testmodels::write_checkpoint(dir_, s, testmodels::make_weights(s, testmodels::FileDType::kF32),
                               wo);
  const fs::path index = dir_ / "model.safetensors.index.json";
  auto j = nlohmann::json::parse(std::ifstream(index));
  // A tensor mapped to the wrong shard.
  auto moved = j;
  const std::string owner = moved["weight_map"]["wte.weight"];
  moved["weight_map"]["wte.weight"] = owner == "model-00001-of-00002.safetensors"
                                          ? "model-00002-of-00002.safetensors"
                                          : "model-00001-of-00002.safetensors";
  testmodels::write_text(index, moved.dump());
  EXPECT_THAT(load_model(dir_.string()).status().message(),
              HasSubstr("puts tensor 'wte.weight' in"));
  // A shard that does not exist.
  auto missing = j;
  missing["weight_map"]["wte.weight"] = "model-00009-of-00002.safetensors";
  testmodels::write_text(index, missing.dump());
  auto r = load_model(dir_.string());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("names shard 'model-00009-of-00002.safetensors'"));
  // Paths outside the directory are refused.
  auto escape = j;
  escape["weight_map"]["wte.weight"] = "../elsewhere.safetensors";
  testmodels::write_text(index, escape.dump());
  EXPECT_THAT(load_model(dir_.string()).status().message(),
              HasSubstr("not a file in the directory"));
  testmodels::write_text(index, "{\"weight_map\": 3}");
  EXPECT_THAT(load_model(dir_.string()).status().message(), HasSubstr("missing 'weight_map'"));
}

TEST(BuiltinModels, KnownNamesAndUnknownName) {
  for (const std::string& name : builtin_model_names()) {
    // 124 M and 296 M parameters: covered by the benchmarks.
    if (name == "gpt2-small-random" || name == "llama-small-random") continue;
    auto m = load_model(name);
    ASSERT_TRUE(m.ok()) << name << ": " << m.status().to_string();
    EXPECT_TRUE((*m)->builtin());
    for (const std::string& w : (*m)->weight_names()) EXPECT_TRUE((*m)->weight(w).ok()) << w;
  }
  auto r = make_builtin_model("gpt5");
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("built-in: gpt2-tiny"));
}

TEST(BuiltinModels, SameWeightsEveryTime) {
  auto a = make_builtin_model("gpt2-tiny");
  auto b = make_builtin_model("gpt2-tiny");
  ASSERT_TRUE(a.ok() && b.ok());
  auto ta = (*a)->weight("h.2.mlp.c_fc.weight");
  auto tb = (*b)->weight("h.2.mlp.c_fc.weight");
  ASSERT_TRUE(ta.ok() && tb.ok());
  EXPECT_EQ(std::memcmp(ta->data, tb->data, ta->bytes), 0);
}

TEST_F(CheckpointTest, SavedBuiltinLoadsBackInBf16) {
  auto m = make_builtin_model("llama-tiny");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(save_checkpoint(**m, dir_.string(), hal::DType::kBF16).ok());
  auto back = load_model(dir_.string());
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ((*back)->config().rope_scaling->type, "llama3");
  EXPECT_EQ((*back)->config().num_kv_heads, 2);
  for (const char* name : {"model.layers.3.mlp.down_proj.weight", "lm_head.weight"}) {
    auto orig = (*m)->weight(name);
    auto got = (*back)->weight(name);
    ASSERT_TRUE(orig.ok() && got.ok());
    EXPECT_EQ(got->dtype, hal::DType::kBF16);
    for (int64_t i = 0; i < orig->shape.numel(); i += 31)
      EXPECT_EQ(hal::load_as_float(got->data, got->dtype, i),
                testmodels::round_to(testmodels::FileDType::kBF16,
                                     hal::load_as_float(orig->data, orig->dtype, i)));
  }
}

}  // namespace
