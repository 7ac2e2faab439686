// Scheduling time vs graph size, up to 100,000 tasks (the issue asks for well under a
// second there). Graphs are the HEFT paper's random DAGs (alpha 1, out-degree 3, CCR 1,
// beta 1) on 4 devices, and transformer task graphs on an NPU + CPU pair.
//
// Baseline measured in the same run: BM_Finalize, the linear pass that validates the
// graph and builds its adjacency and topological order; each scheduler reports its time
// per task and its ratio to that pass ("x_finalize"), so the figures carry across machines.
//
//   build-sched/bin/hal_scheduler_benchmark --benchmark_filter='100000'
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>

#include "hal/scheduler/random_dag.h"
#include "hal/scheduler/scheduler.h"

namespace hal::scheduler {
namespace {

RandomDagParams params(int32_t tasks) {
  RandomDagParams p;
  p.tasks = tasks;
  p.alpha = 1.0;
  p.out_degree = 3;
  p.ccr = 1.0;
  p.beta = 1.0;
  p.processors = 4;
  p.seed = 42;
  return p;
}

const Problem& cached_problem(int32_t tasks) {
  static std::map<int32_t, Problem> cache;
  auto it = cache.find(tasks);
  if (it == cache.end())
    it = cache.emplace(tasks, std::move(random_dag(params(tasks))).value()).first;
  return it->second;
}

// Seconds per finalize() of the graph, measured once per size (the baseline).
double finalize_seconds(int32_t tasks) {
  static std::map<int32_t, double> cache;
  auto it = cache.find(tasks);
  if (it != cache.end()) return it->second;
  TaskGraph g = cached_problem(tasks).graph();
  const int reps = tasks >= 100000 ? 5 : 50;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) benchmark::DoNotOptimize(g.finalize());
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  cache.emplace(tasks, s);
  return s;
}

void BM_Finalize(benchmark::State& state) {
  TaskGraph g = cached_problem(int32_t(state.range(0))).graph();
  for (auto _ : state) benchmark::DoNotOptimize(g.finalize());
  state.counters["ns_per_task"] = benchmark::Counter(
      double(state.range(0)) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void run_schedule(benchmark::State& state, Algorithm a, LinkModel lm) {
  const int32_t tasks = int32_t(state.range(0));
  const Problem& pb = cached_problem(tasks);
  const double baseline = finalize_seconds(tasks);
  Options o;
  o.algorithm = a;
  o.link_model = lm;
  o.lookahead_max_tasks = size_t(1) << 30;  // time lookahead at every size when asked for
  double makespan = 0;
  double elapsed = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto s = schedule(pb, o);
    elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!s.ok()) {
      state.SkipWithError(s.status().to_string().c_str());
      return;
    }
    // (Not DoNotOptimize on the double: GCC 12 with benchmark 1.7's "+r,m" constraint
    // returns garbage for it; the value is used after the loop anyway.)
    makespan = s->makespan;
  }
  state.counters["ns_per_task"] =
      benchmark::Counter(double(tasks) * 1e-9, benchmark::Counter::kIsIterationInvariantRate |
                                                   benchmark::Counter::kInvert);
  state.counters["slr"] = makespan / critical_path_min_cost(pb);
  state.counters["x_finalize"] = elapsed / double(state.iterations()) / baseline;
}

#define SCHEDULER_BENCH(name, algo, links)                                 \
  void name(benchmark::State& state) { run_schedule(state, algo, links); } \
  BENCHMARK(name)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond)

BENCHMARK(BM_Finalize)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);
SCHEDULER_BENCH(BM_Heft, Algorithm::kHeft, LinkModel::kSerialized);
SCHEDULER_BENCH(BM_HeftContentionFree, Algorithm::kHeft, LinkModel::kContentionFree);
SCHEDULER_BENCH(BM_Peft, Algorithm::kPeft, LinkModel::kSerialized);
SCHEDULER_BENCH(BM_Lookahead, Algorithm::kLookahead, LinkModel::kSerialized);
SCHEDULER_BENCH(BM_AllOnFastest, Algorithm::kAllOnFastest, LinkModel::kSerialized);
SCHEDULER_BENCH(BM_Auto, Algorithm::kAuto, LinkModel::kSerialized);

}  // namespace
}  // namespace hal::scheduler

BENCHMARK_MAIN();
