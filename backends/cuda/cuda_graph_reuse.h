// backends/cuda/cuda_graph_reuse.h: when a CUDA stream may replay the CUDA graph it
// captured for an executable, update it in place, or must capture and instantiate it
// (cuda_executable.cc). Pure C++ with no CUDA types, so its logic is tested on machines
// without a GPU (tests/cuda/cuda_graph_reuse_test.cc).
//
// One executable is one shape bucket (its view's shapes are the bucket's upper bound); an
// execution's parameters are what its kernels are launched with: the bound buffers and
// offsets, the scratch, and the symbols' values (a KV length, a write position). Per
// stream and executable:
// - the same parameters as the graph holds: replay it (cudaGraphLaunch only);
// - other parameters: capture the nodes again and update the instantiated graph in place
//   (cudaGraphExecUpdate: no re-instantiation; a decode step differs from the last only
//   in its KV length and write position);
// - no graph yet, or the update refused (a kernel choice changed the topology):
//   instantiate.
// At most `capacity` executables keep graphs per stream; the least recently used is
// evicted (its graph destroyed by the caller).
//
// Threading: not thread-safe; a stream uses it under its enqueue lock.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <vector>

namespace hal::cuda {

class GraphReuse {
 public:
  enum class Action : int32_t { kReplay = 0, kUpdate = 1, kInstantiate = 2 };

  explicit GraphReuse(size_t capacity = 16) : capacity_(capacity ? capacity : 1) {}

  // What an execution of executable `executable` with parameters `params` needs.
  Action plan(uint64_t executable, uint64_t params) const {
    for (const Entry& e : entries_)
      if (e.executable == executable) return e.params == params ? Action::kReplay : Action::kUpdate;
    return Action::kInstantiate;
  }

  // The graph of `executable` now holds `params` (after a replay, update or instantiation);
  // marks it most recently used. Returns the executable evicted to make room, if any.
  std::optional<uint64_t> done(uint64_t executable, uint64_t params) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->executable == executable) {
        entries_.erase(it);
        break;
      }
    entries_.push_front({executable, params});
    if (entries_.size() <= capacity_) return std::nullopt;
    const uint64_t evicted = entries_.back().executable;
    entries_.pop_back();
    return evicted;
  }

  // The graph of `executable` is gone (destroyed, or its update failed and it was dropped).
  void forget(uint64_t executable) {
    entries_.remove_if([&](const Entry& e) { return e.executable == executable; });
  }

  size_t size() const { return entries_.size(); }

  // A key over an execution's launch parameters (FNV-1a of the 64-bit words).
  static uint64_t params_key(std::span<const uint64_t> words) {
    uint64_t h = 14695981039346656037ull;
    for (uint64_t w : words)
      for (int b = 0; b < 8; ++b) {
        h ^= (w >> (8 * b)) & 0xff;
        h *= 1099511628211ull;
      }
    return h;
  }

 private:
  struct Entry {
    uint64_t executable;
    uint64_t params;
  };
  size_t capacity_;
  std::list<Entry> entries_;  // most recently used first
};

}  // namespace hal::cuda
