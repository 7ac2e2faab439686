// backends/cuda/cuda_nccl_api.h: NCCL as the CUDA backend uses it, without a GPU in
// sight: the library loaded at run time, the HAL's dtypes and reductions in NCCL's terms,
// the bytes a collective puts on the links, and rank 0's unique id handed to every rank
// over the host's transport. The parts here need no device, so they are unit-tested on
// machines without one (tests/cuda/cuda_nccl_test.cc); cuda_nccl.cc drives the GPU.
//
// Loading: libnccl.so.2 by its soname first (the driver machine's own NCCL), else the
// toolkit's copy found at build time (/usr/local/cuda/lib64/libnccl.so.2). The plugin never
// links NCCL: a machine without it still loads the plugin; channels on its GPUs then fail
// with UNIMPLEMENTED naming what was tried.
//
// Threading: NcclApi::get() is thread-safe (loaded once); the rest are pure functions.
#pragma once

#include <nccl.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "hal/collective.h"
#include "hal/plugin_abi.h"
#include "hal/status.h"

namespace hal::cuda {

struct NcclApi {
  decltype(&::ncclGetVersion) GetVersion = nullptr;
  decltype(&::ncclGetUniqueId) GetUniqueId = nullptr;
  decltype(&::ncclCommInitRank) CommInitRank = nullptr;
  decltype(&::ncclCommInitAll) CommInitAll = nullptr;
  decltype(&::ncclCommDestroy) CommDestroy = nullptr;
  decltype(&::ncclCommAbort) CommAbort = nullptr;
  decltype(&::ncclCommGetAsyncError) CommGetAsyncError = nullptr;
  decltype(&::ncclGetErrorString) GetErrorString = nullptr;
  decltype(&::ncclAllReduce) AllReduce = nullptr;
  decltype(&::ncclAllGather) AllGather = nullptr;
  decltype(&::ncclReduceScatter) ReduceScatter = nullptr;
  decltype(&::ncclBroadcast) Broadcast = nullptr;
  decltype(&::ncclSend) Send = nullptr;
  decltype(&::ncclRecv) Recv = nullptr;
  decltype(&::ncclGroupStart) GroupStart = nullptr;
  decltype(&::ncclGroupEnd) GroupEnd = nullptr;

  int version = 0;    // NCCL_VERSION_CODE of the loaded library (e.g. 22809)
  std::string path;   // what was loaded
  std::string error;  // why it is not usable (empty when it is)
  bool ok() const { return error.empty(); }

  // The process's NCCL, loaded on first use.
  static const NcclApi& get();
  // Loads from `candidates` in order (for tests); never throws.
  static NcclApi load(const std::vector<std::string>& candidates);
};

// NCCL's type for `t`; nullopt when NCCL has none (fp8 before NCCL 2.24, or a dtype
// collectives do not move).
std::optional<ncclDataType_t> nccl_dtype(DType t, int nccl_version);
ncclRedOp_t nccl_op(Reduction r);
// "ncclInvalidUsage: ..." from a result code.
Status nccl_status(const NcclApi& api, ncclResult_t result, const std::string& what);

// The bytes one member sends over links for `shape` in NCCL's bandwidth-optimal ring
// schedule (what its bus-bandwidth figures assume): S x the bus factor (hal/collective.h).
uint64_t nccl_link_bytes(const CollectiveShape& shape, int32_t rank, int32_t size);

// Rank 0 makes the communicator's unique id (`make_id`, ncclGetUniqueId in the plugin) and
// sends it to every other rank over `transport`; the others receive it. Every rank of the
// job calls this once per channel, in the same order.
Status share_unique_id(const hal_transport& transport, double timeout_s,
                       const std::function<Status(ncclUniqueId*)>& make_id, ncclUniqueId* id);

}  // namespace hal::cuda
