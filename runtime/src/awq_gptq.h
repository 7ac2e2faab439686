// runtime/src/awq_gptq.h (internal): AWQ and GPTQ 4-bit projections repacked into the
// HAL's group-wise int4 format (hal/op.h: i4_g32/64/128, [out, in], per group an f16
// scale, a u8 zero point and the nibbles), losslessly: the same q, zero and scale.
//
// Layouts read (in = input features, out = output features, G = group size):
//  AWQ (version "gemm"): qweight int32 [in, out/8], the 8 nibbles of word (k, c) hold
//    output features 8c + {0, 2, 4, 6, 1, 3, 5, 7} (nibble i at bits 4i); qzeros int32
//    [in/G, out/8] packed the same way; scales f16 [in/G, out]. w = (q - z) x s.
//  GPTQ: qweight int32 [in/8, out], nibble i of word (r, n) holds input feature 8r + i;
//    qzeros int32 [in/G, out/8], nibble i holds output feature 8c + i, stored as z - 1
//    in the original "gptq" checkpoint format (z in "gptq_v2"); scales f16 [in/G, out];
//    optional g_idx int32 [in], which must be k / G (act-order permutations are refused).
// Errors name the tensor and what is wrong (dtype, shape, g_idx order).
#pragma once

#include <cstdint>
#include <vector>

#include "hal/runtime/model_config.h"
#include "hal/runtime/safetensors.h"

namespace hal::runtime {

DType awq_gptq_dtype(const QuantizationConfig& q);
Result<std::vector<uint8_t>> repack_awq_gptq(const QuantizationConfig& q, const HostTensor& qweight,
                                             const HostTensor& qzeros, const HostTensor& scales,
                                             const HostTensor* g_idx, int64_t in, int64_t out);

}  // namespace hal::runtime
