// hal/collective.h: the collective operations a Channel (hal/channel.h) runs as stream
// commands, their exact semantics, and the checks both sides of the plugin ABI apply.
//
// Operations (n = channel size, r = this member's rank, `count` in elements of `dtype`):
// | kind            | send holds            | recv holds            | result in recv | | all_reduce
// | count                 | count                 | reduce over ranks of send         | |
// all_gather      | count                 | n * count             | block i = rank i's send | |
// reduce_scatter  | n * count             | count                 | reduce over ranks of send block
// r | | broadcast       | count (root only)     | count                 | the root's send | | send
// | count                 | -                     | (to `peer`'s matching recv)       | | recv | -
// | count                 | the send of `peer`                | In place is allowed where NCCL
// allows it: all_reduce and broadcast with send == recv (same buffer and offset), all_gather with
// send == recv block r, reduce_scatter with recv == send block r. Other overlaps of send and recv
// are refused.
//
// Reductions (all_reduce, reduce_scatter) are defined element by element as the serial
// fold over ranks 0, 1, ..., n-1: floats (f32, f16, bf16, fp8) accumulate in f32 and
// are rounded once to `dtype` at the end (so every member gets the same bits, and a
// 16-bit all-reduce loses no precision to intermediate roundings); integers wrap modulo
// 2^bits (two's complement), as NCCL's integer sums do. min/max propagate NaN. The
// in-tree implementations (shared memory, the MPI transport, the simulated NPU) produce
// exactly this; NCCL reduces in its own order and rounds per step (the CUDA backend's
// README states the tolerance).
//
// Matching: the k-th collective (all but send/recv) a member runs on a channel meets the
// k-th of every other member; kinds, dtype, count, reduction and root must agree, or
// every member fails with INVALID_ARGUMENT naming the difference. Sends and receives
// pair per (sender, receiver) in order. A send completes when its receiver has the data
// (it may wait for it): pair them so that they cannot wait on each other.
//
// Threading: value types and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hal/dtype.h"
#include "hal/status.h"

namespace hal {

// Same values as the C ABI's hal_collective_kind.
enum class CollectiveKind : int32_t {
  kInvalid = 0,
  kAllReduce = 1,
  kAllGather = 2,
  kReduceScatter = 3,
  kBroadcast = 4,
  kSend = 5,
  kRecv = 6,
};
inline constexpr int kCollectiveKindCount = 7;               // one past the largest value
std::string_view collective_kind_name(CollectiveKind kind);  // "all_reduce", "send", ...

// Same values as the C ABI's hal_reduction.
enum class Reduction : int32_t { kSum = 0, kProd = 1, kMin = 2, kMax = 3 };
inline constexpr int kReductionCount = 4;
std::string_view reduction_name(Reduction r);  // "sum", "prod", "min", "max"

// How a collective's bytes travelled (same values as hal_link_class).
enum class LinkClass : int32_t {
  kNone = 0,          // nothing crossed a link (a channel of one member)
  kSharedMemory = 1,  // members of one process reading each other's memory
  kPeer = 2,          // a device-to-device link (PCIe peer-to-peer through a switch, NVLink)
  kDieToDie = 3,      // chiplets of one package (UCIe)
  kHostStaged = 4,    // through host memory, over both devices' host links
  kNetwork = 5,       // between processes, through the host's transport (MPI: shared
                      // memory on one host, TCP or RDMA between hosts)
};
inline constexpr int kLinkClassCount = 6;
std::string_view link_class_name(LinkClass c);  // "none", "shared-memory", "peer", ...

// The algorithm a collective ran with (same values as hal_collective_algorithm).
enum class CollectiveAlgorithm : int32_t { kDefault = 0, kRing = 1, kTree = 2, kDirect = 3 };
std::string_view collective_algorithm_name(CollectiveAlgorithm a);  // "ring", ...

// Whether collectives move elements of `t` (the plain dtypes; block-quantized formats
// are not elements a reduction can add).
bool is_collective_dtype(DType t);

// The shape of one collective, without buffers: what the checks and the byte counts need.
struct CollectiveShape {
  CollectiveKind kind = CollectiveKind::kInvalid;
  Reduction reduction = Reduction::kSum;
  DType dtype = DType::kF32;
  uint64_t count = 0;
  int32_t peer = 0;  // broadcast: the root; send/recv: the other rank

  // Bytes this member's send/recv buffer must hold for this collective (0 when the side
  // is unused: recv of a send, send of a recv or of a non-root broadcast).
  uint64_t send_bytes(int32_t rank, int32_t size) const;
  uint64_t recv_bytes(int32_t rank, int32_t size) const;
  bool reduces() const {
    return kind == CollectiveKind::kAllReduce || kind == CollectiveKind::kReduceScatter;
  }
  // "all_reduce(sum) of 4096 bf16", "send of 12 f32 to rank 1".
  std::string describe() const;
};

// INVALID_ARGUMENT naming what is wrong: unknown kind/reduction, a dtype collectives do
// not move, a peer or root outside [0, size) (or a send/recv to itself), sizes that
// overflow.
Status validate_collective(const CollectiveShape& shape, int32_t rank, int32_t size);

// Where the send and recv ranges of one member may overlap (the in-place cases in the
// table above). Offsets are in bytes within one buffer; `same_buffer` says whether send
// and recv are the same buffer.
Status check_collective_overlap(const CollectiveShape& shape, int32_t rank, int32_t size,
                                bool same_buffer, uint64_t send_offset, uint64_t recv_offset);

// The reduction of `count` elements: out[i] = inputs[0][i] (op) inputs[1][i] ... in that
// order, with the numerics stated at the top of this file. `inputs` may include `out`
// (in place). Precondition: is_collective_dtype(dtype), num_inputs >= 1.
void reduce_elements(DType dtype, Reduction op, const void* const* inputs, int32_t num_inputs,
                     uint64_t count, void* out);

// Bytes each member sends over links in the usual bandwidth-optimal algorithm (NCCL's
// "bus bandwidth" factor times the data size): all_reduce 2(n-1)/n, all_gather and
// reduce_scatter (n-1)/n of the full n*count, broadcast and send 1. Used to state bus
// bandwidth in benchmarks and reports.
double bus_bandwidth_factor(CollectiveKind kind, int32_t size);

// Element operations one member performs to reduce (all_reduce: (n-1)/n of count;
// reduce_scatter: (n-1) * count; 0 for collectives that do not reduce).
double reduction_flops(const CollectiveShape& shape, int32_t size);

}  // namespace hal
