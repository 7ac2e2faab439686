// hal/plugin/c_conversions.h (the plugin kit's internals, namespace detail): how the
// adapter (hal/plugin_adapter.h) crosses the C boundary: hal_error objects made from a
// Status (with its structured detail), exceptions caught into errors, argument structs
// read by their struct_size, C enums read as integers, op descriptors converted and fully
// validated, and the objects behind the C handles.
//
// Threading: pure functions over their arguments.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>

#include "hal/plugin/plugin_interfaces.h"

namespace hal::plugin::detail {

struct Error {
  hal_status_code code;
  std::string message;
  StatusDetail detail;
  bool owned = true;  // false for the static fallback below
};

inline hal_error* make_error(const Status& s) {
  if (s.ok()) return nullptr;
  try {
    return reinterpret_cast<hal_error*>(
        new Error{hal_status_code(s.code()), s.message(), s.detail()});
  } catch (...) {
    // Could not even allocate an error: return a static one (never freed).
    static Error oom{
        HAL_STATUS_OUT_OF_MEMORY, "out of host memory while reporting an error", {}, false};
    return reinterpret_cast<hal_error*>(&oom);
  }
}
inline hal_error* make_error(StatusCode code, std::string message) {
  return make_error(Status(code, std::move(message)));
}

// Runs `fn` (returning Status) and converts exceptions into errors.
template <typename Fn>
hal_error* guard(Fn&& fn) {
  try {
    return make_error(fn());
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kOutOfMemory, "out of host memory");
  } catch (const std::exception& e) {
    return make_error(StatusCode::kInternal, std::string("plugin threw: ") + e.what());
  } catch (...) {
    return make_error(StatusCode::kInternal, "plugin threw an unknown exception");
  }
}

// Reads an argument struct written by the other side, zero-filling what it lacks.
template <typename T>
T read_args(const T* args) {
  T out;
  std::memset(static_cast<void*>(&out), 0, sizeof(T));
  if (args) std::memcpy(&out, args, std::min(sizeof(T), args->struct_size));
  out.struct_size = sizeof(T);
  return out;
}

// The integer stored in a C enum field the other side filled. Any int may be there (the
// CTS sends unknown kinds on purpose); loading it as the C++ enum type is undefined
// behaviour for values outside the enumerators' range (UBSan: "not a valid value for
// type"), so such fields are read as integers and range-checked.
template <typename Enum>
int32_t c_enum_value(const Enum& field) {
  static_assert(sizeof(Enum) == sizeof(int32_t), "C enums are int-sized on our ABIs");
  int32_t v;
  std::memcpy(&v, &field, sizeof(v));
  return v;
}

inline Status to_tensor_desc(const hal_tensor& t, TensorDesc* out) {
  if (t.rank < 0 || t.rank > HAL_MAX_RANK)
    return invalid_argument("tensor rank " + std::to_string(t.rank) + " is outside [0, 8]");
  const int32_t dtype = c_enum_value(t.dtype);
  if (dtype <= HAL_DTYPE_INVALID || dtype >= kDTypeCount)
    return invalid_argument("tensor dtype " + std::to_string(dtype) + " is unknown");
  out->dtype = DType(dtype);
  out->shape.rank = t.rank;
  for (int i = 0; i < t.rank; ++i) {
    out->shape.dims[i] = t.shape[i];
    out->strides[i] = t.strides[i];
  }
  return ok_status();
}

inline OpAttributes to_attrs(const hal_op_attrs* a) {
  OpAttributes o;
  if (!a) return o;
  const hal_op_attrs r = read_args(a);
  const size_t n = a->struct_size;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, transpose_a, n)) o.transpose_a = r.transpose_a != 0;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, transpose_b, n)) o.transpose_b = r.transpose_b != 0;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, alpha, n)) o.alpha = r.alpha;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, beta, n)) o.beta = r.beta;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, epsilon, n)) o.epsilon = r.epsilon;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, causal, n)) o.causal = r.causal != 0;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, scale, n)) o.scale = r.scale;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, gelu_approximation, n))
    o.gelu_approximation = GeluApproximation(r.gelu_approximation);
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, rope_theta, n)) o.rope_theta = r.rope_theta;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, rotary_dim, n)) o.rotary_dim = r.rotary_dim;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, rope_style, n)) o.rope_style = RopeStyle(r.rope_style);
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, kv_length, n)) o.kv_length = r.kv_length;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, q_offset, n)) o.q_offset = r.q_offset;
  if (HAL_ABI_HAS_FIELD(hal_op_attrs, perm, n))
    for (int i = 0; i < HAL_MAX_RANK; ++i) o.perm[i] = r.perm[i];
  return o;
}

