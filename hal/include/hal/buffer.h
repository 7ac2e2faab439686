// hal/buffer.h: a block of memory on one device.
//
// Contract
// - Move-only; destroying a Buffer frees its memory at once. The caller ensures no
//   enqueued work still uses it (synchronize the streams that do first).
// - Every allocation and free is counted in the device's MemoryStats; the counters
//   return to zero when every buffer of the device is freed.
// - Allocating more than the device has free fails with StatusCode::kOutOfMemory,
//   naming the device, the request and what is free.
// - map() gives a host pointer for memory the host can address (host-pinned and
//   host-visible memory on every device; device memory of the CPU); for other memory
//   it fails with kFailedPrecondition. kVirtual buffers have sizes but no storage:
//   they exist to plan models bigger than any real memory.
// - A Buffer must not outlive the Platform that created it.
//
// Threading: a Buffer may be used from several threads; map() is thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "hal/status.h"

struct hal_buffer;

namespace hal {

class Device;

enum class MemoryKind : int32_t { kDevice = 0, kHostPinned = 1, kHostVisible = 2, kVirtual = 3 };
std::string_view memory_kind_name(MemoryKind kind);  // "device", "host_pinned", ...

struct MemoryStats {
  uint64_t bytes_in_use = 0;
  uint64_t peak_bytes_in_use = 0;
  uint64_t allocation_count = 0;   // live allocations
  uint64_t total_allocations = 0;  // ever made
  uint64_t capacity_bytes = 0;
};

class Buffer {
 public:
  Buffer() = default;
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  bool valid() const { return handle_ != nullptr; }
  uint64_t size() const { return size_; }
  MemoryKind kind() const { return kind_; }
  Device& device() const { return *device_; }

  Result<void*> map() const;
  // Frees now (as the destructor does).
  void reset();

  // For the HAL's own use: the plugin's handle.
  hal_buffer* handle() const { return handle_; }

 private:
  friend class Device;
  Buffer(Device* device, hal_buffer* handle, uint64_t size, MemoryKind kind)
      : device_(device), handle_(handle), size_(size), kind_(kind) {}

  Device* device_ = nullptr;
  hal_buffer* handle_ = nullptr;
  uint64_t size_ = 0;
  MemoryKind kind_ = MemoryKind::kDevice;
};

}  // namespace hal
