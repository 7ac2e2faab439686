// The list-scheduling engine behind every algorithm but the exhaustive search: a ready
// queue by priority, a device choice per task (by policy), and timelines of idle gaps per
// device and per link. Then the schedule's streams, events and memory.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <queue>
#include <system_error>
#include <thread>

#include "gap_timeline.h"
#include "hal/units.h"
#include "internal.h"

namespace hal::scheduler {
namespace detail {
namespace {

enum class Policy {
  kEft,         // HEFT: earliest finish time
  kPeft,        // earliest finish time + optimistic cost to the exit
  kLookahead,   // the earliest finish the task's children could reach
  kPreferred,   // preferred[t] (or EFT where -1); spills by EFT when it does not fit
  kRoundRobin,  // devices in turn
};

struct RunConfig {
  Algorithm label = Algorithm::kHeft;
  Policy policy = Policy::kEft;
  const std::vector<double>* priority = nullptr;  // higher first (ties: topological order)
  const std::vector<TaskId>* order = nullptr;     // explicit order instead of priorities
  const std::vector<int32_t>* preferred = nullptr;
  const std::vector<double>* oct = nullptr;  // kPeft: tasks x devices
  std::vector<uint64_t> reserve;             // activation reserve per device
};

std::string label(const TaskGraph& g, TaskId t) {
  const std::string& n = g.task(t).name;
  if (n.empty()) return std::string("#").append(std::to_string(t));
  return std::string("'").append(n).append("'");
}

class Engine {
 public:
  Engine(const Problem& pb, const Options& opt, const std::vector<int32_t>& pins)
      : pb_(pb),
        g_(pb.graph()),
        opt_(opt),
        pins_(pins),
        p_(pb.device_count()),
        n_(pb.task_count()) {
    has_unsupported_.assign(size_t(n_), 0);
    for (TaskId t = 0; t < n_; ++t)
      for (int32_t d = 0; d < p_; ++d)
        if (!pb_.supported(t, d) && std::isfinite(pb_.cost(t, d))) has_unsupported_[size_t(t)] = 1;
    shared_data_.assign(g_.edge_count(), 0);
    std::vector<std::pair<int32_t, int32_t>> by_data;  // (data, edge) of one task
    for (TaskId u = 0; u < n_; ++u) {
      by_data.clear();
      for (int32_t e : g_.out_edges(u)) by_data.emplace_back(g_.edge(e).data, e);
      std::sort(by_data.begin(), by_data.end());
      for (size_t i = 1; i < by_data.size(); ++i)
        if (by_data[i].first == by_data[i - 1].first)
          shared_data_[size_t(by_data[i].second)] = shared_data_[size_t(by_data[i - 1].second)] = 1;
    }
  }

  Status run(const RunConfig& cfg) {
    cfg_ = &cfg;
    reset();
    if (cfg.order) {
      for (TaskId t : *cfg.order) HAL_RETURN_IF_ERROR(place(t));
      return ok_status();
    }
    // Ready queue: highest priority first, then earliest in topological order.
    std::vector<int32_t> waiting(static_cast<size_t>(n_));
    using Item = std::pair<double, int32_t>;  // (priority, -topological position)
    std::priority_queue<Item> ready;
    const std::vector<TaskId>& topo = g_.topological_order();
    for (TaskId t = 0; t < n_; ++t) {
      waiting[size_t(t)] = int32_t(g_.in_edges(t).size());
      if (waiting[size_t(t)] == 0)
        ready.emplace((*cfg.priority)[size_t(t)], -g_.topological_position(t));
    }
    while (!ready.empty()) {
      const TaskId t = topo[size_t(-ready.top().second)];
      ready.pop();
      HAL_RETURN_IF_ERROR(place(t));
      for (int32_t e : g_.out_edges(t)) {
        const TaskId c = g_.edge(e).to;
        if (--waiting[size_t(c)] == 0)
          ready.emplace((*cfg.priority)[size_t(c)], -g_.topological_position(c));
      }
    }
    return ok_status();
  }

  Schedule assemble() const;

 private:
  struct PendingTransfer {
    double source_finish;
    int32_t edge;
  };

  void reset() {
    const bool insertion = opt_.insertion;
    device_tl_.assign(size_t(p_), GapTimeline(insertion));
    if (opt_.link_model == LinkModel::kSerialized)
      link_tl_.assign(size_t(p_) * size_t(p_), GapTimeline(insertion));
    else
      link_tl_.clear();
    dev_.assign(size_t(n_), -1);
    start_.assign(size_t(n_), 0);
    finish_.assign(size_t(n_), 0);
    transfers_.clear();
    transfer_next_.clear();
    transfer_head_.assign(size_t(n_), -1);
    edge_transfer_.assign(g_.edge_count(), -1);
    resident_on_.assign(g_.resident_count() * size_t(p_), 0);
    used_.assign(size_t(p_), 0);
    fallbacks_.clear();
    round_robin_ = 0;
  }

  int32_t find_transfer(TaskId source, int32_t data, int32_t to) const {
    for (int32_t x = transfer_head_[size_t(source)]; x >= 0; x = transfer_next_[size_t(x)])
      if (transfers_[size_t(x)].data == data && transfers_[size_t(x)].to_device == to) return x;
    return -1;
  }

  GapTimeline& link_tl(int32_t from, int32_t to) {
    return link_tl_[size_t(from) * size_t(p_) + size_t(to)];
  }
  const GapTimeline& link_tl(int32_t from, int32_t to) const {
    return link_tl_[size_t(from) * size_t(p_) + size_t(to)];
  }

