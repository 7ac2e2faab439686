// hal/runtime/session.h: a model made ready on devices, and text generation with it.
//
// A Session uploads the model's weights to its devices once (converted to the compute
// dtype), and for each generate() call allocates the KV caches and builds (or reuses) a
// prefill graph for the prompts' shape and a decode graph, each with a prepared
// Executor: decode steps replay the same commands with new run-time integers, so no
// graph is rebuilt and nothing is allocated per token.
//
// Placement: with one device everything runs there. With several, the transformer
// blocks are split into contiguous layer ranges, one per device in order (embeddings
// on the first, the head on the last), with transfers where the residual stream crosses
// devices: a simple placement until a scheduler is passed as SessionOptions::planner
// (ScheduledPlanBuilder in scheduled_plan.h). Each weight and KV cache lives on the
// device(s) whose nodes read it (the plan's required bindings). Weights are placed by
// planning a prototype graph: one decode step over `planned_context` positions, so a
// planner that respects capacity counts the KV caches a long generation will need.
//
// Profiling (SessionOptions::profile): executors record their commands, and each
// generate() returns one ProfiledRun per executor run (prefill, every decode step) with
// the run's timeline (executor.h) and what its plan keeps on each device.
//
// Generation
// - Prompts of different lengths run as one batch: prefill over the longest (shorter
//   ones padded at the end; causal attention keeps padding out of real positions, and
//   each row's logits come from its own last token), then decode steps of one token per
//   row, each row at its own position (per-row KV write offsets and kv_lengths).
// - The first new token comes from the prefill logits; each decode step feeds the
//   previous token. max_new_tokens N gives N tokens per row (fewer after eos).
// - Sampling: temperature 0 is greedy (argmax, lowest id on ties). Otherwise logits /
//   temperature, then top-k (0 = off), then top-p (nucleus, 1 = off), then a draw from
//   a generator seeded with `seed`: every row starts from the same seed, so a row's
//   tokens do not depend on the rest of its batch, and equal seeds reproduce.
// - Timing: prefill covers uploading the prompts to receiving its logits; decode covers
//   every later step including sampling. Tokens/s count real (unpadded) prompt tokens
//   for prefill and generated tokens (after the first) for decode.
//
// Errors: token ids outside [0, vocab), an empty prompt, sequences past the model's
// position limit (gpt2), unsupported compute dtype -> INVALID_ARGUMENT naming the row
// and value; device failures carry the node that failed.
//
// Device faults (failover.cc; a simulated NPU injects them: backends/npu_sim/README.md)
// - Without GenerationOptions::failover, a step that fails on a device fails generate()
//   with the device's status (DEVICE_LOST, DATA_LOSS, DEADLINE_EXCEEDED, ...) naming the
//   device and the node ("decode step 5: executor: node 'h.2.mlp.fc' (matmul) on
//   npu:1: npu:1: device lost during op 40 ..."). Nothing is left running, and the
//   run's KV caches and activation memory are freed (the weights stay until the session
//   goes); a later generate() starts afresh.
// - With failover, a device fault is survived: every device is probed with a tiny
//   command; those that report DEVICE_LOST are dropped (the session now runs on the
//   others: options().devices shrinks), and the session is rebuilt on the devices left
//   (weights uploaded again, since an ECC error may have hit them; new plans and KV
//   caches), then generation resumes by prefilling each unfinished row's prompt plus the
//   tokens it has produced so far, and continues. Greedy decoding therefore gives the
//   tokens an undisturbed run gives (up to the rounding differences of the devices
//   left); sampling continues each row's generator where it stopped. A transient fault
//   (no device lost: an ECC error, a timeout) is recovered the same way on the same
//   devices, at most kMaxTransientRecoveries times per generate(). Each recovery is
//   reported in GenerationResult::failovers. Faults that are not device faults
//   (invalid arguments, out of memory) are never retried. A SessionOptions::planner
//   that refuses the devices left is replaced by the default placement (noted in the
//   event).
//
// Lifetime: the Session keeps the Model (shared) and device buffers; the Platform must
// outlive it. Threading: one call at a time per Session.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hal/device.h"
#include "hal/runtime/compiled_units.h"
#include "hal/runtime/executor.h"
#include "hal/runtime/model.h"
#include "hal/runtime/model_graph.h"
#include "hal/runtime/quantize.h"

namespace hal::runtime {

struct SamplingOptions {
  float temperature = 0.0f;  // 0 = greedy
  int32_t top_k = 0;         // 0 = all
  float top_p = 1.0f;        // 1 = all
  uint64_t seed = 0;
};

// Deterministic generator (splitmix64) used by sampling: the same draws everywhere.
class SamplingRng {
 public:
  explicit SamplingRng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  double uniform();  // [0, 1)

