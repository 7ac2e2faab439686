// hal/executable.h: a graph compiled by a device (plugin ABI 1.2, EXECUTABLES in
// hal/plugin_abi.h), what the device says about it, and how it is partitioned.
//
// The flow (hal/graph_view.h describes the graph):
//   Result<Partition> p = device.partition(view);       // which nodes, in which units
//   Result<Executable> e = device.compile(unit_view);   // one unit at a time
//   Result<ExecutableInfo> i = e->info(symbols);         // predicted time, traffic, groups
//   stream.execute(*e, {bindings, scratch, symbols});    // one command per execution
//   Result<std::vector<uint8_t>> blob = e->serialize();  // for a compile cache
//   device.load_executable(blob, unit_view);             // refused if foreign or stale
//
// Contract
// - Partition::node_unit holds, per view node, the unit that compiles it or -1; reasons
//   holds why each declined node was declined ("" for taken ones). A plugin without a
//   compiler (or of ABI < 1.2) declines every node with "the plugin has no compiler".
// - ExecutableInfo: predicted device time of one execution at the given symbol values,
//   scratch_bytes (device memory an execution needs besides its bindings), device-memory
//   bytes read/written per execution, peak on-chip SRAM held, and the fused groups (each
//   with its nodes, main op and its share of time and traffic).
// - Executions leave a CommandKind::kExecute record and one kExecuteGroup record per
//   fused group (group, node set) on streams that record commands; group records
//   partition the execution (sum one level, never both).
// - load_executable refuses (FAILED_PRECONDITION, naming why) a blob made by another
//   plugin, plugin version, ABI or device, or one whose contents were changed.
//
// Lifetime: an Executable is move-only, belongs to its Device and must be destroyed
// before the Platform. Threading: Executables are immutable; info()/serialize() are
// thread-safe and one executable may run on several streams at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hal/buffer.h"
#include "hal/command_record.h"
#include "hal/graph_view.h"
#include "hal/op.h"
#include "hal/status.h"

struct hal_executable;

namespace hal {

class Device;

struct Partition {
  std::vector<int32_t> node_unit;    // per view node: its unit, or -1 (declined)
  int32_t units = 0;                 // units are 0 .. units-1
  std::vector<std::string> reasons;  // per view node: why declined ("" when taken)

  // The nodes of unit u, in view order.
  std::vector<int32_t> nodes_of(int32_t unit) const {
    std::vector<int32_t> out;
    for (size_t n = 0; n < node_unit.size(); ++n)
      if (node_unit[n] == unit) out.push_back(int32_t(n));
    return out;
  }
};

// Compiler options, e.g. {"fusion", "off"}; a device refuses keys it does not know.
using CompileOptions = std::map<std::string, std::string>;

struct FusedGroupInfo {
  std::string name;
  OpKind main_op = OpKind::kInvalid;
  int32_t main_node = -1;
  std::vector<int32_t> nodes;
  double predicted_seconds = 0;
  double flops = 0;
  uint64_t dram_bytes_read = 0;
  uint64_t dram_bytes_written = 0;
  uint64_t sram_bytes = 0;
  BoundBy bound = BoundBy::kUnknown;
};

struct ExecutableInfo {
  double predicted_seconds = 0;
  uint64_t scratch_bytes = 0;
  uint64_t dram_bytes_read = 0;
  uint64_t dram_bytes_written = 0;
  uint64_t sram_bytes = 0;
  double flops = 0;
  std::vector<FusedGroupInfo> groups;

  uint64_t dram_bytes() const { return dram_bytes_read + dram_bytes_written; }
};

// A buffer for one bound value of the executable's view (GraphView::is_bound).
struct ExecutableBinding {
  int32_t value = -1;
  const Buffer* buffer = nullptr;
  uint64_t offset_bytes = 0;
};

struct ExecuteArgs {
  std::span<const ExecutableBinding> bindings;
  const Buffer* scratch = nullptr;  // >= info().scratch_bytes; may be null when that is 0
  uint64_t scratch_offset = 0;
  std::span<const int64_t> symbols;  // one per view symbol
};

class Executable {
 public:
  Executable() = default;
  ~Executable();
  Executable(Executable&& other) noexcept;
  Executable& operator=(Executable&& other) noexcept;
  Executable(const Executable&) = delete;
  Executable& operator=(const Executable&) = delete;

  bool valid() const { return handle_ != nullptr; }
  Device& device() const { return *device_; }
  const GraphView& view() const { return *view_; }

  // At these symbol values (empty: each symbol's max_value).
  Result<ExecutableInfo> info(std::span<const int64_t> symbols = {}) const;
  // The device's blob (with its compatibility key); UNIMPLEMENTED when the plugin cannot
  // serialize.
  Result<std::vector<uint8_t>> serialize() const;

  hal_executable* handle() const { return handle_; }

 private:
  friend class Device;
  Executable(Device* device, hal_executable* handle, std::shared_ptr<const GraphView> view)
      : device_(device), handle_(handle), view_(std::move(view)) {}
  void reset();

  Device* device_ = nullptr;
  hal_executable* handle_ = nullptr;
  std::shared_ptr<const GraphView> view_;
};

}  // namespace hal
