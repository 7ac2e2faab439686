// hal/runtime/compiled_units.h: whole-graph offload in the runtime (ABI 1.2 executables,
// hal/executable.h): a runtime Graph shown to a device as a hal::GraphView, the device's
// partition turned into compiled units of an ExecutionPlan, and the compile cache.
//
// Graph -> view (graph_view_of)
// - The working nodes given (ops, concats, KV-cache writes; never transfers or views),
//   in the order given (an issue order), become view nodes: an op node one op; a concat
//   one identity transpose per input into a slice of its output; a write_slice one
//   identity transpose (per batch row when rows write at different positions) into a
//   view of its destination at a symbolic offset.
// - Values: every storage root the nodes touch (constants, states and inputs keep their
//   kind; an intermediate no given node writes becomes an input; one that a node outside
//   the set reads, or a graph output, becomes an output), then the graph's views of them
//   and the slices the concat and write nodes write into.
// - Symbols: one per distinct run-time integer (SymInt) the nodes use, with the range its
//   uses allow: an attention kv_length [1, the cache's length], a write position [0,
//   destination length - rows written]. An executable serves every value in range, so
//   one compiled decode step runs at every KV length (the shape bucket).
//
// Plans with units (compile_plan_units)
// - Each device of the plan is asked to partition its working nodes (in issue order).
//   A unit is a maximal run of consecutive working steps of one device that the device put
//   in one unit (a run of a topological order is convex). Graph nodes the device
//   declines, and those it splits across units, run op by op; each is recorded with the
//   reason (CompileReport::declined).
// - Each unit's own view (hal::extract_unit) is compiled, through the cache when one is
//   given; the plan keeps the executable, the maps between view and graph, and what the
//   device predicted; finalize_plan is run again so values internal to a unit take no
//   arena memory (the executable's scratch replaces them).
// - Strict placement: with `strict`, a declined node is an error naming it and the reason.
//
// Cache (ExecutableCache)
// - Directory entries "<graph fingerprint>-<key hash>-<options hash>.halx": a small header
//   (magic, graph fingerprint, key) followed by the device's blob. A hit is loaded with
//   Device::load_executable (the device refuses a foreign or modified blob; the entry is
//   then compiled again and replaced); a miss compiles and writes the entry (atomically,
//   through a temporary file). A directory that cannot be written is a note, not an error.
// - Default directory: $HAL_EXECUTABLE_CACHE, else $XDG_CACHE_HOME/hal/executables, else
//   ~/.cache/hal/executables.
//
// Threading: functions are pure except for the devices and files they use; an
// ExecutableCache may be shared by sessions on one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hal/device.h"
#include "hal/executable.h"
#include "hal/graph_view.h"
#include "hal/runtime/execution_plan.h"
#include "hal/runtime/graph.h"

namespace hal::runtime {

struct GraphViewMap {
  GraphView view;
  std::vector<ValueId> value_of;  // per view value: the graph value (kNoValue: a slice made
                                  // for a concat or write)
  std::vector<NodeId> node_of;    // per view node: the graph node it came from
  std::vector<SymInt> symbol_of;  // per view symbol: the run-time integer
};

Result<GraphViewMap> graph_view_of(const Graph& graph, std::span<const NodeId> nodes);

// How an executable came to be.
enum class CacheOutcome : int32_t { kCompiled = 0, kHit = 1, kLoaded = 2, kRefused = 3 };
// "compiled", "cache hit", "loaded (halctl compile artifact)", "refused blob, compiled"
std::string_view cache_outcome_name(CacheOutcome o);

class ExecutableCache {
 public:
  // kReadWrite: a cache (misses compile and are stored, refused entries are compiled again).
  // kArtifacts: a directory of ahead-of-time compiled executables (`halctl compile`): a
  // missing entry, or one its device refuses, is FAILED_PRECONDITION naming the file, and
  // nothing is written.
  enum class Mode : int32_t { kReadWrite = 0, kArtifacts = 1 };

  // `directory` empty: default_directory().
  explicit ExecutableCache(std::string directory = "", Mode mode = Mode::kReadWrite);
  static std::string default_directory();
  const std::string& directory() const { return directory_; }

  // The executable of `view` on `device`: loaded from the directory when an entry with
  // its fingerprint and the device's key is there and the device accepts it, else
  // compiled (and stored when the device can serialize). `outcome` says which; `note`
  // receives why an entry was refused or could not be written.
  // `entry` receives the entry's file name (empty when the device cannot serialize).
  Result<Executable> get(Device& device, const GraphView& view, const CompileOptions& options,
                         CacheOutcome* outcome, std::string* note = nullptr,
                         std::string* entry = nullptr);
  // The entry's file name for `view` on a device with compatibility key `key`.
  static std::string entry_name(const GraphView& view, const std::string& key,
                                const CompileOptions& options);
  // Reads an entry (header checked against `view`'s fingerprint and `key`); the blob.
  static Result<std::vector<uint8_t>> read_entry(const std::string& path, const GraphView& view,
                                                 const std::string& key);
  static Status write_entry(const std::string& path, const GraphView& view, const std::string& key,
                            std::span<const uint8_t> blob);

 private:
  std::string directory_;
  Mode mode_;
};

struct CompileSettings {
  bool enabled = false;
  CompileOptions options;
  std::shared_ptr<ExecutableCache> cache;  // null: compile every time
  bool strict = false;                     // a declined node is an error
};

struct DeclinedNode {
  NodeId node = kNoNode;
  int32_t device = 0;
  std::string reason;
};

struct CompileReport {
  std::vector<DeclinedNode> declined;
  std::vector<std::string> notes;
  double compile_seconds = 0;  // wall time of partitioning and compiling (or loading)
};

// See the contract above. Plans without compiling devices are left as they are.
Status compile_plan_units(ExecutionPlan& plan, const CompileSettings& settings,
                          CompileReport* report = nullptr);

}  // namespace hal::runtime
