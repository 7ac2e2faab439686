// backends/cuda/cuda_quant.h: the CUDA backend's ops with quantized weights (hal/op.h
// formats): matmul whose B is quantized ([N, K] with transpose_b) and embedding gathers
// from quantized tables (internal; cuda_quant.cc says how they run).
//
// Contract as cuda_ops.h: validated OpCalls that quant_op_supported() accepted, enqueued
// on the stream with its mutex held; launch failures returned.
#pragma once

#include "cuda_internal.h"
#include "cuda_kernels.h"
#include "hal/op.h"
#include "hal/plugin_adapter.h"

namespace hal::cuda {

// For a spec with a quantized operand: whether these kernels take it.
bool quant_op_supported(const OpSpec& spec);
Status run_quant_matmul(CudaStream& stream, const plugin::OpCall& op);
// Completes an embedding's arguments for a quantized table (row bytes, whole-row steps);
// the embedding kernel then decodes its rows.
void quant_embedding_args(const plugin::OpCall& op, EmbeddingArgs& args);

}  // namespace hal::cuda
