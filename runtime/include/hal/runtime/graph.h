// hal/runtime/graph.h: the runtime's graph IR: values with a dtype and a shape, nodes that
// are HAL ops or shape-only ops, run-time integers, and the checks that keep a graph
// well formed.
//
// What a graph holds
// - Values (ValueId): a TensorDesc (dtype, shape, strides in elements) and a kind:
//     kInput         host data uploaded at each run (token ids, positions, lengths),
//     kConstant      weights, bound once to device buffers and only read,
//     kState         persistent device tensors bound by the caller and written in place
//                    (the KV caches); they outlive a run,
//     kIntermediate  produced by a node; storage comes from the memory plan.
//   A value may be a view of another (alias_of + alias_offset_bytes + its own strides):
//   views, reshapes, slices, splits and in-place writes produce such values, so no data
//   moves. Values marked as outputs are copied back to the host by the executor.
// - Nodes (NodeId): a kind, a name ("h.3.attn.qkv") and a layer index (-1 outside the
//   transformer blocks), so placement by layer ranges and reports per op class work.
//     kOp          one HAL op (hal::OpKind + hal::OpAttributes, semantics in hal/op.h);
//                  its single output is a fresh contiguous tensor,
//     kReshape     a new shape over the same elements (a view when the strides allow it;
//                  otherwise the builder first inserts a contiguous copy: a transpose op
//                  with the identity perm),
//     kPermute     a view with permuted dims,
//     kSlice       a view of [start, start + length) along one axis,
//     kSplit       several slice views along one axis (one output each),
//     kConcat      a fresh tensor holding its inputs one after another along an axis
//                  (run as strided copies into slices of the output),
//     kWriteSlice  writes input 1 into input 0 (a state or intermediate) at a run-time
//                  offset along an axis, in place: its output aliases input 0, so nodes
//                  that read the updated tensor depend on the write (the KV-cache update);
//                  offsets are one for every batch row or one per row,
//     kTransfer    a copy of its input on another device (inserted by a scheduler).
//     kCollective  a collective over one of the run's channels (hal/channel.h; which one
//                  by `channel`: kTensorParallelChannel, kPipelineChannel), issued on the
//                  node's stream (runtime/parallel.h): all_reduce (sum) of its input into
//                  a fresh tensor; send of its input to rank `peer` (the output aliases the
//                  input, so later nodes can follow it); recv from rank `peer`, and
//                  broadcast from root `peer`, into a fresh tensor of new_shape and
//                  output_dtype (their input only orders them, except a broadcast's on the
//                  root, which is the data).
// - Symbols: named run-time integers (e.g. "past.0", the tokens already cached for batch
//   row 0). A SymInt is symbol + constant; the executor evaluates it at each run, so one
//   graph serves every decode step without being rebuilt.
//
// Errors
// - Builder calls infer shapes as nodes are added. The first failure is kept (status())
//   and names the node, its op and the input shapes, e.g.
//     "node 'h.3.attn.qkv' (matmul): inner dims differ: A [1, 7, 768] and B [767, 2304]".
//   After a failure every builder call returns kNoValue, so model builders check once at
//   the end. validate() re-checks a whole graph (after a scheduler edited it).
//
// Lifetime and threading: a Graph is a value type (copyable); build it on one thread.
// Const methods are safe to call concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hal/collective.h"
#include "hal/op.h"
#include "hal/status.h"

namespace hal::runtime {

using ValueId = int32_t;
using NodeId = int32_t;
inline constexpr ValueId kNoValue = -1;
inline constexpr NodeId kNoNode = -1;

enum class ValueKind : int32_t { kInput = 0, kConstant = 1, kState = 2, kIntermediate = 3 };
std::string_view value_kind_name(ValueKind kind);  // "input", "constant", "state", ...

enum class NodeKind : int32_t {
  kOp = 0,
  kReshape = 1,
  kPermute = 2,
  kSlice = 3,
  kSplit = 4,
  kConcat = 5,
  kWriteSlice = 6,
  kTransfer = 7,
  kCollective = 8,
};
// Which of a parallel run's channels a kCollective node uses.
inline constexpr int32_t kTensorParallelChannel = 0;
inline constexpr int32_t kPipelineChannel = 1;
// "op", "reshape", "permute", "slice", "split", "concat", "write_slice", "transfer",
// "collective".
std::string_view node_kind_name(NodeKind kind);
// True for kinds whose outputs are views of an input (no device work).
bool is_view_kind(NodeKind kind);

// An integer known at run time: the value of `symbol` (when >= 0) plus `constant`.
struct SymInt {
  int32_t symbol = -1;
  int64_t constant = 0;

