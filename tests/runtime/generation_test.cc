// Generation: cached decoding equals full recomputation, a batch equals its rows run
// alone, seeded sampling reproduces, the sampler obeys temperature/top-k/top-p, and bad
// requests fail clearly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>

#include "hal/runtime/session.h"
#include "test_devices.h"
#include "test_models.h"

namespace {

namespace fs = std::filesystem;
using namespace hal::runtime;
using ::testing::HasSubstr;

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    m = std::max(m, double(std::abs(a[i] - b[i])));
  return a.size() == b.size() ? m : 1e30;
}

// A random GPT-2 or Llama checkpoint (no margin trick: sampling sees a spread distribution).
std::shared_ptr<const Model> test_model(bool llama) {
  testmodels::Spec s;
  s.llama = llama;
  s.kv_heads = llama ? 2 : 4;
  s.seed = llama ? 21 : 22;
  const fs::path dir = fs::temp_directory_path() / ("hal_gen_test_" + std::to_string(::getpid()) +
                                                    (llama ? "_llama" : "_gpt2"));
  fs::remove_all(dir);
  testmodels::write_checkpoint(dir, s, testmodels::make_weights(s, testmodels::FileDType::kF32));
  auto m = load_model(dir.string());
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  fs::remove_all(dir);  // the files stay mapped
  return m.ok() ? std::shared_ptr<const Model>(std::move(*m)) : nullptr;
}

std::unique_ptr<Session> cpu_session(std::shared_ptr<const Model> m) {
  SessionOptions so;
  so.devices = {testdevices::all_devices().cpu()};
  auto s = Session::create(std::move(m), so);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? std::move(*s) : nullptr;
}

class GenerationTest : public ::testing::TestWithParam<bool> {};

// Logits of every decode step through the KV cache equal those of one pass over the
// whole sequence.
TEST_P(GenerationTest, KvCacheDecodeEqualsFullRecompute) {
  auto session = cpu_session(test_model(GetParam()));
  ASSERT_TRUE(session);
  const std::vector<int32_t> prompt = {5, 9, 1, 77, 31};
  GenerationOptions go;
  go.max_new_tokens = 12;
  go.keep_logits = true;
  auto r = session->generate({prompt}, go);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  std::vector<int32_t> full = prompt;
  full.insert(full.end(), r->tokens[0].begin(), r->tokens[0].end() - 1);
  auto all = session->forward_all({full});
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  const int64_t vocab = session->config().vocab_size;
  for (int64_t t = 0; t < go.max_new_tokens; ++t) {
    const size_t pos = prompt.size() - 1 + size_t(t);
    std::span<const float> cached(r->logits[0].data() + t * vocab, size_t(vocab));
    std::span<const float> recomputed((*all)[0].data() + pos * size_t(vocab), size_t(vocab));
    EXPECT_LT(max_abs_diff(cached, recomputed), 1e-4) << "token " << t;
  }
  EXPECT_EQ(r->decode_tokens, go.max_new_tokens - 1);
  EXPECT_EQ(r->step_seconds.size(), size_t(go.max_new_tokens - 1));
  EXPECT_GT(r->prefill_tokens_per_s(), 0);
  EXPECT_GT(r->decode_tokens_per_s(), 0);
  // cpu:0's clock is the wall clock: device time is there and within the wall time.
  EXPECT_GT(r->decode_device_seconds, 0);
  EXPECT_LE(r->decode_device_seconds, r->decode_seconds * 1.01);
}

// Prompts of different lengths in one batch give each prompt's own tokens and logits.
TEST_P(GenerationTest, BatchEqualsIndividualRuns) {
  auto session = cpu_session(test_model(GetParam()));
  ASSERT_TRUE(session);
  const std::vector<std::vector<int32_t>> prompts = {
      {3, 1, 4}, {1, 5, 9, 2, 6, 5, 3}, {58, 1, 9, 3, 2}};
  GenerationOptions go;
  go.max_new_tokens = 9;
  go.keep_logits = true;
  auto batch = session->generate(prompts, go);
  ASSERT_TRUE(batch.ok()) << batch.status().to_string();
  for (size_t b = 0; b < prompts.size(); ++b) {
    auto one = session->generate({prompts[b]}, go);
    ASSERT_TRUE(one.ok()) << one.status().to_string();
    EXPECT_EQ(batch->tokens[b], one->tokens[0]) << "prompt " << b;
    EXPECT_LT(max_abs_diff(batch->logits[b], one->logits[0]), 1e-4) << "prompt " << b;
  }
  EXPECT_EQ(batch->prompt_tokens, 15);
  EXPECT_EQ(batch->decode_tokens, 3 * 8);
}

