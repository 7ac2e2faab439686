// Normalizers, pre-tokenizers and post-processors of tokenizer.json (decoders are in
// hf_decoders.cc), applied as Hugging Face `tokenizers` applies them.
#include <cstring>

#include "hal/text/utf8.h"
#include "hf_components.h"

namespace hal::text::detail {

namespace {

const char* kNormalizers = "NFC, NFD, NFKC, NFKD, Lowercase, Strip, Prepend, Replace, Sequence";
const char* kPreTokenizers =
    "ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation, Sequence";
const char* kPostProcessors =
    "TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, Sequence";

// GPT-2's split pattern, which ByteLevel applies when use_regex is true.
const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

Status unsupported(std::string_view where, std::string_view type, const char* supported) {
  return invalid_argument(std::string(where) + ": type '" + std::string(type) +
                          "' is not supported (supported: " + supported + ")");
}

bool get_bool(const nlohmann::json& j, const char* key, bool fallback) {
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

// Regions of `text` that a splitting pattern matched (true) or not (false), covering it.
struct Region {
  size_t start, end;
  bool match;
};

// Hugging Face's SplitDelimiterBehavior over the regions: the ranges to keep.
void apply_behavior(const std::vector<Region>& regions, PreTokenizerStep::Behavior behavior,
                    std::vector<std::pair<size_t, size_t>>& out) {
  using B = PreTokenizerStep::Behavior;
  out.clear();
  switch (behavior) {
    case B::kIsolated:
      for (const Region& r : regions) out.emplace_back(r.start, r.end);
      return;
    case B::kRemoved:
      for (const Region& r : regions)
        if (!r.match) out.emplace_back(r.start, r.end);
      return;
    case B::kContiguous: {
      bool previous = false;
      for (const Region& r : regions) {
        if (r.match == previous && !out.empty())
          out.back().second = r.end;
        else
          out.emplace_back(r.start, r.end);
        previous = r.match;
      }
      return;
    }
    case B::kMergedWithPrevious: {
      bool previous = false;
      for (const Region& r : regions) {
        if (r.match && !previous && !out.empty())
          out.back().second = r.end;
        else
          out.emplace_back(r.start, r.end);
        previous = r.match;
      }
      return;
    }
    case B::kMergedWithNext: {
      bool previous = false;
      for (size_t k = regions.size(); k-- > 0;) {
        const Region& r = regions[k];
        if (r.match && !previous && !out.empty())
          out.back().first = r.start;
        else
          out.emplace_back(r.start, r.end);
        previous = r.match;
      }
      std::reverse(out.begin(), out.end());
      return;
    }
  }
}

// Regions of the characters for which `is_delimiter` holds (each one its own region).
template <typename F>
void char_regions(std::string_view text, F&& is_delimiter, std::vector<Region>& out) {
  out.clear();
  size_t last = 0, i = 0;
  while (i < text.size()) {
    size_t len = 0;
    const char32_t c = decode_char(text.substr(i), &len);
    if (is_delimiter(c)) {
      if (last < i) out.push_back({last, i, false});
      out.push_back({i, i + len, true});
      last = i + len;
    }
    i += len;
  }
  if (last < text.size()) out.push_back({last, text.size(), false});
}

Status regex_regions(const Regex& re, std::string_view text, bool invert,
                     std::vector<Region>& out) {
  out.clear();
  size_t prev = 0;
  HAL_RETURN_IF_ERROR(re.for_each_match(text, [&](size_t s, size_t e) {
    if (prev != s) out.push_back({prev, s, invert});
    out.push_back({s, e, !invert});
    prev = e;
  }));
  if (prev != text.size()) out.push_back({prev, text.size(), invert});
  return ok_status();
}

// Replaces every region in `list.pieces` by the kept sub-ranges of it.
struct Splitter {
  std::vector<Region> regions;
  std::vector<std::pair<size_t, size_t>> ranges;
  std::vector<Piece> next;

  template <typename RegionsOf>
  Status run(PieceList& list, PreTokenizerStep::Behavior behavior, RegionsOf&& regions_of) {
    next.clear();
    for (const Piece& p : list.pieces) {
      HAL_RETURN_IF_ERROR(regions_of(list.text(p), regions));
      apply_behavior(regions, behavior, ranges);
      for (const auto& [s, e] : ranges)
        if (e > s) next.push_back({p.offset + uint32_t(s), uint32_t(e - s), p.at_start && s == 0});
    }
    list.pieces.swap(next);
    return ok_status();
  }
};

bool is_hf_punctuation(char32_t c) {
  return (c < 0x80 && std::ispunct(int(c))) || (c >= 0x80 && is_punctuation(c));
}

}  // namespace

Status for_each_in_sequence(const nlohmann::json& j, const char* key, std::string_view where,
                            const std::function<Status(const nlohmann::json&)>& add) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_array())
    return invalid_argument(std::string(where) + ": Sequence without \"" + key + "\"");
  for (const auto& sub : *it) HAL_RETURN_IF_ERROR(add(sub));
  return ok_status();
}

