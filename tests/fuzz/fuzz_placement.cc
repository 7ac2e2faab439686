// Fuzzes the --placement grammar (hal/scheduler/placement.h). Properties: never crashes,
// throws or aborts; errors quote the placement; an accepted spec has ranges in order
// and no layer pinned twice, and format_placement() gives text that parses back to the
// same spec (the header's "parse(format(s)) == s").
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "hal/scheduler/placement.h"

using namespace hal::scheduler;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_placement(text);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().message().find("placement '") != std::string::npos,
               "errors quote the placement: " + parsed.status().to_string());
    return 0;
  }
  const PlacementSpec& s = *parsed;
  for (size_t i = 0; i < s.layer_pins.size(); ++i) {
    const LayerPin& a = s.layer_pins[i];
    FUZZ_CHECK(0 <= a.first && a.first <= a.last, "range in order");
    FUZZ_CHECK(!a.device.empty(), "device named");
    for (size_t j = 0; j < i; ++j) {
      const LayerPin& b = s.layer_pins[j];
      FUZZ_CHECK(a.last < b.first || b.last < a.first, "no layer pinned twice");
    }
  }
  const std::string formatted = format_placement(s);
  auto again = parse_placement(formatted);
  FUZZ_CHECK(again.ok(),
             "formatted spec parses: " + formatted + " -> " + again.status().to_string());
  FUZZ_CHECK(again->layer_pins.size() == s.layer_pins.size() && again->rest_device == s.rest_device,
             formatted);
  for (size_t i = 0; i < s.layer_pins.size(); ++i)
    FUZZ_CHECK(again->layer_pins[i].first == s.layer_pins[i].first &&
                   again->layer_pins[i].last == s.layer_pins[i].last &&
                   again->layer_pins[i].device == s.layer_pins[i].device,
               formatted);
  FUZZ_CHECK(format_placement(*again) == formatted, formatted);
  return 0;
}
