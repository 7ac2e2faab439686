// Schedule assembly: a placed and timed task graph (list_engine.h) as a Schedule, with
// compute and transfer streams (link channels by interval colouring), the issue order and
// per-stream order, the events that order work across streams, and device memory
// (resident tensors, activation peaks).
#include <algorithm>
#include <cmath>
#include <functional>

#include "list_engine.h"

namespace hal::scheduler::detail {

namespace {

// Sort key of work in issue order: start time, then a sequence that puts a producer
// before what it feeds when times tie (zero-length work).
struct IssueKey {
  double start;
  int32_t seq;
  int32_t stream;
  WorkRef ref;
  bool operator<(const IssueKey& o) const {
    return start < o.start || (start == o.start && seq < o.seq);
  }
};

}  // namespace

Schedule Engine::assemble() const {
  Schedule s;
  s.algorithm = cfg_->label;
  s.link_model = opt_.link_model;
  s.tasks.resize(size_t(n_));
  s.transfers = transfers_;
  s.fallbacks = fallbacks_;

  // Streams: one compute stream per device, then transfer streams per link (channels
  // by interval colouring when transfers may overlap).
  for (int32_t d = 0; d < p_; ++d) {
    StreamInfo si;
    si.kind = StreamInfo::Kind::kCompute;
    si.device = d;
    si.name = pb_.device(d).id + "/compute";
    s.streams.push_back(si);
  }
  // Transfers bucketed by link (counting sort: this runs on every schedule of 100,000
  // tasks, so no comparison sort over all transfers).
  const size_t links = size_t(p_) * size_t(p_);
  std::vector<int32_t> link_offset(links + 1, 0);
  for (const Transfer& x : transfers_)
    ++link_offset[size_t(x.from_device) * size_t(p_) + size_t(x.to_device) + 1];
  for (size_t l = 0; l < links; ++l) link_offset[l + 1] += link_offset[l];
  std::vector<int32_t> by_link(transfers_.size());
  {
    std::vector<int32_t> fill(link_offset.begin(), link_offset.end() - 1);
    for (size_t x = 0; x < transfers_.size(); ++x) {
      const Transfer& t = transfers_[x];
      by_link[size_t(fill[size_t(t.from_device) * size_t(p_) + size_t(t.to_device)]++)] =
          int32_t(x);
    }
  }
  using Channel = std::pair<double, int32_t>;  // (busy until, stream)
  std::vector<Channel> channels;
  for (size_t l = 0; l < links; ++l) {
    const auto first = by_link.begin() + link_offset[l];
    const auto last = by_link.begin() + link_offset[l + 1];
    if (first == last) continue;
    const int32_t from = int32_t(l / size_t(p_)), to = int32_t(l % size_t(p_));
    auto add_stream = [&](int32_t channel) {
      StreamInfo si;
      si.kind = StreamInfo::Kind::kTransfer;
      si.device = from;
      si.peer = to;
      si.channel = channel;
      si.name = pb_.device(from).id + "->" + pb_.device(to).id + "/copy" + std::to_string(channel);
      s.streams.push_back(std::move(si));
      return int32_t(s.streams.size() - 1);
    };
    if (opt_.link_model == LinkModel::kSerialized) {
      const int32_t stream = add_stream(0);  // the link's transfers never overlap
      for (auto it = first; it != last; ++it) s.transfers[size_t(*it)].stream = stream;
      continue;
    }
    // Contention-free: as many channels as overlapping transfers need (interval
    // colouring in start order, reusing the channel that frees up first).
    std::sort(first, last, [&](int32_t a, int32_t b) {
      return transfers_[size_t(a)].start < transfers_[size_t(b)].start ||
             (transfers_[size_t(a)].start == transfers_[size_t(b)].start && a < b);
    });
    channels.clear();
    int32_t count = 0;
    for (auto it = first; it != last; ++it) {
      const Transfer& x = transfers_[size_t(*it)];
      int32_t stream;
      if (!channels.empty() && channels.front().first <= x.start) {
        std::pop_heap(channels.begin(), channels.end(), std::greater<>());
        stream = channels.back().second;
        channels.pop_back();
      } else {
        stream = add_stream(count++);
      }
      channels.emplace_back(x.finish, stream);
      std::push_heap(channels.begin(), channels.end(), std::greater<>());
      s.transfers[size_t(*it)].stream = stream;
    }
  }

  for (TaskId t = 0; t < n_; ++t)
    s.tasks[size_t(t)] =
        TaskPlacement{dev_[size_t(t)], dev_[size_t(t)], start_[size_t(t)], finish_[size_t(t)]};

  // Issue order and per-stream order.
  std::vector<IssueKey> keys;
  keys.reserve(size_t(n_) + transfers_.size());
  for (TaskId t = 0; t < n_; ++t)
    keys.push_back({start_[size_t(t)], 2 * g_.topological_position(t), dev_[size_t(t)],
                    WorkRef{WorkRef::Kind::kTask, t}});
  for (size_t x = 0; x < transfers_.size(); ++x)
    keys.push_back({transfers_[x].start, 2 * g_.topological_position(transfers_[x].source) + 1,
                    s.transfers[x].stream, WorkRef{WorkRef::Kind::kTransfer, int32_t(x)}});
  std::sort(keys.begin(), keys.end());
  s.issue_order.reserve(keys.size());
  s.stream_order.resize(s.streams.size());
  {
    std::vector<size_t> per_stream(s.streams.size(), 0);
    for (const TaskPlacement& t : s.tasks) ++per_stream[size_t(t.stream)];
    for (const Transfer& x : s.transfers) ++per_stream[size_t(x.stream)];
    for (size_t st = 0; st < s.streams.size(); ++st) s.stream_order[st].reserve(per_stream[st]);
  }
  for (const IssueKey& k : keys) {
    s.issue_order.push_back(k.ref);
    s.stream_order[size_t(k.stream)].push_back(k.ref);
  }

  // Events: one per producer whose result is awaited on another stream. Waits are listed
  // by waiter: transfers in index order, then tasks by id (sequential passes: a
  // 100,000-task schedule has ~10^5 events).
  std::vector<int32_t> task_event(static_cast<size_t>(n_), -1);
  std::vector<int32_t> transfer_event(transfers_.size(), -1);
  s.events.reserve(transfers_.size() * 2);
  s.waits.reserve(transfers_.size() * 2);
  auto add_wait = [&](WorkRef waiter, size_t first_wait, WorkRef producer,
                      int32_t producer_stream) {
    int32_t& ev = producer.kind == WorkRef::Kind::kTask ? task_event[size_t(producer.index)]
                                                        : transfer_event[size_t(producer.index)];
    if (ev < 0) {
      ev = int32_t(s.events.size());
      s.events.push_back(ScheduleEvent{producer, producer_stream});
    }
    for (size_t w = first_wait; w < s.waits.size(); ++w)
      if (s.waits[w].event == ev) return;  // duplicate edges: wait once
    s.waits.push_back(EventWait{ev, waiter});
  };
  for (size_t x = 0; x < transfers_.size(); ++x) {
    const TaskId u = transfers_[x].source;
    add_wait(WorkRef{WorkRef::Kind::kTransfer, int32_t(x)}, s.waits.size(),
             WorkRef{WorkRef::Kind::kTask, u}, dev_[size_t(u)]);
  }
  for (TaskId v = 0; v < n_; ++v) {
    const WorkRef ref{WorkRef::Kind::kTask, v};
    const size_t first_wait = s.waits.size();
    for (int32_t ei : g_.in_edges(v)) {
      const Edge& e = g_.edge(ei);
      const int32_t du = dev_[size_t(e.from)];
      if (du == dev_[size_t(v)]) continue;  // same compute stream: ordered by the stream
      const int32_t x = edge_transfer_[size_t(ei)];
      if (x < 0) {  // no bytes: only the order crosses devices
        add_wait(ref, first_wait, WorkRef{WorkRef::Kind::kTask, e.from}, du);
      } else {
        add_wait(ref, first_wait, WorkRef{WorkRef::Kind::kTransfer, x},
                 s.transfers[size_t(x)].stream);
      }
    }
  }

  s.makespan = 0;
  for (TaskId t = 0; t < n_; ++t) s.makespan = std::max(s.makespan, finish_[size_t(t)]);
  for (const Transfer& x : transfers_) s.makespan = std::max(s.makespan, x.finish);

  s.memory.resize(size_t(p_));
  for (int32_t d = 0; d < p_; ++d)
    s.memory[size_t(d)].capacity_bytes = pb_.device(d).capacity_bytes;
  for (size_t r = 0; r < g_.resident_count(); ++r)
    for (int32_t d = 0; d < p_; ++d)
      if (resident_on_[r * size_t(p_) + size_t(d)]) {
        const ResidentTensor& rt = g_.resident(ResidentId(r));
        DeviceMemory& m = s.memory[size_t(d)];
        m.resident_bytes += rt.bytes;
        (rt.kind == ResidentKind::kState ? m.state_bytes : m.weights_bytes) += rt.bytes;
      }
  const std::vector<uint64_t> peaks = activation_peaks(pb_, s);
  for (int32_t d = 0; d < p_; ++d) s.memory[size_t(d)].peak_activation_bytes = peaks[size_t(d)];
  return s;
}

std::vector<uint64_t> activation_peaks(const Problem& pb, const Schedule& s) {
  const TaskGraph& g = pb.graph();
  const int32_t p = pb.device_count();
  struct Change {
    double time;
    int64_t delta;
    bool operator<(const Change& o) const {
      return time < o.time || (time == o.time && delta < o.delta);  // frees first
    }
  };
  std::vector<std::vector<Change>> changes(static_cast<size_t>(p));
  for (auto& c : changes) c.reserve(2 * (size_t(pb.task_count()) + s.transfers.size()) / size_t(p));
  std::vector<double> copy_end(s.transfers.size(), 0);
  // Transfers of each source task (CSR).
  std::vector<int32_t> offset(size_t(pb.task_count()) + 1, 0);
  for (const Transfer& x : s.transfers) ++offset[size_t(x.source) + 1];
  for (size_t t = 0; t < size_t(pb.task_count()); ++t) offset[t + 1] += offset[t];
  std::vector<int32_t> of_source(s.transfers.size());
  {
    std::vector<int32_t> fill(offset.begin(), offset.end() - 1);
    for (size_t x = 0; x < s.transfers.size(); ++x) {
      of_source[size_t(fill[size_t(s.transfers[x].source)]++)] = int32_t(x);
      copy_end[x] = s.transfers[x].finish;
    }
  }
  for (TaskId u = 0; u < pb.task_count(); ++u) {
    const TaskPlacement& pu = s.tasks[size_t(u)];
    double end = pu.finish;
    const auto outs = g.out_edges(u);
    if (outs.empty()) end = s.makespan;
    for (int32_t ei : outs) {
      const Edge& e = g.edge(ei);
      const TaskPlacement& pv = s.tasks[size_t(e.to)];
      if (pv.device == pu.device || e.bytes <= 0) {
        end = std::max(end, pv.finish);
        continue;
      }
      for (int32_t k = offset[size_t(u)]; k < offset[size_t(u) + 1]; ++k) {
        const int32_t x = of_source[size_t(k)];
        const Transfer& tr = s.transfers[size_t(x)];
        if (tr.data == e.data && tr.to_device == pv.device) {
          copy_end[size_t(x)] = std::max(copy_end[size_t(x)], pv.finish);
          end = std::max(end, tr.finish);
        }
      }
    }
    const uint64_t bytes = g.task(u).activation_bytes;
    if (bytes && pu.device >= 0) {
      changes[size_t(pu.device)].push_back({pu.start, int64_t(bytes)});
      changes[size_t(pu.device)].push_back({end, -int64_t(bytes)});
    }
  }
  for (size_t x = 0; x < s.transfers.size(); ++x) {
    const Transfer& tr = s.transfers[x];
    const uint64_t bytes = uint64_t(std::llround(tr.bytes));
    if (!bytes) continue;
    changes[size_t(tr.to_device)].push_back({tr.start, int64_t(bytes)});
    changes[size_t(tr.to_device)].push_back({copy_end[x], -int64_t(bytes)});
  }
  std::vector<uint64_t> peak(static_cast<size_t>(p), 0);
  for (int32_t d = 0; d < p; ++d) {
    auto& c = changes[size_t(d)];
    std::sort(c.begin(), c.end());
    int64_t live = 0, best = 0;
    for (const Change& ch : c) {
      live += ch.delta;
      best = std::max(best, live);
    }
    peak[size_t(d)] = uint64_t(best);
  }
  return peak;
}

}  // namespace hal::scheduler::detail