Result<std::string> json_type(const nlohmann::json& j, std::string_view where) {
  const auto it = j.find("type");
  if (!j.is_object() || it == j.end() || !it->is_string())
    return invalid_argument(std::string(where) + ": expected an object with a \"type\"");
  return it->get<std::string>();
}

Result<std::shared_ptr<Regex>> json_pattern(const nlohmann::json& j, std::string_view where) {
  if (j.is_object() && j.contains("String") && j["String"].is_string())
    return std::make_shared<Regex>(Regex::literal(j["String"].get<std::string>()));
  if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
    HAL_ASSIGN_OR_RETURN(Regex re, Regex::compile(j["Regex"].get<std::string>(), where));
    return std::make_shared<Regex>(std::move(re));
  }
  return invalid_argument(std::string(where) +
                          ": pattern must be {\"String\": ...} or "
                          "{\"Regex\": ...}");
}

const ByteLevelAlphabet& byte_level_alphabet() {
  static const ByteLevelAlphabet alphabet = [] {
    ByteLevelAlphabet a;
    std::fill(std::begin(a.decoded), std::end(a.decoded), int16_t(-1));
    // Printable Latin-1 bytes stand for themselves; the others are shifted to U+0100 up.
    int shifted = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const char32_t c = printable ? char32_t(b) : char32_t(256 + shifted++);
      append_char(c, a.encoded[b]);
      a.decoded[c] = int16_t(b);
    }
    return a;
  }();
  return alphabet;
}

// ---- normalizers ----------------------------------------------------------------------------

Result<Normalizer> Normalizer::from_json(const nlohmann::json& j, std::string_view where) {
  Normalizer n;
  if (!j.is_null()) HAL_RETURN_IF_ERROR(n.add(j, where));
  return n;
}

Status Normalizer::add(const nlohmann::json& j, std::string_view where) {
  HAL_ASSIGN_OR_RETURN(const std::string type, json_type(j, where));
  NormalizerStep step;
  if (type == "Sequence") {
    return for_each_in_sequence(j, "normalizers", where,
                                [&](const nlohmann::json& sub) { return add(sub, where); });
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    step.form = type == "NFC"    ? NormalForm::kNFC
                : type == "NFD"  ? NormalForm::kNFD
                : type == "NFKC" ? NormalForm::kNFKC
                                 : NormalForm::kNFKD;
  } else if (type == "Lowercase") {
    step.kind = NormalizerStep::kLowercase;
  } else if (type == "Strip") {
    step.kind = NormalizerStep::kStrip;
    step.strip_left = get_bool(j, "strip_left", true);
    step.strip_right = get_bool(j, "strip_right", true);
  } else if (type == "Prepend") {
    step.kind = NormalizerStep::kPrepend;
    if (!j.contains("prepend") || !j["prepend"].is_string())
      return invalid_argument(std::string(where) + ": Prepend without \"prepend\"");
    step.text = j["prepend"].get<std::string>();
  } else if (type == "Replace") {
    step.kind = NormalizerStep::kReplace;
    if (!j.contains("content") || !j["content"].is_string() || !j.contains("pattern"))
      return invalid_argument(std::string(where) + ": Replace needs \"pattern\" and \"content\"");
    step.text = j["content"].get<std::string>();
    HAL_ASSIGN_OR_RETURN(step.pattern, json_pattern(j["pattern"], where));
  } else {
    return unsupported(where, type, kNormalizers);
  }
  steps_.push_back(std::move(step));
  return ok_status();
}

