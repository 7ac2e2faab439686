#include "hal/scheduler/calibration.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <tuple>

#include "hal/file_io.h"
#include "hal/scheduler/cost_model.h"

#if HAL_SCHEDULER_HAVE_JSON
#include <nlohmann/json.hpp>
#endif

namespace hal::scheduler {

std::string_view op_class_name(hal::OpClass c) {
  switch (c) {
    case hal::OpClass::kMatrix:
      return "matrix";
    case hal::OpClass::kVector:
      return "vector";
    case hal::OpClass::kData:
      return "data";
  }
  return "vector";
}

std::string op_layout_name(hal::OpKind op, int32_t layout) {
  std::string s(hal::op_kind_name(op));
  if (layout & 1) s += " a^T";
  if (layout & 2) s += " b^T";
  return s;
}

std::optional<hal::OpClass> parse_op_class(std::string_view name) {
  if (name == "matrix") return hal::OpClass::kMatrix;
  if (name == "vector") return hal::OpClass::kVector;
  if (name == "data") return hal::OpClass::kData;
  return std::nullopt;
}

namespace {

constexpr double kMinEfficiency = 0.001;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct PreparedSample {
  double ideal_compute = 0;  // seconds at 100% of the compute peak
  double ideal_memory = 0;   // seconds at 100% of the bandwidth
  double busy = 0;           // measured seconds minus the per-op overhead
};

// The roofline fit of one group of samples, starting from `start`: classify each sample
// by the term the current efficiencies say dominates, set each efficiency to the median
// achieved fraction of the samples it binds, repeat until stable.
Efficiency fit_group(const std::vector<PreparedSample>& samples, Efficiency start) {
  Efficiency e = start;
  for (int iter = 0; iter < 32; ++iter) {
    std::vector<double> compute, memory;
    for (const PreparedSample& s : samples) {
      const double tc = s.ideal_compute / e.compute;
      const double tm = s.ideal_memory / e.memory;
      if (tc >= tm && s.ideal_compute > 0)
        compute.push_back(s.ideal_compute / s.busy);
      else if (s.ideal_memory > 0)
        memory.push_back(s.ideal_memory / s.busy);
    }
    Efficiency next = e;
    if (!compute.empty()) next.compute = std::clamp(median(compute), kMinEfficiency, 1.0);
    if (!memory.empty()) next.memory = std::clamp(median(memory), kMinEfficiency, 1.0);
    if (next.compute == e.compute && next.memory == e.memory) break;
    e = next;
  }
  return e;
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string slug(std::string_view s) {
  std::string out;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out += char(std::tolower(u));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "unnamed" : out;
}

}  // namespace

double OpCalibration::baseline_busy_seconds(double flops, double bytes) const {
  const double c = flops > 0 && flops_per_s > 0 ? flops / flops_per_s : 0.0;
  const double m = bytes > 0 && bytes_per_s > 0 ? bytes / bytes_per_s : 0.0;
  return std::max(c, m);
}

double OpCalibration::baseline_seconds(double flops, double bytes) const {
  return overhead_s + baseline_busy_seconds(flops, bytes);
}

namespace {

// Squared log error of a baseline over the samples.
double log_error(const std::vector<OpSample>& samples, double overhead, double log2_rc,
                 double log2_rm) {
  const double rc = std::exp2(log2_rc), rm = std::exp2(log2_rm);
  double err = 0;
  for (const OpSample& s : samples) {
    const double busy =
        std::max(s.flops > 0 ? s.flops / rc : 0.0, s.bytes > 0 ? s.bytes / rm : 0.0);
    const double e = std::log(s.seconds / std::max(overhead + busy, 1e-15));
    err += e * e;
  }
  return err;
}

}  // namespace

OpCalibration fit_op_calibration(hal::OpKind op, hal::DType dtype, std::vector<OpSample> samples,
                                 int32_t layout) {
  OpCalibration out;
  out.op = op;
  out.dtype = dtype;
  out.layout = layout;
  out.samples = std::move(samples);
  const std::vector<OpSample>& s = out.samples;
  if (s.empty()) return out;
  bool any_flops = false;
  double t_min = std::numeric_limits<double>::infinity();
  std::vector<double> rc0, rm0;
  for (const OpSample& x : s) {
    any_flops = any_flops || x.flops > 0;
    t_min = std::min(t_min, x.seconds);
    if (x.flops > 0) rc0.push_back(x.flops / x.seconds);
    if (x.bytes > 0) rm0.push_back(x.bytes / x.seconds);
  }
  // Search in log2 of the rates around the samples' medians, and over overheads from
  // 0 up to the smallest time: a coarse grid, then finer grids around the best point.
  double best_rc = rc0.empty() ? 0.0 : std::log2(median(rc0));
  double best_rm = rm0.empty() ? 0.0 : std::log2(median(rm0));
  // Overheads from 0 up to the smallest time (no op takes less than the overhead).
  std::vector<double> overheads = {0.0};
  for (int k = 0; k <= 40; ++k) overheads.push_back(t_min * std::exp2(-0.25 * k));
  // Without FLOPs there is no compute bound: its rate stays out of the search.
  const int reach = any_flops ? 1 : 0;
  const double rc_center = best_rc, rm_center = best_rm;
  double best_o = 0, best = std::numeric_limits<double>::infinity();
  // The rates that fit best for one overhead: a coarse grid, then finer ones around the
  // best point.
  auto fit_rates = [&](double o, double* lc_out, double* lm_out) {
    double e_best = std::numeric_limits<double>::infinity(), lc = rc_center, lm = rm_center;
    auto look = [&](double c, double m) {
      const double e = log_error(s, o, any_flops ? c : 60.0, m);
      if (e < e_best) {
        e_best = e;
        lc = c;
        lm = m;
      }
    };
    for (int i = -8 * reach; i <= 16 * reach; ++i)
      for (int j = -8; j <= 16; ++j) look(rc_center + 0.5 * i, rm_center + 0.5 * j);
    for (double step : {1.0 / 8, 1.0 / 64, 1.0 / 512}) {
      const double c0 = lc, m0 = lm;
      for (int i = -4 * reach; i <= 4 * reach; ++i)
        for (int j = -4; j <= 4; ++j) look(c0 + step * i, m0 + step * j);
    }
    *lc_out = lc;
    *lm_out = lm;
    return e_best;
  };
  auto consider = [&](double o) {
    double lc = 0, lm = 0;
    const double e = fit_rates(o, &lc, &lm);
    if (e < best) {
      best = e;
      best_o = o;
      best_rc = lc;
      best_rm = lm;
    }
  };
  for (double o : overheads) consider(o);
  // Between the overhead grid's points next to the best.
  if (best_o > 0)
    for (int k = -7; k <= 7; ++k)
      if (k != 0) consider(std::min(best_o * std::exp2(k / 32.0), t_min));
  out.overhead_s = best_o;
  out.flops_per_s = any_flops ? std::exp2(best_rc) : 0.0;
  out.bytes_per_s = std::exp2(best_rm);
  return out;
}

Result<Calibration> fit_calibration(const hal::DeviceInfo& info,
                                    std::span<const CalibrationSample> samples,
                                    const CalibrationFitOptions& options) {
  const std::string who = "calibration of " + (info.id.empty() ? info.name : info.id);
  if (samples.empty()) return invalid_argument(who + ": no samples");
  const DeviceCostModel peaks(info);  // uncalibrated: only its peaks are used
  double overhead = info.launch_overhead_s;
  std::vector<std::array<double, 2>> ideal(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    const CalibrationSample& s = samples[i];
    if (!(s.flops >= 0) || !(s.bytes >= 0) || !std::isfinite(s.flops) || !std::isfinite(s.bytes) ||
        !(s.seconds > 0) || !std::isfinite(s.seconds))
      return invalid_argument(who + ": sample " + std::to_string(i) + " (" +
                              std::string(op_class_name(s.op_class)) +
                              ") needs finite flops >= 0, bytes >= 0 and seconds > 0");
    const double pf = peaks.peak_flops(s.op_class, s.dtype);
    const double pb = info.memory_bandwidth_bytes_per_s;
    if ((s.flops > 0 && !(pf > 0)) || (s.bytes > 0 && !(pb > 0)))
      return invalid_argument(who + ": the device reports no peak " +
                              (s.flops > 0 && !(pf > 0) ? std::string("FLOP/s for ") +
                                                              std::string(hal::dtype_name(s.dtype))
                                                        : std::string("memory bandwidth")) +
                              ", so efficiencies cannot be measured against it");
    ideal[i] = {s.flops > 0 ? s.flops / pf : 0.0, s.bytes > 0 ? s.bytes / pb : 0.0};
  }
  Calibration cal;
  cal.device_name = info.name;
  cal.backend = info.backend;
  cal.device_id = info.id;
  cal.created_at = utc_now();
  cal.memory_bandwidth_bytes_per_s = info.memory_bandwidth_bytes_per_s;
  cal.peak_flops = info.peak_flops;
  if (options.fit_overhead) {
    // An upper bound on the overhead that is tight for the smallest ops: no op runs
    // faster than its time at 100% of peak.
    double o = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < samples.size(); ++i)
      o = std::min(o, samples[i].seconds - std::max(ideal[i][0], ideal[i][1]));
    overhead = std::max(0.0, o);
    cal.launch_overhead_s = overhead;
  }

