// bpe_model.h (internal): byte-pair encoding of one pre-tokenized word, as Hugging Face's
// BPE model does it: start from the word's characters (byte tokens <0xXX> for those not
// in the vocabulary when byte_fallback is on, else the unknown token), then apply merges
// lowest rank first, leftmost first among equal ranks, until none applies.
//
// Ranks may tie: a SentencePiece vocabulary (GGUF "llama") merges by piece score, and
// every pair that forms the same piece has that piece's rank, so the leftmost pair wins,
// as in SentencePiece's own BPE.
//
// Words are cached per thread (as Hugging Face does): ordinary text repeats its words, and
// a cache hit skips the merge loop. Threading: immutable after create(); tokenize() may
// run on several threads at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hal/status.h"
#include "hal/text/tokenizer.h"

namespace hal::text::detail {

// Hash and equality that let unordered maps keyed by std::string find a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct StringEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};
using TokenMap = std::unordered_map<std::string, TokenId, StringHash, StringEq>;

struct BpeOptions {
  bool byte_fallback = false;
  bool ignore_merges = false;
  bool fuse_unk = false;
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
};

struct MergeRule {
  std::string left, right;
  uint32_t rank;
};

class BpeModel {
 public:
  // `what` names the source in errors ("tokenizer.json"). A merge whose parts or result
  // are not in the vocabulary is INVALID_ARGUMENT naming it, as is an unk_token that is
  // not in the vocabulary.
  static Result<BpeModel> create(std::vector<std::pair<std::string, TokenId>> vocab,
                                 std::vector<MergeRule> merges, BpeOptions options,
                                 std::string_view what);

  // Appends the ids of `word` (valid UTF-8, already pre-tokenized) to `out`.
  void tokenize(std::string_view word, std::vector<TokenId>& out) const;

  std::optional<TokenId> token_to_id(std::string_view token) const;
  // Empty for ids with no token.
  std::string_view id_to_token(TokenId id) const;
  // One past the largest id.
  int32_t size() const { return int32_t(tokens_.size()); }
  const BpeOptions& options() const { return options_; }

 private:
  void merge_word(std::string_view word, std::vector<TokenId>& out) const;
  TokenId char_id(std::string_view c, bool first, bool last, bool* found) const;

  struct MergeValue {
    uint32_t rank;
    TokenId merged;
  };
  TokenMap vocab_;
  std::vector<std::string> tokens_;  // by id
  std::unordered_map<uint64_t, MergeValue> merges_;
  // Ids of single characters below U+0800 (the byte-level alphabet among them), -1 when
  // not in the vocabulary: most initial symbols skip the hash lookup.
  std::vector<TokenId> small_char_ids_;
  TokenId byte_ids_[256];  // <0xXX> tokens for byte fallback, -1 when missing
  TokenId unk_id_ = -1;
  BpeOptions options_;
  uint64_t serial_ = 0;  // identifies this model's per-thread word cache
};

}  // namespace hal::text::detail
