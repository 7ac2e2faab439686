// tests/runtime/test_gguf.h: GGUF files written by the tests' own writer (no runtime
// code), from testmodels' Hugging Face-layout weights: gpt2's Conv1D projections turned
// to [out, in], llama's q/k rows permuted for GGUF's interleaved rotary embedding (as
// llama.cpp's converter does), 2-D weights in a chosen format (quantized with
// hal/reference's quantizers, whose layouts are checked bit-exact against ggml by
// tests/hal/quant_format_test.cc). It also hands back the weights the file holds
// (dequantized and turned back to Hugging Face layout), so testmodels' double-precision
// forward passes give the logits the file implies.
#pragma once

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "hal/quant_reference.h"
#include "test_models.h"

namespace testgguf {

using testmodels::Spec;
using testmodels::Tensor;
using testmodels::Tensors;

inline uint32_t ggml_type_id(hal::DType t) {
  switch (t) {
    case hal::DType::kF32:
      return 0;
    case hal::DType::kF16:
      return 1;
    case hal::DType::kQ4_0:
      return 2;
    case hal::DType::kQ4_1:
      return 3;
    case hal::DType::kQ5_0:
      return 6;
    case hal::DType::kQ5_1:
      return 7;
    case hal::DType::kQ8_0:
      return 8;
    case hal::DType::kQ4_K:
      return 12;
    case hal::DType::kQ5_K:
      return 13;
    case hal::DType::kQ6_K:
      return 14;
    case hal::DType::kBF16:
      return 30;
    default:
      return 0xffffffffu;
  }
}

class Writer {
 public:
  void u32(const std::string& key, uint32_t v) { kv(key, 4, &v, 4); }
  void f32(const std::string& key, float v) { kv(key, 6, &v, 4); }
  void str(const std::string& key, const std::string& v) {
    std::vector<uint8_t> b;
    put_string(b, v);
    kv(key, 8, b.data(), b.size());
  }
  // `shape` row-major; `type` a ggml type id; `bytes` the tensor's data.
  void tensor(const std::string& name, std::vector<int64_t> shape, uint32_t type,
              std::vector<uint8_t> bytes) {
    tensors_.push_back({name, std::move(shape), type, std::move(bytes)});
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
    put<uint32_t>(out, 3);
    put<uint64_t>(out, tensors_.size());
    put<uint64_t>(out, count_);
    out.insert(out.end(), kv_.begin(), kv_.end());
    uint64_t offset = 0;
    for (const auto& t : tensors_) {
      put_string(out, t.name);
      put<uint32_t>(out, uint32_t(t.shape.size()));
      for (size_t d = t.shape.size(); d-- > 0;)
        put<uint64_t>(out, uint64_t(t.shape[d]));  // ne0 first
      put<uint32_t>(out, t.type);
      put<uint64_t>(out, offset);
      offset = (offset + t.bytes.size() + 31) / 32 * 32;
    }
    out.resize((out.size() + 31) / 32 * 32, 0);
    for (const auto& t : tensors_) {
      out.insert(out.end(), t.bytes.begin(), t.bytes.end());
      out.resize((out.size() + 31) / 32 * 32, 0);
    }
    return out;
  }

