// The graph IR: builder, shape inference of shape-only ops, validation and ordering.
// Over 800 lines on purpose: the builder (including collective nodes) and validate() check
// the same node invariants through one infer_node() and the helpers beside it; split, those
// would have to become a shared internal header for one class.
#include "hal/runtime/graph.h"

#include <algorithm>
#include <array>
#include <functional>
#include <queue>

namespace hal::runtime {

namespace {

std::string descs_string(std::span<const TensorDesc> descs) {
  std::string s;
  for (size_t i = 0; i < descs.size(); ++i) {
    if (i) s += ", ";
    s += descs[i].to_string();
  }
  return s;
}

Status node_error(const Node& node, std::span<const TensorDesc> inputs, const std::string& msg) {
  std::string text = node_label(node) + ": " + msg;
  if (!inputs.empty()) text += "; inputs " + descs_string(inputs);
  return invalid_argument(text);
}

bool same_desc(const TensorDesc& a, const TensorDesc& b) {
  if (a.dtype != b.dtype || !(a.shape == b.shape)) return false;
  for (int i = 0; i < a.shape.rank; ++i)
    if (a.shape.dims[i] != 1 && a.strides[i] != b.strides[i]) return false;
  return true;
}

}  // namespace

std::string node_label(const Node& node) {
  std::string kind = node.kind == NodeKind::kOp ? std::string(op_kind_name(node.op))
                                                : std::string(node_kind_name(node.kind));
  return "node '" + node.name + "' (" + kind + ")";
}

OpSpec node_op_spec(const Graph& graph, NodeId id) {
  const Node& node = graph.node(id);
  std::array<TensorDesc, kMaxOpInputs> inputs{};
  const size_t n = std::min(node.inputs.size(), size_t(kMaxOpInputs));
  for (size_t i = 0; i < n; ++i) inputs[i] = graph.value(node.inputs[i]).desc;
  return node_op<OpSpec, TensorDesc>(node, std::span(inputs.data(), n),
                                     graph.value(node.outputs[0]).desc);
}

std::string_view value_kind_name(ValueKind kind) {
  switch (kind) {
    case ValueKind::kInput:
      return "input";
    case ValueKind::kConstant:
      return "constant";
    case ValueKind::kState:
      return "state";
    case ValueKind::kIntermediate:
      return "intermediate";
  }
  return "unknown";
}

std::string_view node_kind_name(NodeKind kind) {
  switch (kind) {
    case NodeKind::kOp:
      return "op";
    case NodeKind::kReshape:
      return "reshape";
    case NodeKind::kPermute:
      return "permute";
    case NodeKind::kSlice:
      return "slice";
    case NodeKind::kSplit:
      return "split";
    case NodeKind::kConcat:
      return "concat";
    case NodeKind::kWriteSlice:
      return "write_slice";
    case NodeKind::kTransfer:
      return "transfer";
    case NodeKind::kCollective:
      return "collective";
  }
  return "unknown";
}

bool is_view_kind(NodeKind kind) {
  return kind == NodeKind::kReshape || kind == NodeKind::kPermute || kind == NodeKind::kSlice ||
         kind == NodeKind::kSplit;
}

std::optional<std::array<int64_t, kMaxRank>> view_strides(const TensorDesc& desc,
                                                          const Shape& shape) {
  std::array<int64_t, kMaxRank> out{};
  if (desc.numel() != shape.numel()) return std::nullopt;
  if (desc.numel() == 0 || desc.shape.rank == 0) {
    return TensorDesc::contiguous(desc.dtype, shape).strides;
  }
  // torch's computeStride: walk the old dims from the innermost, grouping dims that
  // are contiguous with each other ("chunks"); each chunk must be made of whole new dims.
  int view_d = shape.rank - 1;
  int64_t chunk_base_stride = desc.strides[desc.shape.rank - 1];
  int64_t tensor_numel = 1;
  int64_t view_numel = 1;
  for (int tensor_d = desc.shape.rank - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= desc.shape.dims[tensor_d];
    if (tensor_d == 0 || (desc.shape.dims[tensor_d - 1] != 1 &&
                          desc.strides[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape.dims[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape.dims[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (tensor_d > 0) {
        chunk_base_stride = desc.strides[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

Result<std::vector<TensorDesc>> infer_node(const Node& node, std::span<const TensorDesc> in,
                                           std::vector<uint64_t>* offsets_bytes) {
  std::vector<uint64_t> offsets;
  std::vector<TensorDesc> out;
  auto err = [&](const std::string& msg) { return node_error(node, in, msg); };
  auto check_axis = [&](const TensorDesc& t, int32_t axis) -> Status {
    if (axis < 0 || axis >= t.shape.rank)
      return err("axis " + std::to_string(axis) + " outside the " + std::to_string(t.shape.rank) +
                 " dims of " + t.shape.to_string());
    return ok_status();
  };
  auto need_inputs = [&](size_t lo, size_t hi) -> Status {
    if (in.size() < lo || in.size() > hi)
      return err("takes " + std::to_string(lo) + (hi != lo ? "-" + std::to_string(hi) : "") +
                 " inputs, got " + std::to_string(in.size()));
    return ok_status();
  };
  switch (node.kind) {
    case NodeKind::kOp: {
      if (in.size() > size_t(kMaxOpInputs))
        return err("takes at most " + std::to_string(kMaxOpInputs) + " inputs");
      auto inferred = infer_output(node.op, node.attrs, in.data(), int32_t(in.size()));
      if (!inferred.ok()) {
        // infer_output's message starts with the op name, which node_label repeats.
        std::string msg = inferred.status().message();
        const std::string prefix = std::string(op_kind_name(node.op)) + ": ";
        if (msg.rfind(prefix, 0) == 0) msg = msg.substr(prefix.size());
        return err(msg);
      }
      TensorDesc o = *inferred;
      if (node.op == OpKind::kCast) {
        if (node.output_dtype == DType::kInvalid) return err("cast needs an output dtype");
        o.dtype = node.output_dtype;
      } else if (node.output_dtype != DType::kInvalid) {
        const bool quantized_gather =
            node.op == OpKind::kEmbedding && !in.empty() && is_quantized(in[0].dtype);
        if (node.op != OpKind::kMatmul && !quantized_gather)
          return err("only cast, matmul and gathers from quantized tables take an output dtype");
        o.dtype = node.output_dtype;
      }
      const OpSpec spec = node_op<OpSpec>(node, in, o);
      if (Status s = validate_op(spec); !s.ok()) {
        std::string msg = s.message();
        const std::string prefix = std::string(op_kind_name(node.op)) + ": ";
        if (msg.rfind(prefix, 0) == 0) msg = msg.substr(prefix.size());
        return err(msg);
      }
      out.push_back(o);
      offsets.push_back(0);
      break;
    }
    case NodeKind::kReshape: {
      HAL_RETURN_IF_ERROR(need_inputs(1, 1));
      const TensorDesc& x = in[0];
      if (node.new_shape.rank < 0 || node.new_shape.rank > kMaxRank)
        return err("target rank outside [0, 8]");
      if (x.numel() != node.new_shape.numel())
        return err("cannot reshape " + x.shape.to_string() + " (" + std::to_string(x.numel()) +
                   " elements) to " + node.new_shape.to_string() + " (" +
                   std::to_string(node.new_shape.numel()) + " elements)");
      auto strides = view_strides(x, node.new_shape);
      if (!strides)
        return err("the layout " + x.to_string() + " cannot be viewed as " +
                   node.new_shape.to_string() + " without a copy");
      TensorDesc o;
      o.dtype = x.dtype;
      o.shape = node.new_shape;
      o.strides = *strides;
      out.push_back(o);
      offsets.push_back(0);
      break;
    }
    case NodeKind::kPermute: {
      HAL_RETURN_IF_ERROR(need_inputs(1, 1));
      const TensorDesc& x = in[0];
      bool seen[kMaxRank] = {};
      TensorDesc o;
      o.dtype = x.dtype;
      o.shape.rank = x.shape.rank;
      for (int i = 0; i < x.shape.rank; ++i) {
        const int32_t p = node.attrs.perm[i];
        if (p < 0 || p >= x.shape.rank || seen[p])
          return err("perm is not a permutation of the dims of " + x.shape.to_string());
        seen[p] = true;
        o.shape.dims[i] = x.shape.dims[p];
        o.strides[i] = x.strides[p];
      }
      out.push_back(o);
      offsets.push_back(0);
      break;
    }
    case NodeKind::kSlice:
    case NodeKind::kSplit: {
      HAL_RETURN_IF_ERROR(need_inputs(1, 1));
      const TensorDesc& x = in[0];
      HAL_RETURN_IF_ERROR(check_axis(x, node.axis));
      const int64_t dim = x.shape.dims[node.axis];
      std::vector<std::pair<int64_t, int64_t>> pieces;  // start, length
      if (node.kind == NodeKind::kSlice) {
        if (node.start < 0 || node.length < 0 || node.start + node.length > dim)
          return err("slice [" + std::to_string(node.start) + ", " +
                     std::to_string(node.start + node.length) + ") of axis " +
                     std::to_string(node.axis) + " is outside " + x.shape.to_string());
        pieces.emplace_back(node.start, node.length);
      } else {
        int64_t at = 0;
        for (int64_t size : node.sizes) {
          if (size < 0) return err("split sizes must be >= 0");
          pieces.emplace_back(at, size);
          at += size;
        }
        if (at != dim)
          return err("split sizes add up to " + std::to_string(at) + " but axis " +
                     std::to_string(node.axis) + " of " + x.shape.to_string() + " has " +
                     std::to_string(dim));
      }
      for (auto [start, length] : pieces) {
        TensorDesc o = x;
        o.shape.dims[node.axis] = length;
        out.push_back(o);
        offsets.push_back(x.offset_bytes_of(start * x.strides[node.axis]));
      }
      break;
    }
    case NodeKind::kConcat: {
      if (in.empty()) return err("needs at least one input");
      const TensorDesc& first = in[0];
      HAL_RETURN_IF_ERROR(check_axis(first, node.axis));
      Shape shape = first.shape;
      shape.dims[node.axis] = 0;
      for (const TensorDesc& t : in) {
        bool ok = t.dtype == first.dtype && t.shape.rank == first.shape.rank;
        for (int d = 0; ok && d < t.shape.rank; ++d)
          ok = d == node.axis || t.shape.dims[d] == first.shape.dims[d];
        if (!ok)
          return err("inputs must share dtype and every dim but axis " + std::to_string(node.axis));
        shape.dims[node.axis] += t.shape.dims[node.axis];
      }
      out.push_back(TensorDesc::contiguous(first.dtype, shape));
      offsets.push_back(0);
      break;
    }
    case NodeKind::kWriteSlice: {
      HAL_RETURN_IF_ERROR(need_inputs(2, 2));
      const TensorDesc& dst = in[0];
      const TensorDesc& src = in[1];
      HAL_RETURN_IF_ERROR(check_axis(dst, node.axis));
      bool ok = dst.dtype == src.dtype && dst.shape.rank == src.shape.rank;
      for (int d = 0; ok && d < dst.shape.rank; ++d)
        ok = d == node.axis ? src.shape.dims[d] <= dst.shape.dims[d]
                            : src.shape.dims[d] == dst.shape.dims[d];
      if (!ok)
        return err("source must have the destination's dtype and dims (at most as long on axis " +
                   std::to_string(node.axis) + ")");
      if (node.write_offsets.empty()) return err("needs a write offset");
      if (node.write_offsets.size() > 1) {
        HAL_RETURN_IF_ERROR(check_axis(dst, node.batch_axis));
        if (node.batch_axis == node.axis)
          return err("the batch axis must differ from the write axis");
        if (int64_t(node.write_offsets.size()) != dst.shape.dims[node.batch_axis])
          return err(std::to_string(node.write_offsets.size()) + " per-row offsets for " +
                     std::to_string(dst.shape.dims[node.batch_axis]) + " rows of batch axis " +
                     std::to_string(node.batch_axis));
      }
      for (const SymInt& o : node.write_offsets)
        if (o.is_fixed() &&
            (o.constant < 0 || o.constant + src.shape.dims[node.axis] > dst.shape.dims[node.axis]))
          return err("fixed offset " + std::to_string(o.constant) + " runs past axis " +
                     std::to_string(node.axis) + " of " + dst.shape.to_string());
      out.push_back(dst);
      offsets.push_back(0);
      break;
    }
    case NodeKind::kTransfer: {
      HAL_RETURN_IF_ERROR(need_inputs(1, 1));
      if (!in[0].is_contiguous())
        return err("can only move a contiguous tensor, got " + in[0].to_string());
      out.push_back(TensorDesc::contiguous(in[0].dtype, in[0].shape));
      offsets.push_back(0);
      break;
    }
    case NodeKind::kCollective: {
      HAL_RETURN_IF_ERROR(need_inputs(1, 1));
      switch (node.collective) {
        case CollectiveKind::kAllReduce:
        case CollectiveKind::kSend:
          if (!in[0].is_contiguous())
            return err("a collective moves a contiguous tensor, got " + in[0].to_string());
          if (!is_collective_dtype(in[0].dtype))
            return err("collectives do not move " + std::string(dtype_name(in[0].dtype)));
          out.push_back(node.collective == CollectiveKind::kSend
                            ? in[0]
                            : TensorDesc::contiguous(in[0].dtype, in[0].shape));
          break;
        case CollectiveKind::kRecv:
        case CollectiveKind::kBroadcast:
          if (!is_collective_dtype(node.output_dtype) || node.new_shape.rank < 1)
            return err("a " + std::string(collective_kind_name(node.collective)) +
                       " needs the received tensor's shape and dtype");
          out.push_back(TensorDesc::contiguous(node.output_dtype, node.new_shape));
          break;
        default:
          return err("collective " + std::string(collective_kind_name(node.collective)) +
                     " is not a graph node (all_reduce, send, recv, broadcast are)");
      }
      offsets.push_back(0);
      break;
    }
  }
  if (offsets_bytes) *offsets_bytes = std::move(offsets);
  return out;
}

// ---- Graph -------------------------------------------------------------------------

void Graph::fail(Status status) {
  if (status_.ok()) status_ = std::move(status);
}

ValueId Graph::new_value(std::string name, ValueKind kind, TensorDesc desc, NodeId producer) {
  Value v;
  v.name = std::move(name);
  v.kind = kind;
  v.desc = desc;
  v.producer = producer;
  values_.push_back(std::move(v));
  return ValueId(values_.size() - 1);
}

NodeId Graph::new_node(Node node) {
  nodes_.push_back(std::move(node));
  return NodeId(nodes_.size() - 1);
}

ValueId Graph::add_input(std::string name, DType dtype, Shape shape) {
  return new_value(std::move(name), ValueKind::kInput, TensorDesc::contiguous(dtype, shape),
                   kNoNode);
}

ValueId Graph::add_constant(std::string name, DType dtype, Shape shape) {
  return new_value(std::move(name), ValueKind::kConstant, TensorDesc::contiguous(dtype, shape),
                   kNoNode);
}

ValueId Graph::add_state(std::string name, DType dtype, Shape shape) {
  return new_value(std::move(name), ValueKind::kState, TensorDesc::contiguous(dtype, shape),
                   kNoNode);
}

int32_t Graph::add_symbol(std::string name) {
  symbols_.push_back(std::move(name));
  return int32_t(symbols_.size() - 1);
}

void Graph::mark_output(ValueId value) {
  if (value >= 0 && size_t(value) < values_.size()) values_[size_t(value)].is_output = true;
}

bool Graph::check_inputs(std::string_view name, std::span<const ValueId> inputs) {
  if (!status_.ok()) return false;
  for (ValueId v : inputs) {
    if (v < 0 || size_t(v) >= values_.size()) {
      fail(invalid_argument("node '" + std::string(name) + "': input value " + std::to_string(v) +
                            " does not exist"));
      return false;
    }
  }
  return true;
}

ValueId Graph::op(std::string name, int32_t layer, OpKind kind, std::vector<ValueId> inputs,
                  OpAttributes attrs, std::optional<DType> output_dtype) {
  if (!check_inputs(name, inputs)) return kNoValue;
  Node node;
  node.name = std::move(name);
  node.layer = layer;
  node.kind = NodeKind::kOp;
  node.op = kind;
  node.attrs = attrs;
  node.output_dtype = output_dtype.value_or(DType::kInvalid);
  node.inputs = std::move(inputs);
  std::vector<TensorDesc> descs;
  for (ValueId v : node.inputs) descs.push_back(values_[size_t(v)].desc);
  auto out = infer_node(node, descs);
  if (!out.ok()) {
    fail(out.status());
    return kNoValue;
  }
  const std::string value_name = node.name;
  const NodeId id = new_node(std::move(node));
  const ValueId v = new_value(value_name, ValueKind::kIntermediate, (*out)[0], id);
  nodes_[size_t(id)].outputs.push_back(v);
  return v;
}

ValueId Graph::add_view_node(Node node) {
  // Shared by reshape/permute/slice/split: infer, then one aliasing output per piece.
  std::vector<TensorDesc> descs;
  for (ValueId v : node.inputs) descs.push_back(values_[size_t(v)].desc);
  std::vector<uint64_t> offsets;
  auto out = infer_node(node, descs, &offsets);
  if (!out.ok()) {
    fail(out.status());
    return kNoValue;
  }
  const ValueId base = node.inputs[0];
  const std::string name = node.name;
  const size_t count = out->size();
  const NodeId id = new_node(std::move(node));
  ValueId first = kNoValue;
  for (size_t i = 0; i < count; ++i) {
    const ValueId v = new_value(count == 1 ? name : name + "." + std::to_string(i),
                                ValueKind::kIntermediate, (*out)[i], id);
    values_[size_t(v)].alias_of = base;
    values_[size_t(v)].alias_offset_bytes = offsets[i];
    nodes_[size_t(id)].outputs.push_back(v);
    if (i == 0) first = v;
  }
  return first;
}

ValueId Graph::reshape(std::string name, int32_t layer, ValueId x, Shape shape) {
  if (!check_inputs(name, std::span<const ValueId>(&x, 1))) return kNoValue;
  const TensorDesc& desc = values_[size_t(x)].desc;
  if (desc.numel() == shape.numel() && !view_strides(desc, shape)) {
    // The layout cannot be viewed with the new shape: materialise it first.
    OpAttributes copy;  // identity perm: a strided copy into a contiguous tensor
    x = op(name + ".contiguous", layer, OpKind::kTranspose, {x}, copy);
    if (x == kNoValue) return kNoValue;
  }
  Node node;
  node.name = std::move(name);
  node.layer = layer;
  node.kind = NodeKind::kReshape;
  node.inputs = {x};
  node.new_shape = shape;
  return add_view_node(std::move(node));
}

ValueId Graph::permute(std::string name, int32_t layer, ValueId x, std::span<const int32_t> perm) {
  if (!check_inputs(name, std::span<const ValueId>(&x, 1))) return kNoValue;
  Node node;
  node.name = std::move(name);
  node.layer = layer;
  node.kind = NodeKind::kPermute;
  node.inputs = {x};
  if (perm.size() != size_t(values_[size_t(x)].desc.shape.rank)) {
    fail(node_error(node, std::span<const TensorDesc>(&values_[size_t(x)].desc, 1),
                    "perm has " + std::to_string(perm.size()) + " entries"));
    return kNoValue;
  }
  for (size_t i = 0; i < perm.size(); ++i) node.attrs.perm[i] = perm[i];
  return add_view_node(std::move(node));
}

ValueId Graph::slice(std::string name, int32_t layer, ValueId x, int32_t axis, int64_t start,
                     int64_t length) {
  if (!check_inputs(name, std::span<const ValueId>(&x, 1))) return kNoValue;
  Node node;
  node.name = std::move(name);
  node.layer = layer;
  node.kind = NodeKind::kSlice;
  node.inputs = {x};
  node.axis = axis;
  node.start = start;
  node.length = length;
  return add_view_node(std::move(node));
}

std::vector<ValueId> Graph::split(std::string name, int32_t layer, ValueId x, int32_t axis,
                                  std::vector<int64_t> sizes) {
  std::vector<ValueId> result(sizes.size(), kNoValue);
  if (!check_inputs(name, std::span<const ValueId>(&x, 1))) return result;
  Node node;
  node.name = std::move(name);
  node.layer = layer;
  node.kind = NodeKind::kSplit;
  node.inputs = {x};
  node.axis = axis;
  node.sizes = std::move(sizes);
  const ValueId first = add_view_node(std::move(node));
  if (first == kNoValue) return result;
  for (size_t i = 0; i < result.size(); ++i) result[i] = first + ValueId(i);
  return result;
}

ValueId Graph::concat(std::string name, int32_t layer, std::vector<ValueId> inputs, int32_t axis) {
  if (!check_inputs(name, inputs)) return kNoValue;
  Node node;
  node.name = std::move(name);
  node.layer = layer;
  node.kind = NodeKind::kConcat;
  node.inputs = std::move(inputs);
  node.axis = axis;
  std::vector<TensorDesc> descs;
  for (ValueId v : node.inputs) descs.push_back(values_[size_t(v)].desc);
  auto out = infer_node(node, descs);
  if (!out.ok()) {
    fail(out.status());
    return kNoValue;
  }
  const std::string value_name = node.name;
  const NodeId id = new_node(std::move(node));
  const ValueId v = new_value(value_name, ValueKind::kIntermediate, (*out)[0], id);
  nodes_[size_t(id)].outputs.push_back(v);
  return v;
}

ValueId Graph::write_slice(std::string name, int32_t layer, ValueId dst, ValueId src, int32_t axis,
                           std::vector<SymInt> offsets, int32_t batch_axis) {
  const ValueId ins[2] = {dst, src};
  if (!check_inputs(name, ins)) return kNoValue;
  Node node;
  node.name = std::move(name);
  node.layer = layer;
  node.kind = NodeKind::kWriteSlice;
  node.inputs = {dst, src};
  node.axis = axis;
  node.write_offsets = std::move(offsets);
  node.batch_axis = batch_axis;
  std::vector<TensorDesc> descs = {values_[size_t(dst)].desc, values_[size_t(src)].desc};
  const ValueKind dst_kind = values_[size_t(storage_root(dst))].kind;
  if (dst_kind == ValueKind::kConstant || dst_kind == ValueKind::kInput) {
    fail(node_error(node, descs,
                    "cannot write into " + std::string(value_kind_name(dst_kind)) + " '" +
                        values_[size_t(dst)].name + "'"));
    return kNoValue;
  }
  for (const SymInt& o : node.write_offsets)
    if (o.symbol >= int32_t(symbols_.size())) {
      fail(node_error(node, descs, "offset uses unknown symbol " + std::to_string(o.symbol)));
      return kNoValue;
    }
  auto out = infer_node(node, descs);
  if (!out.ok()) {
    fail(out.status());
    return kNoValue;
  }
  const std::string value_name = node.name;
  const NodeId id = new_node(std::move(node));
  const ValueId v = new_value(value_name, ValueKind::kIntermediate, (*out)[0], id);
  values_[size_t(v)].alias_of = dst;
  nodes_[size_t(id)].outputs.push_back(v);
  return v;
}

ValueId Graph::transfer(std::string name, int32_t layer, ValueId x) {
  if (!check_inputs(name, std::span<const ValueId>(&x, 1))) return kNoValue;
  Node node;
  node.name = std::move(name);
  node.layer = layer;
  node.kind = NodeKind::kTransfer;
  node.inputs = {x};
  std::vector<TensorDesc> descs = {values_[size_t(x)].desc};
  auto out = infer_node(node, descs);
  if (!out.ok()) {
    fail(out.status());
    return kNoValue;
  }
  const std::string value_name = node.name;
  const NodeId id = new_node(std::move(node));
  const ValueId v = new_value(value_name, ValueKind::kIntermediate, (*out)[0], id);
  nodes_[size_t(id)].outputs.push_back(v);
  return v;
}

ValueId Graph::collective(std::string name, int32_t layer, CollectiveKind kind, int32_t channel,
                          int32_t peer, ValueId x, std::optional<TensorDesc> out, bool is_root) {
  if (!check_inputs(name, std::span<const ValueId>(&x, 1))) return kNoValue;
  Node node;
  node.name = std::move(name);
  node.layer = layer;
  node.kind = NodeKind::kCollective;
  node.collective = kind;
  node.channel = channel;
  node.peer = peer;
  node.inputs = {x};
  if (out) {
    node.new_shape = out->shape;
    node.output_dtype = out->dtype;
  }
  std::vector<TensorDesc> descs = {values_[size_t(x)].desc};
  auto inferred = infer_node(node, descs);
  if (!inferred.ok()) {
    fail(inferred.status());
    return kNoValue;
  }
  if (kind == CollectiveKind::kBroadcast && is_root &&
      (descs[0].shape != (*inferred)[0].shape || descs[0].dtype != (*inferred)[0].dtype)) {
    fail(node_error(
        node, descs,
        "the root broadcasts its input, which must be the received " + (*inferred)[0].to_string()));
    return kNoValue;
  }
  const std::string value_name = node.name;
  const NodeId id = new_node(std::move(node));
  const ValueId v = new_value(value_name, ValueKind::kIntermediate, (*inferred)[0], id);
  if (kind == CollectiveKind::kSend) values_[size_t(v)].alias_of = x;
  nodes_[size_t(id)].outputs.push_back(v);
  return v;
}

void Graph::set_dynamic_kv_length(ValueId attention_output, SymInt kv_length) {
  if (!status_.ok()) return;
  if (attention_output < 0 || size_t(attention_output) >= values_.size() ||
      values_[size_t(attention_output)].producer == kNoNode) {
    fail(invalid_argument("set_dynamic_kv_length: value " + std::to_string(attention_output) +
                          " is not produced by a node"));
    return;
  }
  Node& node = nodes_[size_t(values_[size_t(attention_output)].producer)];
  if (node.kind != NodeKind::kOp || node.op != OpKind::kAttention) {
    fail(invalid_argument(node_label(node) + ": a dynamic kv_length needs an attention op"));
    return;
  }
  if (kv_length.symbol >= int32_t(symbols_.size())) {
    fail(invalid_argument(node_label(node) + ": kv_length uses unknown symbol " +
                          std::to_string(kv_length.symbol)));
    return;
  }
  node.kv_length = kv_length;
}

std::vector<ValueId> Graph::inputs() const {
  std::vector<ValueId> r;
  for (size_t i = 0; i < values_.size(); ++i)
    if (values_[i].kind == ValueKind::kInput) r.push_back(ValueId(i));
  return r;
}

std::vector<ValueId> Graph::outputs() const {
  std::vector<ValueId> r;
  for (size_t i = 0; i < values_.size(); ++i)
    if (values_[i].is_output) r.push_back(ValueId(i));
  return r;
}

std::vector<NodeId> Graph::consumers(ValueId value) const {
  std::vector<NodeId> r;
  for (size_t n = 0; n < nodes_.size(); ++n)
    for (ValueId v : nodes_[n].inputs)
      if (v == value) {
        r.push_back(NodeId(n));
        break;
      }
  return r;
}

ValueId Graph::storage_root(ValueId value) const {
  size_t guard = 0;
  while (value >= 0 && size_t(value) < values_.size() &&
         values_[size_t(value)].alias_of != kNoValue && guard++ <= values_.size())
    value = values_[size_t(value)].alias_of;
  return value;
}

std::optional<ValueId> Graph::find_value(std::string_view name) const {
  for (size_t i = 0; i < values_.size(); ++i)
    if (values_[i].name == name) return ValueId(i);
  return std::nullopt;
}

void Graph::replace_input(NodeId node, int32_t index, ValueId value) {
  if (node < 0 || size_t(node) >= nodes_.size()) return;
  Node& n = nodes_[size_t(node)];
  if (index < 0 || size_t(index) >= n.inputs.size()) return;
  n.inputs[size_t(index)] = value;
}

std::vector<std::pair<NodeId, NodeId>> Graph::dependencies() const {
  std::vector<std::pair<NodeId, NodeId>> deps;
  const size_t n = nodes_.size();
  std::vector<std::vector<NodeId>> readers(values_.size());
  for (size_t i = 0; i < n; ++i)
    for (ValueId v : nodes_[i].inputs)
      if (v >= 0 && size_t(v) < values_.size()) readers[size_t(v)].push_back(NodeId(i));
  for (size_t i = 0; i < n; ++i) {
    for (ValueId v : nodes_[i].inputs) {
      if (v < 0 || size_t(v) >= values_.size()) continue;
      const NodeId p = values_[size_t(v)].producer;
      if (p != kNoNode && p != NodeId(i)) deps.emplace_back(p, NodeId(i));
    }
    if (nodes_[i].kind != NodeKind::kWriteSlice || nodes_[i].inputs.empty()) continue;
    // Readers of the contents being overwritten (the destination and views derived
    // from it, not the updated value) go first.
    std::vector<ValueId> stack = {nodes_[i].inputs[0]};
    while (!stack.empty()) {
      const ValueId v = stack.back();
      stack.pop_back();
      if (v < 0 || size_t(v) >= values_.size()) continue;
      for (NodeId r : readers[size_t(v)]) {
        if (r == NodeId(i)) continue;
        const Node& reader = nodes_[size_t(r)];
        if (is_view_kind(reader.kind)) {
          for (ValueId o : reader.outputs) stack.push_back(o);
        } else {
          deps.emplace_back(r, NodeId(i));
        }
      }
    }
  }
  return deps;
}

Result<std::vector<NodeId>> Graph::topological_order() const {
  const size_t n = nodes_.size();
  for (size_t i = 0; i < n; ++i)
    for (ValueId v : nodes_[i].inputs)
      if (v < 0 || size_t(v) >= values_.size())
        return failed_precondition(node_label(nodes_[i]) + ": input " + std::to_string(v) +
                                   " does not exist");
  std::vector<std::vector<NodeId>> succ(n);
  std::vector<int32_t> indegree(n, 0);
  for (auto [from, to] : dependencies()) {
    succ[size_t(from)].push_back(to);
    ++indegree[size_t(to)];
  }
  std::priority_queue<NodeId, std::vector<NodeId>, std::greater<NodeId>> ready;
  for (size_t i = 0; i < n; ++i)
    if (indegree[i] == 0) ready.push(NodeId(i));
  std::vector<NodeId> order;
  order.reserve(n);
  while (!ready.empty()) {
    const NodeId id = ready.top();
    ready.pop();
    order.push_back(id);
    for (NodeId s : succ[size_t(id)])
      if (--indegree[size_t(s)] == 0) ready.push(s);
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i)
      if (indegree[i] > 0)
        return failed_precondition("the graph has a cycle through " + node_label(nodes_[i]));
  }
  return order;
}

Status Graph::validate() const {
  if (!status_.ok()) return status_;
  for (size_t i = 0; i < values_.size(); ++i) {
    const Value& v = values_[i];
    const bool leaf = v.kind != ValueKind::kIntermediate;
    if (leaf != (v.producer == kNoNode))
      return invalid_argument("value '" + v.name + "' (" + std::string(value_kind_name(v.kind)) +
                              ") " + (leaf ? "has a producer" : "has no producer"));
    if (v.producer != kNoNode && (v.producer < 0 || size_t(v.producer) >= nodes_.size()))
      return invalid_argument("value '" + v.name + "' names a producer that does not exist");
    if (v.alias_of != kNoValue && (v.alias_of < 0 || size_t(v.alias_of) >= values_.size()))
      return invalid_argument("value '" + v.name + "' aliases a value that does not exist");
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& node = nodes_[i];
    std::vector<TensorDesc> descs;
    for (ValueId v : node.inputs) {
      if (v < 0 || size_t(v) >= values_.size())
        return invalid_argument(node_label(node) + ": input value " + std::to_string(v) +
                                " does not exist");
      descs.push_back(values_[size_t(v)].desc);
    }
    std::vector<uint64_t> offsets;
    auto out = infer_node(node, descs, &offsets);
    if (!out.ok()) return out.status();
    if (out->size() != node.outputs.size())
      return invalid_argument(node_label(node) + ": has " + std::to_string(node.outputs.size()) +
                              " outputs, its inputs make " + std::to_string(out->size()));
    for (size_t k = 0; k < out->size(); ++k) {
      const ValueId o = node.outputs[k];
      if (o < 0 || size_t(o) >= values_.size() || values_[size_t(o)].producer != NodeId(i))
        return invalid_argument(node_label(node) + ": output " + std::to_string(o) +
                                " is not produced by it");
      const Value& value = values_[size_t(o)];
      if (!same_desc(value.desc, (*out)[k]))
        return node_error(node, descs,
                          "output '" + value.name + "' is " + value.desc.to_string() +
                              " but the inputs make " + (*out)[k].to_string());
      const bool aliases =
          is_view_kind(node.kind) || node.kind == NodeKind::kWriteSlice ||
          (node.kind == NodeKind::kCollective && node.collective == CollectiveKind::kSend);
      if (aliases && (value.alias_of != node.inputs[0] || value.alias_offset_bytes != offsets[k]))
        return invalid_argument(node_label(node) + ": output '" + value.name +
                                "' must alias its input");
      if (!aliases && value.alias_of != kNoValue)
        return invalid_argument(node_label(node) + ": output '" + value.name +
                                "' must own its storage");
    }
    if (node.kv_length && (node.kind != NodeKind::kOp || node.op != OpKind::kAttention))
      return invalid_argument(node_label(node) + ": only attention takes a dynamic kv_length");
    auto bad_symbol = [&](const SymInt& s) { return s.symbol >= int32_t(symbols_.size()); };
    if ((node.kv_length && bad_symbol(*node.kv_length)) ||
        std::any_of(node.write_offsets.begin(), node.write_offsets.end(), bad_symbol))
      return invalid_argument(node_label(node) + ": uses a symbol that does not exist");
  }
  auto order = topological_order();
  if (!order.ok()) return order.status();
  return ok_status();
}

std::string Graph::to_string() const {
  std::string s;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& node = nodes_[i];
    s += std::to_string(i) + " " + node_label(node);
    if (node.layer >= 0) s += " layer " + std::to_string(node.layer);
    s += ": (";
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (k) s += ", ";
      const ValueId v = node.inputs[k];
      s += (v >= 0 && size_t(v) < values_.size()) ? values_[size_t(v)].desc.to_string() : "?";
    }
    s += ") -> ";
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (k) s += ", ";
      const ValueId v = node.outputs[k];
      s += (v >= 0 && size_t(v) < values_.size()) ? values_[size_t(v)].desc.to_string() : "?";
    }
    s += "\n";
  }
  return s;
}

}  // namespace hal::runtime
