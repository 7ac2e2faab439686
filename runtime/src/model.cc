// Models: Hugging Face checkpoint directories (single or sharded safetensors), the
// built-in generated models, and writing a model back out as a checkpoint.
#include "hal/runtime/model.h"

#include "awq_gptq.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "hal/file_io.h"

namespace hal::runtime {

namespace fs = std::filesystem;

namespace {

// config.json and the shard index: JSON text, never near this size in a real checkpoint.
Result<std::string> read_text_file(const std::string& path) {
  return read_regular_file(path, "", uint64_t(64) << 20);
}

std::string shape_str(const Shape& s) { return s.to_string(); }

// Deterministic generator for built-in weights (splitmix64 + Box-Muller): the same
// numbers on every platform and compiler.
class WeightRng {
 public:
  explicit WeightRng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2 * M_PI * u2);
    has_spare_ = true;
    return r * std::cos(2 * M_PI * u2);
  }

 private:
  uint64_t state_;
  double spare_ = 0;
  bool has_spare_ = false;
};

uint64_t name_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

Result<HostTensor> Model::weight(std::string_view name) const {
  auto it = std::lower_bound(weights_.begin(), weights_.end(), name,
                             [](const auto& e, std::string_view n) { return e.first < n; });
  if (it == weights_.end() || it->first != name)
    return not_found(name_ + ": no weight '" + std::string(name) + "'");
  return it->second;
}

void Model::add_owned(std::string name, DType dtype, Shape shape, std::vector<uint8_t> bytes,
                      bool transposed, std::string source) {
  HostTensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = shape;
  t.bytes = bytes.size();
  t.transposed = transposed;
  t.source = std::move(source);
  owned_.push_back(std::move(bytes));
  t.data = owned_.back().data();
  weights_.emplace_back(std::move(name), t);
}

void Model::add_owned_f32(std::string name, Shape shape, const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(float));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  add_owned(std::move(name), DType::kF32, shape, std::move(bytes));
}

std::vector<std::string> Model::weight_names() const {
  std::vector<std::string> names;
  // A pipeline stage's model (ShardLayout) holds its own blocks only.
  const int64_t first = config_.shard.layer_begin,
                end = config_.shard.layer_end < 0 ? config_.num_layers : config_.shard.layer_end;
  for (const WeightSpec& w : expected_weights(config_)) {
    const int64_t layer = weight_layer(w.name);
    if (layer >= 0 && (layer < first || layer >= end)) continue;
    names.push_back(w.name);
  }
  if (config_.family == ModelFamily::kLlama) names.push_back("rope.inv_freq");
  return names;
}

// ---- checkpoints -----------------------------------------------------------------

