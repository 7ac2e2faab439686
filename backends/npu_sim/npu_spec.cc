// Spec parsing and validation (the schema is documented in README.md, "Spec files").
#include "npu_spec.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "hal/file_io.h"
#include "hal/units.h"

namespace hal::npu_sim {

namespace detail {
// Generated at configure time from presets/*.json (npu_presets_embedded.cc).
struct EmbeddedPreset {
  const char* name;
  const char* json;
};
extern const EmbeddedPreset kEmbeddedPresets[];
extern const size_t kEmbeddedPresetCount;
}  // namespace detail

namespace {

using nlohmann::json;

// The largest SRAM the model treats as on-chip (wafer-scale parts reach tens of GB).
constexpr uint64_t kMaxSramBytes = uint64_t(64) << 30;
constexpr uint64_t kMaxMemoryBytes = uint64_t(1) << 50;  // 1 PiB
constexpr int kMaxExtendsDepth = 8;

// Operand dtypes a matrix engine may list a peak for.
// kI4G128 stands for the int4 engine (spec key "peak_flops.i4").
constexpr DType kPeakDTypes[] = {DType::kF32,     DType::kF16, DType::kBF16,  DType::kFP8E4M3,
                                 DType::kFP8E5M2, DType::kI8,  DType::kI4G128};

std::string peak_key_name(DType t) {
  return t == DType::kI4G128 ? "i4" : std::string(dtype_name(t));
}

const char* const kLinkNames[] = {"host_link", "peer_link", "die_to_die_link", "network_link"};
const char* const kLinkFields[] = {"kind", "bandwidth_bytes_per_s", "latency_s"};

// Top-level scalar keys, in documentation order.
const char* const kScalarKeys[] = {"name",
                                   "display_name",
                                   "sku",
                                   "description",
                                   "dies_per_card",
                                   "chiplets",
                                   "neural_engines",
                                   "clock_hz",
                                   "vector_flops",
                                   "mac_array_rows",
                                   "mac_array_cols",
                                   "memory_kind",
                                   "memory_bytes",
                                   "memory_reserved_bytes",
                                   "memory_bandwidth_bytes_per_s",
                                   "memory_efficiency",
                                   "memory_clock_hz",
                                   "sram_local_bytes_per_engine",
                                   "sram_shared_bytes",
                                   "sram_bandwidth_bytes_per_s",
                                   "sram_usable_fraction",
                                   "dma_burst_bytes",
                                   "command_overhead_s",
                                   "tdp_watts",
                                   "idle_watts",
                                   "compute_precision"};

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1] ? 1 : 0)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string did_you_mean(std::string_view key, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = std::max<size_t>(3, key.size() / 4) + 1;
  for (const std::string& k : known)
    if (key.size() >= 4 && k.size() > key.size() && k.compare(0, key.size(), key) == 0)
      return " (did you mean '" + k + "'?)";  // a truncated key
  for (const std::string& k : known) {
    const size_t d = edit_distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

std::string json_type(const json& v) { return v.type_name(); }

std::string format_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Applies one spec object onto a DeviceSpec, recording which keys it set.
class SpecReader {
 public:
  SpecReader(const std::string& origin, DeviceSpec* spec, std::set<std::string>* set_keys)
      : origin_(origin), spec_(*spec), set_(*set_keys) {}

  Status error(const std::string& key, const std::string& message) const {
    return invalid_argument(origin_ + ": key '" + key + "': " + message);
  }

  Result<double> number(const std::string& key, const json& v, double lo, double hi,
                        bool lo_inclusive) const {
    if (!v.is_number())
      return error(key, "expected a number, got " + json_type(v) + " " + v.dump());
    const double x = v.get<double>();
    if (!std::isfinite(x)) return error(key, "must be finite");
    const bool below = lo_inclusive ? x < lo : x <= lo;
    if (below || x > hi)
      return error(key, "value " + format_number(x) + " is outside " + (lo_inclusive ? "[" : "(") +
                            format_number(lo) + ", " + format_number(hi) + "]");
    return x;
  }
  Result<int64_t> integer(const std::string& key, const json& v, int64_t lo, int64_t hi) const {
    if (!v.is_number_integer() &&
        !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
      return error(key, "expected an integer, got " + json_type(v) + " " + v.dump());
    const double d = v.get<double>();
    if (d < double(lo) || d > double(hi))
      return error(key, "value " + v.dump() + " is outside [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + "]");
    if (v.is_number_unsigned()) return int64_t(v.get<uint64_t>());
    if (v.is_number_integer()) return v.get<int64_t>();
    return int64_t(d);
  }
  Result<std::string> string(const std::string& key, const json& v, bool allow_empty) const {
    if (!v.is_string())
      return error(key, "expected a string, got " + json_type(v) + " " + v.dump());
    std::string s = v.get<std::string>();
    if (!allow_empty && s.empty()) return error(key, "must not be empty");
    return s;
  }

  Status apply_scalar(const std::string& key, const json& v) {
    DeviceSpec& s = spec_;
    auto set_double = [&](double* dst, double lo, double hi, bool lo_inclusive) -> Status {
      HAL_ASSIGN_OR_RETURN(*dst, number(key, v, lo, hi, lo_inclusive));
      return ok_status();
    };
    auto set_u64 = [&](uint64_t* dst, int64_t lo, int64_t hi) -> Status {
      HAL_ASSIGN_OR_RETURN(int64_t x, integer(key, v, lo, hi));
      *dst = uint64_t(x);
      return ok_status();
    };
    auto set_i32 = [&](int32_t* dst, int64_t lo, int64_t hi) -> Status {
      HAL_ASSIGN_OR_RETURN(int64_t x, integer(key, v, lo, hi));
      *dst = int32_t(x);
      return ok_status();
    };
    auto set_string = [&](std::string* dst, bool allow_empty) -> Status {
      HAL_ASSIGN_OR_RETURN(*dst, string(key, v, allow_empty));
      return ok_status();
    };
    constexpr double kHuge = 1e21;
    if (key == "name") {
      HAL_ASSIGN_OR_RETURN(std::string n, string(key, v, false));
      for (char c : n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
          return error(key, "'" + n + "' may only contain letters, digits, '-', '_' and '.'");
      s.name = n;
      return ok_status();
    }
    if (key == "display_name") return set_string(&s.display_name, false);
    if (key == "sku") return set_string(&s.sku, true);
    if (key == "description") return set_string(&s.description, true);
    if (key == "dies_per_card") return set_i32(&s.dies_per_card, 1, 64);
    if (key == "chiplets") return set_i32(&s.chiplets, 1, 64);
    if (key == "neural_engines") return set_i32(&s.neural_engines, 1, 65536);
    if (key == "clock_hz") return set_double(&s.clock_hz, 0, 20e9, false);
    if (key == "vector_flops") return set_double(&s.vector_flops, 0, kHuge, false);
    if (key == "mac_array_rows") return set_i32(&s.mac_array_rows, 1, 4096);
    if (key == "mac_array_cols") return set_i32(&s.mac_array_cols, 1, 4096);
    if (key == "memory_kind") return set_string(&s.memory_kind, false);
    if (key == "memory_bytes") return set_u64(&s.memory_bytes, 1, int64_t(kMaxMemoryBytes));
    if (key == "memory_reserved_bytes")
      return set_u64(&s.memory_reserved_bytes, 0, int64_t(kMaxMemoryBytes));
    if (key == "memory_bandwidth_bytes_per_s")
      return set_double(&s.memory_bandwidth_bytes_per_s, 0, 1e16, false);
    if (key == "memory_efficiency") return set_double(&s.memory_efficiency, 0, 1, false);
    if (key == "memory_clock_hz") return set_double(&s.memory_clock_hz, 0, 1e12, true);
    if (key == "sram_local_bytes_per_engine")
      return set_u64(&s.sram_local_bytes_per_engine, 0, int64_t(kMaxSramBytes));
    if (key == "sram_shared_bytes") return set_u64(&s.sram_shared_bytes, 0, int64_t(kMaxSramBytes));
    if (key == "sram_bandwidth_bytes_per_s")
      return set_double(&s.sram_bandwidth_bytes_per_s, 0, 1e18, false);
    if (key == "sram_usable_fraction") return set_double(&s.sram_usable_fraction, 0, 1, false);
    if (key == "dma_burst_bytes") return set_u64(&s.dma_burst_bytes, 1, int64_t(1) << 32);
    if (key == "command_overhead_s") return set_double(&s.command_overhead_s, 0, 1, true);
    if (key == "tdp_watts") return set_double(&s.tdp_watts, 0, 1e5, false);
    if (key == "idle_watts") return set_double(&s.idle_watts, 0, 1e5, true);
    if (key == "compute_precision") {
      HAL_ASSIGN_OR_RETURN(std::string p, string(key, v, false));
      auto parsed = parse_compute_precision(p);
      if (!parsed) return error(key, "'" + p + "' is not one of \"bf16\", \"fp32\"");
      s.compute_precision = *parsed;
      return ok_status();
    }
    return internal_error("spec key '" + key + "' has no reader");
  }

  Status apply_link(const std::string& name, const json& v) {
    if (!v.is_object())
      return error(name,
                   "expected an object {\"kind\", \"bandwidth_bytes_per_s\", \"latency_s\"}, got " +
                       json_type(v));
    LinkSpec& link = name == "host_link"         ? spec_.host_link
                     : name == "peer_link"       ? spec_.peer_link
                     : name == "die_to_die_link" ? spec_.die_to_die_link
                                                 : spec_.network_link;
    const bool had = link.present;
    std::vector<std::string> fields(std::begin(kLinkFields), std::end(kLinkFields));
    for (const auto& [k, val] : v.items()) {
      const std::string key = name + "." + k;
      if (k == "kind") {
        HAL_ASSIGN_OR_RETURN(link.kind, string(key, val, false));
      } else if (k == "bandwidth_bytes_per_s") {
        HAL_ASSIGN_OR_RETURN(link.bandwidth_bytes_per_s, number(key, val, 0, 1e16, false));
      } else if (k == "latency_s") {
        HAL_ASSIGN_OR_RETURN(link.latency_s, number(key, val, 0, 1, true));
      } else {
        return error(key, "is unknown" + did_you_mean(k, fields) +
                              "; a link has kind, bandwidth_bytes_per_s, latency_s");
      }
      set_.insert(key);
    }
    if (!had) {  // a new link needs every field
      for (const char* f : kLinkFields)
        if (!v.contains(f)) return error(name, std::string("is missing '") + f + "'");
    }
    link.present = true;
    set_.insert(name);
    return ok_status();
  }

  Status apply_flops(const json& v) {
    if (!v.is_object())
      return error(
          "peak_flops",
          "expected an object of dtype -> FLOP/s, e.g. {\"f16\": 32e12}, got " + json_type(v));
    for (const auto& [k, val] : v.items()) {
      const auto t = k == "i4" ? std::optional<DType>(DType::kI4G128) : parse_dtype(k);
      const bool allowed = t && std::find(std::begin(kPeakDTypes), std::end(kPeakDTypes), *t) !=
                                    std::end(kPeakDTypes);
      if (!allowed)
        return error(
            "peak_flops." + k,
            "is not a matrix-engine dtype (one of f32, f16, bf16, fp8e4m3, fp8e5m2, i8, i4)");
      const std::string key = "peak_flops." + peak_key_name(*t);
      HAL_ASSIGN_OR_RETURN(double f, number(key, val, 0, 1e21, false));
      spec_.peak_flops[*t] = f;
      set_.insert(key);
    }
    return ok_status();
  }

  Status apply_sources(const json& v, std::map<std::string, std::string>* sources) {
    if (!v.is_object()) return error("sources", "expected an object of key -> citation");
    const std::vector<std::string> known = spec_keys();
    for (const auto& [k, val] : v.items()) {
      if (std::find(known.begin(), known.end(), k) == known.end())
        return error("sources." + k, "names no figure" + did_you_mean(k, known));
      HAL_ASSIGN_OR_RETURN((*sources)[k], string("sources." + k, val, false));
    }
    return ok_status();
  }

 private:
  const std::string& origin_;
  DeviceSpec& spec_;
  std::set<std::string>& set_;
};

// The defaults a spec gets for figures nobody set (README.md lists them).
void apply_defaults(DeviceSpec& s, const std::set<std::string>& set) {
  // A figure nobody set gets its default, and the default as its source; a default the
  // base preset (extends) already applied is kept. A citation in "sources" for a figure
  // the spec does not set is replaced: it must not leave the figure at 0 (the fuzz job
  // found a spec whose mac_array_cols was only cited, and every matmul timed as NaN).
  auto dflt = [&](const std::string& key, auto* field, auto value, const std::string& why) {
    if (set.count(key)) return;
    const auto it = s.sources.find(key);
    if (it != s.sources.end() && it->second.rfind("default:", 0) == 0) return;
    *field = value;
    s.sources[key] = "default: " + why;
  };
  dflt("display_name", &s.display_name, s.name, "the spec's name");
  dflt("sku", &s.sku, std::string(), "none");
  dflt("description", &s.description, std::string(), "none");
  dflt("dies_per_card", &s.dies_per_card, 1, "one device per card");
  dflt("chiplets", &s.chiplets, 1, "a monolithic die");
  dflt("mac_array_rows", &s.mac_array_rows, 32, "32x32 MAC array (U)");
  dflt("mac_array_cols", &s.mac_array_cols, 32, "32x32 MAC array (U)");
  dflt("memory_reserved_bytes", &s.memory_reserved_bytes, uint64_t(0), "no reservation");
  dflt("memory_efficiency", &s.memory_efficiency, 0.8,
       "middle of the 0.7-0.85 sustained range hw_facts 3.5 suggests (U)");
  dflt("memory_clock_hz", &s.memory_clock_hz, 0.0, "unknown");
  dflt("sram_local_bytes_per_engine", &s.sram_local_bytes_per_engine, uint64_t(0), "none");
  dflt("sram_shared_bytes", &s.sram_shared_bytes, uint64_t(0), "none");
  dflt("sram_bandwidth_bytes_per_s", &s.sram_bandwidth_bytes_per_s,
       16.0 * s.memory_bandwidth_bytes_per_s, "16x the memory bandwidth (U)");
  dflt("sram_usable_fraction", &s.sram_usable_fraction, 0.75, "3/4 of the SRAM holds operands (U)");
  dflt("dma_burst_bytes", &s.dma_burst_bytes, uint64_t(65536), "64 KiB DMA bursts (U)");
  dflt("command_overhead_s", &s.command_overhead_s, 3e-6, "3 us per command (U)");
  dflt("tdp_watts", &s.tdp_watts, 100.0, "nominal 100 W");
  dflt("idle_watts", &s.idle_watts, 0.25 * s.tdp_watts, "a quarter of the TDP");
  dflt("compute_precision", &s.compute_precision, ComputePrecision::kBf16,
       "device-faithful bf16 matrix engines");
  // The two 16-bit rates stand in for each other, and f32 operands run at the bf16 rate.
  const double f16 = s.peak_flops.count(DType::kF16) ? s.peak_flops[DType::kF16] : 0;
  const double bf16 = s.peak_flops.count(DType::kBF16) ? s.peak_flops[DType::kBF16] : 0;
  if (!bf16 && f16) {
    s.peak_flops[DType::kBF16] = f16;
    s.sources.emplace("peak_flops.bf16", "default: the f16 rate (U)");
  }
  if (!f16 && bf16) {
    s.peak_flops[DType::kF16] = bf16;
    s.sources.emplace("peak_flops.f16", "default: the bf16 rate (U)");
  }
  if (!s.peak_flops.count(DType::kF32) && s.peak_flops.count(DType::kBF16)) {
    s.peak_flops[DType::kF32] = s.peak_flops[DType::kBF16];
    s.sources.emplace("peak_flops.f32",
                      "default: f32 operands are downcast to bf16 [R32 S], so the bf16 rate");
  }
  dflt("vector_flops", &s.vector_flops,
       s.peak_flops.count(DType::kF16) ? s.peak_flops[DType::kF16] / 16 : 0.0,
       "1/16 of the FP16 matrix peak (U)");
}

Status check_consistency(const DeviceSpec& s, const std::string& origin) {
  auto err = [&](const std::string& key, const std::string& m) {
    return invalid_argument(origin + ": key '" + key + "': " + m);
  };
  auto missing = [&](const std::string& key, const std::string& what) {
    return invalid_argument(origin + ": key '" + key + "' is required (" + what + ")");
  };
  if (s.name.empty()) return missing("name", "the device's name, e.g. \"my-npu\"");
  if (s.neural_engines <= 0) return missing("neural_engines", "engines per device");
  if (!(s.clock_hz > 0)) return missing("clock_hz", "engine clock in Hz");
  if (!s.peak_flops.count(DType::kF16) && !s.peak_flops.count(DType::kBF16))
    return missing("peak_flops", "at least an f16 or bf16 rate, e.g. {\"f16\": 32e12}");
  if (s.memory_kind.empty()) return missing("memory_kind", "e.g. \"GDDR6\" or \"HBM3E\"");
  if (s.memory_bytes == 0) return missing("memory_bytes", "physical device memory");
  if (!(s.memory_bandwidth_bytes_per_s > 0))
    return missing("memory_bandwidth_bytes_per_s", "peak memory bandwidth");
  if (!s.host_link.present)
    return missing("host_link", "{\"kind\", \"bandwidth_bytes_per_s\", \"latency_s\"}");
  if (s.memory_reserved_bytes >= s.memory_bytes)
    return err("memory_reserved_bytes", format_bytes(s.memory_reserved_bytes) +
                                            " leaves nothing of the " +
                                            format_bytes(s.memory_bytes) + " memory_bytes");
  const uint64_t sram = s.sram_bytes();
  if (sram < (uint64_t(64) << 10))
    return err("sram_local_bytes_per_engine", "the SRAM (local x engines + shared) totals " +
                                                  format_bytes(sram) +
                                                  "; at least 64 KiB is needed to stage tiles");
  if (sram > kMaxSramBytes)
    return err("sram_shared_bytes", "the SRAM totals " + format_bytes(sram) +
                                        ", more than the 64 GiB this model treats as on-chip");
  if (sram >= s.memory_bytes)
    return err("sram_shared_bytes", "the SRAM totals " + format_bytes(sram) +
                                        ", not less than the device memory " +
                                        format_bytes(s.memory_bytes));
  if (s.neural_engines % s.chiplets != 0)
    return err("neural_engines", std::to_string(s.neural_engines) + " engines do not divide over " +
                                     std::to_string(s.chiplets) + " chiplets");
  if (s.chiplets > 1 && !s.die_to_die_link.present)
    return missing("die_to_die_link", "a device of " + std::to_string(s.chiplets) +
                                          " chiplets needs its chiplet-to-chiplet link");
  if (s.peer_link.present && s.dies_per_card == 1)
    return err("peer_link", "is set but dies_per_card is 1: there is no sibling die to link to");
  if (s.idle_watts >= s.tdp_watts)
    return err("idle_watts", format_number(s.idle_watts) + " W is not below tdp_watts " +
                                 format_number(s.tdp_watts) + " W");
  if (!(s.vector_flops > 0)) return err("vector_flops", "must be > 0");
  return ok_status();
}

Result<json> parse_json_text(std::string_view text, const std::string& origin) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // Line and column of the byte nlohmann stopped at.
    size_t line = 1, col = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    const size_t colon = what.rfind(": ");
    if (colon != std::string::npos) what = what.substr(colon + 2);
    return invalid_argument(origin + ": not valid JSON at line " + std::to_string(line) +
                            ", column " + std::to_string(col) + ": " + what);
  } catch (const json::exception& e) {
    // Not a syntax error but still bad input: a number too large for a double
    // ("9e652", out_of_range 406) is the one nlohmann raises while parsing.
    return invalid_argument(origin + ": not valid JSON: " + e.what());
  }
}

Result<DeviceSpec> parse_spec_depth(std::string_view text, const std::string& origin, int depth);

Result<DeviceSpec> parse_object(const json& doc, const std::string& origin, int depth) {
  if (!doc.is_object())
    return invalid_argument(origin + ": a spec must be a JSON object, got " + json_type(doc));
  DeviceSpec spec;
  std::set<std::string> set_keys;
  if (doc.contains("extends")) {
    const json& e = doc["extends"];
    if (!e.is_string())
      return invalid_argument(origin + ": key 'extends': expected a preset name, got " +
                              json_type(e));
    const std::string base = e.get<std::string>();
    if (depth >= kMaxExtendsDepth)
      return invalid_argument(origin + ": key 'extends': presets extend each other too deeply");
    const std::string_view base_text = preset_json(base);
    if (base_text.empty()) {
      std::string names;
      for (const std::string& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
      return invalid_argument(origin + ": key 'extends': '" + base +
                              "' is not a preset (presets: " + names + ")");
    }
    HAL_ASSIGN_OR_RETURN(spec, parse_spec_depth(base_text, "preset " + base, depth + 1));
    // Keep the base's figures (and their sources) as if set.
    for (const std::string& k : spec_keys())
      if (spec.sources.count(k) && spec.sources[k].rfind("default:", 0) != 0) set_keys.insert(k);
  }
  spec.origin = origin;
  const std::vector<std::string> scalars(std::begin(kScalarKeys), std::end(kScalarKeys));
  std::vector<std::string> top = scalars;
  for (const char* l : kLinkNames) top.push_back(l);
  top.push_back("peak_flops");
  top.push_back("sources");
  top.push_back("extends");
  std::set<std::string> set_here;
  SpecReader here(origin, &spec, &set_here);
  std::map<std::string, std::string> cited;
  for (const auto& [key, value] : doc.items()) {
    if (key == "extends") continue;
    if (key == "sources") {
      HAL_RETURN_IF_ERROR(here.apply_sources(value, &cited));
    } else if (key == "peak_flops") {
      HAL_RETURN_IF_ERROR(here.apply_flops(value));
    } else if (key == "host_link" || key == "peer_link" || key == "die_to_die_link" ||
               key == "network_link") {
      HAL_RETURN_IF_ERROR(here.apply_link(key, value));
    } else if (std::find(scalars.begin(), scalars.end(), key) != scalars.end()) {
      HAL_RETURN_IF_ERROR(here.apply_scalar(key, value));
      set_here.insert(key);
    } else {
      return invalid_argument(origin + ": key '" + key + "' is unknown" + did_you_mean(key, top) +
                              " (README.md in backends/npu_sim lists the keys)");
    }
  }
  // Sources: cited ones win; figures set here without a citation cite the origin.
  const std::vector<std::string> figures = spec_keys();
  for (const std::string& k : set_here) {
    if (std::find(figures.begin(), figures.end(), k) == figures.end()) continue;
    auto c = cited.find(k);
    spec.sources[k] = c != cited.end() ? c->second : origin;
  }
  for (const auto& [k, v] : cited) spec.sources[k] = v;
  set_keys.insert(set_here.begin(), set_here.end());
  apply_defaults(spec, set_keys);
  HAL_RETURN_IF_ERROR(check_consistency(spec, origin));
  return spec;
}

Result<DeviceSpec> parse_spec_depth(std::string_view text, const std::string& origin, int depth) {
  HAL_ASSIGN_OR_RETURN(json doc, parse_json_text(text, origin));
  return parse_object(doc, origin, depth);
}

}  // namespace

std::string_view compute_precision_name(ComputePrecision p) {
  return p == ComputePrecision::kFp32 ? "fp32" : "bf16";
}

std::optional<ComputePrecision> parse_compute_precision(std::string_view text) {
  if (text == "bf16" || text == "device") return ComputePrecision::kBf16;
  if (text == "fp32" || text == "f32" || text == "exact") return ComputePrecision::kFp32;
  return std::nullopt;
}

double DeviceSpec::matrix_peak(DType t) const {
  if (is_quantized(t)) return weight_format_peak(t);
  auto it = peak_flops.find(t);
  return it == peak_flops.end() ? 0.0 : it->second;
}

double DeviceSpec::weight_format_peak(DType t, std::string* source) const {
  DType engine = DType::kI8;
  switch (t) {
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ4_K:
    case DType::kI4G32:
    case DType::kI4G64:
    case DType::kI4G128:
      engine = DType::kI4G128;
      break;
    case DType::kFP8E4M3Channel:
      engine = DType::kFP8E4M3;
      break;
    default:
      break;
  }
  for (DType e : {engine, engine == DType::kI4G128 ? DType::kI8 : engine, DType::kF16}) {
    auto it = peak_flops.find(e);
    if (it == peak_flops.end() || it->second <= 0) continue;
    if (source) {
      const std::string key = "peak_flops." + peak_key_name(e);
      *source = "the " + peak_key_name(e) + " engine" +
                (e != engine ? " (the preset lists no " + peak_key_name(engine) + " rate)" : "") +
                ": " + key + " = " + this->source(key);
    }
    return it->second;
  }
  return 0.0;
}

std::string DeviceSpec::source(const std::string& key) const {
  auto it = sources.find(key);
  return it == sources.end() ? "" : it->second;
}

std::vector<std::string> DeviceSpec::tunable_keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : sources)
    if (v.rfind("[U]", 0) == 0 || v.rfind("default:", 0) == 0) out.push_back(k);
  return out;
}

