// The collective engine of the plugin kit (hal/plugin/collective_engine.h): in-process
// groups meeting in shared memory, and the same collectives over the host's transport.
#include "hal/plugin/collective_engine.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

namespace hal::plugin {

namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point deadline_after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(std::min(seconds, 1e7)));
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

// Block i of `count` elements split over n members: [begin(i), begin(i) + length(i)).
uint64_t block_begin(uint64_t count, int32_t n, int32_t i) {
  const uint64_t q = count / uint64_t(n), rem = count % uint64_t(n);
  return q * uint64_t(i) + std::min<uint64_t>(uint64_t(i), rem);
}
uint64_t block_length(uint64_t count, int32_t n, int32_t i) {
  return block_begin(count, n, i + 1) - block_begin(count, n, i);
}

const char* at(const void* base, uint64_t byte_offset) {
  return base ? static_cast<const char*>(base) + byte_offset : nullptr;
}
char* at(void* base, uint64_t byte_offset) {
  return base ? static_cast<char*>(base) + byte_offset : nullptr;
}

void copy_bytes(void* dst, const void* src, uint64_t bytes) {
  if (dst && src && dst != src && bytes > 0) std::memmove(dst, src, bytes);
}

bool same_shape(const CollectiveShape& a, const CollectiveShape& b) {
  return a.kind == b.kind && a.dtype == b.dtype && a.count == b.count &&
         (!a.reduces() || a.reduction == b.reduction) &&
         (a.kind != CollectiveKind::kBroadcast || a.peer == b.peer);
}

}  // namespace

// ---- in-process groups ---------------------------------------------------------------

class LocalGroup {
 public:
  LocalGroup(std::string name, int32_t size)
      : name_(std::move(name)),
        size_(size),
        joined_(size_t(size), false),
        posted_(size_t(size), nullptr),
        outcomes_(size_t(size)),
        arrived_(size_t(size), 0) {}

  static Result<std::shared_ptr<LocalGroup>> join(const std::string& name, int32_t size,
                                                  int32_t rank) {
    static std::mutex registry_mu;
    static std::map<std::string, std::weak_ptr<LocalGroup>>* registry =
        new std::map<std::string, std::weak_ptr<LocalGroup>>();  // never destroyed: used at exit
    std::lock_guard<std::mutex> lock(registry_mu);
    std::shared_ptr<LocalGroup> g = (*registry)[name].lock();
    if (!g) {
      g = std::make_shared<LocalGroup>(name, size);
      (*registry)[name] = g;
    }
    std::lock_guard<std::mutex> glock(g->mu_);
    if (g->size_ != size)
      return invalid_argument("channel group '" + name + "' has " + std::to_string(g->size_) +
                              " members; rank " + std::to_string(rank) + " asked for " +
                              std::to_string(size));
    if (g->joined_[size_t(rank)])
      return invalid_argument("channel group '" + name + "' already has a rank " +
                              std::to_string(rank) + " in this process");
    g->joined_[size_t(rank)] = true;
    return g;
  }

  void leave(int32_t rank) {
    std::lock_guard<std::mutex> lock(mu_);
    joined_[size_t(rank)] = false;
  }

