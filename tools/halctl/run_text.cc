// The text side of `halctl run` (run_text.h).
#include "run_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "hal/runtime/gguf.h"
#include "hal/text/utf8.h"

namespace halctl {

namespace {

void write_stdout(std::string_view s) {
  if (s.empty()) return;
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

// A stop string as the user would type it in a message: newlines and tabs escaped.
std::string shown(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '\n' ? "\\n" : c == '\t' ? "\\t" : std::string(1, c);
  return out;
}

// A GGUF file's tokenizer.* metadata as the text library takes it (gguf_vocab.h): integers
// widened to int64_t (a u64 beyond that range is an error naming the key), floats to double.
hal::Result<hal::text::GgufMetadata> gguf_text_metadata(const hal::runtime::GgufHeader& h) {
  hal::text::GgufMetadata md;
  using hal::runtime::GgufType;
  for (const auto& [key, v] : h.metadata) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    if (v.type == GgufType::kArray) {
      if (v.elem == GgufType::kString) {
        md.values[key] = v.strings;
      } else if (v.elem == GgufType::kF32 || v.elem == GgufType::kF64) {
        md.values[key] = v.floats;
      } else if (v.elem == GgufType::kBool) {
        md.values[key] = v.ints;  // 0/1
      } else if (v.elem != GgufType::kArray) {
        HAL_ASSIGN_OR_RETURN(std::vector<int64_t> ints, h.get_int_array(key));
        md.values[key] = std::move(ints);
      }
    } else if (v.type == GgufType::kString) {
      md.values[key] = v.s;
    } else if (v.type == GgufType::kBool) {
      md.values[key] = v.b;
    } else if (v.is_float()) {
      md.values[key] = v.f;
    } else {
      HAL_ASSIGN_OR_RETURN(int64_t i, h.get_int(key));
      md.values[key] = i;
    }
  }
  return md;
}

}  // namespace

std::string RunTextOptions::misuse() const {
  if (any()) return "";
  if (chat) return "--chat needs a text prompt (--prompt or --prompt-file)";
  if (!stops.empty()) return "--stop needs a text prompt (--prompt or --prompt-file)";
  if (!system.empty()) return "--system needs --chat and a text prompt";
  return "";
}

void add_run_text_options(po::options_description& desc, RunTextOptions& o) {
  desc.add_options()("prompt", po::value<std::vector<std::string>>(&o.prompts)->composing(),
                     "prompt text (repeatable: several prompts run as one batch); the "
                     "generated text streams to stdout")(
      "prompt-file", po::value<std::vector<std::string>>(&o.prompt_files)->composing(),
      "read a prompt from this file (repeatable)")(
      "chat", po::bool_switch(&o.chat),
      "apply the model's chat template (tokenizer_config.json) to each prompt as a user turn")(
      "system", po::value<std::string>(&o.system), "with --chat: a system message first")(
      "chat-template", po::value<std::string>(&o.chat_template),
      "with --chat: the model's template of this name (default: its default template)")(
      "stop", po::value<std::vector<std::string>>(&o.stops)->composing(),
      "end a prompt's generation when its text contains this string (repeatable; not shown)")(
      "ignore-eos", po::bool_switch(&o.ignore_eos),
      "do not stop at the model's end-of-sequence ids (generation_config.json)")(
      "show-special", po::bool_switch(&o.show_special),
      "print special tokens (<|eot_id|>, </s>) in the generated text");
}

hal::Result<hal::text::ModelText> load_model_text_for(const std::string& model) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(model, ec)) {
    // A GGUF file carries its vocabulary in its metadata.
    HAL_ASSIGN_OR_RETURN(auto file, hal::runtime::GgufFile::open(model));
    HAL_ASSIGN_OR_RETURN(hal::text::GgufMetadata md, gguf_text_metadata(file->header()));
    return hal::text::model_text_from_gguf(md, model);
  }
  auto loaded = hal::text::load_model_text(model);
  if (!loaded.ok()) {
    const auto builtins = hal::runtime::builtin_model_names();
    if (std::find(builtins.begin(), builtins.end(), model) != builtins.end())
      return hal::invalid_argument("built-in model '" + model +
                                   "' has no vocabulary, so it takes token ids (--prompt-ids), "
                                   "not text");
  }
  return loaded;
}

hal::Result<std::unique_ptr<RunText>> RunText::create(const RunTextOptions& options,
                                                      const std::string& model, int64_t batch) {
  HAL_ASSIGN_OR_RETURN(hal::text::ModelText text, load_model_text_for(model));
  std::unique_ptr<RunText> rt(new RunText(options, std::move(text)));
  std::vector<std::string> prompts = options.prompts;
  for (const std::string& path : options.prompt_files) {
    HAL_ASSIGN_OR_RETURN(std::string p, hal::read_regular_file(path, "--prompt-file"));
    prompts.push_back(std::move(p));
  }
  if (prompts.size() == 1 && batch > 1) prompts.assign(size_t(batch), prompts[0]);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string what = prompts.size() > 1 ? fmt::format("prompt {}", i) : "the prompt";
    HAL_RETURN_IF_ERROR(hal::text::validate_utf8(prompts[i], what));
    std::vector<int32_t> ids;
    if (options.chat) {
      nlohmann::ordered_json messages = nlohmann::ordered_json::array();
      if (!options.system.empty())
        messages.push_back({{"role", "system"}, {"content", options.system}});
      messages.push_back({{"role", "user"}, {"content", prompts[i]}});
      HAL_ASSIGN_OR_RETURN(
          const std::string rendered,
          rt->text_.apply_chat_template(messages, true, {}, options.chat_template));
      // The template writes BOS itself: encoded without adding special tokens, as
      // transformers' apply_chat_template does.
      HAL_ASSIGN_OR_RETURN(ids, rt->text_.tokenizer().encode(rendered));
    } else {
      HAL_ASSIGN_OR_RETURN(ids, rt->text_.encode_prompt(prompts[i]));
    }
    if (ids.empty())
      return hal::invalid_argument(what +
                                   " is empty: it encodes to no tokens (the model adds "
                                   "no BOS); give some text");
    rt->prompt_ids_.push_back(std::move(ids));
  }
  rt->prompt_text_ = std::move(prompts);
  return rt;
}

