// backends/npu_sim/npu_command_gate.h: the one place every device command of a
// simulated NPU passes before it executes: the seam for fault injection.
//
// Every copy, fill and op (not event records/waits or host functions, which are stream
// bookkeeping rather than device work) is turned into a CommandTicket and handed to the
// device's CommandGate, on the stream's worker thread, in execution order, before any
// data moves or time is booked. A gate may:
// - return a failed Status: the command fails with it (nothing computed, no record, the
//   stream's clock unchanged); the stream reports it at its next synchronize() and
//   skips its later commands as kAborted, exactly as for any failing command. Use the
//   HAL's codes: kDeviceLost (device lost at op N), kDataLoss (ECC error),
//   kDeadlineExceeded (command timeout), kUnavailable.
// - stretch `duration_scale` (> 1: a slow device; the command occupies its engine that
//   much longer in simulated time).
// A gate that reports a device lost should keep failing later commands of that device:
// the gate owns such state (the device only asks). The configured faults
// (npu_faults.h: FaultGate) are installed through this seam.
//
// Lifetime: the device holds its gate (std::shared_ptr) and may swap it at any time
// with NpuDevice::set_command_gate(); a command uses the gate current when it runs.
//
// Threading: admit() is called concurrently from the worker threads of every stream of
// the device (and of other devices sharing the gate); implementations synchronise.
#pragma once

#include <cstdint>

#include "hal/command_record.h"
#include "hal/op.h"
#include "hal/status.h"

namespace hal::npu_sim {

struct CommandTicket {
  uint32_t device_index = 0;  // the device within the plugin (npu:N in load order)
  uint64_t sequence = 0;      // 0-based count of commands this device admitted before
  uint64_t op_sequence = 0;   // ops (dispatches) admitted before: an op's own 0-based number
  CommandKind kind = CommandKind::kOp;
  OpKind op = OpKind::kInvalid;   // for kOp
  uint64_t tag = 0;               // the caller's tag
  uint64_t bytes = 0;             // copies and fills: bytes moved
  double modeled_duration_s = 0;  // what the performance model says it takes
  double duration_scale = 1.0;    // a gate may raise it (slow device)
};

class CommandGate {
 public:
  virtual ~CommandGate() = default;
  virtual Status admit(CommandTicket& ticket) = 0;
};

}  // namespace hal::npu_sim
