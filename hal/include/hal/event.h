// hal/event.h: a point in a stream's work that other streams and the host can wait on.
//
// Contract
// - An Event belongs to one device. Stream::record(event) marks "all work enqueued so
//   far"; the event completes when that work is done and then carries the device time
//   of completion. Recording again resets it (waits see the latest record at the time
//   they are enqueued or called).
// - An event never recorded counts as complete.
// - Streams of any device may wait on it (Stream::wait): natively within one plugin,
//   through a host function across plugins.
// - elapsed_seconds(a, b) is b's timestamp minus a's, on their common device's clock
//   (simulated time on simulated devices).
// - An Event must not outlive the Platform.
//
// Threading: all methods are thread-safe.
#pragma once

#include <cstdint>

#include "hal/status.h"

struct hal_event;

namespace hal {

class Device;

class Event {
 public:
  Event() = default;
  ~Event();
  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool valid() const { return handle_ != nullptr; }
  Device& device() const { return *device_; }

  Status synchronize() const;
  Result<bool> query() const;
  Result<uint64_t> timestamp_ns() const;

  static Result<double> elapsed_seconds(const Event& start, const Event& end);

  hal_event* handle() const { return handle_; }

 private:
  friend class Device;
  Event(Device* device, hal_event* handle) : device_(device), handle_(handle) {}
  Device* device_ = nullptr;
  hal_event* handle_ = nullptr;
};

}  // namespace hal
