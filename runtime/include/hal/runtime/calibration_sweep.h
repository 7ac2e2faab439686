// hal/runtime/calibration_sweep.h: what `halctl bench DEVICE --calibrate` measures: the
// ops transformer models dispatch, at the shapes they dispatch them, timed through the
// HAL the way the executor issues them.
//
// The sweep (calibration_ops): every op, in order, of the forward graphs
// (build_model_graph) of a family of synthetic one-block transformers: gpt2-style blocks
// (layer norm, gelu, biases, fused qkv) and llama-style blocks (rms norm, silu, rotary,
// grouped-query attention with a kv head per 4 query heads), hidden size 512, 1024 and
// 2048 (64-wide heads), vocabulary 32768, decoding one token at KV lengths 8, 32, 256 and
// 1024 and prefilling 4 to 256 tokens; the copies of concats and KV-cache writes
// included. Each graph's ops form one sequence. Real models' shapes are deliberately not
// in it: they are predicted by the cost model's interpolation between these
// (cost_model.h). `quick` keeps hidden 512 and 1024, fewer lengths.
//
// Timing (measure_calibration_ops): a sequence runs as the executor runs a graph, every
// op once per step, in order, on one stream of the device that keeps command records;
// steps repeat until the records cover `min_time_s` (and at least `min_reps` steps), and
// the whole sweep runs `rounds` times. An op's time is the median of its records'
// durations over the steps of every round (the device's own
// clock: measured on a CPU, simulated on the NPU simulator; the median, so the odd step
// another process preempted does not count), the figure a run's timeline and report add
// up. In a sequence each op follows the ops a model runs before it, so caches, branch
// predictors and the threads' state are what they are in a model (an op repeated
// back to back on its own measured a tenth of what it took in a decode step for the
// smallest ops). Inputs a model reads from its weights or KV caches come from a pool of
// `cold_bytes`, larger than the caches: each dispatch reads the pool's next regions, so
// they stream from memory as in a decode step; a KV-cache write writes the pool's next
// region too, 2 MiB clear of the next one (a model writes a cache line it last read a step
// ago, in a cache of its own). Activations flow as in the
// graph, in one activation arena per sequence laid out by the executor's memory plan: an op's
// activation input is where the op that produced it wrote, so an add reads what the matmul
// before it just wrote, from cache, as it does in a model (separate input buffers, last touched
// a step before and evicted since by the weights, made the small ops' predictions up to 3x what
// a model step measured), and an op writes where the plan puts its output: memory a value that
// died lately used, as in a model (a buffer of its own per value, last written a step before,
// made the decode step's adds, gelu and attention ~2x what they take in a model: each output
// line came from memory before it was written). An embedding gathers distinct rows spread
// over its table (calibration_token_ids), as a prompt's tokens do (one id repeated read one
// row from memory and the rest from cache: prefill gathers measured a fifth of a model's),
// starting mid-table (the table's first rows follow the region the step's last op streamed,
// and came in with its prefetches: a decode gather measured half of a model's).
// The gap between commands (event-to-event time minus the records' sum, per op) is kept as
// well.
//
// Errors: a device that cannot allocate or run an op gets that op skipped with the
// reason (skipped), never a failed sweep; a stream or event that cannot be made fails it.
// Threading: one sweep per device at a time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "hal/device.h"
#include "hal/op.h"
#include "hal/status.h"

namespace hal::runtime {

struct CalibrationOp {
  std::string label;  // "h1024 llama decode kv256: matmul [1,1,1024] x [4096,1024]^T"
  OpSpec spec;
  std::array<bool, kMaxOpInputs> cold{};  // inputs read from weights or KV caches
  bool cold_output = false;               // writes a KV cache (a region not touched lately)
  int64_t kv_length = 0;                  // attention: the keys visible (its kv_lengths input)
  // Part of the transformer block (a node of a layer): a model runs it once per layer,
  // the ops outside (embeddings, final norm, head) once per step.
  bool in_block = false;
  // Runs right after an op that streams weights or KV caches past the caches
  // (evicts_caches): scheduler::OpWork::after_stream.
  bool after_stream = false;
  int32_t sequence = 0;  // ops of one sequence are consecutive, in the graph's order
  // The activation each input reads and the output writes: an index of the sequence's
  // graph values (its storage root), shared by the ops that produce and consume it; -1:
  // a buffer of its own (weights and KV caches, integer inputs).
  std::array<int32_t, kMaxOpInputs> input_value = filled_minus_one();
  int32_t output_value = -1;
  // Where those activations live in the sequence's activation arena: the offsets the
  // executor's memory plan (arena_layout.h, plan_memory) gives the values over the graph's
  // order, and the arena's size (the same in every op of a sequence).
  std::array<uint64_t, kMaxOpInputs> input_offset{};
  uint64_t output_offset = 0;
  uint64_t arena_bytes = 0;

 private:
  static constexpr std::array<int32_t, kMaxOpInputs> filled_minus_one() {
    std::array<int32_t, kMaxOpInputs> a{};
    a.fill(-1);
    return a;
  }
};

std::vector<CalibrationOp> calibration_ops(DType compute_dtype, bool quick);

// The ids the sweep's embeddings gather: `count` rows of a `rows`-row table, distinct while
// count <= rows, spread over the whole table (a prime stride), starting at `first`.
std::vector<int64_t> calibration_token_ids(int64_t count, int64_t rows, int64_t first = 0);

struct CalibrationMeasureOptions {
  // Every sequence runs in `rounds` rounds, one after the other over the whole sweep, and
  // an op's time is the median over all of them: a shared machine's memory bandwidth
  // drifts by 15-20% over tens of seconds, and one round catches one moment of it.
  int rounds = 3;
  double min_time_s = 0.2 / 3;  // device seconds of records per sequence and round
  int min_reps = 3;             // steps per sequence and round at least
  int max_reps = 1000;
  uint64_t cold_bytes = 1ull << 30;  // the pool cold inputs rotate over
  bool timing_only = false;          // virtual buffers: timed, not computed
  std::function<void(size_t done, size_t total)> progress;
};

struct MeasuredOp {
  const CalibrationOp* op = nullptr;
  double seconds = 0;       // median record duration (robust to the odd preempted rep)
  double mean_seconds = 0;  // mean record duration
  double gap_seconds = 0;   // per op, between back-to-back commands (>= 0)
  int reps = 0;
};

struct CalibrationSkip {
  std::string what, why;
};

Result<std::vector<MeasuredOp>> measure_calibration_ops(Device& device,
                                                        std::span<const CalibrationOp> ops,
                                                        const CalibrationMeasureOptions& options,
                                                        std::vector<CalibrationSkip>* skipped);

}  // namespace hal::runtime