  void abort(int32_t rank, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu_);
    break_group(StatusCode::kAborted, "rank " + std::to_string(rank) + " aborted: " + reason);
  }

  Status run(int32_t rank, MemberCollective& op, double timeout_s,
             const AllArrivedFn& on_all_arrived, CollectiveOutcome* outcome) {
    const CollectiveShape& s = op.shape;
    if (s.kind == CollectiveKind::kSend) return send(rank, op, timeout_s, outcome);
    if (s.kind == CollectiveKind::kRecv) return recv(rank, op, timeout_s, on_all_arrived, outcome);
    const std::string what = s.describe();
    std::unique_lock<std::mutex> lock(mu_);
    posted_[size_t(rank)] = &op;
    HAL_RETURN_IF_ERROR(
        barrier(lock, rank, timeout_s, what, [&] { on_last_arrival(on_all_arrived); }));
    *outcome = outcomes_[size_t(rank)];
    const std::vector<MemberCollective*> members = posted_;
    lock.unlock();

    const uint64_t e = dtype_size(s.dtype);
    const int32_t n = size_;
    uint64_t received = 0;
    switch (s.kind) {
      case CollectiveKind::kAllReduce: {
        // Phase 1: block r, folded over every member's send in rank order.
        const uint64_t b0 = block_begin(s.count, n, rank), len = block_length(s.count, n, rank);
        reduce_block(members, s, b0 * e, len, at(op.recv, b0 * e));
        received += uint64_t(n - 1) * len * e;
        lock.lock();
        HAL_RETURN_IF_ERROR(barrier(lock, rank, timeout_s, what, [] {}));
        lock.unlock();
        // Phase 2: the other blocks from their owners.
        for (int32_t i = 0; i < n; ++i) {
          if (i == rank) continue;
          const uint64_t bi = block_begin(s.count, n, i), li = block_length(s.count, n, i);
          copy_bytes(at(op.recv, bi * e), at(members[size_t(i)]->recv, bi * e), li * e);
          received += li * e;
        }
        break;
      }
      case CollectiveKind::kReduceScatter: {
        reduce_block(members, s, uint64_t(rank) * s.count * e, s.count, op.recv);
        received += uint64_t(n - 1) * s.count * e;
        break;
      }
      case CollectiveKind::kAllGather: {
        for (int32_t i = 0; i < n; ++i) {
          copy_bytes(at(op.recv, uint64_t(i) * s.count * e), members[size_t(i)]->send, s.count * e);
          if (i != rank) received += s.count * e;
        }
        break;
      }
      case CollectiveKind::kBroadcast: {
        copy_bytes(op.recv, members[size_t(s.peer)]->send, s.count * e);
        if (rank != s.peer) received += s.count * e;
        break;
      }
      default:
        break;
    }
    lock.lock();
    HAL_RETURN_IF_ERROR(barrier(lock, rank, timeout_s, what, [] {}));
    if (!on_all_arrived) {
      // What moved through shared memory (a backend's on_all_arrived states its own links
      // instead): symmetric amounts, except a broadcast's root, which everyone reads.
      outcome->bytes_received = received;
      outcome->bytes_sent = s.kind == CollectiveKind::kBroadcast
                                ? (rank == s.peer ? uint64_t(n - 1) * s.count * e : 0)
                                : received;
      outcome->link = LinkClass::kSharedMemory;
      outcome->algorithm = CollectiveAlgorithm::kDirect;
    }
    return ok_status();
  }

 private:
  struct Post {
    MemberCollective* sender = nullptr;
    uint64_t bytes = 0;
    bool done = false;
    std::string error;
    bool timed = false;  // the receiver's on_all_arrived set sender_outcome
    CollectiveOutcome sender_outcome;
  };

  // Folds block [byte_offset, + len elements) of every member's send into `out`.
  static void reduce_block(const std::vector<MemberCollective*>& members, const CollectiveShape& s,
                           uint64_t byte_offset, uint64_t len, void* out) {
    if (!out || len == 0) return;
    std::vector<const void*> inputs(members.size());
    for (size_t i = 0; i < members.size(); ++i) {
      inputs[i] = at(members[i]->send, byte_offset);
      if (!inputs[i]) return;  // a member without storage: nothing to compute
    }
    reduce_elements(s.dtype, s.reduction, inputs.data(), int32_t(inputs.size()), len, out);
  }

  void break_group(StatusCode code, const std::string& why) {
    if (broken_.empty()) {
      broken_ = "channel group '" + name_ + "': " + why;
      broken_code_ = code;
    }
    cv_.notify_all();
  }
  Status broken_status() const {
    if (broken_code_ == StatusCode::kInvalidArgument) return invalid_argument(broken_);
    return aborted(broken_ + " (the channel is broken; create a new one)");
  }

  // Runs once, on the last member's thread, with every member posted.
  void on_last_arrival(const AllArrivedFn& on_all_arrived) {
    for (int32_t i = 1; i < size_; ++i) {
      const CollectiveShape& a = posted_[0]->shape;
      const CollectiveShape& b = posted_[size_t(i)]->shape;
      if (!same_shape(a, b)) {
        break_group(StatusCode::kInvalidArgument, "members disagree on a collective: rank 0 runs " +
                                                      a.describe() + ", rank " + std::to_string(i) +
                                                      " runs " + b.describe());
        return;
      }
    }
    for (auto& o : outcomes_) o = CollectiveOutcome{};
    if (on_all_arrived) on_all_arrived(std::span<MemberCollective* const>(posted_), outcomes_);
  }

  // Waits until every member reached this barrier. The last one runs `last` (lock held).
  template <typename Last>
  Status barrier(std::unique_lock<std::mutex>& lock, int32_t rank, double timeout_s,
                 const std::string& what, Last&& last) {
    if (!broken_.empty()) return broken_status();
    const uint64_t generation = generation_;
    arrived_[size_t(rank)] = 1;
    if (++arrived_count_ == size_) {
      last();
      arrived_count_ = 0;
      std::fill(arrived_.begin(), arrived_.end(), 0);
      ++generation_;
      cv_.notify_all();
      if (!broken_.empty()) return broken_status();
      return ok_status();
    }
    const auto deadline = deadline_after(timeout_s);
    while (generation_ == generation && broken_.empty()) {
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && generation_ == generation &&
          broken_.empty()) {
        std::string missing;
        for (int32_t i = 0; i < size_; ++i)
          if (!arrived_[size_t(i)]) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
        break_group(StatusCode::kDeadlineExceeded, "rank " + std::to_string(rank) + " waited " +
                                                       seconds_text(timeout_s) + " in " + what +
                                                       " for rank(s) " + missing);
        return deadline_exceeded(broken_);
      }
    }
    if (generation_ == generation || !broken_.empty()) return broken_status();
    return ok_status();
  }

  Status send(int32_t rank, MemberCollective& op, double timeout_s, CollectiveOutcome* outcome) {
    const uint64_t bytes = op.shape.count * dtype_size(op.shape.dtype);
    std::unique_lock<std::mutex> lock(mu_);
    if (!broken_.empty()) return broken_status();
    auto post = std::make_shared<Post>();
    post->sender = &op;
    post->bytes = bytes;
    mail_[{rank, op.shape.peer}].push_back(post);
    cv_.notify_all();
    const auto deadline = deadline_after(timeout_s);
    while (!post->done && broken_.empty()) {
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && !post->done &&
          broken_.empty()) {
        break_group(StatusCode::kDeadlineExceeded,
                    "rank " + std::to_string(rank) + " waited " + seconds_text(timeout_s) + " in " +
                        op.shape.describe() + " for rank " + std::to_string(op.shape.peer) +
                        " to receive it");
        return deadline_exceeded(broken_);
      }
    }
    if (!post->done) return broken_status();
    if (!post->error.empty()) return invalid_argument(post->error);
    if (post->timed) {
      *outcome = post->sender_outcome;
    } else {
      outcome->bytes_sent = bytes;
      outcome->peer_rank = op.shape.peer;
      outcome->link = LinkClass::kSharedMemory;
    }
    return ok_status();
  }

  // Takes the oldest send of `peer` to `rank`; with on_all_arrived, times both sides
  // (members = {sender, receiver}) while the sender waits.
  Status recv(int32_t rank, MemberCollective& op, double timeout_s,
              const AllArrivedFn& on_all_arrived, CollectiveOutcome* outcome) {
    const uint64_t bytes = op.shape.count * dtype_size(op.shape.dtype);
    std::unique_lock<std::mutex> lock(mu_);
    auto& queue = mail_[{op.shape.peer, rank}];
    const auto deadline = deadline_after(timeout_s);
    while (queue.empty() && broken_.empty()) {
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && queue.empty() &&
          broken_.empty()) {
        break_group(StatusCode::kDeadlineExceeded,
                    "rank " + std::to_string(rank) + " waited " + seconds_text(timeout_s) + " in " +
                        op.shape.describe() + " for rank " + std::to_string(op.shape.peer) +
                        " to send it");
        return deadline_exceeded(broken_);
      }
    }
    if (!broken_.empty()) return broken_status();
    std::shared_ptr<Post> post = queue.front();
    queue.pop_front();
    if (post->bytes != bytes) {
      post->error = "channel group '" + name_ + "': rank " + std::to_string(op.shape.peer) +
                    " sent " + std::to_string(post->bytes) + " bytes to rank " +
                    std::to_string(rank) + ", which receives " + std::to_string(bytes);
      post->done = true;
      cv_.notify_all();
      return invalid_argument(post->error);
    }
    if (on_all_arrived) {
      MemberCollective* pair[2] = {post->sender, &op};
      CollectiveOutcome outcomes[2];
      on_all_arrived(std::span<MemberCollective* const>(pair, 2),
                     std::span<CollectiveOutcome>(outcomes, 2));
      post->sender_outcome = outcomes[0];
      post->timed = true;
      *outcome = outcomes[1];
    } else {
      outcome->bytes_received = bytes;
      outcome->link = LinkClass::kSharedMemory;
    }
    const void* data = post->sender->send;
    lock.unlock();
    copy_bytes(op.recv, data, bytes);
    lock.lock();
    post->done = true;
    cv_.notify_all();
    return ok_status();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  const std::string name_;
  const int32_t size_;
  std::vector<bool> joined_;
  std::vector<MemberCollective*> posted_;    // this round's members
  std::vector<CollectiveOutcome> outcomes_;  // this round's, set at the last arrival
  std::vector<char> arrived_;
  int32_t arrived_count_ = 0;
  uint64_t generation_ = 0;
  std::string broken_;  // the first failure; empty while healthy
  StatusCode broken_code_ = StatusCode::kOk;
  std::map<std::pair<int32_t, int32_t>, std::deque<std::shared_ptr<Post>>> mail_;  // (from, to)
};

