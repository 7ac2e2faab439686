#include "collective_step.h"

namespace hal::runtime {

namespace {

const char* channel_name(int32_t channel) {
  return channel == kTensorParallelChannel ? "tensor-parallel"
         : channel == kPipelineChannel     ? "pipeline"
                                           : "unknown";
}

}  // namespace

Status check_collective_channel(const Node& node, const std::vector<const Channel*>& channels,
                                const Device* device) {
  const std::string what = std::string(collective_kind_name(node.collective)) + " over the " +
                           channel_name(node.channel) + " channel";
  if (node.channel < 0 || size_t(node.channel) >= channels.size() ||
      !channels[size_t(node.channel)])
    return failed_precondition("a parallel rank's " + what +
                               " has no channel (ExecutorOptions::channels)");
  const Channel& c = *channels[size_t(node.channel)];
  if (&c.device() != device)
    return invalid_argument(what + ": the channel's member is on " + c.device().id() +
                            ", the node on " + device->id());
  if ((node.collective == CollectiveKind::kSend || node.collective == CollectiveKind::kRecv ||
       node.collective == CollectiveKind::kBroadcast) &&
      (node.peer < 0 || node.peer >= c.size()))
    return invalid_argument(what + ": rank " + std::to_string(node.peer) +
                            " is outside the channel's " + std::to_string(c.size()));
  return ok_status();
}

Status issue_collective(Stream& stream, const Channel& channel, const Node& node,
                        const TensorRef& src, const TensorRef& dst, uint64_t tag) {
  Collective c;
  c.shape.kind = node.collective;
  c.shape.reduction = Reduction::kSum;
  c.shape.peer = node.peer;
  const TensorRef& data = node.collective == CollectiveKind::kSend ? src : dst;
  c.shape.dtype = data.desc.dtype;
  c.shape.count = uint64_t(data.desc.shape.numel());
  switch (node.collective) {
    case CollectiveKind::kAllReduce:
    case CollectiveKind::kBroadcast:
      c.send = src.buffer;
      c.send_offset = src.offset_bytes;
      c.recv = dst.buffer;
      c.recv_offset = dst.offset_bytes;
      break;
    case CollectiveKind::kSend:
      c.send = src.buffer;
      c.send_offset = src.offset_bytes;
      break;
    case CollectiveKind::kRecv:
      c.recv = dst.buffer;
      c.recv_offset = dst.offset_bytes;
      break;
    default:
      return invalid_argument("collective " + std::string(collective_kind_name(node.collective)) +
                              " is not a graph node");
  }
  return stream.collective(channel, c, tag);
}

void describe_collective(const Node& node, std::span<const StepRecord* const> records,
                         TimelineEntry& entry) {
  entry.kind = TimelineEntry::Kind::kCollective;
  entry.collective = node.collective;
  for (const StepRecord* r : records) {
    if (r->record.command != CommandKind::kCollective) continue;
    entry.link_bytes_sent += r->record.link_bytes;
    entry.link_bytes_received += r->record.link_bytes_received;
    entry.link = r->record.link_class;
    entry.peer = r->record.peer_rank;
  }
}

}  // namespace hal::runtime
