// hal/plugin/memory_accountant.h: allocator statistics and capacity enforcement that
// a plugin keeps per device (part of the plugin kit; header-only).
//
// Contract: reserve() fails with kOutOfMemory when the request does not fit in
// capacity - in use, naming the sizes; release() returns bytes. Counters return to
// zero when every reservation is released.
//
// Threading: thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "hal/buffer.h"
#include "hal/status.h"
#include "hal/units.h"

namespace hal::plugin {

class MemoryAccountant {
 public:
  explicit MemoryAccountant(uint64_t capacity_bytes) : capacity_(capacity_bytes) {}

  Status reserve(uint64_t bytes, std::string_view memory_name = "device memory") {
    std::lock_guard<std::mutex> lock(mu_);
    if (bytes > capacity_ - in_use_)
      return out_of_memory("cannot allocate " + format_bytes(bytes) + " of " +
                           std::string(memory_name) + " (" + format_bytes(capacity_ - in_use_) +
                           " free of " + format_bytes(capacity_) + ")");
    in_use_ += bytes;
    if (in_use_ > peak_) peak_ = in_use_;
    ++count_;
    ++total_;
    return ok_status();
  }
  void release(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    in_use_ -= bytes < in_use_ ? bytes : in_use_;
    if (count_ > 0) --count_;
  }
  MemoryStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    MemoryStats s;
    s.bytes_in_use = in_use_;
    s.peak_bytes_in_use = peak_;
    s.allocation_count = count_;
    s.total_allocations = total_;
    s.capacity_bytes = capacity_;
    return s;
  }
  uint64_t capacity() const { return capacity_; }

 private:
  mutable std::mutex mu_;
  uint64_t capacity_;
  uint64_t in_use_ = 0;
  uint64_t peak_ = 0;
  uint64_t count_ = 0;
  uint64_t total_ = 0;
};

}  // namespace hal::plugin
