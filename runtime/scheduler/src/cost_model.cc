#include "hal/scheduler/cost_model.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <tuple>

#include "hal/device.h"
#include "hal/platform.h"

namespace hal::scheduler {

std::string_view bound_name(Bound b) {
  switch (b) {
    case Bound::kCompute:
      return "compute";
    case Bound::kMemory:
      return "memory";
    case Bound::kOverhead:
      return "overhead";
  }
  return "memory";
}

namespace {

double parse_positive(const std::string& s) {
  double v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || p != end || !(v > 0) || !std::isfinite(v)) return 0;
  return v;
}

// Interpolates efficiencies between bucket points in log(ideal seconds), clamped at the
// ends, so predicted times stay continuous in the op's size.
Efficiency interpolate(const std::vector<EfficiencyBucket>& buckets, double ideal_seconds) {
  if (ideal_seconds <= buckets.front().ideal_seconds) return buckets.front().efficiency;
  if (ideal_seconds >= buckets.back().ideal_seconds) return buckets.back().efficiency;
  const double x = std::log(ideal_seconds);
  for (size_t i = 1; i < buckets.size(); ++i) {
    if (ideal_seconds > buckets[i].ideal_seconds) continue;
    const double x0 = std::log(buckets[i - 1].ideal_seconds);
    const double x1 = std::log(buckets[i].ideal_seconds);
    const double f = x1 > x0 ? (x - x0) / (x1 - x0) : 1.0;
    const Efficiency& a = buckets[i - 1].efficiency;
    const Efficiency& b = buckets[i].efficiency;
    return {a.compute + f * (b.compute - a.compute), a.memory + f * (b.memory - a.memory)};
  }
  return buckets.back().efficiency;
}

// Coordinates of an op for the calibration's interpolation: log2 of its FLOPs per byte
// (clamped: pure copies sit at the low end) and log2 of its baseline busy time.
constexpr double kMinLog2Intensity = -8, kMaxLog2Intensity = 12;
double log2_intensity(double flops, double bytes) {
  if (!(bytes > 0)) return kMaxLog2Intensity;
  if (!(flops > 0)) return kMinLog2Intensity;
  return std::clamp(std::log2(flops / bytes), kMinLog2Intensity, kMaxLog2Intensity);
}
double log2_busy(const OpCalibration& c, double flops, double bytes) {
  return std::log2(std::max(c.baseline_busy_seconds(flops, bytes), 1e-12));
}
constexpr int kNeighbours = 4;
// How many times a model runs a block op per op outside the blocks (GPT-2-small's 12
// layers; the built-in models have 8-12, published ones 12-80: the pooled value moves
// little between them once the block dominates).
constexpr double kBlockRepeats = 12;
constexpr double kNeutralDistance2 = 4.0;  // the virtual ratio-1 sample (2 octaves away)

}  // namespace

DeviceCostModel::DeviceCostModel(hal::DeviceInfo info, std::optional<Calibration> calibration)
    : info_(std::move(info)), calibration_(std::move(calibration)) {
  vector_flops_ = parse_positive(info_.property("vector_flops"));
  if (!calibration_) return;
  for (const OpCalibration& c : calibration_->ops) {
    // Samples of one shape (the same FLOPs and bytes) are one point: the mean of their log
    // ratios, each sample weighted by how often a model runs its place in the step. The
    // sweep runs one transformer block; a model runs its block once per layer and the rest
    // (embeddings, final norm, head) once, so a sample from inside the block weighs
    // kBlockRepeats. The places differ: an add right after the embeddings (its code cold
    // after the head's weight stream) took 2-3x a block's residual add, a K-cache write 2x
    // the V write beside it. As separate points the 4 nearest were the first 4 of
    // the shape in sweep order (predicted decode adds 1.8x a GPT-2 step's); as their lower
    // median, the faster of two block places (K/V writes predicted 20-40% low). Samples
    // taken right after a weight stream (OpSample::after_stream) are points of their own
    // (places[1]): a decode q rotary there took 3-6 us, a k rotary of the same shape in
    // another hidden size's sweep, after the q rotary, 0.3-1 us; pooled with it, the
    // decode rotary class was predicted 50% low, apart 10%.
    struct Sample {
      size_t place;
      double flops, bytes, log_ratio, weight;
      auto point() const { return std::tie(place, flops, bytes); }
    };
    std::vector<Sample> kept;
    for (const OpSample& s : c.samples) {
      const double base = c.baseline_seconds(s.flops, s.bytes);
      if (!(base > 0) || !(s.seconds > 0)) continue;
      kept.push_back({s.after_stream ? 1u : 0u, s.flops, s.bytes, std::log(s.seconds / base),
                      s.in_block ? kBlockRepeats : 1.0});
    }
    std::sort(kept.begin(), kept.end(),
              [](const Sample& a, const Sample& b) { return a.point() < b.point(); });
    OpPlaces places;
    for (size_t i = 0; i < kept.size();) {
      size_t j = i;
      double sum = 0, weights = 0;
      for (; j < kept.size() && kept[j].point() == kept[i].point(); ++j) {
        sum += kept[j].weight * kept[j].log_ratio;
        weights += kept[j].weight;
      }
      OpPoints& p = places[kept[i].place];
      p.x.push_back(log2_intensity(kept[i].flops, kept[i].bytes));
      p.y.push_back(log2_busy(c, kept[i].flops, kept[i].bytes));
      p.log_ratio.push_back(sum / weights);
      i = j;
    }
    op_points_.push_back(std::move(places));
  }
}

