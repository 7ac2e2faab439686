#include "npu_timeline.h"

#include <cmath>
#include <iterator>

namespace hal::npu_sim {

uint64_t BusyCalendar::earliest_start(uint64_t ready_ns, uint64_t duration_ns) const {
  if (duration_ns == 0) return ready_ns;
  uint64_t t = ready_ns;
  // The interval that may contain `t`: the last one starting at or before it.
  auto it = busy_.upper_bound(t);
  if (it != busy_.begin()) {
    auto prev = std::prev(it);
    if (prev->second > t) t = prev->second;
  }
  for (; it != busy_.end(); ++it) {
    if (it->first >= t + duration_ns) break;  // the gap before this interval fits
    if (it->second > t) t = it->second;
  }
  return t;
}

uint64_t BusyCalendar::book(uint64_t start_ns, uint64_t duration_ns) {
  if (duration_ns == 0) return start_ns;
  uint64_t start = start_ns, end = start_ns + duration_ns;
  busy_ns_ += duration_ns;
  if (end > last_end_ns_) last_end_ns_ = end;
  // Merge with touching neighbours so the map stays small.
  auto next = busy_.lower_bound(start);
  if (next != busy_.begin()) {
    auto prev = std::prev(next);
    if (prev->second == start) {
      start = prev->first;
      busy_.erase(prev);
    }
  }
  if (next != busy_.end() && next->first == end) {
    end = next->second;
    busy_.erase(next);
  }
  busy_[start] = end;
  while (busy_.size() > kMaxIntervals) {
    auto first = busy_.begin();
    auto second = std::next(first);
    const uint64_t s = first->first, e = second->second;
    busy_.erase(first);
    busy_.erase(second);
    busy_[s] = e;
  }
  return start_ns + duration_ns;
}

uint64_t BusyCalendar::reserve(uint64_t ready_ns, uint64_t duration_ns, uint64_t* start_ns) {
  const uint64_t s = earliest_start(ready_ns, duration_ns);
  if (start_ns) *start_ns = s;
  return book(s, duration_ns);
}

uint64_t reserve_together(BusyCalendar& a, BusyCalendar& b, uint64_t ready_ns, uint64_t duration_ns,
                          uint64_t* start_ns) {
  if (&a == &b) return a.reserve(ready_ns, duration_ns, start_ns);
  uint64_t t = ready_ns;
  // Each step moves t forward to a start free on one calendar; it stops when both agree.
  for (;;) {
    const uint64_t ta = a.earliest_start(t, duration_ns);
    const uint64_t tb = b.earliest_start(ta, duration_ns);
    if (tb == ta) {
      t = ta;
      break;
    }
    t = tb;
  }
  if (start_ns) *start_ns = t;
  a.book(t, duration_ns);
  return b.book(t, duration_ns);
}

uint64_t to_sim_ns(double seconds) {
  if (!(seconds > 0)) return 0;
  return uint64_t(std::ceil(seconds * 1e9));
}

}  // namespace hal::npu_sim
