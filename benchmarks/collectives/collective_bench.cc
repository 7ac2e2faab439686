// hal_collective_benchmark: algorithm and bus bandwidth of every collective against
// message size, in the style of nccl-tests (its own table, not Google Benchmark: the
// figures are per size and per collective, as nccl-tests prints them).
//
//   hal_collective_benchmark --ranks 4                       CPU ranks in this process
//                                                            (cpu:0, shared memory): measured
//   hal_collective_benchmark --npu atom-max --ranks 4        simulated NPUs (npu:0..3 of the
//                                                            preset list): predicted, from
//                                                            the simulator's records
//   mpirun -np 2 hal_collective_benchmark --mpi              CPU ranks in separate processes
//                                                            (the MPI bootstrap): measured
//
// Columns (nccl-tests' definitions): size = bytes of one rank's data S (all_gather and
// reduce_scatter: the whole n*count), time = mean per collective, algbw = S / time,
// busbw = algbw x the collective's bus factor (all_reduce 2(n-1)/n, all_gather and
// reduce_scatter (n-1)/n, broadcast and send/recv 1): the bandwidth each link must carry.
// The last column is the same run's baseline, so a figure from a noisy shared machine
// still compares something:
//   in-process CPU:  memcpy of S on one thread (the floor of moving S through memory) as
//                    bandwidth, and busbw / that;
//   MPI:             the same collective by MPI itself (MPI_Allreduce, MPI_Allgather,
//                    MPI_Reduce_scatter_block, MPI_Bcast, MPI_Sendrecv) and our time / MPI's;
//   NPU (predicted): busbw / the slowest link's bandwidth the collective crosses.
//
// The measured modes print the machine's load average before and after their runs (and
// keep it in --json): on a shared machine the figures mean little without it.
//
// Options: --sizes MIN:MAX (bytes, powers of 4 between; default 8:64M, NPU 1K:1G),
//          --dtype f32|bf16|..., --iters N (measured runs per size, default adaptive),
//          --only all_reduce,all_gather,... , --json FILE (every row).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <chrono>

#include "hal/channel.h"
#include "hal/platform.h"
#if HAL_BENCH_WITH_MPI
#include <mpi.h>

#include "hal/mpi/mpi_bootstrap.h"
#endif

namespace {

using hal::Buffer;
using hal::Channel;
using hal::CollectiveKind;
using hal::CollectiveShape;
using hal::DType;
using hal::Reduction;
using hal::Stream;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Options {
  int32_t ranks = 2;
  std::string npu_preset;  // empty: CPU
  bool mpi = false;
  uint64_t min_bytes = 0, max_bytes = 0;
  DType dtype = DType::kF32;
  int iters = 0;
  std::vector<CollectiveKind> kinds = {CollectiveKind::kAllReduce, CollectiveKind::kAllGather,
                                       CollectiveKind::kReduceScatter, CollectiveKind::kBroadcast,
                                       CollectiveKind::kSend};
  std::string json;
};

uint64_t parse_size(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end && (*end == 'K' || *end == 'k')) v *= 1024;
  if (end && (*end == 'M' || *end == 'm')) v *= 1024 * 1024;
  if (end && (*end == 'G' || *end == 'g')) v *= 1024.0 * 1024 * 1024;
  return uint64_t(v);
}

std::string size_text(uint64_t b) {
  char buf[32];
  if (b >= (uint64_t(1) << 30) && b % (uint64_t(1) << 30) == 0)
    std::snprintf(buf, sizeof buf, "%lluG", (unsigned long long)(b >> 30));
  else if (b >= (1u << 20) && b % (1u << 20) == 0)
    std::snprintf(buf, sizeof buf, "%lluM", (unsigned long long)(b >> 20));
  else if (b >= 1024 && b % 1024 == 0)
    std::snprintf(buf, sizeof buf, "%lluK", (unsigned long long)(b >> 10));
  else
    std::snprintf(buf, sizeof buf, "%llu", (unsigned long long)b);
  return buf;
}

// One rank's data S for a row, and the count the collective takes.
struct Row {
  Row(CollectiveKind k, uint64_t b, uint64_t c) : kind(k), bytes(b), count(c) {}
  CollectiveKind kind;
  uint64_t bytes;  // S as nccl-tests defines it
  uint64_t count;  // elements passed to the collective
  double seconds = 0;
  double baseline = 0;  // see the top of the file
  std::string algorithm, link;
};

