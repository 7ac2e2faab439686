// config.json parsing for the gpt2 and llama families, and the weights they imply.
#include "hal/runtime/model_config.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <tuple>

namespace hal::runtime {

namespace {

// "1.2e+18": a parameter count for an error message.
std::string fmt_parameters(double n) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g", n);
  return buf;
}

using nlohmann::json;

struct Reader {
  const json& j;
  std::string source;
  Status status;

  void fail(const std::string& msg) {
    if (status.ok()) status = invalid_argument(source + ": " + msg);
  }
  // An integer key: required unless a fallback is given; null counts as absent.
  int64_t integer(const char* key, std::optional<int64_t> fallback = std::nullopt,
                  int64_t min = 1) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
      if (!fallback) fail(std::string("missing '") + key + "'");
      return fallback.value_or(min);
    }
    if (!it->is_number_integer()) {
      fail(std::string("'") + key + "' must be an integer, got " + it->dump());
      return min;
    }
    // Past int64 (JSON's unsigned integers): get<int64_t>() would wrap it negative.
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX)) {
      fail(std::string("'") + key + "' is " + it->dump() + ", too large");
      return min;
    }
    const int64_t v = it->get<int64_t>();
    if (v < min) {
      fail(std::string("'") + key + "' is " + std::to_string(v) +
           ", must be >= " + std::to_string(min));
      return min;  // the caller may compute with it before the status is checked
    }
    return v;
  }
  double number(const char* key, double fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_number()) {
      fail(std::string("'") + key + "' must be a number, got " + it->dump());
      return fallback;
    }
    return it->get<double>();
  }
  bool boolean(const char* key, bool fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) {
      fail(std::string("'") + key + "' must be true or false, got " + it->dump());
      return fallback;
    }
    return it->get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    if (!it->is_string()) {
      fail(std::string("'") + key + "' must be a string, got " + it->dump());
      return fallback;
    }
    return it->get<std::string>();
  }
  // Token ids may be an integer or a list (the first is used).
  int64_t token(const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return -1;
    if (it->is_array() && !it->empty())
      return (*it)[0].is_number_integer() ? (*it)[0].get<int64_t>() : -1;
    return it->is_number_integer() ? it->get<int64_t>() : -1;
  }
};

// Norm epsilons are applied in f32: one that is not a positive, finite float (1e64 would
// become infinity, 1e-50 zero) is malformed input.
float norm_epsilon(Reader& r, const char* key, double fallback) {
  const double v = r.number(key, fallback);
  const float f = float(v);
  if (!(v > 0) || !std::isfinite(f) || !(f > 0)) {
    r.fail(std::string("'") + key + "' must be a positive number a float can hold, got " +
           json(v).dump());
    return float(fallback);
  }
  return f;
}

}  // namespace

std::string_view model_family_name(ModelFamily family) {
  return family == ModelFamily::kGpt2 ? "gpt2" : "llama";
}

