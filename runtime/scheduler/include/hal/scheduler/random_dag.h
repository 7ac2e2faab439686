// hal/scheduler/random_dag.h: scheduling problems for tests and benchmarks: random DAGs
// generated as in Topcuoglu, Hariri, Wu 2002 (section 5.1), the paper's 10-task example
// (Fig. 2), and transformer-shaped task graphs built from hal::OpSpecs.
//
// Random DAG parameters (the paper's names):
//   v             number of tasks
//   alpha         shape: the graph has about sqrt(v)/alpha levels of about alpha*sqrt(v)
//                 tasks (alpha >> 1: wide and short; alpha << 1: long and narrow); each
//                 level's width is drawn uniformly from [1, 2*alpha*sqrt(v) - 1]
//   out_degree    mean number of children (each task draws from [1, 2*out_degree - 1],
//                 children taken from the following levels, at most `jump` ahead)
//   ccr           communication to computation ratio (mean edge cost / mean task cost)
//   beta          range percentage of computation costs: task i's mean cost w_i is drawn
//                 from [0, 2 * mean_cost]; its cost on each device from
//                 [w_i (1 - beta/2), w_i (1 + beta/2)]
//   processors    number of devices (identical unit links: an edge's bytes = its cost)
// Every non-entry task has a parent in the level before it. Every edge carries its own
// data (its cost is its own, as in the paper). Deterministic for a given seed.
//
// Threading: pure functions.
#pragma once

#include <cstdint>

#include "hal/scheduler/scheduler.h"

namespace hal::scheduler {

struct RandomDagParams {
  int32_t tasks = 100;
  double alpha = 1.0;
  double out_degree = 3;
  double ccr = 1.0;
  double beta = 0.5;
  int32_t processors = 3;
  double mean_cost = 50;  // w_DAG: mean computation cost
  int32_t jump = 2;       // children come from the next `jump` levels
  uint64_t seed = 1;
};

Result<Problem> random_dag(const RandomDagParams& params);

// Fig. 2 of Topcuoglu et al. 2002: 10 tasks, 3 processors, contention-free unit links.
// HEFT's schedule length on it is 80 (Fig. 4(a)).
Problem heft_paper_example();

// A decoder-only transformer as a task graph: embedding, then per layer
// norm -> qkv matmul -> attention (reads the layer's KV cache) -> output projection ->
// residual add -> norm -> up matmul -> gelu -> down matmul -> residual add, then final
// norm, LM head and argmax. Weights and KV caches are resident tensors; costs come from
// hal::analytic_cost of each op's OpSpec at (batch, new tokens, context).
struct TransformerShape {
  int32_t layers = 12;
  int64_t hidden = 768;
  int64_t heads = 12;
  int64_t ffn = 3072;
  int64_t vocab = 50257;
  int64_t batch = 1;
  int64_t new_tokens = 1;  // 1 = a decode step; the prompt length for prefill
  int64_t context = 1024;  // KV cache length (tokens cached after this step)
  hal::DType dtype = hal::DType::kF16;
};
TaskGraph transformer_task_graph(const TransformerShape& shape);

}  // namespace hal::scheduler
