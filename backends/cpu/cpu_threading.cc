#include "cpu_threading.h"

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include <tbb/global_control.h>
#include <tbb/info.h>

#include "hal/plugin/spin_wait.h"

namespace hal::cpu {

namespace {

struct Budget {
  int threads = 1;
  std::string source;
};

// CPUs allowed by a cgroup v2 quota ("200000 100000" = 2 CPUs), or 0 when unlimited.
int cgroup_cpu_limit() {
  std::ifstream f("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (!(f >> quota >> period) || quota == "max" || period <= 0) return 0;
  const double q = std::atof(quota.c_str());
  return q > 0 ? int(std::ceil(q / period)) : 0;
}

// The integer in environment variable `name` when it is set to one in [lo, hi] (nothing
// else on the line), else nothing.
std::optional<long> env_integer(const char* name, long lo, long hi) {
  const char* env = std::getenv(name);
  if (env == nullptr) return std::nullopt;
  char* end = nullptr;
  const long v = std::strtol(env, &end, 10);
  if (end == env || *end != '\0' || v < lo || v > hi) return std::nullopt;
  return v;
}

Budget compute_budget() {
  Budget b;
  if (const auto v = env_integer("HAL_CPU_THREADS", 1, 4096)) {
    b.threads = int(*v);
    b.source = "HAL_CPU_THREADS=" + std::string(std::getenv("HAL_CPU_THREADS"));
    return b;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  int cpus = 0;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  b.source = "affinity mask: " + std::to_string(cpus) + " CPUs";
  if (cpus <= 0) {
    cpus = int(std::thread::hardware_concurrency());
    b.source = "hardware_concurrency: " + std::to_string(cpus) + " CPUs";
  }
  const int quota = cgroup_cpu_limit();
  if (quota > 0 && quota < cpus) {
    cpus = quota;
    b.source += ", cgroup cpu.max quota: " + std::to_string(quota);
  }
  b.threads = cpus > 0 ? cpus : 1;
  return b;
}

const Budget& budget() {
  static const Budget b = compute_budget();
  return b;
}

}  // namespace

int thread_budget() { return budget().threads; }
std::string thread_budget_source() { return budget().source; }

tbb::task_arena& compute_arena() {
  static tbb::task_arena* arena = [] {
    // oneTBB starts one worker fewer than the CPUs it sees; a budget above that
    // (HAL_CPU_THREADS) needs more workers, or the arena's extra slots stay empty.
    // Held for the process lifetime (an object, not a leaked pointer: LeakSanitizer).
    static std::optional<tbb::global_control> raised;
    if (thread_budget() > tbb::info::default_concurrency())
      raised.emplace(tbb::global_control::max_allowed_parallelism, size_t(thread_budget()));
    // Never destroyed: kernels may still run from stream threads during static teardown.
    return new tbb::task_arena(thread_budget());
  }();
  return *arena;
}

namespace {

// How long a helper polls after its last part before giving its thread back to oneTBB.
std::chrono::microseconds hot_team_linger() {
  static const std::chrono::microseconds linger = [] {
    return std::chrono::microseconds(env_integer("HAL_CPU_SPIN_US", 0, 10'000'000).value_or(2000));
  }();
  return linger;
}

// The hot team's shared state. One loop at a time owns it (`owned`); the loop is
// published in `word`: its sequence number (bits 32-63), part count (16-31) and the next
// part to claim (0-15). A thread claims a part with a compare-and-swap on the whole word,
// which fails when the loop has changed, so the fields below, written by the owner before
// it publishes and not again until every part is done, are read only by a thread holding
// a claim (no data race).
struct HotTeam {
  std::atomic<uint64_t> word{0};
  std::atomic<int64_t> done{0};      // parts of the current loop finished
  std::atomic<bool> owned{false};    // a loop holds the team
  std::atomic<int> live{0};          // helpers polling now
  std::atomic<int> enlisted{0};      // helpers enqueued and not yet gone
  std::atomic<int64_t> loops{0};     // loops run on the team
  std::atomic<int> paused{0};        // PauseHotTeam objects alive (not nested): helpers leave
  std::atomic<bool> resting{false};  // rest_threads() since the last loop: helpers yield
  // The current loop (written by its owner).
  detail::LoopPart part = nullptr;
  void* context = nullptr;
  int64_t n = 0;
  uint32_t sequence = 0;
  std::mutex error_mutex;
  std::exception_ptr error;
};

constexpr int64_t kMaxHotParts = 0xffff;

HotTeam& hot_team() {
  // Never destroyed: helpers may still poll it while the process exits.
  static HotTeam* team = new HotTeam;
  return *team;
}

// True while this thread runs a part of a hot loop or a oneTBB loop: a loop started
// there is nested: it runs through oneTBB and leaves the team alone.
thread_local int loop_depth = 0;

// Claims and runs parts of loop `sequence` until none is left.
void run_parts(HotTeam& team, uint32_t sequence) {
  for (;;) {
    uint64_t w = team.word.load(std::memory_order_acquire);
    if (uint32_t(w >> 32) != sequence) return;
    const int64_t parts = int64_t((w >> 16) & 0xffff);
    const int64_t next = int64_t(w & 0xffff);
    if (next >= parts) return;
    if (!team.word.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel)) continue;
    const int64_t n = team.n;
    try {
      detail::InLoopPart in_part;
      team.part(team.context, n * next / parts, n * (next + 1) / parts);
    } catch (...) {
      std::lock_guard<std::mutex> lock(team.error_mutex);
      if (!team.error) team.error = std::current_exception();
    }
    team.done.fetch_add(1, std::memory_order_release);
  }
}

// A helper: holds an arena worker thread, runs parts of each loop published, and leaves
// after `hot_team_linger()` without one or while the team is paused.
void help(HotTeam& team) {
  if (loop_depth > 0) {
    // oneTBB handed this task to a thread waiting inside a loop's part (a nested loop):
    // polling here would hold that part up, so this helper does not start.
    team.enlisted.fetch_sub(1, std::memory_order_acq_rel);
    return;
  }
  team.live.fetch_add(1, std::memory_order_acq_rel);
  using Clock = std::chrono::steady_clock;
  const auto linger = hot_team_linger();
  // Polls with `pause` this long after the last part, then yields between polls so the
  // core goes to any runnable thread (the caller's, on a machine with few cores).
  const auto yield_after = std::min<Clock::duration>(linger, std::chrono::microseconds(50));
  auto last = Clock::now();
  uint32_t seen = uint32_t(team.word.load(std::memory_order_acquire) >> 32) - 1;
  for (unsigned polls = 1;; ++polls) {
    const uint32_t sequence = uint32_t(team.word.load(std::memory_order_acquire) >> 32);
    if (sequence != seen) {
      seen = sequence;
      run_parts(team, sequence);
      last = Clock::now();
      continue;
    }
    if (team.paused.load(std::memory_order_acquire) > 0) break;
    if (team.resting.load(std::memory_order_relaxed)) {
      std::this_thread::yield();
      if (Clock::now() - last >= linger) break;
      continue;
    }
    if (polls % 64 == 0) {
      const auto idle = Clock::now() - last;
      if (idle >= linger) break;
      if (idle >= yield_after) std::this_thread::yield();
    }
    plugin::cpu_relax();
  }
  team.live.fetch_sub(1, std::memory_order_acq_rel);
  team.enlisted.fetch_sub(1, std::memory_order_acq_rel);
}

}  // namespace

// Enqueues helpers until budget - 1 are enlisted.
void prepare_threads() {
  const int want = thread_budget() - 1;
  if (want <= 0 || hot_team_linger().count() == 0) return;
  HotTeam& team = hot_team();
  int have = team.enlisted.load(std::memory_order_acquire);
  while (have < want) {
    if (!team.enlisted.compare_exchange_weak(have, have + 1, std::memory_order_acq_rel)) continue;
    compute_arena().enqueue([&team] { help(team); });
    ++have;
  }
}

namespace detail {

bool run_on_hot_team(int64_t n, int64_t parts, LoopPart part, void* context) {
  if (loop_depth > 0 || parts < 2 || parts > kMaxHotParts) return false;
  HotTeam& team = hot_team();
  if (team.live.load(std::memory_order_acquire) < thread_budget() - 1) return false;
  bool expected = false;
  if (!team.owned.compare_exchange_strong(expected, true, std::memory_order_acquire)) return false;
  team.part = part;
  team.context = context;
  team.n = n;
  team.error = nullptr;
  team.done.store(0, std::memory_order_relaxed);
  team.resting.store(false, std::memory_order_relaxed);
  const uint32_t sequence = ++team.sequence;
  team.word.store((uint64_t(sequence) << 32) | (uint64_t(parts) << 16), std::memory_order_release);
  run_parts(team, sequence);
  // Parts claimed by helpers finish without waiting on anything, so this ends.
  for (unsigned polls = 1; team.done.load(std::memory_order_acquire) < parts; ++polls) {
    if (polls % 1024 == 0) std::this_thread::yield();  // a helper's thread was preempted
    plugin::cpu_relax();
  }
  std::exception_ptr error = std::move(team.error);
  team.error = nullptr;
  team.owned.store(false, std::memory_order_release);
  team.loops.fetch_add(1, std::memory_order_relaxed);
  if (error) std::rethrow_exception(error);
  return true;
}

InLoopPart::InLoopPart() { ++loop_depth; }
InLoopPart::~InLoopPart() { --loop_depth; }

}  // namespace detail

int64_t hot_team_loops() { return hot_team().loops.load(std::memory_order_relaxed); }

void rest_threads() { hot_team().resting.store(true, std::memory_order_relaxed); }

PauseHotTeam::PauseHotTeam() : nested_(loop_depth > 0) {
  if (!nested_) hot_team().paused.fetch_add(1, std::memory_order_acq_rel);
  ++loop_depth;
}

PauseHotTeam::~PauseHotTeam() {
  --loop_depth;
  if (nested_) return;
  hot_team().paused.fetch_sub(1, std::memory_order_acq_rel);
  prepare_threads();
}

void warm_up_threads() {
  const int parts = thread_budget();
  if (parts <= 1) return;
  PauseHotTeam pause;
  std::atomic<int> arrived{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  compute_arena().execute([&] {
    tbb::parallel_for(
        tbb::blocked_range<int>(0, parts, 1),
        [&](const tbb::blocked_range<int>&) {
          arrived.fetch_add(1);
          // Each part waits for the others, so one thread cannot run them all.
          while (arrived.load() < parts && std::chrono::steady_clock::now() < deadline) {
          }
        },
        tbb::static_partitioner());
  });
}

}  // namespace hal::cpu
