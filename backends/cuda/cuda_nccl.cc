// Channels of the CUDA backend on NCCL (cuda_nccl_api.h loads it). Members in one process
// are initialised together (ncclCommInitAll) once the last of the group has been created;
// members in separate processes share rank 0's unique id over the host's transport and
// initialise with ncclCommInitRank. Collectives are enqueued on the HAL stream's CUDA
// stream like any command and recorded with CUDA events; their link bytes are NCCL's ring
// accounting (nccl_link_bytes), since NCCL picks ring or tree itself.
//
// Not yet run on a GPU (this repository's machines have none): the logic that needs no
// device is unit-tested (tests/cuda/cuda_nccl_test.cc); the rest runs in gpu_check.sh.
// Limits: one member per GPU (NCCL's rule); members on virtual buffers exchange nothing;
// a hung peer is not detected by a host-side timeout (NCCL's own watchdog applies).
#include <map>
#include <mutex>

#include "cuda_internal.h"
#include "cuda_nccl_api.h"

namespace hal::cuda {

namespace {

// The in-process members of one NCCL communicator, initialised together.
struct NcclGroup {
  std::mutex mu;
  int32_t size = 0;
  std::vector<int> ordinals;  // -1: not created yet
  std::vector<ncclComm_t> comms;
  bool initialised = false;
  Status error;
};

std::shared_ptr<NcclGroup> join_group(const std::string& name, int32_t size) {
  static std::mutex mu;
  static auto* groups = new std::map<std::string, std::weak_ptr<NcclGroup>>();  // used at exit
  std::lock_guard<std::mutex> lock(mu);
  auto g = (*groups)[name].lock();
  if (!g) {
    g = std::make_shared<NcclGroup>();
    g->size = size;
    g->ordinals.assign(size_t(size), -1);
    g->comms.assign(size_t(size), nullptr);
    (*groups)[name] = g;
  }
  return g;
}

class CudaChannel : public plugin::ChannelImpl {
 public:
  CudaChannel(CudaDevice* device, plugin::ChannelConfig config, std::shared_ptr<NcclGroup> group)
      : ChannelImpl(device, std::move(config)), group_(std::move(group)) {}
  ~CudaChannel() override {
    const NcclApi& api = NcclApi::get();
    if (own_comm_) api.CommDestroy(own_comm_);
    if (group_) {
      std::lock_guard<std::mutex> lock(group_->mu);
      if (group_->comms[size_t(rank())]) api.CommDestroy(group_->comms[size_t(rank())]);
      group_->comms[size_t(rank())] = nullptr;
      group_->ordinals[size_t(rank())] = -1;
    }
  }

  // Across processes: rank 0's unique id, then ncclCommInitRank (every process of the
  // job creates its member at about the same time, so the blocking init meets).
  Status init_across_processes() {
    const NcclApi& api = NcclApi::get();
    ncclUniqueId id{};
    HAL_RETURN_IF_ERROR(share_unique_id(
        *config().transport, config().timeout_s,
        [&](ncclUniqueId* out) {
          return nccl_status(api, api.GetUniqueId(out), "ncclGetUniqueId");
        },
        &id));
    DeviceScope scope(static_cast<CudaDevice*>(device())->ordinal());
    return nccl_status(api, api.CommInitRank(&own_comm_, size(), id, rank()), "ncclCommInitRank");
  }

  // In one process: registers this member; the last one initialises the communicator.
  Status register_in_group() {
    const int ordinal = static_cast<CudaDevice*>(device())->ordinal();
    std::lock_guard<std::mutex> lock(group_->mu);
    if (group_->size != size())
      return invalid_argument("channel group '" + config().group + "' has " +
                              std::to_string(group_->size) + " members; rank " +
                              std::to_string(rank()) + " asked for " + std::to_string(size()));
    if (group_->ordinals[size_t(rank())] >= 0)
      return invalid_argument("channel group '" + config().group + "' already has a rank " +
                              std::to_string(rank()));
    for (int o : group_->ordinals)
      if (o == ordinal)
        return invalid_argument("NCCL needs one member per GPU: cuda:" + std::to_string(ordinal) +
                                " is already in channel group '" + config().group + "'");
    group_->ordinals[size_t(rank())] = ordinal;
    for (int o : group_->ordinals)
      if (o < 0) return ok_status();
    const NcclApi& api = NcclApi::get();
    group_->error =
        nccl_status(api, api.CommInitAll(group_->comms.data(), size(), group_->ordinals.data()),
                    "ncclCommInitAll");
    group_->initialised = group_->error.ok();
    return group_->error;
  }

  Result<ncclComm_t> comm() {
    if (own_comm_) return own_comm_;
    std::lock_guard<std::mutex> lock(group_->mu);
    if (!group_->error.ok()) return group_->error;
    if (!group_->initialised) {
      int32_t present = 0;
      for (int o : group_->ordinals) present += o >= 0 ? 1 : 0;
      return failed_precondition("channel group '" + config().group + "' has " +
                                 std::to_string(present) + " of its " + std::to_string(size()) +
                                 " members: create every member before its first collective");
    }
    return group_->comms[size_t(rank())];
  }

