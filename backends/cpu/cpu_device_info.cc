#include "cpu_device_info.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "cpu_blas.h"
#include "cpu_threading.h"
#include "hal/memory_bandwidth.h"
#include "hal/plugin/host_queue.h"

namespace hal::cpu {

namespace {

using Clock = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string format_g(double v, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

struct CpuInfoText {
  std::string vendor_id, model_name, flags;
  double mhz = 0;
};

CpuInfoText read_proc_cpuinfo() {
  CpuInfoText t;
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) {
      if (!t.model_name.empty()) break;  // end of the first processor's block
      continue;
    }
    std::string key = line.substr(0, colon);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "vendor_id") t.vendor_id = value;
    if (key == "model name") t.model_name = value;
    if (key == "flags") t.flags = " " + value + " ";
    if (key == "cpu MHz") t.mhz = std::atof(value.c_str());
  }
  return t;
}

bool has_flag(const CpuInfoText& t, const char* flag) {
  return t.flags.find(" " + std::string(flag) + " ") != std::string::npos;
}

// Size strings of sysfs caches: "48K", "2048K", "266240K", "32M".
uint64_t parse_size(const std::string& s) {
  if (s.empty()) return 0;
  const double v = std::atof(s.c_str());
  const char unit = s.back();
  if (unit == 'K') return uint64_t(v * 1024);
  if (unit == 'M') return uint64_t(v * 1024 * 1024);
  if (unit == 'G') return uint64_t(v * 1024 * 1024 * 1024);
  return uint64_t(v);
}

struct Cache {
  int level = 0;
  uint64_t bytes = 0;
};
Cache last_level_cache() {
  Cache best;
  for (int i = 0; i < 16; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    const std::string level = read_file(dir + "level");
    if (level.empty()) break;
    if (read_file(dir + "type") == "Instruction") continue;
    const int l = std::atoi(level.c_str());
    if (l >= best.level) best = {l, parse_size(read_file(dir + "size"))};
  }
  return best;
}

// ---- the measurements ---------------------------------------------------------------------

struct Measured {
  BandwidthMeasurement bandwidth;
  std::string measured_at;   // UTC, ISO 8601
  double load_average = 0;   // the 1-minute load average when measured
  bool provisional = false;  // taken while other work used the machine (see the header)
  std::string cached_in;     // the cache file it came from ("" = measured by this process)
  double launch_overhead_s = 0;
  std::string launch_how;
};

double measure_launch(std::string* how) {
  // A no-op command through the stream queue, back to back (what each dispatched op pays
  // in queueing), plus one fork/join of the compute arena (what a parallel kernel adds).
  constexpr int kCommands = 2000, kForks = 200;
  double per_command;
  {
    plugin::HostQueue q;
    for (int i = 0; i < 100; ++i) q.enqueue([] { return ok_status(); });
    q.synchronize().ignore();
    const auto t0 = Clock::now();
    for (int i = 0; i < kCommands; ++i) q.enqueue([] { return ok_status(); });
    q.synchronize().ignore();
    per_command = std::chrono::duration<double>(Clock::now() - t0).count() / kCommands;
  }
  double per_fork = 0;
  if (thread_budget() > 1) {
    auto fork = [] { parallel_for_static(thread_budget(), [](int64_t, int64_t) {}); };
    for (int i = 0; i < 20; ++i) fork();
    const auto t0 = Clock::now();
    for (int i = 0; i < kForks; ++i) fork();
    per_fork = std::chrono::duration<double>(Clock::now() - t0).count() / kForks;
  }
  *how = "measured: " + format_g(per_command * 1e6) + " us per queued no-op command + " +
         format_g(per_fork * 1e6) + " us per fork/join over " + std::to_string(thread_budget()) +
         " threads";
  return per_command + per_fork;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::filesystem::path cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::filesystem::path(x) / "hal";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::filesystem::path(h) / ".cache" / "hal";
  return {};
}

