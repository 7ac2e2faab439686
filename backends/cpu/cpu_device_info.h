// backends/cpu/cpu_device_info.h: what this machine's CPU is and can do.
//
// Every figure is real and its origin goes in the "source.<field>" properties, so
// `halctl info cpu:0` can label it:
// - memory capacity: the OS (physical pages, capped by a cgroup v2 memory.max);
// - peak FLOP/s: CPU features (cores in the thread budget x max clock x SIMD lanes x FMA
//   units x 2); f16/bf16 are computed through f32 and get the f32 figure;
// - memory bandwidth: read-only and STREAM triad probes over one buffer much larger than
//   any cache (hal/memory_bandwidth.h: 4x the last-level cache, at least 1 GiB; 2 GiB when sysfs
//   lists no cache sizes), on the thread budget. memory_bandwidth_bytes_per_s is the
//   read-only best (what streaming weights reaches); both figures, the buffer size, the
//   UTC time of the measurement and how busy the machine was are in the properties
//   ("memory_bandwidth.read_only", ".triad", ".measured_at", ".provisional") and in
//   "source.memory_bandwidth";
// - SRAM: the last-level cache from sysfs; clock: cpufreq, /proc/cpuinfo or the model
//   name; launch overhead: measured cost of a no-op stream command plus a fork/join of
//   the compute threads (cpu_threading.h).
//
// Measurements take a second or two, so they are cached in $XDG_CACHE_HOME/hal (else
// ~/.cache/hal), keyed by CPU model, thread budget and cache size; later plugin loads
// read the file. A figure is only kept as the machine's when other processes took less
// than a quarter of a CPU while it was measured (/proc/stat; steal counts). A disturbed
// measurement is stored as provisional: later loads use it while the machine stays busy
// (measuring again would read low again) and measure again at the first load on a quiet
// machine (load average under half the CPUs and others idle over a 0.1 s look); a
// disturbed re-measurement never replaces a higher provisional figure. When no cache
// directory is writable the figures are measured on every load.
// Overrides: HAL_CPU_MEMORY_BANDWIDTH (bytes/s, or with a "GB/s" suffix) skips the
// probes; HAL_CPU_REMEASURE=1 ignores the cache (and replaces it).
//
// Threading: describe_cpu() is called once per plugin instance; not reentrant.
#pragma once

#include "hal/device_info.h"

namespace hal::cpu {

DeviceInfo describe_cpu();

}  // namespace hal::cpu
