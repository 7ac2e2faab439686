// backends/npu_sim/npu_collectives.h: collectives of the simulated NPU. Functionally they
// move host memory through the plugin kit's engine (hal/plugin/collective_engine.h: the
// same bits as every backend); in time they are priced over the modelled links:
// - between dies of a card with a peer link: that link (PCIe peer-to-peer through the
//   ATOM-Max switch; UCIe-A between the chiplets of rebel-chiplets), on the sender's
//   peer DMA;
// - between other devices of the plugin: staged through host memory, over both cards'
//   host links (both latencies, the slower bandwidth), on the sender card's outbound and
//   the receiver card's inbound host DMA;
// - to another process: the device's host link plus the spec's network_link (host-staged
//   both ends), on its own card's host DMA.
// Algorithms and their link time are the HAL's alpha-beta model (hal/collective_cost.h:
// ring or tree, whichever is faster, as NCCL's tuner picks). duration = command overhead +
// max(links, reduction on the vector unit, device-memory traffic). Every member's
// collective starts when the last member is ready and its links are free (all members
// book the same interval on the links they drive), so a late rank delays the others, as
// on hardware.
//
// Threading: pure functions; booking happens under the system's timeline mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hal/collective.h"
#include "hal/collective_cost.h"
#include "hal/command_record.h"
#include "npu_spec.h"

namespace hal::npu_sim {

// One directed link a collective's bytes cross (the alpha-beta model is the HAL's).
using CollectiveLink = CollectiveLinkCost;

// The timing and traffic of one collective over n members.
struct CollectivePlan {
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kRing;
  double duration_s = 0;
  double overhead_s = 0;
  double link_s = 0;
  double compute_s = 0;
  double memory_s = 0;
  BoundBy bound = BoundBy::kLink;
  struct Member {
    uint64_t bytes_sent = 0;
    uint64_t bytes_received = 0;
    int32_t peer = -1;  // the member it sent to; -1: several or none
    LinkClass link_class = LinkClass::kNone;
    uint64_t dram_bytes_read = 0;
    uint64_t dram_bytes_written = 0;
  };
  std::vector<Member> members;
  // The directed member pairs (from, to) that carried bytes: the links to book.
  std::vector<std::pair<int32_t, int32_t>> edges;
};

// Prices `shape` over members 0..n-1 (for send/recv: n = 2, member 0 the sender, 1 the
// receiver). `link(a, b)` is the link from member a to member b; specs[i] is member i's
// device (command overhead, vector rate, memory bandwidth).
CollectivePlan plan_collective(const CollectiveShape& shape, int32_t n,
                               const std::function<CollectiveLink(int32_t, int32_t)>& link,
                               const std::vector<const DeviceSpec*>& specs);

// The link between two dies/devices of one plugin (see the top of this file).
CollectiveLink link_between_devices(const DeviceSpec& from, const DeviceSpec& to, bool same_device,
                                    bool peer_linked);
// The link from a device to a member in another process.
CollectiveLink link_across_processes(const DeviceSpec& spec);

}  // namespace hal::npu_sim