uint64_t count_for(CollectiveKind k, uint64_t bytes, int32_t n, DType t) {
  const uint64_t e = hal::dtype_size(t);
  if (k == CollectiveKind::kAllGather || k == CollectiveKind::kReduceScatter)
    return std::max<uint64_t>(1, bytes / e / uint64_t(n));
  return std::max<uint64_t>(1, bytes / e);
}

double algbw(const Row& r) { return r.seconds > 0 ? double(r.bytes) / r.seconds / 1e9 : 0; }
double busbw(const Row& r, int32_t n) { return algbw(r) * hal::bus_bandwidth_factor(r.kind, n); }

// Member r's buffers for one collective of `rows`.
struct Member {
  Buffer send, recv;
};

// Enqueues one collective (send/recv: a ring, rank r sends to r+1 on `s`, receives from r-1
// on `s2`) on member r.
hal::Status enqueue(CollectiveKind kind, Stream& s, Stream& s2, const Channel& ch, Member& m,
                    uint64_t count, DType t) {
  const int32_t n = ch.size(), r = ch.rank();
  switch (kind) {
    case CollectiveKind::kAllReduce:
      return hal::all_reduce(s, ch, m.send, m.recv, count, t);
    case CollectiveKind::kAllGather:
      return hal::all_gather(s, ch, m.send, m.recv, count, t);
    case CollectiveKind::kReduceScatter:
      return hal::reduce_scatter(s, ch, m.send, m.recv, count, t);
    case CollectiveKind::kBroadcast:
      return hal::broadcast(s, ch, m.send, m.recv, count, t, 0);
    default: {
      HAL_RETURN_IF_ERROR(hal::send(s, ch, m.send, count, t, (r + 1) % n));
      return hal::recv(s2, ch, m.recv, count, t, (r + n - 1) % n);
    }
  }
}

std::vector<uint64_t> sizes(const Options& o) {
  std::vector<uint64_t> out;
  for (uint64_t b = o.min_bytes; b <= o.max_bytes; b *= 4) out.push_back(b);
  return out;
}

void print_header(const std::string& title) {
  std::printf("# %s\n", title.c_str());
  std::printf("# %-15s %8s %12s %6s %11s %11s %11s  %-7s %-16s %s\n", "collective", "size", "count",
              "type", "time(us)", "algbw(GB/s)", "busbw(GB/s)", "algo", "link", "baseline");
}

void print_row(const Row& r, int32_t n, DType t, const std::string& baseline) {
  std::printf("  %-15s %8s %12llu %6s %11.2f %11.3f %11.3f  %-7s %-16s %s\n",
              std::string(hal::collective_kind_name(r.kind)).c_str(), size_text(r.bytes).c_str(),
              (unsigned long long)r.count, std::string(hal::dtype_name(t)).c_str(), r.seconds * 1e6,
              algbw(r), busbw(r, n), r.algorithm.c_str(), r.link.c_str(), baseline.c_str());
  std::fflush(stdout);
}

// How busy the machine was (/proc/loadavg's 1-, 5- and 15-minute figures, via getloadavg):
// measured rows mean little on a shared machine without it, so the measured modes print it
// before and after their runs and keep it in --json. -1 where the system does not say.
struct Load {
  double avg[3] = {-1, -1, -1};
  static Load now() {
    Load l;
    if (getloadavg(l.avg, 3) != 3) l = Load{};
    return l;
  }
  std::string text() const {
    char b[160];
    std::snprintf(b, sizeof b, "load average %.2f %.2f %.2f (1, 5, 15 min) on %u cores", avg[0],
                  avg[1], avg[2], std::thread::hardware_concurrency());
    return b;
  }
};

void print_load(const char* when, const Load& l) {
  std::printf("# machine %s: %s\n", when, l.text().c_str());
  std::fflush(stdout);
}

