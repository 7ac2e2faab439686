// tools/halctl/run_text.h: the text side of `halctl run`: prompts as text in, generated
// text out, with the model's own tokenizer files (hal/text/model_text.h).
//
//   halctl run --model DIR --prompt "Hello"                  # streams the continuation
//   halctl run --model DIR --prompt "Hi" --chat [--system S]  # the model's chat template
//   halctl run --model DIR --prompt-file a.txt --prompt "b"   # several prompts: one batch
//   halctl run --model DIR --prompt "x" --stop "\n\n" --json  # + generated_text
//
// - Prompts: --prompt (repeatable) and --prompt-file (repeatable, a file's whole content
//   is one prompt), in that order; each is encoded as the model's tokenizer does for a
//   prompt (BOS as its files say). --chat renders [--system, user prompt] with the
//   model's chat template (--chat-template NAME picks a named one) and adds the
//   assistant turn; a template we cannot interpret is an error naming what it uses.
// - Stopping: the model's EOS ids (generation_config.json, else tokenizer_config.json's
//   eos_token) end a row unless --ignore-eos; --stop STR (repeatable) ends a row when
//   its text contains STR, and the text is cut before it.
// - Output: with one prompt and no --json, the prompt and the generated text stream to
//   stdout as tokens come, a character printed once it is whole; batches print each
//   row's text after the run. Special tokens are left out unless --show-special.
//
// How `halctl run` uses it (a few lines in each step): add_run_text_options() in
// parse_request; RunText::create() in check_request when the options hold text, with
// prompt_ids() as the prompts; attach() on the GenerationOptions before generate() and
// complete() after it; add_json() / print() in run_summary.cc. A parallel run
// (run_parallel.h) does the same on rank 0 and gives its other local ranks follower().
//
// Threading: single-threaded, like the command.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common.h"
#include "hal/runtime/session.h"
#include "hal/text/model_text.h"
#include "hal/text/stop_strings.h"
#include "hal/text/text_stream.h"

namespace halctl {

struct RunTextOptions {
  std::vector<std::string> prompts;       // --prompt
  std::vector<std::string> prompt_files;  // --prompt-file
  bool chat = false;                      // --chat
  std::string system;                     // --system
  std::string chat_template;              // --chat-template (name; "" = default)
  std::vector<std::string> stops;         // --stop
  bool ignore_eos = false;                // --ignore-eos
  bool show_special = false;              // --show-special

  // Text prompts were given.
  bool any() const { return !prompts.empty() || !prompt_files.empty(); }
  // The text-only options need text prompts: a usage error message, or "" when fine.
  std::string misuse() const;
};

void add_run_text_options(po::options_description& desc, RunTextOptions& options);

// The text side of `model` (a checkpoint directory, a GGUF file or a built-in name) for
// every halctl command that takes text (run, tokenize, detokenize): hal::text::load_model_text,
// with a clear error for built-in models that have no vocabulary; for a GGUF file,
// hal::text::model_text_from_gguf on the file's tokenizer.* metadata.
hal::Result<hal::text::ModelText> load_model_text_for(const std::string& model);

class RunText {
 public:
  // Loads the model's text side and encodes the prompts (`batch` copies when there is
  // one prompt). Errors: no tokenizer files, malformed files, a prompt that is not valid
  // UTF-8, a chat template that cannot be used, an unreadable --prompt-file.
  static hal::Result<std::unique_ptr<RunText>> create(const RunTextOptions& options,
                                                      const std::string& model, int64_t batch);

  const std::vector<std::vector<int32_t>>& prompt_ids() const { return prompt_ids_; }
  const hal::text::ModelText& model_text() const { return text_; }

  // Adds the stop ids and the per-token callback; with `stream`, echoes the prompt now
  // and prints row 0's text as it comes (and turns off the progress line, which would
  // mix with it on a terminal).
  void attach(hal::runtime::GenerationOptions& go, bool stream);
  // For another rank of a tensor/pipeline-parallel run in this process (its on_token runs
  // on its own thread): the stop decisions attach()'s callback makes, from state of its
  // own, printing nothing; null when no --stop string is given (stop ids end rows in the
  // runtime on every rank alike).
  hal::runtime::TokenFn follower() const;
  // After generate(): flushes what each row's stream held back.
  void complete(const hal::runtime::GenerationResult& r);

  // "stop" (a stop id or stop string ended the row) or "length".
  std::string finish_reason(size_t row) const;
  const std::vector<std::string>& generated_text() const { return generated_; }

  // prompt_text, generated_text, finish_reason (lists for a batch), stop_ids, tokenizer.
  void add_json(nlohmann::json& out) const;
  // Rows not streamed (a batch): each prompt and its text; then what ended each row.
  void print() const;

 private:
  RunTextOptions options_;
  hal::text::ModelText text_;
  std::vector<std::string> prompt_text_;  // what the user gave (before any template)
  std::vector<std::vector<int32_t>> prompt_ids_;
  std::vector<hal::text::TextStream> streams_;
  std::vector<hal::text::StopStrings> stops_;
  std::vector<std::string> generated_;
  std::vector<uint8_t> row_stopped_;  // set by the runtime (stop id) or a stop string
  bool streaming_ = false;

  // One text stream per row, continuing the prompt (special tokens as --show-special says).
  std::vector<hal::text::TextStream> make_streams(size_t rows) const;

  RunText(RunTextOptions options, hal::text::ModelText text)
      : options_(std::move(options)), text_(std::move(text)) {}
};

}  // namespace halctl
