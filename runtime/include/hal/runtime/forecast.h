// hal/runtime/forecast.h: predicts how a model would run on a set of devices without
// running it (`halctl plan`): placement, memory per device, prefill latency, decode
// tokens/s, HBM bytes per token and which resource bounds each phase.
//
// How the prediction is made (no separate formula): the model's real prefill and decode
// graphs (model_graph.h, the ones `halctl run` executes) are turned into scheduler task
// graphs, one task per op that does device work (views are free; a KV-cache write joins
// the attention reading the cache, so the cache lives on one device), weights and KV
// caches as resident tensors; hal::scheduler places them (layer splits, capacity,
// fallbacks) and
// its predicted makespan is the phase's time. Each task's time on a device comes from
//   - an OpTimer when the device has one (halctl plan gives simulated NPUs one that
//     dispatches the op on timing-only buffers and reads the simulator's duration: its
//     tiling, chiplet and overhead model), else
//   - the scheduler's roofline CostModel (DeviceInfo peaks, refined by a stored
//     calibration from `halctl bench DEVICE --calibrate` when one exists); also for the
//     graph's copies (KV-cache writes, concats), which are not HAL ops.
// Nothing is allocated for the model: a 70B model is planned from its config.json alone.
//
// Phases
// - prefill: one pass over B prompts of P tokens (KV caches sized P + N).
// - decode: one step of B sequences, timed at the mean context of the N steps
//   (P + N/2 keys visible): attention is linear in the context, so this is the mean
//   step; decode tokens/s = B / step time.
// - The decode graph is scheduled first; the prefill graph is pinned to its layer split
//   (weights are placed once, as the runtime does).
//
// Weight dtypes (ForecastRequest::weight_dtype): bf16/f16 weights and compute in that dtype.
// fp8 (e4m3) and int8 are planned as 1-byte weights whether or not a device can compute
// in them: every matmul weight and embedding table is accounted at 1 byte per element
// (residency and HBM traffic), norms/biases/rotary tables stay in the compute dtype
// (bf16), activations and KV caches are bf16. A matmul reading a 1-byte weight is timed at
// the device's peak for that dtype when it lists one (FP8 on rebel-quad, INT8 on atom),
// else at its f32/bf16 peak (weight-only quantisation: dequantised on the fly). Devices
// are asked whether they support the op in bf16 (the op they would run after
// dequantising); an OpTimer is given the op with 1-byte weights, and where its device
// cannot run that op the cost model times it instead (noted in ModelForecast::notes).
//
// Errors: INVALID_ARGUMENT for bad requests (batch, lengths beyond the model's
// positions, dtype); OUT_OF_MEMORY when the model does not fit, naming the sizes
// (weights, KV cache, each device's capacity); scheduler errors otherwise.
//
// Threading: forecast_model is a pure function of its inputs (OpTimers may touch devices).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hal/collective.h"
#include "hal/device.h"
#include "hal/device_info.h"
#include "hal/op.h"
#include "hal/runtime/compiled_units.h"
#include "hal/runtime/model_config.h"
#include "hal/scheduler/cost_model.h"
#include "hal/scheduler/scheduler.h"
#include "hal/status.h"

