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
#include <map>
#include <sstream>

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
  j["version"] = 1;
  j["device"] = {{"name", cal.device_name}, {"backend", cal.backend}, {"id", cal.device_id}};
  if (!cal.created_by.empty()) j["created_by"] = cal.created_by;
  if (!cal.created_at.empty()) j["created_at"] = cal.created_at;
  if (cal.launch_overhead_s) j["launch_overhead_s"] = *cal.launch_overhead_s;
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
  if (ver->get<int64_t>() != 1)
    return r.error("version", "version " + ver->dump() + " is not understood (this build reads 1)");
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
