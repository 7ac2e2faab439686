// backends/cpu/cpu_quant.h: the CPU backend's products with quantized weights
// (hal/op.h, "Quantized weight formats"), internal.
//
// How (decode: up to 8 rows of A): A's rows are quantized to int8 blocks of 32 (one f32
// scale per block, as GGUF engines do for their q8 activations), and each weight block
// is multiplied with them
// in integer arithmetic (AVX2 maddubs, or AVX-512 VNNI dpbusd where the CPU has it),
// its scales and offsets applied in f32 per block. Products with f32 accumulate per
// block, so the result differs from the f64 reference by A's int8 rounding (about
// 2^-9 of each block's largest element) plus f32 accumulation. q4_0, q8_0 and the K-quants
// in memory the plugin allocated are read, in decode, from a copy in groups of 8 rows
// ("q4_0x8", "q8_0x8", "q4_Kx8", "q5_Kx8", "q6_Kx8": made at their first decode product and
// kept by cpu_weight_cache.h; the layouts are in cpu_quant_x8_kernels.inc): one integer
// multiply-add then serves 8 rows, and a core reads four such streams at once. fp8
// weights are multiplied with A in f32 (no int8 rounding). Every format has a scalar version for
// CPUs without AVX2; the widest version the CPU runs is chosen once, at first use
// (HAL_CPU_ISA caps it, as for the other kernels). Prefill (9 rows or more) with q8_0,
// q4_0 and int8 weights on AVX2 and up runs through integer panels (cpu_quant_tiles.inc:
// unpacked once per 8 weight rows, multiplied by register tiles of A's int8 rows; A
// rounded as for decode, so prompt and generated tokens share the arithmetic, as in
// llama.cpp; ~1.5x faster than f32 panels). The other formats, and these with
// HAL_CPU_INT8_PREFILL=0, use A exactly: 16 weight rows at a time are dequantized into f32
// and multiplied by the FMA panel tile of cpu_panel_kernels.inc (on the baseline ISA, f32
// panels through OpenBLAS sgemm).
//
// Contract: quant_matmul() takes a validated matmul whose B is quantized ([.., N, K],
// transpose_b); A may be f32, f16 or bf16 with any strides; out likewise. Batch dims
// broadcast as for any matmul. dequantize_row_fast() is the embedding gather's
// dequantization (values identical to hal/reference's).
//
// Threading: as the other kernels (cpu_ops.h).
#pragma once

#include <cstdint>
#include <string>

#include "hal/op.h"
#include "hal/status.h"

namespace hal::cpu {

Status quant_matmul(const OpSpec& spec, const void* const* in, void* out);
void dequantize_row_fast(DType t, const void* row, float* out,
                         int64_t n);  // exact (reference values)
// The instruction set the quantized kernels run with ("avx512-vnni", "avx2", "scalar").
std::string quant_kernel_isa();
// True when a product with `rows` rows of A and `weights` dequantizes B into f32 panels
// (prefill) instead of rounding A to int8; A is then used exactly.
bool quant_uses_panels(DType weights, int64_t rows);

// A's rows quantized for the integer kernels: row r, block b (32 elements) has int8
// values q[r * k + 32b ..], scale d[r * blocks + b] and ds[2 (r * blocks + b) + h] =
// d * (sum of the block's 16-element half h of q).
struct QuantActs {
  int64_t k = 0;
  int64_t blocks = 0;  // k / 32
  const int8_t* q = nullptr;
  const float* d = nullptr;
  const float* ds = nullptr;
  const float* dsum = nullptr;  // dsum[r * blocks + b] = d * (sum of the block's q)
  // lanes[8 (r * blocks + b) + i] = offset x (sum of q[4i .. 4i + 3] of that block), for
  // formats whose offset is an integer multiple of the scale (cpu_quant_kernels.inc).
  const int32_t* lanes = nullptr;
  const float* f = nullptr;  // the rows in f32 (fp8 weights multiply these)
};

}  // namespace hal::cpu
