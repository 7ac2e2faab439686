// Host side of channels (hal/channel.h): creation through the plugin's ABI 1.2 entries,
// the C bridge a Transport is handed to plugins through, and Stream::collective.
#include "hal/channel.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "hal/device.h"
#include "hal/stream.h"
#include "loaded_plugin.h"

namespace hal {

namespace {

// hal_transport.exchange for a C++ Transport (context = the Transport).
hal_status_code transport_exchange(void* context, const hal_transport_exchange_args* args,
                                   char* message, size_t message_size) {
  auto write_message = [&](const std::string& m) {
    if (!message || message_size == 0) return;
    const size_t n = std::min(m.size(), message_size - 1);
    std::memcpy(message, m.data(), n);
    message[n] = '\0';
  };
  if (!context || !args) {
    write_message("transport exchange: null argument");
    return HAL_STATUS_INVALID_ARGUMENT;
  }
  Transport::Exchange e;
  const size_t n = args->struct_size;
  if (HAL_ABI_HAS_FIELD(hal_transport_exchange_args, timeout_s, n)) {
    e.send_peer = args->send_peer;
    e.send_data = args->send_data;
    e.send_bytes = args->send_bytes;
    e.recv_peer = args->recv_peer;
    e.recv_data = args->recv_data;
    e.recv_bytes = args->recv_bytes;
    e.tag = args->tag;
    e.timeout_s = args->timeout_s > 0 ? args->timeout_s : default_collective_timeout_s();
  } else {
    write_message("transport exchange: arguments of " + std::to_string(n) +
                  " bytes are shorter than ABI 1.2's");
    return HAL_STATUS_INVALID_ARGUMENT;
  }
  try {
    Status s = static_cast<Transport*>(context)->exchange(e);
    if (s.ok()) return HAL_STATUS_OK;
    write_message(s.message());
    return hal_status_code(s.code());
  } catch (const std::exception& ex) {
    write_message(std::string("transport threw: ") + ex.what());
    return HAL_STATUS_INTERNAL;
  } catch (...) {
    write_message("transport threw an unknown exception");
    return HAL_STATUS_INTERNAL;
  }
}

void transport_abort(void* context, const char* reason) {
  if (!context) return;
  try {
    static_cast<Transport*>(context)->abort(reason ? reason : "");
  } catch (...) {
  }
}

bool has_channel_entries(const detail::LoadedPlugin& p) {
  return HAL_PLUGIN_HAS(p, channel_create) && HAL_PLUGIN_HAS(p, channel_destroy) &&
         HAL_PLUGIN_HAS(p, stream_collective);
}

}  // namespace

double default_collective_timeout_s() {
  if (const char* env = std::getenv("HAL_COLLECTIVE_TIMEOUT")) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end && end != env && *end == '\0' && v > 0 && v < 1e7) return v;
  }
  return 300.0;
}

bool Channel::available(const Device& device) { return has_channel_entries(device.plugin()); }

Result<Channel> Channel::create(Device& device, int32_t rank, int32_t size,
                                const ChannelOptions& options) {
  const detail::LoadedPlugin& p = device.plugin();
  if (!has_channel_entries(p))
    return unimplemented(device.id() + ": plugin " + p.name + " (ABI " +
                         std::to_string(p.api->abi_major) + "." + std::to_string(p.api->abi_minor) +
                         ") offers no channels, so collectives (tensor and pipeline parallelism) "
                         "are unavailable on it");
  if (size < 1 || rank < 0 || rank >= size)
    return invalid_argument(device.id() + ": channel rank " + std::to_string(rank) +
                            " is outside a channel of " + std::to_string(size) + " member(s)");
  if (options.transport) {
    const int32_t tr = options.transport->rank(), ts = options.transport->size();
    if (tr != rank || ts != size)
      return invalid_argument(device.id() + ": a channel across processes has one member per " +
                              "process: rank " + std::to_string(rank) + " of " +
                              std::to_string(size) + " does not match the transport's rank " +
                              std::to_string(tr) + " of " + std::to_string(ts));
  }
  hal_transport transport{};
  transport.struct_size = sizeof(transport);
  transport.context = options.transport;
  transport.rank = rank;
  transport.size = size;
  transport.exchange = &transport_exchange;
  transport.abort = &transport_abort;

  hal_channel_create_args a{};
  a.struct_size = sizeof(a);
  a.device = device.handle();
  a.rank = rank;
  a.size = size;
  a.group = options.group.c_str();
  a.transport = options.transport ? &transport : nullptr;
  a.timeout_s = options.timeout_s > 0 ? options.timeout_s : default_collective_timeout_s();
  HAL_RETURN_IF_ERROR(p.take_error(p.api->channel_create(&a),
                                   device.id() + ": channel '" + options.group + "' rank " +
                                       std::to_string(rank) + " of " + std::to_string(size)));
  if (!a.channel) return internal_error(device.id() + ": plugin " + p.name + " created no channel");
  return Channel(&device, a.channel, rank, size, options.group);
}

