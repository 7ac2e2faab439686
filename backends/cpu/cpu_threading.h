// backends/cpu/cpu_threading.h: the CPU backend's thread budget and the parallel loops
// every kernel uses.
//
// Contract
// - thread_budget() is the number of cores the backend computes on: HAL_CPU_THREADS when
//   set to a positive integer, otherwise the CPUs this process may run on (affinity mask,
//   capped by a cgroup v2 CPU quota). Fixed for the process lifetime.
// - All parallel work runs in one oneTBB task_arena of that concurrency, so kernels called
//   from several stream threads share the budget instead of oversubscribing the machine.
//   OpenBLAS is set to the same thread count (cpu_blas.h).
// - parallel_for(n, grain, fn) calls fn(begin, end) over disjoint ranges covering [0, n);
//   it runs inline (no task overhead) when n <= grain or the budget is one thread, so tiny
//   ops cost no more than a function call.
// - parallel_for_static(n, fn) splits [0, n) into exactly min(n, budget) contiguous parts
//   (memory-streaming kernels want one contiguous stream per core).
//
// Threading: thread-safe; fn must be safe to run concurrently on disjoint ranges.
#pragma once

#include <cstdint>
#include <string>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

namespace hal::cpu {

int thread_budget();
// Where the budget came from ("HAL_CPU_THREADS=4", "affinity mask: 2 CPUs", ...).
std::string thread_budget_source();
tbb::task_arena& compute_arena();
// Starts the arena's worker threads now (oneTBB starts them lazily, inside the first
// parallel loop): returns once every part of a budget-wide loop has run, or after 50 ms
// when the machine is too busy to give the threads a CPU sooner.
void warm_up_threads();

template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain || thread_budget() == 1) {
    fn(int64_t(0), n);
    return;
  }
  compute_arena().execute([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, size_t(grain)),
                      [&](const tbb::blocked_range<int64_t>& r) { fn(r.begin(), r.end()); });
  });
}

template <typename Fn>
void parallel_for_static(int64_t n, Fn&& fn) {
  if (n <= 0) return;
  const int64_t parts = n < thread_budget() ? n : thread_budget();
  if (parts <= 1) {
    fn(int64_t(0), n);
    return;
  }
  compute_arena().execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, parts, 1),
        [&](const tbb::blocked_range<int64_t>& r) {
          for (int64_t p = r.begin(); p < r.end(); ++p) fn(n * p / parts, n * (p + 1) / parts);
        },
        tbb::static_partitioner());
  });
}

}  // namespace hal::cpu