  for (int c = 0; c < kOpClassCount; ++c) {
    std::vector<PreparedSample> group;
    for (size_t i = 0; i < samples.size(); ++i) {
      if (int(samples[i].op_class) != c) continue;
      const double busy = samples[i].seconds - overhead;
      // A sample that took no longer than the overhead, or did no work, says nothing
      // about the achieved fraction of peak.
      if (!(busy > 0) || (ideal[i][0] <= 0 && ideal[i][1] <= 0)) continue;
      group.push_back({ideal[i][0], ideal[i][1], busy});
    }
    if (group.empty()) continue;
    ClassCalibration cc;
    cc.samples = int32_t(group.size());
    cc.efficiency = fit_group(group, kDefaultEfficiency[size_t(c)]);
    // Size buckets: decades of the time at 100% of peak.
    std::map<int, std::vector<PreparedSample>> by_decade;
    for (const PreparedSample& s : group)
      by_decade[int(std::floor(std::log10(std::max(s.ideal_compute, s.ideal_memory))))].push_back(
          s);
    std::vector<EfficiencyBucket> buckets;
    for (const auto& [decade, members] : by_decade) {
      if (int32_t(members.size()) < options.min_bucket_samples) continue;
      EfficiencyBucket b;
      double log_sum = 0;
      for (const PreparedSample& s : members)
        log_sum += std::log(std::max(s.ideal_compute, s.ideal_memory));
      b.ideal_seconds = std::exp(log_sum / double(members.size()));
      b.efficiency = fit_group(members, cc.efficiency);
      b.samples = int32_t(members.size());
      buckets.push_back(b);
    }
    if (buckets.size() >= 2) cc.buckets = std::move(buckets);
    cal.op_classes[size_t(c)] = std::move(cc);
  }
  // Per op kind, dtype and layout, in the order they first appear.
  using Key = std::tuple<hal::OpKind, hal::DType, int32_t>;
  std::vector<Key> keys;
  std::map<Key, std::vector<OpSample>> by_op;
  for (const CalibrationSample& smp : samples) {
    if (smp.op == hal::OpKind::kInvalid) continue;
    const Key key{smp.op, smp.dtype, smp.layout};
    if (!by_op.count(key)) keys.push_back(key);
    by_op[key].push_back({smp.flops, smp.bytes, smp.seconds, smp.in_block, smp.after_stream});
  }
  for (const Key& key : keys)
    if (int32_t(by_op[key].size()) >= options.min_op_samples)
      cal.ops.push_back(fit_op_calibration(std::get<0>(key), std::get<1>(key),
                                           std::move(by_op[key]), std::get<2>(key)));
  bool any = false;
  for (const auto& c : cal.op_classes) any = any || c.has_value();
  if (!any)
    return invalid_argument(who + ": every sample took no longer than the per-op overhead (" +
                            std::to_string(overhead) + " s) or did no work");
  return cal;
}

std::filesystem::path default_calibration_dir() {
  if (const char* d = std::getenv("HAL_CALIBRATION_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::filesystem::path(x) / "hal" / "calibration";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::filesystem::path(h) / ".cache" / "hal" / "calibration";
  return std::filesystem::path(".hal-cache") / "calibration";
}

std::filesystem::path calibration_path(const hal::DeviceInfo& info,
                                       const std::filesystem::path& dir) {
  const std::filesystem::path base = dir.empty() ? default_calibration_dir() : dir;
  return base / (slug(info.backend) + "-" + slug(info.name) + ".json");
}

#if HAL_SCHEDULER_HAVE_JSON

namespace {

using nlohmann::json;

json efficiency_json(const Efficiency& e, int32_t samples) {
  return json{
      {"compute_efficiency", e.compute}, {"memory_efficiency", e.memory}, {"samples", samples}};
}

// Reads one field with a check; errors name the key path.
struct Reader {
  std::string origin;
  Status error(const std::string& key, const std::string& what) const {
    return invalid_argument("calibration " + origin + ": key '" + key + "': " + what);
  }
  Status efficiency(const json& obj, const std::string& path, const char* key, double* out) const {
    const auto it = obj.find(key);
    if (it == obj.end()) return error(path + "." + key, "missing");
    if (!it->is_number()) return error(path + "." + key, "must be a number");
    const double v = it->get<double>();
    if (!(v > 0 && v <= 1)) return error(path + "." + key, "must be in (0, 1], got " + it->dump());
    *out = v;
    return ok_status();
  }
  Status non_negative(const json& obj, const std::string& path, const char* key,
                      double* out) const {
    const auto it = obj.find(key);
    if (it == obj.end()) return error(path + "." + key, "missing");
    if (!it->is_number() || !(it->get<double>() >= 0) || !std::isfinite(it->get<double>()))
      return error(path + "." + key, "must be a number >= 0");
    *out = it->get<double>();
    return ok_status();
  }
  Status samples(const json& obj, const std::string& path, int32_t* out) const {
    const auto it = obj.find("samples");
    if (it == obj.end()) return ok_status();
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > INT32_MAX)
      return error(path + ".samples", "must be a non-negative integer");
    *out = int32_t(it->get<int64_t>());
    return ok_status();
  }
  Status string(const json& obj, const std::string& path, const char* key, bool required,
                std::string* out) const {
    const auto it = obj.find(key);
    if (it == obj.end()) return required ? error(path + key, "missing") : ok_status();
    if (!it->is_string()) return error(path + key, "must be a string");
    *out = it->get<std::string>();
    return ok_status();
  }
};

}  // namespace

std::string calibration_to_json(const Calibration& cal) {
  json j;
  j["format"] = "hal-calibration";
  j["version"] = 2;
  j["device"] = {{"name", cal.device_name}, {"backend", cal.backend}, {"id", cal.device_id}};
  if (!cal.created_by.empty()) j["created_by"] = cal.created_by;
  if (!cal.created_at.empty()) j["created_at"] = cal.created_at;
  if (cal.launch_overhead_s) j["launch_overhead_s"] = *cal.launch_overhead_s;
  if (cal.memory_bandwidth_bytes_per_s > 0 || !cal.peak_flops.empty()) {
    json figures = json::object();
    if (cal.memory_bandwidth_bytes_per_s > 0)
      figures["memory_bandwidth_bytes_per_s"] = cal.memory_bandwidth_bytes_per_s;
    json peaks = json::object();
    for (const auto& [t, v] : cal.peak_flops) peaks[std::string(hal::dtype_name(t))] = v;
    figures["peak_flops_per_s"] = std::move(peaks);
    j["device_figures"] = std::move(figures);
  }
  json classes = json::object();
  for (int c = 0; c < kOpClassCount; ++c) {
    const auto& cc = cal.op_classes[size_t(c)];
    if (!cc) continue;
    json cj = efficiency_json(cc->efficiency, cc->samples);
    if (!cc->buckets.empty()) {
      json bs = json::array();
      for (const EfficiencyBucket& b : cc->buckets) {
        json bj = efficiency_json(b.efficiency, b.samples);
        bj["ideal_seconds"] = b.ideal_seconds;
        bs.push_back(std::move(bj));
      }
      cj["buckets"] = std::move(bs);
    }
    classes[std::string(op_class_name(hal::OpClass(c)))] = std::move(cj);
  }
  j["op_classes"] = std::move(classes);
  if (!cal.ops.empty()) {
    json ops = json::array();
    for (const OpCalibration& o : cal.ops) {
      json samples = json::array();
      for (const OpSample& x : o.samples) {
        const int places = (x.in_block ? 1 : 0) | (x.after_stream ? 2 : 0);
        samples.push_back(places != 0 ? json::array({x.flops, x.bytes, x.seconds, places})
                                      : json::array({x.flops, x.bytes, x.seconds}));
      }
      json oj = {{"op", std::string(hal::op_kind_name(o.op))},
                 {"dtype", std::string(hal::dtype_name(o.dtype))},
                 {"overhead_s", o.overhead_s},
                 {"flops_per_s", o.flops_per_s},
                 {"bytes_per_s", o.bytes_per_s},
                 {"samples", std::move(samples)}};
      if (o.layout != 0) oj["layout"] = o.layout;
      ops.push_back(std::move(oj));
    }
    j["ops"] = std::move(ops);
  }
  return j.dump(2) + "\n";
}

Result<Calibration> parse_calibration(std::string_view text, std::string_view origin) {
  const Reader r{std::string(origin)};
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number too large for a double ("9e652").
    return invalid_argument("calibration " + r.origin + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) return invalid_argument("calibration " + r.origin + ": not a JSON object");
  Calibration cal;
  const auto fmt = j.find("format");
  if (fmt == j.end() || !fmt->is_string() || fmt->get<std::string>() != "hal-calibration")
    return r.error("format", "must be \"hal-calibration\"");
  const auto ver = j.find("version");
  if (ver == j.end() || !ver->is_number_integer())
    return r.error("version", "missing or not an integer");
  if (ver->get<int64_t>() != 1 && ver->get<int64_t>() != 2)
    return r.error("version",
                   "version " + ver->dump() + " is not understood (this build reads 1 and 2)");
  const auto dev = j.find("device");
  if (dev == j.end() || !dev->is_object()) return r.error("device", "missing or not an object");
  HAL_RETURN_IF_ERROR(r.string(*dev, "device.", "name", true, &cal.device_name));
  HAL_RETURN_IF_ERROR(r.string(*dev, "device.", "backend", true, &cal.backend));
  HAL_RETURN_IF_ERROR(r.string(*dev, "device.", "id", false, &cal.device_id));
  HAL_RETURN_IF_ERROR(r.string(j, "", "created_by", false, &cal.created_by));
  HAL_RETURN_IF_ERROR(r.string(j, "", "created_at", false, &cal.created_at));
  if (const auto lo = j.find("launch_overhead_s"); lo != j.end()) {
    if (!lo->is_number() || !(lo->get<double>() >= 0) || !std::isfinite(lo->get<double>()))
      return r.error("launch_overhead_s", "must be a number >= 0");
    cal.launch_overhead_s = lo->get<double>();
  }
  const auto classes = j.find("op_classes");
  if (classes == j.end() || !classes->is_object())
    return r.error("op_classes", "missing or not an object");
  for (const auto& [name, cj] : classes->items()) {
    const auto cls = parse_op_class(name);
    const std::string path = "op_classes." + name;
    if (!cls) return r.error(path, "unknown op class (expected matrix, vector or data)");
    if (!cj.is_object()) return r.error(path, "must be an object");
    ClassCalibration cc;
    HAL_RETURN_IF_ERROR(r.efficiency(cj, path, "compute_efficiency", &cc.efficiency.compute));
    HAL_RETURN_IF_ERROR(r.efficiency(cj, path, "memory_efficiency", &cc.efficiency.memory));
    HAL_RETURN_IF_ERROR(r.samples(cj, path, &cc.samples));
    if (const auto bs = cj.find("buckets"); bs != cj.end()) {
      if (!bs->is_array()) return r.error(path + ".buckets", "must be an array");
      for (size_t i = 0; i < bs->size(); ++i) {
        const json& bj = (*bs)[i];
        const std::string bpath = path + ".buckets[" + std::to_string(i) + "]";
        if (!bj.is_object()) return r.error(bpath, "must be an object");
        EfficiencyBucket b;
        const auto is = bj.find("ideal_seconds");
        if (is == bj.end() || !is->is_number() || !(is->get<double>() > 0) ||
            !std::isfinite(is->get<double>()))
          return r.error(bpath + ".ideal_seconds", "missing or not a number > 0");
        b.ideal_seconds = is->get<double>();
        HAL_RETURN_IF_ERROR(r.efficiency(bj, bpath, "compute_efficiency", &b.efficiency.compute));
        HAL_RETURN_IF_ERROR(r.efficiency(bj, bpath, "memory_efficiency", &b.efficiency.memory));
        HAL_RETURN_IF_ERROR(r.samples(bj, bpath, &b.samples));
        cc.buckets.push_back(b);
      }
      std::sort(cc.buckets.begin(), cc.buckets.end(),
                [](const auto& a, const auto& b) { return a.ideal_seconds < b.ideal_seconds; });
    }
    cal.op_classes[size_t(*cls)] = std::move(cc);
  }
  if (const auto figures = j.find("device_figures"); figures != j.end()) {
    if (!figures->is_object()) return r.error("device_figures", "must be an object");
    if (const auto bw = figures->find("memory_bandwidth_bytes_per_s"); bw != figures->end()) {
      if (!bw->is_number() || !(bw->get<double>() > 0) || !std::isfinite(bw->get<double>()))
        return r.error("device_figures.memory_bandwidth_bytes_per_s", "must be a number > 0");
      cal.memory_bandwidth_bytes_per_s = bw->get<double>();
    }
    if (const auto peaks = figures->find("peak_flops_per_s"); peaks != figures->end()) {
      if (!peaks->is_object())
        return r.error("device_figures.peak_flops_per_s", "must be an object");
      for (const auto& [name, v] : peaks->items()) {
        const auto t = hal::parse_dtype(name);
        if (!t) return r.error("device_figures.peak_flops_per_s." + name, "unknown dtype");
        if (!v.is_number() || !(v.get<double>() >= 0) || !std::isfinite(v.get<double>()))
          return r.error("device_figures.peak_flops_per_s." + name, "must be a number >= 0");
        cal.peak_flops[*t] = v.get<double>();
      }
    }
  }
  if (const auto ops = j.find("ops"); ops != j.end()) {
    if (!ops->is_array()) return r.error("ops", "must be an array");
    for (size_t i = 0; i < ops->size(); ++i) {
      const json& oj = (*ops)[i];
      const std::string path = "ops[" + std::to_string(i) + "]";
      if (!oj.is_object()) return r.error(path, "must be an object");
      OpCalibration o;
      std::string op_name, dtype_name;
      HAL_RETURN_IF_ERROR(r.string(oj, path + ".", "op", true, &op_name));
      HAL_RETURN_IF_ERROR(r.string(oj, path + ".", "dtype", true, &dtype_name));
      const auto kind = hal::parse_op_kind(op_name);
      if (!kind) return r.error(path + ".op", "unknown op '" + op_name + "'");
      const auto dtype = hal::parse_dtype(dtype_name);
      if (!dtype) return r.error(path + ".dtype", "unknown dtype '" + dtype_name + "'");
      o.op = *kind;
      o.dtype = *dtype;
      if (const auto lay = oj.find("layout"); lay != oj.end()) {
        if (!lay->is_number_integer() || lay->get<int64_t>() < 0 || lay->get<int64_t>() > 3)
          return r.error(path + ".layout", "must be an integer in [0, 3]");
        o.layout = int32_t(lay->get<int64_t>());
      }
      HAL_RETURN_IF_ERROR(r.non_negative(oj, path, "overhead_s", &o.overhead_s));
      HAL_RETURN_IF_ERROR(r.non_negative(oj, path, "flops_per_s", &o.flops_per_s));
      HAL_RETURN_IF_ERROR(r.non_negative(oj, path, "bytes_per_s", &o.bytes_per_s));
      if (!(o.bytes_per_s > 0)) return r.error(path + ".bytes_per_s", "must be > 0");
      const auto samples = oj.find("samples");
      if (samples == oj.end() || !samples->is_array())
        return r.error(path + ".samples", "missing or not an array");
      for (size_t k = 0; k < samples->size(); ++k) {
        const json& sj = (*samples)[k];
        const std::string spath = path + ".samples[" + std::to_string(k) + "]";
        bool good = sj.is_array() && (sj.size() == 3 || sj.size() == 4);
        for (size_t f = 0; good && f < 3; ++f)
          good =
              sj[f].is_number() && sj[f].get<double>() >= 0 && std::isfinite(sj[f].get<double>());
        if (good && sj.size() == 4)
          good =
              sj[3].is_number_integer() && sj[3].get<int64_t>() >= 0 && sj[3].get<int64_t>() <= 3;
        if (!good || !(sj[2].get<double>() > 0))
          return r.error(spath,
                         "must be [flops >= 0, bytes >= 0, seconds > 0] or with a 4th element, "
                         "its places, 0 to 3");
        const int64_t places = sj.size() == 4 ? sj[3].get<int64_t>() : 0;
        o.samples.push_back({sj[0].get<double>(), sj[1].get<double>(), sj[2].get<double>(),
                             (places & 1) != 0, (places & 2) != 0});
      }
      if (cal.for_op(o.op, o.dtype, o.layout))
        return r.error(
            path, "a second calibration of " + op_layout_name(o.op, o.layout) + " " + dtype_name);
      cal.ops.push_back(std::move(o));
    }
  }
  return cal;
}

#else  // !HAL_SCHEDULER_HAVE_JSON

std::string calibration_to_json(const Calibration&) { return {}; }

Result<Calibration> parse_calibration(std::string_view, std::string_view origin) {
  return unimplemented("calibration " + std::string(origin) +
                       ": this build has no JSON support (apt-get install nlohmann-json3-dev)");
}

#endif

Result<Calibration> load_calibration(const std::filesystem::path& path) {
  HAL_ASSIGN_OR_RETURN(std::string text,
                       read_regular_file(path.string(), "calibration", uint64_t(16) << 20));
  return parse_calibration(text, path.string());
}

Status save_calibration(const Calibration& cal, const std::filesystem::path& path) {
#if !HAL_SCHEDULER_HAVE_JSON
  return unimplemented("calibration " + path.string() +
                       ": this build has no JSON support (apt-get install nlohmann-json3-dev)");
#endif
  std::error_code ec;
  if (path.has_parent_path()) {
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec)
      return unavailable("calibration " + path.string() + ": cannot create " +
                         path.parent_path().string() + ": " + ec.message());
  }
  // Write then rename, so a concurrent reader sees the old file or the new one.
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      return unavailable("calibration " + tmp.string() + ": cannot write: " + std::strerror(errno));
    out << calibration_to_json(cal);
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp, ec);
      return unavailable("calibration " + tmp.string() + ": write failed");
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    return unavailable("calibration " + path.string() +
                       ": cannot rename into place: " + ec.message());
  }
  return ok_status();
}

Result<std::optional<Calibration>> find_calibration(const hal::DeviceInfo& info,
                                                    const std::filesystem::path& dir) {
  const std::filesystem::path path = calibration_path(info, dir);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<Calibration>();
  HAL_ASSIGN_OR_RETURN(Calibration cal, load_calibration(path));
  if (cal.device_name != info.name || cal.backend != info.backend)
    return failed_precondition("calibration " + path.string() + " was written for '" +
                               cal.device_name + "' (" + cal.backend + "), not '" + info.name +
                               "' (" + info.backend + ")");
  return std::optional<Calibration>(std::move(cal));
}

}  // namespace hal::scheduler
