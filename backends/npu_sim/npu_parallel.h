// backends/npu_sim/npu_parallel.h: the thread pool the simulator's host kernels share.
//
// Contract
// - parallel_for(n, grain, fn) calls fn(begin, end) over disjoint ranges covering
//   [0, n) and returns when all are done. It runs inline when n <= grain or the pool has
//   one thread, so tiny ops cost a function call.
// - One pool per process, of HAL_NPU_SIM_THREADS threads when that is a positive
//   integer, else the CPUs this process may run on. The caller works too, so calls
//   from several stream threads at once share the pool without deadlock (a caller
//   never waits for a chunk nobody can run: it runs unclaimed chunks itself).
// - fn must not throw.
//
// Threading: thread-safe.
#pragma once

#include <cstdint>
#include <functional>

namespace hal::npu_sim {

int thread_count();

void parallel_for_impl(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain || thread_count() <= 1) {
    fn(int64_t(0), n);
    return;
  }
  parallel_for_impl(n, grain, std::function<void(int64_t, int64_t)>(std::forward<Fn>(fn)));
}

}  // namespace hal::npu_sim
