// hal/transport.h: how the members of a Channel in different processes reach each other.
//
// A Transport moves bytes between the processes of one job (ranks 0..size-1). The host
// supplies it when it creates a channel that spans processes (hal/channel.h); the HAL
// hands it to the plugin through the C ABI (hal_transport), so a backend reaches other
// processes without linking MPI or any network library itself. The HAL's MPI bootstrap
// (hal/mpi/mpi_bootstrap.h, built when Open MPI is found) is one; tests use in-process
// fakes.
//
// Contract
// - exchange() sends `send_bytes` to `send_peer` and receives `recv_bytes` from
//   `recv_peer` at once (either part may be absent: peer -1) and returns when both are
//   complete. Messages from one process to another with the same tag arrive in the
//   order they were sent. A peer that does not answer within `timeout_s` is an error
//   (DEADLINE_EXCEEDED naming it); a peer known to be gone is UNAVAILABLE.
// - abort() ends the whole job with `reason` so that no process waits for a failed one;
//   the default does nothing (peers then fail by their timeouts).
// - The Transport must outlive every channel created with it.
//
// Threading: exchange() and abort() may be called from any thread, concurrently
// (backends call them from their stream threads).
#pragma once

#include <cstdint>
#include <string>

#include "hal/status.h"

namespace hal {

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int32_t rank() const = 0;
  virtual int32_t size() const = 0;

  struct Exchange {
    int32_t send_peer = -1;
    const void* send_data = nullptr;
    uint64_t send_bytes = 0;
    int32_t recv_peer = -1;
    void* recv_data = nullptr;
    uint64_t recv_bytes = 0;
    uint64_t tag = 0;
    double timeout_s = 300;
  };
  virtual Status exchange(const Exchange& exchange) = 0;
  virtual void abort(const std::string& reason) { (void)reason; }
};

}  // namespace hal
