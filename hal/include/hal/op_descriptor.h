// hal/op_descriptor.h: an op bound to buffers, ready to dispatch on a stream.
//
// Contract
// - A TensorRef is a Buffer plus a byte offset plus a TensorDesc (dtype, shape,
//   strides). The view must lie inside the buffer (checked at dispatch).
// - Buffers of an op must belong to the stream's device.
// - Semantics of each op are in hal/op.h.
//
// Threading: value types.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>

#include "hal/buffer.h"
#include "hal/op.h"

namespace hal {

struct TensorRef {
  const Buffer* buffer = nullptr;
  uint64_t offset_bytes = 0;
  TensorDesc desc;

  // A dense row-major view of `shape` at `offset_bytes` of `buffer`.
  static TensorRef contiguous(const Buffer& buffer, DType dtype, Shape shape,
                              uint64_t offset_bytes = 0) {
    return TensorRef{&buffer, offset_bytes, TensorDesc::contiguous(dtype, shape)};
  }
};

struct OpDescriptor {
  OpKind kind = OpKind::kInvalid;
  OpAttributes attrs;
  int32_t num_inputs = 0;
  std::array<TensorRef, kMaxOpInputs> inputs{};
  TensorRef output;

  OpDescriptor() = default;
  OpDescriptor(OpKind k, std::initializer_list<TensorRef> ins, TensorRef out,
               OpAttributes a = {})
      : kind(k), attrs(a), output(out) {
    for (const TensorRef& t : ins)
      if (num_inputs < kMaxOpInputs) inputs[num_inputs++] = t;
  }

  // The op without its buffers.
  OpSpec spec() const {
    OpSpec s;
    s.kind = kind;
    s.attrs = attrs;
    s.num_inputs = num_inputs;
    for (int i = 0; i < num_inputs; ++i) s.inputs[i] = inputs[i].desc;
    s.output = output.desc;
    return s;
  }
};

}  // namespace hal