  // When the inputs of t would be on device d. Predecessors not yet placed are skipped
  // (lookahead), except `ov`, taken to be on ov_dev finishing at ov_finish. Transfers not
  // yet made are timed against the link timelines as they stand; on serialized links the
  // task's own new transfers over one link queue behind each other, as commit() will
  // queue them (without that, HEFT sees every input arrive at once and spreads tasks
  // over devices whose links then jam).
  double data_ready(TaskId t, int32_t d, TaskId ov = kNoTask, int32_t ov_dev = -1,
                    double ov_finish = 0) const {
    double ready = 0;
    pending_ready_.clear();
    for (int32_t ei : g_.in_edges(t)) {
      const Edge& e = g_.edge(ei);
      int32_t du;
      double fu;
      if (e.from == ov) {
        du = ov_dev;
        fu = ov_finish;
      } else {
        du = dev_[size_t(e.from)];
        if (du < 0) continue;
        fu = finish_[size_t(e.from)];
      }
      double arrive = fu;
      if (du != d && e.bytes > 0) {
        // Only data another edge also carries can already have a transfer to d.
        const int32_t x =
            e.from == ov || !shared_data_[size_t(ei)] ? -1 : find_transfer(e.from, e.data, d);
        if (x >= 0) {
          arrive = transfers_[size_t(x)].finish;
        } else {
          const double dur = pb_.transfer_seconds(du, d, e.bytes);
          if (link_tl_.empty()) {
            arrive = fu + dur;
          } else {
            pending_ready_.push_back({fu, dur, du});
            continue;
          }
        }
      }
      ready = std::max(ready, arrive);
    }
    if (pending_ready_.size() == 1) {
      const PendingReady& q = pending_ready_[0];
      return std::max(ready, link_tl(q.from, d).earliest(q.source_finish, q.seconds) + q.seconds);
    }
    if (!pending_ready_.empty()) {
      std::sort(pending_ready_.begin(), pending_ready_.end(),
                [](const PendingReady& a, const PendingReady& b) {
                  return a.source_finish < b.source_finish;
                });
      link_end_.assign(size_t(p_), 0.0);
      for (const PendingReady& q : pending_ready_) {
        double& end = link_end_[size_t(q.from)];
        const double s = link_tl(q.from, d).earliest(std::max(q.source_finish, end), q.seconds);
        end = s + q.seconds;
        ready = std::max(ready, end);
      }
    }
    return ready;
  }

  double eft(TaskId t, int32_t d) const {
    const double c = pb_.cost(t, d);
    return device_tl_[size_t(d)].earliest(data_ready(t, d), c) + c;
  }

  uint64_t new_resident_bytes(TaskId t, int32_t d) const {
    uint64_t extra = 0;
    for (ResidentId r : g_.residents_of(t))
      if (!resident_on_[size_t(r) * size_t(p_) + size_t(d)]) extra += g_.resident(r).bytes;
    return extra;
  }
  bool fits(TaskId t, int32_t d) const {
    const uint64_t cap = pb_.device(d).capacity_bytes;
    if (cap == 0) return true;
    const uint64_t need = used_[size_t(d)] + new_resident_bytes(t, d) + cfg_->reserve[size_t(d)];
    return need <= cap;
  }
  bool eligible(TaskId t, int32_t d) const { return std::isfinite(pb_.cost(t, d)) && fits(t, d); }

  // The criterion of the policy for t on d (lower is better).
  double metric(TaskId t, int32_t d) const {
    const double f = eft(t, d);
    switch (cfg_->policy) {
      case Policy::kPeft:
        return f + (*cfg_->oct)[size_t(t) * size_t(p_) + size_t(d)];
      case Policy::kLookahead:
        return lookahead(t, d, f);
      default:
        return f;
    }
  }

  double lookahead(TaskId t, int32_t d, double t_finish) const {
    double worst = t_finish;
    for (int32_t ei : g_.out_edges(t)) {
      const TaskId c = g_.edge(ei).to;
      double best = kInfinity;
      for (int32_t q = 0; q < p_; ++q) {
        const double cost = pb_.cost(c, q);
        if (!pb_.supported(c, q) || !std::isfinite(cost)) continue;
        const double ready = data_ready(c, q, t, d, t_finish);
        // t's own slot on d lies before `ready` when q == d (c depends on t).
        best = std::min(best, device_tl_[size_t(q)].earliest(ready, cost) + cost);
      }
      if (std::isfinite(best)) worst = std::max(worst, best);
    }
    return worst;
  }

  // The best device by the policy's metric among eligible ones: the overall best
  // (`preferred`, ties going to supported devices) and the best supported one.
  void choose(TaskId t, int32_t* preferred, int32_t* chosen) const {
    double best_any = kInfinity, best_sup = kInfinity;
    *preferred = *chosen = -1;
    const bool look_unsupported = has_unsupported_[size_t(t)] != 0;
    for (int32_t d = 0; d < p_; ++d) {
      const bool sup = pb_.supported(t, d);
      if ((!sup && !look_unsupported) || !eligible(t, d)) continue;
      const double m = metric(t, d);
      if (sup && m < best_sup) {
        best_sup = m;
        *chosen = d;
      }
      if (m < best_any ||
          (m == best_any && sup && *preferred >= 0 && !pb_.supported(t, *preferred))) {
        best_any = m;
        *preferred = d;
      }
    }
  }

  Status no_device(TaskId t) const {
    std::string why;
    for (int32_t d = 0; d < p_; ++d) {
      why += why.empty() ? "" : "; ";
      why += pb_.device(d).id + ": ";
      if (!pb_.supported(t, d)) {
        why += "does not support it";
      } else if (!std::isfinite(pb_.cost(t, d))) {
        why += "no peak for its work";
      } else {
        const uint64_t cap = pb_.device(d).capacity_bytes;
        const uint64_t held = used_[size_t(d)] + cfg_->reserve[size_t(d)];
        why += "needs " + format_bytes(new_resident_bytes(t, d)) + " more, " +
               format_bytes(cap > held ? cap - held : 0) + " free of " + format_bytes(cap);
        if (cfg_->reserve[size_t(d)])
          why += " (" + format_bytes(cfg_->reserve[size_t(d)]) + " kept for activations)";
      }
    }
    return out_of_memory("cannot place task " + label(g_, t) + ": " + why);
  }

  Status record_fallback(TaskId t, int32_t preferred, int32_t chosen, const std::string& why) {
    Fallback f;
    f.task = t;
    f.preferred_device = preferred;
    f.chosen_device = chosen;
    f.reason = why;
    f.preferred_finish = eft(t, preferred);
    f.chosen_finish = eft(t, chosen);
    if (opt_.strict_placement)
      return failed_precondition("strict placement: " + why + "; it would run on " +
                                 pb_.device(chosen).id + " instead (finish " +
                                 format_seconds(f.chosen_finish) + " instead of " +
                                 format_seconds(f.preferred_finish) + ")");
    fallbacks_.push_back(std::move(f));
    return ok_status();
  }