Result<std::vector<Channel>> Channel::create_group(const std::vector<Device*>& devices,
                                                   const ChannelOptions& options) {
  if (devices.empty()) return invalid_argument("a channel group needs at least one device");
  if (options.transport)
    return invalid_argument(
        "create_group makes the members of one process; create a "
        "channel across processes with Channel::create");
  std::vector<Channel> out;
  out.reserve(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    if (!devices[i])
      return invalid_argument("channel group: device " + std::to_string(i) + " is null");
    if (&devices[i]->plugin() != &devices[0]->plugin())
      return invalid_argument("channel group: " + devices[i]->id() + " and " + devices[0]->id() +
                              " belong to different plugins; members of one process must share "
                              "a plugin");
    auto c = create(*devices[i], int32_t(i), int32_t(devices.size()), options);
    if (!c.ok()) return c.status();
    out.push_back(std::move(*c));
  }
  return out;
}

Channel::~Channel() { release(); }

Channel::Channel(Channel&& o) noexcept
    : device_(o.device_),
      handle_(o.handle_),
      rank_(o.rank_),
      size_(o.size_),
      group_(std::move(o.group_)) {
  o.handle_ = nullptr;
}

Channel& Channel::operator=(Channel&& o) noexcept {
  if (this != &o) {
    release();
    device_ = o.device_;
    handle_ = o.handle_;
    rank_ = o.rank_;
    size_ = o.size_;
    group_ = std::move(o.group_);
    o.handle_ = nullptr;
  }
  return *this;
}

void Channel::release() {
  if (handle_) device_->plugin().api->channel_destroy(handle_);
  handle_ = nullptr;
}

bool Channel::abort(const std::string& reason) {
  if (!handle_) return false;
  const detail::LoadedPlugin& p = device_->plugin();
  if (!HAL_PLUGIN_HAS(p, channel_abort)) return false;
  p.api->channel_abort(handle_, reason.c_str());
  return true;
}

