// hal/scheduler/calibration.h: measured op times that refine the roofline cost model of
// one device, how they are fitted from benchmark samples, and where they are stored.
//
// Two levels, both optional:
// - Per op kind and dtype (version 2; what `halctl bench --calibrate` now measures): the
//   times of the ops models dispatch, at the shapes they dispatch them (cold weights,
//   activations as a model leaves them), timed by the device's own command records.
//   Each (op, dtype, layout) gets a fitted baseline, its own per-op overhead plus a
//   roofline of achieved rates,
//     baseline(F, B) = overhead_s + max(F / flops_per_s, B / bytes_per_s),
//   (F FLOPs, B device-memory bytes; bytes_per_s may exceed the device's DRAM peak where
//   the data stays in caches), and keeps its samples: the cost model corrects the
//   baseline by the samples' measured/baseline ratios, interpolated over
//   (log2 intensity F/B, log2 baseline time) from the nearest samples (OpCalibration,
//   cost_model.h). Everything here is absolute (seconds, FLOP/s, bytes/s), so a later
//   change of the device's reported peaks does not move calibrated predictions.
// - Per op class (matrix / vector / data; version 1): efficiencies against the device's
//   peaks, optionally per size bucket (small ops reach less of the peak than big ones).
//   Used for ops without a calibration of their own kind and dtype.
//
// Flow: `halctl bench DEVICE --calibrate` runs ops of each kind and size, collects
// CalibrationSamples, calls fit_calibration(info, samples), then
// save_calibration(cal, calibration_path(info)). Later runs build their CostModel with
// CostModel::from_platform / from_devices, which call find_calibration() per device.
//
// File: JSON, one per device, named <backend>-<device name slug>.json in
// default_calibration_dir() ($HAL_CALIBRATION_DIR, else $XDG_CACHE_HOME/hal/calibration,
// else $HOME/.cache/hal/calibration). Format (class efficiencies in (0, 1]):
//   {"format": "hal-calibration", "version": 2,
//    "device": {"name": "...", "backend": "cpu", "id": "cpu:0"},
//    "created_by": "halctl bench --calibrate", "created_at": "2025-01-31T12:00:00Z",
//    "device_figures": {"memory_bandwidth_bytes_per_s": 3e10, ...},  (optional, informative)
//    "launch_overhead_s": 2.5e-6,                                   (optional)
//    "op_classes": {"matrix": {"compute_efficiency": 0.71, "memory_efficiency": 0.83,
//                              "samples": 12,
//                              "buckets": [{"ideal_seconds": 1e-5, "compute_efficiency": 0.4,
//                                           "memory_efficiency": 0.6, "samples": 3}]},
//                   "vector": {...}, "data": {...}},                (any subset)
//    "ops": [{"op": "matmul", "dtype": "f32", "layout": 2, "overhead_s": 3e-6,
//             "flops_per_s": 9e10, "bytes_per_s": 2.6e10,
//             "samples": [[flops, bytes, seconds], [flops, bytes, seconds, 3], ...]}, ...]}
//    ("layout": OpWork::layout, left out when 0; a sample's 4th element, its places, left
//    out when 0: bit 0 OpSample::in_block, bit 1 OpSample::after_stream)
//                                                                   (version 2, optional)
// A bucket's `ideal_seconds` is the geometric mean of its samples' times at 100% of peak;
// efficiencies between buckets are interpolated in log(ideal time), clamped at the ends.
// Version 1 files (no "ops") are read as before.
//
// Errors: parse/load failures name the file, the key and what was wrong; a file written
// for another device is refused by find_calibration (name or backend differ).
//
// Threading: value types and pure functions, except the load/save calls, which do file
// I/O (save writes a temporary file and renames it, so readers never see half a file).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hal/device_info.h"
#include "hal/op.h"
#include "hal/status.h"

namespace hal::scheduler {

inline constexpr int kOpClassCount = 3;
std::string_view op_class_name(hal::OpClass c);  // "matrix", "vector", "data"
std::optional<hal::OpClass> parse_op_class(std::string_view name);

struct Efficiency {
  double compute = 1.0;  // fraction of the dtype's peak FLOP/s reached
  double memory = 1.0;   // fraction of the peak memory bandwidth reached
};

struct EfficiencyBucket {
  double ideal_seconds = 0;  // geometric mean time at 100% of peak of its samples
  Efficiency efficiency;
  int32_t samples = 0;
};

struct ClassCalibration {
  Efficiency efficiency;
  int32_t samples = 0;
  std::vector<EfficiencyBucket> buckets;  // ascending ideal_seconds; may be empty
};

// One measured op: FLOPs, device-memory bytes, seconds, whether it ran inside the sweep's
// transformer block (which a model repeats once per layer; cost_model.h weighs such
// samples by that when it pools the samples of one shape), and whether it ran right after
// a weight stream (OpWork::after_stream; the cost model predicts such ops from such
// samples).
struct OpSample {
  double flops = 0;
  double bytes = 0;
  double seconds = 0;
  bool in_block = false;
  bool after_stream = false;
};

// The calibration of one op kind at one dtype (see the file comment).
struct OpCalibration {
  hal::OpKind op = hal::OpKind::kInvalid;
  hal::DType dtype = hal::DType::kF32;
  int32_t layout = 0;      // OpWork::layout (matmul operand transposes)
  double overhead_s = 0;   // fixed cost per op
  double flops_per_s = 0;  // achieved compute rate of the baseline (0: no FLOPs seen)
  double bytes_per_s = 0;  // achieved memory rate of the baseline
  std::vector<OpSample> samples;