  std::string unsupported_reason(TaskId t, int32_t d, bool pinned) const {
    const std::string what =
        pb_.supported(t, d) ? "has no peak for its work (infinite cost)" : "does not support it";
    return "task " + label(g_, t) + " (" + std::string(op_class_name(g_.task(t).work.op_class)) +
           ") " + (pinned ? "is pinned to " : "prefers ") + pb_.device(d).id + ", which " + what;
  }

  Status place(TaskId t) {
    int32_t fixed = pins_.empty() ? -1 : pins_[size_t(t)];
    const bool pinned = fixed >= 0;
    if (cfg_->order) {
      // Replaying a searched assignment: it already honours usable pins; a pin it could
      // not honour (the device does not support the task) is a fallback like any other.
      const int32_t d = (*cfg_->preferred)[size_t(t)];
      if (pinned && d != fixed)
        HAL_RETURN_IF_ERROR(record_fallback(t, fixed, d, unsupported_reason(t, fixed, true)));
      commit(t, d);
      return ok_status();
    }
    if (!pinned) {
      if (cfg_->policy == Policy::kPreferred) fixed = (*cfg_->preferred)[size_t(t)];
      if (cfg_->policy == Policy::kRoundRobin) fixed = round_robin_++ % p_;
    }
    int32_t d = -1;
    if (fixed >= 0) {
      const bool sup = pb_.supported(t, fixed) && std::isfinite(pb_.cost(t, fixed));
      if (sup && fits(t, fixed)) {
        d = fixed;
      } else if (pinned && sup) {
        const uint64_t cap = pb_.device(fixed).capacity_bytes;
        return out_of_memory("pinned placement puts task " + label(g_, t) + " on " +
                             pb_.device(fixed).id +
                             ", which cannot hold it: " + format_bytes(used_[size_t(fixed)]) +
                             " resident + " + format_bytes(new_resident_bytes(t, fixed)) +
                             " more + " + format_bytes(cfg_->reserve[size_t(fixed)]) +
                             " for activations > capacity " + format_bytes(cap));
      } else {
        // The fixed device cannot run it (a fallback) or, unpinned, cannot hold it (a
        // spill): the best device by earliest finish among those that can.
        int32_t any, sup_best;
        choose(t, &any, &sup_best);
        if (sup_best < 0) return no_device(t);
        d = sup_best;
        if (!sup)
          HAL_RETURN_IF_ERROR(record_fallback(t, fixed, d, unsupported_reason(t, fixed, pinned)));
      }
    } else {
      int32_t preferred, chosen;
      choose(t, &preferred, &chosen);
      if (chosen < 0) return no_device(t);
      d = chosen;
      if (preferred != chosen && !pb_.supported(t, preferred))
        HAL_RETURN_IF_ERROR(
            record_fallback(t, preferred, chosen, unsupported_reason(t, preferred, false)));
    }
    commit(t, d);
    return ok_status();
  }

  void commit(TaskId t, int32_t d) {
    double ready = 0;
    pending_.clear();
    for (int32_t ei : g_.in_edges(t)) {
      const Edge& e = g_.edge(ei);
      const int32_t du = dev_[size_t(e.from)];
      if (du == d || e.bytes <= 0) {
        ready = std::max(ready, finish_[size_t(e.from)]);
        continue;
      }
      const int32_t x = find_transfer(e.from, e.data, d);
      if (x >= 0) {
        ready = std::max(ready, transfers_[size_t(x)].finish);
        edge_transfer_[size_t(ei)] = x;
        continue;
      }
      pending_.push_back({finish_[size_t(e.from)], ei});
    }
    // New transfers queue on their links in the order their data becomes available.
    std::sort(pending_.begin(), pending_.end(), [](const auto& a, const auto& b) {
      return a.source_finish < b.source_finish ||
             (a.source_finish == b.source_finish && a.edge < b.edge);
    });
    for (const PendingTransfer& pt : pending_) {
      const Edge& e = g_.edge(pt.edge);
      const int32_t du = dev_[size_t(e.from)];
      const int32_t x = find_transfer(e.from, e.data, d);  // an earlier edge of the same data
      if (x >= 0) {
        ready = std::max(ready, transfers_[size_t(x)].finish);
        edge_transfer_[size_t(pt.edge)] = x;
        continue;
      }
      const double dur = pb_.transfer_seconds(du, d, e.bytes);
      double s = pt.source_finish;
      if (!link_tl_.empty()) {
        s = link_tl(du, d).earliest(s, dur);
        link_tl(du, d).occupy(s, dur);
      }
      Transfer tr;
      tr.source = e.from;
      tr.data = e.data;
      tr.from_device = du;
      tr.to_device = d;
      tr.bytes = e.bytes;
      tr.start = s;
      tr.finish = s + dur;
      transfers_.push_back(tr);
      transfer_next_.push_back(transfer_head_[size_t(e.from)]);
      transfer_head_[size_t(e.from)] = int32_t(transfers_.size() - 1);
      edge_transfer_[size_t(pt.edge)] = int32_t(transfers_.size() - 1);
      ready = std::max(ready, tr.finish);
    }
    const double c = pb_.cost(t, d);
    const double s = device_tl_[size_t(d)].earliest(ready, c);
    device_tl_[size_t(d)].occupy(s, c);
    dev_[size_t(t)] = d;
    start_[size_t(t)] = s;
    finish_[size_t(t)] = s + c;
    for (ResidentId r : g_.residents_of(t)) {
      uint8_t& on = resident_on_[size_t(r) * size_t(p_) + size_t(d)];
      if (!on) {
        on = 1;
        used_[size_t(d)] += g_.resident(r).bytes;
      }
    }
  }

  const Problem& pb_;
  const TaskGraph& g_;
  const Options& opt_;
  const std::vector<int32_t>& pins_;
  const int32_t p_;
  const int32_t n_;
  const RunConfig* cfg_ = nullptr;
  std::vector<uint8_t> has_unsupported_;
  std::vector<uint8_t> shared_data_;  // per edge: another edge carries the same data

