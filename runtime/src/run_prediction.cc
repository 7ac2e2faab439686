// Predicted times of a profiled run's commands (run_prediction.h).
#include "run_prediction.h"

#include <algorithm>

namespace hal::runtime {

RunPrediction predict_run(const ProfiledRun& run,
                          std::span<const scheduler::DeviceCostModel* const> models,
                          const ScheduledGraph* scheduled) {
  RunPrediction p;
  p.entry_seconds.assign(run.timeline.entries.size(), 0.0);
  if (!run.graph) return p;
  const Graph& g = *run.graph;
  double attention_shift = 0;
  std::vector<double> per_device(models.size(), 0.0);
  // Per device: whether its last op streamed weights or KV caches (OpWork::after_stream).
  std::vector<char> streamed(models.size(), 0);
  for (size_t i = 0; i < run.timeline.entries.size(); ++i) {
    const TimelineEntry& e = run.timeline.entries[i];
    if (e.kind != TimelineEntry::Kind::kOp || e.node == kNoNode || e.device < 0 ||
        size_t(e.device) >= models.size() || !models[size_t(e.device)])
      continue;
    const scheduler::DeviceCostModel& model = *models[size_t(e.device)];
    const Node& node = g.node(e.node);
    double seconds = 0;
    bool first = true;
    for (OpSpec spec : node_op_specs(g, e.node)) {
      scheduler::OpWork work = scheduler::OpWork::from_spec(spec);
      work.after_stream = first && streamed[size_t(e.device)] != 0;
      first = false;
      if (node.kv_length && node.kv_length->symbol < int32_t(run.symbols.size())) {
        const double planned = model.seconds(work);
        spec.attrs.kv_length = node.kv_length->eval(run.symbols);
        scheduler::OpWork actual_work = scheduler::OpWork::from_spec(spec);
        actual_work.after_stream = work.after_stream;
        const double actual = model.seconds(actual_work);
        attention_shift += actual - planned;
        seconds += actual;
      } else {
        seconds += model.seconds(work);
      }
    }
    streamed[size_t(e.device)] = evicts_caches(g, e.node);
    p.entry_seconds[i] = seconds;
    per_device[size_t(e.device)] += seconds;
  }
  if (scheduled && scheduled->predicted_makespan_s > 0)
    p.makespan_s = scheduled->predicted_makespan_s + attention_shift;
  else
    p.makespan_s =
        per_device.empty() ? 0.0 : *std::max_element(per_device.begin(), per_device.end());
  return p;
}

}  // namespace hal::runtime