TEST_P(GenerationTest, SeededSamplingReproducesAndSeedsDiffer) {
  auto session = cpu_session(test_model(GetParam()));
  ASSERT_TRUE(session);
  GenerationOptions go;
  go.max_new_tokens = 20;
  go.sampling = {1.5f, 40, 0.95f, 42};
  auto a = session->generate({{7, 8, 9}}, go);
  auto b = session->generate({{7, 8, 9}}, go);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
  go.sampling.seed = 43;
  auto c = session->generate({{7, 8, 9}}, go);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->tokens, c->tokens);
  // A row's samples do not depend on its batch neighbours.
  go.sampling.seed = 42;
  auto batch = session->generate({{1, 2}, {7, 8, 9}}, go);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->tokens[1], a->tokens[0]);
}

INSTANTIATE_TEST_SUITE_P(Families, GenerationTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Llama" : "Gpt2"; });

TEST(Generation, EosStopsARow) {
  auto session = cpu_session(test_model(false));
  ASSERT_TRUE(session);
  GenerationOptions go;
  go.max_new_tokens = 10;
  auto free_run = session->generate({{4, 4, 4}}, go);
  ASSERT_TRUE(free_run.ok());
  go.eos_token_id = free_run->tokens[0][2];
  auto stopped = session->generate({{4, 4, 4}}, go);
  ASSERT_TRUE(stopped.ok());
  const auto& all = free_run->tokens[0];
  const size_t first = size_t(std::find(all.begin(), all.end(), go.eos_token_id) - all.begin());
  EXPECT_EQ(stopped->tokens[0], std::vector<int32_t>(all.begin(), all.begin() + first + 1));
}

TEST(Generation, StopIdsAndTheTokenCallbackEndRows) {
  auto session = cpu_session(test_model(true));
  ASSERT_TRUE(session);
  GenerationOptions go;
  go.max_new_tokens = 12;
  const std::vector<std::vector<int32_t>> prompts = {{4, 4, 4}, {9, 8}};
  auto free_run = session->generate(prompts, go);
  ASSERT_TRUE(free_run.ok());
  EXPECT_EQ(free_run->stopped, (std::vector<uint8_t>{0, 0}));
  // Several stop ids: each row ends at the first of them it produces.
  go.stop_token_ids = {free_run->tokens[0][3], free_run->tokens[1][5]};
  // The callback hears every token of every row in order, and can end a row itself.
  std::vector<std::vector<int32_t>> heard(2);
  go.on_token = [&](int64_t row, int32_t token) {
    heard[size_t(row)].push_back(token);
    return !(row == 1 && heard[1].size() == 2);  // row 1: stop after its second token
  };
  auto r = session->generate(prompts, go);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  auto upto_first = [&](const std::vector<int32_t>& all, size_t limit) {
    size_t n = 0;
    while (n < all.size() && n < limit) {
      ++n;
      if (std::count(go.stop_token_ids.begin(), go.stop_token_ids.end(), all[n - 1])) break;
    }
    return std::vector<int32_t>(all.begin(), all.begin() + int64_t(n));
  };
  EXPECT_EQ(r->tokens[0], upto_first(free_run->tokens[0], 12));
  EXPECT_EQ(r->tokens[1], upto_first(free_run->tokens[1], 2));
  EXPECT_EQ(heard[0], r->tokens[0]);
  EXPECT_EQ(heard[1], r->tokens[1]);
  EXPECT_EQ(r->stopped, (std::vector<uint8_t>{1, 1}));
}

TEST(Generation, BadRequestsFailClearly) {
  auto session = cpu_session(test_model(false));
  ASSERT_TRUE(session);
  GenerationOptions go;
  auto r = session->generate({{1, 2, 96}}, go);
  EXPECT_EQ(r.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("token id 96 at position 2 is outside the vocabulary [0, 96)"));
  EXPECT_THAT(session->generate({{1}, {}}, go).status().message(), HasSubstr("prompt 1 is empty"));
  EXPECT_FALSE(session->generate({}, go).ok());
  go.max_new_tokens = 60;  // 10 + 59 positions > 64
  EXPECT_THAT(session->generate({std::vector<int32_t>(10, 1)}, go).status().message(),
              HasSubstr("exceed the model's 64 positions"));
  go.max_new_tokens = 4;
  go.sampling.top_p = 0;
  EXPECT_FALSE(session->generate({{1}}, go).ok());
}

// ---- the sampler alone ----------------------------------------------------------

TEST(Sampling, GreedyIsArgmaxWithLowestIdOnTies) {
  SamplingRng rng(1);
  const std::vector<float> logits = {0.1f, 3.f, -2.f, 3.f, 1.f};
  EXPECT_EQ(sample_token(logits, {}, rng), 1);
  SamplingOptions top1{5.0f, 1, 1.0f, 0};
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, top1, rng), 1);
  SamplingOptions tiny_p{1.0f, 0, 1e-6f, 0};
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits, tiny_p, rng), 1);
}

