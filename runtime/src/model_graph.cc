// The gpt2 and llama forward passes as runtime graphs (modeling_gpt2.py and
// modeling_llama.py semantics), reading and extending per-layer KV caches.
#include "hal/runtime/model_graph.h"

#include "hal/runtime/quantize.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace hal::runtime {

namespace {

struct Builder {
  const ModelConfig& c;
  const ModelGraphShape& s;
  ModelGraph out;
  Graph& g;

  Builder(const ModelConfig& config, const ModelGraphShape& shape, std::shared_ptr<Graph> graph)
      : c(config), s(shape), g(*graph) {
    out.graph = std::move(graph);
    out.shape = shape;
  }

  DType dt() const { return s.compute_dtype; }
  const WeightFormat* format(const std::string& name) const {
    return s.weights ? s.weights->find(name) : nullptr;
  }
  bool stored_transposed(const std::string& name) const {
    const WeightFormat* f = format(name);
    return f && f->transposed;
  }
  // `shape` is the canonical shape; a weight stored transposed gets the swapped one.
  ValueId weight(const std::string& name, Shape shape) {
    if (auto v = g.find_value(name)) return *v;
    const WeightFormat* f = format(name);
    const DType t = name == "rope.inv_freq" ? DType::kF32 : f ? f->dtype : dt();
    return g.add_constant(name, t, stored_shape(shape, f && f->transposed));
  }
  ValueId linear_in_out(const std::string& node, int32_t layer, ValueId x, const std::string& w,
                        Shape wshape, const std::string& bias) {
    // Conv1D (gpt2): weight [in, out]: x @ W + b; stored [out, in] (GGUF, quantized):
    // x @ W^T + b.
    OpAttributes a;
    a.transpose_b = stored_transposed(w);
    std::vector<ValueId> in = {x, weight(w, wshape)};
    if (!bias.empty()) in.push_back(weight(bias, Shape{wshape[1]}));
    return g.op(node, layer, OpKind::kMatmul, in, a);
  }
  ValueId linear_out_in(const std::string& node, int32_t layer, ValueId x, const std::string& w,
                        Shape wshape, bool has_bias, const std::string& bias) {
    // nn.Linear (llama): weight [out, in]: x @ W^T + b.
    OpAttributes a;
    a.transpose_b = !stored_transposed(w);
    std::vector<ValueId> in = {x, weight(w, wshape)};
    if (has_bias) in.push_back(weight(bias, Shape{wshape[0]}));
    return g.op(node, layer, OpKind::kMatmul, in, a);
  }
  // An embedding gather in the compute dtype: a quantized table dequantizes into it; a
  // float table stored in another dtype (an f16 table tied to the head, with f32
  // activations) is cast after the gather.
  ValueId gather(const std::string& node, ValueId table, ValueId ids) {
    const DType t = g.value(table).desc.dtype;
    if (is_quantized(t)) return g.op(node, -1, OpKind::kEmbedding, {table, ids}, {}, dt());
    ValueId rows = g.op(node, -1, OpKind::kEmbedding, {table, ids});
    if (t == dt()) return rows;
    return g.op(node + ".cast", -1, OpKind::kCast, {rows}, {}, dt());
  }

  void inputs() {
    out.ids = g.add_input("ids", DType::kI32, {s.batch, s.seq});
    out.positions = g.add_input("positions", DType::kI32, {s.batch, s.seq});
    out.kv_lengths = g.add_input("kv_lengths", DType::kI32, {s.batch});
    if (s.logits_at == LogitsAt::kLast && s.seq > 1)
      out.last_index = g.add_input("last_index", DType::kI32, {s.batch});
    for (int64_t b = 0; b < s.batch; ++b)
      out.past_symbols.push_back(g.add_symbol("past." + std::to_string(b)));
    out.kv_max_symbol = g.add_symbol("kv_max");
  }

  std::vector<SymInt> write_offsets() const {
    std::vector<SymInt> offsets;
    for (int32_t sym : out.past_symbols) offsets.push_back(SymInt::of(sym));
    return offsets;
  }