Status Stream::collective(const Channel& channel, const Collective& op, uint64_t tag) {
  if (!handle_) return failed_precondition("collective on an empty stream");
  if (!channel.valid())
    return failed_precondition(device_->id() + ": collective on an empty channel");
  const std::string what = device_->id() + ": " + op.shape.describe();
  if (&channel.device() != device_)
    return invalid_argument(what + ": the channel's member is on " + channel.device().id() +
                            ", not on the stream's device");
  HAL_RETURN_IF_ERROR(validate_collective(op.shape, channel.rank(), channel.size()));
  auto check_side = [&](const Buffer* b, uint64_t offset, uint64_t bytes,
                        const char* side) -> Status {
    if (bytes == 0) return ok_status();
    if (!b || !b->valid())
      return invalid_argument(what + ": needs a " + side + " buffer of " + std::to_string(bytes) +
                              " bytes");
    if (&b->device() != device_)
      return invalid_argument(what + ": the " + side + " buffer lives on " + b->device().id());
    if (offset > b->size() || bytes > b->size() - offset)
      return invalid_argument(what + ": " + side + " range of " + std::to_string(bytes) +
                              " bytes at offset " + std::to_string(offset) + " overruns the " +
                              std::to_string(b->size()) + "-byte buffer");
    return ok_status();
  };
  const uint64_t sb = op.shape.send_bytes(channel.rank(), channel.size());
  const uint64_t rb = op.shape.recv_bytes(channel.rank(), channel.size());
  HAL_RETURN_IF_ERROR(check_side(op.send, op.send_offset, sb, "send"));
  HAL_RETURN_IF_ERROR(check_side(op.recv, op.recv_offset, rb, "recv"));
  if (sb > 0 && rb > 0)
    HAL_RETURN_IF_ERROR(check_collective_overlap(op.shape, channel.rank(), channel.size(),
                                                 op.send->handle() == op.recv->handle(),
                                                 op.send_offset, op.recv_offset)
                            .with_context(device_->id()));
  hal_collective_args a{};
  a.struct_size = sizeof(a);
  a.stream = handle_;
  a.channel = channel.handle();
  a.kind = hal_collective_kind(op.shape.kind);
  a.reduction = hal_reduction(op.shape.reduction);
  a.dtype = hal_dtype(op.shape.dtype);
  a.count = op.shape.count;
  a.send_buffer = sb > 0 ? op.send->handle() : nullptr;
  a.send_offset = op.send_offset;
  a.recv_buffer = rb > 0 ? op.recv->handle() : nullptr;
  a.recv_offset = op.recv_offset;
  a.peer = op.shape.peer;
  a.tag = tag;
  const auto& p = device_->plugin();
  return p.take_error(p.api->stream_collective(&a), device_->id());
}

namespace {

Status enqueue(Stream& stream, const Channel& channel, CollectiveShape shape, const Buffer* send,
               const Buffer* recv, uint64_t tag) {
  Collective c;
  c.shape = shape;
  c.send = send;
  c.recv = recv;
  return stream.collective(channel, c, tag);
}

}  // namespace

Status all_reduce(Stream& stream, const Channel& channel, const Buffer& send, const Buffer& recv,
                  uint64_t count, DType dtype, Reduction op, uint64_t tag) {
  return enqueue(stream, channel, {CollectiveKind::kAllReduce, op, dtype, count, 0}, &send, &recv,
                 tag);
}

Status all_gather(Stream& stream, const Channel& channel, const Buffer& send, const Buffer& recv,
                  uint64_t count, DType dtype, uint64_t tag) {
  return enqueue(stream, channel, {CollectiveKind::kAllGather, Reduction::kSum, dtype, count, 0},
                 &send, &recv, tag);
}

Status reduce_scatter(Stream& stream, const Channel& channel, const Buffer& send,
                      const Buffer& recv, uint64_t count, DType dtype, Reduction op, uint64_t tag) {
  return enqueue(stream, channel, {CollectiveKind::kReduceScatter, op, dtype, count, 0}, &send,
                 &recv, tag);
}

Status broadcast(Stream& stream, const Channel& channel, const Buffer& send, const Buffer& recv,
                 uint64_t count, DType dtype, int32_t root, uint64_t tag) {
  return enqueue(stream, channel, {CollectiveKind::kBroadcast, Reduction::kSum, dtype, count, root},
                 &send, &recv, tag);
}

Status send(Stream& stream, const Channel& channel, const Buffer& data, uint64_t count, DType dtype,
            int32_t peer, uint64_t tag) {
  return enqueue(stream, channel, {CollectiveKind::kSend, Reduction::kSum, dtype, count, peer},
                 &data, nullptr, tag);
}

Status recv(Stream& stream, const Channel& channel, const Buffer& data, uint64_t count, DType dtype,
            int32_t peer, uint64_t tag) {
  return enqueue(stream, channel, {CollectiveKind::kRecv, Reduction::kSum, dtype, count, peer},
                 nullptr, &data, tag);
}

}  // namespace hal
