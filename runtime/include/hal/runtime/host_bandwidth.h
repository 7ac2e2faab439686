// hal/runtime/host_bandwidth.h: the host's memory read bandwidth, measured: the roofline
// a CPU decode step (which reads every weight once) is held against.
//
// measure_host_read_bandwidth() reads a buffer of `bytes` (make it much larger than the
// last-level cache) with `threads` threads, each streaming its own contiguous part (first
// touched by that thread), `passes` times, and returns bytes/s of the fastest pass.
// Allocates the buffer for the call; a benchmark calls it once, in the run it compares.
//
// Threading: blocks the caller; uses its own threads.
#pragma once

#include <cstdint>

namespace hal::runtime {

double measure_host_read_bandwidth(int threads, uint64_t bytes, int passes);

}  // namespace hal::runtime
