// hal/plugin/fused_groups.h (plugin kit): the grouping of consecutive view nodes into
// fused groups that compilers for transformer graphs share: a norm opens a group and fuses
// into the matmul(s) that follow it; matmuls reading the same input join one group (Q, K,
// V or gate and up projections); elementwise ops, rotary and copies (KV-cache writes) that
// consume what the open group produced join it as epilogues; attention and embeddings
// open groups of their own. The main node (the first matmul or attention, else the first
// node) names the group's op class in reports.
//
// Threading: pure function.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "hal/graph_view.h"

namespace hal::plugin {

struct FusedGroup {
  int32_t main_node = 0;
  std::vector<int32_t> nodes;  // consecutive, in view order
};

// `fusion` false: one group per node.
inline std::vector<FusedGroup> group_consecutive(const GraphView& view, bool fusion = true) {
  auto is_norm = [](OpKind k) { return k == OpKind::kLayerNorm || k == OpKind::kRmsNorm; };
  auto is_matrix = [](OpKind k) { return k == OpKind::kMatmul || k == OpKind::kAttention; };
  std::vector<FusedGroup> groups;
  std::vector<char> produced(view.values.size(), 0);  // owners written by the open group
  int32_t matmul_input = -1;                          // the open group's matmul A owner
  bool has_attention = false;
  for (size_t n = 0; n < view.nodes.size(); ++n) {
    const GraphNode& node = view.nodes[n];
    bool reads_group = false;
    for (int32_t in : node.inputs) reads_group |= produced[size_t(view.owner(in))] != 0;
    bool join = fusion && !groups.empty();
    if (join) {
      const OpKind last = view.nodes[size_t(groups.back().nodes.back())].op;
      if (is_norm(node.op) || node.op == OpKind::kAttention || node.op == OpKind::kEmbedding) {
        join = false;
      } else if (node.op == OpKind::kMatmul) {
        const int32_t a = view.owner(node.inputs[0]);
        const bool after_norm = is_norm(last) && reads_group && matmul_input < 0;
        join = !has_attention && (after_norm || (matmul_input >= 0 && a == matmul_input));
      } else {
        join = reads_group;
      }
    }
    if (!join) {
      std::fill(produced.begin(), produced.end(), 0);
      matmul_input = -1;
      has_attention = false;
      groups.push_back({int32_t(n), {}});
    }
    FusedGroup& g = groups.back();
    g.nodes.push_back(int32_t(n));
    if (node.op == OpKind::kMatmul && matmul_input < 0) matmul_input = view.owner(node.inputs[0]);
    if (node.op == OpKind::kAttention) has_attention = true;
    if (is_matrix(node.op) && !is_matrix(view.nodes[size_t(g.main_node)].op))
      g.main_node = int32_t(n);
    produced[size_t(view.owner(node.output))] = 1;
  }
  return groups;
}

}  // namespace hal::plugin