// ---- KitChannel ----------------------------------------------------------------------

KitChannel::KitChannel(DeviceImpl* device, ChannelConfig config, std::shared_ptr<LocalGroup> group)
    : ChannelImpl(device, std::move(config)), group_(std::move(group)) {
  // Messages of this channel carry a tag derived from its group name (FNV-1a), so two
  // channels between the same processes do not take each other's messages.
  uint32_t h = 2166136261u;
  for (unsigned char c : this->config().group) h = (h ^ c) * 16777619u;
  transport_tag_ = 2 * (1 + h % 15000);  // even: the next tag answers p2p announcements
}

KitChannel::~KitChannel() {
  if (group_) group_->leave(rank());
}

Result<std::unique_ptr<KitChannel>> KitChannel::create(DeviceImpl* device,
                                                       const ChannelConfig& config) {
  std::shared_ptr<LocalGroup> group;
  if (!config.transport) {
    auto g = LocalGroup::join(config.group, config.size, config.rank);
    if (!g.ok()) return g.status();
    group = std::move(*g);
  }
  return std::unique_ptr<KitChannel>(new KitChannel(device, config, std::move(group)));
}

void KitChannel::abort(const std::string& reason) {
  if (group_) {
    group_->abort(rank(), reason);
    return;
  }
  const hal_transport& t = *config().transport;
  if (t.abort) t.abort(t.context, (member_label() + ": " + reason).c_str());
}