 private:
  uint64_t state_;
};

// Picks a token from one row of logits.
int32_t sample_token(std::span<const float> logits, const SamplingOptions& options,
                     SamplingRng& rng);

// Progress of long work, for a terminal display: `what` ("uploading weights",
// "generating"), units done and total.
using ProgressFn = std::function<void(std::string_view what, uint64_t done, uint64_t total)>;

// Places a graph on the session's devices: a finalized ExecutionPlan over exactly
// `devices` (same order). The scheduler plugs in here; by default one device runs
// everything and several get make_layer_split_plan. It is called for every graph shape
// the session prepares (prototype, prefill, decode), so it must place a given layer the
// same way each time (weights are uploaded once, where the prototype plan reads them).
using PlanBuilder = std::function<Result<ExecutionPlan>(std::shared_ptr<const Graph> graph,
                                                        const std::vector<Device*>& devices)>;

struct SessionOptions {
  std::vector<Device*> devices;  // at least one
  DType compute_dtype = DType::kF32;
  // How weights are stored on the devices (quantize.h): as stored in the file (f16,
  // quantized) or quantized on load; by default in the compute dtype, except weights the
  // model holds quantized.
  WeightOptions weights;
  ProgressFn progress;
  bool record_commands = false;  // executors keep CommandRecords (last_records())
  PlanBuilder planner;           // empty: the default placement (above)
  // KV-cache positions the placement plans room for (0: the model's position limit,
  // at most 4096; 2048 when the model states none).
  int64_t planned_context = 0;
  bool profile = false;  // GenerationResult::runs (see above)
  // Whole-graph offload without a planner (compiled_units.h): each plan's runs that a
  // device compiles become executables. With a planner, its SchedulingOptions::compile
  // decides instead.
  CompileSettings compile;
  // Shape buckets (what compiled executables are built for): prefill runs over the
  // smallest bucket >= the longest prompt (prompts padded at the end, as in a batch of
  // unequal prompts), or the longest prompt when none is; decode graphs are sized for
  // `context` positions when > 0 (else the run's need, rounded up to 64).
  std::vector<int64_t> prompt_buckets;
  int64_t context = 0;
  // A parallel rank's channels (executor.h: ExecutorOptions::channels); its model is a
  // shard (parallel.h). Not owned.
  std::vector<const Channel*> channels;
};

// What a plan keeps on each device (by device index) and its streams' names.
struct PlanFootprint {
  std::vector<uint64_t> weight_bytes;
  // Weights some op other than an embedding gather reads (in full, each run): the
  // device-memory traffic a run cannot avoid. Embedding tables are only gathered
  // (one row per token), unless tied to the LM head.
  std::vector<uint64_t> streamed_weight_bytes;
  std::vector<uint64_t> state_bytes;       // KV caches
  std::vector<uint64_t> activation_bytes;  // the activation arena
  std::vector<std::vector<std::string>> stream_names;
};
PlanFootprint plan_footprint(const ExecutionPlan& plan);  // scheduled_plan.cc

// One executor run of a profiled generation.
struct ProfiledRun {
  std::string phase;                   // "prefill" or "decode"
  int64_t tokens = 0;                  // tokens the run produced (rows still generating)
  std::shared_ptr<const Graph> graph;  // the plan's graph (identifies the plan)
  std::shared_ptr<const PlanFootprint> footprint;
  Timeline timeline;
  std::vector<int64_t> symbols;  // the run-time integers it ran with (Graph::symbols order)
};

// Called with each token a row produces, in order, as soon as it is chosen (before the
// next step runs): streaming output. Returning false ends that row after this token (a
// stop string appeared in its text). Runs on the thread that called generate().
using TokenFn = std::function<bool(int64_t row, int32_t token)>;

struct GenerationOptions {
  int64_t max_new_tokens = 16;
  SamplingOptions sampling;
  int64_t eos_token_id = -1;  // a row stops after producing it (-1: never)
  // More ids that end a row like eos_token_id (a model's generation_config.json may name
  // several: Llama 3's <|end_of_text|> and <|eot_id|>).
  std::vector<int32_t> stop_token_ids;
  bool keep_logits = false;  // GenerationResult::logits
  ProgressFn progress;       // called after each token step
  TokenFn on_token;          // optional; see TokenFn
  bool failover = false;     // survive device faults (top of this file)
};

// One recovery from a device fault during generate() with failover.
struct FailoverEvent {
  Status fault;                      // what failed (code and message)
  std::vector<std::string> lost;     // device ids dropped ("npu:1"); empty: transient
  std::vector<std::string> devices;  // the devices the run continued on
  int64_t tokens_kept = 0;           // tokens generated before the fault (all rows)
  int64_t tokens_prefilled = 0;      // prompt + kept tokens prefilled again (all rows)
  double seconds = 0;                // rebuilding the session and prefilling again
  std::string note;                  // e.g. that the planner was replaced (below)
};

struct GenerationResult {
  std::vector<std::vector<int32_t>> tokens;  // per prompt: the generated ids
  // Per prompt: 1 when the row ended before max_new_tokens (a stop id, or on_token said
  // stop), 0 when it ran to the length limit.
  std::vector<uint8_t> stopped;
  // keep_logits: per prompt, one row of vocab_size floats per generated token (the
  // logits the token was chosen from).
  std::vector<std::vector<float>> logits;
  int64_t prompt_tokens = 0;  // real prompt tokens (sum of lengths)
  int64_t decode_tokens = 0;  // tokens produced by decode steps
  double prefill_seconds = 0;
  double decode_seconds = 0;
  std::vector<double> step_seconds;  // each decode step
  // On the device's own clock (single-device sessions; 0 otherwise): what a simulated
  // device's model says the work took, where wall-clock time measures the simulator.
  double prefill_device_seconds = 0;
  double decode_device_seconds = 0;
  uint64_t prefill_activation_bytes = 0;  // peak activation memory of the prefill graph
  uint64_t decode_activation_bytes = 0;
  uint64_t kv_cache_bytes = 0;
  std::vector<FailoverEvent> failovers;  // GenerationOptions::failover: each recovery
  std::vector<ProfiledRun> runs;         // SessionOptions::profile only