Result<std::string> Normalizer::apply(std::string_view input) const {
  std::string text(input);
  for (const NormalizerStep& step : steps_) {
    switch (step.kind) {
      case NormalizerStep::kForm: {
        if (is_normalized(step.form, text)) break;
        HAL_ASSIGN_OR_RETURN(text, normalize(step.form, text));
        break;
      }
      case NormalizerStep::kLowercase:
        text = lowercase(text);
        break;
      case NormalizerStep::kStrip: {
        size_t b = 0, e = text.size();
        while (step.strip_left && b < e) {
          size_t len = 0;
          if (!is_whitespace(decode_char(std::string_view(text).substr(b), &len))) break;
          b += len;
        }
        while (step.strip_right && e > b) {
          size_t i = e - 1, len = 0;
          while (i > b && (uint8_t(text[i]) & 0xC0) == 0x80) --i;
          if (!is_whitespace(decode_char(std::string_view(text).substr(i), &len))) break;
          e = i;
        }
        text = text.substr(b, e - b);
        break;
      }
      case NormalizerStep::kPrepend:
        if (!text.empty()) text.insert(0, step.text);
        break;
      case NormalizerStep::kReplace: {
        std::string out;
        size_t prev = 0;
        HAL_RETURN_IF_ERROR(step.pattern->for_each_match(text, [&](size_t s, size_t e) {
          out.append(text, prev, s - prev);
          out += step.text;
          prev = e;
        }));
        out.append(text, prev, std::string::npos);
        text = std::move(out);
        break;
      }
    }
  }
  return text;
}

// ---- pre-tokenizers -----------------------------------------------------------------------------

Result<PreTokenizer> PreTokenizer::from_json(const nlohmann::json& j, std::string_view where) {
  PreTokenizer p;
  if (!j.is_null()) HAL_RETURN_IF_ERROR(p.add(j, where));
  return p;
}

Status PreTokenizer::add(const nlohmann::json& j, std::string_view where) {
  HAL_ASSIGN_OR_RETURN(const std::string type, json_type(j, where));
  PreTokenizerStep step;
  if (type == "Sequence") {
    return for_each_in_sequence(j, "pretokenizers", where,
                                [&](const nlohmann::json& sub) { return add(sub, where); });
  } else if (type == "ByteLevel") {
    step.add_prefix_space = get_bool(j, "add_prefix_space", true);
    step.use_regex = get_bool(j, "use_regex", true);
    if (step.use_regex) {
      HAL_ASSIGN_OR_RETURN(Regex re, Regex::compile(kGpt2Pattern, where));
      step.pattern = std::make_shared<Regex>(std::move(re));
    }
  } else if (type == "Split") {
    step.kind = PreTokenizerStep::kSplit;
    if (!j.contains("pattern"))
      return invalid_argument(std::string(where) + ": Split without \"pattern\"");
    HAL_ASSIGN_OR_RETURN(step.pattern, json_pattern(j["pattern"], where));
    const std::string behavior = j.value("behavior", std::string("Isolated"));
    using B = PreTokenizerStep::Behavior;
    if (behavior == "Removed")
      step.behavior = B::kRemoved;
    else if (behavior == "Isolated")
      step.behavior = B::kIsolated;
    else if (behavior == "MergedWithPrevious")
      step.behavior = B::kMergedWithPrevious;
    else if (behavior == "MergedWithNext")
      step.behavior = B::kMergedWithNext;
    else if (behavior == "Contiguous")
      step.behavior = B::kContiguous;
    else
      return invalid_argument(std::string(where) + ": Split behavior '" + behavior +
                              "' is not one of Removed, Isolated, MergedWithPrevious, "
                              "MergedWithNext, Contiguous");
    step.invert = get_bool(j, "invert", false);
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::kMetaspace;
    if (j.contains("replacement") && j["replacement"].is_string())
      step.replacement = j["replacement"].get<std::string>();
    size_t len = 0;
    if (step.replacement.empty() || !is_valid_utf8(step.replacement) ||
        (decode_char(step.replacement, &len), len != step.replacement.size()))
      return invalid_argument(std::string(where) + ": Metaspace replacement must be one character");
    const std::string scheme = j.value("prepend_scheme", std::string("always"));
    step.prepend = scheme == "first"   ? PreTokenizerStep::kFirst
                   : scheme == "never" ? PreTokenizerStep::kNever
                                       : PreTokenizerStep::kAlways;
    if (scheme != "first" && scheme != "never" && scheme != "always")
      return invalid_argument(std::string(where) + ": Metaspace prepend_scheme '" + scheme +
                              "' is not one of always, first, never");
    // Older files: add_prefix_space=false means never.
    if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean() &&
        !j["add_prefix_space"].get<bool>())
      step.prepend = PreTokenizerStep::kNever;
    step.split = get_bool(j, "split", true);
  } else if (type == "Digits") {
    step.kind = PreTokenizerStep::kDigits;
    step.individual_digits = get_bool(j, "individual_digits", false);
  } else if (type == "Whitespace") {
    step.kind = PreTokenizerStep::kWhitespace;
    HAL_ASSIGN_OR_RETURN(Regex re, Regex::compile(R"(\w+|[^\w\s]+)", where));
    step.pattern = std::make_shared<Regex>(std::move(re));
  } else if (type == "WhitespaceSplit") {
    step.kind = PreTokenizerStep::kWhitespaceSplit;
  } else if (type == "Punctuation") {
    step.kind = PreTokenizerStep::kPunctuation;
    const std::string behavior = j.value("behavior", std::string("Isolated"));
    if (behavior != "Isolated")
      return invalid_argument(std::string(where) + ": Punctuation behavior '" + behavior +
                              "' is not supported (supported: Isolated)");
  } else {
    return unsupported(where, type, kPreTokenizers);
  }
  steps_.push_back(std::move(step));
  return ok_status();
}

