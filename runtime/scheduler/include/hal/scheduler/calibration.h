// hal/scheduler/calibration.h: measured efficiencies that refine the roofline cost model
// of one device, how they are fitted from benchmark samples, and where they are stored.
//
// The roofline (cost_model.h) predicts an op's time as
//   max(flops / (peak_flops * compute_eff), bytes / (peak_bw * memory_eff)) + overhead.
// A Calibration holds compute_eff and memory_eff per op class (matrix / vector / data),
// optionally refined per size bucket (small ops reach less of the peak than big ones),
// fitted from measured (flops, bytes, seconds) samples by fit_calibration().
//
// Flow: `halctl bench DEVICE --calibrate` runs ops of each class and size, collects
// CalibrationSamples, calls fit_calibration(info, samples), then
// save_calibration(cal, calibration_path(info)). Later runs build their CostModel with
// CostModel::from_platform / from_devices, which call find_calibration() per device.
//
// File: JSON, one per device, named <backend>-<device name slug>.json in
// default_calibration_dir() ($HAL_CALIBRATION_DIR, else $XDG_CACHE_HOME/hal/calibration,
// else $HOME/.cache/hal/calibration). Format (all efficiencies in (0, 1]):
//   {"format": "hal-calibration", "version": 1,
//    "device": {"name": "...", "backend": "cpu", "id": "cpu:0"},
//    "created_by": "halctl bench --calibrate", "created_at": "2025-01-31T12:00:00Z",
//    "launch_overhead_s": 2.5e-6,                                   (optional)
//    "op_classes": {"matrix": {"compute_efficiency": 0.71, "memory_efficiency": 0.83,
//                              "samples": 12,
//                              "buckets": [{"ideal_seconds": 1e-5, "compute_efficiency": 0.4,
//                                           "memory_efficiency": 0.6, "samples": 3}]},
//                   "vector": {...}, "data": {...}}}                (any subset)
// A bucket's `ideal_seconds` is the geometric mean of its samples' times at 100% of peak;
// efficiencies between buckets are interpolated in log(ideal time), clamped at the ends.
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

struct Calibration {
  std::string device_name;  // DeviceInfo::name
  std::string backend;      // DeviceInfo::backend
  std::string device_id;    // informative ("cpu:0"); ids are not stable across machines
  std::string created_by;
  std::string created_at;
  std::optional<double> launch_overhead_s;  // overrides DeviceInfo::launch_overhead_s
  std::array<std::optional<ClassCalibration>, kOpClassCount> op_classes;

  const ClassCalibration* for_class(hal::OpClass c) const {
    const auto& v = op_classes[size_t(c)];
    return v ? &*v : nullptr;
  }
};

// One measured op: what it did and how long it took on the device (device time).
struct CalibrationSample {
  hal::OpClass op_class = hal::OpClass::kMatrix;
  hal::DType dtype = hal::DType::kF32;
  double flops = 0;
  double bytes = 0;  // device-memory bytes read + written
  double seconds = 0;
};

struct CalibrationFitOptions {
  // Samples per size bucket needed to keep the bucket (else only the class value).
  int32_t min_bucket_samples = 2;
  // Use the samples' smallest times to estimate the per-op overhead instead of
  // DeviceInfo::launch_overhead_s (and store it in the calibration).
  bool fit_overhead = false;
};

// Fits efficiencies per op class (and size bucket) so the roofline reproduces the
// samples: each sample is bound by compute or memory time (whichever the model says
// dominates); an efficiency is the median of the achieved fractions of the samples it
// binds, iterated until the classification is stable, clamped to [0.001, 1]. A class
// without samples is left out (the cost model then uses its defaults). Fails on no
// samples, negative or non-finite figures, zero time, or a device without peaks.
Result<Calibration> fit_calibration(const hal::DeviceInfo& info,
                                    std::span<const CalibrationSample> samples,
                                    const CalibrationFitOptions& options = {});

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
