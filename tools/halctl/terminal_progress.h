// tools/halctl/terminal_progress.h: a one-line progress display on stderr for long stages
// (uploading weights, prefill, decode), only when stderr is a terminal, shown once a stage
// has taken long enough to be worth watching (0.5 s), redrawn at most 10 times a second.
//
// Threading: single-threaded (called from the generation's progress callback).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace halctl {

class TerminalProgress {
 public:
  TerminalProgress();
  ~TerminalProgress() { finish(); }
  TerminalProgress(const TerminalProgress&) = delete;
  TerminalProgress& operator=(const TerminalProgress&) = delete;

  // `done` of `total` units of stage `what` ("uploading weights" counts bytes, the rest
  // tokens).
  void update(std::string_view what, uint64_t done, uint64_t total);
  // Clears the line (if one was drawn).
  void finish();

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  bool drawn_ = false;
  std::string stage_;
  Clock::time_point stage_start_{}, last_draw_{};
};

}  // namespace halctl
