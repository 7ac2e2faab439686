// hal/runtime/model_config.h: the architecture of a transformer checkpoint, read from a
// Hugging Face config.json, and the weights that architecture implies.
//
// Families (semantics follow Hugging Face transformers' modeling_gpt2.py and
// modeling_llama.py so real checkpoints give the same logits):
// - gpt2 (model_type "gpt2"): learned position embeddings, LayerNorm with
//   layer_norm_epsilon, fused c_attn, Conv1D weights stored [in, out], GELU by
//   activation_function ("gelu_new"/"gelu_pytorch_tanh" = tanh form, "gelu" = erf),
//   n_inner (default 4 x n_embd), scale_attn_weights and
//   scale_attn_by_inverse_layer_idx, lm_head tied to wte unless tie_word_embeddings is false.
// - llama (model_type "llama"): RMSNorm with
//   rms_norm_eps, rotary embedding (rotate-half) with rope_theta and optional
//   rope_scaling ("linear" or "llama3", folded into inv_freq), grouped-query attention
//   via num_key_value_heads, optional head_dim, SwiGLU MLP (gate/up/down), optional
//   attention_bias / mlp_bias, lm_head untied unless tie_word_embeddings.
//
// quantization_config (AWQ: quant_method "awq", version "gemm"; GPTQ: quant_method
// "gptq", checkpoint_format "gptq" or "gptq_v2"): 4 bits, group_size 32, 64 or 128 are
// read; other settings are INVALID_ARGUMENT naming the key (model.h says how the tensors
// load).
//
// Contract: parse_model_config() checks types and ranges and fails with
// INVALID_ARGUMENT naming the source and the key ("config.json: num_attention_heads 12
// does not divide hidden_size 770"); an unsupported model_type, activation or
// rope_scaling type is also INVALID_ARGUMENT, naming what is supported.
//
// Threading: value types and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hal/op.h"
#include "hal/status.h"

namespace hal::runtime {

enum class ModelFamily : int32_t { kGpt2 = 0, kLlama = 1 };
std::string_view model_family_name(ModelFamily family);  // "gpt2", "llama"

struct RopeScaling {
  std::string type;  // "linear" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

// A checkpoint's "quantization_config" (AWQ and GPTQ 4-bit checkpoints): which method
// packed the projections' qweight/qzeros/scales, and how.
struct QuantizationConfig {
  std::string method;  // "awq" or "gptq"
  int64_t bits = 4;
  int64_t group_size = 128;
  std::string version;     // awq: "gemm" (the only packing read); gptq: checkpoint_format
  bool zero_point = true;  // awq
  bool sym = false;        // gptq
  bool desc_act = false;   // gptq: act-order (g_idx); read when g_idx is in order
};

// How a config is one rank's part of a parallel run (runtime/parallel.h makes these): the
// graph builder (model_graph.h) then builds that rank's graph. The default is the whole
// model on one rank.
struct ShardLayout {
  // Tensor parallelism (Megatron): num_heads, num_kv_heads and intermediate_size of the
  // config are this rank's share of the model's, and the attention output projection and
  // the MLP down projection produce partial sums that an all-reduce over the
  // tensor-parallel channel completes (their biases are added by one rank).
  int32_t tp_size = 1;
  // Pipeline parallelism: this rank is stage pp_rank of pp_size and runs blocks
  // [layer_begin, layer_end) (-1: to the last). The first stage embeds; the others
  // receive the hidden state from the previous stage and every stage but the last sends
  // it on (the pipeline channel); the last stage runs the head and broadcasts the logits,
  // so every stage samples the same tokens.
  int32_t pp_size = 1;
  int32_t pp_rank = 0;
  int64_t layer_begin = 0;
  int64_t layer_end = -1;

  bool active() const { return tp_size > 1 || pp_size > 1; }
  bool first_stage() const { return pp_rank == 0; }
  bool last_stage() const { return pp_rank == pp_size - 1; }
};

struct ModelConfig {
  ModelFamily family = ModelFamily::kGpt2;
  std::string model_type;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // = num_heads for gpt2
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;
  int64_t max_positions = 0;  // n_positions / max_position_embeddings
  float norm_eps = 1e-5f;
  GeluApproximation gelu = GeluApproximation::kTanh;  // gpt2
  bool scale_attn_weights = true;                     // gpt2: scores / sqrt(head_dim)
  bool scale_attn_by_inverse_layer_idx = false;       // gpt2: and / (layer + 1)
  double rope_theta = 10000.0;                        // llama
  // llama: how q/k features pair up in the rotary embedding. Hugging Face checkpoints
  // rotate halves; GGUF files store q/k rows permuted for interleaved pairs.
  RopeStyle rope_style = RopeStyle::kRotateHalf;
  std::optional<RopeScaling> rope_scaling;  // llama
  bool attention_bias = false;              // llama (gpt2 always has biases)
  bool mlp_bias = false;                    // llama
  bool tie_word_embeddings = true;
  int64_t bos_token_id = -1;
  int64_t eos_token_id = -1;
  std::optional<QuantizationConfig> quantization;  // AWQ / GPTQ checkpoints
  ShardLayout shard;  // one rank's part of a parallel run (above); default: all of it

  // Parameters (elements) and the bytes one forward pass must read at `bytes_per_weight`
  // per element: every layer weight once, the lm_head matrix, and the embedding rows
  // actually gathered (negligible).
  int64_t parameter_count() const;
  uint64_t decode_weight_bytes(uint32_t bytes_per_weight) const;
  std::string summary() const;  // "gpt2: 12 layers, hidden 768, 12 heads, vocab 50257"
};

Result<ModelConfig> parse_model_config(std::string_view json_text, std::string_view source);
// The config.json text describing `config` (what a Hugging Face checkpoint would carry).
std::string model_config_json(const ModelConfig& config);

// A weight the architecture needs: its canonical name (no "transformer." prefix for
// gpt2; "model."-prefixed for llama as Hugging Face stores them) and shape.
struct WeightSpec {
  std::string name;
  Shape shape;
};
std::vector<WeightSpec> expected_weights(const ModelConfig& config);

// The block a weight belongs to ("h.3.attn.c_attn.weight", "model.layers.3.mlp..." -> 3);
// -1 for the model's other weights (embeddings, final norm, head, rotary table).
int64_t weight_layer(std::string_view name);

// The rotary inverse frequencies for head_dim (llama), as transformers computes them:
// theta^(-2i/d) in float32, then rope_scaling applied.
std::vector<float> rope_inv_freq(const ModelConfig& config);

}  // namespace hal::runtime
