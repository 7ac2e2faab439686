// hal/graph_view.h: a graph as the host shows it to a device for whole-graph offload
// (plugin ABI 1.2, EXECUTABLES in hal/plugin_abi.h): values, op nodes over them, and
// symbols (run-time integers with their ranges). The C++ twin of hal_graph_view, shared
// by the host (which builds views and checks them before sending) and the plugin kit
// (which converts the C view back and checks it before a plugin sees it).
//
// What a view holds
// - Values: a TensorDesc and a kind: kInput (bound, read only), kConstant (bound, read
//   only, same contents every run: weights), kState (bound, written in place, persists:
//   KV caches), kIntermediate (written by nodes; the executable's own storage unless
//   is_output, then bound). A value either owns its storage (alias_of == -1) or is a view
//   of an owner with a lower index, at offset_bytes plus offset_symbol's run-time value
//   times offset_symbol_stride_bytes (a KV-cache write at the current position). A view
//   has its owner's kind and is never bound itself.
// - Nodes: an op of hal/op.h over value indices, in an order that respects every
//   dependency (in-place writes included): running them in that order defines the
//   result. An attention node may take its kv_length from a symbol.
// - Symbols: [min_value, max_value] ranges. Shapes hold the bucket's upper bound; an
//   executable compiled for a view serves every symbol value in range.
//
// Contract: validate() checks everything a device relies on (indices, alias rules,
// every view inside its owner at the largest symbol values, each node a valid op,
// intermediates written before they are read) and names the first problem.
// fingerprint() is a stable hash of the whole view (every field), used as the compile
// cache's graph key.
//
// Threading: value types and pure functions.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hal/op.h"
#include "hal/status.h"

namespace hal {

enum class GraphValueKind : int32_t { kInput = 0, kConstant = 1, kState = 2, kIntermediate = 3 };
std::string_view graph_value_kind_name(GraphValueKind kind);  // "input", "constant", ...

struct GraphSymbol {
  std::string name;
  int64_t min_value = 0;
  int64_t max_value = 0;
};

struct GraphValue {
  std::string name;
  GraphValueKind kind = GraphValueKind::kIntermediate;
  bool is_output = false;
  TensorDesc desc;
  int32_t alias_of = -1;
  uint64_t offset_bytes = 0;
  int32_t offset_symbol = -1;
  int64_t offset_symbol_stride_bytes = 0;

  bool is_view() const { return alias_of >= 0; }
};

struct GraphNode {
  std::string name;
  OpKind op = OpKind::kInvalid;
  OpAttributes attrs;
  std::vector<int32_t> inputs;
  int32_t output = -1;
  int32_t kv_length_symbol = -1;
};

struct GraphView {
  std::vector<GraphValue> values;
  std::vector<GraphNode> nodes;
  std::vector<GraphSymbol> symbols;

  // The value owning v's storage (v itself when it owns it).
  int32_t owner(int32_t v) const;
  // Whether an execution binds a buffer for v: an owner that is not an internal
  // intermediate (inputs, constants, states, outputs).
  bool is_bound(int32_t v) const;
  // Every symbol's max_value: the bucket's upper bound.
  std::vector<int64_t> max_symbols() const;
  // Byte offset of v into its owner's storage at these symbol values.
  uint64_t offset_of(int32_t v, std::span<const int64_t> symbols) const;
  // The op node n runs, its kv_length taken from its symbol at these values (empty: each
  // symbol's max_value).
  OpSpec node_spec(size_t n, std::span<const int64_t> symbols = {}) const;
  // Nodes with an input stored in owner(v)'s storage (v, its owner or another view).
  std::vector<int32_t> readers_of_owner(int32_t v) const;

  // See the contract above. Errors are INVALID_ARGUMENT naming the value or node.
  Status validate() const;
  // One value per symbol, each within its range.
  Status check_symbols(std::span<const int64_t> values) const;
  uint64_t fingerprint() const;

  // A self-contained byte encoding (for serialized executables) and its inverse; decode
  // checks every length and validates the result (INVALID_ARGUMENT on a malformed blob).
  std::vector<uint8_t> encode() const;
  static Result<GraphView> decode(std::span<const uint8_t> bytes);
};

// A unit of a partition as a graph of its own (what the host compiles): the nodes
// `nodes` of `view` (indices in view order) and the values they touch. Owners written
// outside the unit become inputs (kState when the unit also writes them); owners the
// unit writes that other nodes read, or that are outputs, become outputs; the rest of
// what the unit writes is internal. Symbols are kept as they are.
struct UnitView {
  GraphView view;
  std::vector<int32_t> value_of;  // per unit value: its index in the original view
  std::vector<int32_t> node_of;   // per unit node: its index in the original view
};
UnitView extract_unit(const GraphView& view, std::span<const int32_t> nodes);

// 64-bit FNV-1a over bytes, continuing from `seed` (fingerprints and blob checksums).
uint64_t fnv1a64(const void* data, size_t size, uint64_t seed = 14695981039346656037ull);

}  // namespace hal
