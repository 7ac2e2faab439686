// Placement specs (placement.h): parsing the --placement text, resolving it against a
// task graph's layers and devices, and (resolve_pins) combining it with Options'
// per-task pins into one device per task for the schedulers.
#include "hal/scheduler/placement.h"

#include <algorithm>
#include <cctype>

#include "internal.h"

namespace hal::scheduler {

namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<PlacementSpec> parse() {
    PlacementSpec spec;
    skip_space();
    if (at_end()) return fail("expected a clause ('layers=...' or 'rest=...')", "the end");
    while (true) {
      skip_space();
      const size_t key_at = pos_;
      std::string key;
      while (!at_end() && std::isalpha(static_cast<unsigned char>(peek()))) key += text_[pos_++];
      if (key.empty()) return fail("expected a clause ('layers=...' or 'rest=...')", found());
      skip_space();
      if (key != "layers" && key != "rest") {
        pos_ = key_at;
        return fail("unknown clause '" + key + "' (expected 'layers=' or 'rest=')", std::nullopt);
      }
      if (!eat('=')) return fail("expected '=' after '" + key + "'", found());
      if (key == "layers") {
        while (true) {
          HAL_ASSIGN_OR_RETURN(LayerPin pin, parse_pin());
          for (const LayerPin& other : spec.layer_pins) {
            const int32_t lo = std::max(other.first, pin.first);
            const int32_t hi = std::min(other.last, pin.last);
            if (lo <= hi)
              return error_at(size_t(pin.column - 1), "layer " + std::to_string(lo) +
                                                          " is pinned twice: " + range_text(other) +
                                                          ":" + other.device + " and " +
                                                          range_text(pin) + ":" + pin.device);
          }
          spec.layer_pins.push_back(std::move(pin));
          skip_space();
          if (!eat(',')) break;
        }
      } else {
        if (spec.rest_device) {
          pos_ = key_at;
          return fail("'rest=' appears twice", std::nullopt);
        }
        skip_space();
        HAL_ASSIGN_OR_RETURN(std::string device, parse_device());
        spec.rest_device = std::move(device);
      }
      skip_space();
      if (at_end()) break;
      if (!eat(';')) return fail("expected ',' between pins or ';' between clauses", found());
    }
    return spec;
  }

 private:
  static std::string range_text(const LayerPin& p) {
    return p.first == p.last ? std::to_string(p.first)
                             : std::to_string(p.first) + "-" + std::to_string(p.last);
  }

  Result<LayerPin> parse_pin() {
    skip_space();
    LayerPin pin;
    pin.column = int32_t(pos_ + 1);
    HAL_ASSIGN_OR_RETURN(pin.first, parse_layer("expected a layer number"));
    pin.last = pin.first;
    skip_space();
    if (eat('-')) {
      skip_space();
      const size_t last_at = pos_;
      HAL_ASSIGN_OR_RETURN(pin.last, parse_layer("expected a layer number after '-'"));
      if (pin.last < pin.first)
        return error_at(last_at, "layer range " + std::to_string(pin.first) + "-" +
                                     std::to_string(pin.last) + " is reversed (write " +
                                     std::to_string(pin.last) + "-" + std::to_string(pin.first) +
                                     ")");
    }
    skip_space();
    if (!eat(':')) return fail("expected ':' and a device after the layers", found());
    skip_space();
    HAL_ASSIGN_OR_RETURN(pin.device, parse_device());
    return pin;
  }

  Result<int32_t> parse_layer(const std::string& expected) {
    const size_t start = pos_;
    if (at_end() || !std::isdigit(static_cast<unsigned char>(peek())))
      return fail(expected, found());
    int64_t v = 0;
    while (!at_end() && std::isdigit(static_cast<unsigned char>(peek()))) {
      v = v * 10 + (text_[pos_++] - '0');
      if (pos_ - start > 9) {
        pos_ = start;
        return fail("layer number too large (at most 9 digits)", std::nullopt);
      }
    }
    return int32_t(v);
  }

