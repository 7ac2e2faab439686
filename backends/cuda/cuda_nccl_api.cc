#include "cuda_nccl_api.h"

#include <dlfcn.h>

#include <cmath>
#include <mutex>
#include <type_traits>

namespace hal::cuda {

NcclApi NcclApi::load(const std::vector<std::string>& candidates) {
  NcclApi api;
  std::string tried;
  void* handle = nullptr;
  for (const std::string& c : candidates) {
    if (c.empty()) continue;
    handle = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) {
      api.path = c;
      break;
    }
    const char* e = ::dlerror();
    tried += (tried.empty() ? "" : "; ") + c + ": " + (e ? e : "not found");
  }
  if (!handle) {
    api.error = "NCCL could not be loaded (" + tried + ")";
    return api;
  }
  bool missing = false;
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(handle, name));
    if (!fn) {
      missing = true;
      api.error += (api.error.empty() ? "" : ", ") + std::string(name);
    }
  };
  sym(api.GetVersion, "ncclGetVersion");
  sym(api.GetUniqueId, "ncclGetUniqueId");
  sym(api.CommInitRank, "ncclCommInitRank");
  sym(api.CommInitAll, "ncclCommInitAll");
  sym(api.CommDestroy, "ncclCommDestroy");
  sym(api.CommAbort, "ncclCommAbort");
  sym(api.CommGetAsyncError, "ncclCommGetAsyncError");
  sym(api.GetErrorString, "ncclGetErrorString");
  sym(api.AllReduce, "ncclAllReduce");
  sym(api.AllGather, "ncclAllGather");
  sym(api.ReduceScatter, "ncclReduceScatter");
  sym(api.Broadcast, "ncclBroadcast");
  sym(api.Send, "ncclSend");
  sym(api.Recv, "ncclRecv");
  sym(api.GroupStart, "ncclGroupStart");
  sym(api.GroupEnd, "ncclGroupEnd");
  if (missing) {
    api.error = api.path + " lacks " + api.error;
    return api;  // the handle stays open: the library is process-wide anyway
  }
  if (api.GetVersion(&api.version) != ncclSuccess) api.error = api.path + ": ncclGetVersion failed";
  return api;
}

const NcclApi& NcclApi::get() {
  static const NcclApi* api = new NcclApi(load({"libnccl.so.2",
#ifdef HAL_NCCL_LIBRARY
                                                HAL_NCCL_LIBRARY
#endif
  }));  // never destroyed: used until exit
  return *api;
}

std::optional<ncclDataType_t> nccl_dtype(DType t, int nccl_version) {
  switch (t) {
    case DType::kF32:
      return ncclFloat32;
    case DType::kF16:
      return ncclFloat16;
    case DType::kBF16:
      return ncclBfloat16;
    case DType::kI32:
      return ncclInt32;
    case DType::kI64:
      return ncclInt64;
    case DType::kI8:
      return ncclInt8;
    case DType::kU8:
      return ncclUint8;
    case DType::kFP8E4M3:
      if (nccl_version >= 22400) return ncclFloat8e4m3;  // fp8 arrived in NCCL 2.24
      return std::nullopt;
    case DType::kFP8E5M2:
      if (nccl_version >= 22400) return ncclFloat8e5m2;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

ncclRedOp_t nccl_op(Reduction r) {
  switch (r) {
    case Reduction::kSum:
      return ncclSum;
    case Reduction::kProd:
      return ncclProd;
    case Reduction::kMin:
      return ncclMin;  // NCCL numbers max before min
    case Reduction::kMax:
      return ncclMax;
  }
  return ncclSum;
}

Status nccl_status(const NcclApi& api, ncclResult_t result, const std::string& what) {
  if (result == ncclSuccess || result == ncclInProgress) return ok_status();
  std::string text = api.GetErrorString ? api.GetErrorString(result) : "";
  const std::string message = what + ": NCCL error " + std::to_string(int(result)) +
                              (text.empty() ? "" : " (" + text + ")");
  switch (result) {
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      return invalid_argument(message);
    case ncclSystemError:
    case ncclRemoteError:
      return unavailable(message);
    case ncclUnhandledCudaError:
      return Status(StatusCode::kDeviceLost, message);
    default:
      return internal_error(message);
  }
}

uint64_t nccl_link_bytes(const CollectiveShape& shape, int32_t rank, int32_t size) {
  if (size <= 1) return 0;
  const uint64_t e = dtype_size(shape.dtype);
  double s = double(shape.count * e);
  if (shape.kind == CollectiveKind::kAllGather || shape.kind == CollectiveKind::kReduceScatter)
    s *= size;
  if (shape.kind == CollectiveKind::kRecv) return 0;
  if (shape.kind == CollectiveKind::kBroadcast && size > 1) {
    // A pipelined chain: every member but the last forwards S once.
    const int32_t last = (shape.peer + size - 1) % size;
    return rank == last ? 0 : uint64_t(s);
  }
  return uint64_t(std::llround(s * bus_bandwidth_factor(shape.kind, size)));
}

Status share_unique_id(const hal_transport& t, double timeout_s,
                       const std::function<Status(ncclUniqueId*)>& make_id, ncclUniqueId* id) {
  char message[512] = {0};
  auto exchange = [&](int32_t send_peer, int32_t recv_peer) -> Status {
    hal_transport_exchange_args a{};
    a.struct_size = sizeof a;
    a.send_peer = send_peer;
    a.send_data = id;
    a.send_bytes = send_peer >= 0 ? sizeof(ncclUniqueId) : 0;
    a.recv_peer = recv_peer;
    a.recv_data = id;
    a.recv_bytes = recv_peer >= 0 ? sizeof(ncclUniqueId) : 0;
    a.tag = 0x6e63636c;  // "nccl"
    a.timeout_s = timeout_s;
    const hal_status_code c = t.exchange(t.context, &a, message, sizeof message);
    if (c == HAL_STATUS_OK) return ok_status();
    return Status(
        StatusCode(int32_t(c) > 0 && int32_t(c) <= int32_t(StatusCode::kAborted) ? int32_t(c) : 8),
        std::string("sharing the NCCL unique id: ") + message);
  };
  if (t.rank == 0) {
    HAL_RETURN_IF_ERROR(make_id(id));
    for (int32_t r = 1; r < t.size; ++r) HAL_RETURN_IF_ERROR(exchange(r, -1));
    return ok_status();
  }
  return exchange(-1, 0);
}

}  // namespace hal::cuda
