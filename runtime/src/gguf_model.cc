// GGUF models: the gpt2 and llama architectures read from a GGUF file's metadata and
// tensors (hal/runtime/model.h), and a model written back out as GGUF.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>
#include <tuple>

#include "hal/quant_reference.h"
#include "hal/runtime/model.h"
#include "hal/runtime/quantize.h"

namespace hal::runtime {

namespace {

// Where a canonical weight lives in a GGUF file, and whether GGUF stores it as the
// transpose of the canonical shape (gpt2's Conv1D projections).
struct GgufName {
  std::string name;
  bool transposed = false;
};

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

std::optional<GgufName> gguf_name(ModelFamily family, const std::string& canonical) {
  static const std::pair<const char*, const char*> kTop[] = {
      {"wte.weight", "token_embd.weight"},
      {"wpe.weight", "position_embd.weight"},
      {"ln_f.weight", "output_norm.weight"},
      {"ln_f.bias", "output_norm.bias"},
      {"lm_head.weight", "output.weight"},
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"}};
  for (const auto& [c, g] : kTop)
    if (canonical == c) return GgufName{g, false};
  // gpt2: h.N.<part>; llama: model.layers.N.<part>.
  const std::string prefix = family == ModelFamily::kGpt2 ? "h." : "model.layers.";
  if (!starts_with(canonical, prefix)) return std::nullopt;
  const size_t dot = canonical.find('.', prefix.size());
  if (dot == std::string::npos) return std::nullopt;
  const std::string layer = canonical.substr(prefix.size(), dot - prefix.size());
  const std::string part = canonical.substr(dot + 1);
  static const std::tuple<const char*, const char*, bool> kGpt2[] = {
      {"ln_1", "attn_norm", false},         {"attn.c_attn", "attn_qkv", true},
      {"attn.c_proj", "attn_output", true}, {"ln_2", "ffn_norm", false},
      {"mlp.c_fc", "ffn_up", true},         {"mlp.c_proj", "ffn_down", true}};
  static const std::tuple<const char*, const char*, bool> kLlama[] = {
      {"input_layernorm", "attn_norm", false},    {"self_attn.q_proj", "attn_q", false},
      {"self_attn.k_proj", "attn_k", false},      {"self_attn.v_proj", "attn_v", false},
      {"self_attn.o_proj", "attn_output", false}, {"post_attention_layernorm", "ffn_norm", false},
      {"mlp.gate_proj", "ffn_gate", false},       {"mlp.up_proj", "ffn_up", false},
      {"mlp.down_proj", "ffn_down", false}};
  const bool is_weight = part.size() > 7 && part.substr(part.size() - 7) == ".weight";
  const std::string stem = part.substr(0, part.rfind('.'));
  const std::string suffix = part.substr(part.rfind('.'));
  using Entry = std::tuple<const char*, const char*, bool>;
  const std::span<const Entry> table =
      family == ModelFamily::kGpt2 ? std::span<const Entry>(kGpt2) : std::span<const Entry>(kLlama);
  for (const auto& [c, g, t] : table)
    if (stem == c) return GgufName{"blk." + layer + "." + g + suffix, t && is_weight};
  return std::nullopt;
}

// Llama's q/k rows for GGUF's interleaved rotary embedding: within each head, row i of
// the first half goes to 2i and row i of the second half to 2i + 1 (and back).
template <typename Row>
void permute_heads(int64_t heads, int64_t head_dim, bool inverse, Row&& move_row) {
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < head_dim; ++i) {
      const int64_t half = i < head_dim / 2 ? 0 : 1;
      const int64_t j =
          half == 0 ? 2 * i : 2 * (i - head_dim / 2) + 1;  // rotate-half i -> interleaved j
      if (inverse)
        move_row(h * head_dim + j, h * head_dim + i);
      else
        move_row(h * head_dim + i, h * head_dim + j);
    }
}

Result<int64_t> positive(const GgufHeader& h, const std::string& key, int64_t max) {
  HAL_ASSIGN_OR_RETURN(int64_t v, h.get_int(key));
  if (v <= 0 || v > max)
    return invalid_argument(h.file + ": metadata '" + key + "' = " + std::to_string(v) +
                            " is outside [1, " + std::to_string(max) + "]");
  return v;
}

Result<ModelConfig> gguf_config(const GgufHeader& h) {
  HAL_ASSIGN_OR_RETURN(std::string arch, h.get_string("general.architecture"));
  ModelConfig c;
  if (arch == "gpt2") {
    c.family = ModelFamily::kGpt2;
  } else if (arch == "llama") {
    c.family = ModelFamily::kLlama;
  } else {
    return invalid_argument(h.file + ": metadata 'general.architecture' is '" + arch +
                            "'; supported architectures: gpt2, llama");
  }
  c.model_type = arch;
  const std::string a = arch + ".";
  constexpr int64_t kBig = int64_t(1) << 24;
  HAL_ASSIGN_OR_RETURN(c.hidden_size, positive(h, a + "embedding_length", kBig));
  HAL_ASSIGN_OR_RETURN(c.num_layers, positive(h, a + "block_count", int64_t(1) << 14));
  HAL_ASSIGN_OR_RETURN(c.num_heads, positive(h, a + "attention.head_count", kBig));
  HAL_ASSIGN_OR_RETURN(c.max_positions, positive(h, a + "context_length", int64_t(1) << 30));
  c.intermediate_size = 4 * c.hidden_size;
  if (h.has(a + "feed_forward_length")) {
    HAL_ASSIGN_OR_RETURN(c.intermediate_size, positive(h, a + "feed_forward_length", kBig));
  }
  c.num_kv_heads = c.num_heads;
  if (h.has(a + "attention.head_count_kv")) {
    HAL_ASSIGN_OR_RETURN(c.num_kv_heads, positive(h, a + "attention.head_count_kv", kBig));
  }
  if (c.hidden_size % c.num_heads != 0 && !h.has(a + "attention.key_length"))
    return invalid_argument(h.file + ": attention.head_count " + std::to_string(c.num_heads) +
                            " does not divide embedding_length " + std::to_string(c.hidden_size));
  c.head_dim = c.hidden_size / c.num_heads;
  if (h.has(a + "attention.key_length")) {
    HAL_ASSIGN_OR_RETURN(c.head_dim, positive(h, a + "attention.key_length", kBig));
  }
  const GgufTensorInfo* embd = h.tensor("token_embd.weight");
  if (!embd) return invalid_argument(h.file + ": no tensor 'token_embd.weight'");
  if (embd->shape.rank != 2)
    return invalid_argument(h.file + ": tensor 'token_embd.weight' has shape " +
                            embd->shape.to_string() + "; expected [vocab, embedding_length]");
  c.vocab_size = embd->shape[0];
  c.tie_word_embeddings = h.tensor("output.weight") == nullptr;
  if (h.has("tokenizer.ggml.bos_token_id")) {
    HAL_ASSIGN_OR_RETURN(c.bos_token_id, h.get_int("tokenizer.ggml.bos_token_id"));
  }
  if (h.has("tokenizer.ggml.eos_token_id")) {
    HAL_ASSIGN_OR_RETURN(c.eos_token_id, h.get_int("tokenizer.ggml.eos_token_id"));
  }
  if (c.family == ModelFamily::kGpt2) {
    HAL_ASSIGN_OR_RETURN(double eps, h.get_float(a + "attention.layer_norm_epsilon"));
    c.norm_eps = float(eps);
    c.gelu = GeluApproximation::kTanh;
  } else {
    HAL_ASSIGN_OR_RETURN(double eps, h.get_float(a + "attention.layer_norm_rms_epsilon"));
    c.norm_eps = float(eps);
    if (h.has(a + "rope.freq_base")) {
      HAL_ASSIGN_OR_RETURN(c.rope_theta, h.get_float(a + "rope.freq_base"));
    }
    if (h.has(a + "rope.dimension_count")) {
      HAL_ASSIGN_OR_RETURN(int64_t rot, h.get_int(a + "rope.dimension_count"));
      if (rot != c.head_dim)
        return invalid_argument(h.file + ": metadata '" + a +
                                "rope.dimension_count' = " + std::to_string(rot) +
                                " differs from the head dim " + std::to_string(c.head_dim) +
                                " (partial rotary embeddings are not supported)");
    }
    if (h.has(a + "rope.scaling.type")) {
      HAL_ASSIGN_OR_RETURN(std::string type, h.get_string(a + "rope.scaling.type"));
      if (type == "linear") {
        HAL_ASSIGN_OR_RETURN(double factor, h.get_float(a + "rope.scaling.factor"));
        if (!(factor > 0)) return invalid_argument(h.file + ": rope.scaling.factor must be > 0");
        c.rope_scaling = RopeScaling{"linear", factor, 1.0, 4.0, 8192};
      } else if (type != "none") {
        return invalid_argument(
            h.file + ": metadata '" + a + "rope.scaling.type' is '" + type +
            "'; supported: none, linear (llama3 factors come as rope_freqs.weight)");
      }
    }
    c.attention_bias = h.tensor("blk.0.attn_q.bias") != nullptr;
    c.mlp_bias = h.tensor("blk.0.ffn_up.bias") != nullptr;
    c.rope_style = RopeStyle::kInterleaved;  // GGUF permutes q/k rows for it
  }
  // The same plausibility checks a config.json gets.
  const RopeStyle style = c.rope_style;
  HAL_ASSIGN_OR_RETURN(ModelConfig checked,
                       parse_model_config(model_config_json(c), h.file + " (metadata)"));
  checked.rope_style = style;
  checked.bos_token_id = c.bos_token_id;
  checked.eos_token_id = c.eos_token_id;
  return checked;
}

}  // namespace

Result<std::unique_ptr<Model>> open_gguf_model(const std::string& path) {
  HAL_ASSIGN_OR_RETURN(auto file, GgufFile::open(path));
  const GgufHeader& h = file->header();
  HAL_ASSIGN_OR_RETURN(ModelConfig c, gguf_config(h));
  std::unique_ptr<Model> m(new Model());
  m->config_ = c;
  m->name_ = path;
  for (const WeightSpec& spec : expected_weights(c)) {
    const std::optional<GgufName> g = gguf_name(c.family, spec.name);
    if (!g) return internal_error("no GGUF name for '" + spec.name + "'");
    if (!h.tensor(g->name))
      return not_found(path + ": tensor '" + g->name + "' is missing (the metadata implies it, " +
                       spec.shape.to_string() + ")");
    HAL_ASSIGN_OR_RETURN(HostTensor t, file->tensor(g->name));
    const Shape want = stored_shape(spec.shape, g->transposed);
    if (!(t.shape == want))
      return invalid_argument(path + ": tensor '" + g->name + "' has shape " + t.shape.to_string() +
                              "; the metadata implies " + want.to_string());
    if (!is_quantized(t.dtype) && !(is_floating(t.dtype) && dtype_size(t.dtype) >= 2))
      return invalid_argument(path + ": tensor '" + g->name + "' has type " +
                              std::string(h.tensor(g->name)->type.name) + ", not a weight type");
    if (is_quantized(t.dtype) && t.shape.rank != 2)
      return invalid_argument(path + ": tensor '" + g->name + "' is quantized (" +
                              std::string(h.tensor(g->name)->type.name) + ") but not 2-D");
    t.name = spec.name;
    t.transposed = g->transposed;
    m->weights_.emplace_back(spec.name, t);
  }
  if (c.family == ModelFamily::kLlama) {
    std::vector<float> inv = rope_inv_freq(c);
    if (const GgufTensorInfo* freqs = h.tensor("rope_freqs.weight")) {
      HAL_ASSIGN_OR_RETURN(HostTensor f, file->tensor("rope_freqs.weight"));
      if (f.dtype != DType::kF32 || f.shape.numel() != int64_t(inv.size()))
        return invalid_argument(path + ": tensor 'rope_freqs.weight' is " +
                                std::string(freqs->type.name) + freqs->shape.to_string() +
                                "; expected F32[" + std::to_string(inv.size()) + "]");
      for (size_t i = 0; i < inv.size(); ++i) {
        const float factor = static_cast<const float*>(f.data)[i];
        if (!(factor > 0) || !std::isfinite(factor))
          return invalid_argument(path + ": tensor 'rope_freqs.weight' element " +
                                  std::to_string(i) + " is " + std::to_string(factor) +
                                  "; frequency factors must be positive");
        inv[i] = inv[i] / factor;
      }
    }
    m->add_owned_f32("rope.inv_freq", Shape{int64_t(inv.size())}, inv);
  }
  std::sort(m->weights_.begin(), m->weights_.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  m->gguf_ = std::move(file);
  return m;
}

// ---- writing -------------------------------------------------------------------------

Status save_gguf(const Model& model, const std::string& path, const GgufExportOptions& o) {
  const ModelConfig& c = model.config();
  const DType format = o.format;
  if (!ggml_type_of(format))
    return invalid_argument("save_gguf: " + std::string(dtype_name(format)) + " has no GGUF type");
  GgufWriter w;
  const std::string arch(model_family_name(c.family));
  const std::string a = arch + ".";
  w.add_string("general.architecture", arch);
  w.add_string("general.name", model.name());
  w.add_u32(a + "context_length", uint32_t(c.max_positions));
  w.add_u32(a + "embedding_length", uint32_t(c.hidden_size));
  w.add_u32(a + "block_count", uint32_t(c.num_layers));
  w.add_u32(a + "feed_forward_length", uint32_t(c.intermediate_size));
  w.add_u32(a + "attention.head_count", uint32_t(c.num_heads));
  if (c.family == ModelFamily::kGpt2) {
    if (c.gelu != GeluApproximation::kTanh || !c.scale_attn_weights ||
        c.scale_attn_by_inverse_layer_idx)
      return invalid_argument(
          "save_gguf: GGUF's gpt2 has tanh gelu and 1/sqrt(head_dim) attention scaling; " +
          model.name() + " differs");
    w.add_f32(a + "attention.layer_norm_epsilon", c.norm_eps);
  } else {
    w.add_u32(a + "attention.head_count_kv", uint32_t(c.num_kv_heads));
    w.add_f32(a + "attention.layer_norm_rms_epsilon", c.norm_eps);
    w.add_f32(a + "rope.freq_base", float(c.rope_theta));
    w.add_u32(a + "rope.dimension_count", uint32_t(c.head_dim));
    if (c.head_dim * c.num_heads != c.hidden_size)
      w.add_u32(a + "attention.key_length", uint32_t(c.head_dim));
    if (c.head_dim * c.num_heads != c.hidden_size)
      w.add_u32(a + "attention.value_length", uint32_t(c.head_dim));
    w.add_u32(a + "vocab_size", uint32_t(c.vocab_size));
  }
  // llama.cpp's file types (informational): the format most weights have.
  static const std::pair<DType, uint32_t> kFileTypes[] = {
      {DType::kF32, 0},   {DType::kF16, 1},   {DType::kQ4_0, 2}, {DType::kQ4_1, 3},
      {DType::kQ8_0, 7},  {DType::kQ5_0, 8},  {DType::kQ5_1, 9}, {DType::kQ4_K, 15},
      {DType::kQ5_K, 17}, {DType::kQ6_K, 18}, {DType::kBF16, 32}};
  for (const auto& [t, id] : kFileTypes)
    if (t == format) w.add_u32("general.file_type", id);
  w.add_u32("general.quantization_version", 2);
  if (c.bos_token_id >= 0) w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(c.bos_token_id));
  if (c.eos_token_id >= 0) w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(c.eos_token_id));
  for (const auto& [key, value] : o.extra) w.add_value(key, value);

