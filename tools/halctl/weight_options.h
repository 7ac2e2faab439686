// tools/halctl/weight_options.h: how `halctl run` and `halctl bench --model` store a
// model's weights: --quantize FORMAT (quantize on load) and --weights stored|compute,
// and the one-line summary of what the session holds.
//
//   --quantize q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k|int8|int4|int4_g32|int4_g64|
//              int4_g128|fp8|f16|bf16
//       matmul weights (projections, the LM head and a table tied to it) quantized on
//       upload from f32/f16/bf16 weights (hal/runtime/quantize.h); int8 is per-channel
//       int8, int4 group-wise int4 with zero points (groups of 128), fp8 e4m3 with one
//       scale per output channel.
//   --weights stored   f16/bf16 matmul weights stay as stored, with f32 activations
//                      (the default for GGUF files, as llama.cpp runs them)
//   --weights compute  every float weight converted to the compute dtype (the default for
//                      checkpoint directories and built-in models)
// Weights a model holds quantized (GGUF, AWQ/GPTQ) always stay quantized.
#pragma once

#include <string>

#include "common.h"
#include "hal/runtime/quantize.h"

namespace halctl {

struct WeightCliOptions {
  std::string quantize;  // --quantize
  std::string weights;   // --weights: "", "stored" or "compute"
};

void add_weight_options(po::options_description& desc, WeightCliOptions& o);

// The format --quantize names (INVALID_ARGUMENT listing the choices for any other).
hal::Result<hal::DType> parse_weight_format(const std::string& text);

// The session's weight options for `model` from the command line.
hal::Result<hal::runtime::WeightOptions> weight_options(const WeightCliOptions& o,
                                                        const hal::runtime::Model& model);

// "q4_0 x 49, q6_k x 1, f32 x 98" plus each fallback note on a line of its own.
std::string weight_summary(const hal::runtime::WeightFormats& formats);

}  // namespace halctl
