// hal/memory_bandwidth.h: how fast this machine's main memory streams, measured the way
// the CPU backend's kernels stream weights, and whether other work disturbed the
// measurement. The one probe: the CPU backend measures its DeviceInfo figure with it
// (backends/cpu/cpu_device_info.cc, on its own threads) and `halctl bench --model` and
// the quantized-weight benchmarks the roofline of the run they compare.
//
// Two probes over one buffer much larger than any cache the CPU may have (sizing rule:
// bandwidth_buffer_bytes):
// - read-only: every thread reads its contiguous part of the whole buffer, as eight
//   sequential streams of 32-byte loads (four of 16 bytes without AVX2): what streaming
//   weights can reach; counts the bytes read.
// - STREAM triad a[i] = b[i] + s * c[i] over the buffer's thirds; counts 2 reads + 1
//   write per element, as STREAM does (the write-allocate read is not counted).
// Each probe runs `passes` times after a first-touch pass from the threads that stream
// each part; best and median pass are kept.
//
// Disturbance: CPU time that other processes (and the hypervisor: steal) took while
// the probes ran, from /proc/stat minus this process's own CPU time, in CPUs (1.0 = one
// core fully used by others on average). A figure taken while others used a good share
// of the machine reads low and must not be kept as the machine's figure (cpu_device_info).
//
// Threading: blocks the caller; the probes run on the ThreadTeam given (default: one
// std::thread per part). One measurement at a time per process: they share the memory bus.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace hal {

// The 1-minute load average, or -1 when the OS does not say.
double load_average_1min();

// Samples CPU use between start and stop: how many CPUs others kept busy.
class OtherCpuUse {
 public:
  OtherCpuUse();  // starts
  // CPUs used by other processes plus steal since construction (0 when /proc/stat is
  // unreadable: then nothing is known).
  double others_cpus() const;
  double steal_cpus() const;

 private:
  double wall0_ = 0, busy0_ = 0, steal0_ = 0, own0_ = 0;
  bool ok_ = false;
};

// True when others used more than this share of one CPU on average: a measurement
// taken then is provisional.
inline constexpr double kBusyOtherCpus = 0.25;

// Buffer size for the probes: 4x the last-level cache when it is known, at least 1 GiB;
// 2 GiB when the cache size is unknown (the largest server L3 slices are ~0.5 GiB);
// never more than a quarter of the available memory (MemAvailable), at least 256 MiB.
uint64_t bandwidth_buffer_bytes(uint64_t llc_bytes);

struct BandwidthMeasurement {
  uint64_t buffer_bytes = 0;  // read-only probe: bytes of the buffer; triad: its 3 arrays
  int threads = 0;
  int passes = 0;
  double read_best = 0, read_median = 0;    // bytes/s
  double triad_best = 0, triad_median = 0;  // bytes/s (STREAM counting)
  double others_cpus = 0;                   // see OtherCpuUse, over both probes
  double steal_cpus = 0;
  double seconds = 0;  // wall time of the whole measurement (first touch included)
  bool ok() const { return read_best > 0 && triad_best > 0; }
  bool disturbed() const { return others_cpus > kBusyOtherCpus; }
  // "read-only 31.2 GB/s (median 30.1), triad 27.5 GB/s (median 26.9) over 1.88 GiB, best
  // of 5 passes on 2 threads; others used 0.03 CPUs"
  std::string describe() const;
};

// Runs part(t) for every t in [0, threads) at once, each on a thread of its own, and
// returns when all have.
using ThreadTeam = std::function<void(int threads, const std::function<void(int part)>& part)>;

// Runs both probes over `buffer_bytes` (rounded down to whole cache lines per thread) on
// `threads` threads of `team` (empty: std::threads). Not ok() when the memory cannot be
// mapped.
BandwidthMeasurement measure_memory_bandwidth(uint64_t buffer_bytes, int passes, int threads,
                                              const ThreadTeam& team = {});

// The probes' buffer, mapped and first touched once (a few tenths of a second per GiB), for
// measuring again and again: a benchmark that probes between its repetitions, since a
// shared host's bandwidth moves within seconds (1.5x between two probes 10 s apart on this
// project's VMs). measure(passes) is measure_memory_bandwidth without the mapping and first
// touch (`seconds` and the others' CPU use cover the passes only); not ok() when the memory
// could not be mapped (then measure() returns a measurement that is not ok()).
// Threading: one measure() at a time; the team as above.
class MemoryBandwidthProbe {
 public:
  MemoryBandwidthProbe(uint64_t buffer_bytes, int threads, const ThreadTeam& team = {});
  ~MemoryBandwidthProbe();
  MemoryBandwidthProbe(const MemoryBandwidthProbe&) = delete;
  MemoryBandwidthProbe& operator=(const MemoryBandwidthProbe&) = delete;
  bool ok() const;
  BandwidthMeasurement measure(int passes) const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace hal
