// Memory bandwidth probes (hal/memory_bandwidth.h): read-only and STREAM triad over a buffer
// past every cache, with the CPU time other work took while they ran.
#include "hal/memory_bandwidth.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
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

// The streaming loops. The read loop XORs 64-bit words (integer and associative: no
// float reassociation) from several sequential streams at once: one stream per core left
// this 2-core EPYC VM at ~60% of the bandwidth its triad (three streams) reached. Where
// the CPU has AVX2 it reads eight streams with 32-byte loads: the four-stream SSE2 loop
// read 25.5-26.9 GB/s where this one read 29.4-32.6 (and AVX-512 with eight streams
// 32.2-33.3; a harness alternating them over 1 GiB on 2 threads, 4 runs), so figures
// against the SSE2 probe came out above 100% for decode kernels that read with wide
// loads. hal core is built without the CPU backend's multiversioning: the AVX2 loop is
// compiled for its target alone and chosen at run time.
uint64_t xor_words_sse2(const uint64_t* p, size_t n) {
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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
constexpr int kWideStreams = 8;

__attribute__((target("avx2"))) uint64_t xor_words_avx2(const uint64_t* p, size_t n) {
  const size_t q = n / kWideStreams / 4 * 4;  // words per stream, whole 32-byte vectors
  __m256i acc[kWideStreams];
  for (__m256i& a : acc) a = _mm256_setzero_si256();
  for (size_t i = 0; i < q; i += 4)
    for (int s = 0; s < kWideStreams; ++s)
      acc[s] = _mm256_xor_si256(
          acc[s], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + size_t(s) * q + i)));
  __m256i all = acc[0];
  for (int s = 1; s < kWideStreams; ++s) all = _mm256_xor_si256(all, acc[s]);
  alignas(32) uint64_t words[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(words), all);
  uint64_t x = words[0] ^ words[1] ^ words[2] ^ words[3];
  for (size_t i = size_t(kWideStreams) * q; i < n; ++i) x ^= p[i];
  return x;
}

uint64_t xor_words(const uint64_t* p, size_t n) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2 ? xor_words_avx2(p, n) : xor_words_sse2(p, n);
}
#else
uint64_t xor_words(const uint64_t* p, size_t n) { return xor_words_sse2(p, n); }
#endif

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

struct MemoryBandwidthProbe::State {
  int64_t threads = 1;
  ThreadTeam team;
  size_t n = 0;  // floats in the buffer
  std::unique_ptr<Mapping> buf;
  // Runs body(t) for every thread t of the team, all at once.
  template <class Body>
  void each_thread(const Body& body) const {
    team(int(threads), [&](int t) { body(size_t(t)); });
  }
};

MemoryBandwidthProbe::MemoryBandwidthProbe(uint64_t buffer_bytes, int threads,
                                           const ThreadTeam& team)
    : s_(std::make_unique<State>()) {
  s_->threads = std::max(threads, 1);
  s_->team = team ? team : [](int n, const std::function<void(int)>& part) {
    std::vector<std::thread> pool;
    for (int t = 0; t < n; ++t) pool.emplace_back(part, t);
    for (std::thread& th : pool) th.join();
  };
  // Whole 64-float blocks per thread and per triad array.
  const size_t block = size_t(64 * 3 * s_->threads);
  const size_t n = size_t(buffer_bytes / sizeof(float)) / block * block;
  if (n == 0) return;
  auto buf = std::make_unique<Mapping>(n * sizeof(float));
  if (!buf->p) return;
  s_->n = n;
  s_->buf = std::move(buf);
  // First touch from the threads that will stream each part.
  const State& st = *s_;
  st.each_thread([&](size_t t) {
    const size_t i0 = n * t / size_t(st.threads), i1 = n * (t + 1) / size_t(st.threads);
    std::fill(st.buf->p + i0, st.buf->p + i1, 1.0f);
  });
}

MemoryBandwidthProbe::~MemoryBandwidthProbe() = default;

bool MemoryBandwidthProbe::ok() const { return s_->n > 0; }

BandwidthMeasurement MemoryBandwidthProbe::measure(int passes) const {
  BandwidthMeasurement m;
  const State& st = *s_;
  m.threads = int(st.threads);
  m.passes = std::max(passes, 1);
  if (st.n == 0) return m;
  const auto t_start = Clock::now();
  const OtherCpuUse others;
  const size_t n = st.n;
  const size_t threads = size_t(st.threads);
  float* p = st.buf->p;
  m.buffer_bytes = n * sizeof(float);
  auto timed = [](auto&& body) {
    const auto t0 = Clock::now();
    body();
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  std::vector<double> read_rates, triad_rates;
  std::vector<uint64_t> sums(threads, 0);
  const size_t third = n / 3;
  for (int pass = 0; pass < m.passes; ++pass) {
    const double tr = timed([&] {
      st.each_thread([&](size_t t) {
        const size_t i0 = n * t / threads, i1 = n * (t + 1) / threads;
        sums[t] ^= xor_words(reinterpret_cast<const uint64_t*>(p + i0),
                             (i1 - i0) * sizeof(float) / sizeof(uint64_t));
      });
    });
    read_rates.push_back(double(n * sizeof(float)) / tr);
    const float scalar = 0.5f + float(pass);
    const double tt = timed([&] {
      st.each_thread([&](size_t t) {
        const size_t i0 = third * t / threads, i1 = third * (t + 1) / threads;
        triad_floats(p + i0, p + third + i0, p + 2 * third + i0, scalar, i1 - i0);
      });
    });
    triad_rates.push_back(3.0 * double(third * sizeof(float)) / tt);
  }
  // Keep the sums observable so the read loop is not removed.
  volatile uint64_t sink = 0;
  for (uint64_t v : sums) sink = sink ^ v;
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

BandwidthMeasurement measure_memory_bandwidth(uint64_t buffer_bytes, int passes, int threads,
                                              const ThreadTeam& team) {
  const auto t_start = Clock::now();
  const OtherCpuUse others;
  const MemoryBandwidthProbe probe(buffer_bytes, threads, team);
  BandwidthMeasurement m = probe.measure(passes);
  if (m.buffer_bytes == 0) return m;
  // Over the whole measurement, first touch included.
  m.others_cpus = others.others_cpus();
  m.steal_cpus = others.steal_cpus();
  m.seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  return m;
}

}  // namespace hal
