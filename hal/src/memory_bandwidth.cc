// Memory bandwidth probes (hal/memory_bandwidth.h): read-only and STREAM triad over a buffer
// past every cache, with the CPU time other work took while they ran.
#include "hal/memory_bandwidth.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace hal {

namespace {

using Clock = std::chrono::steady_clock;

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// Busy and steal seconds of the whole machine since boot (first line of /proc/stat).
bool machine_cpu_seconds(double* busy, double* steal) {
  std::ifstream f("/proc/stat");
  std::string cpu;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                     st = 0;
  if (!(f >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq) || cpu != "cpu")
    return false;
  f >> st;  // absent on old kernels: stays 0
  const double hz = double(sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100);
  *busy = double(user + nice + system + irq + softirq) / hz;
  *steal = double(st) / hz;
  return true;
}

double own_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

uint64_t mem_available_bytes() {
  std::ifstream f("/proc/meminfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("MemAvailable:", 0) == 0)
      return std::strtoull(line.c_str() + 13, nullptr, 10) << 10;
  return 0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::string format_gbs(double bytes_per_s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GB/s", bytes_per_s * 1e-9);
  return buf;
}

// The streaming loops. The read loop XORs 64-bit words (integer and associative: it
// vectorises without reassociating floats) from four streams at once: one sequential
// stream per core left this 2-core EPYC VM at ~60% of the bandwidth its triad (three
// streams) reached. Baseline SSE2 vectors, no per-ISA clones (hal core is built without
// the CPU backend's multiversioning): a loop that waits on memory does not need wider
// loads; it has read 29-44 GB/s on this 2-core VM since, the range it read before.
uint64_t xor_words(const uint64_t* p, size_t n) {
  const size_t q = n / 4;
  const uint64_t *p0 = p, *p1 = p + q, *p2 = p + 2 * q, *p3 = p + 3 * q;
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i < q; ++i) {
    a ^= p0[i];
    b ^= p1[i];
    c ^= p2[i];
    d ^= p3[i];
  }
  for (size_t i = 4 * q; i < n; ++i) a ^= p[i];
  return a ^ b ^ c ^ d;
}

void triad_floats(float* __restrict a, const float* __restrict b, const float* __restrict c,
                  float scalar, size_t n) {
  for (size_t i = 0; i < n; ++i) a[i] = b[i] + scalar * c[i];
}

struct Mapping {
  float* p = nullptr;
  size_t bytes = 0;
  explicit Mapping(size_t b) : bytes(b) {
    // Not MADV_HUGEPAGE: on a fragmented machine the kernel's compaction made first touch
    // 6x slower.
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) p = static_cast<float*>(m);
  }
  ~Mapping() {
    if (p) munmap(p, bytes);
  }
};

}  // namespace

double load_average_1min() {
  double l[1];
  return getloadavg(l, 1) == 1 ? l[0] : -1.0;
}

OtherCpuUse::OtherCpuUse() {
  ok_ = machine_cpu_seconds(&busy0_, &steal0_);
  own0_ = own_cpu_seconds();
  wall0_ = now_s();
}

double OtherCpuUse::others_cpus() const {
  double busy = 0, steal = 0;
  if (!ok_ || !machine_cpu_seconds(&busy, &steal)) return 0;
  const double wall = now_s() - wall0_;
  if (!(wall > 0)) return 0;
  const double others = (busy - busy0_) - (own_cpu_seconds() - own0_) + (steal - steal0_);
  return std::max(0.0, others / wall);
}

double OtherCpuUse::steal_cpus() const {
  double busy = 0, steal = 0;
  if (!ok_ || !machine_cpu_seconds(&busy, &steal)) return 0;
  const double wall = now_s() - wall0_;
  return wall > 0 ? std::max(0.0, (steal - steal0_) / wall) : 0;
}

uint64_t bandwidth_buffer_bytes(uint64_t llc_bytes) {
  uint64_t bytes = llc_bytes > 0 ? std::max<uint64_t>(4 * llc_bytes, 1ull << 30) : 2ull << 30;
  const uint64_t available = mem_available_bytes();
  if (available > 0) bytes = std::min(bytes, available / 4);
  return std::max<uint64_t>(bytes, 256ull << 20);
}