void write_json(const Options& o, const std::string& mode, const std::vector<Row>& rows, int32_t n,
                const Load* before = nullptr, const Load* after = nullptr) {
  if (o.json.empty()) return;
  std::ofstream f(o.json);
  f << "{\"mode\": \"" << mode << "\", \"ranks\": " << n << ", \"dtype\": \""
    << hal::dtype_name(o.dtype) << "\", ";
  if (before && after)
    f << "\"cores\": " << std::thread::hardware_concurrency() << ", \"load_before\": ["
      << before->avg[0] << ", " << before->avg[1] << ", " << before->avg[2]
      << "], \"load_after\": [" << after->avg[0] << ", " << after->avg[1] << ", " << after->avg[2]
      << "], ";
  f << "\"rows\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    f << "  {\"collective\": \"" << hal::collective_kind_name(r.kind)
      << "\", \"bytes\": " << r.bytes << ", \"count\": " << r.count
      << ", \"seconds\": " << r.seconds << ", \"algbw_gb_s\": " << algbw(r)
      << ", \"busbw_gb_s\": " << busbw(r, n) << ", \"baseline\": " << r.baseline
      << ", \"algorithm\": \"" << r.algorithm << "\", \"link\": \"" << r.link << "\"}"
      << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  f << "]}\n";
}

// The slowest link of the ring npu:0 -> npu:1 -> ... -> npu:0: a device's link to its
// neighbour, or its host link where they have none (host-staged between cards).
double slowest_ring_link(const std::vector<hal::Device*>& devices) {
  double slowest = 1e300;
  for (size_t r = 0; r < devices.size(); ++r) {
    const hal::DeviceInfo& info = devices[r]->info();
    const std::string next = devices[(r + 1) % devices.size()]->id();
    double bw = info.host_link().bandwidth_bytes_per_s;
    for (const hal::LinkInfo& l : info.links)
      if (l.peer == next) bw = l.bandwidth_bytes_per_s;
    slowest = std::min(slowest, bw);
  }
  return slowest;
}

// Members on the devices of `platform` (CPU: cpu:0 n times; NPU: npu:0..n-1).
int run_in_process(const Options& o) {
  hal::PlatformOptions po;
  const bool npu = !o.npu_preset.empty();
  po.only_plugins = {npu ? "npu_sim" : "cpu"};
  if (npu) po.plugin_options["npu_sim"] = {{"devices", o.npu_preset}, {"timing_only", "true"}};
  auto platform = hal::Platform::create(po);
  if (!platform.ok()) return std::fprintf(stderr, "%s\n", platform.status().to_string().c_str()), 1;
  std::vector<hal::Device*> devices;
  for (int32_t r = 0; r < o.ranks; ++r) {
    auto d = (*platform)->device(npu ? "npu:" + std::to_string(r) : "cpu:0");
    if (!d.ok()) return std::fprintf(stderr, "%s\n", d.status().to_string().c_str()), 1;
    devices.push_back(*d);
  }
  auto channels = Channel::create_group(devices, {.group = "bench"});
  if (!channels.ok()) return std::fprintf(stderr, "%s\n", channels.status().to_string().c_str()), 1;
  std::vector<Stream> streams, streams2;
  for (hal::Device* d : devices) {
    streams.push_back(d->create_stream({.record_commands = npu}).value());
    streams2.push_back(d->create_stream({.record_commands = npu}).value());
  }
  const int32_t n = o.ranks;
  const std::string where =
      npu ? o.npu_preset + " npu:0.." + std::to_string(n - 1) + " (predicted, simulated time)"
          : "cpu:0 x " + std::to_string(n) + " ranks in one process (measured)";
  std::vector<Row> rows;
  const Load before = Load::now();
  if (!npu) print_load("before", before);
  for (CollectiveKind kind : o.kinds) {
    print_header(
        std::string(hal::collective_kind_name(kind)) + ", " + std::to_string(n) + " ranks, " +
        where +
        (npu ? "; baseline = busbw / slowest link" : "; baseline = memcpy of S on one thread"));
    for (uint64_t bytes : sizes(o)) {
      Row row{kind, bytes, count_for(kind, bytes, n, o.dtype)};
      const CollectiveShape shape{kind, Reduction::kSum, o.dtype, row.count, 0};
      std::vector<Member> m;
      m.reserve(size_t(n));
      const hal::MemoryKind mk = npu ? hal::MemoryKind::kVirtual : hal::MemoryKind::kDevice;
      for (int32_t r = 0; r < n; ++r) {
        const CollectiveShape as = kind == CollectiveKind::kSend
                                       ? CollectiveShape{CollectiveKind::kAllReduce,
                                                         Reduction::kSum, o.dtype, row.count, 0}
                                       : shape;
        m.push_back(
            {devices[size_t(r)]->allocate(std::max<uint64_t>(1, as.send_bytes(0, n)), mk).value(),
             devices[size_t(r)]->allocate(std::max<uint64_t>(1, as.recv_bytes(r, n)), mk).value()});
        if (!npu) {
          (void)streams[size_t(r)].fill(m.back().send, 0, m.back().send.size(), 0, 1);
          (void)streams[size_t(r)].fill(m.back().recv, 0, m.back().recv.size(), 0, 1);
        }
      }
      auto run = [&](int iters) -> hal::Status {
        for (int i = 0; i < iters; ++i)
          for (int32_t r = 0; r < n; ++r)
            HAL_RETURN_IF_ERROR(enqueue(kind, streams[size_t(r)], streams2[size_t(r)],
                                        (*channels)[size_t(r)], m[size_t(r)], row.count, o.dtype));
        for (int32_t r = 0; r < n; ++r) {
          HAL_RETURN_IF_ERROR(streams[size_t(r)].synchronize());
          HAL_RETURN_IF_ERROR(streams2[size_t(r)].synchronize());
        }
        return hal::ok_status();
      };
      if (hal::Status s = run(npu ? 1 : 2); !s.ok())  // warm up (NPU: one simulated run)
        return std::fprintf(stderr, "%s\n", s.to_string().c_str()), 1;
      if (npu) {
        for (int32_t r = 0; r < n; ++r)
          (void)streams[size_t(r)].take_records(), (void)streams2[size_t(r)].take_records();
        if (hal::Status s = run(1); !s.ok())
          return std::fprintf(stderr, "%s\n", s.to_string().c_str()), 1;
        double worst = 0;
        std::vector<std::string> links;  // every member's link class, e.g. peer+host-staged
        for (int32_t r = 0; r < n; ++r)
          for (Stream* s : {&streams[size_t(r)], &streams2[size_t(r)]})
            for (const hal::CommandRecord& rec : s->take_records()) {
              if (rec.command != hal::CommandKind::kCollective) continue;
              worst = std::max(worst, rec.duration_s());
              row.algorithm = std::string(hal::collective_algorithm_name(rec.algorithm));
              const std::string link(hal::link_class_name(rec.link_class));
              if (std::find(links.begin(), links.end(), link) == links.end()) links.push_back(link);
            }
        row.link.clear();
        for (const std::string& l : links) row.link += (row.link.empty() ? "" : "+") + l;
        const double link_bw = slowest_ring_link(devices);
        row.seconds = worst;
        row.baseline = busbw(row, n) * 1e9 / link_bw;
        char b[64];
        std::snprintf(b, sizeof b, "%.2f of %.0f GB/s", row.baseline, link_bw / 1e9);
        print_row(row, n, o.dtype, b);
      } else {
        int iters = o.iters;
        if (iters <= 0) {  // about 0.2 s per size, at least 3 runs
          const auto t0 = Clock::now();
          (void)run(1);
          iters = int(std::clamp(0.2 / std::max(seconds_since(t0), 1e-6), 3.0, 2000.0));
        }
        const auto t0 = Clock::now();
        if (hal::Status s = run(iters); !s.ok())
          return std::fprintf(stderr, "%s\n", s.to_string().c_str()), 1;
        row.seconds = seconds_since(t0) / iters;
        // Baseline: one thread's memcpy of S.
        // Source and destination both page-aligned in one allocation: two separate
        // vectors sit 16 bytes apart modulo 4 KiB, where this machine's memcpy (rep movsb
        // on AMD EPYC) runs 30 times slower than it does otherwise.
        const uint64_t span = (bytes + 4095) / 4096 * 4096;
        std::vector<char> buffer(2 * span + 4096);
        char* const src = reinterpret_cast<char*>(
            (reinterpret_cast<uintptr_t>(buffer.data()) + 4095) & ~uintptr_t(4095));
        char* const dst = src + span;
        std::memset(src, 1, bytes);
        std::memset(dst, 0, bytes);
        // Best of several rounds: on a shared machine a round may lose its core.
        const int copies = int(std::clamp(0.01 / std::max(row.seconds, 1e-7), 3.0, 100000.0));
        double best = 1e300;
        for (int round = 0; round < 5; ++round) {
          const auto c0 = Clock::now();
          for (int i = 0; i < copies; ++i) {
            std::memcpy(dst, src, bytes);
            src[size_t(i) % bytes] = char(dst[0] + 1);
          }
          best = std::min(best, seconds_since(c0));
        }
        const double memcpy_bw = double(bytes) * copies / best / 1e9;
        row.baseline = busbw(row, n) / memcpy_bw;
        row.algorithm = "direct";
        row.link = "shared-memory";
        char text[64];
        std::snprintf(text, sizeof text, "%.2f of memcpy %.1f GB/s", row.baseline, memcpy_bw);
        print_row(row, n, o.dtype, text);
      }
      rows.push_back(row);
    }
  }
  if (npu) {
    write_json(o, "npu-predicted", rows, n);  // simulated time: the machine's load is moot
  } else {
    const Load after = Load::now();
    print_load("after", after);
    write_json(o, "cpu-in-process", rows, n, &before, &after);
  }
  return 0;
}

#if HAL_BENCH_WITH_MPI
MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::kF32:
      return MPI_FLOAT;
    case DType::kI32:
      return MPI_INT32_T;
    case DType::kI64:
      return MPI_INT64_T;
    case DType::kI8:
      return MPI_INT8_T;
    case DType::kU8:
      return MPI_UINT8_T;
    default:
      return MPI_DATATYPE_NULL;  // 16-bit and 8-bit floats: MPI has no type
  }
}

