// The MPI bootstrap and transport (hal/mpi/mpi_bootstrap.h).
#include "hal/mpi/mpi_bootstrap.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace hal::mpi {

namespace {

using Clock = std::chrono::steady_clock;

// MPI counts are ints: messages go in pieces of at most this many bytes.
constexpr uint64_t kChunkBytes = uint64_t(1) << 30;

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, size_t(len));
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

Clock::time_point deadline_after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(std::min(seconds, 1e7)));
}

}  // namespace

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

struct MpiBootstrap::State {
  std::mutex mu;  // serialises MPI calls (whatever thread level the library gave)
  MPI_Comm comm = MPI_COMM_NULL;
  int tag_ub = 32767;

  // Polls `requests` until all completed, failed, or the deadline passed. `describe` says
  // what a timeout means ("no message from rank 1").
  Status wait(std::vector<MPI_Request>& requests, Clock::time_point deadline, double timeout_s,
              const std::string& describe) {
    int spins = 0;
    for (;;) {
      int done = 0;
      int rc;
      {
        std::lock_guard<std::mutex> lock(mu);
        rc = MPI_Testall(int(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE);
      }
      if (rc != MPI_SUCCESS) return unavailable(describe + ": " + mpi_error_text(rc));
      if (done) return ok_status();
      if (Clock::now() >= deadline)
        return deadline_exceeded(describe + " within " + seconds_text(timeout_s) +
                                 " (HAL_COLLECTIVE_TIMEOUT sets the limit)");
      // Poll tightly for short waits, then back off so a waiting rank leaves the CPU to
      // the ones computing.
      if (++spins < 200) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(spins < 2000 ? 20 : 500));
      }
    }
  }
};

Result<std::unique_ptr<MpiBootstrap>> MpiBootstrap::init() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized) return failed_precondition("MPI was already finalized in this process");
  if (initialized) return failed_precondition("MPI was already initialized in this process");
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
    return unavailable("MPI_Init_thread failed (is this process started by mpirun?)");
  std::unique_ptr<MpiBootstrap> b(new MpiBootstrap());
  b->state_ = std::make_unique<State>();
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_dup(MPI_COMM_WORLD, &b->state_->comm);
  MPI_Comm_set_errhandler(b->state_->comm, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  MPI_Comm_rank(b->state_->comm, &rank);
  MPI_Comm_size(b->state_->comm, &size);
  b->rank_ = rank;
  b->size_ = size;
  MPI_Comm local;
  if (MPI_Comm_split_type(b->state_->comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local) ==
      MPI_SUCCESS) {
    int lr = 0, ls = 1;
    MPI_Comm_rank(local, &lr);
    MPI_Comm_size(local, &ls);
    b->local_rank_ = lr;
    b->local_size_ = ls;
    MPI_Comm_free(&local);
  }
  char name[MPI_MAX_PROCESSOR_NAME] = {0};
  int len = 0;
  MPI_Get_processor_name(name, &len);
  b->host_.assign(name, size_t(len));
  void* ub = nullptr;
  int flag = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &flag);
  if (flag && ub) b->state_->tag_ub = std::max(32767, *static_cast<int*>(ub));
  return b;
}

MpiBootstrap::~MpiBootstrap() {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->comm != MPI_COMM_NULL) MPI_Comm_free(&state_->comm);
  }
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::string MpiBootstrap::library_version() const {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {0};
  int len = 0;
  MPI_Get_library_version(text, &len);
  std::string v(text, size_t(len));
  const size_t nl = v.find_first_of("\n,");
  return nl == std::string::npos ? v : v.substr(0, nl);
}