bool PreTokenizer::byte_level() const {
  return !steps_.empty() && steps_.back().kind == PreTokenizerStep::kByteLevel;
}

Status PreTokenizer::apply(PieceList& list) const {
  thread_local Splitter splitter;
  using B = PreTokenizerStep::Behavior;
  for (const PreTokenizerStep& step : steps_) {
    switch (step.kind) {
      case PreTokenizerStep::kByteLevel: {
        if (step.add_prefix_space) {
          size_t extra = 0;
          for (const Piece& p : list.pieces) extra += p.length + 1;
          list.arena.reserve(list.arena.size() + extra);
          for (Piece& p : list.pieces) {
            if (list.text(p).starts_with(' ')) continue;
            const uint32_t offset = uint32_t(list.arena.size());
            list.arena.push_back(' ');
            list.arena.append(list.arena, p.offset, p.length);  // capacity reserved above
            p = {offset, p.length + 1, p.at_start};
          }
        }
        if (step.use_regex)
          HAL_RETURN_IF_ERROR(splitter.run(list, B::kIsolated, [&](std::string_view t, auto& r) {
            return regex_regions(*step.pattern, t, false, r);
          }));
        const ByteLevelAlphabet& alphabet = byte_level_alphabet();
        size_t total = 0;
        for (const Piece& p : list.pieces) total += 2 * size_t(p.length);
        list.arena.reserve(list.arena.size() + total);
        for (Piece& p : list.pieces) {
          const uint32_t offset = uint32_t(list.arena.size());
          for (uint32_t k = 0; k < p.length; ++k)
            list.arena += alphabet.encoded[uint8_t(list.arena[p.offset + k])];
          p = {offset, uint32_t(list.arena.size() - offset), p.at_start};
        }
        break;
      }
      case PreTokenizerStep::kSplit:
        HAL_RETURN_IF_ERROR(splitter.run(list, step.behavior, [&](std::string_view t, auto& r) {
          return regex_regions(*step.pattern, t, step.invert, r);
        }));
        break;
      case PreTokenizerStep::kMetaspace: {
        size_t total = 0;
        for (const Piece& p : list.pieces) total += 3 * size_t(p.length) + step.replacement.size();
        list.arena.reserve(list.arena.size() + total);
        for (Piece& p : list.pieces) {
          const uint32_t offset = uint32_t(list.arena.size());
          const std::string_view t = list.text(p);
          const bool starts_with_marker = t.starts_with(step.replacement) || t.starts_with(' ');
          if (!starts_with_marker && (step.prepend == PreTokenizerStep::kAlways ||
                                      (step.prepend == PreTokenizerStep::kFirst && p.at_start)))
            list.arena += step.replacement;
          for (uint32_t k = 0; k < p.length; ++k) {
            const char c = list.arena[p.offset + k];
            if (c == ' ')
              list.arena += step.replacement;
            else
              list.arena.push_back(c);
          }
          p = {offset, uint32_t(list.arena.size() - offset), p.at_start};
        }
        if (step.split) {
          size_t len = 0;
          const char32_t marker = decode_char(step.replacement, &len);
          HAL_RETURN_IF_ERROR(
              splitter.run(list, B::kMergedWithNext, [&](std::string_view t, auto& r) {
                char_regions(
                    t, [&](char32_t c) { return c == marker; }, r);
                return ok_status();
              }));
        }
        break;
      }
      case PreTokenizerStep::kDigits:
        HAL_RETURN_IF_ERROR(splitter.run(list,
                                         step.individual_digits ? B::kIsolated : B::kContiguous,
                                         [&](std::string_view t, auto& r) {
                                           char_regions(
                                               t, [](char32_t c) { return is_numeric(c); }, r);
                                           return ok_status();
                                         }));
        break;
      case PreTokenizerStep::kWhitespace:
        HAL_RETURN_IF_ERROR(splitter.run(list, B::kRemoved, [&](std::string_view t, auto& r) {
          return regex_regions(*step.pattern, t, true, r);
        }));
        break;
      case PreTokenizerStep::kWhitespaceSplit:
        HAL_RETURN_IF_ERROR(splitter.run(list, B::kRemoved, [&](std::string_view t, auto& r) {
          char_regions(
              t, [](char32_t c) { return is_whitespace(c); }, r);
          return ok_status();
        }));
        break;
      case PreTokenizerStep::kPunctuation:
        HAL_RETURN_IF_ERROR(splitter.run(list, B::kIsolated, [&](std::string_view t, auto& r) {
          char_regions(t, is_hf_punctuation, r);
          return ok_status();
        }));
        break;
    }
  }
  return ok_status();
}

