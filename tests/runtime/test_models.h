// tests/runtime/test_models.h: what the runtime tests check against, written without the
// runtime: a safetensors writer producing Hugging Face checkpoint directories, random
// GPT-2 and Llama weights, and reference forward passes of both architectures in plain
// double-precision loops over the checkpoint tensors (following transformers'
// modeling_gpt2.py and modeling_llama.py), so a bug in the runtime's loader, graph or
// ops cannot hide in a shared code path.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace testmodels {

namespace fs = std::filesystem;

enum class FileDType { kF32, kF16, kBF16 };

inline const char* st_name(FileDType t) {
  return t == FileDType::kF32 ? "F32" : t == FileDType::kF16 ? "F16" : "BF16";
}
inline size_t st_size(FileDType t) { return t == FileDType::kF32 ? 4 : 2; }

// IEEE binary16 and bfloat16 encodings, round to nearest even.
inline uint16_t to_bf16_bits(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float from_bf16_bits(uint16_t b) { return std::bit_cast<float>(uint32_t(b) << 16); }
inline uint16_t to_f16_bits(float f) {
  // Normal range only (test weights are small, well inside f16's range).
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  int32_t exp = int32_t((u >> 23) & 0xff) - 127 + 15;
  uint32_t mant = u & 0x7fffffu;
  if (exp <= 0) {  // subnormal in f16
    if (exp < -10) return uint16_t(sign);
    mant |= 0x800000u;
    const uint32_t shift = uint32_t(14 - exp);
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t h = (uint32_t(exp) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return uint16_t(sign | h);
}
inline float from_f16_bits(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const int32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) return (sign ? -1.f : 1.f) * std::ldexp(float(mant), -24);
  return std::bit_cast<float>(sign | (uint32_t(exp - 15 + 127) << 23) | (mant << 13));
}
inline float round_to(FileDType t, float v) {
  if (t == FileDType::kBF16) return from_bf16_bits(to_bf16_bits(v));
  if (t == FileDType::kF16) return from_f16_bits(to_f16_bits(v));
  return v;
}

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> values;  // exactly representable in the file dtype
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};
using Tensors = std::map<std::string, Tensor>;  // canonical name -> tensor

// The bytes of a .safetensors file holding `tensors` (stored under `prefix + name`).
inline std::vector<uint8_t> safetensors_bytes(
    const std::vector<std::pair<std::string, const Tensor*>>& tensors, FileDType dtype) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const uint64_t bytes = uint64_t(t->numel()) * st_size(dtype);
    header[name] = {
        {"dtype", st_name(dtype)}, {"shape", t->shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8) text.push_back(' ');
  std::vector<uint8_t> out;
  out.reserve(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(uint64_t(text.size()) >> (8 * i)));
  for (char ch : text) out.push_back(uint8_t(ch));
  for (const auto& [name, t] : tensors) {
    for (float v : t->values) {
      if (dtype == FileDType::kF32) {
        const uint32_t u = std::bit_cast<uint32_t>(v);
        for (int i = 0; i < 4; ++i) out.push_back(uint8_t(u >> (8 * i)));
      } else {
        const uint16_t u = dtype == FileDType::kBF16 ? to_bf16_bits(v) : to_f16_bits(v);
        out.push_back(uint8_t(u));
        out.push_back(uint8_t(u >> 8));
      }
    }
  }
  return out;
}

inline void write_file(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}
inline void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

// ---- model descriptions --------------------------------------------------------------

struct Spec {
  bool llama = false;
  int64_t vocab = 96, hidden = 64, layers = 2, heads = 4, kv_heads = 4, inter = 128;
  int64_t positions = 64;
  int64_t head_dim = 0;  // 0 = hidden / heads
  bool tied = true;
  bool attention_bias = false, mlp_bias = false;  // llama
  bool llama3_scaling = false;                    // llama
  double rope_theta = 10000.0;
  float eps = 1e-5f;
  uint64_t seed = 1;
  // Untied head whose row t is the embedding row of (5t + 3) mod V: a clear top-1
  // margin, so greedy tokens agree on devices computing in bf16.
  bool permuted_head = false;

  int64_t hd() const { return head_dim ? head_dim : hidden / heads; }
};

inline nlohmann::json config_json(const Spec& s) {
  nlohmann::json j;
  j["vocab_size"] = s.vocab;
  if (!s.llama) {
    j["model_type"] = "gpt2";
    j["n_embd"] = s.hidden;
    j["n_layer"] = s.layers;
    j["n_head"] = s.heads;
    j["n_positions"] = s.positions;
    j["n_inner"] = s.inter;
    j["layer_norm_epsilon"] = s.eps;
    j["activation_function"] = "gelu_new";
    j["tie_word_embeddings"] = s.tied;
  } else {
    j["model_type"] = "llama";
    j["hidden_size"] = s.hidden;
    j["num_hidden_layers"] = s.layers;
    j["num_attention_heads"] = s.heads;
    j["num_key_value_heads"] = s.kv_heads;
    if (s.head_dim) j["head_dim"] = s.head_dim;
    j["intermediate_size"] = s.inter;
    j["max_position_embeddings"] = s.positions;
    j["rms_norm_eps"] = s.eps;
    j["rope_theta"] = s.rope_theta;
    j["hidden_act"] = "silu";
    j["attention_bias"] = s.attention_bias;
    j["mlp_bias"] = s.mlp_bias;
    j["tie_word_embeddings"] = s.tied;
    if (s.llama3_scaling)
      j["rope_scaling"] = {{"rope_type", "llama3"},
                           {"factor", 8.0},
                           {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 32}};
  }
  return j;
}

// Random weights for `s`, rounded to what a `dtype` file holds.
inline Tensors make_weights(const Spec& s, FileDType dtype) {
  std::mt19937_64 rng(s.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Tensors w;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, double scale,
                 double mean = 0) {
    Tensor t;
    t.shape = std::move(shape);
    t.values.resize(size_t(t.numel()));
    for (float& v : t.values) v = round_to(dtype, float(mean + scale * normal(rng)));
    w[name] = std::move(t);
  };
  const int64_t d = s.hidden, f = s.inter, v = s.vocab;
  const double emb_scale = s.permuted_head ? 4.0 / std::sqrt(double(d)) : 0.5;
  if (!s.llama) {
    add("wte.weight", {v, d}, emb_scale);
    add("wpe.weight", {s.positions, d}, s.permuted_head ? 0.01 : 0.2);
    for (int64_t l = 0; l < s.layers; ++l) {
      const std::string p = "h." + std::to_string(l) + ".";
      add(p + "ln_1.weight", {d}, 0.1, 1.0);
      add(p + "ln_1.bias", {d}, 0.1);
      add(p + "attn.c_attn.weight", {d, 3 * d}, 0.15);
      add(p + "attn.c_attn.bias", {3 * d}, 0.1);
      add(p + "attn.c_proj.weight", {d, d}, 0.1);
      add(p + "attn.c_proj.bias", {d}, 0.05);
      add(p + "ln_2.weight", {d}, 0.1, 1.0);
      add(p + "ln_2.bias", {d}, 0.1);
      add(p + "mlp.c_fc.weight", {d, f}, 0.15);
      add(p + "mlp.c_fc.bias", {f}, 0.1);
      add(p + "mlp.c_proj.weight", {f, d}, 0.08);
      add(p + "mlp.c_proj.bias", {d}, 0.05);
    }
    add("ln_f.weight", {d}, 0.1, 1.0);
    add("ln_f.bias", {d}, 0.1);
  } else {
    const int64_t qd = s.heads * s.hd(), kvd = s.kv_heads * s.hd();
    add("model.embed_tokens.weight", {v, d}, emb_scale);
    for (int64_t l = 0; l < s.layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      add(p + "input_layernorm.weight", {d}, 0.1, 1.0);
      add(p + "self_attn.q_proj.weight", {qd, d}, 0.15);
      add(p + "self_attn.k_proj.weight", {kvd, d}, 0.15);
      add(p + "self_attn.v_proj.weight", {kvd, d}, 0.15);
      add(p + "self_attn.o_proj.weight", {d, qd}, 0.1);
      if (s.attention_bias) {
        add(p + "self_attn.q_proj.bias", {qd}, 0.1);
        add(p + "self_attn.k_proj.bias", {kvd}, 0.1);
        add(p + "self_attn.v_proj.bias", {kvd}, 0.1);
        add(p + "self_attn.o_proj.bias", {d}, 0.05);
      }
      add(p + "post_attention_layernorm.weight", {d}, 0.1, 1.0);
      add(p + "mlp.gate_proj.weight", {f, d}, 0.15);
      add(p + "mlp.up_proj.weight", {f, d}, 0.15);
      add(p + "mlp.down_proj.weight", {d, f}, 0.08);
      if (s.mlp_bias) {
        add(p + "mlp.gate_proj.bias", {f}, 0.1);
        add(p + "mlp.up_proj.bias", {f}, 0.1);
        add(p + "mlp.down_proj.bias", {d}, 0.05);
      }
    }
    add("model.norm.weight", {d}, 0.1, 1.0);
  }
  const std::string table = s.llama ? "model.embed_tokens.weight" : "wte.weight";
  if (!s.tied) {
    if (s.permuted_head) {
      Tensor head = w[table];
      for (int64_t t = 0; t < v; ++t) {
        const int64_t src = (t * 5 + 3) % v;
        std::memcpy(&head.values[size_t(t * d)], &w[table].values[size_t(src * d)],
                    size_t(d) * sizeof(float));
      }
      w["lm_head.weight"] = std::move(head);
    } else {
      add("lm_head.weight", {v, d}, 0.5);
    }
  }
  return w;
}

struct WriteOptions {
  FileDType dtype = FileDType::kF32;
  int shards = 1;              // > 1: model-0000N-of-0000M + index JSON
  std::string gpt2_prefix;     // "" or "transformer."
  bool extra_tensors = false;  // also store buffers HF checkpoints carry (attn.bias masks)
};

// Writes config.json and the weights as a Hugging Face checkpoint directory.
inline void write_checkpoint(const fs::path& dir, const Spec& s, const Tensors& w,
                             const WriteOptions& o = {}) {
  fs::create_directories(dir);
  write_text(dir / "config.json", config_json(s).dump(2));
  std::vector<std::pair<std::string, const Tensor*>> all;
  for (const auto& [name, t] : w) {
    const bool prefixed = !s.llama && name != "lm_head.weight";
    all.emplace_back((prefixed ? o.gpt2_prefix : "") + name, &t);
  }
  Tensor mask;
  if (o.extra_tensors && !s.llama) {
    mask.shape = {1, 1, s.positions, s.positions};
    mask.values.assign(size_t(mask.numel()), 1.0f);
    all.emplace_back(o.gpt2_prefix + "h.0.attn.bias", &mask);
  }
  if (o.shards <= 1) {
    write_file(dir / "model.safetensors", safetensors_bytes(all, o.dtype));
    return;
  }
  nlohmann::json index;
  index["metadata"] = {{"total_size", 0}};
  auto shard_name = [&](int i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, o.shards);
    return std::string(buf);
  };
  for (int i = 0; i < o.shards; ++i) {
    std::vector<std::pair<std::string, const Tensor*>> part;
    for (size_t k = size_t(i); k < all.size(); k += size_t(o.shards)) {
      part.push_back(all[k]);
      index["weight_map"][all[k].first] = shard_name(i);
    }
    write_file(dir / shard_name(i), safetensors_bytes(part, o.dtype));
  }
  write_text(dir / "model.safetensors.index.json", index.dump(2));
}