  Result<std::string> parse_device() {
    const size_t start = pos_;
    std::string name;
    if (at_end() || !std::isalpha(static_cast<unsigned char>(peek())))
      return fail("expected a device such as npu:0", found());
    while (!at_end() && (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_'))
      name += text_[pos_++];
    if (!eat(':'))
      return fail("expected ':' and an index after device name '" + name + "'", found());
    std::string index;
    while (!at_end() && std::isdigit(static_cast<unsigned char>(peek()))) index += text_[pos_++];
    if (index.empty()) return fail("expected a device index after '" + name + ":'", found());
    if (index.size() > 9) {
      pos_ = start;
      return fail("device index too large in '" + name + ":" + index + "'", std::nullopt);
    }
    return name + ":" + index;
  }

  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }
  bool eat(char c) {
    if (!at_end() && peek() == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }
  // What stands at the cursor, for "found ..." (a printable rendering of one character).
  std::optional<std::string> found() const {
    if (at_end()) return std::string("the end");
    const unsigned char c = static_cast<unsigned char>(peek());
    if (std::isprint(c)) return std::string("'").append(1, char(c)).append("'");
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return std::string(buf);
  }
  Status fail(const std::string& what, std::optional<std::string> found_what) const {
    return error_at(pos_, what + (found_what ? ", found " + *found_what : ""));
  }
  Status error_at(size_t at, const std::string& what) const {
    return invalid_argument("placement '" + printable(text_) + "': column " +
                            std::to_string(at + 1) + ": " + what);
  }
  static std::string printable(std::string_view s) {
    std::string out;
    for (char ch : s) {
      const unsigned char c = static_cast<unsigned char>(ch);
      if (std::isprint(c)) {
        out += ch;
      } else {
        char buf[16];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
      }
    }
    return out;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

Result<PlacementSpec> parse_placement(std::string_view text) { return Parser(text).parse(); }

std::string format_placement(const PlacementSpec& spec) {
  std::string out;
  if (!spec.layer_pins.empty()) {
    out += "layers=";
    for (size_t i = 0; i < spec.layer_pins.size(); ++i) {
      const LayerPin& p = spec.layer_pins[i];
      if (i) out += ",";
      out += std::to_string(p.first);
      if (p.last != p.first) out.append("-").append(std::to_string(p.last));
      out.append(":").append(p.device);
    }
  }
  if (spec.rest_device) {
    if (!out.empty()) out += ";";
    out += "rest=" + *spec.rest_device;
  }
  return out;
}

Result<std::vector<int32_t>> resolve_placement(const PlacementSpec& spec, const TaskGraph& graph,
                                               std::span<const std::string> device_ids) {
  auto find = [&](const std::string& id) -> Result<int32_t> {
    for (size_t i = 0; i < device_ids.size(); ++i)
      if (device_ids[i] == id) return int32_t(i);
    std::string known;
    for (const std::string& d : device_ids) known += (known.empty() ? "" : ", ") + d;
    return not_found("placement '" + format_placement(spec) + "': unknown device '" + id +
                     "' (devices: " + (known.empty() ? "none" : known) + ")");
  };
  int32_t layers = 0;
  for (const Task& t : graph.tasks()) layers = std::max(layers, t.layer + 1);
  std::vector<int32_t> device_of_layer(size_t(layers), -1);
  for (const LayerPin& p : spec.layer_pins) {
    HAL_ASSIGN_OR_RETURN(const int32_t d, find(p.device));
    if (p.last >= layers)
      return invalid_argument(
          "placement '" + format_placement(spec) + "': layers " + std::to_string(p.first) + "-" +
          std::to_string(p.last) + " pinned to " + p.device + " but the graph has " +
          (layers == 0 ? std::string("no layers") : "layers 0-" + std::to_string(layers - 1)));
    for (int32_t l = p.first; l <= p.last; ++l) device_of_layer[size_t(l)] = d;
  }
  int32_t rest = -1;
  if (spec.rest_device) {
    HAL_ASSIGN_OR_RETURN(rest, find(*spec.rest_device));
  }
  std::vector<int32_t> pinned(graph.task_count(), -1);
  for (size_t t = 0; t < graph.task_count(); ++t) {
    const int32_t l = graph.task(TaskId(t)).layer;
    const int32_t d = l >= 0 ? device_of_layer[size_t(l)] : -1;
    pinned[t] = d >= 0 ? d : rest;
  }
  return pinned;
}

namespace detail {

Result<std::vector<int32_t>> resolve_pins(const Problem& pb, const Options& options) {
  std::vector<int32_t> pins;
  if (!options.placement.empty()) {
    HAL_ASSIGN_OR_RETURN(pins, resolve_placement(options.placement, pb.graph(), pb.device_ids()));
  }
  if (options.task_pins.empty()) return pins;
  if (options.task_pins.size() != size_t(pb.task_count()))
    return invalid_argument("task pins: " + std::to_string(options.task_pins.size()) +
                            " given for " + std::to_string(pb.task_count()) + " tasks");
  if (pins.empty()) pins.assign(size_t(pb.task_count()), -1);
  for (TaskId t = 0; t < pb.task_count(); ++t) {
    const int32_t d = options.task_pins[size_t(t)];
    if (d < -1 || d >= pb.device_count())
      return invalid_argument("task pins: task " + task_label(pb.graph(), t) +
                              " pinned to device " + std::to_string(d) + " of " +
                              std::to_string(pb.device_count()));
    if (d >= 0) pins[size_t(t)] = d;
  }
  return pins;
}

}  // namespace detail

}  // namespace hal::scheduler
