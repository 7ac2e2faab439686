// hal/runtime/model.h: a transformer's architecture and weights on the host, from a
// Hugging Face checkpoint directory or built in.
//
// Checkpoint directories (Hugging Face layout):
//   DIR/config.json                  the architecture (hal/runtime/model_config.h)
//   DIR/model.safetensors            one file, or
//   DIR/model.safetensors.index.json {"weight_map": {"name": "model-00001-of-00002.safetensors"}}
//                                    with the shards it names.
// Files are memory mapped (hal/runtime/safetensors.h); nothing is copied at load.
// GPT-2 weight names are accepted with or without the "transformer." prefix; a tied
// "lm_head.weight" copy in the file is ignored.
//
// GGUF files (hal/runtime/gguf.h; architectures "gpt2" and "llama"): the architecture
// from the metadata (hyper-parameters, tied output when there is no "output.weight",
// grouped-query heads, rope base, dimension count and linear scaling, llama3 frequency
// factors from "rope_freqs.weight"), tensors memory-mapped in their stored types (F32,
// F16, BF16 and the quantized formats of hal/op.h). Their projections are stored
// [out, in] (HostTensor::transposed for gpt2's Conv1D weights), and llama's q/k rows are
// permuted for GGUF's interleaved rotary embedding (config().rope_style).
// AWQ/GPTQ checkpoints (a quantization_config in config.json, quant_method "awq" or
// "gptq", 4 bits, groups of 32, 64 or 128) load their qweight/qzeros/scales repacked
// into group-wise int4 (i4_g32/64/128), [out, in].
//
// Built-in models (no files; weights generated deterministically from a seed):
//   gpt2-tiny          4 layers, hidden 128, vocab 512 (~1.2 M parameters). Its untied
//                      lm_head rows are the embedding rows of a fixed permutation of the
//                      vocabulary, so greedy decoding walks through varied tokens with a
//                      clear top-1 margin (same greedy tokens on every device, bf16 too).
//   gpt2-small-random  GPT-2 small's shape (124 M parameters, tied), N(0, 0.02)
//                      weights: for benchmarks.
//   llama-tiny         4 layers, hidden 128, 4 heads / 2 kv heads, llama3 rope scaling.
//   llama-small-random 8 layers, hidden 1536, 24 heads / 6 kv heads, ffn 4096, vocab
//                      32000 (296 M parameters, untied), N(0, 0.02) weights: for
//                      benchmarks of a Llama shape whose weights stream from memory.
//
// Contract
// - load_model() checks everything before returning: config keys, that every weight
//   the config implies exists with the implied shape, and that weights are F32, F16 or
//   BF16. Errors name the directory or file and the tensor:
//     "DIR/model.safetensors: tensor 'h.0.attn.c_attn.weight' has shape [768, 2303];
//      config.json implies [768, 2304]".
//   A missing directory, config.json or weights file is NOT_FOUND; malformed content is
//   INVALID_ARGUMENT (DATA_LOSS for truncated files).
// - weight(name) takes canonical names (model_config.h: expected_weights) plus the
//   derived "rope.inv_freq" (llama, f32). HostTensor data stays valid while the Model
//   lives.
//
// Threading: immutable after load; safe to read from several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hal/runtime/gguf.h"
#include "hal/runtime/model_config.h"
#include "hal/runtime/safetensors.h"

namespace hal::runtime {

class Model {
 public:
  virtual ~Model() = default;
  const ModelConfig& config() const { return config_; }
  // The directory, or the built-in name.
  const std::string& name() const { return name_; }
  bool builtin() const { return builtin_; }
  Result<HostTensor> weight(std::string_view name) const;
  // Every weight the model holds (canonical names), in expected_weights order.
  std::vector<std::string> weight_names() const;
  // A GGUF file's header (metadata such as tokenizer.ggml.*); null for other models.
  const GgufHeader* gguf() const { return gguf_ ? &gguf_->header() : nullptr; }

 protected:
  friend Result<std::unique_ptr<Model>> open_checkpoint(const std::string& dir);
  friend Result<std::unique_ptr<Model>> make_builtin_model(std::string_view name);
  friend Result<std::unique_ptr<Model>> open_gguf_model(const std::string& path);
  Model() = default;
  // Adds a weight whose bytes the model owns (generated or converted).
  void add_owned(std::string name, DType dtype, Shape shape, std::vector<uint8_t> bytes, bool transposed = false,
                 std::string source = "");
  // The same for f32 values (generated weights, rope.inv_freq).
  void add_owned_f32(std::string name, Shape shape, const std::vector<float>& values);
  ModelConfig config_;
  std::string name_;
  bool builtin_ = false;
  std::vector<std::pair<std::string, HostTensor>> weights_;  // sorted by name
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unique_ptr<GgufFile> gguf_;
  std::vector<std::vector<uint8_t>> owned_;  // generated weights and derived tensors
};

std::vector<std::string> builtin_model_names();
Result<std::unique_ptr<Model>> make_builtin_model(std::string_view name);
Result<std::unique_ptr<Model>> open_checkpoint(const std::string& dir);
Result<std::unique_ptr<Model>> open_gguf_model(const std::string& path);
// A built-in name, a checkpoint directory or a GGUF file. An unknown name that is
// neither is NOT_FOUND listing the built-in names.
Result<std::unique_ptr<Model>> load_model(std::string_view name_or_dir);

// Writes `model` as a GGUF file in the conventions llama.cpp reads (gpt2 projections
// [out, in], llama q/k rows permuted for interleaved rope). Weights that matmuls read
// (and embedding tables) are stored as `format` (f32, f16, bf16 or a GGUF quantized
// type; a weight whose rows are not a whole number of the format's blocks stays f32);
// norms and biases as f32. `extra` metadata (e.g. another file's tokenizer.ggml.*) is
// copied in. For tests (our own writer makes their files) and for handing a model to
// other engines.
struct GgufExportOptions {
  DType format = DType::kF32;
  std::vector<std::pair<std::string, GgufValue>> extra;
};
Status save_gguf(const Model& model, const std::string& path, const GgufExportOptions& options);

// Writes `model` as a Hugging Face checkpoint: DIR/config.json and DIR/model.safetensors
// with weights converted to `file_dtype` (f32, f16 or bf16). For benchmarks that feed
// the same checkpoint to other implementations. DIR is created if missing.
Status save_checkpoint(const Model& model, const std::string& dir, DType file_dtype);

}  // namespace hal::runtime
