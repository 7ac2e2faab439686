// hal/runtime/quantize.h: how a model's weights are stored on the devices (dtype and
// orientation per weight), quantization on load, and the conversions between a weight
// as a model holds it and as a device stores it.
//
// Which weights: "matmul weights" are those a matmul reads as B: every 2-D projection,
// the LM head, and the embedding table when the head is tied to it. Norm weights,
// biases, untied embedding tables and gpt2's position table are gathered or broadcast,
// never streamed through a matmul.
//
// plan_weight_formats() decides, per weight:
//  - weights the model holds quantized (GGUF, AWQ/GPTQ) stay as stored;
//  - with `quantize`, matmul weights become that format, stored [out, in] (rows along
//    the reduction dim, as hal/op.h's quantized B must be); a weight whose rows are not a
//    whole number of the format's blocks takes q8_0 when its rows allow it, otherwise
//    stays unquantized, with a note saying which and why;
//  - with `keep_stored`, float matmul weights keep their stored dtype (f16 stays f16 with
//    f32 activations, as llama.cpp runs f16 files);
//  - everything else takes the compute dtype.
// Orientation follows the model (a GGUF gpt2 projection stays [out, in]) unless
// quantization needs [out, in].
//
// convert_weight() produces a device's bytes: a copy-free view when nothing changes,
// otherwise dequantized / transposed / converted / quantized data. Quantizing uses
// hal/reference's quantizers, spread over the machine's cores.
//
// Threading: pure functions (convert_weight uses threads internally).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hal/runtime/model.h"

namespace hal::runtime {

struct WeightFormat {
  DType dtype = DType::kF32;
  bool transposed = false;  // 2-D: stored as the transpose of its canonical shape
};

struct WeightFormats {
  std::map<std::string, WeightFormat, std::less<>> by_name;
  std::vector<std::string> notes;  // fallbacks taken, one line each
  const WeightFormat* find(std::string_view name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : &it->second;
  }
};

struct WeightOptions {
  bool keep_stored = false;
  std::optional<DType> quantize;  // a quantized dtype, or f16/bf16/f32
};

bool is_matmul_weight(const ModelConfig& config, std::string_view name);

Result<WeightFormats> plan_weight_formats(const Model& model, DType compute_dtype,
                                          const WeightOptions& options);

// A weight's bytes as a device stores them: `data` points into the model (nothing
// converted) or into `storage`.
struct ConvertedWeight {
  const void* data = nullptr;
  uint64_t bytes = 0;
  std::vector<uint8_t> storage;
};
Result<ConvertedWeight> convert_weight(const HostTensor& t, const WeightFormat& format);

// `t`'s values as f32, in its canonical orientation (transposed == false) or the
// transposed one.
Result<std::vector<float>> weight_values(const HostTensor& t, bool transposed);

// The shape `t` has when stored with `transposed` (2-D shapes swap).
Shape stored_shape(const Shape& canonical, bool transposed);

}  // namespace hal::runtime