  std::vector<GapTimeline> device_tl_;
  std::vector<GapTimeline> link_tl_;
  std::vector<int32_t> dev_;
  std::vector<double> start_, finish_;
  std::vector<Transfer> transfers_;
  std::vector<int32_t> transfer_next_, transfer_head_;
  std::vector<int32_t> edge_transfer_;  // per edge: the transfer feeding it, or -1
  std::vector<uint8_t> resident_on_;
  std::vector<uint64_t> used_;
  std::vector<Fallback> fallbacks_;
  std::vector<PendingTransfer> pending_;
  struct PendingReady {
    double source_finish;
    double seconds;
    int32_t from;
  };
  mutable std::vector<PendingReady> pending_ready_;  // data_ready() scratch
  mutable std::vector<double> link_end_;
  int32_t round_robin_ = 0;
};

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

// Runs one configuration, growing the activation reserve of a device until the measured
// activation peak fits next to its resident tensors.
Result<Schedule> run_with_capacity(Engine& engine, const Problem& pb, RunConfig cfg) {
  const int32_t p = pb.device_count();
  cfg.reserve.assign(size_t(p), 0);
  for (int iter = 0; iter < 8; ++iter) {
    HAL_RETURN_IF_ERROR(engine.run(cfg));
    Schedule s = engine.assemble();
    bool settled = true;
    for (int32_t d = 0; d < p; ++d) {
      const DeviceMemory& m = s.memory[size_t(d)];
      if (m.capacity_bytes == 0 || m.peak_bytes() <= m.capacity_bytes) continue;
      if (m.peak_activation_bytes <= cfg.reserve[size_t(d)])
        return internal_error("scheduler: capacity accounting broke on " + pb.device(d).id);
      cfg.reserve[size_t(d)] = m.peak_activation_bytes;
      settled = false;
    }
    if (settled) return s;
  }
  return out_of_memory("scheduler (" + std::string(algorithm_name(cfg.label)) +
                       "): activations do not fit next to the resident tensors even after "
                       "keeping room for their measured peak");
}

std::vector<double> mean_costs(const Problem& pb) {
  const int32_t p = pb.device_count();
  std::vector<double> w(size_t(pb.task_count()), 0);
  for (TaskId t = 0; t < pb.task_count(); ++t) {
    double sum = 0;
    int count = 0;
    for (int32_t d = 0; d < p; ++d)
      if (pb.supported(t, d) && std::isfinite(pb.cost(t, d))) {
        sum += pb.cost(t, d);
        ++count;
      }
    w[size_t(t)] = count ? sum / count : 0;
  }
  return w;
}

// Mean communication cost of an edge (the HEFT paper: mean latency + bytes / mean
// bandwidth over the usable links between distinct devices).
struct MeanLink {
  double latency = 0;
  double bandwidth = 0;
  double seconds(double bytes) const {
    if (bytes <= 0 || bandwidth <= 0) return 0;
    return latency + bytes / bandwidth;
  }
};
MeanLink mean_link(const Problem& pb) {
  MeanLink m;
  int count = 0;
  for (int32_t i = 0; i < pb.device_count(); ++i)
    for (int32_t j = 0; j < pb.device_count(); ++j) {
      if (i == j || !(pb.link(i, j).bandwidth_bytes_per_s > 0)) continue;
      m.latency += pb.link(i, j).latency_s;
      m.bandwidth += pb.link(i, j).bandwidth_bytes_per_s;
      ++count;
    }
  if (count) {
    m.latency /= count;
    m.bandwidth /= count;
  }
  return m;
}

// PEFT's optimistic cost table: OCT(t, p) = max over children c of
// min over q of OCT(c, q) + w(c, q) + (q != p ? mean comm : 0).
std::vector<double> optimistic_cost_table(const Problem& pb) {
  const TaskGraph& g = pb.graph();
  const size_t p = size_t(pb.device_count());
  const MeanLink ml = mean_link(pb);
  std::vector<double> oct(size_t(pb.task_count()) * p, 0.0);
  std::vector<double> a(p);
  const auto& topo = g.topological_order();
  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    const TaskId t = *it;
    for (int32_t ei : g.out_edges(t)) {
      const Edge& e = g.edge(ei);
      double min_all = kInfinity;
      for (size_t q = 0; q < p; ++q) {
        const double w = pb.cost(e.to, int32_t(q));
        a[q] = pb.supported(e.to, int32_t(q)) && std::isfinite(w) ? oct[size_t(e.to) * p + q] + w
                                                                  : kInfinity;
        min_all = std::min(min_all, a[q]);
      }
      const double comm = ml.seconds(e.bytes);
      for (size_t q = 0; q < p; ++q) {
        const double v = std::min(a[q], min_all + comm);
        double& o = oct[size_t(t) * p + q];
        o = std::max(o, v);
      }
    }
  }
  return oct;
}

std::vector<double> oct_ranks(const Problem& pb, const std::vector<double>& oct) {
  const size_t p = size_t(pb.device_count());
  std::vector<double> rank(size_t(pb.task_count()), 0);
  for (TaskId t = 0; t < pb.task_count(); ++t) {
    double sum = 0;
    int count = 0;
    for (size_t d = 0; d < p; ++d)
      if (pb.supported(t, int32_t(d)) && std::isfinite(pb.cost(t, int32_t(d)))) {
        sum += oct[size_t(t) * p + d];
        ++count;
      }
    rank[size_t(t)] = count ? sum / count : 0;
  }
  return rank;
}

// The device with the least total cost over the tasks (unsupported tasks counted at their
// cheapest supported device).
int32_t fastest_device(const Problem& pb) {
  int32_t best = 0;
  double best_sum = kInfinity;
  for (int32_t d = 0; d < pb.device_count(); ++d) {
    double sum = 0;
    for (TaskId t = 0; t < pb.task_count(); ++t) {
      double c = pb.supported(t, d) ? pb.cost(t, d) : kInfinity;
      if (!std::isfinite(c))
        for (int32_t q = 0; q < pb.device_count(); ++q)
          if (pb.supported(t, q)) c = std::min(c, pb.cost(t, q));
      sum += c;
    }
    if (sum < best_sum) {
      best_sum = sum;
      best = d;
    }
  }
  return best;
}

// Layer partition: contiguous ranges of layers per device, chosen by dynamic programming
// over (next layer, devices used, last device) to minimise total compute plus the
// transfers at range boundaries, each range's resident bytes within its device's
// capacity. Tasks outside the blocks join the layer they feed or follow. Returns the
// preferred device per task, or an error when the graph has no layers or no partition
// fits.
Result<std::vector<int32_t>> layer_partition(const Problem& pb) {
  const TaskGraph& g = pb.graph();
  const int32_t n = pb.task_count();
  const int32_t layers = g.layer_count();
  if (layers < 2) return failed_precondition("layer partition: the graph has fewer than 2 layers");
  // Effective layer: own layer; else the latest layer among predecessors; else the
  // earliest among successors; else 0.
  std::vector<int32_t> eff(size_t(n), -1);
  const auto& topo = g.topological_order();
  for (TaskId t : topo) {
    int32_t l = g.task(t).layer;
    if (l < 0)
      for (int32_t e : g.in_edges(t)) l = std::max(l, eff[size_t(g.edge(e).from)]);
    eff[size_t(t)] = l;
  }
  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    const TaskId t = *it;
    if (eff[size_t(t)] >= 0) continue;
    int32_t l = layers;
    for (int32_t e : g.out_edges(t)) {
      const int32_t s = eff[size_t(g.edge(e).to)];
      if (s >= 0) l = std::min(l, s);
    }
    eff[size_t(t)] = l < layers ? l : 0;
  }
  // Deep graphs are planned over at most 256 contiguous groups of layers: the DP is
  // quadratic in the number of units.
  int32_t units = layers;
  if (layers > 256) {
    const int32_t block = (layers + 255) / 256;
    for (int32_t& e : eff) e /= block;
    units = (layers + block - 1) / block;
  }