 private:
  template <typename T>
  static void put(std::vector<uint8_t>& b, T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
  }
  static void put_string(std::vector<uint8_t>& b, const std::string& s) {
    put<uint64_t>(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void kv(const std::string& key, uint32_t type, const void* v, size_t n) {
    put_string(kv_, key);
    put<uint32_t>(kv_, type);
    const uint8_t* p = static_cast<const uint8_t*>(v);
    kv_.insert(kv_.end(), p, p + n);
    ++count_;
  }
  struct T {
    std::string name;
    std::vector<int64_t> shape;
    uint32_t type;
    std::vector<uint8_t> bytes;
  };
  std::vector<uint8_t> kv_;
  uint64_t count_ = 0;
  std::vector<T> tensors_;
};

struct File {
  std::vector<uint8_t> bytes;
  Tensors held;  // what the file holds, in Hugging Face layout
};

// Where weight `name` goes: its GGUF name and whether it is stored transposed.
inline std::pair<std::string, bool> gguf_name(const Spec& s, const std::string& name) {
  static const std::vector<std::pair<std::string, std::string>> top = {
      {"wte.weight", "token_embd.weight"},
      {"wpe.weight", "position_embd.weight"},
      {"ln_f.weight", "output_norm.weight"},
      {"ln_f.bias", "output_norm.bias"},
      {"lm_head.weight", "output.weight"},
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"}};
  for (const auto& [h, g] : top)
    if (name == h) return {g, false};
  const std::string prefix = s.llama ? "model.layers." : "h.";
  const size_t dot = name.find('.', prefix.size());
  const std::string layer = name.substr(prefix.size(), dot - prefix.size());
  const std::string rest = name.substr(dot + 1);
  const std::string stem = rest.substr(0, rest.rfind('.')), suffix = rest.substr(rest.rfind('.'));
  static const std::vector<std::tuple<std::string, std::string, bool>> gpt2 = {
      {"ln_1", "attn_norm", false},         {"attn.c_attn", "attn_qkv", true},
      {"attn.c_proj", "attn_output", true}, {"ln_2", "ffn_norm", false},
      {"mlp.c_fc", "ffn_up", true},         {"mlp.c_proj", "ffn_down", true}};
  static const std::vector<std::tuple<std::string, std::string, bool>> llama = {
      {"input_layernorm", "attn_norm", false},    {"self_attn.q_proj", "attn_q", false},
      {"self_attn.k_proj", "attn_k", false},      {"self_attn.v_proj", "attn_v", false},
      {"self_attn.o_proj", "attn_output", false}, {"post_attention_layernorm", "ffn_norm", false},
      {"mlp.gate_proj", "ffn_gate", false},       {"mlp.up_proj", "ffn_up", false},
      {"mlp.down_proj", "ffn_down", false}};
  for (const auto& [h, g, t] : s.llama ? llama : gpt2)
    if (stem == h) return {"blk." + layer + "." + g + suffix, t && suffix == ".weight"};
  return {"?" + name, false};
}

// The row of head-dim feature i (rotate-half order) in GGUF's interleaved order.
inline int64_t interleaved_row(int64_t i, int64_t head_dim) {
  const int64_t h = i / head_dim, j = i % head_dim;
  return h * head_dim + (j < head_dim / 2 ? 2 * j : 2 * (j - head_dim / 2) + 1);
}

// `format_of(gguf_name, shape)` picks each tensor's type (1-D tensors are always f32).
inline File write(
    const Spec& s, const Tensors& w,
    const std::function<hal::DType(const std::string&, const std::vector<int64_t>&)>& format_of) {
  Writer out;
  const std::string a = s.llama ? "llama." : "gpt2.";
  out.str("general.architecture", s.llama ? "llama" : "gpt2");
  out.u32(a + "context_length", uint32_t(s.positions));
  out.u32(a + "embedding_length", uint32_t(s.hidden));
  out.u32(a + "block_count", uint32_t(s.layers));
  out.u32(a + "feed_forward_length", uint32_t(s.inter));
  out.u32(a + "attention.head_count", uint32_t(s.heads));
  if (s.llama) {
    out.u32(a + "attention.head_count_kv", uint32_t(s.kv_heads));
    out.f32(a + "attention.layer_norm_rms_epsilon", s.eps);
    out.f32(a + "rope.freq_base", float(s.rope_theta));
    out.u32(a + "rope.dimension_count", uint32_t(s.hd()));
  } else {
    out.f32(a + "attention.layer_norm_epsilon", s.eps);
  }
  File f;
  for (const auto& [name, t] : w) {
    const auto [gname, transposed] = gguf_name(s, name);
    std::vector<int64_t> shape = t.shape;
    std::vector<float> v = t.values;
    if (transposed) {
      shape = {t.shape[1], t.shape[0]};
      for (int64_t r = 0; r < t.shape[0]; ++r)
        for (int64_t c = 0; c < t.shape[1]; ++c)
          v[size_t(c * t.shape[0] + r)] = t.values[size_t(r * t.shape[1] + c)];
    }
    const bool qk = s.llama && (gname.find(".attn_q.") != std::string::npos ||
                                gname.find(".attn_k.") != std::string::npos);
    const int64_t cols = shape.size() == 2 ? shape[1] : 1;
    if (qk) {
      std::vector<float> p(v.size());
      for (int64_t r = 0; r < shape[0]; ++r)
        std::memcpy(&p[size_t(interleaved_row(r, s.hd()) * cols)], &v[size_t(r * cols)],
                    size_t(cols) * 4);
      v = std::move(p);
    }
    const hal::DType type = shape.size() == 2 ? format_of(gname, shape) : hal::DType::kF32;
    const int64_t k = shape.back(), rows = int64_t(v.size()) / k;
    std::vector<uint8_t> bytes = hal::reference::quantize_rows(type, v.data(), rows, k);
    out.tensor(gname, shape, ggml_type_id(type), bytes);
    // What the file holds, back in Hugging Face layout.
    std::vector<float> held = hal::reference::dequantize_rows(type, bytes.data(), rows, k);
    if (qk) {
      std::vector<float> p(held.size());
      for (int64_t r = 0; r < shape[0]; ++r)
        std::memcpy(&p[size_t(r * cols)], &held[size_t(interleaved_row(r, s.hd()) * cols)],
                    size_t(cols) * 4);
      held = std::move(p);
    }
    Tensor h;
    h.shape = t.shape;
    h.values.resize(held.size());
    if (transposed) {
      for (int64_t r = 0; r < t.shape[0]; ++r)
        for (int64_t c = 0; c < t.shape[1]; ++c)
          h.values[size_t(r * t.shape[1] + c)] = held[size_t(c * t.shape[0] + r)];
    } else {
      h.values = held;
    }
    f.held[name] = std::move(h);
  }
  f.bytes = out.bytes();
  return f;
}

}  // namespace testgguf
