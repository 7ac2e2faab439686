// Timing ops on a simulated device (forecast.h: simulated_op_timer).
#include <map>
#include <memory>

#include "hal/device.h"
#include "hal/runtime/forecast.h"

namespace hal::runtime {

bool is_simulated_device(const DeviceInfo& info) {
  const std::string s = info.property("simulated");
  return s == "true" || s == "1" || s == "yes" || !info.property("timing_only").empty();
}

OpTimer simulated_op_timer(Device& device) {
  // One recording stream per timer, made at first use; ops run on virtual buffers; each
  // distinct op is timed once.
  auto stream = std::make_shared<std::shared_ptr<Stream>>();
  auto cache = std::make_shared<std::map<std::string, std::optional<OpTiming>>>();
  Device* d = &device;
  return [d, stream, cache](const OpSpec& spec) -> Result<std::optional<OpTiming>> {
    if (!d->supports(spec)) return std::optional<OpTiming>();
    const std::string key = op_spec_key(spec);
    if (auto it = cache->find(key); it != cache->end()) return it->second;
    if (!*stream) {
      StreamOptions so;
      so.record_commands = true;
      HAL_ASSIGN_OR_RETURN(Stream s, d->create_stream(so));
      *stream = std::make_shared<Stream>(std::move(s));
    }
    std::vector<Buffer> buffers;
    buffers.reserve(size_t(spec.num_inputs) + 1);
    auto buffer_for = [&](const TensorDesc& t) -> Result<const Buffer*> {
      HAL_ASSIGN_OR_RETURN(
          Buffer b, d->allocate(std::max<uint64_t>(t.extent_bytes(), 256), MemoryKind::kVirtual));
      buffers.push_back(std::move(b));
      return &buffers.back();
    };
    OpDescriptor op;
    op.kind = spec.kind;
    op.attrs = spec.attrs;
    op.num_inputs = spec.num_inputs;
    for (int i = 0; i < spec.num_inputs; ++i) {
      HAL_ASSIGN_OR_RETURN(const Buffer* b, buffer_for(spec.inputs[i]));
      op.inputs[i] = TensorRef{b, 0, spec.inputs[i]};
    }
    HAL_ASSIGN_OR_RETURN(const Buffer* out, buffer_for(spec.output));
    op.output = TensorRef{out, 0, spec.output};
    Stream& s = **stream;
    HAL_RETURN_IF_ERROR(s.dispatch(op));
    HAL_RETURN_IF_ERROR(s.synchronize());
    for (const CommandRecord& r : s.take_records()) {
      if (r.command != CommandKind::kOp) continue;
      OpTiming t;
      t.seconds = r.duration_s();
      t.bound = std::string(bound_by_name(r.bound));
      t.bytes = double(r.bytes_read + r.bytes_written);
      (*cache)[key] = t;
      return std::optional<OpTiming>(t);
    }
    (*cache)[key] = std::nullopt;
    return std::optional<OpTiming>();
  };
}

}  // namespace hal::runtime
