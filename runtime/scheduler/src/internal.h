// internal.h: pieces shared by the scheduler's translation units (not installed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hal/scheduler/scheduler.h"

namespace hal::scheduler::detail {

// A fixed schedule recipe: tasks in `order`, each on `device[task]`.
struct Assignment {
  std::vector<TaskId> order;
  std::vector<int32_t> device;
};

// Times `assignment` with the list scheduler (append policy when !options.insertion)
// and assembles the full schedule, labelled `label` (algorithms.cc).
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
// free), or empty when nothing is pinned (placement.cc).
Result<std::vector<int32_t>> resolve_pins(const Problem& problem, const Options& options);

// How messages name a task: 'name' in quotes, or #id when it has none.
std::string task_label(const TaskGraph& graph, TaskId task);

// Mean-cost upward ranks (HEFT) (ranks.cc).
std::vector<double> upward_ranks(const Problem& problem);

// PEFT's optimistic cost table, tasks x devices: OCT(t, p) = max over children c of
// min over q of OCT(c, q) + w(c, q) + (q != p ? mean comm : 0); and the ranks from it
// (mean OCT over the devices that can run the task) (ranks.cc).
std::vector<double> optimistic_cost_table(const Problem& problem);
std::vector<double> oct_ranks(const Problem& problem, const std::vector<double>& oct);

// Layer partition: contiguous ranges of layers per device, chosen by dynamic programming
// over (next layer, devices used, last device) to minimise total compute plus the
// transfers at range boundaries, each range's resident bytes within its device's
// capacity. Tasks outside the blocks join the layer they feed or follow. Returns the
// preferred device per task, or an error when the graph has no layers or no partition
// fits (layer_partition.cc).
Result<std::vector<int32_t>> layer_partition(const Problem& problem);

// Runs one algorithm (not kAuto) with ranks from upward_ranks (algorithms.cc).
Result<Schedule> run_algorithm(const Problem& problem, const Options& options,
                               const std::vector<int32_t>& pins, Algorithm algorithm,
                               const std::vector<double>& ranks);

// Local search over units of placement starting from `best`; returns the better of the
// two (refine.cc).
Schedule refine_by_units(const Problem& problem, const Options& options,
                         const std::vector<int32_t>& pins, const std::vector<double>& ranks,
                         Schedule best);

}  // namespace hal::scheduler::detail
