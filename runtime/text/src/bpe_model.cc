#include "bpe_model.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <queue>

#include "hal/text/utf8.h"

namespace hal::text::detail {

namespace {

uint64_t pair_key(TokenId a, TokenId b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

std::atomic<uint64_t> next_serial{1};

// Hugging Face caches words shorter than 256 bytes, up to 10,000 of them.
constexpr size_t kCacheMaxWordBytes = 256;
constexpr size_t kCacheCapacity = 10000;

// One thread's cached words of one model: ids stored back to back in `ids`.
struct WordCache {
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash, StringEq> words;
  std::vector<TokenId> ids;
};

WordCache& thread_cache(uint64_t serial) {
  // Models are few; a thread that has seen many (tests) drops the caches of old ones.
  thread_local std::vector<std::pair<uint64_t, std::unique_ptr<WordCache>>> caches;
  for (auto& [s, cache] : caches)
    if (s == serial) return *cache;
  if (caches.size() >= 8) caches.erase(caches.begin());
  caches.emplace_back(serial, std::make_unique<WordCache>());
  return *caches.back().second;
}

// The merge loop's working state, reused by each thread so a word allocates nothing.
struct Symbol {
  TokenId id;
  int32_t prev, next;
  uint32_t len;  // 0: merged into the symbol on its left
};
struct Candidate {
  uint32_t rank;
  int32_t pos;
  TokenId merged;
  bool operator<(const Candidate& o) const {  // std::priority_queue pops the largest
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};
struct MergeScratch {
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
};

}  // namespace

Result<BpeModel> BpeModel::create(std::vector<std::pair<std::string, TokenId>> vocab,
                                  std::vector<MergeRule> merges, BpeOptions options,
                                  std::string_view what) {
  BpeModel m;
  m.options_ = std::move(options);
  m.serial_ = next_serial.fetch_add(1);
  // Ids index a dense table, so a few tokens with ids in the millions would cost gigabytes.
  // Real vocabularies number their tokens from 0 with few gaps; past twice the count (plus
  // room for a tiny vocabulary's reserved ids) the file is malformed, not sparse.
  const int64_t id_limit = 2 * int64_t(vocab.size()) + 256;
  TokenId max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0)
      return invalid_argument(std::string(what) + ": token '" + token + "' has negative id " +
                              std::to_string(id));
    if (id >= id_limit)
      return invalid_argument(std::string(what) + ": token '" + token + "' has id " +
                              std::to_string(id) + ", but the vocabulary has only " +
                              std::to_string(vocab.size()) + " tokens (ids must be below " +
                              std::to_string(id_limit) + ")");
    max_id = std::max(max_id, id);
  }
  m.tokens_.resize(size_t(max_id + 1));
  m.vocab_.reserve(vocab.size());
  for (auto& [token, id] : vocab) {
    m.tokens_[size_t(id)] = token;
    m.vocab_.emplace(std::move(token), id);
  }
  m.small_char_ids_.assign(0x800, -1);
  for (const auto& [token, id] : m.vocab_) {
    if (token.empty() || !is_valid_utf8(token)) continue;
    size_t len = 0;
    const char32_t c = decode_char(token, &len);
    if (len == token.size() && c < 0x800) m.small_char_ids_[c] = id;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const auto it = m.vocab_.find(std::string_view(name));
    m.byte_ids_[b] = it == m.vocab_.end() ? -1 : it->second;
  }
  if (m.options_.unk_token) {
    const auto it = m.vocab_.find(*m.options_.unk_token);
    if (it == m.vocab_.end())
      return invalid_argument(std::string(what) + ": unk_token '" + *m.options_.unk_token +
                              "' is not in the vocabulary");
    m.unk_id_ = it->second;
  }
  const size_t prefix = m.options_.continuing_subword_prefix.size();
  m.merges_.reserve(merges.size());
  for (const MergeRule& rule : merges) {
    const auto a = m.vocab_.find(rule.left), b = m.vocab_.find(rule.right);
    // The merged token drops the right part's continuing-subword prefix.
    std::string merged = rule.left;
    if (prefix && rule.right.compare(0, prefix, m.options_.continuing_subword_prefix) == 0)
      merged += rule.right.substr(prefix);
    else
      merged += rule.right;
    const auto c = m.vocab_.find(merged);
    if (a == m.vocab_.end() || b == m.vocab_.end() || c == m.vocab_.end())
      return invalid_argument(std::string(what) + ": merge '" + rule.left + " " + rule.right +
                              "' uses a token that is not in the vocabulary ('" +
                              (a == m.vocab_.end()   ? rule.left
                               : b == m.vocab_.end() ? rule.right
                                                     : merged) +
                              "')");
    // The first rule for a pair wins, as in a map built in rank order.
    m.merges_.emplace(pair_key(a->second, b->second), MergeValue{rule.rank, c->second});
  }
  return m;
}

std::optional<TokenId> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::string_view BpeModel::id_to_token(TokenId id) const {
  if (id < 0 || size_t(id) >= tokens_.size()) return {};
  return tokens_[size_t(id)];
}

TokenId BpeModel::char_id(std::string_view c, bool first, bool last, bool* found) const {
  const bool affixed = (!first && !options_.continuing_subword_prefix.empty()) ||
                       (last && !options_.end_of_word_suffix.empty());
  if (!affixed) {
    size_t len = 0;
    const char32_t cp = decode_char(c, &len);
    if (cp < 0x800) {
      const TokenId id = small_char_ids_[cp];
      *found = id >= 0;
      return id;
    }
    const auto it = vocab_.find(c);
    *found = it != vocab_.end();
    return *found ? it->second : -1;
  }
  std::string s;
  if (!first) s += options_.continuing_subword_prefix;
  s += c;
  if (last) s += options_.end_of_word_suffix;
  const auto it = vocab_.find(s);
  *found = it != vocab_.end();
  return *found ? it->second : -1;
}

void BpeModel::merge_word(std::string_view word, std::vector<TokenId>& out) const {
  thread_local MergeScratch scratch;
  std::vector<Symbol>& symbols = scratch.symbols;
  symbols.clear();
  auto push = [&](TokenId id, uint32_t len) {
    const int32_t n = int32_t(symbols.size());
    symbols.push_back({id, n - 1, n + 1, len});
  };
  // The initial symbols: characters, byte tokens, or (fused) unknown tokens.
  TokenId pending_unk = -1;
  uint32_t pending_unk_len = 0;
  size_t i = 0;
  while (i < word.size()) {
    const CharScan scan = scan_char(word.substr(i));
    const size_t len = scan.kind == CharScan::kChar ? scan.length : 1;
    const std::string_view c = word.substr(i, len);
    const bool first = i == 0, last = i + len == word.size();
    i += len;
    bool found = false;
    const TokenId id = char_id(c, first, last, &found);
    if (found) {
      if (pending_unk >= 0) push(pending_unk, pending_unk_len);
      pending_unk = -1;
      push(id, uint32_t(len));
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (char b : c) all &= byte_ids_[uint8_t(b)] >= 0;
      if (all) {
        // As in Hugging Face, a byte token does not flush a pending unknown token.
        for (char b : c) push(byte_ids_[uint8_t(b)], 1);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk >= 0 && options_.fuse_unk) {
        pending_unk_len += uint32_t(len);
      } else {
        if (pending_unk >= 0) push(pending_unk, pending_unk_len);
        pending_unk = unk_id_;
        pending_unk_len = uint32_t(len);
      }
    }
    // Without an unknown token the character is dropped, as in Hugging Face.
  }
  if (pending_unk >= 0) push(pending_unk, pending_unk_len);
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::vector<Candidate>& heap = scratch.heap;
  heap.clear();
  auto consider = [&](int32_t pos) {
    const int32_t next = symbols[size_t(pos)].next;
    if (next < 0) return;
    const auto it = merges_.find(pair_key(symbols[size_t(pos)].id, symbols[size_t(next)].id));
    if (it == merges_.end()) return;
    heap.push_back({it->second.rank, pos, it->second.merged});
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t p = 0; p + 1 < int32_t(symbols.size()); ++p) consider(p);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[size_t(top.pos)];
    if (left.len == 0 || left.next < 0) continue;
    const Symbol right = symbols[size_t(left.next)];
    // Skip entries made stale by an earlier merge of either side.
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || it->second.merged != top.merged) continue;
    left.id = top.merged;
    left.len += right.len;
    symbols[size_t(left.next)].len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[size_t(right.next)].prev = top.pos;
    if (left.prev >= 0) consider(left.prev);
    consider(top.pos);
  }
  for (const Symbol& s : symbols)
    if (s.len) out.push_back(s.id);
}

void BpeModel::tokenize(std::string_view word, std::vector<TokenId>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (word.size() >= kCacheMaxWordBytes) {
    merge_word(word, out);
    return;
  }
  WordCache& cache = thread_cache(serial_);
  const auto hit = cache.words.find(word);
  if (hit != cache.words.end()) {
    const auto [offset, count] = hit->second;
    out.insert(out.end(), cache.ids.begin() + offset, cache.ids.begin() + offset + count);
    return;
  }
  const size_t before = out.size();
  merge_word(word, out);
  if (cache.words.size() < kCacheCapacity) {
    const uint32_t offset = uint32_t(cache.ids.size());
    cache.ids.insert(cache.ids.end(), out.begin() + std::ptrdiff_t(before), out.end());
    cache.words.emplace(std::string(word), std::make_pair(offset, uint32_t(out.size() - before)));
  }
}

}  // namespace hal::text::detail
