// hal/runtime/parallel.h: tensor and pipeline parallelism (Megatron style) over channels.
//
// A run of tp x pp ranks: rank r = pp_rank * tp + tp_rank. Stage pp_rank runs blocks
// [pp_rank * L / pp, (pp_rank + 1) * L / pp) (the first also the embeddings, the last the
// head); within a stage the tp ranks split every block:
// - attention: each rank holds num_heads / tp query heads and their K/V heads (grouped-
//   query aware: num_kv_heads / tp of them when tp divides num_kv_heads, else the one KV
//   head its query heads use, replicated on tp / num_kv_heads ranks), the matching
//   columns of the output projection; one all-reduce completes the projection;
// - MLP: each rank holds intermediate / tp columns of the up (gate and up) projections and
//   the matching rows of the down projection; one all-reduce completes it;
// - the output projections' biases are added on tensor-parallel rank 0 only;
// - norms, embeddings and the head are replicated on every rank of the stage.
// Activations pass between stages by send/recv on the pipeline channel, and the last
// stage broadcasts the logits, so every rank samples the same tokens (model_graph.h
// builds each rank's graph from its ShardLayout).
//
// Channels are hal::Channel (hal/channel.h): a run in one process creates them over its
// devices; a run across processes hands a hal::Transport (the MPI bootstrap's) to the
// channels; nothing here knows MPI.
//
// Threading: pure functions; shard models are immutable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hal/channel.h"
#include "hal/runtime/model.h"
#include "hal/runtime/model_config.h"
#include "hal/runtime/session.h"
#include "hal/status.h"
#include "hal/transport.h"

namespace hal::runtime {

struct ParallelDegrees {
  int32_t tp = 1;
  int32_t pp = 1;
  int32_t ranks() const { return tp * pp; }
  std::string to_string() const;  // "TP 2 x PP 2"
};

// Whether `config` splits tp x pp: heads and intermediate divisible by tp, KV heads
// divisible by tp or dividing it, at least pp layers. INVALID_ARGUMENT naming the figure
// that does not divide otherwise.
Status check_parallel_degrees(const ModelConfig& config, ParallelDegrees degrees);

// Blocks [begin, end) of stage `pp_rank`.
std::pair<int64_t, int64_t> stage_layers(int64_t num_layers, int32_t pp, int32_t pp_rank);

// The config of one rank: its share of the heads, KV heads and intermediate size, and its
// stage's layers (ShardLayout). Precondition: check_parallel_degrees passed.
ModelConfig shard_config(const ModelConfig& full, ParallelDegrees degrees, int32_t tp_rank,
                         int32_t pp_rank);

// The model one rank runs: shard_config's config and the weights it reads, sliced for the
// tensor-parallel ones (copies in the checkpoint's dtype) and the full model's own tensors
// for the replicated ones (the full model is kept alive). Weights of other stages are not
// included.
Result<std::shared_ptr<const Model>> shard_model(std::shared_ptr<const Model> full,
                                                 ParallelDegrees degrees, int32_t tp_rank,
                                                 int32_t pp_rank);

// ---- running -----------------------------------------------------------------------

struct ParallelRunOptions {
  ParallelDegrees degrees;
  // In one process (transport null): one device per rank, rank r = pp_rank * tp + tp_rank
  // (a device may serve several ranks where its plugin allows: cpu:0 does). Across
  // processes: the one device of this process's rank (transport->rank()).
  std::vector<Device*> devices;
  Transport* transport = nullptr;  // not owned; its size must be tp x pp
  DType compute_dtype = DType::kF32;
  bool record_commands = false;
  bool profile = false;
  double timeout_s = 0;  // collectives' (ChannelOptions::timeout_s)
  ProgressFn progress;   // the first local rank's
};

// A tensor- and pipeline-parallel run: this process's ranks, each a Session on its device
// with its shard of the model and its channels (the tensor-parallel group of its stage;
// the pipeline of its tensor-parallel rank, across the stages).
//
// Errors: degrees the model cannot be split by, a device count or transport size that is
// not tp x pp, and devices whose plugin offers no channels (UNIMPLEMENTED: "tensor and
// pipeline parallelism are unavailable on it") fail create(). In generate(), a rank that
// fails breaks the local channels so the others fail at once; across processes the caller
// ends the job (Transport::abort) so the other processes do not wait for their timeout.
//
// Threading: generate() runs every local rank on a thread of its own and returns when all
// have finished. One generate() at a time.
class ParallelRun {
 public:
  static Result<std::unique_ptr<ParallelRun>> create(std::shared_ptr<const Model> model,
                                                     ParallelRunOptions options);
  ~ParallelRun();
  ParallelRun(const ParallelRun&) = delete;
  ParallelRun& operator=(const ParallelRun&) = delete;

  const ParallelRunOptions& options() const { return options_; }
  int32_t first_rank() const { return first_rank_; }  // this process's lowest rank
  // This process's ranks' sessions (index 0 = first_rank()).
  const std::vector<std::unique_ptr<Session>>& sessions() const { return sessions_; }
  // The device of each local rank.
  std::vector<Device*> local_devices() const;

  // Adjusts local rank `local_index`'s copy of the options before it generates.
  using RankOptionsFn = std::function<void(size_t local_index, GenerationOptions& options)>;

  // Every local rank generates; returns the first local rank's result. Tokens are the same
  // on every rank (identical logits: all-reduced, or broadcast by the last stage).
  // Callbacks run on their rank's thread: `progress` on the first local rank only;
  // `on_token` on every local rank, so with several local ranks each needs its own (set by
  // `per_rank`; one shared on_token with several local ranks is INVALID_ARGUMENT). A row
  // on_token ends must end on every rank alike (decided from the tokens, which are the
  // same everywhere), or the ranks' collectives part ways and fail by their timeout.
  Result<GenerationResult> generate(const std::vector<std::vector<int32_t>>& prompts,
                                    const GenerationOptions& options,
                                    const RankOptionsFn& per_rank = {});

 private:
  ParallelRun() = default;
  ParallelRunOptions options_;
  int32_t first_rank_ = 0;
  std::vector<std::unique_ptr<Transport>> subsets_;  // across processes: TP and PP groups
  std::vector<Channel> channels_;
  std::vector<std::unique_ptr<Session>> sessions_;
};

}  // namespace hal::runtime
