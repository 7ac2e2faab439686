// The decoders of tokenizer.json: Hugging Face's decode_chain, and the per-token
// surfaces streaming uses (tokenizer.h, TokenSurfaces).
#include <cstdlib>

#include "hal/text/utf8.h"
#include "hf_components.h"

namespace hal::text::detail {

namespace {

const char* kDecoders = "ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence";

// The byte of a "<0xXX>" token (Hugging Face accepts either case of hex digits), or -1.
int byte_token_value(std::string_view t) {
  if (t.size() != 6 || !t.starts_with("<0x") || t[5] != '>') return -1;
  int v = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = t[i];
    const int d = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// A token's characters mapped back to bytes when all are in the byte-level alphabet; its
// own bytes otherwise (an added token written in plain text).
void byte_level_bytes(std::string_view token, std::string& out) {
  const ByteLevelAlphabet& a = byte_level_alphabet();
  const size_t start = out.size();
  size_t i = 0;
  while (i < token.size()) {
    size_t len = 0;
    const char32_t c = decode_char(token.substr(i), &len);
    if (c >= 0x144 || a.decoded[c] < 0) {
      out.resize(start);
      out.append(token);
      return;
    }
    out.push_back(char(a.decoded[c]));
    i += len;
  }
}

// Metaspace: the marker becomes a space, or nothing in the first token.
std::string metaspace(std::string_view token, const DecoderStep& step, bool first) {
  std::string out;
  size_t i = 0;
  while (i < token.size()) {
    if (token.substr(i).starts_with(step.replacement)) {
      if (!(first && !step.prepend_never)) out.push_back(' ');
      i += step.replacement.size();
    } else {
      out.push_back(token[i++]);
    }
  }
  return out;
}

Result<std::string> replace(std::string_view token, const DecoderStep& step) {
  std::string out;
  size_t prev = 0;
  HAL_RETURN_IF_ERROR(step.pattern->for_each_match(token, [&](size_t s, size_t e) {
    out.append(token.substr(prev, s - prev));
    out += step.content;
    prev = e;
  }));
  out.append(token.substr(prev));
  return out;
}

// Strip: up to `start` leading and `stop` trailing copies of the strip character.
std::string strip(std::string_view token, const DecoderStep& step) {
  const std::string_view c = step.strip_char;
  size_t b = 0, e = token.size();
  for (int k = 0; k < step.start && token.substr(b, e - b).starts_with(c); ++k) b += c.size();
  for (int k = 0; k < step.stop && e - b >= c.size() && token.substr(b, e - b).ends_with(c); ++k)
    e -= c.size();
  return std::string(token.substr(b, e - b));
}

}  // namespace

Result<Decoder> Decoder::from_json(const nlohmann::json& j, std::string_view where) {
  Decoder d;
  if (!j.is_null()) HAL_RETURN_IF_ERROR(d.add(j, where));
  return d;
}

Status Decoder::add(const nlohmann::json& j, std::string_view where) {
  HAL_ASSIGN_OR_RETURN(const std::string type, json_type(j, where));
  DecoderStep step;
  if (type == "Sequence") {
    return for_each_in_sequence(j, "decoders", where,
                                [&](const nlohmann::json& sub) { return add(sub, where); });
  } else if (type == "ByteLevel") {
  } else if (type == "Metaspace") {
    step.kind = DecoderStep::kMetaspace;
    if (j.contains("replacement") && j["replacement"].is_string())
      step.replacement = j["replacement"].get<std::string>();
    const std::string scheme = j.value("prepend_scheme", std::string("always"));
    step.prepend_never = scheme == "never" ||
                         (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean() &&
                          !j["add_prefix_space"].get<bool>());
  } else if (type == "Replace") {
    step.kind = DecoderStep::kReplace;
    if (!j.contains("content") || !j["content"].is_string() || !j.contains("pattern"))
      return invalid_argument(std::string(where) + ": Replace needs \"pattern\" and \"content\"");
    step.content = j["content"].get<std::string>();
    HAL_ASSIGN_OR_RETURN(step.pattern, json_pattern(j["pattern"], where));
  } else if (type == "ByteFallback") {
    step.kind = DecoderStep::kByteFallback;
  } else if (type == "Fuse") {
    step.kind = DecoderStep::kFuse;
  } else if (type == "Strip") {
    step.kind = DecoderStep::kStrip;
    step.strip_char = j.value("content", std::string(" "));
    size_t len = 0;
    if (step.strip_char.empty() || !is_valid_utf8(step.strip_char) ||
        (decode_char(step.strip_char, &len), len != step.strip_char.size()))
      return invalid_argument(std::string(where) + ": Strip content must be one character");
    step.start = j.value("start", 0);
    step.stop = j.value("stop", 0);
    if (step.start < 0 || step.stop < 0)
      return invalid_argument(std::string(where) + ": Strip start/stop must be >= 0");
  } else {
    return invalid_argument(std::string(where) + ": type '" + type +
                            "' is not supported (supported: " + kDecoders + ")");
  }
  steps_.push_back(std::move(step));
  return ok_status();
}

Result<std::string> Decoder::decode(std::vector<std::string> tokens) const {
  if (steps_.empty()) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out.push_back(' ');
      out += tokens[i];
    }
    return out;
  }
  for (const DecoderStep& step : steps_) {
    switch (step.kind) {
      case DecoderStep::kByteLevel: {
        std::string bytes;
        for (const std::string& t : tokens) byte_level_bytes(t, bytes);
        tokens.assign(1, utf8_lossy(bytes));
        break;
      }
      case DecoderStep::kMetaspace:
        for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = metaspace(tokens[i], step, i == 0);
        break;
      case DecoderStep::kReplace:
        for (std::string& t : tokens) {
          HAL_ASSIGN_OR_RETURN(t, replace(t, step));
        }
        break;
      case DecoderStep::kByteFallback: {
        // Runs of byte tokens become their text, or one U+FFFD per byte when the run is
        // not valid UTF-8.
        std::vector<std::string> out;
        std::string run;
        size_t run_count = 0;
        auto flush = [&] {
          if (!run_count) return;
          if (is_valid_utf8(run)) {
            out.push_back(run);
          } else {
            for (size_t k = 0; k < run_count; ++k) out.emplace_back(kReplacementChar);
          }
          run.clear();
          run_count = 0;
        };
        for (std::string& t : tokens) {
          const int b = byte_token_value(t);
          if (b >= 0) {
            run.push_back(char(b));
            ++run_count;
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        tokens = std::move(out);
        break;
      }
      case DecoderStep::kFuse: {
        std::string all;
        for (const std::string& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        break;
      }
      case DecoderStep::kStrip:
        for (std::string& t : tokens) t = strip(t, step);
        break;
    }
  }
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

Status Decoder::surfaces(const std::vector<std::string>& tokens, const std::vector<bool>& special,
                         TokenSurfaces& out) const {
  out.first_rule = TokenSurfaces::FirstRule::kFirstToken;
  // Whether a step runs on the whole text (after Fuse or ByteLevel joined the tokens):
  // then Strip strips the ends of the text, and Metaspace sees every marker as being in
  // the first (only) token.
  bool fused = false;
  for (const DecoderStep& step : steps_) {
    if (step.kind == DecoderStep::kFuse || step.kind == DecoderStep::kByteLevel) fused = true;
    if (step.kind == DecoderStep::kStrip && fused) {
      if (step.strip_char.size() != 1)
        return invalid_argument(
            "tokenizer.json: decoder: Strip of a non-ASCII character after "
            "Fuse is not supported");
      out.strip_char = step.strip_char[0];
      out.strip_leading = step.start;
      out.strip_trailing = step.stop;
    }
  }
  const bool no_decoder = steps_.empty();
  for (size_t id = 0; id < tokens.size(); ++id) {
    std::string forms[2];  // [0] rest, [1] first
    for (int first = 0; first < 2; ++first) {
      std::string t = tokens[id];
      bool joined = false;
      for (const DecoderStep& step : steps_) {
        switch (step.kind) {
          case DecoderStep::kByteLevel: {
            std::string bytes;
            byte_level_bytes(t, bytes);
            t = std::move(bytes);
            joined = true;
            break;
          }
          case DecoderStep::kMetaspace:
            t = metaspace(t, step, first || joined);
            break;
          case DecoderStep::kReplace: {
            HAL_ASSIGN_OR_RETURN(t, replace(t, step));
            break;
          }
          case DecoderStep::kByteFallback:
            if (!joined) {
              const int b = byte_token_value(t);
              if (b >= 0) t.assign(1, char(b));
            }
            break;
          case DecoderStep::kFuse:
            joined = true;
            break;
          case DecoderStep::kStrip:
            if (!joined) t = strip(t, step);
            break;
        }
      }
      // Without a decoder Hugging Face joins tokens with spaces.
      forms[first] = no_decoder && !first ? " " + t : std::move(t);
    }
    out.add(forms[0], forms[1], id < special.size() && special[id]);
  }
  return ok_status();
}

}  // namespace hal::text::detail