// The transport names processes by its own (job-wide) ranks; this says which member of
// which channel saw the error, so "member 0 of channel 'tp.1'" and the transport's "rank 2"
// are not read as two different processes.
std::string KitChannel::member_label() const {
  return "member " + std::to_string(rank()) + " of channel" +
         (config().group.empty() ? std::string() : " '" + config().group + "'");
}

Status KitChannel::run(MemberCollective& op, CollectiveOutcome* outcome,
                       const AllArrivedFn& on_all_arrived, bool agree_on_start) {
  *outcome = CollectiveOutcome{};
  if (size() == 1 && op.shape.kind != CollectiveKind::kSend &&
      op.shape.kind != CollectiveKind::kRecv) {
    // A channel of one: the result is the input (one rounding of one value is itself).
    copy_bytes(op.recv, op.send, op.shape.recv_bytes(0, 1));
    outcome->agreed_start_ns = op.ready_ns;
    if (group_ && on_all_arrived) {
      MemberCollective* members[1] = {&op};
      on_all_arrived(std::span<MemberCollective* const>(members, 1),
                     std::span<CollectiveOutcome>(outcome, 1));
    }
    return ok_status();
  }
  if (group_) return group_->run(rank(), op, config().timeout_s, on_all_arrived, outcome);
  return run_transport(op, outcome, agree_on_start);
}

