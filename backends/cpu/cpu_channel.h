// backends/cpu/cpu_channel.h: channels of the CPU backend (ABI 1.2): members on cpu:0 in
// one process meet in shared memory, members in other processes through the host's
// transport (MPI under halctl), both by the plugin kit's collective engine
// (hal/plugin/collective_engine.h). Several ranks may share cpu:0, each on its own
// stream (as threads of one process do).
//
// A collective's record is measured wall time from the member's arrival to its
// completion (waiting for late peers included, as the stream was blocked that long), the
// bytes the member sent and received over links (kSharedMemory or kNetwork), and as
// device-memory traffic its own send and recv ranges plus what it read from its peers.
//
// Threading: collectives run on the stream's worker thread (HostQueue).
#pragma once

#include <memory>

#include "hal/plugin/host_queue.h"
#include "hal/plugin_adapter.h"

namespace hal::cpu {

Result<std::unique_ptr<plugin::ChannelImpl>> create_cpu_channel(
    plugin::DeviceImpl* device, const plugin::ChannelConfig& config);

// Runs `call` (on the stream's worker) and adds its record to `records`.
Status run_cpu_collective(const plugin::CollectiveCall& call, plugin::RecordLog& records);

}  // namespace hal::cpu
