// hal/text/text_stream.h: generated tokens to text as they come, UTF-8-correct.
//
// A character can be split over tokens (byte-level BPE, byte fallback): its first token
// adds bytes that are not yet text. TextStream holds such bytes back and releases the
// character once it is whole, so a terminal never shows half a character. Bytes that can
// no longer become a character are replaced by U+FFFD, the way the tokenizer's decode()
// replaces them (utf8.h), so the concatenated output equals decode() of the same ids for
// every sequence an encoder makes (and for any ids on byte-level tokenizers; with byte
// fallback an invalid run of byte tokens may get fewer U+FFFD than decode() gives).
//
// Contract
// - push(id) returns the text `id` completes (possibly empty); the view is valid until the
//   next call. finish() returns what was held back (an incomplete character at the end
//   becomes U+FFFD), and the stream can be reused after reset().
// - No heap allocation after construction: buffers are sized from the tokenizer's longest
//   token (tokenizer.h, TokenSurfaces).
// - Ids outside the vocabulary add nothing (a model's output layer may be wider than its
//   vocabulary).
// - The Tokenizer must outlive the stream.
//
// Threading: one stream per thread (it is a cursor); the tokenizer is shared.
#pragma once

#include <string>
#include <string_view>

#include "hal/text/tokenizer.h"

namespace hal::text {

struct TextStreamOptions {
  // Special tokens (EOS, <|im_end|>) add no text.
  bool skip_special_tokens = true;
  // The stream continues text already shown (the prompt): no token is the first of the
  // text, so none loses its leading space and the text's start is not stripped.
  bool continuation = false;
};

class TextStream {
 public:
  explicit TextStream(const Tokenizer& tokenizer, TextStreamOptions options = {});

  std::string_view push(TokenId id);
  std::string_view finish();
  void reset();

 private:
  void emit(std::string_view bytes);
  void emit_char(std::string_view c);

  const TokenSurfaces& surfaces_;
  TextStreamOptions options_;
  bool first_pending_;      // the next token that counts takes its `first` form
  int strip_leading_left_;  // leading strip characters still to drop
  int held_strip_;          // trailing strip characters withheld
  std::string pending_;     // bytes of an incomplete character (< 4)
  std::string out_;         // what the current call returns
};

}  // namespace hal::text