  // Writes k and v into the layer's caches and attends over them.
  ValueId attend(const std::string& prefix, int32_t layer, ValueId q, ValueId k, ValueId v,
                 float scale) {
    const Shape cache{s.batch, s.cache_len, c.num_kv_heads, c.head_dim};
    ValueId kc = g.add_state("h." + std::to_string(layer) + ".k_cache", dt(), cache);
    ValueId vc = g.add_state("h." + std::to_string(layer) + ".v_cache", dt(), cache);
    out.k_caches.push_back(kc);
    out.v_caches.push_back(vc);
    ValueId kw = g.write_slice(prefix + ".k_cache_write", layer, kc, k, 1, write_offsets());
    ValueId vw = g.write_slice(prefix + ".v_cache_write", layer, vc, v, 1, write_offsets());
    OpAttributes a;
    a.causal = true;
    a.q_offset = -1;  // queries sit at kv_lengths[b] - S + i
    a.scale = scale;
    ValueId o = g.op(prefix, layer, OpKind::kAttention, {q, kw, vw, out.kv_lengths}, a);
    g.set_dynamic_kv_length(o, SymInt::of(out.kv_max_symbol));
    return o;
  }

  // [B, S, D] -> the rows whose logits are wanted, then the head.
  ValueId head(ValueId x, const std::string& norm_node, const std::string& norm_w,
               const std::string& norm_b, const std::string& head_w) {
    const int64_t d = c.hidden_size;
    if (s.logits_at == LogitsAt::kLast) {
      if (s.seq > 1) {
        ValueId flat = g.reshape("final.rows", -1, x, {s.batch * s.seq, d});
        x = g.op("final.last_token", -1, OpKind::kEmbedding, {flat, out.last_index});
      } else {
        x = g.reshape("final.rows", -1, x, {s.batch, d});
      }
    }
    std::vector<ValueId> norm_in = {x, weight(norm_w, {d})};
    OpAttributes na;
    na.epsilon = c.norm_eps;
    if (!norm_b.empty()) norm_in.push_back(weight(norm_b, {d}));
    ValueId h =
        g.op(norm_node, -1, norm_b.empty() ? OpKind::kRmsNorm : OpKind::kLayerNorm, norm_in, na);
    OpAttributes ha;
    ha.transpose_b = true;
    return g.op("lm_head", -1, OpKind::kMatmul, {h, weight(head_w, {c.vocab_size, d})}, ha,
                DType::kF32);
  }

  // ---- parallel runs (model_config.h: ShardLayout) ----

  // The blocks this graph runs.
  int64_t layer_begin() const { return c.shard.layer_begin; }
  int64_t layer_end() const {
    return c.shard.layer_end < 0 ? c.num_layers : std::min(c.shard.layer_end, c.num_layers);
  }
  // A tensor-parallel rank's partial sum, completed over the group.
  ValueId all_reduce(const std::string& name, int32_t layer, ValueId partial) {
    if (c.shard.tp_size <= 1) return partial;
    return g.collective(name, layer, CollectiveKind::kAllReduce, kTensorParallelChannel, 0,
                        partial);
  }
  // The hidden state a later pipeline stage starts from: received from the previous one.
  ValueId receive_hidden() {
    const TensorDesc h = TensorDesc::contiguous(dt(), {s.batch, s.seq, c.hidden_size});
    return g.collective("pp.recv", int32_t(layer_begin()), CollectiveKind::kRecv, kPipelineChannel,
                        c.shard.pp_rank - 1, out.positions, h);
  }
  // Marks the logits: on a pipeline, the last stage's head output broadcast to every stage
  // (the others first send their hidden state on).
  void finish(ValueId x, const std::function<ValueId(ValueId)>& run_head) {
    const ShardLayout& sh = c.shard;
    ValueId logits = kNoValue;
    if (sh.pp_size <= 1) {
      logits = run_head(x);
    } else {
      const Shape shape = s.logits_at == LogitsAt::kLast ? Shape{s.batch, c.vocab_size}
                                                         : Shape{s.batch, s.seq, c.vocab_size};
      const TensorDesc desc = TensorDesc::contiguous(DType::kF32, shape);
      ValueId before = x;
      if (!sh.last_stage()) {
        before = g.collective("pp.send", int32_t(layer_end() - 1), CollectiveKind::kSend,
                              kPipelineChannel, sh.pp_rank + 1, x);
      } else {
        before = run_head(x);
      }
      logits = g.collective("pp.logits", -1, CollectiveKind::kBroadcast, kPipelineChannel,
                            sh.pp_size - 1, before, desc, sh.last_stage());
    }
    g.mark_output(logits);
    out.logits = logits;
  }

