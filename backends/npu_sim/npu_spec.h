// backends/npu_sim/npu_spec.h: what one simulated NPU is made of (DeviceSpec), the
// built-in presets (atom, atom-max, rebel-quad) and the JSON spec-file parser.
//
// A spec is a JSON object of figures (README.md lists every key, its unit and its
// default). Presets are JSON files in backends/npu_sim/presets/, compiled into the
// plugin; each of their figures cites its source from ../shared/hw_facts.md in a
// "sources" object ("[R3 P] ..."; "[U] ..." marks an unverified, tunable figure).
// A user spec may start from a preset with "extends": "atom" and override figures.
//
// Contract
// - parse_spec() never throws and never aborts: malformed JSON, unknown keys (with a
//   "did you mean" hint), wrong types and impossible values (zero or negative
//   bandwidths, SRAM larger than sensible, a reservation above the capacity, ...) are
//   INVALID_ARGUMENT naming the origin (file path or preset) and the key.
// - A parsed DeviceSpec is fully validated and self-consistent; the performance model
//   and the plugin rely on that.
// - Figures a spec does not set take the documented defaults, whose source reads
//   "default: ...".
//
// Threading: value types and pure functions; presets are parsed once (thread-safe).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hal/dtype.h"
#include "hal/status.h"

namespace hal::npu_sim {

// How the device's engines round data (README.md, "Numerics").
enum class ComputePrecision : int32_t {
  kBf16 = 0,  // device-faithful: matrix-engine operands in bf16/fp16, fp32 accumulation
  kFp32 = 1,  // exact fp32 everywhere (for testing against the CPU)
};
std::string_view compute_precision_name(ComputePrecision p);  // "bf16", "fp32"
std::optional<ComputePrecision> parse_compute_precision(std::string_view text);

struct LinkSpec {
  bool present = false;
  std::string kind;                  // "pcie-gen5-x16", "ucie-a", ...
  double bandwidth_bytes_per_s = 0;  // effective, per direction
  double latency_s = 0;
};

struct DeviceSpec {
  // Identity.
  std::string name;          // preset or spec name: "atom", "rebel-quad", "my-npu"
  std::string display_name;  // "Rebellions ATOM (RBLN-CA12)"
  std::string sku;           // "RBLN-CA12"
  std::string description;
  std::string origin;  // "preset atom" or "spec file /path/x.json"

  // Topology: a spec describes one card; it expands to dies_per_card HAL devices (each
  // die its own device with peer links to its siblings). Chiplets act as one device.
  int32_t dies_per_card = 1;
  int32_t chiplets = 1;

  // Compute.
  int32_t neural_engines = 0;          // engines (cores) per device, all chiplets
  double clock_hz = 0;                 // engine clock
  std::map<DType, double> peak_flops;  // matrix-engine dense peak by operand dtype
  double vector_flops = 0;             // vector unit: FLOP/s (or elements/s) per device
  int32_t mac_array_rows = 0;          // MAC array granularity per engine (utilisation)
  int32_t mac_array_cols = 0;

  // Off-chip memory.
  std::string memory_kind;                  // "GDDR6", "HBM3E"
  uint64_t memory_bytes = 0;                // physical capacity
  uint64_t memory_reserved_bytes = 0;       // system reservation (firmware, runtime)
  double memory_bandwidth_bytes_per_s = 0;  // peak
  double memory_efficiency = 0;             // sustained fraction of the peak
  double memory_clock_hz = 0;               // 0 = unknown

  // On-chip SRAM (software-managed scratchpads).
  uint64_t sram_local_bytes_per_engine = 0;
  uint64_t sram_shared_bytes = 0;
  double sram_bandwidth_bytes_per_s = 0;  // aggregate engine <-> SRAM
  double sram_usable_fraction = 0;        // share the tiler may fill with data
  uint64_t dma_burst_bytes = 0;           // DMA transfer unit (pipeline fill/drain)

  // Command processing and links.
  double command_overhead_s = 0;  // per dispatched op / fill / on-device copy
  LinkSpec host_link;             // to the host, per direction
  LinkSpec peer_link;             // between dies of one card (absent: none)
  LinkSpec die_to_die_link;       // between chiplets of one device (per link)
  LinkSpec network_link;          // the host's network toward other hosts: channels across
                                  // processes (absent: host-staged over the host link only)

  // Power (nominal telemetry only).
  double tdp_watts = 0;
  double idle_watts = 0;

  ComputePrecision compute_precision = ComputePrecision::kBf16;

  // Where each figure came from, keyed by its spec key path ("peak_flops.f16",
  // "host_link.bandwidth_bytes_per_s"). Values start with "[Rn P|S|D]", "[U]" or
  // "default:" / "spec file ...".
  std::map<std::string, std::string> sources;

  // Derived figures.
  uint64_t usable_memory_bytes() const { return memory_bytes - memory_reserved_bytes; }
  uint64_t sram_bytes() const {
    return sram_local_bytes_per_engine * uint64_t(neural_engines) + sram_shared_bytes;
  }
  double sustained_memory_bandwidth() const {
    return memory_bandwidth_bytes_per_s * memory_efficiency;
  }
  // The matrix-engine rate for operands of `t`: the listed peak; f32 operands run at
  // the f32 entry, which presets set to the bf16 rate (the compiler downcasts f32 to
  // bf16 [R32]). 0 when the device cannot compute in `t`.
  double matrix_peak(DType t) const;
  // The rate of a product whose weights are in quantized format `t` (ABI 1.2): the
  // engine of the format's width, i.e. the "i4" peak for 4-bit formats (listed in
  // peak_flops under kI4G128, spec key "peak_flops.i4"), the i8 peak for 5- to 8-bit
  // integer formats, the fp8e4m3 peak for fp8 weights; the f16 rate where the preset
  // lists no such engine. `source` says which.
  double weight_format_peak(DType t, std::string* source = nullptr) const;
  // The source of a figure ("" when none).
  std::string source(const std::string& key) const;
  // Keys whose source is marked unverified ("[U]") or a default: the tunables.
  std::vector<std::string> tunable_keys() const;
};

// The built-in presets, by name ("atom", "atom-max", "rebel-quad").
std::vector<std::string> preset_names();
Result<DeviceSpec> preset(std::string_view name);
// The preset's JSON text as compiled in (what `preset()` parses), or "" if unknown.
std::string_view preset_json(std::string_view name);

// Parses a spec from JSON text. `origin` names it in errors and in the sources of
// figures the text sets without citing one ("spec file /x/y.json").
Result<DeviceSpec> parse_spec(std::string_view json_text, const std::string& origin);
// Reads and parses a spec file (NOT_FOUND when it cannot be read).
Result<DeviceSpec> load_spec_file(const std::string& path);

// Every key path a spec may contain (for documentation and tests).
std::vector<std::string> spec_keys();

}  // namespace hal::npu_sim
