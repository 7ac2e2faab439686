// hal/runtime/model_graph.h: the forward pass of a gpt2- or llama-family model as a
// runtime Graph, for one batch shape, reading and extending a KV cache.
//
// Shapes: B sequences, S new tokens each (prefill: the longest prompt, shorter ones
// padded at the end; decode: S = 1), KV caches of `cache_len` positions.
// Inputs (all i32):
//   ids        [B, S]  token ids (padding: any valid id)
//   positions  [B, S]  position of each token (past_b + i)
//   kv_lengths [B]     keys visible to row b after this step: past_b + S
//   last_index [B]     (logits_at == kLast, S > 1) the flat row b*S + (L_b - 1) whose
//                      logits are wanted
// Symbols: "past.b" (tokens already cached for row b; the K/V of this step are written
// there) and "kv_max" (max over rows of kv_lengths: attention's kv_length, so it reads
// only that much of the cache).
// States: per layer "h.L.k_cache" and "h.L.v_cache", [B, cache_len, Hkv, head_dim] in the
// compute dtype, written in place (write_slice) and read by attention.
// Constants: the model's canonical weight names (model_config.h) and "rope.inv_freq".
// Output: "logits", f32 [B, V] (logits_at kLast) or [B, S, V] (kAll).
//
// Node names follow the checkpoint's: "h.3.attn.qkv", "h.3.mlp.c_fc" (gpt2),
// "model.layers.3.self_attn.q_proj" (llama); node layers are the block index, -1 for the
// embeddings and the head.
//
// Threading: pure function.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "hal/runtime/graph.h"
#include "hal/runtime/model_config.h"

namespace hal::runtime {

enum class LogitsAt : int32_t { kLast = 0, kAll = 1 };

struct WeightFormats;  // hal/runtime/quantize.h

struct ModelGraphShape {
  int64_t batch = 1;
  int64_t seq = 1;
  int64_t cache_len = 1;
  LogitsAt logits_at = LogitsAt::kLast;
  DType compute_dtype = DType::kF32;
  // How each weight is stored (dtype, [out, in] or not); null: every weight in the
  // compute dtype, canonically oriented. A quantized or transposed projection becomes a
  // matmul with transpose_b; embeddings gather from quantized tables in the compute dtype.
  std::shared_ptr<const WeightFormats> weights;
};

struct ModelGraph {
  std::shared_ptr<Graph> graph;
  ModelGraphShape shape;
  ValueId ids = kNoValue;
  ValueId positions = kNoValue;
  ValueId kv_lengths = kNoValue;
  ValueId last_index = kNoValue;  // kNoValue unless logits_at == kLast and seq > 1
  ValueId logits = kNoValue;
  std::vector<int32_t> past_symbols;  // per row
  int32_t kv_max_symbol = -1;
  std::vector<ValueId> k_caches, v_caches;  // per layer
};

Result<ModelGraph> build_model_graph(const ModelConfig& config, const ModelGraphShape& shape);

}  // namespace hal::runtime