Result<ModelConfig> parse_model_config(std::string_view json_text, std::string_view source) {
  const std::string src(source);
  json j = json::parse(json_text.begin(), json_text.end(), nullptr, false);
  if (j.is_discarded()) return invalid_argument(src + ": not valid JSON");
  if (!j.is_object()) return invalid_argument(src + ": not a JSON object");
  Reader r{j, src, {}};
  ModelConfig c;
  c.model_type = r.string("model_type", "");
  if (c.model_type.empty())
    return invalid_argument(src + ": missing 'model_type' (supported: gpt2, llama)");
  if (c.model_type == "gpt2") {
    c.family = ModelFamily::kGpt2;
    c.vocab_size = r.integer("vocab_size");
    c.hidden_size = r.integer("n_embd");
    c.num_layers = r.integer("n_layer");
    c.num_heads = r.integer("n_head");
    c.num_kv_heads = c.num_heads;
    c.max_positions = r.integer("n_positions", r.integer("n_ctx", 1024));
    // The default is 4 x n_embd; an n_embd too large for that product is rejected by the
    // size limits below, so the default only has to be computed without overflowing (the
    // reader returns at least 1, even for a refused value).
    c.intermediate_size =
        r.integer("n_inner", c.hidden_size <= INT64_MAX / 4 ? 4 * c.hidden_size : c.hidden_size);
    c.norm_eps = norm_epsilon(r, "layer_norm_epsilon", 1e-5);
    const std::string act = r.string("activation_function", "gelu_new");
    if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
      c.gelu = GeluApproximation::kTanh;
    } else if (act == "gelu") {
      c.gelu = GeluApproximation::kErf;
    } else {
      r.fail("activation_function '" + act +
             "' is not supported (gelu_new, gelu_pytorch_tanh, gelu_fast, gelu)");
    }
    c.scale_attn_weights = r.boolean("scale_attn_weights", true);
    c.scale_attn_by_inverse_layer_idx = r.boolean("scale_attn_by_inverse_layer_idx", false);
    c.tie_word_embeddings = r.boolean("tie_word_embeddings", true);
  } else if (c.model_type == "llama") {
    c.family = ModelFamily::kLlama;
    c.vocab_size = r.integer("vocab_size");
    c.hidden_size = r.integer("hidden_size");
    c.num_layers = r.integer("num_hidden_layers");
    c.num_heads = r.integer("num_attention_heads");
    c.num_kv_heads = r.integer("num_key_value_heads", c.num_heads);
    c.intermediate_size = r.integer("intermediate_size");
    c.max_positions = r.integer("max_position_embeddings", 2048);
    c.norm_eps = norm_epsilon(r, "rms_norm_eps", 1e-6);
    c.rope_theta = r.number("rope_theta", 10000.0);
    if (!(c.rope_theta > 0)) r.fail("'rope_theta' must be > 0");
    const std::string act = r.string("hidden_act", "silu");
    if (act != "silu") r.fail("hidden_act '" + act + "' is not supported (silu)");
    c.attention_bias = r.boolean("attention_bias", false);
    c.mlp_bias = r.boolean("mlp_bias", false);
    c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
    auto rs = j.find("rope_scaling");
    if (rs != j.end() && !rs->is_null()) {
      if (!rs->is_object()) {
        r.fail("'rope_scaling' must be an object or null");
      } else {
        Reader sr{*rs, src + ": rope_scaling", {}};
        RopeScaling s;
        s.type = sr.string("rope_type", sr.string("type", "default"));
        if (s.type == "linear" || s.type == "llama3") {
          s.factor = sr.number("factor", 1.0);
          if (!(s.factor > 0)) sr.fail("'factor' must be > 0");
          if (s.type == "llama3") {
            s.low_freq_factor = sr.number("low_freq_factor", 1.0);
            s.high_freq_factor = sr.number("high_freq_factor", 4.0);
            s.original_max_position_embeddings =
                sr.integer("original_max_position_embeddings", 8192);
            if (!(s.high_freq_factor > s.low_freq_factor) || !(s.low_freq_factor > 0))
              sr.fail("needs 0 < low_freq_factor < high_freq_factor");
          }
          c.rope_scaling = s;
        } else if (s.type != "default") {
          sr.fail("type '" + s.type + "' is not supported (default, linear, llama3)");
        }
        if (!sr.status.ok()) return sr.status;
      }
    }
  } else {
    return invalid_argument(src + ": model_type '" + c.model_type +
                            "' is not supported (supported: gpt2, llama)");
  }
  if (auto q = j.find("quantization_config"); q != j.end() && !q->is_null()) {
    if (!q->is_object()) return invalid_argument(src + ": 'quantization_config' must be an object");
    Reader qr{*q, src + ": quantization_config", {}};
    QuantizationConfig qc;
    qc.method = qr.string("quant_method", "");
    qc.bits = qr.integer("bits", 4);
    qc.group_size = qr.integer("group_size", 128, -1);
    qc.zero_point = qr.boolean("zero_point", true);
    qc.sym = qr.boolean("sym", false);
    qc.desc_act = qr.boolean("desc_act", false);
    qc.version =
        qc.method == "awq" ? qr.string("version", "gemm") : qr.string("checkpoint_format", "gptq");
    if (!qr.status.ok()) return qr.status;
    const std::string where = src + ": quantization_config: ";
    if (qc.method != "awq" && qc.method != "gptq")
      return invalid_argument(where + "quant_method '" + qc.method +
                              "' is not supported (awq, gptq)");
    if (qc.bits != 4)
      return invalid_argument(where + "bits " + std::to_string(qc.bits) + " is not supported (4)");
    if (qc.group_size != 32 && qc.group_size != 64 && qc.group_size != 128)
      return invalid_argument(where + "group_size " + std::to_string(qc.group_size) +
                              " is not supported (32, 64, 128)");
    if (qc.method == "awq" && qc.version != "gemm")
      return invalid_argument(where + "AWQ version '" + qc.version + "' is not supported (gemm)");
    if (qc.method == "awq" && !qc.zero_point)
      return invalid_argument(where + "AWQ without zero points is not supported");
    if (qc.method == "gptq" && qc.version != "gptq" && qc.version != "gptq_v2")
      return invalid_argument(where + "checkpoint_format '" + qc.version +
                              "' is not supported (gptq, gptq_v2)");
    c.quantization = qc;
  }
  if (!r.status.ok()) return r.status;
  if (c.hidden_size % c.num_heads != 0 && c.family == ModelFamily::kGpt2)
    return invalid_argument(src + ": n_head " + std::to_string(c.num_heads) +
                            " does not divide n_embd " + std::to_string(c.hidden_size));
  c.head_dim = c.hidden_size / c.num_heads;
  if (c.family == ModelFamily::kLlama) {
    c.head_dim = r.integer("head_dim", c.hidden_size % c.num_heads == 0
                                           ? std::optional<int64_t>(c.hidden_size / c.num_heads)
                                           : std::nullopt);
    if (!r.status.ok())
      return invalid_argument(src + ": num_attention_heads " + std::to_string(c.num_heads) +
                              " does not divide hidden_size " + std::to_string(c.hidden_size) +
                              " and there is no head_dim");
    if (c.num_heads % c.num_kv_heads != 0)
      return invalid_argument(src + ": num_key_value_heads " + std::to_string(c.num_kv_heads) +
                              " does not divide num_attention_heads " +
                              std::to_string(c.num_heads));
    if (c.head_dim % 2 != 0)
      return invalid_argument(src + ": head_dim " + std::to_string(c.head_dim) +
                              " must be even for the rotary embedding");
  }
  c.bos_token_id = r.token("bos_token_id");
  c.eos_token_id = r.token("eos_token_id");
  // Sizes far past anything real are malformed input, and would overflow byte counts.
  const int64_t limit = int64_t(1) << 24;
  for (auto [name, v, max] :
       {std::tuple<const char*, int64_t, int64_t>{"vocab size", c.vocab_size, limit},
        {"hidden size", c.hidden_size, limit},
        {"head count", c.num_heads, limit},
        {"head_dim", c.head_dim, limit},
        {"intermediate size", c.intermediate_size, limit},
        {"max positions", c.max_positions, limit},
        // Each layer lists its weights (expected_weights): a count
        // this large would take gigabytes before failing elsewhere.
        {"layer count", c.num_layers, int64_t(1) << 14}})
    if (v > max)
      return invalid_argument(src + ": " + name + " " + std::to_string(v) +
                              " is implausibly large (at most " + std::to_string(max) + ")");
  // Each figure may be plausible while their products are not: parameter_count() and the
  // byte counts derived from it must fit in 64 bits. Estimated in double (no overflow),
  // against 2^50 parameters, hundreds of times the largest published model.
  const double h = double(c.hidden_size), q = double(c.num_heads) * double(c.head_dim),
               kv = double(c.num_kv_heads) * double(c.head_dim);
  const double per_layer = 2 * h * q + 2 * h * kv + 3 * h * double(c.intermediate_size);
  const double total =
      double(c.num_layers) * per_layer + 2 * double(c.vocab_size) * h + double(c.max_positions) * h;
  if (total > double(int64_t(1) << 50))
    return invalid_argument(src + ": the sizes imply about " + fmt_parameters(total) +
                            " parameters, implausibly many");
  return c;
}