// Converts a C op descriptor into an OpSpec (and, when `call` is set, an OpCall with
// buffers). Validates it fully.
inline Status to_op(const hal_op_desc* desc_in, OpSpec* spec, OpCall* call) {
  if (!desc_in) return invalid_argument("op descriptor is null");
  const hal_op_desc d = read_args(desc_in);
  const int32_t kind = c_enum_value(d.kind);
  if (kind <= HAL_OP_INVALID || kind >= kOpKindCount)
    return invalid_argument("op kind " + std::to_string(kind) + " is unknown");
  if (d.num_inputs > HAL_MAX_OP_INPUTS)
    return invalid_argument("op has " + std::to_string(d.num_inputs) + " inputs; at most 4");
  if (d.num_outputs != 1)
    return invalid_argument("op has " + std::to_string(d.num_outputs) + " outputs; expected 1");
  if (d.num_inputs > 0 && !d.inputs) return invalid_argument("op inputs pointer is null");
  if (!d.outputs) return invalid_argument("op outputs pointer is null");
  if (d.tensor_size < offsetof(hal_tensor, strides) + sizeof(int64_t) * HAL_MAX_RANK)
    return invalid_argument("op tensor_size " + std::to_string(d.tensor_size) +
                            " is smaller than a hal 1.0 tensor");
  spec->kind = OpKind(kind);
  spec->attrs = to_attrs(d.attrs);
  spec->num_inputs = int32_t(d.num_inputs);
  auto tensor_at = [&](const hal_tensor* base, uint32_t i) {
    return reinterpret_cast<const hal_tensor*>(reinterpret_cast<const char*>(base) +
                                               size_t(i) * d.tensor_size);
  };
  for (uint32_t i = 0; i < d.num_inputs; ++i) {
    Status s = to_tensor_desc(*tensor_at(d.inputs, i), &spec->inputs[i]);
    if (!s.ok())
      return s.with_context(std::string(op_kind_name(spec->kind)) + " input " + std::to_string(i));
  }
  {
    Status s = to_tensor_desc(*d.outputs, &spec->output);
    if (!s.ok()) return s.with_context(std::string(op_kind_name(spec->kind)) + " output");
  }
  HAL_RETURN_IF_ERROR(validate_op(*spec));
  if (call) {
    call->kind = spec->kind;
    call->attrs = spec->attrs;
    call->num_inputs = spec->num_inputs;
    auto bind = [&](const hal_tensor* t, const TensorDesc& desc, TensorArg* arg,
                    const std::string& what) -> Status {
      if (!t->buffer)
        return invalid_argument(std::string(op_kind_name(spec->kind)) + " " + what +
                                " has no buffer");
      auto* b = reinterpret_cast<BufferImpl*>(t->buffer);
      const uint64_t extent = desc.extent_bytes();
      if (t->offset_bytes > b->size() || extent > b->size() - t->offset_bytes)
        return invalid_argument(std::string(op_kind_name(spec->kind)) + " " + what + " " +
                                desc.to_string() + " at offset " + std::to_string(t->offset_bytes) +
                                " needs " + std::to_string(extent) + " bytes but its buffer has " +
                                std::to_string(b->size()));
      arg->buffer = b;
      arg->offset_bytes = t->offset_bytes;
      arg->desc = desc;
      return ok_status();
    };
    for (uint32_t i = 0; i < d.num_inputs; ++i)
      HAL_RETURN_IF_ERROR(bind(tensor_at(d.inputs, i), spec->inputs[i], &call->inputs[i],
                               "input " + std::to_string(i)));
    HAL_RETURN_IF_ERROR(bind(d.outputs, spec->output, &call->output, "output"));
  }
  return ok_status();
}

// Converts a C graph view (ABI 1.2) into a GraphView and validates it fully.
inline Status to_graph_view(const hal_graph_view* in, GraphView* out) {
  if (!in) return invalid_argument("graph view is null");
  const hal_graph_view g = read_args(in);
  constexpr size_t kMaxElements = size_t(1) << 24;
  if (g.num_values > kMaxElements || g.num_nodes > kMaxElements || g.num_symbols > kMaxElements)
    return invalid_argument("graph view has more than 2^24 values, nodes or symbols");
  if ((g.num_values && !g.values) || (g.num_nodes && !g.nodes) || (g.num_symbols && !g.symbols))
    return invalid_argument("graph view has arrays without storage");
  if ((g.num_values && g.value_size < offsetof(hal_graph_value, offset_symbol_stride_bytes) +
                                          sizeof(int64_t)) ||
      (g.num_nodes && g.node_size < offsetof(hal_graph_node, kv_length_symbol) + sizeof(int32_t)) ||
      (g.num_symbols && g.symbol_size < offsetof(hal_graph_symbol, max_value) + sizeof(int64_t)))
    return invalid_argument("graph view elements are smaller than ABI 1.2's");
  auto at = [](const auto* base, size_t i, size_t size) {
    return read_args(reinterpret_cast<decltype(base)>(reinterpret_cast<const char*>(base) +
                                                      i * size));
  };
  GraphView v;
  for (size_t i = 0; i < g.num_symbols; ++i) {
    const hal_graph_symbol c = at(g.symbols, i, g.symbol_size);
    v.symbols.push_back({c.name ? c.name : "", c.min_value, c.max_value});
  }
  for (size_t i = 0; i < g.num_values; ++i) {
    const hal_graph_value c = at(g.values, i, g.value_size);
    GraphValue x;
    x.name = c.name ? c.name : "";
    const int32_t kind = c_enum_value(c.kind);
    if (kind < HAL_GRAPH_VALUE_INPUT || kind > HAL_GRAPH_VALUE_INTERMEDIATE)
      return invalid_argument("graph value " + std::to_string(i) + " has kind " +
                              std::to_string(kind));
    x.kind = GraphValueKind(kind);
    x.is_output = c.is_output != 0;
    HAL_RETURN_IF_ERROR(
        to_tensor_desc(c.tensor, &x.desc).with_context("graph value " + std::to_string(i)));
    x.offset_bytes = c.tensor.offset_bytes;
    x.alias_of = c.alias_of;
    x.offset_symbol = c.offset_symbol;
    x.offset_symbol_stride_bytes = c.offset_symbol_stride_bytes;
    v.values.push_back(std::move(x));
  }
  for (size_t i = 0; i < g.num_nodes; ++i) {
    const hal_graph_node c = at(g.nodes, i, g.node_size);
    GraphNode n;
    n.name = c.name ? c.name : "";
    const int32_t op = c_enum_value(c.op);
    if (op <= HAL_OP_INVALID || op >= kOpKindCount)
      return invalid_argument("graph node " + std::to_string(i) + " has op kind " +
                              std::to_string(op));
    n.op = OpKind(op);
    n.attrs = to_attrs(c.attrs);
    if (c.num_inputs > HAL_MAX_OP_INPUTS || (c.num_inputs && !c.inputs))
      return invalid_argument("graph node " + std::to_string(i) + " has " +
                              std::to_string(c.num_inputs) + " inputs");
    n.inputs.assign(c.inputs, c.inputs + c.num_inputs);
    n.output = c.output;
    n.kv_length_symbol = c.kv_length_symbol;
    v.nodes.push_back(std::move(n));
  }
  HAL_RETURN_IF_ERROR(v.validate());
  *out = std::move(v);
  return ok_status();
}

