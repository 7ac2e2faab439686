#include "hal/text/stop_strings.h"

#include <algorithm>

namespace hal::text {

StopStrings::StopStrings(std::vector<std::string> stops) {
  size_t longest = 0;
  for (std::string& s : stops) {
    if (s.empty()) continue;
    longest = std::max(longest, s.size());
    stops_.push_back(std::move(s));
  }
  held_.reserve(2 * longest + 64);
  out_.reserve(2 * longest + 64);
}

void StopStrings::reset() {
  held_.clear();
  out_.clear();
  matched_.clear();
  stopped_ = false;
}

std::string_view StopStrings::push(std::string_view text) {
  if (stopped_) return {};
  if (stops_.empty()) return text;
  held_.append(text);
  // The earliest stop string in the held text ends the stream there.
  size_t first = std::string::npos;
  const std::string* which = nullptr;
  for (const std::string& s : stops_) {
    const size_t at = held_.find(s);
    if (at < first) {
      first = at;
      which = &s;
    }
  }
  out_.clear();
  if (which) {
    out_.assign(held_, 0, first);
    held_.clear();
    matched_ = *which;
    stopped_ = true;
    return out_;
  }
  // Hold back the longest tail that is the start of some stop string.
  size_t keep = 0;
  for (const std::string& s : stops_) {
    for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n) {
      if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
        keep = n;
        break;
      }
    }
  }
  out_.assign(held_, 0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out_;
}

std::string_view StopStrings::finish() {
  out_.clear();
  if (!stopped_) out_.swap(held_);
  held_.clear();
  return out_;
}

}  // namespace hal::text
