// hal/text/stop_strings.h: ending generated text at a stop string ("--stop '\n\n'"), as
// text is streamed.
//
// Contract
// - push() takes text as it streams (whole characters, as TextStream gives it) and returns
//   what can be shown now: everything except a tail that could still grow into a stop
//   string, which is held back until it cannot.
// - Once a stop string appears, the text before it is returned, stopped() is true and
//   matched() names the stop string; the stop string itself and anything after it are
//   never shown (OpenAI / vLLM semantics).
// - finish() returns the held tail when generation ends without a stop string.
// - With no stop strings, push() returns its input unchanged.
// - Views are valid until the next call. Buffers are reused: no allocation per call once
//   they have grown to the longest chunk.
//
// Threading: one per stream.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hal::text {

class StopStrings {
 public:
  // Empty strings are ignored.
  explicit StopStrings(std::vector<std::string> stops = {});

  std::string_view push(std::string_view text);
  std::string_view finish();
  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }
  void reset();

 private:
  std::vector<std::string> stops_;
  std::string held_, out_, matched_;
  bool stopped_ = false;
};

}  // namespace hal::text
