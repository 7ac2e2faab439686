#include "hal/text/text_stream.h"

#include "hal/text/utf8.h"

namespace hal::text {

TextStream::TextStream(const Tokenizer& tokenizer, TextStreamOptions options)
    : surfaces_(tokenizer.surfaces()), options_(options) {
  // Worst case of one call: a held strip run, 3 pending bytes and a token's bytes, each
  // byte possibly replaced by 3 bytes of U+FFFD.
  out_.reserve(3 * (surfaces_.max_length() + 4) + size_t(surfaces_.strip_trailing) + 16);
  pending_.reserve(8);
  reset();
}

void TextStream::reset() {
  first_pending_ = !options_.continuation;
  strip_leading_left_ = options_.continuation ? 0 : surfaces_.strip_leading;
  held_strip_ = 0;
  pending_.clear();
  out_.clear();
}

// One whole character (or U+FFFD) leaves the stream: the text's leading and trailing
// strip characters are applied here.
void TextStream::emit_char(std::string_view c) {
  const bool is_strip = c.size() == 1 && c[0] == surfaces_.strip_char;
  if (strip_leading_left_ > 0) {
    if (is_strip) {
      --strip_leading_left_;
      return;
    }
    strip_leading_left_ = 0;
  }
  if (surfaces_.strip_trailing > 0) {
    if (is_strip) {
      // Hold up to strip_trailing of them: they are dropped if the text ends here.
      if (held_strip_ == surfaces_.strip_trailing)
        out_.push_back(surfaces_.strip_char);
      else
        ++held_strip_;
      return;
    }
    out_.append(size_t(held_strip_), surfaces_.strip_char);
    held_strip_ = 0;
  }
  out_.append(c);
}

void TextStream::emit(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    if (!pending_.empty()) {
      // Complete (or give up on) the held character one byte at a time.
      pending_.push_back(bytes[i++]);
      const CharScan s = scan_char(pending_);
      if (s.kind == CharScan::kIncomplete) continue;
      if (s.kind == CharScan::kChar) {
        emit_char(pending_);
        pending_.clear();
        continue;
      }
      // The held bytes were a valid prefix the new byte does not continue: they are one
      // maximal ill-formed subpart, and the new byte is looked at again on its own.
      emit_char(kReplacementChar);
      pending_.clear();
      --i;
      continue;
    }
    const CharScan s = scan_char(bytes.substr(i));
    if (s.kind == CharScan::kChar) {
      emit_char(bytes.substr(i, s.length));
      i += s.length;
    } else if (s.kind == CharScan::kIncomplete) {
      pending_.assign(bytes.substr(i));
      i = bytes.size();
    } else {
      emit_char(kReplacementChar);
      i += s.length;
    }
  }
}

std::string_view TextStream::push(TokenId id) {
  out_.clear();
  if (id < 0 || size_t(id) >= surfaces_.size()) return out_;
  if (options_.skip_special_tokens && surfaces_.special(id)) return out_;
  const bool first = first_pending_;
  const std::string_view bytes = surfaces_.surface(id, first);
  switch (surfaces_.first_rule) {
    case TokenSurfaces::FirstRule::kFirstToken:
      first_pending_ = false;
      break;
    case TokenSurfaces::FirstRule::kFirstPiece:
    case TokenSurfaces::FirstRule::kUntilText:
      if (surfaces_.special(id)) {
        // SentencePiece decodes the text between control pieces separately: the text
        // after one starts anew (unless the stream continues earlier text).
        first_pending_ = !options_.continuation;
      } else if (surfaces_.first_rule == TokenSurfaces::FirstRule::kFirstPiece || !bytes.empty()) {
        first_pending_ = false;
      }
      break;
  }
  emit(bytes);
  return out_;
}

std::string_view TextStream::finish() {
  out_.clear();
  if (!pending_.empty()) {
    emit_char(kReplacementChar);
    pending_.clear();
  }
  // Trailing strip characters withheld at the very end are what the decoder strips.
  held_strip_ = 0;
  return out_;
}

}  // namespace hal::text