// The same collective by MPI itself, on host vectors: the peer a user would pick.
double mpi_reference_seconds(CollectiveKind kind, uint64_t count, DType t, int iters, int rank,
                             int n) {
  const MPI_Datatype dt = mpi_type(t);
  const uint64_t e = hal::dtype_size(t);
  const uint64_t send_elems = kind == CollectiveKind::kReduceScatter ? count * uint64_t(n) : count;
  const uint64_t recv_elems = kind == CollectiveKind::kAllGather ? count * uint64_t(n) : count;
  std::vector<char> send(send_elems * e, 1), recv(recv_elems * e, 0);
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = MPI_Wtime();
  for (int i = 0; i < iters; ++i) {
    switch (kind) {
      case CollectiveKind::kAllReduce:
        MPI_Allreduce(send.data(), recv.data(), int(count), dt, MPI_SUM, MPI_COMM_WORLD);
        break;
      case CollectiveKind::kAllGather:
        MPI_Allgather(send.data(), int(count), dt, recv.data(), int(count), dt, MPI_COMM_WORLD);
        break;
      case CollectiveKind::kReduceScatter:
        MPI_Reduce_scatter_block(send.data(), recv.data(), int(count), dt, MPI_SUM, MPI_COMM_WORLD);
        break;
      case CollectiveKind::kBroadcast:
        MPI_Bcast(send.data(), int(count), dt, 0, MPI_COMM_WORLD);
        break;
      default:
        MPI_Sendrecv(send.data(), int(count), dt, (rank + 1) % n, 7, recv.data(), int(count), dt,
                     (rank + n - 1) % n, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        break;
    }
  }
  double mine = (MPI_Wtime() - t0) / iters, worst = 0;
  MPI_Allreduce(&mine, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

int run_mpi(const Options& o) {
  auto boot = hal::mpi::MpiBootstrap::init();
  if (!boot.ok()) return std::fprintf(stderr, "%s\n", boot.status().to_string().c_str()), 1;
  hal::mpi::MpiBootstrap& mpi = **boot;
  const int rank = mpi.rank(), n = mpi.size();
  if (mpi_type(o.dtype) == MPI_DATATYPE_NULL)
    mpi.abort("--mpi compares against MPI, which has no " + std::string(hal::dtype_name(o.dtype)));
  hal::PlatformOptions po;
  po.only_plugins = {"cpu"};
  auto platform = hal::Platform::create(po);
  if (!platform.ok()) mpi.abort(platform.status().to_string());
  hal::Device* cpu = *(*platform)->device("cpu:0");
  auto ch = Channel::create(*cpu, rank, n, {.group = "bench", .transport = &mpi});
  if (!ch.ok()) mpi.abort(ch.status().to_string());
  Stream s = cpu->create_stream().value(), s2 = cpu->create_stream().value();
  std::vector<Row> rows;
  const Load before = Load::now();
  if (rank == 0) print_load("before", before);
  for (CollectiveKind kind : o.kinds) {
    if (rank == 0)
      print_header(std::string(hal::collective_kind_name(kind)) + ", " + std::to_string(n) +
                   " ranks over MPI (" + mpi.library_version() +
                   "), cpu:0 each (measured); baseline = our time / MPI's own");
    for (uint64_t bytes : sizes(o)) {
      Row row{kind, bytes, count_for(kind, bytes, n, o.dtype)};
      const CollectiveShape shape{kind == CollectiveKind::kSend ? CollectiveKind::kAllReduce : kind,
                                  Reduction::kSum, o.dtype, row.count, 0};
      Member m{cpu->allocate(std::max<uint64_t>(1, shape.send_bytes(0, n))).value(),
               cpu->allocate(std::max<uint64_t>(1, shape.recv_bytes(rank, n))).value()};
      (void)s.fill(m.send, 0, m.send.size(), 0, 1);
      auto run = [&](int iters) -> hal::Status {
        for (int i = 0; i < iters; ++i)
          HAL_RETURN_IF_ERROR(enqueue(kind, s, s2, *ch, m, row.count, o.dtype));
        HAL_RETURN_IF_ERROR(s.synchronize());
        return s2.synchronize();
      };
      if (hal::Status st = run(2); !st.ok()) mpi.abort(st.to_string());
      int iters = o.iters;
      if (iters <= 0) {
        const auto t0 = Clock::now();
        (void)run(1);
        double one = seconds_since(t0), worst = 0;
        MPI_Allreduce(&one, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        iters = int(std::clamp(0.2 / std::max(worst, 1e-6), 3.0, 2000.0));
      }
      if (hal::Status st = mpi.barrier(60); !st.ok()) mpi.abort(st.to_string());
      const auto t0 = Clock::now();
      if (hal::Status st = run(iters); !st.ok()) mpi.abort(st.to_string());
      double mine = seconds_since(t0) / iters, worst = 0;
      MPI_Allreduce(&mine, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      row.seconds = worst;
      const double ref = mpi_reference_seconds(kind, row.count, o.dtype, iters, rank, n);
      row.baseline = row.seconds / ref;
      row.algorithm = kind == CollectiveKind::kAllGather ? "ring" : "direct";
      row.link = "network";
      if (rank == 0) {
        char text[64];
        std::snprintf(text, sizeof text, "%.2fx MPI's %.1f us", row.baseline, ref * 1e6);
        print_row(row, n, o.dtype, text);
      }
      rows.push_back(row);
    }
  }
  if (rank == 0) {
    const Load after = Load::now();
    print_load("after", after);
    write_json(o, "mpi", rows, n, &before, &after);
  }
  return 0;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--ranks") {
      o.ranks = std::atoi(next().c_str());
    } else if (a == "--npu") {
      o.npu_preset = next();
    } else if (a == "--mpi") {
      o.mpi = true;
    } else if (a == "--sizes") {
      const std::string v = next();
      const size_t colon = v.find(':');
      o.min_bytes = parse_size(v.substr(0, colon));
      o.max_bytes = parse_size(colon == std::string::npos ? v : v.substr(colon + 1));
    } else if (a == "--dtype") {
      auto t = hal::parse_dtype(next());
      if (!t || !hal::is_collective_dtype(*t)) return std::fprintf(stderr, "unknown dtype\n"), 2;
      o.dtype = *t;
    } else if (a == "--iters") {
      o.iters = std::atoi(next().c_str());
    } else if (a == "--only") {
      o.kinds.clear();
      std::string v = next() + ",";
      for (size_t p = 0, q; (q = v.find(',', p)) != std::string::npos; p = q + 1) {
        const std::string k = v.substr(p, q - p);
        bool found = false;
        for (int c = 1; c < hal::kCollectiveKindCount; ++c)
          if (k == hal::collective_kind_name(CollectiveKind(c)) || (k == "sendrecv" && c == 5)) {
            o.kinds.push_back(CollectiveKind(c));
            found = true;
          }
        if (!found) return std::fprintf(stderr, "unknown collective '%s'\n", k.c_str()), 2;
      }
    } else if (a == "--json") {
      o.json = next();
    } else {
      std::fprintf(stderr,
                   "usage: %s [--ranks N] [--npu PRESETS | --mpi] [--sizes MIN:MAX] [--dtype T] "
                   "[--iters N] [--only KINDS] [--json FILE]\n",
                   argv[0]);
      return 2;
    }
  }
  if (o.ranks < 1 || o.ranks > 64) return std::fprintf(stderr, "--ranks must be 1..64\n"), 2;
  if (o.min_bytes == 0) o.min_bytes = o.npu_preset.empty() ? 8 : 1024;
  if (o.max_bytes == 0)
    o.max_bytes = o.npu_preset.empty() ? (uint64_t(64) << 20) : (uint64_t(1) << 30);
  if (o.max_bytes < o.min_bytes)
    return std::fprintf(stderr, "--sizes MIN:MAX needs MIN <= MAX\n"), 2;
  if (o.mpi) {
#if HAL_BENCH_WITH_MPI
    return run_mpi(o);
#else
    std::fprintf(stderr, "this build has no MPI bootstrap (HAL_ENABLE_MPI, libopenmpi-dev)\n");
    return 2;
#endif
  }
  return run_in_process(o);
}
