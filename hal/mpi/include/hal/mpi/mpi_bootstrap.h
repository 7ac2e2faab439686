// hal/mpi/mpi_bootstrap.h: the HAL's process bootstrap and cross-process transport on
// MPI (Open MPI from Debian: `mpirun -np K halctl ...`). It is the one place MPI is used:
// libhal, the plugins and the runtime see only hal::Transport (hal/transport.h), so a
// backend reaches other processes (and hosts) without linking MPI, and a build without
// MPI keeps everything else.
//
// What it provides
// - init(): MPI_Init_thread once per process; the job's rank and size; this host's name,
//   and the rank's place among the ranks on its host (local_rank/local_size), which is
//   how a rank picks its local device (rank i on a host takes the i-th device named).
// - exchange(): the Transport's message exchange on a private duplicate of
//   MPI_COMM_WORLD (non-blocking send and receive, then polling until both completed),
//   with a deadline: a peer that does not answer within the timeout is a
//   DEADLINE_EXCEEDED naming it, never a hang. MPI errors are returned, not fatal
//   (MPI_ERRORS_RETURN), and name the peer.
// - abort(): prints why on stderr and ends the whole job (MPI_Abort): mpirun then stops
//   every other rank at once, so one rank's failure ends the job with a clear error.
// - Small coordination over the job for the runtime: barrier, a broadcast of bytes from
//   rank 0, an all-gather of strings (e.g. host names), each with a deadline.
//
// Lifetime: one MpiBootstrap per process, created before and destroyed after every
// channel that uses it (MPI_Finalize in the destructor). Threading: every method is
// thread-safe (MPI calls are serialised by a mutex; waiting polls without holding it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hal/status.h"
#include "hal/transport.h"

namespace hal::mpi {

// Whether this process was started by an MPI launcher (mpirun/mpiexec/srun sets these:
// OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK).
bool launched_by_mpi();

class MpiBootstrap final : public Transport {
 public:
  // MPI_Init_thread; fails (FAILED_PRECONDITION) when MPI is already finalized or
  // initialized by someone else, UNAVAILABLE when the launcher cannot be reached.
  static Result<std::unique_ptr<MpiBootstrap>> init();
  ~MpiBootstrap() override;
  MpiBootstrap(const MpiBootstrap&) = delete;
  MpiBootstrap& operator=(const MpiBootstrap&) = delete;

  int32_t rank() const override { return rank_; }
  int32_t size() const override { return size_; }
  int32_t local_rank() const { return local_rank_; }
  int32_t local_size() const { return local_size_; }
  const std::string& host_name() const { return host_; }
  // "Open MPI v4.1.4, ..." (MPI_Get_library_version, first line).
  std::string library_version() const;

  Status exchange(const Exchange& exchange) override;
  [[noreturn]] void abort(const std::string& reason) override;

  Status barrier(double timeout_s);
  // Rank 0's `bytes` on every rank (resized to rank 0's length).
  Status broadcast(std::vector<char>& bytes, double timeout_s);
  // Every rank's string, in rank order.
  Result<std::vector<std::string>> all_gather(const std::string& mine, double timeout_s);

 private:
  MpiBootstrap() = default;
  struct State;
  std::unique_ptr<State> state_;
  int32_t rank_ = 0;
  int32_t size_ = 1;
  int32_t local_rank_ = 0;
  int32_t local_size_ = 1;
  std::string host_;
};

}  // namespace hal::mpi
