// Pinned placement: the grammar, its errors (quoted, with columns), a property check over
// random strings, and binding a spec to a graph and devices.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "hal/scheduler/placement.h"

namespace hal::scheduler {
namespace {

TEST(PlacementParse, LayerRangesAndDevices) {
  auto spec = parse_placement("layers=0-11:npu:0,12-23:cpu:0");
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  ASSERT_EQ(spec->layer_pins.size(), 2u);
  EXPECT_EQ(spec->layer_pins[0].first, 0);
  EXPECT_EQ(spec->layer_pins[0].last, 11);
  EXPECT_EQ(spec->layer_pins[0].device, "npu:0");
  EXPECT_EQ(spec->layer_pins[1].first, 12);
  EXPECT_EQ(spec->layer_pins[1].last, 23);
  EXPECT_EQ(spec->layer_pins[1].device, "cpu:0");
  EXPECT_EQ(spec->layer_pins[1].column, 19);
  EXPECT_FALSE(spec->rest_device.has_value());
}

TEST(PlacementParse, SingleLayersRestAndWhitespace) {
  auto spec = parse_placement(" layers = 5 : cuda:1 , 7-7:npu:2 ; rest = cpu:0 ");
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  ASSERT_EQ(spec->layer_pins.size(), 2u);
  EXPECT_EQ(spec->layer_pins[0].first, 5);
  EXPECT_EQ(spec->layer_pins[0].last, 5);
  EXPECT_EQ(spec->layer_pins[0].device, "cuda:1");
  EXPECT_EQ(spec->layer_pins[1].device, "npu:2");
  ASSERT_TRUE(spec->rest_device.has_value());
  EXPECT_EQ(*spec->rest_device, "cpu:0");
  EXPECT_EQ(format_placement(*spec), "layers=5:cuda:1,7:npu:2;rest=cpu:0");

  auto rest_only = parse_placement("rest=npu_sim2:10");
  ASSERT_TRUE(rest_only.ok());
  EXPECT_TRUE(rest_only->layer_pins.empty());
  EXPECT_EQ(*rest_only->rest_device, "npu_sim2:10");
}

// Each bad input with the exact error a user sees.
struct BadCase {
  const char* text;
  const char* message;
};

TEST(PlacementParse, ErrorsNameColumnAndCause) {
  const BadCase cases[] = {
      {"", "placement '': column 1: expected a clause ('layers=...' or 'rest=...'), found the end"},
      {"layers", "placement 'layers': column 7: expected '=' after 'layers', found the end"},
      {"layers=", "placement 'layers=': column 8: expected a layer number, found the end"},
      {"layers=a:npu:0",
       "placement 'layers=a:npu:0': column 8: expected a layer number, found 'a'"},
      {"layers=0-11:npu:0,12-x:cpu:0",
       "placement 'layers=0-11:npu:0,12-x:cpu:0': column 22: expected a layer number after '-', "
       "found 'x'"},
      {"layers=12-0:npu:0",
       "placement 'layers=12-0:npu:0': column 11: layer range 12-0 is reversed (write 0-12)"},
      {"layers=0-5:npu:0,3-7:cpu:0",
       "placement 'layers=0-5:npu:0,3-7:cpu:0': column 18: layer 3 is pinned twice: 0-5:npu:0 and "
       "3-7:cpu:0"},
      {"layers=0",
       "placement 'layers=0': column 9: expected ':' and a device after the layers, "
       "found the end"},
      {"layers=0:npu",
       "placement 'layers=0:npu': column 13: expected ':' and an index after device "
       "name 'npu', found the end"},
      {"layers=0:npu:",
       "placement 'layers=0:npu:': column 14: expected a device index after "
       "'npu:', found the end"},
      {"layers=0:7:1",
       "placement 'layers=0:7:1': column 10: expected a device such as npu:0, "
       "found '7'"},
      {"devices=0:npu:0",
       "placement 'devices=0:npu:0': column 1: unknown clause 'devices' "
       "(expected 'layers=' or 'rest=')"},
      {"rest=cpu:0;rest=npu:0",
       "placement 'rest=cpu:0;rest=npu:0': column 12: 'rest=' appears twice"},
      {"layers=0:npu:0;",
       "placement 'layers=0:npu:0;': column 16: expected a clause ('layers=...' "
       "or 'rest=...'), found the end"},
      {"layers=0:npu:0 x",
       "placement 'layers=0:npu:0 x': column 16: expected ',' between pins or "
       "';' between clauses, found 'x'"},
      {"layers=1234567890:npu:0",
       "placement 'layers=1234567890:npu:0': column 8: layer number too "
       "large (at most 9 digits)"},
      {"layers=0:npu:\x01",
       "placement 'layers=0:npu:\\x01': column 14: expected a device index "
       "after 'npu:', found byte 0x01"},
  };
  for (const BadCase& c : cases) {
    auto r = parse_placement(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(r.status().message(), c.message) << c.text;
  }
}

// A property check in the spirit of the fuzzing to come: strings over the grammar's
// alphabet never crash the parser, errors always say where, and whatever parses
// formats back to a string that parses to the same spec.
TEST(PlacementParse, RandomStringsRoundTripOrFailCleanly) {
  const std::string alphabet = "layers=rest0123456789-:,;npucpu \t\x80";
  uint64_t state = 42;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return uint32_t(state >> 33);
  };
  int parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    // Half the inputs start from a valid prefix so the deeper states are reached.
    if (next() % 2) s = next() % 2 ? "layers=" : "rest=";
    const size_t len = next() % 24;
    for (size_t k = 0; k < len; ++k) s += alphabet[next() % alphabet.size()];
    auto r = parse_placement(s);
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("column "), std::string::npos) << s;
      continue;
    }
    ++parsed;
    auto again = parse_placement(format_placement(*r));
    ASSERT_TRUE(again.ok()) << s;
    ASSERT_EQ(again->layer_pins.size(), r->layer_pins.size()) << s;
    for (size_t k = 0; k < r->layer_pins.size(); ++k) {
      EXPECT_EQ(again->layer_pins[k].first, r->layer_pins[k].first);
      EXPECT_EQ(again->layer_pins[k].last, r->layer_pins[k].last);
      EXPECT_EQ(again->layer_pins[k].device, r->layer_pins[k].device);
    }
    EXPECT_EQ(again->rest_device, r->rest_device);
  }
  EXPECT_GT(parsed, 0);  // the generator reaches valid specs too
}