  void gpt2() {
    const int64_t d = c.hidden_size, f = c.intermediate_size, h = c.num_heads, hd = c.head_dim;
    const int64_t a = h * hd;  // attention width: d, or a tensor-parallel rank's share
    ValueId x = kNoValue;
    if (c.shard.first_stage()) {
      ValueId tok = gather("wte", weight("wte.weight", {c.vocab_size, d}), out.ids);
      ValueId pos = gather("wpe", weight("wpe.weight", {c.max_positions, d}), out.positions);
      x = g.op("embed", -1, OpKind::kAdd, {tok, pos});
    } else {
      x = receive_hidden();
    }
    for (int32_t l = int32_t(layer_begin()); l < int32_t(layer_end()); ++l) {
      const std::string p = "h." + std::to_string(l) + ".";
      OpAttributes ln;
      ln.epsilon = c.norm_eps;
      ValueId ln1 = g.op(p + "ln_1", l, OpKind::kLayerNorm,
                         {x, weight(p + "ln_1.weight", {d}), weight(p + "ln_1.bias", {d})}, ln);
      ValueId qkv = linear_in_out(p + "attn.qkv", l, ln1, p + "attn.c_attn.weight", {d, 3 * a},
                                  p + "attn.c_attn.bias");
      auto parts = g.split(p + "attn.split", l, qkv, 2, {a, a, a});
      ValueId q = g.reshape(p + "attn.q", l, parts[0], {s.batch, s.seq, h, hd});
      ValueId k = g.reshape(p + "attn.k", l, parts[1], {s.batch, s.seq, h, hd});
      ValueId v = g.reshape(p + "attn.v", l, parts[2], {s.batch, s.seq, h, hd});
      float scale = c.scale_attn_weights ? float(1.0 / std::sqrt(double(hd))) : 1.0f;
      if (c.scale_attn_by_inverse_layer_idx) scale /= float(l + 1);
      ValueId o = attend(p + "attn", l, q, k, v, scale);
      ValueId o2 = g.reshape(p + "attn.merge", l, o, {s.batch, s.seq, a});
      ValueId proj = linear_in_out(p + "attn.c_proj", l, o2, p + "attn.c_proj.weight", {a, d},
                                   p + "attn.c_proj.bias");
      proj = all_reduce(p + "attn.all_reduce", l, proj);
      x = g.op(p + "attn.residual", l, OpKind::kAdd, {x, proj});
      ValueId m = g.op(p + "ln_2", l, OpKind::kLayerNorm,
                       {x, weight(p + "ln_2.weight", {d}), weight(p + "ln_2.bias", {d})}, ln);
      ValueId fc =
          linear_in_out(p + "mlp.c_fc", l, m, p + "mlp.c_fc.weight", {d, f}, p + "mlp.c_fc.bias");
      OpAttributes ga;
      ga.gelu_approximation = c.gelu;
      ValueId act = g.op(p + "mlp.act", l, OpKind::kGelu, {fc}, ga);
      ValueId down = linear_in_out(p + "mlp.c_proj", l, act, p + "mlp.c_proj.weight", {f, d},
                                   p + "mlp.c_proj.bias");
      down = all_reduce(p + "mlp.all_reduce", l, down);
      x = g.op(p + "mlp.residual", l, OpKind::kAdd, {x, down});
    }
    finish(x, [&](ValueId h) {
      return head(h, "ln_f", "ln_f.weight", "ln_f.bias",
                  c.tie_word_embeddings ? "wte.weight" : "lm_head.weight");
    });
  }

