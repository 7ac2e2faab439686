// backends/cpu/cpu_device_info.h: what this machine's CPU is and can do.
//
// Every figure is real and its origin goes in the "source.<field>" properties, so
// `halctl info cpu:0` can label it:
// - memory capacity: the OS (physical pages, capped by a cgroup v2 memory.max);
// - peak FLOP/s: CPU features (cores in the thread budget x max clock x SIMD lanes x FMA
//   units x 2); f16/bf16 are computed through f32 and get the f32 figure;
// - memory bandwidth: a STREAM triad over arrays past the last-level cache (<= 256 MiB) on the
//   thread budget, measured once per machine and cached (see below);
// - SRAM: the last-level cache from sysfs; clock: cpufreq, /proc/cpuinfo or the model
//   name; launch overhead: measured cost of a no-op stream command plus a TBB fork/join.
//
// Measurements cost ~0.2 s, so they are cached in
// $XDG_CACHE_HOME/hal (else ~/.cache/hal), keyed by CPU model, thread budget and cache
// size; later plugin loads read the file. Overrides: HAL_CPU_MEMORY_BANDWIDTH (bytes/s,
// or with a "GB/s" suffix) skips the triad; HAL_CPU_REMEASURE=1 ignores the cache.
// The 1-minute load average is stored with the figures: one taken while other work kept
// more than half the cores busy is replaced by a new measurement at the first load on a
// quiet machine (a busy re-measurement never replaces a higher figure). When no cache
// directory is writable the figures are measured on every load.
//
// Threading: describe_cpu() is called once per plugin instance; not reentrant.
#pragma once

#include "hal/device_info.h"

namespace hal::cpu {

DeviceInfo describe_cpu();

// The measurements behind describe_cpu(), exposed for `halctl bench`-style tools and
// tests: STREAM triad bandwidth over `total_bytes` of arrays (best of `passes`).
double measure_triad_bandwidth(uint64_t total_bytes, int passes);

}  // namespace hal::cpu
