// Splitting a model over tensor- and pipeline-parallel ranks (hal/runtime/parallel.h).
#include <algorithm>
#include <cstring>

#include "hal/runtime/parallel.h"

namespace hal::runtime {

std::string ParallelDegrees::to_string() const {
  return "TP " + std::to_string(tp) + " x PP " + std::to_string(pp);
}

Status check_parallel_degrees(const ModelConfig& c, ParallelDegrees p) {
  const std::string what = "tensor parallelism of " + std::to_string(p.tp);
  if (p.tp < 1 || p.pp < 1)
    return invalid_argument("parallel degrees must be >= 1 (got " + p.to_string() + ")");
  if (c.num_heads % p.tp != 0)
    return invalid_argument(what + " needs the attention heads (" + std::to_string(c.num_heads) +
                            ") divisible by " + std::to_string(p.tp));
  if (c.num_kv_heads % p.tp != 0 && p.tp % c.num_kv_heads != 0)
    return invalid_argument(what + " needs the key/value heads (" + std::to_string(c.num_kv_heads) +
                            ") divisible by " + std::to_string(p.tp) + " or dividing it");
  if (c.intermediate_size % p.tp != 0)
    return invalid_argument(what + " needs the MLP size (" + std::to_string(c.intermediate_size) +
                            ") divisible by " + std::to_string(p.tp));
  if (p.pp > c.num_layers)
    return invalid_argument("pipeline parallelism of " + std::to_string(p.pp) + " needs at least " +
                            std::to_string(p.pp) + " layers; the model has " +
                            std::to_string(c.num_layers));
  return ok_status();
}

std::pair<int64_t, int64_t> stage_layers(int64_t num_layers, int32_t pp, int32_t pp_rank) {
  return {num_layers * pp_rank / pp, num_layers * (pp_rank + 1) / pp};
}

ModelConfig shard_config(const ModelConfig& full, ParallelDegrees p, int32_t tp_rank,
                         int32_t pp_rank) {
  (void)tp_rank;  // every tensor-parallel rank has the same shapes
  ModelConfig c = full;
  c.num_heads = full.num_heads / p.tp;
  c.num_kv_heads = full.num_kv_heads % p.tp == 0 ? full.num_kv_heads / p.tp : 1;
  c.intermediate_size = full.intermediate_size / p.tp;
  c.shard.tp_size = p.tp;
  c.shard.pp_size = p.pp;
  c.shard.pp_rank = pp_rank;
  const auto [begin, end] = stage_layers(full.num_layers, p.pp, pp_rank);
  c.shard.layer_begin = begin;
  c.shard.layer_end = p.pp > 1 ? end : -1;
  return c;
}

namespace {

// A rank's model: sliced copies of its tensor-parallel weights, the full model's tensors for
// the rest.
class ShardedModel : public Model {
 public:
  ShardedModel(std::shared_ptr<const Model> full, ModelConfig config) : full_(std::move(full)) {
    config_ = std::move(config);
    name_ = full_->name();
    builtin_ = full_->builtin();
  }
  void add(HostTensor t) { weights_.emplace_back(t.name, std::move(t)); }
  // A new tensor named `name` holding `bytes` (filled by the caller).
  HostTensor& make(const HostTensor& like, Shape shape, std::vector<uint8_t> bytes) {
    owned_.push_back(std::move(bytes));
    HostTensor t;
    t.name = like.name;
    t.dtype = like.dtype;
    t.shape = shape;
    t.data = owned_.back().data();
    t.bytes = owned_.back().size();
    t.source = like.source.empty() ? "" : like.source + " (tensor-parallel shard)";
    weights_.emplace_back(t.name, t);
    return weights_.back().second;
  }
  void finish() {
    std::sort(weights_.begin(), weights_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
  }

 private:
  std::shared_ptr<const Model> full_;
};

// Rows [r0, r0 + n) of a 2-D (or 1-D) tensor.
std::vector<uint8_t> rows(const HostTensor& t, int64_t r0, int64_t n) {
  const int64_t row = (t.shape.rank > 1 ? t.shape.dims[1] : 1) * dtype_size(t.dtype);
  const auto* p = static_cast<const uint8_t*>(t.data);
  return std::vector<uint8_t>(p + r0 * row, p + (r0 + n) * row);
}

// Columns [c0, c0 + n) of a 2-D tensor, appended to `out`'s rows (one per row).
std::vector<uint8_t> columns(const HostTensor& t,
                             const std::vector<std::pair<int64_t, int64_t>>& ranges) {
  const int64_t R = t.shape.dims[0], C = t.shape.dims[1], e = dtype_size(t.dtype);
  int64_t width = 0;
  for (auto [c0, n] : ranges) width += n;
  std::vector<uint8_t> out(size_t(R * width * e));
  const auto* p = static_cast<const uint8_t*>(t.data);
  for (int64_t r = 0; r < R; ++r) {
    int64_t at = 0;
    for (auto [c0, n] : ranges) {
      std::memcpy(out.data() + (r * width + at) * e, p + (r * C + c0) * e, size_t(n * e));
      at += n;
    }
  }
  return out;
}

// Elements of a 1-D tensor from `ranges`, one after another.
std::vector<uint8_t> pieces(const HostTensor& t,
                            const std::vector<std::pair<int64_t, int64_t>>& ranges) {
  const int64_t e = dtype_size(t.dtype);
  std::vector<uint8_t> out;
  const auto* p = static_cast<const uint8_t*>(t.data);
  for (auto [a, n] : ranges) out.insert(out.end(), p + a * e, p + (a + n) * e);
  return out;
}

bool ends_with(const std::string& s, const char* tail) {
  const size_t n = std::strlen(tail);
  return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
}

}  // namespace

Result<std::shared_ptr<const Model>> shard_model(std::shared_ptr<const Model> full,
                                                 ParallelDegrees p, int32_t tp_rank,
                                                 int32_t pp_rank) {
  if (!full) return invalid_argument("shard_model: no model");
  const ModelConfig& fc = full->config();
  HAL_RETURN_IF_ERROR(check_parallel_degrees(fc, p));
  if (tp_rank < 0 || tp_rank >= p.tp || pp_rank < 0 || pp_rank >= p.pp)
    return invalid_argument("shard_model: rank (" + std::to_string(tp_rank) + ", " +
                            std::to_string(pp_rank) + ") is outside " + p.to_string());
  ModelConfig c = shard_config(fc, p, tp_rank, pp_rank);
  auto m = std::make_shared<ShardedModel>(full, c);
  const auto [layer_begin, layer_end] = stage_layers(fc.num_layers, p.pp, pp_rank);
  const int64_t hd = fc.head_dim, t = tp_rank;
  const int64_t q_local = c.num_heads * hd;  // this rank's query (and attention) width
  const int64_t f_local = c.intermediate_size;
  // The KV heads this rank holds: its share, or the one its query heads use.
  const int64_t kv_first =
      fc.num_kv_heads % p.tp == 0 ? t * c.num_kv_heads : t / (p.tp / fc.num_kv_heads);
  const int64_t kv_local = c.num_kv_heads * hd;
  for (const std::string& name : full->weight_names()) {
    const int64_t layer = weight_layer(name);
    if (layer >= 0 && (layer < layer_begin || layer >= layer_end)) continue;  // another stage's
    HAL_ASSIGN_OR_RETURN(HostTensor w, full->weight(name));
    if (p.tp == 1 || layer < 0) {
      m->add(w);
      continue;
    }
    const bool first = t == 0;
    auto zeros_unless_first = [&]() {
      std::vector<uint8_t> b(size_t(w.bytes), 0);
      if (first) std::memcpy(b.data(), w.data, size_t(w.bytes));
      m->make(w, w.shape, std::move(b));
    };
    const int64_t d = fc.hidden_size;
    if (fc.family == ModelFamily::kGpt2) {
      if (ends_with(name, "attn.c_attn.weight")) {
        m->make(w, {d, 3 * q_local},
                columns(w, {{t * q_local, q_local},
                            {d + t * q_local, q_local},
                            {2 * d + t * q_local, q_local}}));
      } else if (ends_with(name, "attn.c_attn.bias")) {
        m->make(w, {3 * q_local},
                pieces(w, {{t * q_local, q_local},
                           {d + t * q_local, q_local},
                           {2 * d + t * q_local, q_local}}));
      } else if (ends_with(name, "attn.c_proj.weight")) {
        m->make(w, {q_local, d}, rows(w, t * q_local, q_local));
      } else if (ends_with(name, "mlp.c_fc.weight")) {
        m->make(w, {d, f_local}, columns(w, {{t * f_local, f_local}}));
      } else if (ends_with(name, "mlp.c_fc.bias")) {
        m->make(w, {f_local}, pieces(w, {{t * f_local, f_local}}));
      } else if (ends_with(name, "mlp.c_proj.weight")) {
        m->make(w, {f_local, d}, rows(w, t * f_local, f_local));
      } else if (ends_with(name, "attn.c_proj.bias") || ends_with(name, "mlp.c_proj.bias")) {
        zeros_unless_first();
      } else {
        m->add(w);
      }
      continue;
    }
    // llama: nn.Linear weights are [out, in].
    if (ends_with(name, "q_proj.weight")) {
      m->make(w, {q_local, d}, rows(w, t * q_local, q_local));
    } else if (ends_with(name, "q_proj.bias")) {
      m->make(w, {q_local}, pieces(w, {{t * q_local, q_local}}));
    } else if (ends_with(name, "k_proj.weight") || ends_with(name, "v_proj.weight")) {
      m->make(w, {kv_local, d}, rows(w, kv_first * hd, kv_local));
    } else if (ends_with(name, "k_proj.bias") || ends_with(name, "v_proj.bias")) {
      m->make(w, {kv_local}, pieces(w, {{kv_first * hd, kv_local}}));
    } else if (ends_with(name, "o_proj.weight")) {
      m->make(w, {d, q_local}, columns(w, {{t * q_local, q_local}}));
    } else if (ends_with(name, "gate_proj.weight") || ends_with(name, "up_proj.weight")) {
      m->make(w, {f_local, d}, rows(w, t * f_local, f_local));
    } else if (ends_with(name, "gate_proj.bias") || ends_with(name, "up_proj.bias")) {
      m->make(w, {f_local}, pieces(w, {{t * f_local, f_local}}));
    } else if (ends_with(name, "down_proj.weight")) {
      m->make(w, {d, f_local}, columns(w, {{t * f_local, f_local}}));
    } else if (ends_with(name, "o_proj.bias") || ends_with(name, "down_proj.bias")) {
      zeros_unless_first();
    } else {
      m->add(w);
    }
  }
  m->finish();
  return std::shared_ptr<const Model>(std::move(m));
}

}  // namespace hal::runtime
