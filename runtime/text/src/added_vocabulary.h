// added_vocabulary.h (internal): tokens matched as a whole before any other step
// (tokenizer.json "added_tokens"; GGUF control and user-defined tokens): special tokens
// such as <|endoftext|> or [INST], and added words.
//
// Matching follows Hugging Face's AddedVocabulary: leftmost-longest, non-overlapping
// matches of every token's content; then per token single_word (only between non-word
// characters), lstrip/rstrip (the match swallows the whitespace around it); tokens with
// normalized=false are matched on the raw text, those with normalized=true on the
// normalized text (their content normalized the same way).
//
// Threading: immutable after build(); split() is const.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "hal/status.h"
#include "hal/text/tokenizer.h"

namespace hal::text::detail {

struct AddedToken {
  std::string content;
  TokenId id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// A piece of text: [start, end) of the string split, and the added token it is (-1: text).
struct Segment {
  size_t start, end;
  TokenId id;
};

class AddedVocabulary {
 public:
  // `normalize` maps a normalized=true token's content to what it matches (identity
  // when the tokenizer has no normalizer).
  Status build(std::vector<AddedToken> tokens,
               const std::function<Result<std::string>(std::string_view)>& normalize);

  // Splits `text` at the matches of the normalized (or raw) tokens, appending segments
  // that cover it; parse_special=false leaves special tokens as text.
  void split(std::string_view text, bool normalized, bool parse_special,
             std::vector<Segment>& out) const;

  bool empty() const { return tokens_.empty(); }
  const AddedToken* find(TokenId id) const;
  const AddedToken* find(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie of the patterns of one set (raw or normalized).
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
      int32_t token = -1;                                 // index into tokens_
    };
    std::vector<Node> nodes{Node{}};
    bool first_byte[256] = {};
    void add(std::string_view pattern, int32_t token);
    // The longest pattern starting at text[at]: its token index and length, or -1.
    int32_t longest_at(std::string_view text, size_t at, size_t* length) const;
  };
  Trie raw_, normalized_;
  std::vector<AddedToken> tokens_;
  std::unordered_map<TokenId, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
};

}  // namespace hal::text::detail