OpEstimate DeviceCostModel::estimate_calibrated(const OpWork& work, size_t op_index) const {
  const OpCalibration& c = calibration_->ops[op_index];
  const OpPlaces& places = op_points_[op_index];
  const size_t own = work.after_stream ? 1 : 0;
  const OpPoints& p = places[own].x.empty() ? places[1 - own] : places[own];
  const double x = log2_intensity(work.flops, work.bytes);
  const double y = log2_busy(c, work.flops, work.bytes);
  // The nearest samples (insertion into a short sorted list).
  std::array<std::pair<double, double>, kNeighbours> near;  // (squared distance, log ratio)
  size_t found = 0;
  for (size_t i = 0; i < p.x.size(); ++i) {
    const double d2 = (x - p.x[i]) * (x - p.x[i]) + (y - p.y[i]) * (y - p.y[i]);
    if (found == near.size() && d2 >= near.back().first) continue;
    size_t at = found < near.size() ? found++ : near.size() - 1;
    while (at > 0 && near[at - 1].first > d2) {
      near[at] = near[at - 1];
      --at;
    }
    near[at] = {d2, p.log_ratio[i]};
  }
  double weighted = 0, weights = 1.0 / kNeutralDistance2;
  for (size_t i = 0; i < found; ++i) {
    const double w = 1.0 / (near[i].first + 1e-6);
    weighted += w * near[i].second;
    weights += w;
  }
  const double factor = std::exp(weighted / weights);
  OpEstimate e;
  e.op_calibrated = true;
  e.overhead_s = c.overhead_s * factor;
  e.compute_s = work.flops > 0 && c.flops_per_s > 0 ? work.flops / c.flops_per_s * factor : 0.0;
  e.memory_s = work.bytes > 0 ? work.bytes / c.bytes_per_s * factor : 0.0;
  e.seconds = e.overhead_s + std::max(e.compute_s, e.memory_s);
  const double peak_f = peak_flops(work.op_class, work.dtype);
  const double peak_b = info_.memory_bandwidth_bytes_per_s;
  e.efficiency = {peak_f > 0 ? c.flops_per_s / factor / peak_f : 0.0,
                  peak_b > 0 ? c.bytes_per_s / factor / peak_b : 0.0};
  if (e.overhead_s > std::max(e.compute_s, e.memory_s))
    e.bound = Bound::kOverhead;
  else
    e.bound = e.compute_s > e.memory_s ? Bound::kCompute : Bound::kMemory;
  return e;
}

double DeviceCostModel::launch_overhead_s() const {
  if (calibration_ && calibration_->launch_overhead_s) return *calibration_->launch_overhead_s;
  return info_.launch_overhead_s;
}

double DeviceCostModel::peak_flops(hal::OpClass c, hal::DType t) const {
  if (c != hal::OpClass::kMatrix && vector_flops_ > 0) return vector_flops_;
  return info_.peak_flops_for(t);
}

Efficiency DeviceCostModel::efficiency(hal::OpClass c, double ideal_seconds) const {
  if (calibration_) {
    if (const ClassCalibration* cc = calibration_->for_class(c)) {
      if (!cc->buckets.empty() && ideal_seconds > 0) return interpolate(cc->buckets, ideal_seconds);
      return cc->efficiency;
    }
  }
  return kDefaultEfficiency[size_t(c)];
}