// ---- post-processors
// ------------------------------------------------------------------------------

Result<PostProcessor> PostProcessor::from_json(const nlohmann::json& j, std::string_view where) {
  PostProcessor p;
  if (!j.is_null()) HAL_RETURN_IF_ERROR(p.add(j, where));
  return p;
}

Status PostProcessor::add(const nlohmann::json& j, std::string_view where) {
  HAL_ASSIGN_OR_RETURN(const std::string type, json_type(j, where));
  if (type == "Sequence") {
    return for_each_in_sequence(j, "processors", where,
                                [&](const nlohmann::json& sub) { return add(sub, where); });
  }
  if (type == "ByteLevel") return ok_status();  // offsets only; ids unchanged
  if (type == "TemplateProcessing") {
    const auto single = j.find("single");
    const auto specials = j.find("special_tokens");
    if (single == j.end() || !single->is_array())
      return invalid_argument(std::string(where) + ": TemplateProcessing without \"single\"");
    // A later processor in a Sequence replaces what an earlier one added.
    std::vector<TokenId> prefix, suffix;
    bool seen_sequence = false;
    for (const auto& item : *single) {
      if (item.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      if (!item.contains("SpecialToken") || !item["SpecialToken"].contains("id"))
        return invalid_argument(std::string(where) + ": TemplateProcessing item " + item.dump() +
                                " is neither a Sequence nor a SpecialToken");
      const std::string name = item["SpecialToken"]["id"].get<std::string>();
      if (specials == j.end() || !specials->contains(name) || !(*specials)[name].contains("ids") ||
          !(*specials)[name]["ids"].is_array())
        return invalid_argument(std::string(where) + ": TemplateProcessing special token '" + name +
                                "' has no ids in \"special_tokens\"");
      for (const auto& id : (*specials)[name]["ids"]) {
        if (!id.is_number_integer())
          return invalid_argument(std::string(where) + ": special token '" + name +
                                  "' has a non-integer id");
        (seen_sequence ? suffix : prefix).push_back(id.get<TokenId>());
      }
    }
    prefix_ = std::move(prefix);
    suffix_ = std::move(suffix);
    return ok_status();
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    // "cls": ["[CLS]", 101], "sep": ["[SEP]", 102]
    auto token = [&](const char* key) -> Result<TokenId> {
      const auto it = j.find(key);
      if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer())
        return invalid_argument(std::string(where) + ": " + type + " without \"" + key + "\"");
      return (*it)[1].get<TokenId>();
    };
    HAL_ASSIGN_OR_RETURN(const TokenId cls, token("cls"));
    HAL_ASSIGN_OR_RETURN(const TokenId sep, token("sep"));
    prefix_ = {cls};
    suffix_ = {sep};
    return ok_status();
  }
  return unsupported(where, type, kPostProcessors);
}

}  // namespace hal::text::detail
