// hal/runtime/parallel_forecast.h: predicts a tensor- and pipeline-parallel run of a model
// on a set of devices, possibly on several hosts, without running it (`halctl plan
// --tensor-parallel N --pipeline-parallel M`, or the degrees chosen).
//
// How (the same graphs as the run, priced the same way as a single-device plan):
// - Stage s of pp runs on devices [s*tp, (s+1)*tp) (devices in the order given: a stage's
//   tensor-parallel group is consecutive, so it stays on one card or host when the list
//   is ordered that way). Its tensor-parallel rank 0's graph (parallel.h: shard_config:
//   its heads, MLP columns and layers, with an all-reduce after attention and after the
//   MLP, and the pipeline's send/recv and logits broadcast) is planned by forecast_model on
//   that rank's device: op times from the NPU simulator's timing-only execution or the
//   roofline model; residency against the device's capacity.
// - Each collective is priced by the HAL's alpha-beta model (hal/collective_cost.h: ring or
//   tree, the faster) over the links between the members: DeviceInfo links within a host
//   (PCIe peer-to-peer through an ATOM-Max switch, host-staged between cards), and
//   between hosts the hosts' network (ParallelForecastRequest::network) behind both ends' host
//   links. Plus the device's launch overhead.
// - decode: the stages run one after another for a batch (no micro-batching in decode:
//   what the runtime does), so a step takes the sum of the stages' steps; prefill likewise.
//   The stage times include their collectives on the critical path (nothing overlaps
//   communication with compute).
// - Degrees not given are chosen: every tp x pp <= the devices that the model's heads,
//   KV heads, MLP and layers allow and that fits in memory, the highest decode tokens/s
//   (then the fewest devices) wins; every candidate is listed with its figure or why not.
//
// Threading: a pure function of its inputs (OpTimers may touch devices).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hal/device_info.h"
#include "hal/runtime/forecast.h"
#include "hal/runtime/parallel.h"

namespace hal::runtime {

struct ParallelForecastRequest {
  ForecastRequest base;  // model, batch, lengths, dtype, calibration (placement is ignored)
  std::optional<int32_t> tp, pp;  // unset: chosen
  // Host of each device (parallel to the devices; empty: all on one host).
  std::vector<int32_t> host_of;
  // Between hosts: the network (bandwidth per direction, latency), behind both ends'
  // host links.
  hal::LinkInfo network;
};

struct StagePlan {
  int32_t stage = 0;
  std::vector<std::string> devices;  // its tensor-parallel group
  int64_t layer_begin = 0, layer_end = 0;
  ModelForecast rank;   // tensor-parallel rank 0's plan (on devices[0])
  double decode_s = 0;  // one decode step
  double prefill_s = 0;
  double all_reduce_s = 0;  // of the decode step: its all-reduces
  int32_t all_reduces = 0;
  double tp_link_bytes = 0;  // bytes each member sends per decode step over its TP link
  std::string tp_link;       // the slowest TP link: "pcie-gen5-switch 50 GB/s, 2 us"
  double tp_link_bandwidth = 0;
  double pipeline_s = 0;  // its send to the next stage and the logits broadcast, per step
  std::string pipeline_link;
};

struct ParallelCandidate {
  ParallelDegrees degrees;
  bool feasible = false;
  double decode_tokens_per_s = 0;
  std::string why_not;
};

struct ParallelForecast {
  std::string model;
  ParallelDegrees degrees;
  bool chosen = false;  // degrees were chosen (not given)
  int32_t hosts = 1;
  std::vector<StagePlan> stages;
  double decode_step_s = 0;
  double decode_tokens_per_s = 0;  // batch / step
  double prefill_s = 0;
  double all_reduce_s_per_step = 0;  // summed over stages
  int32_t all_reduces_per_step = 0;
  // The busiest stage's TP link: bytes it sends per decode step / (step x its bandwidth).
  double tp_link_utilisation = 0;
  BoundBreakdown bound;                     // of the decode step, all stages
  uint64_t max_device_bytes = 0;            // weights + KV + activations on the fullest device
  double bandwidth_limit_tokens_per_s = 0;  // each stage reading its weights at peak
  std::vector<ParallelCandidate> candidates;
  std::string method;
  std::vector<std::string> notes;
  std::string why;  // one sentence
};

Result<ParallelForecast> forecast_parallel(const ParallelForecastRequest& request,
                                           const std::vector<PlanDevice>& devices);

// Built-in config of a 405B-class model (Llama 3.1 405B's config.json values) for plans
// across hosts: "llama-3.1-405b" in public_model_names.

}  // namespace hal::runtime
