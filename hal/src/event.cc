#include "hal/event.h"

#include "hal/device.h"
#include "loaded_plugin.h"

namespace hal {

Event::~Event() {
  if (handle_) device_->plugin().api->event_destroy(handle_);
}

Event::Event(Event&& o) noexcept : device_(o.device_), handle_(o.handle_) { o.handle_ = nullptr; }

Event& Event::operator=(Event&& o) noexcept {
  if (this != &o) {
    if (handle_) device_->plugin().api->event_destroy(handle_);
    device_ = o.device_;
    handle_ = o.handle_;
    o.handle_ = nullptr;
  }
  return *this;
}

Status Event::synchronize() const {
  if (!handle_) return failed_precondition("synchronize of an empty event");
  const auto& p = device_->plugin();
  return p.take_error(p.api->event_synchronize(handle_), device_->id() + ": event synchronize");
}

Result<bool> Event::query() const {
  if (!handle_) return failed_precondition("query of an empty event");
  const auto& p = device_->plugin();
  int32_t done = 0;
  HAL_RETURN_IF_ERROR(p.take_error(p.api->event_query(handle_, &done), device_->id() + ": event query"));
  return done != 0;
}

Result<uint64_t> Event::timestamp_ns() const {
  if (!handle_) return failed_precondition("timestamp of an empty event");
  const auto& p = device_->plugin();
  uint64_t ts = 0;
  HAL_RETURN_IF_ERROR(
      p.take_error(p.api->event_timestamp_ns(handle_, &ts), device_->id() + ": event timestamp"));
  return ts;
}

Result<double> Event::elapsed_seconds(const Event& start, const Event& end) {
  if (!start.valid() || !end.valid()) return failed_precondition("elapsed time of an empty event");
  if (&start.device() != &end.device())
    return invalid_argument("elapsed time between events of different devices (" +
                            start.device().id() + ", " + end.device().id() +
                            "): their clocks share no epoch");
  HAL_ASSIGN_OR_RETURN(uint64_t a, start.timestamp_ns());
  HAL_ASSIGN_OR_RETURN(uint64_t b, end.timestamp_ns());
  return (double(b) - double(a)) * 1e-9;
}

}  // namespace hal
