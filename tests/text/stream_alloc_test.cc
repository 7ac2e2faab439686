// Streaming decode allocates nothing per token: this program replaces operator new to
// count allocations while a TextStream prints a long generated sequence, for every
// golden family (byte-level, byte fallback, SentencePiece).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "hal/text/model_text.h"
#include "hal/text/text_stream.h"
#include "text_test_support.h"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// The replacements below pair malloc with free, which is correct; GCC's
// -Wmismatched-new-delete cannot tell after inlining them into callers.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace hal::text {
namespace {

class StreamAllocation : public ::testing::TestWithParam<const char*> {};

TEST_P(StreamAllocation, NoHeapAllocationPerToken) {
  auto text = load_model_text((test::goldens_dir() / GetParam()).string());
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  // Every string of the goldens, back to back: emoji, CJK, byte tokens, specials.
  const nlohmann::json g = test::read_json(test::goldens_dir() / GetParam() / "goldens.json");
  std::vector<TokenId> ids;
  for (const auto& c : g["cases"]) {
    const auto more = test::ids_of(c["ids_with_special"]);
    ids.insert(ids.end(), more.begin(), more.end());
  }
  ASSERT_GT(ids.size(), 500u);
  TextStream stream(text->tokenizer(), {.skip_special_tokens = false});
  size_t bytes = 0;
  const long before = g_allocations.load();
  for (const TokenId id : ids) bytes += stream.push(id).size();
  bytes += stream.finish().size();
  const long during = g_allocations.load() - before;
  EXPECT_EQ(during, 0) << during << " allocations while streaming " << ids.size() << " tokens";
  EXPECT_GT(bytes, 1000u);
}

INSTANTIATE_TEST_SUITE_P(Text, StreamAllocation,
                         ::testing::Values("gpt2", "llama3", "qwen2", "llama2", "mistral",
                                           "spm_bpe", "spm_unigram"));

}  // namespace
}  // namespace hal::text