  void llama() {
    const int64_t d = c.hidden_size, f = c.intermediate_size, hd = c.head_dim;
    const int64_t hq = c.num_heads, hkv = c.num_kv_heads;
    ValueId x = c.shard.first_stage()
                    ? gather("model.embed_tokens",
                             weight("model.embed_tokens.weight", {c.vocab_size, d}), out.ids)
                    : receive_hidden();
    ValueId inv_freq = weight("rope.inv_freq", {hd / 2});
    OpAttributes rms;
    rms.epsilon = c.norm_eps;
    for (int32_t l = int32_t(layer_begin()); l < int32_t(layer_end()); ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      ValueId a = g.op(p + "input_layernorm", l, OpKind::kRmsNorm,
                       {x, weight(p + "input_layernorm.weight", {d})}, rms);
      const bool ab = c.attention_bias;
      ValueId q = linear_out_in(p + "self_attn.q_proj", l, a, p + "self_attn.q_proj.weight",
                                {hq * hd, d}, ab, p + "self_attn.q_proj.bias");
      ValueId k = linear_out_in(p + "self_attn.k_proj", l, a, p + "self_attn.k_proj.weight",
                                {hkv * hd, d}, ab, p + "self_attn.k_proj.bias");
      ValueId v = linear_out_in(p + "self_attn.v_proj", l, a, p + "self_attn.v_proj.weight",
                                {hkv * hd, d}, ab, p + "self_attn.v_proj.bias");
      q = g.reshape(p + "self_attn.q_heads", l, q, {s.batch, s.seq, hq, hd});
      k = g.reshape(p + "self_attn.k_heads", l, k, {s.batch, s.seq, hkv, hd});
      v = g.reshape(p + "self_attn.v_heads", l, v, {s.batch, s.seq, hkv, hd});
      OpAttributes ra;
      ra.rope_style = c.rope_style;
      ra.rope_theta = float(c.rope_theta);
      q = g.op(p + "self_attn.q_rotary", l, OpKind::kRotary, {q, out.positions, inv_freq}, ra);
      k = g.op(p + "self_attn.k_rotary", l, OpKind::kRotary, {k, out.positions, inv_freq}, ra);
      ValueId o = attend(p + "self_attn", l, q, k, v, float(1.0 / std::sqrt(double(hd))));
      o = g.reshape(p + "self_attn.merge", l, o, {s.batch, s.seq, hq * hd});
      o = linear_out_in(p + "self_attn.o_proj", l, o, p + "self_attn.o_proj.weight", {d, hq * hd},
                        ab, p + "self_attn.o_proj.bias");
      o = all_reduce(p + "self_attn.all_reduce", l, o);
      x = g.op(p + "self_attn.residual", l, OpKind::kAdd, {x, o});
      ValueId m = g.op(p + "post_attention_layernorm", l, OpKind::kRmsNorm,
                       {x, weight(p + "post_attention_layernorm.weight", {d})}, rms);
      const bool mb = c.mlp_bias;
      ValueId gate = linear_out_in(p + "mlp.gate_proj", l, m, p + "mlp.gate_proj.weight", {f, d},
                                   mb, p + "mlp.gate_proj.bias");
      ValueId up = linear_out_in(p + "mlp.up_proj", l, m, p + "mlp.up_proj.weight", {f, d}, mb,
                                 p + "mlp.up_proj.bias");
      ValueId act = g.op(p + "mlp.act", l, OpKind::kSilu, {gate});
      ValueId prod = g.op(p + "mlp.gated", l, OpKind::kMul, {act, up});
      ValueId down = linear_out_in(p + "mlp.down_proj", l, prod, p + "mlp.down_proj.weight", {d, f},
                                   mb, p + "mlp.down_proj.bias");
      down = all_reduce(p + "mlp.all_reduce", l, down);
      x = g.op(p + "mlp.residual", l, OpKind::kAdd, {x, down});
    }
    finish(x, [&](ValueId h) {
      return head(h, "model.norm", "model.norm.weight", "",
                  c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
    });
  }
};

}  // namespace

Result<ModelGraph> build_model_graph(const ModelConfig& config, const ModelGraphShape& shape) {
  if (shape.batch < 1 || shape.seq < 1 || shape.cache_len < shape.seq)
    return invalid_argument("model graph: need batch >= 1, seq >= 1 and cache_len >= seq (got " +
                            std::to_string(shape.batch) + ", " + std::to_string(shape.seq) + ", " +
                            std::to_string(shape.cache_len) + ")");
  if (!is_floating(shape.compute_dtype) || dtype_size(shape.compute_dtype) < 2)
    return invalid_argument("model graph: compute dtype must be f32, f16 or bf16");
  const ShardLayout& sh = config.shard;
  if (sh.tp_size < 1 || sh.pp_size < 1 || sh.pp_rank < 0 || sh.pp_rank >= sh.pp_size ||
      sh.layer_begin < 0 || (sh.layer_end >= 0 && sh.layer_end <= sh.layer_begin) ||
      sh.layer_begin >= std::max<int64_t>(config.num_layers, 1) ||
      (sh.pp_size == 1 &&
       (sh.layer_begin != 0 || (sh.layer_end >= 0 && sh.layer_end < config.num_layers))))
    return invalid_argument(
        "model graph: shard layout tp " + std::to_string(sh.tp_size) + ", stage " +
        std::to_string(sh.pp_rank) + " of " + std::to_string(sh.pp_size) + ", layers [" +
        std::to_string(sh.layer_begin) + ", " + std::to_string(sh.layer_end) +
        ") does not fit the model's " + std::to_string(config.num_layers) + " layers");
  Builder b(config, shape, std::make_shared<Graph>());
  b.inputs();
  if (config.family == ModelFamily::kGpt2)
    b.gpt2();
  else
    b.llama();
  if (!b.g.status().ok())
    return b.g.status().with_context("building the " + config.summary() + " graph");
  HAL_RETURN_IF_ERROR(b.g.validate());
  return std::move(b.out);
}

}  // namespace hal::runtime
