// runtime/src/run_prediction.h (private to the runtime): what the cost model predicted for
// each command of a profiled run, for run reports to set beside what was measured.
//
// - An op entry (a kOp node, or the copies of a concat or KV-cache write) is predicted
//   as the sum of its node's specs (node_op_specs) on the device that ran it, by that
//   device's cost model; attention at the kv_length the run used (its dynamic kv_length
//   evaluated with the run's symbols), not the full cache the plan was made for; an op
//   right after one that streamed weights or KV caches on the same device
//   (evicts_caches) as such (scheduler::OpWork::after_stream).
// - The run's predicted makespan is the scheduler's for its plan, with each attention's
//   cost moved from the planned cache length to the run's; without a scheduled plan, the
//   largest sum of predicted op times on one device.
// Transfers, uploads and downloads are not predicted here (0).
//
// Threading: pure functions.
#pragma once

#include <span>
#include <vector>

#include "hal/runtime/scheduled_plan.h"
#include "hal/runtime/session.h"
#include "hal/scheduler/cost_model.h"

namespace hal::runtime {

struct RunPrediction {
  std::vector<double> entry_seconds;  // per timeline entry
  double makespan_s = 0;
};

// `models[d]` is the cost model of the run's device d (null: nothing predicted there).
RunPrediction predict_run(const ProfiledRun& run,
                          std::span<const scheduler::DeviceCostModel* const> models,
                          const ScheduledGraph* scheduled);

}  // namespace hal::runtime