// ---- reference forward passes (double precision) ----------------------------------

using Matrix = std::vector<std::vector<double>>;  // [rows][cols]

inline const Tensor& get(const Tensors& w, const std::string& name) { return w.at(name); }

// y[i] = x[i] @ W (+ b) with W stored [in, out].
inline Matrix matmul_in_out(const Matrix& x, const Tensor& wt, const Tensor* b) {
  const int64_t in = wt.shape[0], out = wt.shape[1];
  Matrix y(x.size(), std::vector<double>(size_t(out), 0.0));
  for (size_t i = 0; i < x.size(); ++i)
    for (int64_t o = 0; o < out; ++o) {
      double acc = b ? double(b->values[size_t(o)]) : 0.0;
      for (int64_t k = 0; k < in; ++k)
        acc += x[i][size_t(k)] * double(wt.values[size_t(k * out + o)]);
      y[i][size_t(o)] = acc;
    }
  return y;
}

// y[i] = x[i] @ W^T (+ b) with W stored [out, in] (nn.Linear).
inline Matrix matmul_out_in(const Matrix& x, const Tensor& wt, const Tensor* b) {
  const int64_t out = wt.shape[0], in = wt.shape[1];
  Matrix y(x.size(), std::vector<double>(size_t(out), 0.0));
  for (size_t i = 0; i < x.size(); ++i)
    for (int64_t o = 0; o < out; ++o) {
      double acc = b ? double(b->values[size_t(o)]) : 0.0;
      for (int64_t k = 0; k < in; ++k)
        acc += x[i][size_t(k)] * double(wt.values[size_t(o * in + k)]);
      y[i][size_t(o)] = acc;
    }
  return y;
}

