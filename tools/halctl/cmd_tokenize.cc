// halctl tokenize / detokenize: a model's tokenizer on its own, to see what ids a text
// becomes (and what text ids are), with the model's own tokenizer files
// (hal/text/model_text.h): tokenizer.json, tokenizer.model, or a built-in vocabulary.
//
//   halctl tokenize --model gpt2-tiny --text "Hello, world"        # id and piece per line
//   halctl tokenize --model DIR --file prompt.txt --json            # ids, tokens, pieces
//   halctl tokenize --model DIR --text "Hi" --ids-only              # 1,2,3 for --prompt-ids
//   halctl detokenize --model DIR --ids 15496,11,995 [--skip-special] [--json]
//
// tokenize adds the special tokens the model adds to a prompt (BOS; --no-special-tokens
// leaves them out) and recognises special tokens written in the text (<|endoftext|>;
// --no-parse-special keeps them as text), as Hugging Face's tokenizer(text) does.
//
// Exit codes: 0 ok; 2 bad input (no tokenizer files, a malformed tokenizer file, text that
// is not valid UTF-8, ids outside the vocabulary, bad options).
#include <fmt/format.h>

#include "common.h"
#include "hal/file_io.h"
#include "hal/text/model_text.h"
#include "hal/text/utf8.h"
#include "run_text.h"

namespace halctl {

namespace {

// The text a token stands for, readable on one line: valid UTF-8 as is (with \n, \t, \r
// escaped), bytes of an incomplete character as \xNN.
std::string piece_display(const hal::text::Tokenizer& t, hal::text::TokenId id) {
  const std::string_view bytes = t.surfaces().surface(id, false);
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    const hal::text::CharScan s = hal::text::scan_char(bytes.substr(i));
    if (s.kind != hal::text::CharScan::kChar) {
      out += fmt::format("\\x{:02X}", uint8_t(bytes[i]));
      ++i;
      continue;
    }
    const std::string_view c = bytes.substr(i, s.length);
    out += c == "\n" ? "\\n" : c == "\t" ? "\\t" : c == "\r" ? "\\r" : std::string(c);
    i += s.length;
  }
  return out;
}

}  // namespace

int cmd_tokenize(const Args& args) {
  CommonOptions common;
  std::string model = "gpt2-tiny", text, file;
  bool no_special = false, no_parse_special = false, ids_only = false;
  po::options_description desc("halctl tokenize options");
  add_common_options(desc, common);
  desc.add_options()("model", po::value<std::string>(&model)->default_value(model),
                     "checkpoint directory with tokenizer files, or a built-in model name")(
      "text", po::value<std::string>(&text), "the text to tokenize (UTF-8)")(
      "file", po::value<std::string>(&file), "read the text from this file")(
      "no-special-tokens", po::bool_switch(&no_special),
      "do not add the special tokens a prompt gets (BOS)")(
      "no-parse-special", po::bool_switch(&no_parse_special),
      "special token text in the input (<|endoftext|>) stays text")(
      "ids-only", po::bool_switch(&ids_only), "print only the ids, comma-separated");
  po::variables_map vm;
  if (auto stop = parse_args("tokenize", args, desc, {}, vm,
                             "halctl tokenize --model DIR|NAME (--text TEXT | --file FILE) "
                             "[--json] [--ids-only]"))
    return *stop;
  if (vm.count("text") == vm.count("file"))
    return usage_error("tokenize", "give the text with --text or --file (one of them)");
  if (vm.count("file")) {
    auto content = hal::read_regular_file(file, "--file");
    if (!content.ok()) return report_error("tokenize", content.status());
    text = std::move(*content);
  }
  if (auto s = hal::text::validate_utf8(text, vm.count("file") ? "--file" : "--text"); !s.ok())
    return report_error("tokenize", s);
  auto loaded = load_model_text_for(model);
  if (!loaded.ok()) return report_error("tokenize", loaded.status());
  const hal::text::ModelText& mt = *loaded;
  const hal::text::Tokenizer& t = mt.tokenizer();
  hal::Result<std::vector<hal::text::TokenId>> ids =
      t.encode(text, {.add_special_tokens = false, .parse_special = !no_parse_special});
  if (!ids.ok()) return report_error("tokenize", ids.status());
  if (!no_special) {
    std::vector<hal::text::TokenId> full = mt.special_prefix();
    full.insert(full.end(), ids->begin(), ids->end());
    const auto suffix = mt.special_suffix();
    full.insert(full.end(), suffix.begin(), suffix.end());
    ids = std::move(full);
  }

  if (common.json) {
    nlohmann::json out;
    out["model"] = model;
    out["tokenizer"] = t.describe();
    out["ids"] = *ids;
    nlohmann::json tokens = nlohmann::json::array(), pieces = nlohmann::json::array();
    for (const auto id : *ids) {
      tokens.push_back(t.id_to_token(id));
      pieces.push_back(std::string(t.surfaces().surface(id, false)));
    }
    out["tokens"] = tokens;
    out["pieces"] = pieces;
    out["count"] = ids->size();
    out["text_bytes"] = text.size();
    print_json(out);
    return 0;
  }
  if (ids_only) {
    fmt::print("{}\n", fmt::join(*ids, ","));
    return 0;
  }
  for (const auto id : *ids)
    fmt::print("{:>8}  '{}'{}\n", id, piece_display(t, id), t.is_special(id) ? "  (special)" : "");
  fmt::print("{} tokens, {} bytes of text ({})\n", ids->size(), text.size(), t.describe());
  return 0;
}

int cmd_detokenize(const Args& args) {
  CommonOptions common;
  std::string model = "gpt2-tiny", ids_text;
  bool skip_special = false;
  po::options_description desc("halctl detokenize options");
  add_common_options(desc, common);
  desc.add_options()("model", po::value<std::string>(&model)->default_value(model),
                     "checkpoint directory with tokenizer files, or a built-in model name")(
      "ids", po::value<std::string>(&ids_text), "token ids, e.g. 15496,11,995")(
      "skip-special", po::bool_switch(&skip_special),
      "leave special tokens (BOS, EOS, <|im_end|>) out of the text");
  po::positional_options_description pos;
  pos.add("ids", 1);
  po::variables_map vm;
  if (auto stop = parse_args("detokenize", args, desc, pos, vm,
                             "halctl detokenize --model DIR|NAME --ids 1,2,3 [--skip-special] "
                             "[--json]"))
    return *stop;
  if (!vm.count("ids")) return usage_error("detokenize", "give the token ids with --ids");
  auto ids = parse_id_list(ids_text, "--ids");
  if (!ids.ok()) return report_error("detokenize", ids.status());
  auto loaded = load_model_text_for(model);
  if (!loaded.ok()) return report_error("detokenize", loaded.status());
  auto text = loaded->tokenizer().decode(*ids, {.skip_special_tokens = skip_special});
  if (!text.ok()) return report_error("detokenize", text.status().with_context("--ids"));
  if (common.json) {
    nlohmann::json out;
    out["model"] = model;
    out["tokenizer"] = loaded->tokenizer().describe();
    out["ids"] = *ids;
    out["text"] = *text;
    print_json(out);
    return 0;
  }
  fmt::print("{}\n", *text);
  return 0;
}

}  // namespace halctl