// v3: read-only as eight streams of 32-byte loads per thread (hal/memory_bandwidth.h).
// Not read: v2 files (four 16-byte streams, ~20% lower on the Zen 4 VMs) and v1 files (a
// triad over <= 256 MiB that a large L3 could hold).
std::string cache_key(const std::string& model, uint64_t llc) {
  std::string key = "cpu-v3-";
  for (char ch : model) key += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return key + "-" + std::to_string(thread_budget()) + "t-" + std::to_string(llc >> 10) + "k.txt";
}

std::map<std::string, std::string> read_cache(const std::filesystem::path& file) {
  std::map<std::string, std::string> kv;
  std::ifstream f(file);
  for (std::string line; std::getline(f, line);) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return kv;
}

std::optional<Measured> from_cache(const std::filesystem::path& file) {
  auto kv = read_cache(file);
  auto num = [&](const char* key) { return std::atof(kv[key].c_str()); };
  Measured m;
  m.bandwidth.read_best = num("read_bytes_per_s");
  m.bandwidth.read_median = num("read_median_bytes_per_s");
  m.bandwidth.triad_best = num("triad_bytes_per_s");
  m.bandwidth.triad_median = num("triad_median_bytes_per_s");
  m.bandwidth.buffer_bytes = uint64_t(num("buffer_bytes"));
  m.bandwidth.threads = int(num("threads"));
  m.bandwidth.passes = int(num("passes"));
  m.bandwidth.others_cpus = num("others_cpus");
  m.measured_at = kv["measured_at"];
  m.load_average = num("load_average");
  m.provisional = kv["provisional"] != "0";
  m.launch_overhead_s = num("launch_overhead_s");
  m.launch_how = kv["launch_overhead_how"] + " (cached)";
  m.cached_in = file.string();
  if (!m.bandwidth.ok() || !(m.launch_overhead_s > 0) || m.measured_at.empty()) return std::nullopt;
  return m;
}

void write_cache(const std::filesystem::path& file, const Measured& m) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  if (ec) return;
  const std::filesystem::path tmp =
      file.string() + ".tmp" + std::to_string(static_cast<long>(getpid()));
  {
    std::ofstream f(tmp);
    if (!f) return;
    auto e = [](double v) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6e", v);
      return std::string(buf);
    };
    const BandwidthMeasurement& b = m.bandwidth;
    f << "measured_at=" << m.measured_at << "\n"
      << "provisional=" << (m.provisional ? 1 : 0) << "\n"
      << "read_bytes_per_s=" << e(b.read_best) << "\n"
      << "read_median_bytes_per_s=" << e(b.read_median) << "\n"
      << "triad_bytes_per_s=" << e(b.triad_best) << "\n"
      << "triad_median_bytes_per_s=" << e(b.triad_median) << "\n"
      << "buffer_bytes=" << b.buffer_bytes << "\n"
      << "threads=" << b.threads << "\n"
      << "passes=" << b.passes << "\n"
      << "others_cpus=" << e(b.others_cpus) << "\n"
      << "load_average=" << m.load_average << "\n"
      << "launch_overhead_s=" << e(m.launch_overhead_s) << "\n"
      << "launch_overhead_how=" << m.launch_how << "\n";
    if (!f) return;
  }
  std::filesystem::rename(tmp, file, ec);  // atomic: concurrent loads see all or nothing
  if (ec) std::filesystem::remove(tmp, ec);
}

// HAL_CPU_MEMORY_BANDWIDTH: "2.1e10", "21000000000" or "21 GB/s".
double bandwidth_override(std::string* text) {
  const char* env = std::getenv("HAL_CPU_MEMORY_BANDWIDTH");
  if (!env || !*env) return 0;
  char* end = nullptr;
  double v = std::strtod(env, &end);
  std::string unit(end ? end : "");
  unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
  if (unit == "GB/s" || unit == "G")
    v *= 1e9;
  else if (unit == "MB/s" || unit == "M")
    v *= 1e6;
  else if (!unit.empty())
    return 0;
  *text = env;
  return v > 0 && std::isfinite(v) ? v : 0;
}

