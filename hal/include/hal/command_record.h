// hal/command_record.h: the accounting record of one completed command.
//
// Contract
// - Streams created with `StreamOptions::record_commands` keep one record per copy,
//   fill and op, in completion order, until taken with Stream::take_records().
// - Times are in the device's clock (ns): wall time on CPU/GPU, simulated time on
//   simulated devices. Durations of records of one device may be compared and summed;
//   timestamps of different devices share no epoch.
// - bytes_read/bytes_written count device-memory (HBM/GDDR/DRAM) traffic: for the
//   simulated NPU as its tiling model moves data; for CPU and CUDA the op's analytic
//   minimum traffic (hal::analytic_cost). SRAM bytes are reported where modelled.
// - Collectives (kCollective, hal/channel.h): link_bytes is what this member sent over
//   links and link_bytes_received what it received, over `link_class`; peer_rank is the
//   rank it sent to (-1: several or none). Other commands leave those fields at their
//   defaults.
// - An executable's execution (hal/executable.h) leaves one kExecute record and, after
//   it, one kExecuteGroup record per fused group with the same tag; the group records
//   partition the execution's FLOPs and bytes and lie within its span. Totals sum the
//   kExecute records (or the groups, never both).
#pragma once

#include <cstdint>
#include <string_view>

#include "hal/collective.h"
#include "hal/op.h"

namespace hal {

enum class CommandKind : int32_t {
  kOp = 0,
  kCopyHostToDevice = 1,
  kCopyDeviceToHost = 2,
  kCopyDeviceToDevice = 3,
  kCopyPeer = 4,
  kFill = 5,
  kCollective = 6,
  kExecute = 7,       // one execution of an Executable (ABI 1.2)
  kExecuteGroup = 8,  // one fused group of an execution: a part of the record above
};
std::string_view command_kind_name(CommandKind kind);  // "op", "copy_h2d", ...

enum class BoundBy : int32_t { kUnknown = 0, kCompute = 1, kMemory = 2, kOverhead = 3, kLink = 4 };
std::string_view bound_by_name(BoundBy b);  // "unknown", "compute", "memory", ...

struct CommandRecord {
  uint64_t tag = 0;
  CommandKind command = CommandKind::kOp;
  OpKind op = OpKind::kInvalid;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  double flops = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t sram_bytes_read = 0;
  uint64_t sram_bytes_written = 0;
  uint64_t link_bytes = 0;
  BoundBy bound = BoundBy::kUnknown;
  // Collectives only (above).
  CollectiveKind collective = CollectiveKind::kInvalid;
  int32_t channel_rank = -1;
  int32_t channel_size = 0;
  int32_t peer_rank = -1;
  uint64_t link_bytes_received = 0;
  LinkClass link_class = LinkClass::kNone;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kDefault;
  // kExecuteGroup: the fused group (index into ExecutableInfo::groups) and its main node
  // (index into the executable's view nodes); -1 otherwise.
  int32_t group = -1;
  int32_t node = -1;

  double duration_s() const { return end_ns > start_ns ? double(end_ns - start_ns) * 1e-9 : 0.0; }
};

}  // namespace hal
