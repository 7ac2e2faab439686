// hal/runtime/run_report.h: where a run's time and bytes went, per device and per op
// class, built from the profiled runs of a Session (session.h) and written as JSON
// (`halctl run --report`), Chrome trace JSON (`--trace`), a roofline SVG and a text
// summary (`halctl report`).
//
// Figures
// - Per device: busy time (sum of its commands' durations on the shared timeline),
//   FLOPs, device-memory bytes read and written (as the device's command records
//   report them: the NPU simulator's traffic model, the analytic minimum on CPU), achieved
//   FLOP/s and bandwidth over the busy time and their fraction of the device's peak
//   (FLOP/s at the run's compute dtype), peak memory in use (allocator statistics) and
//   what the plans keep there (weights, KV caches, activation arenas) vs capacity.
// - Per op class (an op kind: matmul, attention, layer_norm, ...; copies of concat and
//   cache writes count as "transpose") on each device: the same, plus its arithmetic
//   intensity (FLOPs per device-memory byte) and whether it is memory- or compute-bound
//   by the roofline (intensity below or above peak FLOP/s / peak bandwidth). The peak of
//   matrix ops is the dtype's; of vector and data ops DeviceInfo's "vector_flops" when
//   reported (as the scheduler's cost model).
// - Transfers between devices: count, bytes and time per (from, to), and whether their
//   times were measured (device records) or modelled from the link (host-staged copies).
// - Phases (prefill, decode): runs, tokens, the predicted makespan of a run and the
//   measured one (mean over runs; the timeline's makespan). The prediction is the
//   scheduler's for the run's plan with each attention moved from the planned cache
//   length to the kv length the run used (run_prediction.h).
// - Predicted vs measured per op class: every op command's time as the cost model the
//   scheduler used (calibrated where a calibration was found) predicts it, summed per op
//   class on each device and per op class in each phase, beside the measured sum and
//   the error (predicted / measured - 1).
// - Decode: HBM bytes per decode token on each device = the device-memory bytes its
//   commands (ops and copies) moved in all decode runs / decode tokens; next to it the
//   weight and KV-cache bytes the decode plan keeps there; the physical minimum per
//   token at batch 1 is the weights read in full there (all but gathered embedding
//   tables: decode_streamed_weight_bytes).
//
// JSON (run_report_to_json / parse_run_report): {"format": "hal-run-report",
// "version": 1, "model", "dtype", "placement", "algorithm", "devices": [{"id", "name",
// "kind", "peak_flops_per_s", "peak_bandwidth_bytes_per_s", "capacity_bytes",
// "peak_memory_bytes", "weight_bytes", "kv_cache_bytes", "activation_bytes", "busy_s",
// "flops", "bytes_read", "bytes_written", "achieved_flops_per_s",
// "achieved_bandwidth_bytes_per_s", "flops_fraction_of_peak",
// "bandwidth_fraction_of_peak", "decode_hbm_bytes_per_token", "decode_weight_bytes",
// "decode_streamed_weight_bytes", "decode_kv_cache_bytes", "op_classes": [{"name", "engine",
// "commands", "busy_s", "flops", "bytes_read", "bytes_written", "intensity_flops_per_byte",
// "achieved_...",
// "..._fraction_of_peak", "peak_flops_per_s", "bound", "predicted_s",
// "prediction_error"}]}], "transfers": [{"from", "to", "count", "bytes", "seconds",
// "measured"}], "phases": [{"name", "runs", "tokens", "predicted_makespan_s",
// "measured_makespan_s", "measured_total_s", "op_classes": [as devices' op_classes]}],
// "predicted_makespan_s", "measured_makespan_s" (totals over all runs), "fallbacks":
// [{"node", "op", "preferred", "chosen", "reason", "cost_s"}], "decode_tokens"}.
//
// Trace (chrome_trace_json): Chrome trace event format (opens in Perfetto and
// chrome://tracing): one process per device (named by its id), one thread per stream
// ("compute", "copy->cpu:0"), transfers on a track of their own per destination
// ("transfers->cpu:0") in the issuing device's process, uploads and downloads on
// "host copies"; runs laid end to end on the shared timeline (microseconds).
//
// Errors: parse_run_report names the file and the key that is missing or mistyped.
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hal/device.h"
#include "hal/runtime/scheduled_plan.h"
#include "hal/runtime/session.h"
#include "hal/status.h"

namespace hal::runtime {

struct WorkStats {
  std::string name;    // op class ("matmul") or "" for a device total
  std::string engine;  // "matrix", "vector", "data"
  int64_t commands = 0;
  // Of `commands`, the ops that ran inside another op's fused group (compiled
  // executables): their time is measured with that op's class, and their prediction is
  // added there too, so each class compares like with like.
  int64_t fused = 0;
  double busy_s = 0;
  double flops = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  double peak_flops_per_s = 0;
  double peak_bandwidth_bytes_per_s = 0;
  std::string bound;  // "memory" or "compute" (op classes)
  // What the cost model predicted for these commands (ops only: a device total leaves
  // out transfers and host copies); 0 = no prediction.
  double predicted_s = 0;

