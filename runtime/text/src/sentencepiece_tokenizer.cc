#include "hal/text/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>

#include "hal/file_io.h"
#include "hal/text/utf8.h"

namespace hal::text {

namespace {

// SentencePiece's default text for the unknown piece when it is not the first.
constexpr std::string_view kUnknownSurface = " \xE2\x81\x87 ";
constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(std::string name, SentencePieceOptions options)
      : name_(std::move(name)), options_(options) {}

  Status init(std::string_view model_bytes) {
    const auto status = sp_.LoadFromSerializedProto(model_bytes);
    if (!status.ok())
      return invalid_argument(name_ + ": not a SentencePiece model: " + status.ToString());
    vocab_size_ = sp_.GetPieceSize();
    if (vocab_size_ <= 0) return invalid_argument(name_ + ": SentencePiece model has no pieces");
    if (options_.add_bos && sp_.bos_id() < 0)
      return invalid_argument(name_ + ": add_bos_token is set but the model has no BOS piece");
    if (options_.add_eos && sp_.eos_id() < 0)
      return invalid_argument(name_ + ": add_eos_token is set but the model has no EOS piece");
    for (int id = 0; id < vocab_size_; ++id) {
      if (sp_.IsControl(id)) {
        if (!sp_.IdToPiece(id).empty()) controls_.emplace_back(sp_.IdToPiece(id), id);
        surfaces_.add(sp_.IdToPiece(id), sp_.IdToPiece(id), true);
        continue;
      }
      std::string rest;
      std::string first;
      if (sp_.IsByte(id)) {
        rest.assign(1, char(std::stoi(sp_.IdToPiece(id).substr(3, 2), nullptr, 16)));
        first = rest;
      } else if (sp_.IsUnknown(id)) {
        rest = kUnknownSurface;
        first = sp_.DecodeIds({id});
      } else if (sp_.IsUnused(id)) {
        // Unused pieces decode to nothing.
      } else {
        const std::string& piece = sp_.IdToPiece(id);
        size_t at = 0;
        while (at < piece.size()) {
          if (std::string_view(piece).substr(at).starts_with(kSpaceMarker)) {
            rest.push_back(' ');
            at += kSpaceMarker.size();
          } else {
            rest.push_back(piece[at++]);
          }
        }
        first = sp_.DecodeIds({id});
      }
      surfaces_.add(rest, first, false);
    }
    // Whether decoding strips the space marker of the first piece only (add_dummy_prefix)
    // or of every piece while the text is empty (remove_extra_whitespaces): the model's
    // normalizer spec says, and decoding two space pieces shows which without reading
    // the model's protobuf ourselves.
    surfaces_.first_rule = TokenSurfaces::FirstRule::kFirstPiece;
    const int space = sp_.PieceToId(kSpaceMarker);
    if (space != sp_.unk_id() && sp_.IdToPiece(space) == kSpaceMarker &&
        sp_.DecodeIds({space, space}).empty())
      surfaces_.first_rule = TokenSurfaces::FirstRule::kUntilText;
    // Longest control pieces first, so that a control piece that begins another is not
    // preferred over it.
    std::sort(controls_.begin(), controls_.end(),
              [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    return ok_status();
  }

  std::string describe() const override {
    return name_ + " (SentencePiece, " + std::to_string(vocab_size_) + " pieces)";
  }
  int32_t vocab_size() const override { return vocab_size_; }

  Result<std::vector<TokenId>> encode(std::string_view text,
                                      const EncodeOptions& options) const override {
    HAL_RETURN_IF_ERROR(validate_utf8(text, "text"));
    std::vector<TokenId> ids;
    if (options.add_special_tokens) ids = special_prefix();
    size_t start = 0;
    while (start <= text.size()) {
      // The next control piece written in the text.
      size_t at = std::string_view::npos;
      const std::pair<std::string, int>* control = nullptr;
      if (options.parse_special) {
        for (const auto& c : controls_) {
          const size_t pos = text.find(c.first, start);
          if (pos < at) {
            at = pos;
            control = &c;
          }
        }
      }
      const std::string_view chunk =
          text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start);
      if (!chunk.empty()) {
        std::vector<int> piece_ids;
        const auto status = sp_.Encode(chunk, &piece_ids);
        if (!status.ok()) return invalid_argument(name_ + ": encode failed: " + status.ToString());
        ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
      }
      if (!control) break;
      ids.push_back(control->second);
      start = at + control->first.size();
    }
    if (options.add_special_tokens) {
      const auto suffix = special_suffix();
      ids.insert(ids.end(), suffix.begin(), suffix.end());
    }
    return ids;
  }

  Result<std::string> decode(std::span<const TokenId> ids,
                             const DecodeOptions& options) const override {
    HAL_RETURN_IF_ERROR(check_ids(ids, vocab_size_));
    std::string out;
    std::vector<int> run;
    auto flush = [&]() -> Status {
      if (run.empty()) return ok_status();
      std::string text;
      const auto status = sp_.Decode(run, &text);
      if (!status.ok()) return invalid_argument(name_ + ": decode failed: " + status.ToString());
      out += text;
      run.clear();
      return ok_status();
    };
    for (const TokenId id : ids) {
      if (sp_.IsControl(id)) {
        if (options.skip_special_tokens) continue;
        HAL_RETURN_IF_ERROR(flush());
        out += sp_.IdToPiece(id);
        continue;
      }
      run.push_back(id);
    }
    HAL_RETURN_IF_ERROR(flush());
    return out;
  }

  std::string id_to_token(TokenId id) const override {
    if (id < 0 || id >= vocab_size_) return {};
    return sp_.IdToPiece(id);
  }
  std::optional<TokenId> token_to_id(std::string_view token) const override {
    const int id = sp_.PieceToId(token);
    // PieceToId answers unk_id for unknown pieces; only the unknown piece itself is it.
    if (id == sp_.unk_id() && token != sp_.IdToPiece(id)) return std::nullopt;
    return id;
  }
  bool is_special(TokenId id) const override {
    return id >= 0 && id < vocab_size_ && sp_.IsControl(id);
  }
  const TokenSurfaces& surfaces() const override { return surfaces_; }
  std::vector<TokenId> special_prefix() const override {
    if (options_.add_bos) return {sp_.bos_id()};
    return {};
  }
  std::vector<TokenId> special_suffix() const override {
    if (options_.add_eos) return {sp_.eos_id()};
    return {};
  }

 private:
  std::string name_;
  SentencePieceOptions options_;
  sentencepiece::SentencePieceProcessor sp_;
  int32_t vocab_size_ = 0;
  std::vector<std::pair<std::string, int>> controls_;
  TokenSurfaces surfaces_;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> parse_sentencepiece_tokenizer(
    std::string_view model_bytes, std::string_view name, const SentencePieceOptions& options) {
  auto t = std::make_unique<SentencePieceTokenizer>(std::string(name), options);
  HAL_RETURN_IF_ERROR(t->init(model_bytes));
  return std::unique_ptr<Tokenizer>(std::move(t));
}

Result<std::unique_ptr<Tokenizer>> load_sentencepiece_tokenizer(
    const std::string& path, const SentencePieceOptions& options) {
  HAL_ASSIGN_OR_RETURN(const std::string bytes,
                       hal::read_regular_file(path, "SentencePiece model"));
  return parse_sentencepiece_tokenizer(bytes, path, options);
}

}  // namespace hal::text
