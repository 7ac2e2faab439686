// Fuzzes calibration files (hal/scheduler/calibration.h: JSON written by `halctl bench
// --calibrate`, read back from the calibration directory or a path a user gives).
// Properties: never crashes, throws or aborts; an accepted calibration survives a round
// trip through calibration_to_json().
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "hal/scheduler/calibration.h"

using namespace hal::scheduler;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_calibration(text, "fuzz.json");
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().message().find("fuzz.json") != std::string::npos,
               "errors name the file: " + parsed.status().to_string());
    return 0;
  }
  const std::string again = calibration_to_json(*parsed);
  auto reparsed = parse_calibration(again, "round trip");
  FUZZ_CHECK(reparsed.ok(), "round trip parses: " + reparsed.status().to_string() + "\n" + again);
  FUZZ_CHECK(calibration_to_json(*reparsed) == again, "round trip is stable:\n" + again);
  return 0;
}
