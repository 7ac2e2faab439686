#include "added_vocabulary.h"

#include <algorithm>

#include "hal/text/utf8.h"
#include "unicode.h"

namespace hal::text::detail {

namespace {

// The character that ends / starts `s` (valid UTF-8, not empty).
char32_t last_char(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (uint8_t(s[i]) & 0xC0) == 0x80) --i;
  size_t len = 0;
  return decode_char(s.substr(i), &len);
}
char32_t first_char(std::string_view s) {
  size_t len = 0;
  return decode_char(s, &len);
}

// Start of the run of whitespace that ends `s` (s.size() when there is none).
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t i = end - 1;
    while (i > 0 && (uint8_t(s[i]) & 0xC0) == 0x80) --i;
    size_t len = 0;
    if (!is_whitespace(decode_char(s.substr(i), &len))) break;
    end = i;
  }
  return end;
}
// Length of the run of whitespace that starts `s`.
size_t leading_space_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 0;
    if (!is_whitespace(decode_char(s.substr(i), &len))) break;
    i += len;
  }
  return i;
}

}  // namespace

void AddedVocabulary::Trie::add(std::string_view pattern, int32_t token) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (char ch : pattern) {
    const uint8_t b = uint8_t(ch);
    auto& kids = nodes[size_t(node)].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t(-1)));
    if (it != kids.end() && it->first == b) {
      node = it->second;
      continue;
    }
    const int32_t child = int32_t(nodes.size());
    kids.insert(it, {b, child});
    nodes.emplace_back();
    node = child;
  }
  // Two tokens with the same pattern: the first keeps it.
  if (nodes[size_t(node)].token < 0) nodes[size_t(node)].token = token;
  first_byte[uint8_t(pattern[0])] = true;
}

int32_t AddedVocabulary::Trie::longest_at(std::string_view text, size_t at, size_t* length) const {
  int32_t node = 0, best = -1;
  for (size_t i = at; i < text.size(); ++i) {
    const auto& kids = nodes[size_t(node)].children;
    const uint8_t b = uint8_t(text[i]);
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t(-1)));
    if (it == kids.end() || it->first != b) break;
    node = it->second;
    if (nodes[size_t(node)].token >= 0) {
      best = nodes[size_t(node)].token;
      *length = i + 1 - at;
    }
  }
  return best;
}

Status AddedVocabulary::build(
    std::vector<AddedToken> tokens,
    const std::function<Result<std::string>(std::string_view)>& normalize) {
  tokens_ = std::move(tokens);
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& t = tokens_[i];
    by_id_.emplace(t.id, i);
    by_content_.emplace(t.content, i);
    if (t.normalized) {
      auto pattern = normalize(t.content);
      if (!pattern.ok()) return pattern.status();
      normalized_.add(*pattern, int32_t(i));
    } else {
      raw_.add(t.content, int32_t(i));
    }
  }
  return ok_status();
}

const AddedToken* AddedVocabulary::find(TokenId id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::find(std::string_view content) const {
  const auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

void AddedVocabulary::split(std::string_view text, bool normalized, bool parse_special,
                            std::vector<Segment>& out) const {
  const Trie& trie = normalized ? normalized_ : raw_;
  size_t emitted = 0;  // text before this offset is in `out`
  size_t at = 0;
  while (at < text.size()) {
    if (!trie.first_byte[uint8_t(text[at])]) {
      ++at;
      continue;
    }
    size_t length = 0;
    const int32_t index = trie.longest_at(text, at, &length);
    if (index < 0) {
      ++at;
      continue;
    }
    size_t start = at, stop = at + length;
    at = stop;  // matches never overlap, whether or not this one is kept
    const AddedToken& token = tokens_[size_t(index)];
    if (!parse_special && token.special) continue;
    if (token.single_word) {
      const bool word_before = start > 0 && is_word_char(last_char(text.substr(0, start)));
      const bool word_after = stop < text.size() && is_word_char(first_char(text.substr(stop)));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), emitted);
    if (token.rstrip) stop += leading_space_length(text.substr(stop));
    if (emitted < start) out.push_back({emitted, start, -1});
    out.push_back({start, stop, token.id});
    emitted = stop;
    at = std::max(at, stop);
  }
  if (emitted < text.size() || text.empty()) out.push_back({emitted, text.size(), -1});
}

}  // namespace hal::text::detail