OpEstimate DeviceCostModel::estimate(const OpWork& work) const {
  if (calibration_ && work.op != hal::OpKind::kInvalid)
    if (const OpCalibration* c = calibration_->for_op(work.op, work.dtype, work.layout, true))
      return estimate_calibrated(work, size_t(c - calibration_->ops.data()));
  OpEstimate e;
  const double peak_f = peak_flops(work.op_class, work.dtype);
  const double peak_b = info_.memory_bandwidth_bytes_per_s;
  auto ideal = [](double amount, double peak) {
    if (amount <= 0) return 0.0;
    return peak > 0 ? amount / peak : std::numeric_limits<double>::infinity();
  };
  const double ideal_c = ideal(work.flops, peak_f);
  const double ideal_m = ideal(work.bytes, peak_b);
  e.efficiency = efficiency(work.op_class, std::max(ideal_c, ideal_m));
  e.compute_s = ideal_c / e.efficiency.compute;
  e.memory_s = ideal_m / e.efficiency.memory;
  e.overhead_s = launch_overhead_s();
  e.seconds = std::max(e.compute_s, e.memory_s) + e.overhead_s;
  if (e.overhead_s > std::max(e.compute_s, e.memory_s))
    e.bound = Bound::kOverhead;
  else
    e.bound = e.compute_s > e.memory_s ? Bound::kCompute : Bound::kMemory;
  return e;
}

LinkCost LinkCost::from(const hal::LinkInfo& link) {
  return LinkCost{link.kind, link.bandwidth_bytes_per_s, link.latency_s};
}

hal::LinkInfo link_between(const hal::DeviceInfo& from, const hal::DeviceInfo& to) {
  for (const hal::LinkInfo& l : from.links)
    if (l.peer == to.id) return l;
  const hal::LinkInfo a = from.host_link();
  const hal::LinkInfo b = to.host_link();
  hal::LinkInfo staged;
  staged.peer = to.id;
  staged.kind = "host-staged";
  staged.bandwidth_bytes_per_s = std::min(a.bandwidth_bytes_per_s, b.bandwidth_bytes_per_s);
  staged.latency_s = a.latency_s + b.latency_s;
  return staged;
}

CostModel::CostModel(std::vector<DeviceCostModel> devices, std::vector<LinkCost> links)
    : devices_(std::move(devices)), links_(std::move(links)) {
  links_.resize(devices_.size() * devices_.size());
}

namespace {

std::optional<Calibration> load_for(const hal::DeviceInfo& info, const CalibrationOptions& options,
                                    std::vector<std::string>* notes) {
  if (!options.load) return std::nullopt;
  auto found = find_calibration(info, options.directory);
  const std::string path = calibration_path(info, options.directory).string();
  if (!found.ok()) {
    if (notes)
      notes->push_back(info.id +
                       ": calibration ignored (defaults used): " + found.status().message());
    return std::nullopt;
  }
  if (*found && notes) notes->push_back(info.id + ": calibration from " + path);
  return std::move(*found);
}

}  // namespace

CostModel CostModel::from_platform(const hal::Platform& platform,
                                   std::span<hal::Device* const> devices,
                                   const CalibrationOptions& options,
                                   std::vector<std::string>* notes) {
  std::vector<DeviceCostModel> models;
  for (hal::Device* d : devices)
    models.emplace_back(d->info(), load_for(d->info(), options, notes));
  std::vector<LinkCost> links(devices.size() * devices.size());
  for (size_t i = 0; i < devices.size(); ++i)
    for (size_t j = 0; j < devices.size(); ++j)
      if (i != j)
        links[i * devices.size() + j] = LinkCost::from(platform.link(devices[i], devices[j]));
  return CostModel(std::move(models), std::move(links));
}

CostModel CostModel::from_infos(std::vector<hal::DeviceInfo> infos,
                                const CalibrationOptions& options,
                                std::vector<std::string>* notes) {
  std::vector<LinkCost> links(infos.size() * infos.size());
  for (size_t i = 0; i < infos.size(); ++i)
    for (size_t j = 0; j < infos.size(); ++j)
      if (i != j) links[i * infos.size() + j] = LinkCost::from(link_between(infos[i], infos[j]));
  std::vector<DeviceCostModel> models;
  for (hal::DeviceInfo& info : infos) {
    auto cal = load_for(info, options, notes);
    models.emplace_back(std::move(info), std::move(cal));
  }
  return CostModel(std::move(models), std::move(links));
}

}  // namespace hal::scheduler
