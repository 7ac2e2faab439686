// The CPU backend's op dispatch, support query and the embedding gather.
#include "cpu_kernels.h"

#include <cstring>
#include <string>

#include "cpu_ops.h"
#include "cpu_quant.h"
#include "cpu_simd.h"
#include "cpu_threading.h"

namespace hal::cpu {

namespace {

bool is_fp8(DType t) { return t == DType::kFP8E4M3 || t == DType::kFP8E5M2; }

std::string index_string(const Shape& shape, int64_t flat) {
  std::string s;
  for (int d = shape.rank - 1; d >= 0; --d) {
    const int64_t i = shape.dims[d] > 0 ? flat % shape.dims[d] : 0;
    flat = shape.dims[d] > 0 ? flat / shape.dims[d] : 0;
    s = std::to_string(i) + (s.empty() ? "" : ", ") + s;
  }
  return "[" + s + "]";
}

}  // namespace

Status embedding(const OpSpec& spec, const void* const* in, void* out) {
  const TensorDesc& table = spec.inputs[0];
  const TensorDesc& ids = spec.inputs[1];
  const TensorDesc& o = spec.output;
  const int64_t vocab = table.shape[0], dim = table.shape[1];
  const int64_t count = ids.numel();
  if (count == 0) return ok_status();
  // Element offset of id number `n` (row-major over ids' shape).
  auto id_at = [&](int64_t n) -> int64_t {
    int64_t off = 0;
    for (int d = ids.shape.rank - 1; d >= 0; --d) {
      off += (n % ids.shape.dims[d]) * ids.strides[d];
      n /= ids.shape.dims[d];
    }
    return ids.dtype == DType::kI64 ? static_cast<const int64_t*>(in[1])[off]
                                    : static_cast<const int32_t*>(in[1])[off];
  };
  // Check every id first so a bad one leaves the output untouched.
  for (int64_t n = 0; n < count; ++n) {
    const int64_t id = id_at(n);
    if (id < 0 || id >= vocab)
      return invalid_argument("embedding: id " + std::to_string(id) + " at ids" +
                              index_string(ids.shape, n) + " is outside the table's [0, " +
                              std::to_string(vocab) + ") rows");
  }
  if (dim == 0) return ok_status();
  // Output rows: o is [ids..., D]; its row n starts at the unravelled offset.
  const int r = o.shape.rank;
  const int64_t esz = dtype_size(o.dtype);
  if (is_quantized(table.dtype)) {
    // Whole rows dequantized (the validated view steps whole rows).
    const uint64_t row_bytes = dtype_row_bytes(table.dtype, dim);
    const int64_t row_step = table.strides[0] / dim;
    parallel_for(count, std::max<int64_t>(1, 4096 / dim), [&](int64_t n0, int64_t n1) {
      float* row = scratch_floats(Scratch::kLeaf0, size_t(dim));
      for (int64_t n = n0; n < n1; ++n) {
        int64_t oo = 0, rem = n;
        for (int d = r - 2; d >= 0; --d) {
          oo += (rem % o.shape.dims[d]) * o.strides[d];
          rem /= o.shape.dims[d];
        }
        dequantize_row_fast(
            table.dtype,
            static_cast<const uint8_t*>(in[0]) + uint64_t(id_at(n) * row_step) * row_bytes, row,
            dim);
        store_f32(static_cast<char*>(out) + oo * esz, o.dtype, o.strides[r - 1], dim, row);
      }
    });
    return ok_status();
  }
  const bool dense = table.strides[1] == 1 && o.strides[r - 1] == 1;
  parallel_for(count, std::max<int64_t>(1, 16384 / dim), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      int64_t oo = 0, rem = n;
      for (int d = r - 2; d >= 0; --d) {
        oo += (rem % o.shape.dims[d]) * o.strides[d];
        rem /= o.shape.dims[d];
      }
      const char* src = static_cast<const char*>(in[0]) + id_at(n) * table.strides[0] * esz;
      char* dst = static_cast<char*>(out) + oo * esz;
      if (dense) {
        std::memcpy(dst, src, size_t(dim * esz));
      } else {
        for (int64_t e = 0; e < dim; ++e)
          std::memcpy(dst + e * o.strides[r - 1] * esz, src + e * table.strides[1] * esz,
                      size_t(esz));
      }
    }
  });
  return ok_status();
}

namespace {

Status dispatch_op(const OpSpec& spec, const void* const* inputs, void* output) {
  switch (spec.kind) {
    case OpKind::kMatmul:
      return matmul(spec, inputs, output);
    case OpKind::kAdd:
    case OpKind::kMul:
      return binary(spec, inputs, output);
    case OpKind::kScale:
    case OpKind::kGelu:
    case OpKind::kSilu:
      return unary(spec, inputs, output);
    case OpKind::kLayerNorm:
    case OpKind::kRmsNorm:
      return norm(spec, inputs, output);
    case OpKind::kSoftmax:
      return softmax(spec, inputs, output);
    case OpKind::kRotary:
      return rotary(spec, inputs, output);
    case OpKind::kAttention:
      return attention(spec, inputs, output);
    case OpKind::kEmbedding:
      return embedding(spec, inputs, output);
    case OpKind::kTranspose:
      return transpose(spec, inputs, output);
    case OpKind::kCast:
      return cast(spec, inputs, output);
    case OpKind::kArgmax:
      return argmax(spec, inputs, output);
    case OpKind::kInvalid:
      break;
  }
  return invalid_argument("cpu: unknown op kind " + std::to_string(int(spec.kind)));
}

}  // namespace

Status run_op(const OpSpec& spec, const void* const* inputs, void* output) {
  Status s = dispatch_op(spec, inputs, output);
  trim_outer_scratch(size_t(64) << 20);
  return s;
}

bool kernel_supports(const OpSpec& spec) {
  // Every op and dtype of the op set except fp8, which exists for planning only.
  for (int i = 0; i < spec.num_inputs; ++i)
    if (is_fp8(spec.inputs[i].dtype)) return false;
  return !is_fp8(spec.output.dtype) && spec.kind != OpKind::kInvalid;
}

}  // namespace hal::cpu