inline Matrix layer_norm(const Matrix& x, const Tensor& g, const Tensor& b, double eps) {
  Matrix y = x;
  for (auto& row : y) {
    double mean = 0, var = 0;
    for (double v : row) mean += v;
    mean /= double(row.size());
    for (double v : row) var += (v - mean) * (v - mean);
    var /= double(row.size());
    const double inv = 1.0 / std::sqrt(var + eps);
    for (size_t k = 0; k < row.size(); ++k)
      row[k] = (row[k] - mean) * inv * double(g.values[k]) + double(b.values[k]);
  }
  return y;
}

inline Matrix rms_norm(const Matrix& x, const Tensor& g, double eps) {
  Matrix y = x;
  for (auto& row : y) {
    double ms = 0;
    for (double v : row) ms += v * v;
    ms /= double(row.size());
    const double inv = 1.0 / std::sqrt(ms + eps);
    for (size_t k = 0; k < row.size(); ++k) row[k] = row[k] * inv * double(g.values[k]);
  }
  return y;
}

// Causal attention for one sequence: q [S][Hq*D], k/v [S][Hkv*D].
inline Matrix attention(const Matrix& q, const Matrix& k, const Matrix& v, int64_t hq, int64_t hkv,
                        int64_t d, double scale) {
  const size_t s = q.size();
  Matrix o(s, std::vector<double>(size_t(hq * d), 0.0));
  for (int64_t h = 0; h < hq; ++h) {
    const int64_t kh = h / (hq / hkv);
    for (size_t i = 0; i < s; ++i) {
      std::vector<double> score(i + 1);
      double mx = -1e300;
      for (size_t j = 0; j <= i; ++j) {
        double acc = 0;
        for (int64_t e = 0; e < d; ++e) acc += q[i][size_t(h * d + e)] * k[j][size_t(kh * d + e)];
        score[j] = acc * scale;
        mx = std::max(mx, score[j]);
      }
      double sum = 0;
      for (double& x : score) {
        x = std::exp(x - mx);
        sum += x;
      }
      for (size_t j = 0; j <= i; ++j)
        for (int64_t e = 0; e < d; ++e)
          o[i][size_t(h * d + e)] += score[j] / sum * v[j][size_t(kh * d + e)];
    }
  }
  return o;
}

