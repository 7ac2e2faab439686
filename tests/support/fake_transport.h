// tests/support/fake_transport.h: a hal_transport between threads of one process, standing
// in for MPI: each rank is a thread, messages are buffered per (from, to, tag) in order.
// A receive waits at most the exchange's timeout, then fails with DEADLINE_EXCEEDED
// naming the peer, as the MPI bootstrap does. abort() records its reason.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "hal/plugin_abi.h"

namespace hal::test {

class FakeNetwork {
 public:
  explicit FakeNetwork(int32_t size) : size_(size) {}

  // The hal_transport of `rank` (context points into this network).
  hal_transport transport(int32_t rank) {
    hal_transport t{};
    t.struct_size = sizeof t;
    t.context = &endpoints_.emplace_back(Endpoint{this, rank});
    t.rank = rank;
    t.size = size_;
    t.exchange = &FakeNetwork::exchange;
    t.abort = &FakeNetwork::abort;
    return t;
  }
  std::string abort_reason() {
    std::lock_guard<std::mutex> lock(mu_);
    return abort_reason_;
  }
  uint64_t messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }

 private:
  struct Endpoint {
    FakeNetwork* net;
    int32_t rank;
  };

  static hal_status_code exchange(void* context, const hal_transport_exchange_args* a,
                                  char* message, size_t message_size) {
    auto* ep = static_cast<Endpoint*>(context);
    FakeNetwork& net = *ep->net;
    std::unique_lock<std::mutex> lock(net.mu_);
    if (a->send_peer >= 0) {
      const char* p = static_cast<const char*>(a->send_data);
      net.queues_[{ep->rank, a->send_peer, a->tag}].emplace_back(p, p + a->send_bytes);
      ++net.messages_;
      net.cv_.notify_all();
    }
    if (a->recv_peer >= 0) {
      auto& q = net.queues_[{a->recv_peer, ep->rank, a->tag}];
      const auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                std::chrono::duration<double>(a->timeout_s));
      if (!net.cv_.wait_until(lock, deadline, [&] { return !q.empty(); })) {
        std::snprintf(message, message_size, "no message from rank %d within %g s", a->recv_peer,
                      a->timeout_s);
        return HAL_STATUS_DEADLINE_EXCEEDED;
      }
      std::vector<char> m = std::move(q.front());
      q.pop_front();
      if (m.size() != a->recv_bytes) {
        std::snprintf(message, message_size, "rank %d sent %zu bytes, %llu expected", a->recv_peer,
                      m.size(), static_cast<unsigned long long>(a->recv_bytes));
        return HAL_STATUS_INVALID_ARGUMENT;
      }
      if (!m.empty()) std::memcpy(a->recv_data, m.data(), m.size());
    }
    return HAL_STATUS_OK;
  }
  static void abort(void* context, const char* reason) {
    auto* ep = static_cast<Endpoint*>(context);
    std::lock_guard<std::mutex> lock(ep->net->mu_);
    ep->net->abort_reason_ = reason;
  }

  int32_t size_;
  std::deque<Endpoint> endpoints_;  // stable addresses
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::tuple<int32_t, int32_t, uint64_t>, std::deque<std::vector<char>>> queues_;
  std::string abort_reason_;
  uint64_t messages_ = 0;
};

}  // namespace hal::test