std::vector<std::string> spec_keys() {
  std::vector<std::string> keys(std::begin(kScalarKeys), std::end(kScalarKeys));
  for (DType t : kPeakDTypes) keys.push_back("peak_flops." + peak_key_name(t));
  for (const char* l : kLinkNames)
    for (const char* f : kLinkFields) keys.push_back(std::string(l) + "." + f);
  return keys;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> out;
  for (size_t i = 0; i < detail::kEmbeddedPresetCount; ++i)
    out.push_back(detail::kEmbeddedPresets[i].name);
  std::sort(out.begin(), out.end());
  return out;
}

std::string_view preset_json(std::string_view name) {
  for (size_t i = 0; i < detail::kEmbeddedPresetCount; ++i)
    if (name == detail::kEmbeddedPresets[i].name) return detail::kEmbeddedPresets[i].json;
  return {};
}

Result<DeviceSpec> preset(std::string_view name) {
  // Presets are parsed once: they are constant, and parsing is not free.
  static std::mutex mu;
  static std::map<std::string, Result<DeviceSpec>, std::less<>> cache;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(name); it != cache.end()) return it->second;
  const std::string_view text = preset_json(name);
  if (text.empty()) {
    std::string names;
    for (const std::string& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
    return not_found("'" + std::string(name) + "' is not an NPU preset (presets: " + names + ")");
  }
  Result<DeviceSpec> r = parse_spec_depth(text, "preset " + std::string(name), 0);
  cache.emplace(std::string(name), r);
  return r;
}

Result<DeviceSpec> parse_spec(std::string_view json_text, const std::string& origin) {
  return parse_spec_depth(json_text, origin, 0);
}

Result<DeviceSpec> load_spec_file(const std::string& path) {
  HAL_ASSIGN_OR_RETURN(const std::string text,
                       read_regular_file(path, "spec file", uint64_t(16) << 20));
  return parse_spec(text, "spec file " + path);
}

}  // namespace hal::npu_sim
