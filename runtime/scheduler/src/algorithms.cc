// One named scheduling algorithm run on a problem: the list schedulers (HEFT, PEFT,
// lookahead, layer partition, the all-on-fastest and round-robin baselines), exhaustive
// search seeded by HEFT, HEFT plus refinement, and the replay of a searched assignment.
#include <cmath>

#include "list_engine.h"

namespace hal::scheduler::detail {

namespace {

// The device with the least total cost over the tasks (unsupported tasks counted at their
// cheapest supported device).
int32_t fastest_device(const Problem& pb) {
  int32_t best = 0;
  double best_sum = kInfinity;
  for (int32_t d = 0; d < pb.device_count(); ++d) {
    double sum = 0;
    for (TaskId t = 0; t < pb.task_count(); ++t) {
      double c = pb.supported(t, d) ? pb.cost(t, d) : kInfinity;
      if (!std::isfinite(c))
        for (int32_t q = 0; q < pb.device_count(); ++q)
          if (pb.supported(t, q)) c = std::min(c, pb.cost(t, q));
      sum += c;
    }
    if (sum < best_sum) {
      best_sum = sum;
      best = d;
    }
  }
  return best;
}

}  // namespace

Result<Schedule> replay(const Problem& pb, const Options& options, const std::vector<int32_t>& pins,
                        const Assignment& assignment, Algorithm label) {
  Engine engine(pb, options, pins);
  RunConfig cfg;
  cfg.label = label;
  cfg.policy = Policy::kPreferred;
  cfg.order = &assignment.order;
  cfg.preferred = &assignment.device;
  return run_with_capacity(engine, pb, cfg);
}

Result<Schedule> run_algorithm(const Problem& pb, const Options& opt,
                               const std::vector<int32_t>& pins, Algorithm a,
                               const std::vector<double>& ranks) {
  Engine engine(pb, opt, pins);
  RunConfig cfg;
  cfg.label = a;
  cfg.priority = &ranks;
  switch (a) {
    case Algorithm::kHeft:
      cfg.policy = Policy::kEft;
      return run_with_capacity(engine, pb, cfg);
    case Algorithm::kLookahead:
      cfg.policy = Policy::kLookahead;
      return run_with_capacity(engine, pb, cfg);
    case Algorithm::kPeft: {
      const std::vector<double> oct = optimistic_cost_table(pb);
      const std::vector<double> rank = oct_ranks(pb, oct);
      cfg.policy = Policy::kPeft;
      cfg.oct = &oct;
      cfg.priority = &rank;
      return run_with_capacity(engine, pb, cfg);
    }
    case Algorithm::kLayerPartition: {
      HAL_ASSIGN_OR_RETURN(std::vector<int32_t> preferred, layer_partition(pb));
      cfg.policy = Policy::kPreferred;
      cfg.preferred = &preferred;
      return run_with_capacity(engine, pb, cfg);
    }
    case Algorithm::kAllOnFastest: {
      const std::vector<int32_t> preferred(size_t(pb.task_count()), fastest_device(pb));
      cfg.policy = Policy::kPreferred;
      cfg.preferred = &preferred;
      return run_with_capacity(engine, pb, cfg);
    }
    case Algorithm::kRoundRobin:
      cfg.policy = Policy::kRoundRobin;
      return run_with_capacity(engine, pb, cfg);
    case Algorithm::kExhaustive: {
      if (opt.link_model != LinkModel::kContentionFree)
        return invalid_argument(
            "exhaustive search models contention-free links only (Options::link_model)");
      if (size_t(pb.task_count()) > opt.exhaustive_max_tasks)
        return invalid_argument("exhaustive search: " + std::to_string(pb.task_count()) +
                                " tasks exceed the limit of " +
                                std::to_string(opt.exhaustive_max_tasks));
      // The search times tasks in the append model; any schedule has an append-model
      // equivalent at least as short, so it is exact there.
      Options append = opt;
      append.insertion = false;
      Options heft_opt = opt;
      HAL_ASSIGN_OR_RETURN(Schedule heft,
                           run_algorithm(pb, heft_opt, pins, Algorithm::kHeft, ranks));
      bool proved = false;
      const double bound = heft.makespan * (1 + 1e-9) + 1e-300;
      auto found = exhaustive_search(pb, append, pins, bound, &proved);
      if (!found.ok()) {
        if (found.status().code() != StatusCode::kNotFound) return found.status();
        // Nothing beats HEFT by more than rounding: HEFT is optimal.
        heft.algorithm = Algorithm::kExhaustive;
        heft.proved_optimal = proved;
        return heft;
      }
      HAL_ASSIGN_OR_RETURN(Schedule s, replay(pb, append, pins, *found, Algorithm::kExhaustive));
      s.proved_optimal = proved;
      return s;
    }
    case Algorithm::kRefine: {  // HEFT, then the unit refinement kAuto applies
      HAL_ASSIGN_OR_RETURN(Schedule heft, run_algorithm(pb, opt, pins, Algorithm::kHeft, ranks));
      Schedule refined = refine_by_units(pb, opt, pins, ranks, std::move(heft));
      refined.algorithm = Algorithm::kRefine;
      return refined;
    }
    case Algorithm::kAuto:
      break;
  }
  return invalid_argument("scheduler: algorithm 'auto' is not a single algorithm");
}

}  // namespace hal::scheduler::detail