Status KitChannel::exchange(int32_t send_peer, const void* send, uint64_t send_bytes,
                            int32_t recv_peer, void* recv, uint64_t recv_bytes, uint64_t tag) {
  const hal_transport& t = *config().transport;
  hal_transport_exchange_args a{};
  a.struct_size = sizeof a;
  a.send_peer = send_peer;
  a.send_data = send;
  a.send_bytes = send_bytes;
  a.recv_peer = recv_peer;
  a.recv_data = recv;
  a.recv_bytes = recv_bytes;
  a.tag = tag ? tag : transport_tag_;
  a.timeout_s = config().timeout_s;
  char message[512] = {0};
  const hal_status_code code = t.exchange(t.context, &a, message, sizeof message);
  if (code == HAL_STATUS_OK) return ok_status();
  const int32_t c = int32_t(code);
  const StatusCode sc =
      (c > 0 && c <= int32_t(StatusCode::kAborted)) ? StatusCode(c) : StatusCode::kInternal;
  return Status(sc, member_label() + ": " + message);
}

namespace {

// What one member tells its ring neighbours before a collective across processes.
struct WireHeader {
  int32_t kind, dtype, reduction, peer;
  uint64_t count;
  uint64_t ready_ns;
};

WireHeader header_of(const MemberCollective& op) {
  return {int32_t(op.shape.kind), int32_t(op.shape.dtype), int32_t(op.shape.reduction),
          op.shape.peer,          op.shape.count,          op.ready_ns};
}

CollectiveShape shape_of(const WireHeader& h) {
  CollectiveShape s;
  s.kind = CollectiveKind(h.kind);
  s.dtype = DType(h.dtype);
  s.reduction = Reduction(h.reduction);
  s.peer = h.peer;
  s.count = h.count;
  return s;
}

}  // namespace

