// list_engine.h (internal): the list-scheduling engine behind every algorithm but the
// exhaustive search. One run places tasks in priority order (a ready queue by rank, or a
// given order), each on the device its policy picks (earliest finish, PEFT's optimistic
// cost, lookahead, a preferred device, round robin), within each device's memory, timing
// work on gap timelines per device and per link; assemble() then turns the placement into
// a Schedule (schedule_assembly.cc).
//
// Contract: run() may be called again with another configuration (refinement re-times
// the graph many times with one engine); each run starts from scratch. A run fails with
// kOutOfMemory when a task fits no device, kFailedPrecondition under strict placement
// when a task would fall back.
//
// Threading: an engine is single-threaded; distinct engines may run concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gap_timeline.h"
#include "internal.h"

namespace hal::scheduler::detail {

enum class Policy {
  kEft,         // HEFT: earliest finish time
  kPeft,        // earliest finish time + optimistic cost to the exit
  kLookahead,   // the earliest finish the task's children could reach
  kPreferred,   // preferred[t] (or EFT where -1); spills by EFT when it does not fit
  kRoundRobin,  // devices in turn
};

struct RunConfig {
  Algorithm label = Algorithm::kHeft;
  Policy policy = Policy::kEft;
  const std::vector<double>* priority = nullptr;  // higher first (ties: topological order)
  const std::vector<TaskId>* order = nullptr;     // explicit order instead of priorities
  const std::vector<int32_t>* preferred = nullptr;
  const std::vector<double>* oct = nullptr;  // kPeft: tasks x devices
  std::vector<uint64_t> reserve;             // activation reserve per device
};

class Engine {
 public:
  Engine(const Problem& pb, const Options& opt, const std::vector<int32_t>& pins);

  // Places every task by `cfg` (kept by pointer until the next run).
  Status run(const RunConfig& cfg);
  // The schedule of the last successful run: streams, issue order, events, memory.
  Schedule assemble() const;

 private:
  struct PendingTransfer {
    double source_finish;
    int32_t edge;
  };
  struct PendingReady {
    double source_finish;
    double seconds;
    int32_t from;
  };

  void reset();
  int32_t find_transfer(TaskId source, int32_t data, int32_t to) const;
  GapTimeline& link_tl(int32_t from, int32_t to) {
    return link_tl_[size_t(from) * size_t(p_) + size_t(to)];
  }
  const GapTimeline& link_tl(int32_t from, int32_t to) const {
    return link_tl_[size_t(from) * size_t(p_) + size_t(to)];
  }

  // When the inputs of t would be on device d. Predecessors not yet placed are skipped
  // (lookahead), except `ov`, taken to be on ov_dev finishing at ov_finish. Transfers not
  // yet made are timed against the link timelines as they stand; on serialized links the
  // task's own new transfers over one link queue behind each other, as commit() will
  // queue them (without that, HEFT sees every input arrive at once and spreads tasks
  // over devices whose links then jam).
  double data_ready(TaskId t, int32_t d, TaskId ov = kNoTask, int32_t ov_dev = -1,
                    double ov_finish = 0) const;
  double eft(TaskId t, int32_t d) const;
  uint64_t new_resident_bytes(TaskId t, int32_t d) const;
  bool fits(TaskId t, int32_t d) const;
  bool eligible(TaskId t, int32_t d) const;
  // The criterion of the policy for t on d (lower is better).
  double metric(TaskId t, int32_t d) const;
  double lookahead(TaskId t, int32_t d, double t_finish) const;
  // The best device by the policy's metric among eligible ones: the overall best
  // (`preferred`, ties going to supported devices) and the best supported one.
  void choose(TaskId t, int32_t* preferred, int32_t* chosen) const;
  Status no_device(TaskId t) const;
  Status record_fallback(TaskId t, int32_t preferred, int32_t chosen, const std::string& why);
  std::string unsupported_reason(TaskId t, int32_t d, bool pinned) const;
  Status place(TaskId t);
  void commit(TaskId t, int32_t d);

  const Problem& pb_;
  const TaskGraph& g_;
  const Options& opt_;
  const std::vector<int32_t>& pins_;
  const int32_t p_;
  const int32_t n_;
  const RunConfig* cfg_ = nullptr;
  std::vector<uint8_t> has_unsupported_;
  std::vector<uint8_t> shared_data_;  // per edge: another edge carries the same data

  std::vector<GapTimeline> device_tl_;
  std::vector<GapTimeline> link_tl_;
  std::vector<int32_t> dev_;
  std::vector<double> start_, finish_;
  std::vector<Transfer> transfers_;
  std::vector<int32_t> transfer_next_, transfer_head_;
  std::vector<int32_t> edge_transfer_;  // per edge: the transfer feeding it, or -1
  std::vector<uint8_t> resident_on_;
  std::vector<uint64_t> used_;
  std::vector<Fallback> fallbacks_;
  std::vector<PendingTransfer> pending_;
  mutable std::vector<PendingReady> pending_ready_;  // data_ready() scratch
  mutable std::vector<double> link_end_;
  int32_t round_robin_ = 0;
};

// Runs one configuration, growing the activation reserve of a device until the measured
// activation peak fits next to its resident tensors.
Result<Schedule> run_with_capacity(Engine& engine, const Problem& pb, RunConfig cfg);

}  // namespace hal::scheduler::detail