TEST(Sampling, GreedySkipsNaNsAndTakesInfinities) {
  SamplingRng rng(1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  auto greedy = [&](std::vector<float> l) { return sample_token(l, {}, rng); };
  EXPECT_EQ(greedy({nan, 1.f, 2.f, 2.f}), 2);
  EXPECT_EQ(greedy({1.f, nan, 3.f, nan, 3.f}), 2);
  EXPECT_EQ(greedy({nan, nan}), 0);         // nothing to pick: the first id
  EXPECT_EQ(greedy({nan, -inf, -inf}), 1);  // the first non-NaN
  EXPECT_EQ(greedy({-inf, 0.f, inf, nan, inf}), 2);
  EXPECT_EQ(greedy({-0.f, 0.f}), 0);  // equal values: the lowest id
}

TEST(Sampling, GreedyOnLongRowsMatchesAScalarScan) {
  // Rows long enough for the vector lanes, with the maximum repeated in other lanes, in
  // the tail, behind NaNs and infinities: the lowest id of the largest non-NaN value.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  auto scalar = [](const std::vector<float>& l) {
    int32_t at = -1;
    for (size_t i = 0; i < l.size(); ++i)
      if (!std::isnan(l[i]) && (at < 0 || l[i] > l[size_t(at)])) at = int32_t(i);
    return at < 0 ? 0 : at;
  };
  SamplingRng rng(3), pick(11);
  for (const size_t n : {16u, 17u, 23u, 24u, 63u, 1000u, 50257u}) {
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<float> l(n);
      for (float& x : l) x = float(int(pick.uniform() * 50)) - 25.f;  // many ties
      const int specials = trial % 8;
      for (int s = 0; s < 3 * specials; ++s) {
        const size_t at = size_t(pick.uniform() * double(n));
        l[at] = s % 3 == 0 ? nan : (s % 3 == 1 ? -inf : (trial % 5 == 0 ? inf : 30.f));
      }
      if (trial == 7) std::fill(l.begin(), l.end(), nan);
      if (trial == 9) std::fill(l.begin(), l.end(), -inf);
      if (trial == 11) l.back() = 1000.f;  // the maximum in the tail past the last 8
      EXPECT_EQ(sample_token(l, {}, rng), scalar(l)) << "n " << n << " trial " << trial;
    }
  }
}

TEST(Sampling, FrequenciesFollowSoftmaxOfLogitsOverTemperature) {
  // p ~ exp(l / T): logits log(1), log(2), log(3), log(4) with T = 1 -> 0.1 .. 0.4.
  const std::vector<float> logits = {0.f, std::log(2.f), std::log(3.f), std::log(4.f)};
  SamplingRng rng(7);
  std::vector<int> count(4, 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++count[size_t(sample_token(logits, {1.0f, 0, 1.0f, 0}, rng))];
  for (int k = 0; k < 4; ++k) EXPECT_NEAR(double(count[size_t(k)]) / n, 0.1 * (k + 1), 0.01) << k;
  // Temperature 0.5 squares the odds: 1, 4, 9, 16 over 30.
  std::fill(count.begin(), count.end(), 0);
  for (int i = 0; i < n; ++i) ++count[size_t(sample_token(logits, {0.5f, 0, 1.0f, 0}, rng))];
  for (int k = 0; k < 4; ++k)
    EXPECT_NEAR(double(count[size_t(k)]) / n, (k + 1) * (k + 1) / 30.0, 0.01);
}

TEST(Sampling, TopKAndTopPCutTheTail) {
  const std::vector<float> logits = {0.f, std::log(2.f), std::log(3.f), std::log(4.f)};
  SamplingRng rng(9);
  std::vector<int> count(4, 0);
  for (int i = 0; i < 20000; ++i) ++count[size_t(sample_token(logits, {1.0f, 2, 1.0f, 0}, rng))];
  EXPECT_EQ(count[0] + count[1], 0);
  EXPECT_NEAR(double(count[3]) / 20000, 4.0 / 7, 0.015);
  // top_p 0.65: 0.4 + 0.3 reaches it, so ids 3 and 2 only.
  std::fill(count.begin(), count.end(), 0);
  for (int i = 0; i < 20000; ++i) ++count[size_t(sample_token(logits, {1.0f, 0, 0.65f, 0}, rng))];
  EXPECT_EQ(count[0] + count[1], 0);
  EXPECT_GT(count[2], 0);
}

}  // namespace