std::string model_config_json(const ModelConfig& c) {
  json j;
  j["model_type"] = c.model_type;
  j["vocab_size"] = c.vocab_size;
  if (c.family == ModelFamily::kGpt2) {
    j["architectures"] = {"GPT2LMHeadModel"};
    j["n_embd"] = c.hidden_size;
    j["n_layer"] = c.num_layers;
    j["n_head"] = c.num_heads;
    j["n_positions"] = c.max_positions;
    j["n_ctx"] = c.max_positions;
    j["n_inner"] = c.intermediate_size;
    j["layer_norm_epsilon"] = c.norm_eps;
    j["activation_function"] = c.gelu == GeluApproximation::kTanh ? "gelu_new" : "gelu";
    j["scale_attn_weights"] = c.scale_attn_weights;
    j["scale_attn_by_inverse_layer_idx"] = c.scale_attn_by_inverse_layer_idx;
  } else {
    j["architectures"] = {"LlamaForCausalLM"};
    j["hidden_size"] = c.hidden_size;
    j["num_hidden_layers"] = c.num_layers;
    j["num_attention_heads"] = c.num_heads;
    j["num_key_value_heads"] = c.num_kv_heads;
    j["head_dim"] = c.head_dim;
    j["intermediate_size"] = c.intermediate_size;
    j["max_position_embeddings"] = c.max_positions;
    j["rms_norm_eps"] = c.norm_eps;
    j["rope_theta"] = c.rope_theta;
    j["hidden_act"] = "silu";
    j["attention_bias"] = c.attention_bias;
    j["mlp_bias"] = c.mlp_bias;
    if (c.rope_scaling) {
      json s;
      s["rope_type"] = c.rope_scaling->type;
      s["factor"] = c.rope_scaling->factor;
      if (c.rope_scaling->type == "llama3") {
        s["low_freq_factor"] = c.rope_scaling->low_freq_factor;
        s["high_freq_factor"] = c.rope_scaling->high_freq_factor;
        s["original_max_position_embeddings"] = c.rope_scaling->original_max_position_embeddings;
      }
      j["rope_scaling"] = s;
    }
  }
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_id >= 0) j["eos_token_id"] = c.eos_token_id;
  return j.dump(2);
}

