// The terminal progress line of long halctl stages (terminal_progress.h).
#include "terminal_progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "hal/units.h"

namespace halctl {

TerminalProgress::TerminalProgress() : enabled_(::isatty(STDERR_FILENO) != 0) {}

void TerminalProgress::update(std::string_view what, uint64_t done, uint64_t total) {
  if (!enabled_) return;
  const auto now = Clock::now();
  if (what != stage_) {
    finish();
    stage_ = std::string(what);
    stage_start_ = now;
    last_draw_ = {};
  }
  if (now - stage_start_ < std::chrono::milliseconds(500)) return;
  if (done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double frac = total ? double(done) / double(total) : 1.0;
  std::string detail = stage_ == "uploading weights"
                           ? hal::format_bytes(done) + " / " + hal::format_bytes(total)
                           : fmt::format("{} / {} tokens", done, total);
  fmt::print(stderr, "\r{}: {:3.0f}%  {}   ", stage_, 100.0 * frac, detail);
  std::fflush(stderr);
  drawn_ = true;
}

void TerminalProgress::finish() {
  if (drawn_) {
    fmt::print(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  drawn_ = false;
  stage_.clear();
}

}  // namespace halctl