Status KitChannel::run_transport(MemberCollective& op, CollectiveOutcome* outcome,
                                 bool agree_on_start) {
  const CollectiveShape& s = op.shape;
  const int32_t n = size(), r = rank();
  const int32_t next = (r + 1) % n, prev = (r + n - 1) % n;
  const uint64_t e = dtype_size(s.dtype);
  outcome->link = LinkClass::kNetwork;
  outcome->agreed_start_ns = op.ready_ns;
  ++sequence_;

  if (s.kind == CollectiveKind::kSend || s.kind == CollectiveKind::kRecv) {
    // The sender announces the shape on the channel's tag, the receiver answers on the
    // next tag (shape and ready time), then the data follows the announcement. Sends and
    // receives between the same two processes in opposite directions (a ring of sends on
    // separate streams) use the two tags the other way round, so they never mix.
    const bool sending = s.kind == CollectiveKind::kSend;
    const uint64_t bytes = s.count * e;
    const uint64_t forward = transport_tag_, answer = transport_tag_ + 1;
    WireHeader mine = header_of(op), theirs{};
    if (sending) {
      HAL_RETURN_IF_ERROR(exchange(s.peer, &mine, sizeof mine, -1, nullptr, 0, forward));
      HAL_RETURN_IF_ERROR(exchange(-1, nullptr, 0, s.peer, &theirs, sizeof theirs, answer));
    } else {
      HAL_RETURN_IF_ERROR(exchange(-1, nullptr, 0, s.peer, &theirs, sizeof theirs, forward));
      HAL_RETURN_IF_ERROR(exchange(s.peer, &mine, sizeof mine, -1, nullptr, 0, answer));
    }
    if (theirs.count != s.count || theirs.dtype != int32_t(s.dtype) ||
        theirs.kind != int32_t(sending ? CollectiveKind::kRecv : CollectiveKind::kSend))
      return invalid_argument("rank " + std::to_string(r) + " runs " + s.describe() + " but rank " +
                              std::to_string(s.peer) + " runs " + shape_of(theirs).describe());
    if (agree_on_start) outcome->agreed_start_ns = std::max(op.ready_ns, theirs.ready_ns);
    std::vector<char> scratch;
    const void* data = op.send;
    void* into = op.recv;
    if ((sending && !data) || (!sending && !into)) {
      scratch.assign(bytes, 0);
      data = into = scratch.data();
    }
    if (sending) {
      HAL_RETURN_IF_ERROR(exchange(s.peer, data, bytes, -1, nullptr, 0, forward));
      outcome->bytes_sent = bytes;
    } else {
      HAL_RETURN_IF_ERROR(exchange(-1, nullptr, 0, s.peer, into, bytes, forward));
      outcome->bytes_received = bytes;
    }
    outcome->peer_rank = s.peer;
    outcome->algorithm = CollectiveAlgorithm::kDirect;
    return ok_status();
  }

  // Neighbours check each other's shape (a mismatch anywhere is seen by its successor);
  // with agree_on_start every member learns every ready time round the ring.
  {
    WireHeader mine = header_of(op), from_prev{};
    HAL_RETURN_IF_ERROR(exchange(next, &mine, sizeof mine, prev, &from_prev, sizeof from_prev));
    if (!same_shape(s, shape_of(from_prev)))
      return invalid_argument("members disagree on a collective: rank " + std::to_string(r) +
                              " runs " + s.describe() + ", rank " + std::to_string(prev) +
                              " runs " + shape_of(from_prev).describe());
    uint64_t latest = std::max(op.ready_ns, from_prev.ready_ns);
    if (agree_on_start) {
      uint64_t passing = from_prev.ready_ns, incoming = 0;
      for (int32_t k = 1; k < n - 1; ++k) {
        HAL_RETURN_IF_ERROR(
            exchange(next, &passing, sizeof passing, prev, &incoming, sizeof incoming));
        latest = std::max(latest, incoming);
        passing = incoming;
      }
    }
    outcome->agreed_start_ns = agree_on_start ? latest : op.ready_ns;
  }

  // Buffers without storage still exchange (zeros), so every member's messages match.
  const uint64_t send_bytes = s.send_bytes(r, n), recv_bytes = s.recv_bytes(r, n);
  std::vector<char> send_scratch, recv_scratch;
  const char* send = static_cast<const char*>(op.send);
  char* recv = static_cast<char*>(op.recv);
  if (!send && send_bytes > 0) {
    send_scratch.assign(send_bytes, 0);
    send = send_scratch.data();
  }
  if (!recv && recv_bytes > 0) {
    recv_scratch.assign(recv_bytes, 0);
    recv = recv_scratch.data();
  }

  // Direct reduce-scatter: block `mine` of every member's send, folded in rank order.
  auto reduce_blocks = [&](uint64_t mine_begin, uint64_t mine_len, auto block_of) -> Status {
    std::vector<char> staging(static_cast<size_t>(n) * mine_len * e);
    for (int32_t k = 1; k < n; ++k) {
      const int32_t to = (r + k) % n, from = (r + n - k) % n;
      const auto [to_begin, to_len] = block_of(to);
      HAL_RETURN_IF_ERROR(exchange(to, send + to_begin * e, to_len * e, from,
                                   staging.data() + size_t(from) * mine_len * e, mine_len * e));
      outcome->bytes_sent += to_len * e;
      outcome->bytes_received += mine_len * e;
    }
    std::vector<const void*> inputs(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i)
      inputs[size_t(i)] = i == r ? static_cast<const void*>(send + mine_begin * e)
                                 : staging.data() + size_t(i) * mine_len * e;
    reduce_elements(s.dtype, s.reduction, inputs.data(), n, mine_len,
                    recv + (s.kind == CollectiveKind::kAllReduce ? mine_begin * e : 0));
    return ok_status();
  };
  // Ring all-gather of blocks (block_of(i) = {begin, length} in elements of recv).
  auto ring_gather = [&](auto block_of) -> Status {
    for (int32_t k = 0; k < n - 1; ++k) {
      const int32_t sb = (r + n - k) % n, rb = (r + n - k - 1) % n;
      const auto [s_begin, s_len] = block_of(sb);
      const auto [r_begin, r_len] = block_of(rb);
      HAL_RETURN_IF_ERROR(
          exchange(next, recv + s_begin * e, s_len * e, prev, recv + r_begin * e, r_len * e));
      outcome->bytes_sent += s_len * e;
      outcome->bytes_received += r_len * e;
    }
    return ok_status();
  };

  switch (s.kind) {
    case CollectiveKind::kAllReduce: {
      auto blocks = [&](int32_t i) {
        return std::pair<uint64_t, uint64_t>{block_begin(s.count, n, i),
                                             block_length(s.count, n, i)};
      };
      HAL_RETURN_IF_ERROR(reduce_blocks(blocks(r).first, blocks(r).second, blocks));
      HAL_RETURN_IF_ERROR(ring_gather(blocks));
      outcome->algorithm = CollectiveAlgorithm::kDirect;
      break;
    }
    case CollectiveKind::kReduceScatter: {
      auto blocks = [&](int32_t i) {
        return std::pair<uint64_t, uint64_t>{uint64_t(i) * s.count, s.count};
      };
      HAL_RETURN_IF_ERROR(reduce_blocks(uint64_t(r) * s.count, s.count, blocks));
      outcome->algorithm = CollectiveAlgorithm::kDirect;
      break;
    }
    case CollectiveKind::kAllGather: {
      copy_bytes(recv + uint64_t(r) * s.count * e, send, s.count * e);
      HAL_RETURN_IF_ERROR(ring_gather([&](int32_t i) {
        return std::pair<uint64_t, uint64_t>{uint64_t(i) * s.count, s.count};
      }));
      outcome->peer_rank = next;
      outcome->algorithm = CollectiveAlgorithm::kRing;
      break;
    }
    case CollectiveKind::kBroadcast: {
      const uint64_t bytes = s.count * e;
      if (r == s.peer) {
        copy_bytes(recv, send, bytes);
        for (int32_t k = 1; k < n; ++k) {
          HAL_RETURN_IF_ERROR(exchange((r + k) % n, send, bytes, -1, nullptr, 0));
          outcome->bytes_sent += bytes;
        }
      } else {
        HAL_RETURN_IF_ERROR(exchange(-1, nullptr, 0, s.peer, recv, bytes));
        outcome->bytes_received = bytes;
      }
      outcome->algorithm = CollectiveAlgorithm::kDirect;
      break;
    }
    default:
      return invalid_argument("collective " + s.describe() + " is not run by the engine");
  }
  return ok_status();
}

CommandRecord collective_record(const CollectiveCall& call, int32_t rank, int32_t size,
                                const CollectiveOutcome& outcome) {
  CommandRecord r;
  r.tag = call.tag;
  r.command = CommandKind::kCollective;
  r.flops = reduction_flops(call.shape, size);
  r.link_bytes = outcome.bytes_sent;
  r.bound = outcome.bound;
  r.collective = call.shape.kind;
  r.channel_rank = rank;
  r.channel_size = size;
  r.peer_rank = outcome.peer_rank;
  r.link_bytes_received = outcome.bytes_received;
  r.link_class = outcome.link;
  r.algorithm = outcome.algorithm;
  return r;
}

}  // namespace hal::plugin
