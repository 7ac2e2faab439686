#include "regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace hal::text::detail {

namespace {

pcre2_code* as_code(const std::shared_ptr<void>& p) { return static_cast<pcre2_code*>(p.get()); }

// Per thread: one match-data block (only the overall match's offsets are read) and a
// match context whose JIT stack may grow to 16 MiB, so long runs of one character class
// (a 1 MB line of letters) still match instead of hitting the default 32 KiB stack.
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  ThreadMatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~ThreadMatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};
ThreadMatchState& thread_match_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

Result<Regex> Regex::compile(std::string_view pattern, std::string_view what) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    return invalid_argument(std::string(what) + ": regex '" + std::string(pattern) +
                            "' does not compile at offset " + std::to_string(offset) + ": " +
                            reinterpret_cast<const char*>(message));
  }
  // JIT where the platform has it; the interpreter gives the same matches otherwise.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  Regex r;
  r.code_ =
      std::shared_ptr<void>(code, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
  r.pattern_ = std::string(pattern);
  return r;
}

Regex Regex::literal(std::string_view text) {
  Regex r;
  r.is_literal_ = true;
  r.literal_ = std::string(text);
  r.pattern_ = std::string(text);
  return r;
}

int Regex::find(std::string_view text, size_t from, size_t* start, size_t* end) const {
  if (is_literal_) {
    if (literal_.empty()) return 0;  // an empty literal matches nothing (as in HF)
    const size_t at = text.find(literal_, from);
    if (at == std::string_view::npos) return 0;
    *start = at;
    *end = at + literal_.size();
    return 1;
  }
  if (from > text.size()) return 0;
  ThreadMatchState& state = thread_match_state();
  const int rc = pcre2_match(as_code(code_), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                             from, PCRE2_NO_UTF_CHECK, state.data, state.context);
  if (rc == PCRE2_ERROR_NOMATCH) return 0;
  if (rc < 0) return rc;
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
  *start = ov[0];
  *end = ov[1];
  return 1;
}

Status Regex::match_error(int code, size_t text_size) const {
  PCRE2_UCHAR message[256];
  pcre2_get_error_message(code, message, sizeof message);
  return invalid_argument("regex '" + pattern_ + "' failed on " + std::to_string(text_size) +
                          " bytes of text: " + reinterpret_cast<const char*>(message));
}

}  // namespace hal::text::detail
