// hal/stream.h: an in-order asynchronous queue of work on one device.
//
// Contract
// - Every enqueue call (copy, fill, dispatch, record, wait, host function) validates
//   its arguments, returns at once, and the work runs later in enqueue order.
//   Invalid arguments fail the call itself and enqueue nothing.
// - Failures found while running (an embedding id out of range, a device fault) are
//   returned by the next synchronize(); later work of the same stream is skipped and
//   reported as kAborted. synchronize() clears the error.
// - execute() runs a compiled graph as one command (hal/executable.h).
// - Copies: host->device, device->host, within a device, and between devices. Between
//   devices of one plugin the plugin copies peer to peer; between plugins the HAL
//   stages through host memory (both orders preserved). Host memory passed to a copy
//   must stay valid until the copy completes.
// - With StreamOptions::record_commands, each completed command leaves a
//   CommandRecord (hal/command_record.h) until take_records().
// - Destroying a Stream waits for its work. A Stream must not outlive the Platform.
//
// Threading: enqueue calls from several threads are serialised in some order; each
// call's work runs in the order the calls returned.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "hal/buffer.h"
#include "hal/command_record.h"
#include "hal/event.h"
#include "hal/executable.h"
#include "hal/op_descriptor.h"
#include "hal/status.h"

struct hal_stream;

namespace hal {

class Device;
class Channel;
struct Collective;

struct StreamOptions {
  bool record_commands = false;
};

class Stream {
 public:
  Stream() = default;
  ~Stream();
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  bool valid() const { return handle_ != nullptr; }
  Device& device() const { return *device_; }

  Status copy_from_host(const void* src, const Buffer& dst, uint64_t dst_offset, uint64_t size,
                        uint64_t tag = 0);
  Status copy_to_host(const Buffer& src, uint64_t src_offset, void* dst, uint64_t size,
                      uint64_t tag = 0);
  Status copy(const Buffer& src, uint64_t src_offset, const Buffer& dst, uint64_t dst_offset,
              uint64_t size, uint64_t tag = 0);
  // Fills `size` bytes at `offset` with a repeated pattern of 1, 2, 4 or 8 bytes.
  Status fill(const Buffer& dst, uint64_t offset, uint64_t size, uint64_t pattern,
              uint32_t pattern_size, uint64_t tag = 0);
  Status dispatch(const OpDescriptor& op, uint64_t tag = 0);
  // A collective of `channel` (whose device is this stream's): hal/channel.h.
  Status collective(const Channel& channel, const Collective& op, uint64_t tag = 0);
  // One execution of an executable of this stream's device (hal/executable.h): every
  // bound value of its view bound to a buffer of this device, the scratch, and one value
  // per symbol within its range. Checked here; failures while running name the node and
  // fused group (StatusDetail) besides the tag.
  Status execute(const Executable& executable, const ExecuteArgs& args, uint64_t tag = 0);

  Status record(Event& event);
  Status wait(const Event& event);
  // Runs `fn` on a backend thread in stream order. It may block and may use other
  // streams, but must not enqueue on or synchronize this stream.
  Status enqueue_host_func(std::function<void()> fn);

  Status synchronize();
  std::vector<CommandRecord> take_records();

  hal_stream* handle() const { return handle_; }

 private:
  friend class Device;
  Stream(Device* device, hal_stream* handle) : device_(device), handle_(handle) {}
  Status copy_staged(const Buffer& src, uint64_t src_offset, const Buffer& dst,
                     uint64_t dst_offset, uint64_t size);

  Device* device_ = nullptr;
  hal_stream* handle_ = nullptr;
};

}  // namespace hal
