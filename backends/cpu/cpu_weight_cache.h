// backends/cpu/cpu_weight_cache.h: copies of weights in the layouts the CPU kernels read
// fastest, kept beside the buffers that hold them (internal to the CPU plugin).
//
// Why: a decode step reads every weight once, and some formats' natural layout costs more
// instructions per byte than the memory system lets through (q4_0: one row at a time,
// each 32-element block unpacked and reduced on its own). A copy in a kernel-friendly
// layout (q4_0 in groups of 8 rows, cpu_quant.h) turns that around, at the price of the
// copy's memory. GGUF engines repack such weights in place at load; here the host owns a
// buffer's bytes (it may read them back, gather embedding rows from them, or map them),
// so the plugin keeps a copy instead and counts it as device memory.
//
// Contract
// - Every allocation the device makes is tracked (weight_cache_track) until freed
//   (weight_cache_untrack, which drops its copies).
// - weight_cache_get(w, key, bytes, fill) returns the copy made from the original bytes
//   at w (inside a tracked allocation) for `key`, making it with fill(dst) the first time.
//   It returns null, and the caller reads the original, when w is in no tracked
//   allocation, the allocation was ever mapped (the host may then write it behind the
//   plugin's back), the device's memory budget refuses the copy, or HAL_CPU_WEIGHT_COPIES=0.
// - weight_cache_written(p, n): every plugin path that writes device memory (copies,
//   fills, op outputs, executions' outputs and states, collectives) reports the range it
//   writes; copies whose original bytes overlap it are dropped, so a later product reads
//   the new weights. weight_cache_mapped(base) drops an allocation's copies for good.
//
// Threading: thread-safe. A copy stays alive while a caller holds the returned pointer,
// even if it is dropped meanwhile (a write racing a read of the same weights is the
// host's data race, as on any device; it cannot free memory under a running kernel).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "hal/dtype.h"
#include "hal/plugin/memory_accountant.h"

namespace hal::cpu {

// What a copy is of: the weights' dtype and shape as one product reads them.
struct WeightCopyKey {
  DType dtype = DType::kF32;
  int64_t rows = 0, k = 0;
  uint64_t row_stride_bytes = 0;  // between consecutive original rows
  uint32_t layout = 0;            // which layout (the kernels' own numbering)
  bool operator==(const WeightCopyKey&) const = default;
};

void weight_cache_track(const void* base, uint64_t size, plugin::MemoryAccountant* accountant);
void weight_cache_untrack(const void* base);
void weight_cache_written(const void* p, uint64_t bytes);
void weight_cache_mapped(const void* base);

// original_bytes: the extent of the original weights read from w (what a write must
// overlap to drop the copy); copy_bytes: the copy's size.
std::shared_ptr<const uint8_t> weight_cache_get(const void* w, const WeightCopyKey& key,
                                                uint64_t original_bytes, uint64_t copy_bytes,
                                                const std::function<void(uint8_t*)>& fill);

// Copies alive now and their bytes (tests, halctl info).
struct WeightCacheStats {
  uint64_t copies = 0, bytes = 0, made = 0, dropped = 0;
};
WeightCacheStats weight_cache_stats();

}  // namespace hal::cpu