Status MpiBootstrap::exchange(const Exchange& ex) {
  auto bad_peer = [&](int32_t p) { return p < -1 || p >= size_; };
  if (bad_peer(ex.send_peer) || bad_peer(ex.recv_peer))
    return invalid_argument("rank " + std::to_string(rank_) + ": exchange with rank " +
                            std::to_string(bad_peer(ex.send_peer) ? ex.send_peer : ex.recv_peer) +
                            " outside the job's " + std::to_string(size_) + " ranks");
  if ((ex.send_peer >= 0 && ex.send_bytes > 0 && !ex.send_data) ||
      (ex.recv_peer >= 0 && ex.recv_bytes > 0 && !ex.recv_data))
    return invalid_argument("rank " + std::to_string(rank_) + ": exchange of bytes without memory");
  const int tag = int(ex.tag % uint64_t(state_->tag_ub));
  std::vector<MPI_Request> requests;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto post = [&](bool is_send, int32_t peer, char* data, uint64_t bytes) -> int {
      // Zero bytes still make one (empty) message, so both sides count the same messages.
      uint64_t at = 0;
      do {
        const int n = int(std::min(kChunkBytes, bytes - at));
        MPI_Request r;
        const int rc = is_send ? MPI_Isend(data + at, n, MPI_BYTE, peer, tag, state_->comm, &r)
                               : MPI_Irecv(data + at, n, MPI_BYTE, peer, tag, state_->comm, &r);
        if (rc != MPI_SUCCESS) return rc;
        requests.push_back(r);
        at += uint64_t(n);
      } while (at < bytes);
      return MPI_SUCCESS;
    };
    if (ex.recv_peer >= 0) {
      const int rc = post(false, ex.recv_peer, static_cast<char*>(ex.recv_data), ex.recv_bytes);
      if (rc != MPI_SUCCESS)
        return unavailable("rank " + std::to_string(rank_) + ": receive from rank " +
                           std::to_string(ex.recv_peer) + ": " + mpi_error_text(rc));
    }
    if (ex.send_peer >= 0) {
      const int rc = post(true, ex.send_peer, static_cast<char*>(const_cast<void*>(ex.send_data)),
                          ex.send_bytes);
      if (rc != MPI_SUCCESS)
        return unavailable("rank " + std::to_string(rank_) + ": send to rank " +
                           std::to_string(ex.send_peer) + ": " + mpi_error_text(rc));
    }
  }
  std::string what = "rank " + std::to_string(rank_) + ": ";
  if (ex.recv_peer >= 0) what += "no message from rank " + std::to_string(ex.recv_peer);
  if (ex.send_peer >= 0)
    what += std::string(ex.recv_peer >= 0 ? " or " : "") + "rank " + std::to_string(ex.send_peer) +
            " did not take a message";
  return state_->wait(requests, deadline_after(ex.timeout_s), ex.timeout_s, what);
}

void MpiBootstrap::abort(const std::string& reason) {
  std::fprintf(stderr, "halctl: rank %d of %d (%s): %s; ending the job\n", rank_, size_,
               host_.c_str(), reason.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::_Exit(1);
}

Status MpiBootstrap::barrier(double timeout_s) {
  std::vector<MPI_Request> r(1);
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (const int rc = MPI_Ibarrier(state_->comm, &r[0]); rc != MPI_SUCCESS)
      return unavailable("rank " + std::to_string(rank_) + ": barrier: " + mpi_error_text(rc));
  }
  return state_->wait(r, deadline_after(timeout_s), timeout_s,
                      "rank " + std::to_string(rank_) + ": not every rank reached the barrier");
}

Status MpiBootstrap::broadcast(std::vector<char>& bytes, double timeout_s) {
  const auto deadline = deadline_after(timeout_s);
  const std::string what = "rank " + std::to_string(rank_) + ": no broadcast from rank 0";
  uint64_t n = bytes.size();
  std::vector<MPI_Request> r(1);
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (const int rc = MPI_Ibcast(&n, 1, MPI_UINT64_T, 0, state_->comm, &r[0]); rc != MPI_SUCCESS)
      return unavailable(what + ": " + mpi_error_text(rc));
  }
  HAL_RETURN_IF_ERROR(state_->wait(r, deadline, timeout_s, what));
  if (n > kChunkBytes)
    return invalid_argument(what + ": " + std::to_string(n) + " bytes is too large");
  bytes.resize(n);
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (const int rc = MPI_Ibcast(bytes.data(), int(n), MPI_BYTE, 0, state_->comm, &r[0]);
        rc != MPI_SUCCESS)
      return unavailable(what + ": " + mpi_error_text(rc));
  }
  return state_->wait(r, deadline, timeout_s, what);
}

Result<std::vector<std::string>> MpiBootstrap::all_gather(const std::string& mine,
                                                          double timeout_s) {
  const auto deadline = deadline_after(timeout_s);
  const std::string what =
      "rank " + std::to_string(rank_) + ": not every rank took part in a gather";
  int len = int(mine.size());
  std::vector<int> lens(size_t(size_), 0);
  std::vector<MPI_Request> r(1);
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (const int rc =
            MPI_Iallgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, state_->comm, &r[0]);
        rc != MPI_SUCCESS)
      return unavailable(what + ": " + mpi_error_text(rc));
  }
  HAL_RETURN_IF_ERROR(state_->wait(r, deadline, timeout_s, what));
  std::vector<int> offsets(size_t(size_), 0);
  int total = 0;
  for (int i = 0; i < size_; ++i) {
    offsets[size_t(i)] = total;
    total += lens[size_t(i)];
  }
  std::string all(size_t(total), '\0');
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (const int rc = MPI_Iallgatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(),
                                       offsets.data(), MPI_CHAR, state_->comm, &r[0]);
        rc != MPI_SUCCESS)
      return unavailable(what + ": " + mpi_error_text(rc));
  }
  HAL_RETURN_IF_ERROR(state_->wait(r, deadline, timeout_s, what));
  std::vector<std::string> out;
  for (int i = 0; i < size_; ++i)
    out.push_back(all.substr(size_t(offsets[size_t(i)]), size_t(lens[size_t(i)])));
  return out;
}

}  // namespace hal::mpi