namespace hal::runtime {

// ---- model configs -----------------------------------------------------------------

// Built-in configs of public models, by name: gpt2, gpt2-medium, gpt2-large, gpt2-xl,
// llama-3-8b, llama-3-70b (their Hugging Face config.json values).
std::vector<std::string> public_model_names();
std::optional<std::string> public_model_config_json(std::string_view name);

// `model` is a directory holding config.json, a config.json file, a public model name
// above, or one of the runtime's built-in models (model.h: builtin_model_names()).
// `source` receives what was read ("built-in llama-3-8b", a path). Unknown names and
// unreadable or malformed files are INVALID_ARGUMENT/NOT_FOUND naming them.
Result<ModelConfig> resolve_model_config(std::string_view model, std::string* source = nullptr);

// "bf16", "fp16"/"f16", "fp8"/"fp8e4m3", "int8"/"i8" -> the weight dtype; else
// INVALID_ARGUMENT listing the accepted names.
Result<DType> parse_plan_dtype(std::string_view name);

// ---- devices -----------------------------------------------------------------------

// What the simulator (or another timer) says one op takes on a device.
struct OpTiming {
  double seconds = 0;
  std::string bound;  // "compute", "memory", "link", "overhead"
  double bytes = 0;   // device-memory bytes read + written
};
// nullopt: no timing for this op (the cost model is used); an error stops the plan.
using OpTimer = std::function<Result<std::optional<OpTiming>>(const OpSpec& spec)>;

struct PlanDevice {
  hal::DeviceInfo info;
  // Whether the device runs the op (empty: every op).
  std::function<bool(const OpSpec&)> supports;
  OpTimer timer;              // empty: the cost model
  std::string timing_source;  // what `timer` is ("npu_sim timing-only execution")
  // The device itself (optional): needed to compile its partitions (ForecastRequest::compile).
  Device* device = nullptr;
};

// Whether a device is simulated (property "simulated", or a timing-only one).
bool is_simulated_device(const DeviceInfo& info);
// An OpTimer that dispatches each op on virtual buffers of `device` (a simulator in
// timing-only mode, or any device that times without data) and reads the duration,
// bound and device-memory bytes from its command record; each distinct op is timed once.
// The device must outlive it.
OpTimer simulated_op_timer(Device& device);

// ---- request and result ------------------------------------------------------------

// What one collective of a parallel rank's graph (graph.h: kCollective) costs: its time
// and the bytes it puts on links (hal/collective_cost.h prices them for plan_parallel).
struct CollectivePrice {
  double seconds = 0;
  double link_bytes = 0;
};
using CollectivePricer =
    std::function<CollectivePrice(const CollectiveShape& shape, int32_t channel)>;

struct ForecastRequest {
  ModelConfig config;
  std::string model_name;  // for messages
  int64_t batch = 1;
  int64_t prompt_len = 128;
  int64_t max_new_tokens = 128;
  DType weight_dtype = DType::kBF16;  // kBF16, kF16, kFP8E4M3, kI8
  std::string placement;              // optional pins (hal/scheduler/placement.h)
  scheduler::Algorithm algorithm = scheduler::Algorithm::kAuto;
  scheduler::CalibrationOptions calibration;
  // Whole-graph offload: devices given as PlanDevice::device compile what they take of
  // each phase's placement (compiled_units.h), and the phase is timed with the units as
  // tasks at their executables' predictions, as halctl run's planner does. Off: op by op.
  CompileSettings compile;
  // Prices the collectives of a parallel rank's config (config.shard): parallel_forecast.h
  // sets it. Empty: collectives cost nothing.
  CollectivePricer collective_price;
};

// Time of a phase's work by what bounds it: each op's time counts toward its bound.
struct BoundBreakdown {
  double compute_s = 0;
  double memory_s = 0;
  double overhead_s = 0;
  double link_s = 0;  // transfers between devices, collectives (and link-bound ops)
  double total() const { return compute_s + memory_s + overhead_s + link_s; }
  // "compute", "memory", "overhead" or "link": the largest.
  std::string dominant() const;
  double fraction(std::string_view bound) const;
};

struct PhasePlan {
  std::string name;     // "prefill", "decode"
  int64_t tokens = 0;   // tokens the phase processes (B*P, or B per step)
  int64_t context = 0;  // keys visible to attention (P, or the mean decode context)
  double seconds = 0;   // predicted makespan
  double flops = 0;
  double hbm_bytes = 0;  // device-memory bytes read + written, all devices
  double transfer_bytes = 0;
  // Collectives (a parallel rank's graph): how many, their time, the bytes they send.
  int32_t collectives = 0;
  double collective_s = 0;
  double collective_link_bytes = 0;
  int64_t tasks = 0;
  int32_t fallbacks = 0;
  std::string algorithm;  // the scheduler's
  BoundBreakdown bound;
  // Whole-graph offload (ForecastRequest::compile): whether compiled units timed the phase,
  // how many, the nodes run op by op instead, and what op-by-op dispatch predicts.
  bool compiled = false;
  int64_t units = 0;
  int64_t declined = 0;
  double op_by_op_seconds = 0;
  double compile_seconds = 0;  // wall time to partition and compile (or load)
};

struct DevicePlan {
  std::string id;
  std::string name;
  std::string timing;  // "npu_sim timing-only execution" or "roofline cost model (...)"
  uint64_t capacity_bytes = 0;
  double bandwidth_bytes_per_s = 0;
  std::vector<std::pair<int32_t, int32_t>> layers;  // inclusive ranges
  int32_t layer_count = 0;
  bool embedding = false;  // runs the embedding
  bool head = false;       // runs the final norm + LM head
  uint64_t weight_bytes = 0;
  uint64_t kv_cache_bytes = 0;
  uint64_t prefill_activation_bytes = 0;
  uint64_t decode_activation_bytes = 0;
  double decode_hbm_bytes = 0;  // per decode step
  double decode_busy_s = 0;     // per decode step
  double prefill_busy_s = 0;
  uint64_t sram_bytes = 0;  // on-chip SRAM its compiled units hold at their peak
  uint64_t peak_bytes() const {
    return weight_bytes + kv_cache_bytes +
           std::max(prefill_activation_bytes, decode_activation_bytes);
  }
};

struct ModelForecast {
  std::string model;
  std::string summary;  // ModelConfig::summary()
  int64_t parameters = 0;
  int64_t batch = 0, prompt_len = 0, max_new_tokens = 0;
  DType weight_dtype = DType::kBF16;
  DType compute_dtype = DType::kBF16;
  uint64_t weight_bytes = 0;    // all resident weights
  uint64_t kv_cache_bytes = 0;  // all KV caches (B x (P + N) positions)
  std::string placement;        // layer split, placement grammar
  bool compiled = false;        // compiled units timed a phase
  std::vector<DevicePlan> devices;
  PhasePlan prefill;
  PhasePlan decode;
  double prefill_latency_s() const { return prefill.seconds; }
  // B tokens per decode step.
  double decode_tokens_per_s() const {
    return decode.seconds > 0 ? double(batch) / decode.seconds : 0;
  }
  double decode_hbm_bytes_per_token() const {
    return batch > 0 ? decode.hbm_bytes / double(batch) : 0;
  }
  // The bandwidth limit: a decode step must read every weight it uses from device
  // memory once (a matmul all of its weight, an embedding only the gathered rows). The
  // decode schedule replayed in its own order on its own devices, each op taking only
  // those bytes / its device's peak bandwidth (transfers free), gives the shortest step
  // this placement allows; no op takes less, so no prediction beats it. On one device,
  // or with layers split in a pipeline, it is sum(weight bytes read / bandwidth).
  // Tokens/s = B / that. all_weights_step_s is the textbook figure, every resident
  // weight (embedding tables whole) / bandwidth summed over devices.
  double weight_read_bytes = 0;
  double all_weights_step_s = 0;
  double all_weights_tokens_per_s() const {
    return all_weights_step_s > 0 ? double(batch) / all_weights_step_s : 0;
  }
  double bandwidth_limit_step_s = 0;
  double bandwidth_limit_tokens_per_s() const {
    return bandwidth_limit_step_s > 0 ? double(batch) / bandwidth_limit_step_s : 0;
  }
  // Total (prefill + N decode steps) for one batch.
  double total_seconds() const {
    return prefill.seconds + double(std::max<int64_t>(0, max_new_tokens - 1)) * decode.seconds;
  }
  std::string method;              // how times were predicted
  std::vector<std::string> notes;  // calibration used, fallbacks, assumptions
  std::string why;                 // one sentence: why decode runs at this speed
};

Result<ModelForecast> forecast_model(const ForecastRequest& request,
                                     const std::vector<PlanDevice>& devices);

}  // namespace hal::runtime
