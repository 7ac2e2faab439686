// backends/cpu/cpu_kernels.h: the CPU backend's kernels for the whole op set.
//
// Contract: run_op() executes a validated op on host memory (pointers at element
// [0..0] of each tensor, arbitrary non-negative strides, 0 = broadcast) and returns
// INVALID_ARGUMENT for data-dependent failures (an embedding id or a kv_lengths entry out
// of range), before writing any output. f16/bf16 are computed in f32. Results match
// hal::reference::execute within f32 rounding of the accumulation order (exactly for
// data movement: transpose, embedding, cast).
//
// How: kernels are parallel over the thread budget in one oneTBB arena (cpu_threading.h).
// Matmul goes through OpenBLAS sgemm with the same thread count (cpu_blas.h; f16/bf16 and
// awkward strides packed into f32 first), except decode-shaped products (up to 8 rows of
// A), which the backend's own streaming kernels run at memory bandwidth, reading weights
// in their stored dtype ([K, N] or [N, K]), and, on AVX2 and up, prefill with f16/bf16
// weights stored [N, K], which converts 16 weight rows at a time into f32 panels for an
// FMA register tile (cpu_panel_kernels.inc). Attention is flash-style (key blocks
// with an online softmax). Quantized weights (matmul's B, embedding tables) run through
// cpu_quant.h. kernel_supports() is false only for plain fp8 tensors, which exist for
// planning.
//
// Threading: run_op may be called concurrently (from several streams) on distinct outputs.
#pragma once

#include "hal/op.h"
#include "hal/status.h"

namespace hal::cpu {

Status run_op(const OpSpec& spec, const void* const* inputs, void* output);
bool kernel_supports(const OpSpec& spec);
// Makes this thread's kernel scratch blocks exist now. A thread_local with a destructor, in a
// library loaded with dlopen, is set up at its first use on each thread (its block
// allocated, its destructor registered with the C runtime): on a stream's new worker
// thread that took 14-47 us inside the first op's record. Stream workers call this
// before their first command.
void prepare_kernel_thread();

}  // namespace hal::cpu
