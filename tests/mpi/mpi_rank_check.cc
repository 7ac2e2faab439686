// hal_mpi_rank_check: run under mpirun (one process per rank). Each rank opens the HAL,
// makes its member of a channel across processes through the MPI bootstrap, and checks
// every collective kind in every dtype at odd sizes against the serial reference (every
// rank's inputs come from seeds, so each rank computes the expected results itself).
// Also on the simulated NPU (--device npu:0), whose records must carry simulated time.
//
// Failure modes for the tests of rank failure (tests/mpi/mpi_failure_test.cc):
//   --stop-rank R   rank R stops itself (SIGSTOP) after the first collectives: the others
//                   must end with a timeout error naming it, not hang;
//   --kill-rank R   rank R kills itself (SIGKILL) there: the launcher ends the rest.
// Exit: 0 when every case matched, 1 otherwise (the first mismatch is printed).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "hal/channel.h"
#include "hal/mpi/mpi_bootstrap.h"
#include "hal/platform.h"
#include "support/collective_reference.h"

namespace {

using hal::Buffer;
using hal::CollectiveKind;
using hal::CollectiveShape;
using hal::DType;
using hal::Reduction;
using hal::test::Bytes;

hal::mpi::MpiBootstrap* g_mpi = nullptr;

// A failed rank ends the whole job (returning would hang in MPI_Finalize waiting for
// ranks that wait for this one).
int fail(int rank, const std::string& what) {
  if (g_mpi) g_mpi->abort(what);
  std::fprintf(stderr, "rank %d: %s\n", rank, what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device_id = "cpu:0";
  int stop_rank = -1, kill_rank = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--device" && i + 1 < argc)
      device_id = argv[++i];
    else if (a == "--stop-rank" && i + 1 < argc)
      stop_rank = std::atoi(argv[++i]);
    else if (a == "--kill-rank" && i + 1 < argc)
      kill_rank = std::atoi(argv[++i]);
    else
      return fail(-1, "unknown argument " + a);
  }
  auto boot = hal::mpi::MpiBootstrap::init();
  if (!boot.ok()) return fail(-1, boot.status().to_string());
  hal::mpi::MpiBootstrap& mpi = **boot;
  g_mpi = &mpi;
  const int rank = mpi.rank(), n = mpi.size();

  hal::PlatformOptions po;
  po.only_plugins = {device_id.rfind("npu", 0) == 0 ? "npu_sim" : "cpu"};
  auto platform = hal::Platform::create(po);
  if (!platform.ok()) return fail(rank, platform.status().to_string());
  auto dev = (*platform)->device(device_id);
  if (!dev.ok()) return fail(rank, dev.status().to_string());
  hal::Device& device = **dev;
  hal::ChannelOptions co;
  co.group = "mpi-check";
  co.transport = &mpi;
  auto channel = hal::Channel::create(device, rank, n, co);
  if (!channel.ok()) return fail(rank, channel.status().to_string());
  auto stream = device.create_stream({.record_commands = true});
  if (!stream.ok()) return fail(rank, stream.status().to_string());

  int cases = 0;
  uint64_t seed = 11;
  const CollectiveKind kinds[] = {CollectiveKind::kAllReduce, CollectiveKind::kAllGather,
                                  CollectiveKind::kReduceScatter, CollectiveKind::kBroadcast,
                                  CollectiveKind::kSend};
  for (CollectiveKind kind : kinds)
    for (DType t : hal::test::collective_dtypes())
      for (uint64_t count : {uint64_t(1), uint64_t(7), uint64_t(4099)}) {
        CollectiveShape s{kind, Reduction::kSum, t, count, n - 1};
        // Every rank's send data, from seeds every rank knows.
        std::vector<Bytes> sends;
        const uint64_t elems = kind == CollectiveKind::kReduceScatter ? count * uint64_t(n) : count;
        for (int r = 0; r < n; ++r)
          sends.push_back(hal::test::random_elements(t, elems, seed + uint64_t(r)));
        seed += uint64_t(n);
        Buffer send = device.allocate(sends[size_t(rank)].size()).value();
        if (!stream->copy_from_host(sends[size_t(rank)].data(), send, 0, send.size()).ok())
          return fail(rank, "upload");
        Bytes want, got;
        hal::Collective c;
        if (kind == CollectiveKind::kSend) {
          // A ring of sends: rank r sends to r+1 and receives from r-1, on two streams so
          // neither waits on the other.
          auto rstream = device.create_stream().value();
          Buffer in = device.allocate(sends[0].size()).value();
          const int to = (rank + 1) % n, from = (rank + n - 1) % n;
          if (!hal::send(*stream, *channel, send, count, t, to).ok() ||
              !hal::recv(rstream, *channel, in, count, t, from).ok())
            return fail(rank, "enqueue send/recv");
          got.resize(in.size());
          if (!rstream.copy_to_host(in, 0, got.data(), got.size()).ok())
            return fail(rank, "download");
          hal::Status st = stream->synchronize();
          if (st.ok()) st = rstream.synchronize();
          if (!st.ok()) return fail(rank, s.describe() + ": " + st.to_string());
          want = sends[size_t(from)];
        } else {
          Buffer recv = device.allocate(std::max<uint64_t>(1, s.recv_bytes(rank, n))).value();
          c.shape = s;
          c.send = &send;
          c.recv = &recv;
          if (hal::Status st = stream->collective(*channel, c); !st.ok())
            return fail(rank, s.describe() + ": " + st.to_string());
          got.resize(s.recv_bytes(rank, n));
          if (!stream->copy_to_host(recv, 0, got.data(), got.size()).ok())
            return fail(rank, "download");
          if (hal::Status st = stream->synchronize(); !st.ok())
            return fail(rank, s.describe() + ": " + st.to_string());
          want = hal::test::expected_recv(s, rank, n, sends);
        }
        if (got != want)
          return fail(rank, s.describe() + " over " + std::to_string(n) +
                                " ranks differs from the reference");
        ++cases;
        for (const hal::CommandRecord& r : stream->take_records()) {
          if (r.command != hal::CommandKind::kCollective) continue;
          if (r.link_class != hal::LinkClass::kNetwork || r.channel_rank != rank ||
              r.channel_size != n)
            return fail(rank, "record of " + s.describe() + " lacks its channel fields");
        }
        if (cases == 3 && rank == stop_rank) raise(SIGSTOP);
        if (cases == 3 && rank == kill_rank) raise(SIGKILL);
      }
  std::printf("rank %d of %d on %s (%s): %d collectives matched the serial reference\n", rank, n,
              mpi.host_name().c_str(), device.id().c_str(), cases);
  return 0;
}
