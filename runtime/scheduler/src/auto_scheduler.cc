// The scheduler's entry points (scheduler.h): schedule() runs one algorithm or, for
// kAuto, every candidate that suits the problem (on threads of their own for big graphs),
// keeps the shortest and refines it; placement_of() reads a schedule's layer placement
// back as a PlacementSpec.
#include <optional>
#include <system_error>
#include <thread>

#include "internal.h"

namespace hal::scheduler {

PlacementSpec placement_of(const Problem& problem, const Schedule& schedule) {
  const TaskGraph& g = problem.graph();
  const int32_t layers = g.layer_count(), p = problem.device_count();
  // Per layer and device: (resident bytes, tasks).
  std::vector<std::pair<uint64_t, int64_t>> weight(size_t(layers) * size_t(p), {0, 0});
  for (TaskId t = 0; t < problem.task_count() && size_t(t) < schedule.tasks.size(); ++t) {
    const int32_t l = g.task(t).layer, d = schedule.tasks[size_t(t)].device;
    if (l < 0 || d < 0 || d >= p) continue;
    auto& w = weight[size_t(l) * size_t(p) + size_t(d)];
    for (ResidentId r : g.residents_of(t)) w.first += g.resident(r).bytes;
    ++w.second;
  }
  PlacementSpec spec;
  for (int32_t l = 0; l < layers; ++l) {
    int32_t best = -1;
    for (int32_t d = 0; d < p; ++d) {
      const auto& w = weight[size_t(l) * size_t(p) + size_t(d)];
      if (w.second == 0) continue;
      if (best < 0 || w > weight[size_t(l) * size_t(p) + size_t(best)]) best = d;
    }
    if (best < 0) continue;  // a layer index no task uses
    const std::string& id = problem.device(best).id;
    if (!spec.layer_pins.empty() && spec.layer_pins.back().device == id &&
        spec.layer_pins.back().last == l - 1)
      spec.layer_pins.back().last = l;
    else
      spec.layer_pins.push_back(LayerPin{l, l, id, 0});
  }
  return spec;
}

Result<Schedule> schedule(const Problem& problem, const Options& options) {
  HAL_RETURN_IF_ERROR(problem.validate());
  HAL_ASSIGN_OR_RETURN(const std::vector<int32_t> pins, detail::resolve_pins(problem, options));
  const std::vector<double> ranks = detail::upward_ranks(problem);
  if (options.algorithm != Algorithm::kAuto)
    return detail::run_algorithm(problem, options, pins, options.algorithm, ranks);

  std::vector<Algorithm> candidates = {Algorithm::kHeft};
  if (size_t(problem.task_count()) <= options.peft_max_tasks)
    candidates.push_back(Algorithm::kPeft);
  if (size_t(problem.task_count()) <= options.lookahead_max_tasks)
    candidates.push_back(Algorithm::kLookahead);
  if (problem.graph().layer_count() >= 2 && problem.device_count() >= 2)
    candidates.push_back(Algorithm::kLayerPartition);
  candidates.push_back(Algorithm::kAllOnFastest);

  // Candidates are independent: on big graphs they run on threads of their own.
  std::vector<std::optional<Result<Schedule>>> outcomes(candidates.size());
  auto run_candidate = [&](size_t i) {
    outcomes[i].emplace(detail::run_algorithm(problem, options, pins, candidates[i], ranks));
  };
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  if (options.parallel_candidates && hw > 1 &&
      size_t(problem.task_count()) >= options.parallel_min_tasks) {
    std::vector<std::thread> threads;
    size_t spawned = 1;
    try {
      for (; spawned < candidates.size(); ++spawned) threads.emplace_back(run_candidate, spawned);
    } catch (const std::system_error&) {
      // No thread to be had: the rest run here.
    }
    run_candidate(0);
    for (size_t i = spawned; i < candidates.size(); ++i) run_candidate(i);
    for (std::thread& t : threads) t.join();
  } else {
    for (size_t i = 0; i < candidates.size(); ++i) run_candidate(i);
  }

  std::optional<Schedule> best;
  std::vector<CandidateResult> results;
  Status first_failure;
  for (size_t i = 0; i < candidates.size(); ++i) {
    Result<Schedule>& s = *outcomes[i];
    CandidateResult r;
    r.algorithm = candidates[i];
    if (!s.ok()) {
      r.failure = s.status().message();
      if (first_failure.ok()) first_failure = s.status();
    } else {
      r.makespan = s->makespan;
      if (!best || s->makespan < best->makespan) best = std::move(*s);
    }
    results.push_back(std::move(r));
  }
  if (!best) return first_failure;
  if (problem.graph().layer_count() >= 2 && problem.device_count() >= 2 &&
      size_t(problem.task_count()) <= options.refine_max_tasks) {
    Schedule refined = detail::refine_by_units(problem, options, pins, ranks, *best);
    CandidateResult r;
    r.algorithm = Algorithm::kRefine;
    r.makespan = refined.makespan;
    results.push_back(r);
    if (refined.makespan < best->makespan) best = std::move(refined);
  }
  best->candidates = std::move(results);
  return std::move(*best);
}

}  // namespace hal::scheduler
