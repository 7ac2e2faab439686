// halctl bench DEVICE --calibrate (bench_calibrate.h).
#include "bench_calibrate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <tuple>

#include "common.h"
#include "hal/runtime/calibration_sweep.h"
#include "hal/scheduler/calibration.h"
#include "hal/scheduler/cost_model.h"

namespace halctl {

namespace {

double load_average() {
  double l[1];
  return getloadavg(l, 1) == 1 ? l[0] : -1.0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// The pool cold inputs rotate over: past the last-level cache (4x, at least 1 GiB) on a
// real device; simulated devices keep no cache state.
uint64_t cold_pool_bytes(const hal::DeviceInfo& info, bool quick, bool timing_only) {
  if (timing_only) return 0;
  if (quick) return 256ull << 20;
  return std::max<uint64_t>(4 * info.sram_bytes, 1ull << 30);
}

struct OpFit {
  int samples = 0;
  std::vector<double> errors;  // calibrated prediction / measured - 1
};

}  // namespace

int calibrate_device(hal::Device& d, const CalibrateOptions& o) {
  namespace sch = hal::scheduler;
  const auto t0 = std::chrono::steady_clock::now();
  const double load_before = load_average();
  hal::runtime::CalibrationMeasureOptions mo;
  // Three rounds on a measured device, sharing the sequence's time (calibration_sweep.h);
  // one for the quick sweep and for simulated devices (their clock does not drift).
  mo.rounds = o.quick || o.timing_only ? 1 : 3;
  mo.min_time_s = o.min_time_s / mo.rounds;
  mo.min_reps = o.min_reps;
  mo.timing_only = o.timing_only;
  mo.cold_bytes = cold_pool_bytes(d.info(), o.quick, o.timing_only);
  std::vector<hal::runtime::CalibrationSkip> skipped;
  std::vector<sch::CalibrationSample> samples;
  nlohmann::json measured = nlohmann::json::array();
  std::vector<double> gaps;
  for (hal::DType t : o.dtypes) {
    const std::vector<hal::runtime::CalibrationOp> ops = hal::runtime::calibration_ops(t, o.quick);
    auto times = hal::runtime::measure_calibration_ops(d, ops, mo, &skipped);
    if (!times.ok()) return report_error("bench", times.status());
    for (const hal::runtime::MeasuredOp& m : *times) {
      const sch::OpWork w = sch::OpWork::from_spec(m.op->spec);
      samples.push_back({w.op_class, w.dtype, w.flops, w.bytes, m.seconds, w.op, w.layout,
                         m.op->in_block, m.op->after_stream});
      gaps.push_back(m.gap_seconds);
      measured.push_back({{"op", m.op->label},
                          {"kind", std::string(hal::op_kind_name(w.op))},
                          {"layout", w.layout},
                          {"dtype", std::string(hal::dtype_name(w.dtype))},
                          {"class", std::string(sch::op_class_name(w.op_class))},
                          {"flops", w.flops},
                          {"bytes", w.bytes},
                          {"seconds", m.seconds},
                          {"mean_seconds", m.mean_seconds},
                          {"gap_seconds", m.gap_seconds},
                          {"reps", m.reps},
                          {"in_block", m.op->in_block},
                          {"after_stream", m.op->after_stream}});
    }
  }
  const double load_after = load_average();
  if (samples.empty()) {
    for (const auto& s : skipped)
      std::fprintf(stderr, "skipped: %s: %s\n", s.what.c_str(), s.why.c_str());
    return report_error("bench", hal::unimplemented(d.id() + ": no op of the calibration sweep "
                                                             "could be measured"));
  }
  // The per-op overhead stays the device's own figure at the class level: fitting it
  // from the smallest ops assumes no op beats its time at peak, which cache-resident ops
  // on a CPU do. Each op kind fits its own overhead.
  auto cal = sch::fit_calibration(d.info(), samples);
  if (!cal.ok()) return report_error("bench", cal.status());
  cal->created_by = std::string("halctl bench --calibrate") + (o.quick ? " --quick" : "");
  const std::filesystem::path path = sch::calibration_path(d.info(), o.directory);
  if (hal::Status st = sch::save_calibration(*cal, path); !st.ok())
    return report_error("bench", st);
  // What a later run reads back: check that it does.
  auto found = sch::find_calibration(d.info(), o.directory);
  if (!found.ok() || !*found)
    return report_error("bench", found.ok() ? hal::internal_error("calibration " + path.string() +
                                                                  " was written but not found")
                                            : found.status());
  // How far the calibrated model is from what was measured, per op kind.
  const sch::DeviceCostModel model(d.info(), **found);
  using Key = std::tuple<hal::OpKind, hal::DType, int32_t>;
  std::map<Key, OpFit> fits;
  std::vector<double> all_errors;
  for (const sch::CalibrationSample& s : samples) {
    sch::OpWork w;
    w.op_class = s.op_class;
    w.dtype = s.dtype;
    w.flops = s.flops;
    w.bytes = s.bytes;
    w.op = s.op;
    w.layout = s.layout;
    const double err = model.seconds(w) / s.seconds - 1;
    OpFit& f = fits[{s.op, s.dtype, s.layout}];
    ++f.samples;
    f.errors.push_back(std::abs(err));
    all_errors.push_back(std::abs(err));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto rate = [](double v, double peak, bool flops) {
    if (!(v > 0)) return std::string("-");
    const std::string r = flops ? hal::format_flops(v) : hal::format_rate(v);
    return peak > 0 ? fmt::format("{} ({:.0f}%)", r, 100 * v / peak) : r;
  };
  if (o.json) {
    nlohmann::json errors = nlohmann::json::array();
    for (const auto& [key, f] : fits)
      errors.push_back({{"op", std::string(hal::op_kind_name(std::get<0>(key)))},
                        {"layout", std::get<2>(key)},
                        {"dtype", std::string(hal::dtype_name(std::get<1>(key)))},
                        {"samples", f.samples},
                        {"median_abs_error", median(f.errors)},
                        {"max_abs_error", *std::max_element(f.errors.begin(), f.errors.end())}});
    nlohmann::json skips = nlohmann::json::array();
    for (const auto& s : skipped) skips.push_back({{"what", s.what}, {"reason", s.why}});
    print_json({{"device", d.id()},
                {"name", d.info().name},
                {"backend", d.info().backend},
                {"path", path.string()},
                {"calibration", nlohmann::json::parse(sch::calibration_to_json(*cal))},
                {"samples", measured},
                {"fit", errors},
                {"median_gap_seconds", median(gaps)},
                {"cold_pool_bytes", mo.cold_bytes},
                {"seconds", seconds},
                {"load_average", {{"before", load_before}, {"after", load_after}}},
                {"skipped", skips}});
    return 0;
  }
  std::string dtypes;
  for (hal::DType t : o.dtypes)
    dtypes += (dtypes.empty() ? "" : ",") + std::string(hal::dtype_name(t));
  fmt::print("{}  {}: calibrated from {} ops models dispatch ({}; {}) in {:.0f} s\n", d.id(),
             d.info().name, samples.size(), dtypes,
             o.timing_only ? "simulated clock, timing-only" : "device clock, command records",
             seconds);
  fmt::print("load average {:.2f} before, {:.2f} after (figures from a busy machine read slow)\n",
             load_before, load_after);
  fmt::print("device figures: memory bandwidth {} [{}]\n",
             hal::format_rate(d.info().memory_bandwidth_bytes_per_s),
             source_of(d.info(), "memory_bandwidth_bytes_per_s"));
  fmt::print("\n{:<14} {:<5} {:>7} {:>10} {:>22} {:>20} {:>14}\n", "OP", "DTYPE", "SAMPLES",
             "OVERHEAD", "COMPUTE (of peak)", "MEMORY (of peak)", "ERROR med/max");
  for (const sch::OpCalibration& oc : cal->ops) {
    const OpFit& f = fits[{oc.op, oc.dtype, oc.layout}];
    fmt::print("{:<14} {:<5} {:>7} {:>10} {:>22} {:>20} {:>6.1f}%/{:.0f}%\n",
               sch::op_layout_name(oc.op, oc.layout), hal::dtype_name(oc.dtype), oc.samples.size(),
               hal::format_seconds(oc.overhead_s),
               rate(oc.flops_per_s, d.info().peak_flops_for(oc.dtype), true),
               rate(oc.bytes_per_s, d.info().memory_bandwidth_bytes_per_s, false),
               100 * median(f.errors), 100 * *std::max_element(f.errors.begin(), f.errors.end()));
  }
  fmt::print(
      "(overhead and rates: the baseline of each op kind; the cost model corrects it by the "
      "nearest samples. Error: the calibrated model against the samples it was fitted to, "
      "median {:.1f}% over all)\n",
      100 * median(all_errors));
  fmt::print(
      "gap between back-to-back commands: median {} per op (outside the records, as in "
      "a run's timeline)\n",
      hal::format_seconds(median(gaps)));
  fmt::print(
      "\nstored: {}\n(used by the scheduler's cost model, `halctl run` and `halctl plan "
      "--timing cost-model`)\n",
      path.string());
  for (const auto& s : skipped) fmt::print("skipped: {}: {}\n", s.what, s.why);
  return 0;
}

}  // namespace halctl