TaskGraph three_layer_graph() {
  TaskGraph g;
  const TaskId embed = g.add_task(Task{"embed", -1, {}, 0});
  TaskId prev = embed;
  for (int l = 0; l < 3; ++l) {
    const TaskId t = g.add_task(Task{std::string("h.").append(std::to_string(l)), l, {}, 0});
    g.add_edge(prev, t, 1);
    prev = t;
  }
  const TaskId head = g.add_task(Task{"head", -1, {}, 0});
  g.add_edge(prev, head, 1);
  EXPECT_TRUE(g.finalize().ok());
  return g;
}

TEST(PlacementResolve, PinsLayersAndRest) {
  const TaskGraph g = three_layer_graph();
  const std::vector<std::string> devices = {"cpu:0", "npu:0"};
  auto spec = parse_placement("layers=0-1:npu:0");
  ASSERT_TRUE(spec.ok());
  auto pins = resolve_placement(*spec, g, devices);
  ASSERT_TRUE(pins.ok()) << pins.status().to_string();
  EXPECT_EQ(*pins, (std::vector<int32_t>{-1, 1, 1, -1, -1}));

  spec = parse_placement("layers=2:npu:0;rest=cpu:0");
  ASSERT_TRUE(spec.ok());
  pins = resolve_placement(*spec, g, devices);
  ASSERT_TRUE(pins.ok());
  EXPECT_EQ(*pins, (std::vector<int32_t>{0, 0, 0, 1, 0}));
}

TEST(PlacementResolve, UnknownDeviceAndLayersBeyondTheGraph) {
  const TaskGraph g = three_layer_graph();
  const std::vector<std::string> devices = {"cpu:0", "npu:0"};
  auto pins = resolve_placement(*parse_placement("layers=0:npu:3"), g, devices);
  ASSERT_FALSE(pins.ok());
  EXPECT_EQ(pins.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(pins.status().message(),
            "placement 'layers=0:npu:3': unknown device 'npu:3' (devices: cpu:0, npu:0)");
  pins = resolve_placement(*parse_placement("layers=0-1:npu:0,2-5:cpu:0"), g, devices);
  ASSERT_FALSE(pins.ok());
  EXPECT_EQ(pins.status().message(),
            "placement 'layers=0-1:npu:0,2-5:cpu:0': layers 2-5 pinned to cpu:0 but the graph "
            "has layers 0-2");
  pins = resolve_placement(*parse_placement("rest=gpu:0"), g, devices);
  ASSERT_FALSE(pins.ok());
  EXPECT_NE(pins.status().message().find("unknown device 'gpu:0'"), std::string::npos);
}

}  // namespace
}  // namespace hal::scheduler