  static SymInt fixed(int64_t v) { return SymInt{-1, v}; }
  static SymInt of(int32_t symbol, int64_t plus = 0) { return SymInt{symbol, plus}; }
  bool is_fixed() const { return symbol < 0; }
  // Precondition: symbol < symbols.size().
  int64_t eval(std::span<const int64_t> symbols) const {
    return (symbol >= 0 ? symbols[size_t(symbol)] : 0) + constant;
  }
};

struct Value {
  std::string name;
  ValueKind kind = ValueKind::kIntermediate;
  TensorDesc desc;
  NodeId producer = kNoNode;  // kNoNode for inputs, constants and states
  // Storage: a view of `alias_of`'s storage starting alias_offset_bytes into it.
  ValueId alias_of = kNoValue;
  uint64_t alias_offset_bytes = 0;
  bool is_output = false;
};

struct Node {
  std::string name;
  int32_t layer = -1;
  NodeKind kind = NodeKind::kOp;
  OpKind op = OpKind::kInvalid;  // kOp only
  OpAttributes attrs;            // kOp; kPermute uses attrs.perm
  // kOp: the output dtype for kCast (required) and kMatmul (optional); kInvalid = the
  // op's rule (hal::infer_output).
  DType output_dtype = DType::kInvalid;
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  // Shape ops: the axis of slice/split/concat/write_slice; the slice start and length;
  // the split sizes; the reshape target.
  int32_t axis = 0;
  int64_t start = 0;
  int64_t length = 0;
  std::vector<int64_t> sizes;
  Shape new_shape;
  // kWriteSlice: offset along `axis`; one (all rows) or one per index of `batch_axis`.
  std::vector<SymInt> write_offsets;
  int32_t batch_axis = 0;
  // kAttention: when set, attrs.kv_length is this value at run time (the longest
  // visible key range of the batch; per-row lengths come from the kv_lengths input).
  std::optional<SymInt> kv_length;
  // kCollective: what, over which channel, with which peer (send/recv) or root
  // (broadcast); recv and broadcast outputs are new_shape of output_dtype.
  CollectiveKind collective = CollectiveKind::kInvalid;
  int32_t channel = kTensorParallelChannel;
  int32_t peer = 0;
};

class Graph {
 public:
  // ---- leaves ----
  ValueId add_input(std::string name, DType dtype, Shape shape);
  ValueId add_constant(std::string name, DType dtype, Shape shape);
  ValueId add_state(std::string name, DType dtype, Shape shape);
  // A named run-time integer; returns its index in the executor's symbol array.
  int32_t add_symbol(std::string name);
  void mark_output(ValueId value);

  // ---- nodes (return kNoValue after a failure; see status()) ----
  // A HAL op. `output_dtype` is required for kCast and overrides matmul's output dtype.
  ValueId op(std::string name, int32_t layer, OpKind kind, std::vector<ValueId> inputs,
             OpAttributes attrs = {}, std::optional<DType> output_dtype = std::nullopt);
  ValueId reshape(std::string name, int32_t layer, ValueId x, Shape shape);
  ValueId permute(std::string name, int32_t layer, ValueId x, std::span<const int32_t> perm);
  ValueId slice(std::string name, int32_t layer, ValueId x, int32_t axis, int64_t start,
                int64_t length);
  std::vector<ValueId> split(std::string name, int32_t layer, ValueId x, int32_t axis,
                             std::vector<int64_t> sizes);
  ValueId concat(std::string name, int32_t layer, std::vector<ValueId> inputs, int32_t axis);
  ValueId write_slice(std::string name, int32_t layer, ValueId dst, ValueId src, int32_t axis,
                      std::vector<SymInt> offsets, int32_t batch_axis = 0);
  ValueId transfer(std::string name, int32_t layer, ValueId x);
  // A collective (see kCollective above). `out` is the received tensor of recv and
  // broadcast (ignored otherwise); on a broadcast's root `x` must match it.
  ValueId collective(std::string name, int32_t layer, CollectiveKind kind, int32_t channel,
                     int32_t peer, ValueId x, std::optional<TensorDesc> out = std::nullopt,
                     bool is_root = false);
  // Attention whose kv_length attribute is evaluated at run time.
  void set_dynamic_kv_length(ValueId attention_output, SymInt kv_length);