inline double gelu_tanh(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

// Logits [S][V] of one sequence.
inline Matrix gpt2_reference(const Spec& s, const Tensors& w, const std::vector<int32_t>& ids) {
  const int64_t d = s.hidden;
  Matrix x(ids.size(), std::vector<double>(size_t(d)));
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t k = 0; k < d; ++k)
      x[t][size_t(k)] = double(get(w, "wte.weight").values[size_t(ids[t] * d + k)]) +
                        double(get(w, "wpe.weight").values[size_t(int64_t(t) * d + k)]);
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    Matrix a = layer_norm(x, get(w, p + "ln_1.weight"), get(w, p + "ln_1.bias"), s.eps);
    Matrix qkv =
        matmul_in_out(a, get(w, p + "attn.c_attn.weight"), &get(w, p + "attn.c_attn.bias"));
    Matrix q(x.size()), k(x.size()), v(x.size());
    for (size_t t = 0; t < x.size(); ++t) {
      q[t].assign(qkv[t].begin(), qkv[t].begin() + d);
      k[t].assign(qkv[t].begin() + d, qkv[t].begin() + 2 * d);
      v[t].assign(qkv[t].begin() + 2 * d, qkv[t].end());
    }
    Matrix o = attention(q, k, v, s.heads, s.heads, s.hd(), 1.0 / std::sqrt(double(s.hd())));
    Matrix proj =
        matmul_in_out(o, get(w, p + "attn.c_proj.weight"), &get(w, p + "attn.c_proj.bias"));
    for (size_t t = 0; t < x.size(); ++t)
      for (int64_t e = 0; e < d; ++e) x[t][size_t(e)] += proj[t][size_t(e)];
    Matrix m = layer_norm(x, get(w, p + "ln_2.weight"), get(w, p + "ln_2.bias"), s.eps);
    Matrix f = matmul_in_out(m, get(w, p + "mlp.c_fc.weight"), &get(w, p + "mlp.c_fc.bias"));
    for (auto& row : f)
      for (double& e : row) e = gelu_tanh(e);
    Matrix down = matmul_in_out(f, get(w, p + "mlp.c_proj.weight"), &get(w, p + "mlp.c_proj.bias"));
    for (size_t t = 0; t < x.size(); ++t)
      for (int64_t e = 0; e < d; ++e) x[t][size_t(e)] += down[t][size_t(e)];
  }
  Matrix h = layer_norm(x, get(w, "ln_f.weight"), get(w, "ln_f.bias"), s.eps);
  return matmul_out_in(h, get(w, s.tied ? "wte.weight" : "lm_head.weight"), nullptr);
}