// Whether the machine looks quiet enough to measure: the load average is low and, over a
// short look, other processes take little CPU.
bool machine_looks_quiet() {
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  const double load = load_average_1min();
  if (load >= 0 && load > 0.5 * double(cpus > 0 ? cpus : 1)) return false;
  const OtherCpuUse probe;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return probe.others_cpus() <= kBusyOtherCpus;
}

Measured measure_now(uint64_t llc) {
  Measured m;
  m.load_average = load_average_1min();
  m.measured_at = utc_now();
  // On the backend's own threads (its arena and thread budget), as its kernels stream.
  const int threads = int(thread_budget());
  m.bandwidth = measure_memory_bandwidth(bandwidth_buffer_bytes(llc), 5, threads,
                                         [](int n, const std::function<void(int)>& part) {
                                           parallel_for_static(n, [&](int64_t t0, int64_t t1) {
                                             for (int64_t t = t0; t < t1; ++t) part(int(t));
                                           });
                                         });
  m.provisional = m.bandwidth.disturbed();
  m.launch_overhead_s = measure_launch(&m.launch_how);
  return m;
}

// The cached figures when they were taken on a quiet machine; otherwise a new
// measurement, stored as the machine's figure when the machine was quiet and as a
// provisional one (replaced at the first quiet load) when it was not.
Measured measure_or_load(const std::string& model, uint64_t llc) {
  const std::filesystem::path dir = cache_dir();
  const std::filesystem::path file = dir.empty() ? dir : dir / cache_key(model, llc);
  const char* remeasure = std::getenv("HAL_CPU_REMEASURE");
  const bool forced = remeasure && std::string(remeasure) == "1";
  std::optional<Measured> cached;
  if (!file.empty() && !forced) cached = from_cache(file);
  if (cached && !cached->provisional) return *cached;
  // A provisional figure stands while the machine stays busy: measuring again now would
  // read low again, at a cost of a second or two per process.
  if (cached && !machine_looks_quiet()) return *cached;
  Measured m = measure_now(llc);
  if (!m.bandwidth.ok()) return cached ? *cached : m;
  // A disturbed measurement never replaces a higher provisional one.
  if (m.provisional && cached && cached->bandwidth.read_best > m.bandwidth.read_best)
    return *cached;
  if (!file.empty()) write_cache(file, m);
  return m;
}

std::string bandwidth_source(const Measured& m) {
  std::string s = "measured " + m.measured_at + ": " + m.bandwidth.describe() +
                  "; the figure is the read-only best (what weight streaming reaches)";
  if (m.provisional)
    s += "; PROVISIONAL: other work used the machine while it ran (load average " +
         format_g(m.load_average) + "), so it may read low; it is measured again at the first " +
         "load on a quiet machine";
  if (!m.cached_in.empty()) s += " (cached in " + m.cached_in + ")";
  return s;
}

}  // namespace

