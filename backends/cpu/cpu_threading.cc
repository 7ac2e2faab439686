#include "cpu_threading.h"

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <thread>

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

Budget compute_budget() {
  Budget b;
  if (const char* env = std::getenv("HAL_CPU_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 4096) {
      b.threads = int(v);
      b.source = "HAL_CPU_THREADS=" + std::string(env);
      return b;
    }
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
  // Never destroyed: kernels may still run from stream threads during static teardown.
  static tbb::task_arena* arena = new tbb::task_arena(thread_budget());
  return *arena;
}

void warm_up_threads() {
  const int parts = thread_budget();
  if (parts <= 1) return;
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