// transformers' default and llama3 inverse frequencies, in float32 like torch.
inline std::vector<double> llama_inv_freq(const Spec& s) {
  const int64_t dim = s.hd();
  std::vector<double> inv;
  for (int64_t i = 0; i < dim; i += 2)
    inv.push_back(double(1.0f / std::pow(float(s.rope_theta), float(i) / float(dim))));
  if (!s.llama3_scaling) return inv;
  const double factor = 8, low = 1, high = 4, old_ctx = 32;
  const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  for (double& f : inv) {
    const double wavelen = 2 * M_PI / f;
    if (wavelen < high_wavelen) continue;  // high frequency: unchanged
    if (wavelen > low_wavelen) {
      f = f / factor;  // low frequency: scaled
    } else {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      f = (1 - smooth) * f / factor + smooth * f;
    }
    f = double(float(f));
  }
  return inv;
}

// Rotates each head of row t (rotate-half) by position t.
inline void rotate(Matrix& x, int64_t heads, int64_t d, const std::vector<double>& inv) {
  const int64_t half = d / 2;
  for (size_t t = 0; t < x.size(); ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        // torch: freqs = pos * inv_freq in float32, then cos/sin.
        const double angle = double(float(double(t) * inv[size_t(i)]));
        const double c = std::cos(angle), sn = std::sin(angle);
        double& a = x[t][size_t(h * d + i)];
        double& b = x[t][size_t(h * d + i + half)];
        const double na = a * c - b * sn, nb = b * c + a * sn;
        a = na;
        b = nb;
      }
}