  // Consider at most 6 devices (the DP is exponential in them): the cheapest in total.
  const int32_t p_all = pb.device_count();
  std::vector<int32_t> devs(static_cast<size_t>(p_all));
  std::iota(devs.begin(), devs.end(), 0);
  std::vector<double> total(size_t(p_all), 0);
  std::vector<double> min_cost(size_t(n), kInfinity);
  for (TaskId t = 0; t < n; ++t)
    for (int32_t d = 0; d < p_all; ++d)
      if (pb.supported(t, d)) min_cost[size_t(t)] = std::min(min_cost[size_t(t)], pb.cost(t, d));
  auto cost_on = [&](TaskId t, int32_t d) {
    const double c = pb.cost(t, d);
    return pb.supported(t, d) && std::isfinite(c) ? c : min_cost[size_t(t)];
  };
  for (int32_t d = 0; d < p_all; ++d)
    for (TaskId t = 0; t < n; ++t) total[size_t(d)] += cost_on(t, d);
  std::sort(devs.begin(), devs.end(), [&](int32_t a, int32_t b) {
    return total[size_t(a)] < total[size_t(b)] || (total[size_t(a)] == total[size_t(b)] && a < b);
  });
  if (devs.size() > 6) devs.resize(6);
  const int32_t p = int32_t(devs.size());
  const size_t L = size_t(units);

  // Per layer: compute per device (prefix sums), resident bytes (a tensor counts at the
  // first layer using it), bytes crossing the boundary before it.
  std::vector<double> cprefix(size_t(p) * (L + 1), 0);
  std::vector<double> layer_cost(size_t(p) * L, 0);
  for (TaskId t = 0; t < n; ++t)
    for (int32_t i = 0; i < p; ++i)
      layer_cost[size_t(i) * L + size_t(eff[size_t(t)])] += cost_on(t, devs[size_t(i)]);
  for (int32_t i = 0; i < p; ++i)
    for (size_t l = 0; l < L; ++l)
      cprefix[size_t(i) * (L + 1) + l + 1] =
          cprefix[size_t(i) * (L + 1) + l] + layer_cost[size_t(i) * L + l];
  std::vector<int32_t> first_use(g.resident_count(), units);
  for (TaskId t = 0; t < n; ++t)
    for (ResidentId r : g.residents_of(t))
      first_use[size_t(r)] = std::min(first_use[size_t(r)], eff[size_t(t)]);
  std::vector<uint64_t> rprefix(L + 1, 0);
  {
    std::vector<uint64_t> per_layer(L, 0);
    for (size_t r = 0; r < g.resident_count(); ++r)
      if (first_use[r] < units) per_layer[size_t(first_use[r])] += g.resident(ResidentId(r)).bytes;
    for (size_t l = 0; l < L; ++l) rprefix[l + 1] = rprefix[l] + per_layer[l];
  }
  std::vector<double> cut(L + 1, 0);  // cut[l]: bytes crossing from < l to >= l
  {
    std::vector<double> diff(L + 2, 0);
    for (TaskId u = 0; u < n; ++u) {
      // Each output of u crosses the boundaries up to the last layer reading it, once.
      std::vector<std::pair<int32_t, std::pair<int32_t, double>>> outs;  // data -> (layer, bytes)
      for (int32_t e : g.out_edges(u)) {
        const Edge& ed = g.edge(e);
        const int32_t lv = eff[size_t(ed.to)];
        if (lv <= eff[size_t(u)] || ed.bytes <= 0) continue;
        auto it = std::find_if(outs.begin(), outs.end(),
                               [&](const auto& o) { return o.first == ed.data; });
        if (it == outs.end())
          outs.push_back({ed.data, {lv, ed.bytes}});
        else
          it->second = {std::max(it->second.first, lv), std::max(it->second.second, ed.bytes)};
      }
      for (const auto& [data, lb] : outs) {
        diff[size_t(eff[size_t(u)]) + 1] += lb.second;
        diff[size_t(lb.first) + 1] -= lb.second;
      }
    }
    double run = 0;
    for (size_t l = 0; l <= L; ++l) {
      run += diff[l];
      cut[l] = run;
    }
  }

