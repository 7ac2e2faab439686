// The timeline of a run (executor.h, "Timeline"): every command of the run placed on one
// time axis from its records, whatever clock each device keeps, following the plan's
// streams and events; host-staged transfers, which leave no record, timed from the link.
#include <algorithm>
#include <map>

#include "hal/device.h"
#include "hal/platform.h"
#include "hal/runtime/executor.h"
#include "parallel/collective_step.h"

namespace hal::runtime {

double Timeline::busy_seconds(int32_t device) const {
  double busy = 0;
  for (const TimelineEntry& e : entries)
    if (e.device == device) busy += e.seconds();
  return busy;
}

Timeline build_timeline(const ExecutionPlan& p, std::span<const StepRecord> records) {
  Timeline tl;
  if (!p.graph) return tl;
  const Graph& g = *p.graph;
  const size_t n_dev = p.devices.size();
  // Records by node; uploads and downloads by device, in completion order.
  std::map<NodeId, std::vector<const StepRecord*>> of_node;
  std::vector<std::vector<const StepRecord*>> uploads(n_dev), downloads(n_dev);
  for (const StepRecord& r : records) {
    if (r.device < 0 || size_t(r.device) >= n_dev) continue;
    if (r.node != kNoNode) {
      of_node[r.node].push_back(&r);
    } else if (r.record.command == CommandKind::kCopyHostToDevice) {
      uploads[size_t(r.device)].push_back(&r);
    } else {
      downloads[size_t(r.device)].push_back(&r);
    }
  }
  auto add_records = [](TimelineEntry& e, const std::vector<const StepRecord*>& rs) {
    double seconds = 0;
    for (const StepRecord* r : rs) {
      seconds += r->record.duration_s();
      e.flops += r->record.flops;
      e.bytes_read += r->record.bytes_read;
      e.bytes_written += r->record.bytes_written;
      // Ops, and the fused groups of a compiled unit's execution (each on its main node).
      const bool op =
          r->record.command == CommandKind::kOp || r->record.command == CommandKind::kExecuteGroup;
      if (!op) e.bytes_moved += std::max(r->record.bytes_read, r->record.bytes_written);
      if (e.op == OpKind::kInvalid && op) e.op = r->record.op;
      ++e.commands;
    }
    return seconds;
  };
  std::vector<std::vector<double>> free_at(n_dev);
  for (size_t d = 0; d < n_dev; ++d)
    free_at[d].assign(
        size_t(std::max(1, d < p.streams_per_device.size() ? p.streams_per_device[d] : 1)), 0.0);
  // Host copies of one device back to back from `t`, one entry each; returns their end.
  auto add_host_copies = [&](TimelineEntry::Kind kind, size_t d,
                             const std::vector<const StepRecord*>& copies, double t) {
    for (const StepRecord* r : copies) {
      TimelineEntry e;
      e.kind = kind;
      e.device = int32_t(d);
      e.start_s = t;
      t += add_records(e, {r});
      e.end_s = t;
      tl.entries.push_back(e);
    }
    return t;
  };
  // Uploads on each device's first stream; every stream then waits for all of them.
  double uploads_done = 0;
  for (size_t d = 0; d < n_dev; ++d)
    uploads_done =
        std::max(uploads_done, add_host_copies(TimelineEntry::Kind::kUpload, d, uploads[d], 0.0));
  for (auto& streams : free_at) std::fill(streams.begin(), streams.end(), uploads_done);
  std::vector<double> event_at(p.event_producer.size(), 0.0);
  // Each node of a compiled unit's fused group -> the group's main node (the one its
  // record comes back on).
  std::vector<NodeId> group_head(g.nodes().size(), kNoNode);
  for (const CompiledUnit& u : p.units)
    for (const FusedGroupInfo& fg : u.info.groups) {
      auto graph_node = [&](int32_t view_node) {
        return view_node >= 0 && size_t(view_node) < u.node_of.size() ? u.node_of[size_t(view_node)]
                                                                      : kNoNode;
      };
      const NodeId head = graph_node(fg.main_node);
      if (head == kNoNode) continue;
      for (int32_t k : fg.nodes) {
        const NodeId n = graph_node(k);
        if (n != kNoNode && n != head && size_t(n) < group_head.size())
          group_head[size_t(n)] = head;
      }
    }
  for (const PlannedStep& st : p.steps) {
    const Node& node = g.node(st.node);
    const int32_t sd = st.stream_device();
    if (sd < 0 || size_t(sd) >= n_dev) continue;
    auto& stream_free =
        free_at[size_t(sd)][size_t(std::max(0, st.stream)) % free_at[size_t(sd)].size()];
    double start = stream_free;
    for (int32_t e : st.wait_events)
      if (e >= 0 && size_t(e) < event_at.size()) start = std::max(start, event_at[size_t(e)]);
    double end = start;
    if (!is_view_kind(node.kind)) {
      TimelineEntry e;
      e.node = st.node;
      e.device = sd;
      e.stream = st.stream;
      e.start_s = start;
      if (node.kind == NodeKind::kOp) e.op = node.op;
      // Concat and write_slice run as identity transposes into their output's slices.
      if (node.kind == NodeKind::kConcat || node.kind == NodeKind::kWriteSlice)
        e.op = OpKind::kTranspose;
      double seconds = 0;
      auto it = of_node.find(st.node);
      if (it != of_node.end())
        seconds = add_records(e, it->second);
      else if (size_t(st.node) < group_head.size())
        e.fused_into = group_head[size_t(st.node)];
      if (node.kind == NodeKind::kCollective)
        describe_collective(node,
                            it != of_node.end() ? it->second : std::vector<const StepRecord*>{}, e);
      if (node.kind == NodeKind::kTransfer) {
        e.kind = TimelineEntry::Kind::kTransfer;
        e.peer = st.device;
        const uint64_t bytes = g.value(node.outputs[0]).desc.bytes();
        e.bytes_moved = bytes;
        if (e.commands == 0) {
          // Staged through the host (no device record): the link's model.
          const int32_t from = p.value_device[size_t(g.storage_root(node.inputs[0]))];
          const Device* a = p.devices[size_t(from >= 0 ? from : sd)];
          const Device* b = p.devices[size_t(st.device)];
          const LinkInfo link = a->platform().link(a, b);
          seconds =
              link.latency_s +
              (link.bandwidth_bytes_per_s > 0 ? double(bytes) / link.bandwidth_bytes_per_s : 0.0);
          e.measured = false;
        }
      }
      end = start + seconds;
      e.end_s = end;
      tl.entries.push_back(e);
    }
    stream_free = end;
    if (st.record_event >= 0 && size_t(st.record_event) < event_at.size())
      event_at[size_t(st.record_event)] = end;
  }
  // Downloads after the last step of each device's streams.
  for (size_t d = 0; d < n_dev; ++d) {
    double t = 0;
    for (double f : free_at[d]) t = std::max(t, f);
    free_at[d][0] = add_host_copies(TimelineEntry::Kind::kDownload, d, downloads[d], t);
  }
  for (const TimelineEntry& e : tl.entries) tl.makespan_s = std::max(tl.makespan_s, e.end_s);
  return tl;
}

}  // namespace hal::runtime