int64_t weight_layer(std::string_view name) {
  for (std::string_view prefix : {std::string_view("h."), std::string_view("model.layers.")}) {
    if (name.substr(0, prefix.size()) != prefix) continue;
    const std::string_view rest = name.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string_view::npos || dot > 18) return -1;
    int64_t layer = 0;
    for (char ch : rest.substr(0, dot)) {
      if (ch < '0' || ch > '9') return -1;
      layer = layer * 10 + (ch - '0');
    }
    return layer;
  }
  return -1;
}

std::vector<WeightSpec> expected_weights(const ModelConfig& c) {
  std::vector<WeightSpec> w;
  const int64_t d = c.hidden_size, v = c.vocab_size, f = c.intermediate_size;
  if (c.family == ModelFamily::kGpt2) {
    w.push_back({"wte.weight", {v, d}});
    w.push_back({"wpe.weight", {c.max_positions, d}});
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const std::string p = "h." + std::to_string(l) + ".";
      w.push_back({p + "ln_1.weight", {d}});
      w.push_back({p + "ln_1.bias", {d}});
      // The attention width is heads x head_dim: hidden_size, except on a tensor-parallel
      // rank (ShardLayout), which holds its share of the heads.
      const int64_t a = c.num_heads * c.head_dim;
      w.push_back({p + "attn.c_attn.weight", {d, 3 * a}});
      w.push_back({p + "attn.c_attn.bias", {3 * a}});
      w.push_back({p + "attn.c_proj.weight", {a, d}});
      w.push_back({p + "attn.c_proj.bias", {d}});
      w.push_back({p + "ln_2.weight", {d}});
      w.push_back({p + "ln_2.bias", {d}});
      w.push_back({p + "mlp.c_fc.weight", {d, f}});
      w.push_back({p + "mlp.c_fc.bias", {f}});
      w.push_back({p + "mlp.c_proj.weight", {f, d}});
      w.push_back({p + "mlp.c_proj.bias", {d}});
    }
    w.push_back({"ln_f.weight", {d}});
    w.push_back({"ln_f.bias", {d}});
    if (!c.tie_word_embeddings) w.push_back({"lm_head.weight", {v, d}});
  } else {
    const int64_t qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim;
    w.push_back({"model.embed_tokens.weight", {v, d}});
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      w.push_back({p + "input_layernorm.weight", {d}});
      w.push_back({p + "self_attn.q_proj.weight", {qd, d}});
      w.push_back({p + "self_attn.k_proj.weight", {kvd, d}});
      w.push_back({p + "self_attn.v_proj.weight", {kvd, d}});
      w.push_back({p + "self_attn.o_proj.weight", {d, qd}});
      if (c.attention_bias) {
        w.push_back({p + "self_attn.q_proj.bias", {qd}});
        w.push_back({p + "self_attn.k_proj.bias", {kvd}});
        w.push_back({p + "self_attn.v_proj.bias", {kvd}});
        w.push_back({p + "self_attn.o_proj.bias", {d}});
      }
      w.push_back({p + "post_attention_layernorm.weight", {d}});
      w.push_back({p + "mlp.gate_proj.weight", {f, d}});
      w.push_back({p + "mlp.up_proj.weight", {f, d}});
      w.push_back({p + "mlp.down_proj.weight", {d, f}});
      if (c.mlp_bias) {
        w.push_back({p + "mlp.gate_proj.bias", {f}});
        w.push_back({p + "mlp.up_proj.bias", {f}});
        w.push_back({p + "mlp.down_proj.bias", {d}});
      }
    }
    w.push_back({"model.norm.weight", {d}});
    if (!c.tie_word_embeddings) w.push_back({"lm_head.weight", {v, d}});
  }
  return w;
}