  double prefill_tokens_per_s() const {
    return prefill_seconds > 0 ? double(prompt_tokens) / prefill_seconds : 0;
  }
  double decode_tokens_per_s() const {
    return decode_seconds > 0 ? double(decode_tokens) / decode_seconds : 0;
  }
  double device_decode_tokens_per_s() const {
    return decode_device_seconds > 0 ? double(decode_tokens) / decode_device_seconds : 0;
  }
};

class Session {
 public:
  // Recoveries from faults that lose no device, per generate() (failover).
  static constexpr int32_t kMaxTransientRecoveries = 3;

  static Result<std::unique_ptr<Session>> create(std::shared_ptr<const Model> model,
                                                 SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Model& model() const { return *model_; }
  const ModelConfig& config() const { return model_->config(); }
  const SessionOptions& options() const { return options_; }
  // Which device runs each transformer block (index into options().devices): where most
  // of the block's weight bytes are read in the prototype plan (the scheduler may run a
  // cheap op of the block elsewhere).
  const std::vector<int32_t>& layer_devices() const { return layer_device_; }
  uint64_t weight_bytes() const { return weight_bytes_; }
  // Each weight's stored dtype and orientation, and the fallbacks taken.
  const WeightFormats& weight_formats() const { return *weight_formats_; }

  Result<GenerationResult> generate(const std::vector<std::vector<int32_t>>& prompts,
                                    const GenerationOptions& options);

  // Prepares (plans, and compiles where SessionOptions::compile or the planner says) the
  // prefill graph of `batch` prompts of `prompt_len` tokens and the decode graph that
  // follows it for `max_new_tokens`, without running them: ahead-of-time compilation.
  Status prepare_generation(int64_t batch, int64_t prompt_len, int64_t max_new_tokens);

  // Logits at every position of full sequences, computed in one pass from an empty
  // cache: [rows][length x vocab]. The reference for cached decoding.
  Result<std::vector<std::vector<float>>> forward_all(
      const std::vector<std::vector<int32_t>>& sequences);

  // Records of the last run's commands (record_commands only).
  std::vector<StepRecord> last_records() const { return records_; }

 private:
  struct Prepared;
  Session() = default;
  Session& operator=(Session&&);  // failover swaps in a rebuilt session
  // The generation loop: fills `r` (tokens so far, even when it fails) and advances
  // `rngs` (one per prompt) by the draws made.
  Status generate_into(const std::vector<std::vector<int32_t>>& prompts,
                       const GenerationOptions& options, GenerationResult& r,
                       std::vector<SamplingRng>& rngs);
  // Frees what a failed run leaves (prepared graphs, KV caches).
  void release_run_state();
  // failover.cc: survives `fault` (returned by generate_into) and finishes the run.
  Result<GenerationResult> resume_after_fault(const std::vector<std::vector<int32_t>>& prompts,
                                              const GenerationOptions& options, GenerationResult r,
                                              std::vector<SamplingRng> rngs, Status fault);
  Status check_prompts(const std::vector<std::vector<int32_t>>& prompts, int64_t extra) const;
  Result<Prepared*> prepare(const ModelGraphShape& shape);
  // The prefill length and cache length a generation of these sizes uses (buckets).
  Result<std::pair<int64_t, int64_t>> generation_shape(int64_t longest_prompt,
                                                       int64_t max_new_tokens) const;
  Result<ExecutionPlan> make_plan(std::shared_ptr<const Graph> graph) const;
  Status bind_all(Prepared& p);
  uint64_t state_bytes(const Prepared& p) const;

  std::shared_ptr<const Model> model_;
  SessionOptions options_;
  std::vector<int32_t> layer_device_;
  // Weights by (name, device index).
  std::map<std::pair<std::string, int32_t>, Buffer> weights_;
  uint64_t weight_bytes_ = 0;
  std::shared_ptr<const WeightFormats> weight_formats_;
  // States (KV caches) by (name, device), sized for the last graph shape that used them;
  // state_epoch_ counts reallocations so executors bound to older buffers rebind.
  std::map<std::pair<std::string, int32_t>, Buffer> states_;
  uint64_t state_epoch_ = 1;
  std::vector<std::unique_ptr<Prepared>> prepared_;
  std::vector<StepRecord> records_;
};

}  // namespace hal::runtime
