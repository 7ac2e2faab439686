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
// - Loops run on a "hot team" when it is up: budget - 1 helpers, each a task holding one
//   of the arena's worker threads, that poll for the next loop's parts for HAL_CPU_SPIN_US
//   microseconds (default 2000) after their last part, then give the thread back to
//   oneTBB. A loop's parts are claimed from one atomic word by the calling thread and the
//   helpers, so the fork costs a cache-line transfer instead of oneTBB's wake-up: a worker
//   idle for more than ~0.1 ms sleeps and took 20 us to over 1 ms to come back (the first
//   product of a prefill ran on one thread), and even awake ones joined a loop 1-3.5 us
//   late, ~61 times in a GPT-2 decode step. When the team is not up (first loop, after an
//   idle spell, another stream's loop holding it, a loop nested in a part), the loop runs
//   through oneTBB as before, with the team paused (PauseHotTeam) so its tasks get the
//   worker threads; the team starts again after it.
//   HAL_CPU_SPIN_US=0 turns the team off.
//
// Threading: thread-safe; fn must be safe to run concurrently on disjoint ranges.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

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
// Starts the hot team's helpers (if not up): called when work is queued, so that the
// worker threads wake while the work waits its turn. Cheap when the team is up.
void prepare_threads();
// Loops the hot team has run since the process started (tests, diagnostics).
int64_t hot_team_loops();
// Says the work that kept the team hot is done (a graph's execution ended): until the
// next loop, helpers yield their core on every poll instead of spinning, so the thread
// that waits for the result (the host's, woken from a futex) gets a core at once; they
// still take a loop published meanwhile, and leave after HAL_CPU_SPIN_US as before. A
// spinning helper yielded only after 50 us idle, and the host's wait on a 2-core machine
// ended 53 us after a tiny model's execution did (every decode step).
void rest_threads();
// While alive, the hot team is paused: its helpers give their worker threads back and
// none starts; destroyed, it starts the team again. Brackets work that needs the threads
// elsewhere: a loop run through oneTBB, a call into OpenBLAS (its own threads). Nested
// inside a loop's part it does nothing.
class PauseHotTeam {
 public:
  PauseHotTeam();
  ~PauseHotTeam();
  PauseHotTeam(const PauseHotTeam&) = delete;
  PauseHotTeam& operator=(const PauseHotTeam&) = delete;

 private:
  bool nested_;
};

namespace detail {
// A loop's body with its captures erased: part(context, begin, end).
using LoopPart = void (*)(void* context, int64_t begin, int64_t end);
// Runs parts [n * p / parts, n * (p + 1) / parts) for p in [0, parts) on the hot team and
// the calling thread; returns once every part has run (rethrowing the first exception a
// part threw). Returns false, having run nothing, when the team is not up or is busy.
bool run_on_hot_team(int64_t n, int64_t parts, LoopPart part, void* context);
// Marks this thread as running a loop's part for its lifetime (a loop it starts is nested).
struct InLoopPart {
  InLoopPart();
  ~InLoopPart();
  InLoopPart(const InLoopPart&) = delete;
  InLoopPart& operator=(const InLoopPart&) = delete;
};

template <typename Fn>
void call_part(void* context, int64_t begin, int64_t end) {
  (*static_cast<Fn*>(context))(begin, end);
}
}  // namespace detail

template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain || thread_budget() == 1) {
    fn(int64_t(0), n);
    return;
  }
  // Parts of at least `grain`, a few per thread so a late thread costs little.
  const int64_t parts = std::clamp<int64_t>(n / grain, 2, int64_t(4) * thread_budget());
  using F = std::remove_reference_t<Fn>;
  void* context = const_cast<void*>(static_cast<const void*>(&fn));
  if (detail::run_on_hot_team(n, parts, &detail::call_part<F>, context)) return;
  PauseHotTeam pause;
  compute_arena().execute([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, size_t(grain)),
                      [&](const tbb::blocked_range<int64_t>& r) {
                        detail::InLoopPart in_part;
                        fn(r.begin(), r.end());
                      });
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
  using F = std::remove_reference_t<Fn>;
  void* context = const_cast<void*>(static_cast<const void*>(&fn));
  if (detail::run_on_hot_team(n, parts, &detail::call_part<F>, context)) return;
  PauseHotTeam pause;
  compute_arena().execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, parts, 1),
        [&](const tbb::blocked_range<int64_t>& r) {
          detail::InLoopPart in_part;
          for (int64_t p = r.begin(); p < r.end(); ++p) fn(n * p / parts, n * (p + 1) / parts);
        },
        tbb::static_partitioner());
  });
}

}  // namespace hal::cpu