  uint64_t bytes() const { return bytes_read + bytes_written; }
  double achieved_flops_per_s() const { return busy_s > 0 ? flops / busy_s : 0; }
  double achieved_bandwidth() const { return busy_s > 0 ? double(bytes()) / busy_s : 0; }
  double flops_fraction() const {
    return peak_flops_per_s > 0 ? achieved_flops_per_s() / peak_flops_per_s : 0;
  }
  double bandwidth_fraction() const {
    return peak_bandwidth_bytes_per_s > 0 ? achieved_bandwidth() / peak_bandwidth_bytes_per_s : 0;
  }
  double intensity() const { return bytes() > 0 ? flops / double(bytes()) : 0; }
  // predicted / measured - 1 (0 when either is missing).
  double prediction_error() const {
    return predicted_s > 0 && busy_s > 0 ? predicted_s / busy_s - 1 : 0;
  }
};

struct DeviceReport {
  std::string id, name, kind;
  WorkStats total;  // every command (ops and copies) of the device
  std::vector<WorkStats> op_classes;
  uint64_t capacity_bytes = 0;
  uint64_t peak_memory_bytes = 0;  // allocator peak (0 when the device cannot say)
  uint64_t weight_bytes = 0;       // largest over the plans run
  uint64_t kv_cache_bytes = 0;
  uint64_t activation_bytes = 0;
  double decode_hbm_bytes_per_token = 0;
  uint64_t decode_weight_bytes = 0;           // what the decode plan keeps here
  uint64_t decode_streamed_weight_bytes = 0;  // of which read in full each step
  uint64_t decode_kv_cache_bytes = 0;
};

struct TransferReport {
  std::string from, to;
  int64_t count = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  bool measured = true;  // every one from device records
};

// A parallel rank's collectives of one kind on one device (communication next to compute).
struct CollectiveReport {
  std::string device;
  std::string collective;  // "all_reduce", "send", ...
  std::string link;        // the class of link its bytes crossed ("peer", "network", ...)
  int64_t count = 0;
  double seconds = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
};

struct PhaseReport {
  std::string name;
  int64_t runs = 0;
  int64_t tokens = 0;
  double predicted_makespan_s = 0;  // per run (mean over the runs' plans); 0 = unknown
  double measured_makespan_s = 0;   // per run (mean)
  double measured_total_s = 0;
  // Per op class, over all the phase's runs and devices: measured (busy_s) and predicted
  // time, commands, FLOPs, bytes.
  std::vector<WorkStats> op_classes;
};

struct FallbackReport {
  std::string node, op, preferred, chosen, reason;
  double cost_s = 0;
};

struct RunReport {
  std::string model;
  std::string dtype;
  std::string placement;
  std::string algorithm;
  std::vector<DeviceReport> devices;
  std::vector<TransferReport> transfers;
  std::vector<CollectiveReport> collectives;
  std::vector<PhaseReport> phases;
  std::vector<FallbackReport> fallbacks;
  int64_t decode_tokens = 0;
  double predicted_makespan_s = 0;  // sum over runs
  double measured_makespan_s = 0;
};

struct RunReportInput {
  std::string model;
  DType compute_dtype = DType::kF32;
  std::vector<Device*> devices;
  std::span<const ProfiledRun> runs;
  const ScheduledPlanBuilder* planner = nullptr;  // predictions, placement, fallbacks
};

RunReport build_run_report(const RunReportInput& input);

std::string run_report_to_json(const RunReport& report);
// The "collectives" array of run_report_to_json alone (halctl run's parallel --json).
std::string collectives_to_json(const std::vector<CollectiveReport>& collectives);
// `origin` names the source in errors (a path).
Result<RunReport> parse_run_report(std::string_view json_text, std::string_view origin);

std::string chrome_trace_json(const std::vector<Device*>& devices,
                              std::span<const ProfiledRun> runs);

// An SVG with one log-log roofline panel per device (FLOP/s against FLOPs per byte:
// the bandwidth slope up to the ridge, the compute peak after) and every op class of
// the device as a point (a <circle class="op" data-device=.. data-op=..>).
std::string roofline_svg(const RunReport& report);

// A few lines per device, op class, transfer and phase, for a terminal.
std::string report_summary_text(const RunReport& report);

// One line per op class of a phase, per run: commands, measured and predicted time, and
// the error (predicted / measured - 1), after a header line; "" without op classes.
std::string phase_prediction_text(const PhaseReport& phase);
// " (+3.2%)": predicted against measured; "" when either is missing.
std::string signed_error(double predicted, double measured);

}  // namespace hal::runtime