  // DP over (layer l, used set S, last device i).
  const size_t sets = size_t(1) << p;
  auto at = [&](size_t l, size_t s, int32_t i) { return (l * sets + s) * size_t(p) + size_t(i); };
  std::vector<double> f((L + 1) * sets * size_t(p), kInfinity);
  struct Parent {
    int32_t l = -1;
    int32_t set = 0;
    int32_t dev = -1;
  };
  std::vector<Parent> parent(f.size());
  auto capacity_ok = [&](int32_t i, size_t from, size_t to) {
    const uint64_t cap = pb.device(devs[size_t(i)]).capacity_bytes;
    return cap == 0 || rprefix[to] - rprefix[from] <= cap;
  };
  auto segment_cost = [&](int32_t i, size_t from, size_t to) {
    return cprefix[size_t(i) * (L + 1) + to] - cprefix[size_t(i) * (L + 1) + from];
  };
  for (int32_t i = 0; i < p; ++i)
    for (size_t m = 1; m <= L; ++m) {
      if (!capacity_ok(i, 0, m)) break;
      const size_t k = at(m, size_t(1) << i, i);
      const double c = segment_cost(i, 0, m);
      if (c < f[k]) {
        f[k] = c;
        parent[k] = Parent{0, 0, -1};
      }
    }
  for (size_t l = 1; l < L; ++l)
    for (size_t s = 1; s < sets; ++s)
      for (int32_t i = 0; i < p; ++i) {
        const double base = f[at(l, s, i)];
        if (!std::isfinite(base)) continue;
        for (int32_t j = 0; j < p; ++j) {
          if (s & (size_t(1) << j)) continue;
          const double boundary = pb.transfer_seconds(devs[size_t(i)], devs[size_t(j)], cut[l]);
          for (size_t m = l + 1; m <= L; ++m) {
            if (!capacity_ok(j, l, m)) break;
            const size_t k = at(m, s | (size_t(1) << j), j);
            const double c = base + boundary + segment_cost(j, l, m);
            if (c < f[k]) {
              f[k] = c;
              parent[k] = Parent{int32_t(l), int32_t(s), i};
            }
          }
        }
      }
  double best = kInfinity;
  size_t best_s = 0;
  int32_t best_i = -1;
  for (size_t s = 1; s < sets; ++s)
    for (int32_t i = 0; i < p; ++i)
      if (f[at(L, s, i)] < best) {
        best = f[at(L, s, i)];
        best_s = s;
        best_i = i;
      }
  if (best_i < 0)
    return out_of_memory("layer partition: no split of the " + std::to_string(layers) +
                         " layers into contiguous ranges fits the devices' memory (" +
                         format_bytes(rprefix[L]) + " resident in all)");
  std::vector<int32_t> device_of_layer(L, -1);
  size_t l = L, s = best_s;
  int32_t i = best_i;
  while (l > 0) {
    const Parent& par = parent[at(l, s, i)];
    for (size_t k = size_t(par.l); k < l; ++k) device_of_layer[k] = devs[size_t(i)];
    l = size_t(par.l);
    s = size_t(par.set);
    i = par.dev;
  }
  std::vector<int32_t> preferred(static_cast<size_t>(n));
  for (TaskId t = 0; t < n; ++t) preferred[size_t(t)] = device_of_layer[size_t(eff[size_t(t)])];
  return preferred;
}

}  // namespace

Result<std::vector<int32_t>> resolve_pins(const Problem& pb, const Options& options) {
  std::vector<int32_t> pins;
  if (!options.placement.empty()) {
    HAL_ASSIGN_OR_RETURN(pins, resolve_placement(options.placement, pb.graph(), pb.device_ids()));
  }
  if (options.task_pins.empty()) return pins;
  if (options.task_pins.size() != size_t(pb.task_count()))
    return invalid_argument("task pins: " + std::to_string(options.task_pins.size()) +
                            " given for " + std::to_string(pb.task_count()) + " tasks");
  if (pins.empty()) pins.assign(size_t(pb.task_count()), -1);
  for (TaskId t = 0; t < pb.task_count(); ++t) {
    const int32_t d = options.task_pins[size_t(t)];
    if (d < -1 || d >= pb.device_count())
      return invalid_argument("task pins: task " + label(pb.graph(), t) + " pinned to device " +
                              std::to_string(d) + " of " + std::to_string(pb.device_count()));
    if (d >= 0) pins[size_t(t)] = d;
  }
  return pins;
}

std::vector<double> upward_ranks(const Problem& pb) {
  const TaskGraph& g = pb.graph();
  const std::vector<double> w = mean_costs(pb);
  const MeanLink ml = mean_link(pb);
  std::vector<double> rank(size_t(pb.task_count()), 0);
  const auto& topo = g.topological_order();
  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    const TaskId t = *it;
    double tail = 0;
    for (int32_t ei : g.out_edges(t)) {
      const Edge& e = g.edge(ei);
      tail = std::max(tail, ml.seconds(e.bytes) + rank[size_t(e.to)]);
    }
    rank[size_t(t)] = w[size_t(t)] + tail;
  }
  return rank;
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

Result<Schedule> replay(const Problem& pb, const Options& options, const std::vector<int32_t>& pins,
                        const Assignment& assignment, Algorithm label) {
  Engine engine(pb, options, pins);
  RunConfig cfg;
  cfg.label = label;
  cfg.policy = Policy::kPreferred;
  cfg.order = &assignment.order;
  cfg.preferred = &assignment.device;
  return run_with_capacity(engine, pb, cfg);
}

}  // namespace detail

using detail::Engine;
using detail::Policy;
using detail::RunConfig;

