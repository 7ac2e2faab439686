#include "cpu_weight_cache.h"

#include "cpu_ops.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace hal::cpu {

namespace {

struct Copy {
  uint64_t offset = 0, original_bytes = 0;  // the original range within the allocation
  WeightCopyKey key;
  std::shared_ptr<const uint8_t> data;
  uint64_t bytes = 0;
};

struct Allocation {
  uint64_t size = 0;
  plugin::MemoryAccountant* accountant = nullptr;
  bool mapped = false;
  std::vector<Copy> copies;
};

struct Registry {
  std::mutex mu;
  std::map<uintptr_t, Allocation> allocations;  // by base address
  std::atomic<uint64_t> live{0};                // copies alive (fast path for writes)
  uint64_t bytes = 0, made = 0, dropped = 0;
};

Registry& registry() {
  // Never destroyed: buffers may be freed from static destructors after this would be.
  static Registry* r = new Registry;
  return *r;
}

bool copies_enabled() {
  static const bool on = !env_equals("HAL_CPU_WEIGHT_COPIES", "0");
  return on;
}

// The allocation holding address p, or end(). Caller holds mu.
std::map<uintptr_t, Allocation>::iterator find_allocation(Registry& r, uintptr_t p) {
  auto it = r.allocations.upper_bound(p);
  if (it == r.allocations.begin()) return r.allocations.end();
  --it;
  return p < it->first + std::max<uint64_t>(it->second.size, 1) ? it : r.allocations.end();
}

// Drops the copies of `a` whose original range overlaps [lo, hi). Caller holds mu.
void drop_overlapping(Registry& r, Allocation& a, uint64_t lo, uint64_t hi) {
  auto& cs = a.copies;
  for (size_t i = 0; i < cs.size();) {
    if (cs[i].offset < hi && lo < cs[i].offset + cs[i].original_bytes) {
      if (a.accountant) a.accountant->release(cs[i].bytes);
      r.bytes -= cs[i].bytes;
      ++r.dropped;
      r.live.fetch_sub(1, std::memory_order_relaxed);
      cs.erase(cs.begin() + std::ptrdiff_t(i));
    } else {
      ++i;
    }
  }
}

// Drops every copy of the allocation at `base`, then forgets the allocation (freed) or
// marks it mapped (the host may write it unseen: no copies from now on).
void drop_all_copies(const void* base, bool forget) {
  if (!base) return;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.allocations.find(reinterpret_cast<uintptr_t>(base));
  if (it == r.allocations.end()) return;
  drop_overlapping(r, it->second, 0, UINT64_MAX);
  if (forget)
    r.allocations.erase(it);
  else
    it->second.mapped = true;
}

}  // namespace

void weight_cache_track(const void* base, uint64_t size, plugin::MemoryAccountant* accountant) {
  if (!base) return;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  Allocation a;
  a.size = size;
  a.accountant = accountant;
  r.allocations[reinterpret_cast<uintptr_t>(base)] = std::move(a);
}

void weight_cache_untrack(const void* base) { drop_all_copies(base, /*forget=*/true); }

void weight_cache_written(const void* p, uint64_t bytes) {
  Registry& r = registry();
  if (r.live.load(std::memory_order_relaxed) == 0 || !p) return;
  std::lock_guard<std::mutex> lock(r.mu);
  const uintptr_t at = reinterpret_cast<uintptr_t>(p);
  auto it = find_allocation(r, at);
  if (it == r.allocations.end()) return;
  const uint64_t lo = at - it->first;
  drop_overlapping(r, it->second, lo, bytes > UINT64_MAX - lo ? UINT64_MAX : lo + bytes);
}

void weight_cache_mapped(const void* base) { drop_all_copies(base, /*forget=*/false); }

std::shared_ptr<const uint8_t> weight_cache_get(const void* w, const WeightCopyKey& key,
                                                uint64_t original_bytes, uint64_t copy_bytes,
                                                const std::function<void(uint8_t*)>& fill) {
  if (!copies_enabled() || !w || copy_bytes == 0) return nullptr;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  const uintptr_t at = reinterpret_cast<uintptr_t>(w);
  auto it = find_allocation(r, at);
  if (it == r.allocations.end() || it->second.mapped) return nullptr;
  Allocation& a = it->second;
  const uint64_t offset = at - it->first;
  if (original_bytes > a.size - offset) return nullptr;
  for (const Copy& c : a.copies)
    if (c.offset == offset && c.key == key) return c.data;
  if (a.accountant && !a.accountant->reserve(copy_bytes, "weight copies").ok()) return nullptr;
  // 64-byte aligned, as the kernels' vector loads prefer.
  void* mem = std::aligned_alloc(64, (copy_bytes + 63) / 64 * 64);
  if (!mem) {
    if (a.accountant) a.accountant->release(copy_bytes);
    return nullptr;
  }
  uint8_t* bytes = static_cast<uint8_t*>(mem);
  // Made under the lock: a second product of the same weights waits for this copy
  // instead of making its own (it happens once per weight).
  fill(bytes);
  Copy c;
  c.offset = offset;
  c.original_bytes = original_bytes;
  c.key = key;
  c.data = std::shared_ptr<const uint8_t>(
      bytes, [](const uint8_t* q) { std::free(const_cast<uint8_t*>(q)); });
  c.bytes = copy_bytes;
  a.copies.push_back(c);
  r.bytes += copy_bytes;
  ++r.made;
  r.live.fetch_add(1, std::memory_order_relaxed);
  return c.data;
}

WeightCacheStats weight_cache_stats() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return {r.live.load(), r.bytes, r.made, r.dropped};
}

}  // namespace hal::cpu