  // overhead_s + max(flops / flops_per_s, bytes / bytes_per_s).
  double baseline_seconds(double flops, double bytes) const;
  double baseline_busy_seconds(double flops, double bytes) const;
};

struct Calibration {
  std::string device_name;  // DeviceInfo::name
  std::string backend;      // DeviceInfo::backend
  std::string device_id;    // informative ("cpu:0"); ids are not stable across machines
  std::string created_by;
  std::string created_at;
  std::optional<double> launch_overhead_s;  // overrides DeviceInfo::launch_overhead_s
  std::array<std::optional<ClassCalibration>, kOpClassCount> op_classes;
  std::vector<OpCalibration> ops;  // version 2: per op kind and dtype
  // The device's figures when it was calibrated (informative: shows in reports and
  // explains a later disagreement).
  double memory_bandwidth_bytes_per_s = 0;  // 0: not recorded
  std::map<hal::DType, double> peak_flops;

  const ClassCalibration* for_class(hal::OpClass c) const {
    const auto& v = op_classes[size_t(c)];
    return v ? &*v : nullptr;
  }
  // The calibration of (op, dtype, layout); with `any_layout`, else the first of (op,
  // dtype) in another layout. Null when there is none.
  const OpCalibration* for_op(hal::OpKind op, hal::DType dtype, int32_t layout = 0,
                              bool any_layout = false) const {
    for (const OpCalibration& o : ops)
      if (o.op == op && o.dtype == dtype && o.layout == layout) return &o;
    if (any_layout)
      for (const OpCalibration& o : ops)
        if (o.op == op && o.dtype == dtype) return &o;
    return nullptr;
  }
};

// One measured op: what it did and how long it took on the device (device time).
struct CalibrationSample {
  hal::OpClass op_class = hal::OpClass::kMatrix;
  hal::DType dtype = hal::DType::kF32;
  double flops = 0;
  double bytes = 0;  // device-memory bytes read + written
  double seconds = 0;
  hal::OpKind op = hal::OpKind::kInvalid;  // set: the sample also calibrates its op kind
  int32_t layout = 0;                      // OpWork::layout
  bool in_block = false;                   // OpSample::in_block
  bool after_stream = false;               // OpSample::after_stream
};

// "matmul", "matmul b^T", "matmul a^T b^T": an op kind with its layout, for people.
std::string op_layout_name(hal::OpKind op, int32_t layout);

struct CalibrationFitOptions {
  // Samples per size bucket needed to keep the bucket (else only the class value).
  int32_t min_bucket_samples = 2;
  // Use the samples' smallest times to estimate the per-op overhead instead of
  // DeviceInfo::launch_overhead_s (and store it in the calibration).
  bool fit_overhead = false;
  // Samples of one (op, dtype) needed for its own calibration.
  int32_t min_op_samples = 3;
};

// Fits efficiencies per op class (and size bucket) so the roofline reproduces the
// samples: each sample is bound by compute or memory time (whichever the model says
// dominates); an efficiency is the median of the achieved fractions of the samples it
// binds, iterated until the classification is stable, clamped to [0.001, 1]. A class
// without samples is left out (the cost model then uses its defaults). Samples that name
// their op kind also fit that (op, dtype, layout)'s OpCalibration (fit_op_calibration)
// when it has min_op_samples of them. Fails on no samples, negative or non-finite figures, zero
// time, or a device without peaks.
Result<Calibration> fit_calibration(const hal::DeviceInfo& info,
                                    std::span<const CalibrationSample> samples,
                                    const CalibrationFitOptions& options = {});

// The baseline of one op kind from its samples: the overhead, compute rate and memory
// rate that minimise the squared log error of the baseline against the samples (each
// sample bound by the larger of its two terms). Samples keep their order.
OpCalibration fit_op_calibration(hal::OpKind op, hal::DType dtype, std::vector<OpSample> samples,
                                 int32_t layout = 0);

// JSON text <-> Calibration. `origin` names the source in errors (a path).
Result<Calibration> parse_calibration(std::string_view json_text, std::string_view origin);
std::string calibration_to_json(const Calibration& cal);

Result<Calibration> load_calibration(const std::filesystem::path& path);
// Creates the directory when missing.
Status save_calibration(const Calibration& cal, const std::filesystem::path& path);

std::filesystem::path default_calibration_dir();
// <dir>/<backend>-<slug of name>.json; `dir` empty = default_calibration_dir().
std::filesystem::path calibration_path(const hal::DeviceInfo& info,
                                       const std::filesystem::path& dir = {});
// The calibration stored for `info` in `dir`: nullopt when there is no file; an error
// when the file is malformed or was written for another device.
Result<std::optional<Calibration>> find_calibration(const hal::DeviceInfo& info,
                                                    const std::filesystem::path& dir = {});

}  // namespace hal::scheduler
