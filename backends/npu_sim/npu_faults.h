// backends/npu_sim/npu_faults.h: configured device faults of the simulated NPU — a
// device lost at op N, an ECC error, a command timeout, a slow device — parsed from the
// `faults` setting and applied through each device's CommandGate (npu_command_gate.h).
// They exist so the runtime's failure handling and failover can be tested at any point
// of a run, deterministically (README.md, "Fault injection").
//
// Syntax: entries separated by ';' (spaces ignored), each
//   npu:N:lost@op=K       npu:N is lost at its op K: that op and every later command of
//                         npu:N fail with DEVICE_LOST; the device stays lost.
//   npu:N:ecc@op=K        op K fails with DATA_LOSS (an uncorrectable ECC error); once.
//   npu:N:timeout@op=K    op K fails with DEADLINE_EXCEEDED; once.
//   npu:N:slow=F[x]       every command of npu:N takes F times its modelled duration
//                         (F >= 1); results are unchanged.
//   npu:N:slow=Fx@op=K    slow from op K on.
// `@op=K` counts the device's ops (dispatches), `@cmd=K` all its commands (copies,
// fills and ops), both 0-based in the order the device admits them. N is the index of
// the device within the simulator (npu:N in load order).
//
// Determinism: the counts are the device's own admission order, so a device driven by
// one stream sees the same fault at the same command in every run; with several streams
// on one device, the interleaving of their commands decides which one is number K.
//
// Contract: parse_faults() never throws; every malformed entry is INVALID_ARGUMENT
// quoting the entry and saying what is wrong. Failures a FaultGate reports name the op
// or command number, the command (op kind or copy kind), its tag ("tag 17", for people;
// the stream also attaches the tag as the status's structured detail, which the runtime
// maps back to the graph node) and the configured entry (which names the device; the HAL
// prefixes every plugin error with the device's id as well).
//
// Threading: FaultGate::admit is thread-safe (one mutex per gate).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "hal/status.h"
#include "npu_command_gate.h"

namespace hal::npu_sim {

enum class FaultKind { kLost, kEcc, kTimeout, kSlow };
std::string_view fault_kind_name(FaultKind kind);  // "lost", "ecc", "timeout", "slow"

struct FaultSpec {
  uint32_t device = 0;
  FaultKind kind = FaultKind::kLost;
  bool count_ops = true;  // @op=K (ops) or @cmd=K (all commands)
  uint64_t at = 0;        // the 0-based op/command number; slow: from here on
  double factor = 1.0;    // slow only
  std::string text;       // the entry as written (trimmed), quoted in messages
};

// "npu:0:lost@op=120; npu:1:slow=4x" -> specs in the order written. An empty or blank
// text is no fault. `where` names the setting in errors.
Result<std::vector<FaultSpec>> parse_faults(const std::string& text, const std::string& where);

// The gate of one device: applies `faults` (all of that device) in the order written.
class FaultGate : public CommandGate {
 public:
  explicit FaultGate(std::vector<FaultSpec> faults);
  Status admit(CommandTicket& ticket) override;

  bool lost() const;
  // How many commands this gate has failed (the triggering ones and, after a loss,
  // every refused one).
  uint64_t failed_commands() const;

 private:
  mutable std::mutex mu_;
  std::vector<FaultSpec> faults_;
  std::vector<char> fired_;          // one-shot faults that have fired
  const FaultSpec* lost_ = nullptr;  // the entry that lost the device
  uint64_t lost_at_ = 0;             // the op/command number it was lost at
  uint64_t failed_ = 0;
};

}  // namespace hal::npu_sim