void RunText::attach(hal::runtime::GenerationOptions& go, bool stream) {
  const size_t rows = prompt_ids_.size();
  streams_ = make_streams(rows);
  stops_.assign(rows, hal::text::StopStrings(options_.stops));
  generated_.assign(rows, "");
  row_stopped_.assign(rows, 0);
  if (!options_.ignore_eos)
    for (const int32_t id : text_.stop_ids()) go.stop_token_ids.push_back(id);
  streaming_ = stream;
  if (stream) {
    go.progress = nullptr;
    if (!options_.chat) write_stdout(prompt_text_[0]);
  }
  go.on_token = [this](int64_t row, int32_t token) {
    const size_t b = size_t(row);
    const std::string_view piece = stops_[b].push(streams_[b].push(token));
    generated_[b] += piece;
    if (streaming_ && b == 0) write_stdout(piece);
    return !stops_[b].stopped();
  };
}

std::vector<hal::text::TextStream> RunText::make_streams(size_t rows) const {
  std::vector<hal::text::TextStream> streams;
  streams.reserve(rows);
  // The generated text continues the prompt: no token of it is the first of the text.
  for (size_t b = 0; b < rows; ++b)
    streams.emplace_back(text_.tokenizer(),
                         hal::text::TextStreamOptions{.skip_special_tokens = !options_.show_special,
                                                      .continuation = true});
  return streams;
}

hal::runtime::TokenFn RunText::follower() const {
  if (options_.stops.empty()) return nullptr;
  struct Rows {
    std::vector<hal::text::TextStream> streams;
    std::vector<hal::text::StopStrings> stops;
  };
  auto rows =
      std::make_shared<Rows>(Rows{make_streams(prompt_ids_.size()),
                                  std::vector<hal::text::StopStrings>(
                                      prompt_ids_.size(), hal::text::StopStrings(options_.stops))});
  return [rows](int64_t row, int32_t token) {
    const size_t b = size_t(row);
    rows->stops[b].push(rows->streams[b].push(token));
    return !rows->stops[b].stopped();
  };
}

void RunText::complete(const hal::runtime::GenerationResult& r) {
  for (size_t b = 0; b < generated_.size(); ++b) {
    std::string tail(stops_[b].push(streams_[b].finish()));
    tail += stops_[b].finish();
    generated_[b] += tail;
    if (streaming_ && b == 0) write_stdout(tail + "\n");
    row_stopped_[b] = (b < r.stopped.size() && r.stopped[b]) || stops_[b].stopped();
  }
}

std::string RunText::finish_reason(size_t row) const {
  return row < row_stopped_.size() && row_stopped_[row] ? "stop" : "length";
}

void RunText::add_json(nlohmann::json& out) const {
  nlohmann::json reasons = nlohmann::json::array();
  for (size_t b = 0; b < generated_.size(); ++b) reasons.push_back(finish_reason(b));
  // Text is passed through print_json's replacement of invalid UTF-8; ours is valid.
  if (generated_.size() == 1) {
    out["prompt_text"] = prompt_text_[0];
    out["generated_text"] = generated_[0];
    out["finish_reason"] = reasons[0];
  } else {
    out["prompt_text"] = prompt_text_;
    out["generated_text"] = generated_;
    out["finish_reason"] = reasons;
  }
  out["stop_ids"] = options_.ignore_eos ? std::vector<int32_t>() : text_.stop_ids();
  if (!options_.stops.empty()) out["stop_strings"] = options_.stops;
  out["tokenizer"] = text_.tokenizer().describe();
  out["chat"] = options_.chat;
}

void RunText::print() const {
  for (size_t b = 0; b < generated_.size(); ++b) {
    if (!(streaming_ && b == 0)) {
      const std::string tag = generated_.size() > 1 ? fmt::format("[{}] ", b) : "";
      fmt::print("{}{}{}\n", tag, options_.chat ? "" : prompt_text_[b], generated_[b]);
    }
  }
  for (size_t b = 0; b < generated_.size(); ++b) {
    const std::string tag = generated_.size() > 1 ? fmt::format("[{}] ", b) : "";
    std::string why = finish_reason(b) == "length" ? "length (--max-new-tokens)" : "stop id";
    if (stops_[b].stopped()) why = "stop string \"" + shown(stops_[b].matched()) + "\"";
    fmt::print("finish     {}{}, {} prompt tokens\n", tag, why, prompt_ids_[b].size());
  }
}

}  // namespace halctl
