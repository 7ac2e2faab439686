// hal/channel.h: a communicator over devices, and collectives as stream commands.
//
// A Channel is one device's member (rank r of n) of a communicator, as ncclComm_t or
// IREE's iree_hal_channel_t is. Its collectives (hal/collective.h has the exact
// semantics and buffer sizes) are enqueued on a stream of that device with
// Stream::collective() or the helpers below, run in stream order like any command, and
// leave a CommandRecord (CommandKind::kCollective) saying how many bytes this member
// sent and received over which class of link, so reports and traces show communication
// next to compute.
//
// Members
// - In one process: every member on a device of the same plugin, created with the same
//   ChannelOptions::group and size (create_group makes all of them at once, ranks in the
//   order of the devices given; a device may appear more than once).
// - Across processes: one member per process, rank and size those of the
//   ChannelOptions::transport (e.g. the MPI bootstrap's), whatever the plugin.
// - Creation does not wait for the other members; the first collective does.
//
// Failures (never a hang): a collective that waits longer than timeout_s for its peers
// fails (DEADLINE_EXCEEDED, naming the ranks it waited for) at its stream's next
// synchronize; from then on, and after abort(), the communicator is broken and every
// collective of every member fails at once (ABORTED) naming the first failure. Across
// processes abort() also ends the job through the transport.
//
// Availability: a device whose plugin offers no channels (a plugin of ABI 1.0/1.1, or
// one without them) makes create() fail with UNIMPLEMENTED naming the device and plugin.
//
// Lifetime: a Channel must be destroyed before the Platform, after the streams that
// used it have been synchronized. Threading: create() and abort() are thread-safe;
// collectives follow the stream rules (hal/stream.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hal/buffer.h"
#include "hal/collective.h"
#include "hal/status.h"
#include "hal/transport.h"

struct hal_channel;

namespace hal {

class Device;
class Stream;

struct ChannelOptions {
  std::string group = "default";   // in-process rendezvous name
  Transport* transport = nullptr;  // not owned; spans processes when set
  // How long a collective waits for its peers; <= 0: HAL_COLLECTIVE_TIMEOUT (seconds)
  // from the environment, else 300.
  double timeout_s = 0;
};

// The timeout a ChannelOptions with timeout_s <= 0 gets.
double default_collective_timeout_s();

class Channel {
 public:
  static Result<Channel> create(Device& device, int32_t rank, int32_t size,
                                const ChannelOptions& options = {});
  // One member per device, rank i on devices[i] (ncclCommInitAll).
  static Result<std::vector<Channel>> create_group(const std::vector<Device*>& devices,
                                                   const ChannelOptions& options = {});
  // Whether `device`'s plugin offers channels at all (create may still refuse, e.g. a
  // CUDA device without NCCL).
  static bool available(const Device& device);

  Channel() = default;
  ~Channel();
  Channel(Channel&& other) noexcept;
  Channel& operator=(Channel&& other) noexcept;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  bool valid() const { return handle_ != nullptr; }
  int32_t rank() const { return rank_; }
  int32_t size() const { return size_; }
  Device& device() const { return *device_; }
  const std::string& group() const { return group_; }
  // Breaks the communicator (see Failures above). False when the plugin cannot abort
  // (its members then fail by their timeouts).
  bool abort(const std::string& reason);

  hal_channel* handle() const { return handle_; }

 private:
  Channel(Device* device, hal_channel* handle, int32_t rank, int32_t size, std::string group)
      : device_(device), handle_(handle), rank_(rank), size_(size), group_(std::move(group)) {}
  void release();

  Device* device_ = nullptr;
  hal_channel* handle_ = nullptr;
  int32_t rank_ = 0;
  int32_t size_ = 0;
  std::string group_;
};

// One collective command: its shape and this member's buffers (unused sides null).
struct Collective {
  CollectiveShape shape;
  const Buffer* send = nullptr;
  uint64_t send_offset = 0;
  const Buffer* recv = nullptr;
  uint64_t recv_offset = 0;
};

// Helpers over Stream::collective (count in elements, as in hal/collective.h).
Status all_reduce(Stream& stream, const Channel& channel, const Buffer& send, const Buffer& recv,
                  uint64_t count, DType dtype, Reduction op = Reduction::kSum, uint64_t tag = 0);
Status all_gather(Stream& stream, const Channel& channel, const Buffer& send, const Buffer& recv,
                  uint64_t count, DType dtype, uint64_t tag = 0);
Status reduce_scatter(Stream& stream, const Channel& channel, const Buffer& send,
                      const Buffer& recv, uint64_t count, DType dtype,
                      Reduction op = Reduction::kSum, uint64_t tag = 0);
// `send` is read on the root only (pass the recv buffer, or any buffer, elsewhere).
Status broadcast(Stream& stream, const Channel& channel, const Buffer& send, const Buffer& recv,
                 uint64_t count, DType dtype, int32_t root, uint64_t tag = 0);
Status send(Stream& stream, const Channel& channel, const Buffer& data, uint64_t count, DType dtype,
            int32_t peer, uint64_t tag = 0);
Status recv(Stream& stream, const Channel& channel, const Buffer& data, uint64_t count, DType dtype,
            int32_t peer, uint64_t tag = 0);

}  // namespace hal
