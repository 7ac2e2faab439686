// hf_components.h (internal): the pipeline stages of a Hugging Face tokenizer.json, each
// built from its JSON object and applied the way the `tokenizers` library applies it.
//
//   normalizer     NFC, NFD, NFKC, NFKD, Lowercase, Strip, Prepend, Replace, Sequence
//   pre_tokenizer  ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit,
//                  Punctuation, Sequence
//   post_processor TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing,
//                  Sequence
//   decoder        ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence
//                  (hf_decoders.cc)
// Any other type is INVALID_ARGUMENT naming it and where it is ("tokenizer.json:
// pre_tokenizer: type 'UnicodeScripts' is not supported (supported: ...)"), never ignored.
//
// Threading: every stage is immutable once built.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "hal/status.h"
#include "hal/text/tokenizer.h"
#include "regex.h"
#include "unicode.h"

namespace hal::text::detail {

// ---- normalizers -----------------------------------------------------------------------

struct NormalizerStep {
  enum Kind { kForm, kLowercase, kStrip, kPrepend, kReplace } kind = kForm;
  NormalForm form = NormalForm::kNFC;
  bool strip_left = false, strip_right = false;
  std::string text;  // kPrepend: what to prepend; kReplace: the replacement
  std::shared_ptr<Regex> pattern;
};

class Normalizer {
 public:
  // From tokenizer.json's "normalizer" (null: no steps).
  static Result<Normalizer> from_json(const nlohmann::json& j, std::string_view where);
  bool empty() const { return steps_.empty(); }
  // `text` normalized (valid UTF-8 in and out).
  Result<std::string> apply(std::string_view text) const;

 private:
  Status add(const nlohmann::json& j, std::string_view where);
  std::vector<NormalizerStep> steps_;
};

// ---- pre-tokenizers ----------------------------------------------------------------------

// Pieces of text in one arena: splitting makes sub-ranges, transforming appends new text.
struct Piece {
  uint32_t offset, length;
  bool at_start;  // begins at offset 0 of the original input (Metaspace prepend_scheme first)
};
struct PieceList {
  std::string arena;
  std::vector<Piece> pieces;
  std::string_view text(const Piece& p) const {
    return std::string_view(arena).substr(p.offset, p.length);
  }
};

struct PreTokenizerStep {
  enum Kind {
    kByteLevel,
    kSplit,
    kMetaspace,
    kDigits,
    kWhitespace,
    kWhitespaceSplit,
    kPunctuation
  } kind = kByteLevel;
  // kByteLevel
  bool add_prefix_space = false, use_regex = true;
  // kSplit (and the regexes of ByteLevel and Whitespace)
  std::shared_ptr<Regex> pattern;
  enum Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  Behavior behavior = kIsolated;
  bool invert = false;
  // kMetaspace
  std::string replacement = "\xE2\x96\x81";  // U+2581
  enum Prepend { kAlways, kFirst, kNever } prepend = kAlways;
  bool split = true;
  // kDigits
  bool individual_digits = false;
};

class PreTokenizer {
 public:
  static Result<PreTokenizer> from_json(const nlohmann::json& j, std::string_view where);
  bool empty() const { return steps_.empty(); }
  // Splits and transforms `list` in place, step after step.
  Status apply(PieceList& list) const;
  // True when the last step maps bytes to the byte-level alphabet (GPT-2's ByteLevel).
  bool byte_level() const;

 private:
  Status add(const nlohmann::json& j, std::string_view where);
  std::vector<PreTokenizerStep> steps_;
};

// The byte-level alphabet (GPT-2): byte -> its character in UTF-8, and back.
struct ByteLevelAlphabet {
  std::string encoded[256];
  // Code point (< 0x144) -> byte, -1 for characters outside the alphabet.
  int16_t decoded[0x144];
};
const ByteLevelAlphabet& byte_level_alphabet();

// ---- post-processors ------------------------------------------------------------------------

class PostProcessor {
 public:
  static Result<PostProcessor> from_json(const nlohmann::json& j, std::string_view where);
  // The ids before and after a single sequence when special tokens are added.
  const std::vector<TokenId>& prefix() const { return prefix_; }
  const std::vector<TokenId>& suffix() const { return suffix_; }

 private:
  Status add(const nlohmann::json& j, std::string_view where);
  std::vector<TokenId> prefix_, suffix_;
};

// ---- decoders -----------------------------------------------------------------------------------

struct DecoderStep {
  enum Kind { kByteLevel, kMetaspace, kReplace, kByteFallback, kFuse, kStrip } kind = kByteLevel;
  // kMetaspace
  std::string replacement = "\xE2\x96\x81";
  bool prepend_never = false;
  // kReplace
  std::shared_ptr<Regex> pattern;
  std::string content;
  // kStrip
  std::string strip_char = " ";
  int start = 0, stop = 0;
};

class Decoder {
 public:
  static Result<Decoder> from_json(const nlohmann::json& j, std::string_view where);
  bool empty() const { return steps_.empty(); }
  // Hugging Face's decode_chain over all steps, then the pieces joined (with " " when
  // the tokenizer has no decoder, as Hugging Face does).
  Result<std::string> decode(std::vector<std::string> tokens) const;
  // The streaming form (tokenizer.h, TokenSurfaces) of tokens[i] for every id.
  Status surfaces(const std::vector<std::string>& tokens, const std::vector<bool>& special,
                  TokenSurfaces& out) const;

 private:
  Status add(const nlohmann::json& j, std::string_view where);
  std::vector<DecoderStep> steps_;
};

// A {"type": "Sequence", `key`: [...]} stage: `add` on each item in order.
Status for_each_in_sequence(const nlohmann::json& j, const char* key, std::string_view where,
                            const std::function<Status(const nlohmann::json&)>& add);
// The JSON value's "type" string, or INVALID_ARGUMENT naming `where`.
Result<std::string> json_type(const nlohmann::json& j, std::string_view where);
// A {"String": s} or {"Regex": r} pattern.
Result<std::shared_ptr<Regex>> json_pattern(const nlohmann::json& j, std::string_view where);

}  // namespace hal::text::detail