namespace {

Schedule refine_by_units(const Problem& pb, const Options& opt, const std::vector<int32_t>& pins,
                         const std::vector<double>& ranks, Schedule best);

Result<Schedule> run_algorithm(const Problem& pb, const Options& opt,
                               const std::vector<int32_t>& pins, Algorithm a,
                               const std::vector<double>& ranks) {
  Engine engine(pb, opt, pins);
  RunConfig cfg;
  cfg.label = a;
  cfg.priority = &ranks;
  switch (a) {
    case Algorithm::kHeft:
      cfg.policy = Policy::kEft;
      return detail::run_with_capacity(engine, pb, cfg);
    case Algorithm::kLookahead:
      cfg.policy = Policy::kLookahead;
      return detail::run_with_capacity(engine, pb, cfg);
    case Algorithm::kPeft: {
      const std::vector<double> oct = detail::optimistic_cost_table(pb);
      const std::vector<double> rank = detail::oct_ranks(pb, oct);
      cfg.policy = Policy::kPeft;
      cfg.oct = &oct;
      cfg.priority = &rank;
      return detail::run_with_capacity(engine, pb, cfg);
    }
    case Algorithm::kLayerPartition: {
      HAL_ASSIGN_OR_RETURN(std::vector<int32_t> preferred, detail::layer_partition(pb));
      cfg.policy = Policy::kPreferred;
      cfg.preferred = &preferred;
      return detail::run_with_capacity(engine, pb, cfg);
    }
    case Algorithm::kAllOnFastest: {
      const std::vector<int32_t> preferred(size_t(pb.task_count()), detail::fastest_device(pb));
      cfg.policy = Policy::kPreferred;
      cfg.preferred = &preferred;
      return detail::run_with_capacity(engine, pb, cfg);
    }
    case Algorithm::kRoundRobin:
      cfg.policy = Policy::kRoundRobin;
      return detail::run_with_capacity(engine, pb, cfg);
    case Algorithm::kExhaustive: {
      if (opt.link_model != LinkModel::kContentionFree)
        return invalid_argument(
            "exhaustive search models contention-free links only (Options::link_model)");
      if (size_t(pb.task_count()) > opt.exhaustive_max_tasks)
        return invalid_argument("exhaustive search: " + std::to_string(pb.task_count()) +
                                " tasks exceed the limit of " +
                                std::to_string(opt.exhaustive_max_tasks));
      // The search times tasks in the append model; any schedule has an append-model
      // equivalent at least as short, so it is exact there.
      Options append = opt;
      append.insertion = false;
      Options heft_opt = opt;
      HAL_ASSIGN_OR_RETURN(Schedule heft,
                           run_algorithm(pb, heft_opt, pins, Algorithm::kHeft, ranks));
      bool proved = false;
      const double bound = heft.makespan * (1 + 1e-9) + 1e-300;
      auto found = detail::exhaustive_search(pb, append, pins, bound, &proved);
      if (!found.ok()) {
        if (found.status().code() != StatusCode::kNotFound) return found.status();
        // Nothing beats HEFT by more than rounding: HEFT is optimal.
        heft.algorithm = Algorithm::kExhaustive;
        heft.proved_optimal = proved;
        return heft;
      }
      HAL_ASSIGN_OR_RETURN(Schedule s,
                           detail::replay(pb, append, pins, *found, Algorithm::kExhaustive));
      s.proved_optimal = proved;
      return s;
    }
    case Algorithm::kRefine: {  // HEFT, then the unit refinement kAuto applies
      HAL_ASSIGN_OR_RETURN(Schedule heft, run_algorithm(pb, opt, pins, Algorithm::kHeft, ranks));
      Schedule refined = refine_by_units(pb, opt, pins, ranks, std::move(heft));
      refined.algorithm = Algorithm::kRefine;
      return refined;
    }
    case Algorithm::kAuto:
      break;
  }
  return invalid_argument("scheduler: algorithm 'auto' is not a single algorithm");
}

// Local search over units of placement: each layer is one unit, each task outside the
// layers its own. Moving a unit to another device and re-timing the whole graph is
// accepted when the makespan drops; sweeps repeat until none does. Contiguous layer
// splits, the shape memory pressure calls for, are reached one boundary layer at a time,
// and tasks outside the blocks (embedding, LM head) find their own device.
Schedule refine_by_units(const Problem& pb, const Options& opt, const std::vector<int32_t>& pins,
                         const std::vector<double>& ranks, Schedule best) {
  const TaskGraph& g = pb.graph();
  const int32_t n = pb.task_count(), p = pb.device_count(), layers = g.layer_count();
  std::vector<int32_t> unit_of(static_cast<size_t>(n));
  int32_t units = layers;
  for (TaskId t = 0; t < n; ++t) {
    const int32_t l = g.task(t).layer;
    unit_of[size_t(t)] = l >= 0 ? l : units++;
  }
  if (units > 4096) return best;  // too many loose tasks for unit moves to pay off
  std::vector<std::vector<TaskId>> members(static_cast<size_t>(units));
  for (TaskId t : g.topological_order()) members[size_t(unit_of[size_t(t)])].push_back(t);
  // Units in the order the graph first reaches them.
  std::vector<int32_t> order;
  {
    std::vector<uint8_t> seen(static_cast<size_t>(units), 0);
    for (TaskId t : g.topological_order())
      if (!seen[size_t(unit_of[size_t(t)])]++) order.push_back(unit_of[size_t(t)]);
  }
  Engine engine(pb, opt, pins);
  RunConfig cfg;
  cfg.label = Algorithm::kRefine;
  cfg.policy = Policy::kPreferred;
  cfg.priority = &ranks;
  std::vector<int32_t> preferred(static_cast<size_t>(n));
  for (TaskId t = 0; t < n; ++t) preferred[size_t(t)] = best.tasks[size_t(t)].device;
  cfg.preferred = &preferred;
  std::vector<int32_t> saved;
  bool changed = false;
  // Each trial re-times the whole graph: bound the trials so refinement costs a bounded
  // multiple of one schedule however many layers there are.
  int64_t budget = std::clamp<int64_t>(int64_t(4'000'000) / std::max(n, 1), 16, 4000);
  // A unit's device: the one all its tasks share, -1 when mixed.
  auto unit_device = [&](int32_t u) {
    const auto& tasks = members[size_t(u)];
    const int32_t d = tasks.empty() ? -1 : preferred[size_t(tasks[0])];
    for (TaskId t : tasks)
      if (preferred[size_t(t)] != d) return -1;
    return d;
  };
  for (int32_t sweep = 0; sweep < opt.refine_max_sweeps && budget > 0; ++sweep) {
    bool improved = false;
    for (size_t k = 0; k < order.size() && budget > 0; ++k) {
      const int32_t u = order[k];
      const auto& tasks = members[size_t(u)];
      // Worth moving: units outside the layers, units split over devices, and units at
      // a boundary between devices (moving one shifts the boundary by one layer).
      const int32_t here = unit_device(u);
      const bool loose = u >= layers;
      const bool boundary = (k > 0 && unit_device(order[k - 1]) != here) ||
                            (k + 1 < order.size() && unit_device(order[k + 1]) != here);
      if (!loose && here >= 0 && !boundary) continue;
      for (int32_t d = 0; d < p && budget > 0; ++d) {
        if (here == d) continue;
        --budget;
        saved.clear();
        for (TaskId t : tasks) {
          saved.push_back(preferred[size_t(t)]);
          preferred[size_t(t)] = d;
        }
        auto s = run_with_capacity(engine, pb, cfg);
        if (s.ok() && s->makespan < best.makespan * (1 - 1e-9)) {
          best = std::move(*s);
          for (TaskId t = 0; t < n; ++t) preferred[size_t(t)] = best.tasks[size_t(t)].device;
          improved = changed = true;
        } else {
          for (size_t i = 0; i < tasks.size(); ++i) preferred[size_t(tasks[i])] = saved[i];
        }
      }
    }
    if (!improved) break;
  }
  if (changed) best.algorithm = Algorithm::kRefine;
  return best;
}

}  // namespace

