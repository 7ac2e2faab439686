// backends/npu_sim/npu_timeline.h: simulated time. One calendar per engine (lane) of
// a device records when that engine is busy, so commands of several streams contend
// for it.
//
// Contract
// - Time is in simulated nanoseconds since the plugin was created; every device of one
//   plugin shares that epoch (so a stream may wait on another device's event).
// - BusyCalendar::reserve(ready, duration) books the earliest interval of `duration`
//   starting at or after `ready` that does not overlap earlier bookings (insertion into
//   gaps: a command from a stream whose clock is behind still uses idle time). Durations
//   of 0 book nothing and start at `ready`.
// - The calendar keeps at most kMaxIntervals intervals; beyond that the two oldest are
//   merged (the gap between them counts as busy), which only delays commands that
//   would start before almost all of the device's past work.
// - reserve_together() books the same interval on two calendars (a staged peer copy
//   holds one device's outbound and the other's inbound DMA at once).
//
// Threading: BusyCalendar is not synchronised; callers lock (the device owns a mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

namespace hal::npu_sim {

class BusyCalendar {
 public:
  static constexpr size_t kMaxIntervals = 4096;

  // Start of the earliest free interval of `duration_ns` at or after `ready_ns`.
  uint64_t earliest_start(uint64_t ready_ns, uint64_t duration_ns) const;
  // Books [start, start + duration) (must be free); returns the end.
  uint64_t book(uint64_t start_ns, uint64_t duration_ns);
  // earliest_start + book.
  uint64_t reserve(uint64_t ready_ns, uint64_t duration_ns, uint64_t* start_ns);

  uint64_t busy_ns() const { return busy_ns_; }  // total booked time
  uint64_t last_end_ns() const { return last_end_ns_; }
  size_t interval_count() const { return busy_.size(); }

 private:
  std::map<uint64_t, uint64_t> busy_;  // start -> end, disjoint, non-adjacent
  uint64_t busy_ns_ = 0;
  uint64_t last_end_ns_ = 0;
};

// Books `duration_ns` on both calendars at the earliest start free on both.
uint64_t reserve_together(BusyCalendar& a, BusyCalendar& b, uint64_t ready_ns, uint64_t duration_ns,
                          uint64_t* start_ns);

// Seconds of simulated time to whole nanoseconds (rounded up, so nothing is free).
uint64_t to_sim_ns(double seconds);

}  // namespace hal::npu_sim
