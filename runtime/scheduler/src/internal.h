// internal.h: pieces shared by the scheduler's translation units (not installed).
#pragma once

#include <cstdint>
#include <vector>

#include "hal/scheduler/scheduler.h"

namespace hal::scheduler::detail {

// A fixed schedule recipe: tasks in `order`, each on `device[task]`.
struct Assignment {
  std::vector<TaskId> order;
  std::vector<int32_t> device;
};

// Times `assignment` with the list scheduler (append policy when !options.insertion)
// and assembles the full schedule, labelled `label`.
Result<Schedule> replay(const Problem& problem, const Options& options,
                        const std::vector<int32_t>& pins, const Assignment& assignment,
                        Algorithm label);

// Branch and bound over (task order, device) for the contention-free append model; finds
// an assignment strictly better than `upper_bound` if one exists. `proved` says the search
// finished (else it ran out of nodes). Fails when nothing better than upper_bound exists.
Result<Assignment> exhaustive_search(const Problem& problem, const Options& options,
                                     const std::vector<int32_t>& pins, double upper_bound,
                                     bool* proved);

// Peak bytes of live activations per device for a schedule (task outputs from their start
// to the end of their last reader on that device; transferred copies from the transfer's
// start to the end of their last reader). Outputs nobody reads live to the makespan.
std::vector<uint64_t> activation_peaks(const Problem& problem, const Schedule& schedule);

// Options::placement and Options::task_pins resolved to one device index per task (-1:
// free), or empty when nothing is pinned.
Result<std::vector<int32_t>> resolve_pins(const Problem& problem, const Options& options);

// Mean-cost upward ranks (HEFT).
std::vector<double> upward_ranks(const Problem& problem);

}  // namespace hal::scheduler::detail
