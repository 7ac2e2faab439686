// hal/plugin/channel_impl.h: the plugin side of channels (ABI 1.2, plugin_abi.h
// CHANNELS): what a backend implements to offer collectives, and the checked calls the
// adapter hands it. Part of the plugin kit; header-only.
//
// A backend offers channels by overriding DeviceImpl::create_channel (returning its
// ChannelImpl) and StreamImpl::collective. Most backends that run on the host derive
// their channel from plugin::KitChannel (collective_engine.h), which already moves the
// data (shared memory in one process, the host's transport across processes); a backend
// with its own communication library (NCCL) derives from ChannelImpl directly.
//
// The adapter has checked every call before the backend sees it: rank within size, a
// transport's rank/size equal to the member's, the collective's shape
// (hal::validate_collective), buffers in bounds and on the stream's device, the channel's
// device equal to the stream's, and send/recv overlapping only in place.
//
// Lifetime: the adapter deletes a ChannelImpl when the host destroys the channel, after
// the streams that used it were synchronized. Threading: as every kit class.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "hal/collective.h"
#include "hal/plugin_abi.h"
#include "hal/status.h"

namespace hal::plugin {

class DeviceImpl;
class BufferImpl;

// What channel_create asked for, checked.
struct ChannelConfig {
  int32_t rank = 0;
  int32_t size = 1;
  std::string group;
  std::optional<hal_transport> transport;  // a copy of the host's; set across processes
  double timeout_s = 300;                  // > 0
};

class ChannelImpl {
 public:
  ChannelImpl(DeviceImpl* device, ChannelConfig config)
      : device_(device), config_(std::move(config)) {}
  virtual ~ChannelImpl() = default;
  DeviceImpl* device() const { return device_; }
  const ChannelConfig& config() const { return config_; }
  int32_t rank() const { return config_.rank; }
  int32_t size() const { return config_.size; }
  // channel_abort: break the communicator so no member waits (default: nothing; the
  // members then fail by their timeouts).
  virtual void abort(const std::string& reason) { (void)reason; }

 private:
  DeviceImpl* device_;
  ChannelConfig config_;
};

// A checked collective: the channel belongs to the stream's device, the shape is valid,
// used buffers are in bounds (unused sides are null).
struct CollectiveCall {
  ChannelImpl* channel = nullptr;
  CollectiveShape shape;
  BufferImpl* send = nullptr;
  uint64_t send_offset = 0;
  BufferImpl* recv = nullptr;
  uint64_t recv_offset = 0;
  uint64_t tag = 0;
};

namespace detail {

// Reads and checks channel_create's arguments (a struct of any minor; the caller has
// read it with read_args).
inline Status to_channel_config(const hal_channel_create_args& a, ChannelConfig* out) {
  if (a.size < 1 || a.rank < 0 || a.rank >= a.size)
    return invalid_argument("channel_create: rank " + std::to_string(a.rank) +
                            " is outside a channel of " + std::to_string(a.size) + " member(s)");
  out->rank = a.rank;
  out->size = a.size;
  out->group = a.group ? a.group : "";
  out->timeout_s = a.timeout_s > 0 ? a.timeout_s : 300.0;
  if (a.transport) {
    hal_transport t;
    std::memset(static_cast<void*>(&t), 0, sizeof t);
    std::memcpy(&t, a.transport, std::min(sizeof t, a.transport->struct_size));
    t.struct_size = sizeof t;
    if (a.transport->struct_size < offsetof(hal_transport, exchange) + sizeof(t.exchange) ||
        !t.exchange)
      return invalid_argument("channel_create: the transport has no exchange function");
    if (t.rank != a.rank || t.size != a.size)
      return invalid_argument("channel_create: rank " + std::to_string(a.rank) + " of " +
                              std::to_string(a.size) + " does not match the transport's rank " +
                              std::to_string(t.rank) + " of " + std::to_string(t.size));
    if (a.transport->struct_size < offsetof(hal_transport, abort) + sizeof(t.abort))
      t.abort = nullptr;
    out->transport = t;
  }
  return ok_status();
}

}  // namespace detail

}  // namespace hal::plugin
