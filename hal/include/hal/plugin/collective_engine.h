// hal/plugin/collective_engine.h: the data movement behind the channels of backends that
// run on the host (the CPU backend, the NPU simulator's functional side): members in one
// process meet in shared memory; members in other processes are reached through the
// host's transport (hal_transport: MPI under the HAL's bootstrap). Part of the plugin kit
// (the static library hal_plugin_collectives, linked through hal::plugin_kit).
//
// A backend derives its channel from KitChannel and, on its stream's worker thread,
// calls KitChannel::run() with host addresses of the call's buffers; run() blocks until
// the collective is complete on this member, or fails.
//
// Results (hal/collective.h): reductions are the serial fold over ranks 0..n-1 with one
// rounding, bit-identical on every member, in both paths:
// - shared memory ("direct"): member r reduces block r reading every member's send
//   buffer in rank order, then copies the other blocks from their owners;
// - transport ("direct" reduce-scatter, then a ring all-gather): member r receives block
//   r of every other member's send (each sender sends its own data, never a partial
//   sum), folds them in rank order, and the reduced blocks travel round the ring.
//   Bytes sent per member: (n-1)/n of the data for each half, as a ring's.
// Buffers without storage (a simulator's timing-only memory) pass null addresses: the
// members still meet (and agree on time) but move no data.
//
// Failures (never a hang): a member that waits longer than the channel's timeout for
// its peers fails with DEADLINE_EXCEEDED naming the ranks it waited for and breaks the
// group; every member waiting or arriving later fails at once with ABORTED naming that
// first failure. abort() breaks it the same way (and calls the transport's abort).
// Kinds, dtypes, counts, reductions and roots that differ between members fail every
// member with INVALID_ARGUMENT naming both, and break the group (the sequences no
// longer match).
//
// Threading: run() is called on each member's own thread (its stream worker); members
// of one group must run on different threads. The group's state is guarded by a mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "hal/collective.h"
#include "hal/command_record.h"
#include "hal/plugin/channel_impl.h"
#include "hal/status.h"

namespace hal::plugin {

// One member's part of a collective, as the engine sees it.
struct MemberCollective {
  CollectiveShape shape;
  const void* send = nullptr;  // host address of the send range (null: no storage)
  void* recv = nullptr;        // host address of the recv range (null: no storage)
  void* context = nullptr;     // the backend's (e.g. its stream), for on_all_arrived
  uint64_t ready_ns = 0;       // the backend's clock when the member arrived
};

// What a member's collective did: for its command record.
struct CollectiveOutcome {
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  int32_t peer_rank = -1;
  LinkClass link = LinkClass::kNone;
  CollectiveAlgorithm algorithm = CollectiveAlgorithm::kDirect;
  BoundBy bound = BoundBy::kLink;  // what limited it (a simulator's model says)
  // Set by a backend's on_all_arrived (simulated time); the engine leaves them 0.
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  // Across processes: the latest ready_ns of all members (agree_on_start).
  uint64_t agreed_start_ns = 0;
};

// Called once per collective of an in-process group, on the thread of the last member to
// arrive, while every member waits: members[i] and outcomes[i] are rank i's; for a
// send/recv pair, on the receiver's thread with members = {sender, receiver}. A simulator
// books time and states links and bytes for all of them here (the engine then leaves the
// outcomes as set). It must not call back into the group.
using AllArrivedFn = std::function<void(std::span<MemberCollective* const> members,
                                        std::span<CollectiveOutcome> outcomes)>;

class LocalGroup;

class KitChannel : public ChannelImpl {
 public:
  // Joins the in-process group (config.group, config.size), or prepares the transport.
  // Fails when the rank is taken in that group or the group has another size.
  static Result<std::unique_ptr<KitChannel>> create(DeviceImpl* device,
                                                    const ChannelConfig& config);
  ~KitChannel() override;

  bool across_processes() const { return config().transport.has_value(); }
  // Runs one collective on this member (see the top of this file). `on_all_arrived` is
  // used by in-process groups only. With `agree_on_start`, members across processes
  // exchange ready_ns first and outcome->agreed_start_ns is their maximum.
  Status run(MemberCollective& op, CollectiveOutcome* outcome,
             const AllArrivedFn& on_all_arrived = {}, bool agree_on_start = false);
  void abort(const std::string& reason) override;

 protected:
  KitChannel(DeviceImpl* device, ChannelConfig config, std::shared_ptr<LocalGroup> group);

 private:
  Status run_transport(MemberCollective& op, CollectiveOutcome* outcome, bool agree_on_start);
  // tag 0: the channel's own tag.
  Status exchange(int32_t send_peer, const void* send, uint64_t send_bytes, int32_t recv_peer,
                  void* recv, uint64_t recv_bytes, uint64_t tag = 0);
  // "member R of channel 'GROUP'": the prefix of transport errors and abort reasons.
  std::string member_label() const;

  std::shared_ptr<LocalGroup> group_;  // null across processes
  uint64_t transport_tag_ = 0;
  uint64_t sequence_ = 0;  // collectives run (for messages)
};

// The record fields every kit backend fills alike for a collective: command and tag, the
// channel's rank and size, the peer, link bytes, link class and algorithm, what bound it,
// the reduction's FLOPs. The backend adds the times and the device-memory bytes its own
// model moves.
CommandRecord collective_record(const CollectiveCall& call, int32_t rank, int32_t size,
                                const CollectiveOutcome& outcome);

}  // namespace hal::plugin