Result<std::unique_ptr<Model>> open_checkpoint(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return not_found("model directory '" + dir + "' does not exist");
  if (!fs::is_directory(dir, ec)) return invalid_argument("'" + dir + "' is not a directory");
  const std::string config_path = (fs::path(dir) / "config.json").string();
  auto text = read_text_file(config_path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return not_found(dir + ": no config.json");
    return text.status();  // there but not readable as a file: say what it is
  }
  HAL_ASSIGN_OR_RETURN(ModelConfig config, parse_model_config(*text, config_path));

  std::unique_ptr<Model> m(new Model());
  m->config_ = config;
  m->name_ = dir;

  // Which file holds which tensor.
  std::map<std::string, std::string> weight_map;  // file tensor name -> file
  std::vector<std::string> files;
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  const std::string single_path = (fs::path(dir) / "model.safetensors").string();
  if (fs::exists(index_path, ec)) {
    HAL_ASSIGN_OR_RETURN(std::string index_text, read_text_file(index_path));
    auto j = nlohmann::json::parse(index_text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return invalid_argument(index_path + ": not a valid JSON object");
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object())
      return invalid_argument(index_path + ": missing 'weight_map' object");
    std::set<std::string> distinct;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string())
        return invalid_argument(index_path + ": weight_map entry '" + it.key() +
                                "' is not a file name");
      const std::string file = it.value().get<std::string>();
      if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
        return invalid_argument(index_path + ": weight_map entry '" + it.key() + "' names '" +
                                file + "', not a file in the directory");
      weight_map[it.key()] = file;
      distinct.insert(file);
    }
    files.assign(distinct.begin(), distinct.end());
  } else if (fs::exists(single_path, ec)) {
    files.push_back("model.safetensors");
  } else {
    return not_found(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  std::map<std::string, size_t> file_index;
  for (const std::string& f : files) {
    const std::string path = (fs::path(dir) / f).string();
    auto opened = SafetensorsFile::open(path);
    if (!opened.ok()) {
      if (opened.status().code() == StatusCode::kNotFound && !weight_map.empty())
        return not_found(index_path + " names shard '" + f + "', which does not exist");
      return opened.status();
    }
    file_index[f] = m->files_.size();
    m->files_.push_back(std::move(*opened));
  }

  // Every weight the config implies, under its canonical name.
  const std::vector<std::string> prefixes = config.family == ModelFamily::kGpt2
                                                ? std::vector<std::string>{"", "transformer."}
                                                : std::vector<std::string>{""};
  // The file holding tensor `name` (under any prefix) and its stored name; null when absent.
  auto locate = [&](const std::string& name, std::string* stored,
                    std::string* looked) -> Result<const SafetensorsFile*> {
    for (const std::string& p : prefixes) {
      const std::string candidate = p + name;
      if (looked) *looked += (looked->empty() ? "'" : ", '") + candidate + "'";
      if (!weight_map.empty()) {
        auto it = weight_map.find(candidate);
        if (it == weight_map.end()) continue;
        const SafetensorsFile* holder = m->files_[file_index[it->second]].get();
        if (!holder->header().find(candidate))
          return invalid_argument(index_path + " puts tensor '" + candidate + "' in '" +
                                  it->second + "', which does not hold it");
        *stored = candidate;
        return holder;
      }
      for (const auto& f : m->files_)
        if (f->header().find(candidate)) {
          *stored = candidate;
          return static_cast<const SafetensorsFile*>(f.get());
        }
    }
    return static_cast<const SafetensorsFile*>(nullptr);
  };
  for (const WeightSpec& spec : expected_weights(config)) {
    std::string stored, looked;
    // AWQ/GPTQ projections: qweight/qzeros/scales (and g_idx) repacked into group-wise int4.
    const std::string base = spec.name.substr(0, spec.name.rfind('.'));
    std::string qstored;
    const SafetensorsFile* qholder = nullptr;
    if (config.quantization && spec.name.ends_with(".weight")) {
      HAL_ASSIGN_OR_RETURN(qholder, locate(base + ".qweight", &qstored, nullptr));
    }
    if (qholder) {
      auto part = [&](const std::string& suffix,
                      bool required) -> Result<std::optional<HostTensor>> {
        std::string at;
        HAL_ASSIGN_OR_RETURN(const SafetensorsFile* f, locate(base + suffix, &at, nullptr));
        if (!f) {
          if (required)
            return not_found(dir + ": tensor '" + base + suffix + "' is missing beside '" +
                             qstored + "'");
          return std::optional<HostTensor>();
        }
        HAL_ASSIGN_OR_RETURN(HostTensor t, f->tensor(at));
        return std::optional<HostTensor>(t);
      };
      HAL_ASSIGN_OR_RETURN(HostTensor qweight, qholder->tensor(qstored));
      HAL_ASSIGN_OR_RETURN(std::optional<HostTensor> qzeros, part(".qzeros", true));
      HAL_ASSIGN_OR_RETURN(std::optional<HostTensor> scales, part(".scales", true));
      HAL_ASSIGN_OR_RETURN(std::optional<HostTensor> g_idx, part(".g_idx", false));
      // Canonical [in, out] (gpt2 Conv1D) or [out, in] (llama Linear).
      const bool in_out = config.family == ModelFamily::kGpt2;
      const int64_t in = in_out ? spec.shape[0] : spec.shape[1];
      const int64_t out = in_out ? spec.shape[1] : spec.shape[0];
      HAL_ASSIGN_OR_RETURN(std::vector<uint8_t> packed,
                           repack_awq_gptq(*config.quantization, qweight, *qzeros, *scales,
                                           g_idx ? &*g_idx : nullptr, in, out));
      m->add_owned(spec.name, awq_gptq_dtype(*config.quantization), Shape{out, in},
                   std::move(packed), in_out, qweight.source);
      continue;
    }
    HAL_ASSIGN_OR_RETURN(const SafetensorsFile* holder, locate(spec.name, &stored, &looked));
    if (!holder)
      return not_found(
          dir + ": tensor '" + spec.name + "' is missing (looked for " + looked +
          (weight_map.empty() ? " in model.safetensors)" : " in model.safetensors.index.json)"));
    HAL_ASSIGN_OR_RETURN(HostTensor t, holder->tensor(stored));
    if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16)
      return invalid_argument(holder->path() + ": tensor '" + stored + "' has dtype " +
                              std::string(dtype_name(t.dtype)) +
                              "; weights must be F32, F16 or BF16");
    if (!(t.shape == spec.shape))
      return invalid_argument(holder->path() + ": tensor '" + stored + "' has shape " +
                              shape_str(t.shape) + "; config.json implies " +
                              shape_str(spec.shape));
    t.name = spec.name;
    m->weights_.emplace_back(spec.name, t);
  }
  if (config.family == ModelFamily::kLlama) {
    const std::vector<float> inv = rope_inv_freq(config);
    m->add_owned_f32("rope.inv_freq", Shape{int64_t(inv.size())}, inv);
  }
  std::sort(m->weights_.begin(), m->weights_.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return m;
}

// ---- built-in models -------------------------------------------------------------

std::vector<std::string> builtin_model_names() {
  return {"gpt2-tiny", "gpt2-small-random", "llama-tiny", "llama-small-random"};
}

Result<std::unique_ptr<Model>> make_builtin_model(std::string_view name) {
  ModelConfig c;
  uint64_t seed = 0;
  bool permuted_head = false;  // lm_head rows = embedding rows of a permutation
  if (name == "gpt2-tiny") {
    c.family = ModelFamily::kGpt2;
    c.model_type = "gpt2";
    c.vocab_size = 512;
    c.hidden_size = 128;
    c.num_layers = 4;
    c.num_heads = 4;
    c.num_kv_heads = 4;
    c.head_dim = 32;
    c.intermediate_size = 512;
    c.max_positions = 256;
    c.norm_eps = 1e-5f;
    c.tie_word_embeddings = false;
    seed = 0x6770'7432'7469'6e79ull;
    permuted_head = true;
  } else if (name == "gpt2-small-random") {
    c.family = ModelFamily::kGpt2;
    c.model_type = "gpt2";
    c.vocab_size = 50257;
    c.hidden_size = 768;
    c.num_layers = 12;
    c.num_heads = 12;
    c.num_kv_heads = 12;
    c.head_dim = 64;
    c.intermediate_size = 3072;
    c.max_positions = 1024;
    c.tie_word_embeddings = true;
    seed = 124;
  } else if (name == "llama-tiny") {
    c.family = ModelFamily::kLlama;
    c.model_type = "llama";
    c.vocab_size = 512;
    c.hidden_size = 128;
    c.num_layers = 4;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 32;
    c.intermediate_size = 384;
    c.max_positions = 1024;
    c.norm_eps = 1e-5f;
    c.rope_theta = 500000.0;
    c.rope_scaling = RopeScaling{"llama3", 8.0, 1.0, 4.0, 256};
    c.tie_word_embeddings = false;
    seed = 0x6c6c'616d'6174'696eull;
    permuted_head = true;
  } else if (name == "llama-small-random") {
    // Llama-shaped at a size whose weights stream from memory each decode step (296 M
    // parameters, 1.2 GB in f32): grouped-query attention, 4 query heads per kv head.
    c.family = ModelFamily::kLlama;
    c.model_type = "llama";
    c.vocab_size = 32000;
    c.hidden_size = 1536;
    c.num_layers = 8;
    c.num_heads = 24;
    c.num_kv_heads = 6;
    c.head_dim = 64;
    c.intermediate_size = 4096;
    c.max_positions = 2048;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0;
    c.tie_word_embeddings = false;
    seed = 296;
  } else {
    std::string known;
    for (const std::string& n : builtin_model_names()) known += (known.empty() ? "" : ", ") + n;
    return not_found("no built-in model '" + std::string(name) + "' (built-in: " + known + ")");
  }
  std::unique_ptr<Model> m(new Model());
  m->config_ = c;
  m->name_ = std::string(name);
  m->builtin_ = true;
  const int64_t d = c.hidden_size, v = c.vocab_size;
  const std::string table =
      c.family == ModelFamily::kGpt2 ? "wte.weight" : "model.embed_tokens.weight";
  std::vector<float> embedding;  // kept for the permuted head
  for (const WeightSpec& spec : expected_weights(c)) {
    const int64_t n = spec.shape.numel();
    std::vector<float> w(static_cast<size_t>(n));
    WeightRng rng(name_seed(seed, spec.name));
    const std::string& s = spec.name;
    auto ends_with = [&](const char* suffix) {
      const size_t k = std::strlen(suffix);
      return s.size() >= k && s.compare(s.size() - k, k, suffix) == 0;
    };
    if (ends_with("norm.weight") || ends_with("ln_1.weight") || ends_with("ln_2.weight") ||
        ends_with("ln_f.weight")) {
      for (float& x : w) x = float(1.0 + 0.1 * rng.normal());
    } else if (ends_with(".bias")) {
      for (float& x : w) x = float(0.02 * rng.normal());
    } else if (s == table && permuted_head) {
      // Unit-scale rows: nearly orthogonal in 128 dims, so a row's own logit stands out.
      for (float& x : w) x = float(rng.normal() / std::sqrt(double(d)) * 4.0);
      embedding = w;
    } else if (s == "lm_head.weight" && permuted_head) {
      // Row t of the head is the embedding row of 5t + 3 (mod V): a token's residual
      // stream points at the embedding of the token it came from, so the head picks the
      // token whose row matches, walking a permutation of the vocabulary.
      for (int64_t t = 0; t < v; ++t) {
        const int64_t src = (t * 5 + 3) % v;
        std::memcpy(&w[size_t(t * d)], &embedding[size_t(src * d)], size_t(d) * sizeof(float));
      }
    } else if (s == "wpe.weight" && permuted_head) {
      for (float& x : w) x = float(0.01 * rng.normal());
    } else {
      // GPT-2's initialisation: N(0, 0.02); output projections scaled by 1/sqrt(2L).
      double stddev = 0.02;
      if (ends_with("c_proj.weight") || ends_with("o_proj.weight") || ends_with("down_proj.weight"))
        stddev /= std::sqrt(2.0 * double(c.num_layers));
      for (float& x : w) x = float(stddev * rng.normal());
    }
    m->add_owned_f32(spec.name, spec.shape, w);
  }
  if (c.family == ModelFamily::kLlama) {
    const std::vector<float> inv = rope_inv_freq(c);
    m->add_owned_f32("rope.inv_freq", Shape{int64_t(inv.size())}, inv);
  }
  std::sort(m->weights_.begin(), m->weights_.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return m;
}

Result<std::unique_ptr<Model>> load_model(std::string_view name_or_dir) {
  const std::string s(name_or_dir);
  for (const std::string& n : builtin_model_names())
    if (n == s) return make_builtin_model(s);
  std::error_code ec;
  if (!fs::exists(s, ec)) {
    std::string known;
    for (const std::string& n : builtin_model_names()) known += (known.empty() ? "" : ", ") + n;
    return not_found("model '" + s +
                     "' is neither a directory, a GGUF file nor a built-in model (" + known + ")");
  }
  if (!fs::is_directory(s, ec)) {
    // A file: GGUF by its magic (a FIFO or device is refused, not waited on: file_io.h).
    HAL_ASSIGN_OR_RETURN(OpenedFile file, open_regular_file(s, "model"));
    char magic[4] = {};
    const ssize_t got = ::read(file.fd.get(), magic, 4);
    if (got == 4 && std::memcmp(magic, "GGUF", 4) == 0) return open_gguf_model(s);
    return invalid_argument("model '" + s +
                            "' is a file but not a GGUF file (no \"GGUF\" magic); a Hugging Face "
                            "checkpoint is a directory");
  }
  return open_checkpoint(s);
}

// ---- writing ---------------------------------------------------------------------

Status save_checkpoint(const Model& model, const std::string& dir, DType file_dtype) {
  if (file_dtype != DType::kF32 && file_dtype != DType::kF16 && file_dtype != DType::kBF16)
    return invalid_argument("save_checkpoint: file dtype must be f32, f16 or bf16");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return invalid_argument(dir + ": cannot create: " + ec.message());
  {
    std::ofstream cfg(fs::path(dir) / "config.json");
    cfg << model_config_json(model.config()) << "\n";
    if (!cfg) return invalid_argument(dir + "/config.json: cannot write");
  }
  const char* st_name = file_dtype == DType::kF32   ? "F32"
                        : file_dtype == DType::kF16 ? "F16"
                                                    : "BF16";
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::vector<HostTensor> tensors;
  uint64_t offset = 0;
  for (const WeightSpec& spec : expected_weights(model.config())) {
    HAL_ASSIGN_OR_RETURN(HostTensor t, model.weight(spec.name));
    const uint64_t bytes = uint64_t(t.shape.numel()) * dtype_size(file_dtype);
    std::vector<int64_t> shape(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.rank);
    header[spec.name] = {
        {"dtype", st_name}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    tensors.push_back(t);
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // data section 8-byte aligned
  std::ofstream out(fs::path(dir) / "model.safetensors", std::ios::binary);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), std::streamsize(text.size()));
  std::vector<uint8_t> buf;
  for (const HostTensor& t : tensors) {
    const int64_t n = t.shape.numel();
    if (t.dtype == file_dtype) {
      out.write(static_cast<const char*>(t.data), std::streamsize(t.bytes));
      continue;
    }
    buf.resize(size_t(n) * dtype_size(file_dtype));
    for (int64_t i = 0; i < n; ++i)
      store_from_float(buf.data(), file_dtype, i, load_as_float(t.data, t.dtype, i));
    out.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(buf.size()));
  }
  if (!out) return invalid_argument(dir + "/model.safetensors: write failed");
  return ok_status();
}

}  // namespace hal::runtime