std::string BandwidthMeasurement::describe() const {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "read-only %s (median %.1f), triad %s (median %.1f) over %.2f GiB, best of %d "
                "passes on %d threads; others used %.2f CPUs while it ran",
                format_gbs(read_best).c_str(), read_median * 1e-9, format_gbs(triad_best).c_str(),
                triad_median * 1e-9, double(buffer_bytes) / double(1ull << 30), passes, threads,
                others_cpus);
  return buf;
}

BandwidthMeasurement measure_memory_bandwidth(uint64_t buffer_bytes, int passes, int threads_in,
                                              const ThreadTeam& team_in) {
  BandwidthMeasurement m;
  const int64_t threads = std::max(threads_in, 1);
  m.threads = int(threads);
  const ThreadTeam team = team_in ? team_in : [](int n, const std::function<void(int)>& part) {
    std::vector<std::thread> pool;
    for (int t = 0; t < n; ++t) pool.emplace_back(part, t);
    for (std::thread& th : pool) th.join();
  };
  // parallel_for_static's shape over the team: part t runs [t, t + 1).
  auto parallel_for_static = [&](int64_t n, const auto& body) {
    team(int(n), [&](int t) { body(int64_t(t), int64_t(t) + 1); });
  };
  m.passes = std::max(passes, 1);
  // Whole 64-float blocks per thread and per triad array.
  const size_t block = size_t(64 * 3 * threads);
  const size_t n = size_t(buffer_bytes / sizeof(float)) / block * block;
  if (n == 0) return m;
  const auto t_start = Clock::now();
  const OtherCpuUse others;
  Mapping buf(n * sizeof(float));
  if (!buf.p) return m;
  m.buffer_bytes = n * sizeof(float);
  // First touch from the threads that will stream each part.
  parallel_for_static(threads, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const size_t i0 = n * size_t(t) / size_t(threads), i1 = n * size_t(t + 1) / size_t(threads);
      std::fill(buf.p + i0, buf.p + i1, 1.0f);
    }
  });
  auto timed = [](auto&& body) {
    const auto t0 = Clock::now();
    body();
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  std::vector<double> read_rates, triad_rates;
  std::vector<uint64_t> sums(static_cast<size_t>(threads), 0);
  const size_t third = n / 3;
  for (int pass = 0; pass < m.passes; ++pass) {
    const double tr = timed([&] {
      parallel_for_static(threads, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const size_t i0 = n * size_t(t) / size_t(threads);
          const size_t i1 = n * size_t(t + 1) / size_t(threads);
          sums[size_t(t)] ^= xor_words(reinterpret_cast<const uint64_t*>(buf.p + i0),
                                       (i1 - i0) * sizeof(float) / sizeof(uint64_t));
        }
      });
    });
    read_rates.push_back(double(n * sizeof(float)) / tr);
    const float scalar = 0.5f + float(pass);
    const double tt = timed([&] {
      parallel_for_static(threads, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const size_t i0 = third * size_t(t) / size_t(threads);
          const size_t i1 = third * size_t(t + 1) / size_t(threads);
          triad_floats(buf.p + i0, buf.p + third + i0, buf.p + 2 * third + i0, scalar, i1 - i0);
        }
      });
    });
    triad_rates.push_back(3.0 * double(third * sizeof(float)) / tt);
  }
  // Keep the sums observable so the read loop is not removed.
  volatile uint64_t sink = 0;
  for (uint64_t s : sums) sink = sink ^ s;
  (void)sink;
  m.read_best = *std::max_element(read_rates.begin(), read_rates.end());
  m.read_median = median(read_rates);
  m.triad_best = *std::max_element(triad_rates.begin(), triad_rates.end());
  m.triad_median = median(triad_rates);
  m.others_cpus = others.others_cpus();
  m.steal_cpus = others.steal_cpus();
  m.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  return m;
}

}  // namespace hal
