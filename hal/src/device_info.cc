#include "hal/device_info.h"

#include "hal/buffer.h"
#include "hal/command_record.h"

namespace hal {

std::string_view device_kind_name(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kCpu: return "cpu";
    case DeviceKind::kGpu: return "gpu";
    case DeviceKind::kNpu: return "npu";
    case DeviceKind::kOther: break;
  }
  return "other";
}

double DeviceInfo::peak_flops_for(DType t) const {
  auto it = peak_flops.find(t);
  if (it != peak_flops.end()) return it->second;
  it = peak_flops.find(DType::kF32);
  return it != peak_flops.end() ? it->second : 0.0;
}

std::string DeviceInfo::property(std::string_view key) const {
  for (const auto& [k, v] : properties)
    if (k == key) return v;
  return "";
}

LinkInfo DeviceInfo::host_link() const {
  for (const LinkInfo& l : links)
    if (l.peer == "host" || (l.peer.empty() && l.peer_index < 0)) return l;
  LinkInfo none;
  none.peer = "host";
  none.kind = "none";
  return none;
}

std::string_view memory_kind_name(MemoryKind kind) {
  switch (kind) {
    case MemoryKind::kDevice: return "device";
    case MemoryKind::kHostPinned: return "host_pinned";
    case MemoryKind::kHostVisible: return "host_visible";
    case MemoryKind::kVirtual: return "virtual";
  }
  return "unknown";
}

std::string_view command_kind_name(CommandKind kind) {
  switch (kind) {
    case CommandKind::kOp: return "op";
    case CommandKind::kCopyHostToDevice: return "copy_h2d";
    case CommandKind::kCopyDeviceToHost: return "copy_d2h";
    case CommandKind::kCopyDeviceToDevice: return "copy_d2d";
    case CommandKind::kCopyPeer: return "copy_peer";
    case CommandKind::kFill: return "fill";
    case CommandKind::kCollective: return "collective";
    case CommandKind::kExecute: return "execute";
    case CommandKind::kExecuteGroup: return "execute_group";
  }
  return "unknown";
}

std::string_view bound_by_name(BoundBy b) {
  switch (b) {
    case BoundBy::kUnknown: return "unknown";
    case BoundBy::kCompute: return "compute";
    case BoundBy::kMemory: return "memory";
    case BoundBy::kOverhead: return "overhead";
    case BoundBy::kLink: return "link";
  }
  return "unknown";
}

}  // namespace hal