PlacementSpec placement_of(const Problem& problem, const Schedule& schedule) {
  const TaskGraph& g = problem.graph();
  const int32_t layers = g.layer_count(), p = problem.device_count();
  // Per layer and device: (resident bytes, tasks).
  std::vector<std::pair<uint64_t, int64_t>> weight(size_t(layers) * size_t(p), {0, 0});
  for (TaskId t = 0; t < problem.task_count() && size_t(t) < schedule.tasks.size(); ++t) {
    const int32_t l = g.task(t).layer, d = schedule.tasks[size_t(t)].device;
    if (l < 0 || d < 0 || d >= p) continue;
    auto& w = weight[size_t(l) * size_t(p) + size_t(d)];
    for (ResidentId r : g.residents_of(t)) w.first += g.resident(r).bytes;
    ++w.second;
  }
  PlacementSpec spec;
  for (int32_t l = 0; l < layers; ++l) {
    int32_t best = -1;
    for (int32_t d = 0; d < p; ++d) {
      const auto& w = weight[size_t(l) * size_t(p) + size_t(d)];
      if (w.second == 0) continue;
      if (best < 0 || w > weight[size_t(l) * size_t(p) + size_t(best)]) best = d;
    }
    if (best < 0) continue;  // a layer index no task uses
    const std::string& id = problem.device(best).id;
    if (!spec.layer_pins.empty() && spec.layer_pins.back().device == id &&
        spec.layer_pins.back().last == l - 1)
      spec.layer_pins.back().last = l;
    else
      spec.layer_pins.push_back(LayerPin{l, l, id, 0});
  }
  return spec;
}

Result<Schedule> schedule(const Problem& problem, const Options& options) {
  HAL_RETURN_IF_ERROR(problem.validate());
  HAL_ASSIGN_OR_RETURN(const std::vector<int32_t> pins, detail::resolve_pins(problem, options));
  const std::vector<double> ranks = detail::upward_ranks(problem);
  if (options.algorithm != Algorithm::kAuto)
    return run_algorithm(problem, options, pins, options.algorithm, ranks);

  std::vector<Algorithm> candidates = {Algorithm::kHeft};
  if (size_t(problem.task_count()) <= options.peft_max_tasks)
    candidates.push_back(Algorithm::kPeft);
  if (size_t(problem.task_count()) <= options.lookahead_max_tasks)
    candidates.push_back(Algorithm::kLookahead);
  if (problem.graph().layer_count() >= 2 && problem.device_count() >= 2)
    candidates.push_back(Algorithm::kLayerPartition);
  candidates.push_back(Algorithm::kAllOnFastest);

  // Candidates are independent: on big graphs they run on threads of their own.
  std::vector<std::optional<Result<Schedule>>> outcomes(candidates.size());
  auto run_candidate = [&](size_t i) {
    outcomes[i].emplace(run_algorithm(problem, options, pins, candidates[i], ranks));
  };
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  if (options.parallel_candidates && hw > 1 &&
      size_t(problem.task_count()) >= options.parallel_min_tasks) {
    std::vector<std::thread> threads;
    size_t spawned = 1;
    try {
      for (; spawned < candidates.size(); ++spawned) threads.emplace_back(run_candidate, spawned);
    } catch (const std::system_error&) {
      // No thread to be had: the rest run here.
    }
    run_candidate(0);
    for (size_t i = spawned; i < candidates.size(); ++i) run_candidate(i);
    for (std::thread& t : threads) t.join();
  } else {
    for (size_t i = 0; i < candidates.size(); ++i) run_candidate(i);
  }

  std::optional<Schedule> best;
  std::vector<CandidateResult> results;
  Status first_failure;
  for (size_t i = 0; i < candidates.size(); ++i) {
    Result<Schedule>& s = *outcomes[i];
    CandidateResult r;
    r.algorithm = candidates[i];
    if (!s.ok()) {
      r.failure = s.status().message();
      if (first_failure.ok()) first_failure = s.status();
    } else {
      r.makespan = s->makespan;
      if (!best || s->makespan < best->makespan) best = std::move(*s);
    }
    results.push_back(std::move(r));
  }
  if (!best) return first_failure;
  if (problem.graph().layer_count() >= 2 && problem.device_count() >= 2 &&
      size_t(problem.task_count()) <= options.refine_max_tasks) {
    Schedule refined = refine_by_units(problem, options, pins, ranks, *best);
    CandidateResult r;
    r.algorithm = Algorithm::kRefine;
    r.makespan = refined.makespan;
    results.push_back(r);
    if (refined.makespan < best->makespan) best = std::move(refined);
  }
  best->candidates = std::move(results);
  return std::move(*best);
}

}  // namespace hal::scheduler