  // ---- inspection ----
  const Status& status() const { return status_; }
  const std::vector<Value>& values() const { return values_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const Value& value(ValueId id) const { return values_[size_t(id)]; }
  const Node& node(NodeId id) const { return nodes_[size_t(id)]; }
  const std::vector<std::string>& symbols() const { return symbols_; }
  std::vector<ValueId> inputs() const;   // kInput values, in creation order
  std::vector<ValueId> outputs() const;  // values marked as outputs
  // Nodes reading `value` (directly, not through views).
  std::vector<NodeId> consumers(ValueId value) const;
  // The value owning the storage `value` lives in (follows alias_of to the end).
  ValueId storage_root(ValueId value) const;
  std::optional<ValueId> find_value(std::string_view name) const;

  // ---- edits (for schedulers) ----
  // Makes input `index` of `node` read `value` (same dtype and shape; checked by validate()).
  void replace_input(NodeId node, int32_t index, ValueId value);

  // Every (before, after) pair of nodes an issue order must respect: the producer of
  // each input before its reader, and (write-after-read) every reader of storage that a
  // kWriteSlice overwrites before that write, unless it reads the written result.
  std::vector<std::pair<NodeId, NodeId>> dependencies() const;

  // Nodes in an order where every node follows the producers of its inputs and, for
  // in-place writes, every earlier reader of the written storage (a write waits for
  // the readers of the previous contents it would overwrite). Creation order is kept
  // where free. FAILED_PRECONDITION naming a node on a cycle.
  Result<std::vector<NodeId>> topological_order() const;
  // Re-infers every node's outputs and checks them against the stored values; checks
  // ids, kinds and that the graph is acyclic. The first problem, naming node and shapes.
  Status validate() const;

  // A text listing: one line per node with inputs and output descs (for debugging).
  std::string to_string() const;

 private:
  ValueId new_value(std::string name, ValueKind kind, TensorDesc desc, NodeId producer);
  NodeId new_node(Node node);
  bool check_inputs(std::string_view name, std::span<const ValueId> inputs);
  void fail(Status status);
  ValueId add_view_node(Node node);

  std::vector<Value> values_;
  std::vector<Node> nodes_;
  std::vector<std::string> symbols_;
  Status status_;
};

// Shape inference of one node from its inputs' descs (no graph state): the descs of its
// outputs, or an error naming the node, its kind/op and the input shapes. Outputs of
// view kinds carry their strides; `offsets_bytes` (when not null) receives each output's
// byte offset into its input's storage. Reshape of a layout that cannot be viewed
// fails here (the builder copies first).
Result<std::vector<TensorDesc>> infer_node(const Node& node, std::span<const TensorDesc> inputs,
                                           std::vector<uint64_t>* offsets_bytes = nullptr);

// How messages name a node: "node 'h.0.attn.qkv' (matmul)" (its op for kOp nodes, else
// its kind).
std::string node_label(const Node& node);

// The HAL op a kOp node runs on the given operand tensors: TensorDesc operands make an
// OpSpec (validation, support queries, costs), TensorRef operands an OpDescriptor
// (dispatch). The one place a node's op kind, attributes and operands become an op.
// Precondition: inputs.size() <= kMaxOpInputs.
template <typename Op, typename Tensor>
Op node_op(const Node& node, std::span<const Tensor> inputs, const Tensor& output) {
  Op op;
  op.kind = node.op;
  op.attrs = node.attrs;
  op.num_inputs = int32_t(inputs.size());
  for (size_t i = 0; i < inputs.size() && i < size_t(kMaxOpInputs); ++i) op.inputs[i] = inputs[i];
  op.output = output;
  return op;
}

// The OpSpec of kOp node `node` over the graph's value descriptors (attrs.kv_length as
// built: a run-time kv_length is the caller's to evaluate).
OpSpec node_op_spec(const Graph& graph, NodeId node);

// Strides viewing `desc`'s elements with `shape` (same numel) without copying, when the
// layout allows it (the rule torch's view() follows); nullopt when it needs a copy.
std::optional<std::array<int64_t, kMaxRank>> view_strides(const TensorDesc& desc,
                                                          const Shape& shape);

}  // namespace hal::runtime