int64_t ModelConfig::parameter_count() const {
  int64_t n = 0;
  for (const WeightSpec& w : expected_weights(*this)) n += w.shape.numel();
  return n;
}

uint64_t ModelConfig::decode_weight_bytes(uint32_t bytes_per_weight) const {
  // Everything except the embedding tables, plus the lm_head matrix (the tied table is
  // read in full by the head; gathering rows of it reads one row per token).
  uint64_t n = 0;
  for (const WeightSpec& w : expected_weights(*this)) {
    const bool table =
        w.name == "wte.weight" || w.name == "wpe.weight" || w.name == "model.embed_tokens.weight";
    if (!table) n += uint64_t(w.shape.numel());
  }
  if (tie_word_embeddings) n += uint64_t(vocab_size * hidden_size);
  return n * bytes_per_weight;
}

std::string ModelConfig::summary() const {
  std::string s = std::string(model_family_name(family)) + ": " + std::to_string(num_layers) +
                  " layers, hidden " + std::to_string(hidden_size) + ", " +
                  std::to_string(num_heads) + " heads";
  if (num_kv_heads != num_heads) s += " (" + std::to_string(num_kv_heads) + " kv)";
  s += ", vocab " + std::to_string(vocab_size);
  return s;
}

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int64_t dim = c.head_dim;
  std::vector<float> inv(size_t(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    // transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), in float32.
    const float exponent = float(2 * i) / float(dim);
    inv[size_t(i)] = float(1.0 / std::pow(double(float(c.rope_theta)), double(exponent)));
  }
  if (!c.rope_scaling) return inv;
  const RopeScaling& s = *c.rope_scaling;
  if (s.type == "linear") {
    for (float& f : inv) f = float(f / s.factor);
    return inv;
  }
  // llama3 (transformers' _compute_llama3_parameters).
  const double old_ctx = double(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_ctx / s.low_freq_factor;
  const double high_freq_wavelen = old_ctx / s.high_freq_factor;
  const double pi = 3.14159265358979323846;
  for (float& f : inv) {
    const double wavelen = 2 * pi / double(f);
    double g = wavelen > low_freq_wavelen ? double(f) / s.factor : double(f);
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (medium) {
      const double smooth =
          (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      g = (1 - smooth) * g / s.factor + smooth * g;
    }
    f = float(g);
  }
  return inv;
}

}  // namespace hal::runtime