  std::vector<std::vector<uint8_t>> storage;
  auto add = [&](const std::string& name, DType dtype, const Shape& shape,
                 std::vector<float> values) -> Status {
    storage.push_back(
        reference::quantize_rows(dtype, values.data(), shape.numel() / shape.back(), shape.back()));
    return w.add_tensor(name, dtype, shape, storage.back().data(), storage.back().size());
  };
  for (const WeightSpec& spec : expected_weights(c)) {
    const std::optional<GgufName> g = gguf_name(c.family, spec.name);
    if (!g) return internal_error("no GGUF name for '" + spec.name + "'");
    HAL_ASSIGN_OR_RETURN(HostTensor t, model.weight(spec.name));
    HAL_ASSIGN_OR_RETURN(std::vector<float> v, weight_values(t, g->transposed));
    const Shape shape = stored_shape(spec.shape, g->transposed);
    // llama q/k: rows into GGUF's interleaved order, unless the model has them so.
    const bool qk =
        c.family == ModelFamily::kLlama && (g->name.find(".attn_q.") != std::string::npos ||
                                            g->name.find(".attn_k.") != std::string::npos);
    if (qk && c.rope_style == RopeStyle::kRotateHalf) {
      const int64_t heads =
          g->name.find(".attn_q.") != std::string::npos ? c.num_heads : c.num_kv_heads;
      const int64_t cols = shape.rank == 2 ? shape[1] : 1;
      std::vector<float> p(v.size());
      permute_heads(heads, c.head_dim, false, [&](int64_t from, int64_t to) {
        std::memcpy(&p[size_t(to * cols)], &v[size_t(from * cols)], size_t(cols) * sizeof(float));
      });
      v = std::move(p);
    }
    DType dtype = DType::kF32;
    if (spec.shape.rank == 2) {
      dtype = format;
      if (is_quantized(format) && shape.back() % dtype_block(format) != 0)
        dtype = shape.back() % 32 == 0 ? DType::kQ8_0 : DType::kF32;
    }
    HAL_RETURN_IF_ERROR(add(g->name, dtype, shape, std::move(v)));
  }
  if (c.family == ModelFamily::kLlama && c.rope_scaling) {
    if (c.rope_scaling->type == "linear") {
      w.add_string(a + "rope.scaling.type", "linear");
      w.add_f32(a + "rope.scaling.factor", float(c.rope_scaling->factor));
    } else {
      // llama3 scaling as per-frequency factors (GGUF's rope_freqs.weight): base / scaled.
      ModelConfig unscaled = c;
      unscaled.rope_scaling.reset();
      const std::vector<float> base = rope_inv_freq(unscaled), scaled = rope_inv_freq(c);
      std::vector<float> factors(base.size());
      for (size_t i = 0; i < base.size(); ++i) factors[i] = base[i] / scaled[i];
      HAL_RETURN_IF_ERROR(
          add("rope_freqs.weight", DType::kF32, Shape{int64_t(factors.size())}, factors));
    }
  }
  return w.write(path);
}

}  // namespace hal::runtime
