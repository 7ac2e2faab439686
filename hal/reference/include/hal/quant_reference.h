// hal/quant_reference.h: the reference (de)quantization of the quantized weight formats
// whose layouts hal/op.h specifies ("Quantized weight formats").
//
// Dequantization is the ground truth every backend is compared against: per element,
// in f32, in the order hal/op.h writes it (this file is compiled without fused
// multiply-add), so GGUF blocks dequantize to exactly the values ggml gives them.
//
// Quantization (float rows to blocks) is what quantize-on-load and the tests' GGUF
// writer use. For the GGUF formats it follows the formats' usual rounding (scale from
// the largest magnitude or the min/max range, round to nearest); the K-quants' scales
// are fitted per sub-block by a small search. It need not match ggml's quantizer bit
// for bit (only the stored layout must): any valid block dequantizes identically.
//
// Contract: `n` is a multiple of dtype_block(t); rows are dtype_row_bytes(t, n) bytes.
// Unquantized float dtypes (f32, f16, bf16) are accepted too (a plain conversion), so
// callers can treat every weight dtype alike. Other dtypes are a precondition failure:
// dequantize writes zeros and quantize writes nothing.
//
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "hal/dtype.h"

namespace hal::reference {

void dequantize_row(DType t, const void* row, float* out, int64_t n);
void quantize_row(DType t, const float* in, void* row, int64_t n);

// `rows` rows of `n` elements stored back to back.
std::vector<float> dequantize_rows(DType t, const void* data, int64_t rows, int64_t n);
std::vector<uint8_t> quantize_rows(DType t, const float* in, int64_t rows, int64_t n);

// fp8 e4m3fn (no infinities; 0x7f/0xff are NaN; largest finite 448): exact decode, and
// encode rounding to nearest even with saturation to +-448 (NaN stays NaN).
float fp8_e4m3_to_float(uint8_t b);
uint8_t float_to_fp8_e4m3(float f);

}  // namespace hal::reference