  void abort(const std::string& reason) override {
    const NcclApi& api = NcclApi::get();
    if (auto c = comm(); c.ok() && *c) api.CommAbort(*c);
    if (config().transport && config().transport->abort)
      config().transport->abort(config().transport->context, reason.c_str());
  }

 private:
  std::shared_ptr<NcclGroup> group_;  // null across processes
  ncclComm_t own_comm_ = nullptr;     // across processes
};

}  // namespace

Result<std::unique_ptr<plugin::ChannelImpl>> CudaDevice::create_channel(
    const plugin::ChannelConfig& config) {
  const NcclApi& api = NcclApi::get();
  if (!api.ok()) return unimplemented("collectives on CUDA need NCCL: " + api.error);
  if (config.transport) {
    auto c = std::make_unique<CudaChannel>(this, config, nullptr);
    HAL_RETURN_IF_ERROR(c->init_across_processes());
    return std::unique_ptr<plugin::ChannelImpl>(std::move(c));
  }
  auto c = std::make_unique<CudaChannel>(this, config, join_group(config.group, config.size));
  HAL_RETURN_IF_ERROR(c->register_in_group());
  return std::unique_ptr<plugin::ChannelImpl>(std::move(c));
}

Status CudaStream::collective(const plugin::CollectiveCall& c) {
  const NcclApi& api = NcclApi::get();
  auto* channel = static_cast<CudaChannel*>(c.channel);
  std::lock_guard<std::mutex> lock(mu_);
  if (device_->lost()) return device_->lost_status();
  const std::optional<ncclDataType_t> dt = nccl_dtype(c.shape.dtype, api.version);
  if (!dt)
    return unimplemented(c.shape.describe() + ": NCCL " + std::to_string(api.version) + " has no " +
                         std::string(dtype_name(c.shape.dtype)) + " type");
  auto comm = channel->comm();
  if (!comm.ok()) return comm.status();
  DeviceScope scope(device_->ordinal());
  refresh_fallible();
  if (known_failed()) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    return ok_status();
  }
  const int32_t rank = channel->rank(), size = channel->size();
  auto* send = static_cast<CudaBuffer*>(c.send);
  auto* recv = static_cast<CudaBuffer*>(c.recv);
  PendingRecord rec;
  rec.record.collective = c.shape.kind;
  rec.record.channel_rank = rank;
  rec.record.channel_size = size;
  rec.record.link_bytes = nccl_link_bytes(c.shape, rank, size);
  rec.record.link_bytes_received = c.shape.kind == CollectiveKind::kRecv
                                       ? c.shape.count * dtype_size(c.shape.dtype)
                                   : c.shape.kind == CollectiveKind::kSend ? 0
                                                                           : rec.record.link_bytes;
  rec.record.peer_rank = c.shape.kind == CollectiveKind::kSend ? c.shape.peer : -1;
  rec.record.link_class = channel->config().transport ? LinkClass::kNetwork : LinkClass::kPeer;
  rec.record.bytes_read = c.shape.send_bytes(rank, size) + rec.record.link_bytes;
  rec.record.bytes_written = c.shape.recv_bytes(rank, size) + rec.record.link_bytes_received;
  rec.record.bound = BoundBy::kLink;
  HAL_RETURN_IF_ERROR(begin_command(&rec, CommandKind::kCollective, c.tag));
  const bool virt = (send && send->is_virtual()) || (recv && recv->is_virtual());
  if (!virt) {
    const void* s = send ? send->at(c.send_offset) : nullptr;
    void* r = recv ? recv->at(c.recv_offset) : nullptr;
    const size_t n = size_t(c.shape.count);
    const ncclRedOp_t op = nccl_op(c.shape.reduction);
    ncclResult_t res = ncclSuccess;
    switch (c.shape.kind) {
      case CollectiveKind::kAllReduce:
        res = api.AllReduce(s, r, n, *dt, op, *comm, stream_);
        break;
      case CollectiveKind::kAllGather:
        res = api.AllGather(s, r, n, *dt, *comm, stream_);
        break;
      case CollectiveKind::kReduceScatter:
        res = api.ReduceScatter(s, r, n, *dt, op, *comm, stream_);
        break;
      case CollectiveKind::kBroadcast:
        res = api.Broadcast(s ? s : r, r, n, *dt, c.shape.peer, *comm, stream_);
        break;
      case CollectiveKind::kSend:
        res = api.Send(s, n, *dt, c.shape.peer, *comm, stream_);
        break;
      case CollectiveKind::kRecv:
        res = api.Recv(r, n, *dt, c.shape.peer, *comm, stream_);
        break;
      default:
        return invalid_argument("unknown collective");
    }
    HAL_RETURN_IF_ERROR(
        nccl_status(api, res, device_->info().id_prefix + " " + c.shape.describe()));
  }
  end_command(&rec);
  return ok_status();
}

}  // namespace hal::cuda
