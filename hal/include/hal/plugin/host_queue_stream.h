// hal/plugin/host_queue_stream.h: the stream of a backend whose device work runs on a
// host thread (the CPU backend, the NPU simulator, the template, test fixtures). One
// HostQueue (host_queue.h) runs the work in order, events are HostEvents, and a
// RecordLog keeps the command records; the subclass implements only its copies, fills
// and ops. Part of the plugin kit; header-only.
//
// Contract
// - The device creates HostEvents (or subclasses of HostEvent): record_event and
//   wait_event take any event of the plugin to be one.
// - record_event: the event completes when the queue reaches it, stamped with
//   event_time_ns(fence), where fence is enqueue_fence_ns() read when record_event was
//   called. Defaults: no fence, stamped with the steady clock (steady_clock_ns()).
// - wait_event: work enqueued afterwards waits until the event's generation current at
//   the call has completed (at once if it was never recorded), then on_event_waited(the
//   event's time; 0 when never recorded) runs. Default: nothing.
// - Event records, waits and host functions always run, even behind a failed command
//   (HostQueue::Policy::kAlways), so nothing waiting on a failed stream hangs. Work the
//   subclass enqueues with enqueue() is skipped after a failure until synchronize().
// - Destruction waits for the enqueued work, but a subclass calls drain() first thing in
//   its own destructor: its members and its overrides are gone before this base's
//   destructor runs, and a queued task calling a virtual hook while the destructor
//   changes the object's dynamic type would race with it.
//
// Threading: as StreamImpl (plugin_abi.h). enqueue_fence_ns runs on the caller's
// thread; event_time_ns and on_event_waited run on the queue's worker thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <utility>

#include "hal/command_record.h"
#include "hal/plugin/host_queue.h"
#include "hal/plugin_adapter.h"
#include "hal/status.h"

namespace hal::plugin {

// Nanoseconds of the host's monotonic clock: the device clock of backends that run on
// the host.
inline uint64_t steady_clock_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

// Writes a fill's pattern over its size_bytes at `dst` (the adapter has checked that the
// size is a multiple of the pattern size).
inline void write_fill_pattern(char* dst, const FillCall& fill) {
  if (fill.pattern_size == 1) {
    std::memset(dst, fill.pattern[0], fill.size_bytes);
    return;
  }
  for (uint64_t i = 0; i < fill.size_bytes; i += fill.pattern_size)
    std::memcpy(dst + i, fill.pattern.data(), fill.pattern_size);
}

class HostQueueStream : public StreamImpl {
 public:
  explicit HostQueueStream(uint32_t flags)
      : records_((flags & HAL_STREAM_FLAG_RECORD_COMMANDS) != 0) {}
  ~HostQueueStream() override { drain(); }
  HostQueueStream(const HostQueueStream&) = delete;
  HostQueueStream& operator=(const HostQueueStream&) = delete;

  Status record_event(EventImpl& event) override {
    auto* ev = static_cast<HostEvent*>(&event);
    const uint64_t generation = ev->begin_record();
    const uint64_t fence = enqueue_fence_ns();
    enqueue_always([this, ev, generation, fence]() -> Status {
      ev->complete(generation, event_time_ns(fence));
      return ok_status();
    });
    return ok_status();
  }

  Status wait_event(EventImpl& event) override {
    auto* ev = static_cast<HostEvent*>(&event);
    const uint64_t generation = ev->current_generation();
    enqueue_always([this, ev, generation]() -> Status {
      on_event_waited(generation > 0 ? ev->wait_for(generation) : 0);
      return ok_status();
    });
    return ok_status();
  }

  Status enqueue_host_func(hal_host_func fn, void* user_data) override {
    enqueue_always([fn, user_data]() -> Status {
      fn(user_data);
      return ok_status();
    });
    return ok_status();
  }

  Status synchronize() override { return queue_.synchronize(); }

  size_t take_records(CommandRecord* out, size_t capacity) override {
    return records_.take(out, capacity);
  }

 protected:
  // Device work: skipped after a failed command until synchronize() reports it.
  template <typename F>
  void enqueue(F&& task) {
    queue_.enqueue(std::forward<F>(task), HostQueue::Policy::kSkippable);
  }
  // Ordering work (events, host functions): runs even after a failure.
  template <typename F>
  void enqueue_always(F&& task) {
    queue_.enqueue(std::forward<F>(task), HostQueue::Policy::kAlways);
  }
  RecordLog& records() { return records_; }
  // Waits for everything enqueued so far, discarding a failure nobody asked for.
  void drain() { queue_.synchronize().ignore(); }

  // The earliest device time work enqueued now may start at (a simulator's view of what
  // the host has observed); read on the enqueuing thread.
  virtual uint64_t enqueue_fence_ns() { return 0; }
  // The device time an event the queue reaches now completes at; `fence_ns` is what
  // enqueue_fence_ns() said when it was recorded.
  virtual uint64_t event_time_ns(uint64_t fence_ns) {
    (void)fence_ns;
    return steady_clock_ns();
  }
  // A wait_event completed; the event completed at `event_time_ns` of its device.
  virtual void on_event_waited(uint64_t event_time_ns) { (void)event_time_ns; }

 private:
  RecordLog records_;
  HostQueue queue_;  // last: its worker stops first on destruction
};

}  // namespace hal::plugin