inline Matrix llama_reference(const Spec& s, const Tensors& w, const std::vector<int32_t>& ids) {
  const int64_t d = s.hidden, hd = s.hd();
  Matrix x(ids.size(), std::vector<double>(size_t(d)));
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t k = 0; k < d; ++k)
      x[t][size_t(k)] = double(get(w, "model.embed_tokens.weight").values[size_t(ids[t] * d + k)]);
  const std::vector<double> inv = llama_inv_freq(s);
  auto bias = [&](const std::string& n, bool on) { return on ? &get(w, n) : nullptr; };
  for (int64_t l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Matrix a = rms_norm(x, get(w, p + "input_layernorm.weight"), s.eps);
    const bool ab = s.attention_bias, mb = s.mlp_bias;
    Matrix q = matmul_out_in(a, get(w, p + "self_attn.q_proj.weight"),
                             bias(p + "self_attn.q_proj.bias", ab));
    Matrix k = matmul_out_in(a, get(w, p + "self_attn.k_proj.weight"),
                             bias(p + "self_attn.k_proj.bias", ab));
    Matrix v = matmul_out_in(a, get(w, p + "self_attn.v_proj.weight"),
                             bias(p + "self_attn.v_proj.bias", ab));
    rotate(q, s.heads, hd, inv);
    rotate(k, s.kv_heads, hd, inv);
    Matrix o = attention(q, k, v, s.heads, s.kv_heads, hd, 1.0 / std::sqrt(double(hd)));
    Matrix proj = matmul_out_in(o, get(w, p + "self_attn.o_proj.weight"),
                                bias(p + "self_attn.o_proj.bias", ab));
    for (size_t t = 0; t < x.size(); ++t)
      for (int64_t e = 0; e < d; ++e) x[t][size_t(e)] += proj[t][size_t(e)];
    Matrix m = rms_norm(x, get(w, p + "post_attention_layernorm.weight"), s.eps);
    Matrix gate =
        matmul_out_in(m, get(w, p + "mlp.gate_proj.weight"), bias(p + "mlp.gate_proj.bias", mb));
    Matrix up =
        matmul_out_in(m, get(w, p + "mlp.up_proj.weight"), bias(p + "mlp.up_proj.bias", mb));
    for (size_t t = 0; t < gate.size(); ++t)
      for (size_t e = 0; e < gate[t].size(); ++e) {
        const double g = gate[t][e];
        gate[t][e] = g / (1.0 + std::exp(-g)) * up[t][e];
      }
    Matrix down =
        matmul_out_in(gate, get(w, p + "mlp.down_proj.weight"), bias(p + "mlp.down_proj.bias", mb));
    for (size_t t = 0; t < x.size(); ++t)
      for (int64_t e = 0; e < d; ++e) x[t][size_t(e)] += down[t][size_t(e)];
  }
  Matrix h = rms_norm(x, get(w, "model.norm.weight"), s.eps);
  return matmul_out_in(h, get(w, s.tied ? "model.embed_tokens.weight" : "lm_head.weight"), nullptr);
}

inline Matrix reference_logits(const Spec& s, const Tensors& w, const std::vector<int32_t>& ids) {
  return s.llama ? llama_reference(s, w, ids) : gpt2_reference(s, w, ids);
}

// Max |got - ref| over all logits (rows of `got` back to back), divided by
// max(1, max |ref|): the tolerance measure of the model tests.
inline double relative_logit_error(const Matrix& ref, const std::vector<float>& got) {
  double max_ref = 0, max_diff = 0;
  const size_t vocab = ref[0].size();
  for (size_t t = 0; t < ref.size(); ++t)
    for (size_t v = 0; v < vocab; ++v) {
      max_ref = std::max(max_ref, std::abs(ref[t][v]));
      max_diff = std::max(max_diff, std::abs(ref[t][v] - double(got[t * vocab + v])));
    }
  return max_diff / std::max(1.0, max_ref);
}

// Greedy continuation by full recomputation with the reference.
inline std::vector<int32_t> reference_greedy(const Spec& s, const Tensors& w,
                                             std::vector<int32_t> ids, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const Matrix logits = reference_logits(s, w, ids);
    const auto& last = logits.back();
    int32_t best = 0;
    for (size_t v = 1; v < last.size(); ++v)
      if (last[v] > last[size_t(best)]) best = int32_t(v);
    out.push_back(best);
    ids.push_back(best);
  }
  return out;
}

}  // namespace testmodels