DeviceInfo describe_cpu() {
  DeviceInfo info;
  info.id_prefix = "cpu";
  info.kind = DeviceKind::kCpu;
  const CpuInfoText cpu = read_proc_cpuinfo();
  info.vendor = cpu.vendor_id == "GenuineIntel"   ? "Intel"
                : cpu.vendor_id == "AuthenticAMD" ? "AMD"
                : cpu.vendor_id.empty()           ? "unknown"
                                                  : cpu.vendor_id;
  info.name = cpu.model_name.empty() ? "CPU" : cpu.model_name;
  info.memory_kind = "DRAM";
  const int threads = thread_budget();
  info.compute_units = uint32_t(threads);
  info.properties.emplace_back("source.compute_units", "thread budget: " + thread_budget_source());

  // Memory: physical pages, capped by a cgroup limit.
  info.memory_bytes = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
  std::string mem_source = "OS: sysconf(_SC_PHYS_PAGES) x page size";
  const std::string cg = read_file("/sys/fs/cgroup/memory.max");
  if (!cg.empty() && cg != "max") {
    const uint64_t limit = std::strtoull(cg.c_str(), nullptr, 10);
    if (limit > 0 && limit < info.memory_bytes) {
      info.memory_bytes = limit;
      mem_source = "OS: cgroup memory.max";
    }
  }
  info.properties.emplace_back("source.memory_bytes", mem_source);

  // Clock: the maximum frequency where the OS exposes it.
  std::string clock_source;
  const std::string max_khz = read_file("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq");
  if (!max_khz.empty() && std::atof(max_khz.c_str()) > 0) {
    info.clock_hz = std::atof(max_khz.c_str()) * 1e3;
    clock_source = "OS: cpufreq cpuinfo_max_freq";
  } else if (size_t at = info.name.find(" @ ");
             at != std::string::npos && std::atof(info.name.c_str() + at + 3) > 0) {
    info.clock_hz = std::atof(info.name.c_str() + at + 3) * 1e9;
    clock_source = "model name (nominal clock)";
  } else if (cpu.mhz > 0) {
    info.clock_hz = cpu.mhz * 1e6;
    clock_source = "/proc/cpuinfo cpu MHz (current clock; no cpufreq on this machine)";
  } else {
    info.clock_hz = 2.0e9;
    clock_source = "assumed 2.0 GHz (no clock reported by the OS)";
  }
  info.properties.emplace_back("source.clock_hz", clock_source);

  // FLOP per cycle per core from the widest SIMD with FMA. Two 512-bit FMA units on Xeon
  // server cores; other AVX-512 parts (client cores, AMD Zen 4) sustain one 512-bit FMA
  // (or two 256-bit) per cycle.
  double lanes = 4, fma_units = 1, per_fma = 1;  // SSE: separate add + mul = 8 FLOP/cycle
  std::string simd = "sse2";
  if (has_flag(cpu, "avx512f")) {
    lanes = 16;
    per_fma = 2;
    fma_units = (info.vendor == "Intel" && info.name.find("Xeon") != std::string::npos) ? 2 : 1;
    simd = "avx512f+fma";
  } else if (has_flag(cpu, "avx2") && has_flag(cpu, "fma")) {
    lanes = 8;
    per_fma = 2;
    fma_units = 2;
    simd = "avx2+fma";
  } else if (has_flag(cpu, "avx")) {
    lanes = 8;
    per_fma = 1;
    fma_units = 2;  // one add and one multiply port
    simd = "avx";
  } else {
    per_fma = 1;
    fma_units = 2;
  }
  const double flop_per_cycle = lanes * per_fma * fma_units;
  const double peak = double(threads) * info.clock_hz * flop_per_cycle;
  info.peak_flops[DType::kF32] = peak;
  info.peak_flops[DType::kF16] = peak;
  info.peak_flops[DType::kBF16] = peak;
  const std::string flops_source = "cpu features: " + simd + ", " + std::to_string(threads) +
                                   " cores x " + format_g(info.clock_hz * 1e-9) + " GHz x " +
                                   format_g(flop_per_cycle) + " FLOP/cycle (" +
                                   format_g(fma_units) + " x " + format_g(lanes) + "-lane " +
                                   (per_fma == 2 ? "FMA" : "add/mul") + ")";
  info.properties.emplace_back("source.peak_flops", flops_source);
  info.properties.emplace_back("source.peak_flops.f16",
                               "computed through f32 (converted on load): the f32 figure");
  info.properties.emplace_back("source.peak_flops.bf16",
                               "computed through f32 (converted on load): the f32 figure");
  // Quantized weights (cpu_quant.h): int8 dot products of 32-byte (AVX2 maddubs, 2 per
  // cycle) or 64-byte (AVX-512 VNNI dpbusd; two units on Xeon server cores) vectors,
  // 2 ops per multiply-accumulate; fp8 weights go through f32 FMA.
  {
    double int8_per_cycle = 16;  // SSE2 pmaddwd on 16-bit lanes
    std::string how = "sse2 pmaddwd (scalar kernels)";
    if (has_flag(cpu, "avx512_vnni") && has_flag(cpu, "avx512f")) {
      const double units =
          (info.vendor == "Intel" && info.name.find("Xeon") != std::string::npos) ? 2 : 1;
      int8_per_cycle = 64 * 2 * units;
      how = "avx512-vnni dpbusd, " + format_g(units) + " x 64 int8 MAC/cycle";
    } else if (has_flag(cpu, "avx2")) {
      int8_per_cycle = 32 * 2 * 2;
      how = "avx2 maddubs, 2 x 32 int8 MAC/cycle";
    }
    const double int8_peak = double(threads) * info.clock_hz * int8_per_cycle;
    for (int f = int(DType::kQ8_0); f < kDTypeCount; ++f) {
      const DType t = DType(f);
      const bool fp8 = t == DType::kFP8E4M3Channel;
      info.peak_flops[t] = fp8 ? peak : int8_peak;
      // Decode products round A to int8 blocks (cpu_quant.h): |error| about sqrt(K) x
      // max|w| x max|a| / 440, 0.1 at 5 sigma for the suite's K = 256 (|ref| ~ 5).
      if (!fp8)
        info.properties.emplace_back("cts.tolerance.matmul." + std::string(dtype_name(t)),
                                     "0.1,1e-2");
      info.properties.emplace_back("source.peak_flops." + std::string(dtype_name(t)),
                                   fp8 ? "fp8 weights decoded by table, f32 FMA: the f32 figure"
                                       : "int8 activations x unpacked weights: " + how + ", " +
                                             std::to_string(threads) + " cores x " +
                                             format_g(info.clock_hz * 1e-9) + " GHz");
    }
  }

  const Cache llc = last_level_cache();
  info.sram_bytes = llc.bytes;
  info.properties.emplace_back("source.sram_bytes", llc.bytes
                                                        ? "sysfs: L" + std::to_string(llc.level) +
                                                              " cache (last level), cpu0/cache"
                                                        : "unknown: no cache sizes in sysfs");

  // Bandwidth and launch overhead: override, cache or measurement.
  std::string override_text;
  const double forced = bandwidth_override(&override_text);
  Measured m;
  if (forced > 0) {
    m.launch_overhead_s = measure_launch(&m.launch_how);
    info.memory_bandwidth_bytes_per_s = forced;
    info.properties.emplace_back("source.memory_bandwidth",
                                 "HAL_CPU_MEMORY_BANDWIDTH=" + override_text);
  } else {
    m = measure_or_load(info.name, llc.bytes);
    info.memory_bandwidth_bytes_per_s = m.bandwidth.read_best;
    info.properties.emplace_back("source.memory_bandwidth", bandwidth_source(m));
    if (m.bandwidth.ok()) {
      info.properties.emplace_back("memory_bandwidth.read_only",
                                   format_g(m.bandwidth.read_best, 4));
      info.properties.emplace_back("memory_bandwidth.triad", format_g(m.bandwidth.triad_best, 4));
      info.properties.emplace_back("memory_bandwidth.measured_at", m.measured_at);
      info.properties.emplace_back("memory_bandwidth.provisional",
                                   m.provisional ? "true" : "false");
    }
  }
  if (info.memory_bandwidth_bytes_per_s <= 0) {
    info.memory_bandwidth_bytes_per_s = 10e9;
    info.properties.back().second = "assumed 10 GB/s (measurement failed: no memory for arrays)";
  }
  info.launch_overhead_s = m.launch_overhead_s;
  info.properties.emplace_back("source.launch_overhead", m.launch_how);

  const BlasLibrary& lib = blas();
  info.properties.emplace_back(
      "blas", lib.available ? "OpenBLAS " + lib.path + " core " + lib.core + ", " +
                                  std::to_string(lib.threads) + " threads; " + lib.note
                            : lib.note);
  info.properties.emplace_back("simd", simd);

  // Host memory is this device's memory: the "link" is the memory bus itself.
  LinkInfo host;
  host.peer_index = -1;
  host.kind = "memory-bus";
  host.bandwidth_bytes_per_s = info.memory_bandwidth_bytes_per_s;
  host.latency_s = info.launch_overhead_s;
  info.links.push_back(host);
  info.properties.emplace_back("source.links",
                               "host link = memory bus at the memory bandwidth; latency = the "
                               "launch overhead (a host copy is a stream command)");
  return info;
}

}  // namespace hal::cpu
