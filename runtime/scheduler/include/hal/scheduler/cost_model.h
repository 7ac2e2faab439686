// hal/scheduler/cost_model.h: how long an op takes on a device and how long data takes to
// move between devices, from hal::DeviceInfo (and an optional Calibration) only, so a new
// plugin that reports its figures honestly is scheduled without changes here.
//
// Op time, in the first of these that applies:
// 1. The op's own calibration (an OpCalibration of OpWork's op, dtype and layout; of
//    another layout of the op and dtype when there is none): its baseline
//      overhead_s + max(flops / flops_per_s, bytes / bytes_per_s)
//    times a correction exp(r), r interpolated from the calibration samples' log ratios
//    measured / baseline by inverse squared distance over their 4 nearest in
//    (log2 FLOPs per byte, log2 baseline busy time), with a virtual sample of ratio 1 at
//    distance 2 (octaves) so a shape far from every sample gets the baseline. Samples of
//    one shape (equal FLOPs and bytes: one op measured at several places of a step) are
//    one point, the mean of their log ratios, weighted by how often a model runs each
//    place: 12 for a sample from inside the sweep's transformer block (OpSample::in_block;
//    a model runs its block once per layer), 1 for one outside it. An op right after a
//    weight stream (OpWork::after_stream) is interpolated from the samples taken in that
//    place, any other op from the others (from the other place's when its own has none).
// 2. The roofline:
//      compute_s  = flops / (peak_flops(dtype) * efficiency.compute)
//      memory_s   = bytes / (memory_bandwidth * efficiency.memory)
//      seconds    = max(compute_s, memory_s) + launch_overhead_s
//    The peak for vector and data ops is DeviceInfo property "vector_flops" when the
//    plugin reports one (a number, FLOP/s), else the dtype's peak. Efficiencies come from
//    the device's Calibration (per op class and size bucket) or kDefaultEfficiency.
// `bound` says which term dominates (overhead when the per-op cost exceeds both).
//
// Transfer time: latency + bytes / bandwidth of the link between the two devices
// (hal::Platform::link: the device's peer link, else host-staged over both host links).
//
// Contract: a device without a peak for the op (0 FLOP/s while the op has FLOPs, or 0
// bandwidth while it has bytes) gets +infinity: the scheduler never places the op there.
// Lifetime: CostModel copies everything it needs. Threading: const methods are safe to
// call concurrently.
#pragma once

#include <array>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hal/device_info.h"
#include "hal/scheduler/calibration.h"
#include "hal/scheduler/task_graph.h"
#include "hal/status.h"

namespace hal {
class Device;
class Platform;
}  // namespace hal

namespace hal::scheduler {

// Efficiencies used for a class the calibration does not cover: a matrix op reaches
// about three quarters of the tensor peak, streaming ops most of the bandwidth.
inline constexpr std::array<Efficiency, kOpClassCount> kDefaultEfficiency = {
    Efficiency{0.75, 0.80},  // matrix
    Efficiency{0.50, 0.75},  // vector
    Efficiency{0.50, 0.60},  // data (gathers, copies, casts)
};

enum class Bound : int32_t { kCompute = 0, kMemory = 1, kOverhead = 2 };
std::string_view bound_name(Bound b);  // "compute", "memory", "overhead"

struct OpEstimate {
  double seconds = 0;
  double compute_s = 0;
  double memory_s = 0;
  double overhead_s = 0;
  Bound bound = Bound::kMemory;
  Efficiency efficiency;       // achieved fractions of the device's peaks
  bool op_calibrated = false;  // from the op kind's own calibration (rule 1)
};

class DeviceCostModel {
 public:
  explicit DeviceCostModel(hal::DeviceInfo info, std::optional<Calibration> calibration = {});

  const hal::DeviceInfo& info() const { return info_; }
  const std::optional<Calibration>& calibration() const { return calibration_; }
  double launch_overhead_s() const;
  double peak_flops(hal::OpClass c, hal::DType t) const;

  OpEstimate estimate(const OpWork& work) const;
  double seconds(const OpWork& work) const { return estimate(work).seconds; }
  Bound bound(const OpWork& work) const { return estimate(work).bound; }
  // The efficiency the model uses for an op of class `c` whose time at 100% of peak
  // would be `ideal_seconds`.
  Efficiency efficiency(hal::OpClass c, double ideal_seconds) const;

 private:
  // Per calibration_->ops[i]: its samples' coordinates and log ratios to the baseline;
  // [1] those taken right after a weight stream (OpSample::after_stream), [0] the others.
  struct OpPoints {
    std::vector<double> x, y, log_ratio;
  };
  using OpPlaces = std::array<OpPoints, 2>;
  OpEstimate estimate_calibrated(const OpWork& work, size_t op_index) const;

  hal::DeviceInfo info_;
  std::optional<Calibration> calibration_;
  double vector_flops_ = 0;
  std::vector<OpPlaces> op_points_;
};

struct LinkCost {
  std::string kind;  // LinkInfo::kind ("pcie-gen5-x16", "host-staged", ...)
  double bandwidth_bytes_per_s = 0;
  double latency_s = 0;

  // +infinity when the link has no bandwidth and there are bytes to move.
  double seconds(double bytes) const {
    if (bytes <= 0) return latency_s;
    if (!(bandwidth_bytes_per_s > 0)) return std::numeric_limits<double>::infinity();
    return latency_s + bytes / bandwidth_bytes_per_s;
  }
  static LinkCost from(const hal::LinkInfo& link);
};

// The link from `from` to `to` computed from the two DeviceInfos exactly as
// hal::Platform::link does (peer entry of `from` naming `to`'s id, else host-staged:
// the slower host link, latencies added).
hal::LinkInfo link_between(const hal::DeviceInfo& from, const hal::DeviceInfo& to);

struct CalibrationOptions {
  bool load = true;                 // look for stored calibrations
  std::filesystem::path directory;  // empty = default_calibration_dir()
};

// The cost model of a set of devices and the links between them.
class CostModel {
 public:
  // Devices from a platform (links from Platform::link). `notes` receives one line per
  // calibration found or ignored (malformed or for another device); never fails on a
  // calibration problem, so a broken cache file cannot stop a run.
  static CostModel from_platform(const hal::Platform& platform,
                                 std::span<hal::Device* const> devices,
                                 const CalibrationOptions& options = {},
                                 std::vector<std::string>* notes = nullptr);
  // Devices from their infos (links from link_between); for planning and tests.
  static CostModel from_infos(std::vector<hal::DeviceInfo> infos,
                              const CalibrationOptions& options = {},
                              std::vector<std::string>* notes = nullptr);
  // Explicit models and links ([from * n + to]; the diagonal is ignored).
  CostModel(std::vector<DeviceCostModel> devices, std::vector<LinkCost> links);

  int32_t device_count() const { return int32_t(devices_.size()); }
  const DeviceCostModel& device(int32_t d) const { return devices_[size_t(d)]; }
  const LinkCost& link(int32_t from, int32_t to) const {
    return links_[size_t(from) * devices_.size() + size_t(to)];
  }
  // 0 on the same device.
  double transfer_seconds(int32_t from, int32_t to, double bytes) const {
    return from == to ? 0.0 : link(from, to).seconds(bytes);
  }
  const std::vector<LinkCost>& links() const { return links_; }

 private:
  std::vector<DeviceCostModel> devices_;
  std::vector<LinkCost> links_;
};

}  // namespace hal::scheduler
