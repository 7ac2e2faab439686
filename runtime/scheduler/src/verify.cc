// verify_schedule: every invariant of a schedule, checked from the problem alone (it
// does not reuse the engine's bookkeeping), so tests and the runtime can trust a
// schedule they did not build.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "hal/units.h"
#include "internal.h"

namespace hal::scheduler {

namespace {

std::string name_of(const TaskGraph& g, TaskId t) {
  const std::string& n = g.task(t).name;
  if (n.empty()) return std::string("#").append(std::to_string(t));
  return std::string("'").append(n).append("'");
}

Status bad(const std::string& m) { return internal_error("invalid schedule: " + m); }

}  // namespace

Status verify_schedule(const Problem& pb, const Schedule& s, const Options& options) {
  const TaskGraph& g = pb.graph();
  const int32_t n = pb.task_count();
  const int32_t p = pb.device_count();
  const double tol = 1e-9 * std::max(1.0, s.makespan);
  if (s.tasks.size() != size_t(n))
    return bad(std::to_string(s.tasks.size()) + " placements for " + std::to_string(n) + " tasks");
  const int32_t streams = int32_t(s.streams.size());
  HAL_ASSIGN_OR_RETURN(const std::vector<int32_t> pins, detail::resolve_pins(pb, options));
  std::set<TaskId> fell_back;
  for (const Fallback& f : s.fallbacks) fell_back.insert(f.task);

  // Tasks: device, duration, stream.
  double last = 0;
  for (TaskId t = 0; t < n; ++t) {
    const TaskPlacement& tp = s.tasks[size_t(t)];
    if (tp.device < 0 || tp.device >= p) return bad("task " + name_of(g, t) + " is not placed");
    if (!pb.supported(t, tp.device))
      return bad("task " + name_of(g, t) + " runs on " + pb.device(tp.device).id +
                 ", which does not support it");
    if (std::abs((tp.finish - tp.start) - pb.cost(t, tp.device)) > tol || tp.start < -tol)
      return bad("task " + name_of(g, t) + " lasts " + std::to_string(tp.finish - tp.start) +
                 " s on " + pb.device(tp.device).id + " but costs " +
                 std::to_string(pb.cost(t, tp.device)) + " s there");
    if (tp.stream < 0 || tp.stream >= streams ||
        s.streams[size_t(tp.stream)].kind != StreamInfo::Kind::kCompute ||
        s.streams[size_t(tp.stream)].device != tp.device)
      return bad("task " + name_of(g, t) + " is not on a compute stream of its device");
    if (!pins.empty() && pins[size_t(t)] >= 0 && pins[size_t(t)] != tp.device &&
        !fell_back.count(t))
      return bad("task " + name_of(g, t) + " is pinned to " + pb.device(pins[size_t(t)]).id +
                 " but runs on " + pb.device(tp.device).id + " without a recorded fallback");
    last = std::max(last, tp.finish);
  }
  if (options.strict_placement && !s.fallbacks.empty()) {
    return bad("strict placement but " + std::to_string(s.fallbacks.size()) + " fallbacks");
  }

  // Transfers: endpoints, duration, stream; unique per (source, data, destination).
  std::map<std::tuple<TaskId, int32_t, int32_t>, int32_t> transfer_of;
  std::vector<uint8_t> transfer_used(s.transfers.size(), 0);
  for (size_t x = 0; x < s.transfers.size(); ++x) {
    const Transfer& tr = s.transfers[x];
    const std::string what = "transfer " + std::to_string(x);
    if (tr.source < 0 || tr.source >= n) return bad(what + " has no valid source task");
    if (tr.from_device != s.tasks[size_t(tr.source)].device || tr.to_device < 0 ||
        tr.to_device >= p || tr.to_device == tr.from_device)
      return bad(what + " of " + name_of(g, tr.source) + " has wrong devices");
    if (tr.start < s.tasks[size_t(tr.source)].finish - tol)
      return bad(what + " of " + name_of(g, tr.source) + " starts before its source finishes");
    const double dur = pb.transfer_seconds(tr.from_device, tr.to_device, tr.bytes);
    if (std::abs((tr.finish - tr.start) - dur) > tol)
      return bad(what + " of " + name_of(g, tr.source) + " lasts " +
                 std::to_string(tr.finish - tr.start) + " s; the link needs " +
                 std::to_string(dur) + " s");
    if (tr.stream < 0 || tr.stream >= streams) return bad(what + " has no stream");
    const StreamInfo& si = s.streams[size_t(tr.stream)];
    if (si.kind != StreamInfo::Kind::kTransfer || si.device != tr.from_device ||
        si.peer != tr.to_device)
      return bad(what + " is not on a transfer stream of its link");
    if (s.link_model == LinkModel::kSerialized && si.channel != 0)
      return bad(what + ": serialized links have one stream each");
    if (!transfer_of.emplace(std::make_tuple(tr.source, tr.data, tr.to_device), int32_t(x)).second)
      return bad(what + " moves the same data of " + name_of(g, tr.source) + " twice to " +
                 pb.device(tr.to_device).id);
    last = std::max(last, tr.finish);
  }

  // Precedence through every edge.
  for (const Edge& e : g.edges()) {
    const TaskPlacement& u = s.tasks[size_t(e.from)];
    const TaskPlacement& v = s.tasks[size_t(e.to)];
    double ready = u.finish;
    if (u.device != v.device && e.bytes > 0) {
      auto it = transfer_of.find(std::make_tuple(e.from, e.data, v.device));
      if (it == transfer_of.end())
        return bad("no transfer brings the output of " + name_of(g, e.from) + " to " +
                   pb.device(v.device).id + " for " + name_of(g, e.to));
      const Transfer& tr = s.transfers[size_t(it->second)];
      if (std::abs(tr.bytes - e.bytes) > 1e-9 * std::max(1.0, e.bytes))
        return bad("the transfer for " + name_of(g, e.from) + " -> " + name_of(g, e.to) +
                   " moves " + std::to_string(tr.bytes) + " bytes, the edge " +
                   std::to_string(e.bytes));
      transfer_used[size_t(it->second)] = 1;
      ready = tr.finish;
    }
    if (v.start < ready - tol)
      return bad(name_of(g, e.to) + " starts at " + std::to_string(v.start) +
                 " before its input from " + name_of(g, e.from) + " is ready at " +
                 std::to_string(ready));
  }
  for (size_t x = 0; x < s.transfers.size(); ++x)
    if (!transfer_used[x])
      return bad("transfer " + std::to_string(x) + " of " + name_of(g, s.transfers[x].source) +
                 " feeds no task");

  // Streams: contents match, ordered by start, no overlap; devices too.
  if (s.stream_order.size() != s.streams.size()) return bad("stream_order size differs");
  auto interval = [&](const WorkRef& r) -> std::pair<double, double> {
    if (r.kind == WorkRef::Kind::kTask)
      return {s.tasks[size_t(r.index)].start, s.tasks[size_t(r.index)].finish};
    return {s.transfers[size_t(r.index)].start, s.transfers[size_t(r.index)].finish};
  };
  size_t listed = 0;
  for (int32_t st = 0; st < streams; ++st) {
    const auto& order = s.stream_order[size_t(st)];
    listed += order.size();
    for (size_t i = 0; i < order.size(); ++i) {
      const WorkRef& r = order[i];
      const int32_t own = r.kind == WorkRef::Kind::kTask
                              ? (r.index >= 0 && r.index < n ? s.tasks[size_t(r.index)].stream : -1)
                              : (r.index >= 0 && size_t(r.index) < s.transfers.size()
                                     ? s.transfers[size_t(r.index)].stream
                                     : -1);
      if (own != st)
        return bad("stream " + s.streams[size_t(st)].name + " lists work of another stream");
      if (i > 0) {
        const auto [ps, pf] = interval(order[i - 1]);
        const auto [cs, cf] = interval(r);
        if (cs < ps - tol)
          return bad("stream " + s.streams[size_t(st)].name + " is not in start order");
        if (cs < pf - tol && cf - cs > tol && pf - ps > tol)
          return bad("work overlaps on stream " + s.streams[size_t(st)].name);
      }
    }
  }
  if (listed != size_t(n) + s.transfers.size())
    return bad("stream orders do not list every task and transfer once");
  for (int32_t d = 0; d < p; ++d) {
    std::vector<std::pair<double, double>> busy;
    for (TaskId t = 0; t < n; ++t)
      if (s.tasks[size_t(t)].device == d && s.tasks[size_t(t)].finish > s.tasks[size_t(t)].start)
        busy.emplace_back(s.tasks[size_t(t)].start, s.tasks[size_t(t)].finish);
    std::sort(busy.begin(), busy.end());
    for (size_t i = 1; i < busy.size(); ++i)
      if (busy[i].first < busy[i - 1].second - tol)
        return bad("two tasks overlap on " + pb.device(d).id + " at " +
                   std::to_string(busy[i].first));
  }

  // Issue order: a permutation, topological over tasks and transfers.
  if (s.issue_order.size() != size_t(n) + s.transfers.size())
    return bad("issue order does not list every task and transfer once");
  std::vector<int32_t> pos_task(size_t(n), -1), pos_transfer(s.transfers.size(), -1);
  for (size_t i = 0; i < s.issue_order.size(); ++i) {
    const WorkRef& r = s.issue_order[i];
    int32_t& slot = r.kind == WorkRef::Kind::kTask ? pos_task.at(size_t(r.index))
                                                   : pos_transfer.at(size_t(r.index));
    if (slot >= 0) return bad("issue order lists some work twice");
    slot = int32_t(i);
  }
  for (const Edge& e : g.edges()) {
    const TaskPlacement& v = s.tasks[size_t(e.to)];
    if (pos_task[size_t(e.from)] > pos_task[size_t(e.to)])
      return bad("issue order puts " + name_of(g, e.to) + " before its input " +
                 name_of(g, e.from));
    if (s.tasks[size_t(e.from)].device != v.device && e.bytes > 0) {
      const int32_t x = transfer_of.at(std::make_tuple(e.from, e.data, v.device));
      if (pos_transfer[size_t(x)] > pos_task[size_t(e.to)] ||
          pos_task[size_t(e.from)] > pos_transfer[size_t(x)])
        return bad("issue order misplaces the transfer for " + name_of(g, e.from) + " -> " +
                   name_of(g, e.to));
    }
  }

  // Events: every dependency across streams has one.
  std::set<std::tuple<int, int32_t, int, int32_t>>
      waits;  // (producer kind, index, waiter kind, index)
  for (const ScheduleEvent& ev : s.events) {
    const int32_t own = ev.producer.kind == WorkRef::Kind::kTask
                            ? s.tasks.at(size_t(ev.producer.index)).stream
                            : s.transfers.at(size_t(ev.producer.index)).stream;
    if (own != ev.stream) return bad("an event is recorded on a stream other than its producer's");
  }
  for (const EventWait& w : s.waits) {
    if (w.event < 0 || size_t(w.event) >= s.events.size()) return bad("a wait names no event");
    const WorkRef& prod = s.events[size_t(w.event)].producer;
    // The event must be recorded before the waiter is issued.
    const int32_t ppos = prod.kind == WorkRef::Kind::kTask ? pos_task[size_t(prod.index)]
                                                           : pos_transfer[size_t(prod.index)];
    const int32_t wpos = w.waiter.kind == WorkRef::Kind::kTask
                             ? pos_task.at(size_t(w.waiter.index))
                             : pos_transfer.at(size_t(w.waiter.index));
    if (ppos > wpos) return bad("a wait is issued before its event is recorded");
    waits.emplace(int(prod.kind), prod.index, int(w.waiter.kind), w.waiter.index);
  }
  auto need = [&](WorkRef prod, int32_t prod_stream, WorkRef waiter,
                  int32_t waiter_stream) -> Status {
    if (prod_stream == waiter_stream) return ok_status();
    if (!waits.count({int(prod.kind), prod.index, int(waiter.kind), waiter.index}))
      return bad("no event orders a dependency across streams " +
                 s.streams[size_t(prod_stream)].name + " -> " +
                 s.streams[size_t(waiter_stream)].name);
    return ok_status();
  };
  for (size_t x = 0; x < s.transfers.size(); ++x) {
    const Transfer& tr = s.transfers[x];
    HAL_RETURN_IF_ERROR(need({WorkRef::Kind::kTask, tr.source}, s.tasks[size_t(tr.source)].stream,
                             {WorkRef::Kind::kTransfer, int32_t(x)}, tr.stream));
  }
  for (const Edge& e : g.edges()) {
    const TaskPlacement& u = s.tasks[size_t(e.from)];
    const TaskPlacement& v = s.tasks[size_t(e.to)];
    if (u.device != v.device && e.bytes > 0) {
      const int32_t x = transfer_of.at(std::make_tuple(e.from, e.data, v.device));
      HAL_RETURN_IF_ERROR(need({WorkRef::Kind::kTransfer, x}, s.transfers[size_t(x)].stream,
                               {WorkRef::Kind::kTask, e.to}, v.stream));
    } else {
      HAL_RETURN_IF_ERROR(
          need({WorkRef::Kind::kTask, e.from}, u.stream, {WorkRef::Kind::kTask, e.to}, v.stream));
    }
  }

  // Memory: resident tensors recomputed here; activations from their liveness.
  if (s.memory.size() != size_t(p)) return bad("memory is not reported per device");
  std::vector<uint64_t> resident(size_t(p), 0);
  std::vector<uint8_t> on(g.resident_count() * size_t(p), 0);
  for (TaskId t = 0; t < n; ++t)
    for (ResidentId r : g.residents_of(t)) {
      const int32_t d = s.tasks[size_t(t)].device;
      if (!on[size_t(r) * size_t(p) + size_t(d)]) {
        on[size_t(r) * size_t(p) + size_t(d)] = 1;
        resident[size_t(d)] += g.resident(r).bytes;
      }
    }
  const std::vector<uint64_t> peaks = detail::activation_peaks(pb, s);
  for (int32_t d = 0; d < p; ++d) {
    const DeviceMemory& m = s.memory[size_t(d)];
    if (m.resident_bytes != resident[size_t(d)] || m.peak_activation_bytes != peaks[size_t(d)])
      return bad("memory of " + pb.device(d).id + " is misreported");
    const uint64_t cap = pb.device(d).capacity_bytes;
    if (cap && resident[size_t(d)] + peaks[size_t(d)] > cap)
      return bad(pb.device(d).id + " holds " + format_bytes(resident[size_t(d)]) + " resident + " +
                 format_bytes(peaks[size_t(d)]) + " activations, over its " + format_bytes(cap));
  }

  if (std::abs(s.makespan - last) > tol)
    return bad("makespan " + std::to_string(s.makespan) + " differs from the last finish " +
               std::to_string(last));
  return ok_status();
}

}  // namespace hal::scheduler