// Checks a collective against the stream's device (what channel_impl.h promises).
inline Status check_collective_call(const CollectiveCall& c, DeviceImpl* stream_device) {
  const int32_t kind = int32_t(c.shape.kind), dtype = int32_t(c.shape.dtype);
  if (kind <= 0 || kind >= kCollectiveKindCount)
    return invalid_argument("collective kind " + std::to_string(kind) + " is unknown");
  if (dtype <= 0 || dtype >= kDTypeCount)
    return invalid_argument("collective dtype " + std::to_string(dtype) + " is unknown");
  if (c.channel->device() != stream_device)
    return invalid_argument("collective: the channel belongs to another device than the stream");
  const int32_t rank = c.channel->rank(), size = c.channel->size();
  HAL_RETURN_IF_ERROR(validate_collective(c.shape, rank, size));
  const std::string what = c.shape.describe();
  auto side = [&](BufferImpl* b, uint64_t offset, uint64_t bytes, const char* name) -> Status {
    if (bytes == 0) return ok_status();
    if (!b) return invalid_argument(what + ": no " + name + " buffer");
    if (b->device() != stream_device)
      return invalid_argument(what + ": the " + name + " buffer lives on another device");
    if (offset > b->size() || bytes > b->size() - offset)
      return invalid_argument(what + ": " + name + " range of " + std::to_string(bytes) +
                              " bytes at offset " + std::to_string(offset) + " overruns the " +
                              std::to_string(b->size()) + "-byte buffer");
    return ok_status();
  };
  const uint64_t sb = c.shape.send_bytes(rank, size), rb = c.shape.recv_bytes(rank, size);
  HAL_RETURN_IF_ERROR(side(c.send, c.send_offset, sb, "send"));
  HAL_RETURN_IF_ERROR(side(c.recv, c.recv_offset, rb, "recv"));
  if (sb > 0 && rb > 0)
    HAL_RETURN_IF_ERROR(check_collective_overlap(c.shape, rank, size, c.send == c.recv,
                                                 c.send_offset, c.recv_offset));
  return ok_status();
}

struct AdaptedPlugin {
  PluginContext context;
  std::unique_ptr<PluginImpl> impl;
};

inline BufferImpl* buf(hal_buffer* b) { return reinterpret_cast<BufferImpl*>(b); }
inline EventImpl* evt(hal_event* e) { return reinterpret_cast<EventImpl*>(e); }
inline DeviceImpl* dev(hal_device* d) { return reinterpret_cast<DeviceImpl*>(d); }

// Each stream remembers its device so ops can be checked against it.
struct StreamBox {
  std::unique_ptr<StreamImpl> impl;
  DeviceImpl* device;
};
inline StreamBox* box(hal_stream* s) { return reinterpret_cast<StreamBox*>(s); }

// Each executable remembers its device, and keeps the group names and node lists the
// host reads through executable_get_info (valid until executable_destroy).
struct ExecutableBox {
  std::unique_ptr<ExecutableImpl> impl;
  DeviceImpl* device = nullptr;
  std::once_flag structure_once;
  std::vector<FusedGroupInfo> structure;
};
inline ExecutableBox* exe(hal_executable* e) { return reinterpret_cast<ExecutableBox*>(e); }

}  // namespace hal::plugin::detail
