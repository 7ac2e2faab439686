// The host side of executables (hal/executable.h): partition, compile, info, serialize,
// load and execute through ABI 1.2's entries, with the checks every call makes before
// it reaches a plugin.
#include "hal/executable.h"

#include <string>

#include "c_convert.h"
#include "hal/device.h"
#include "hal/stream.h"
#include "loaded_plugin.h"

namespace hal {

namespace {

bool has_executables(const detail::LoadedPlugin& p) {
  return HAL_PLUGIN_HAS(p, device_partition) && HAL_PLUGIN_HAS(p, executable_compile) &&
         HAL_PLUGIN_HAS(p, executable_destroy) && HAL_PLUGIN_HAS(p, executable_get_info) &&
         HAL_PLUGIN_HAS(p, stream_execute);
}

bool has_serialization(const detail::LoadedPlugin& p) {
  return has_executables(p) && HAL_PLUGIN_HAS(p, executable_serialize) &&
         HAL_PLUGIN_HAS(p, executable_deserialize) && HAL_PLUGIN_HAS(p, device_get_executable_key);
}

std::string abi_of(const detail::LoadedPlugin& p) {
  return std::to_string(p.api->abi_major) + "." + std::to_string(p.api->abi_minor);
}

struct DeclineSink {
  Partition* partition;
};

void record_decline(void* user, uint32_t node, const char* reason) {
  auto* sink = static_cast<DeclineSink*>(user);
  if (node < sink->partition->reasons.size())
    sink->partition->reasons[node] = reason && *reason ? reason : "declined";
}

}  // namespace

// ---- Executable ---------------------------------------------------------------------

Executable::~Executable() { reset(); }

Executable::Executable(Executable&& o) noexcept
    : device_(o.device_), handle_(o.handle_), view_(std::move(o.view_)) {
  o.handle_ = nullptr;
}

Executable& Executable::operator=(Executable&& o) noexcept {
  if (this != &o) {
    reset();
    device_ = o.device_;
    handle_ = o.handle_;
    view_ = std::move(o.view_);
    o.handle_ = nullptr;
  }
  return *this;
}

void Executable::reset() {
  if (handle_) device_->plugin().api->executable_destroy(handle_);
  handle_ = nullptr;
}

Result<ExecutableInfo> Executable::info(std::span<const int64_t> symbols) const {
  if (!handle_) return failed_precondition("info of an empty executable");
  if (!symbols.empty()) HAL_RETURN_IF_ERROR(view_->check_symbols(symbols));
  const auto& p = device_->plugin();
  hal_executable_info ci{};
  ci.struct_size = sizeof(ci);
  ci.symbol_values = symbols.empty() ? nullptr : symbols.data();
  ci.num_symbol_values = symbols.size();
  ci.group_size = sizeof(hal_fused_group_info);
  HAL_RETURN_IF_ERROR(
      p.take_error(p.api->executable_get_info(handle_, &ci), device_->id() + ": executable info"));
  std::vector<hal_fused_group_info> groups(ci.num_groups);
  if (ci.num_groups > 0) {
    for (auto& g : groups) g.struct_size = sizeof(g);
    ci.groups = groups.data();
    ci.groups_capacity = groups.size();
    HAL_RETURN_IF_ERROR(p.take_error(p.api->executable_get_info(handle_, &ci),
                                     device_->id() + ": executable info"));
  }
  ExecutableInfo out;
  out.predicted_seconds = ci.predicted_seconds;
  out.scratch_bytes = ci.scratch_bytes;
  out.dram_bytes_read = ci.dram_bytes_read;
  out.dram_bytes_written = ci.dram_bytes_written;
  out.sram_bytes = ci.sram_bytes;
  out.flops = ci.flops;
  for (size_t i = 0; i < groups.size() && i < ci.num_groups; ++i) {
    const hal_fused_group_info& g = groups[i];
    FusedGroupInfo f;
    f.name = g.name ? g.name : "";
    const int32_t op = int32_t(g.main_op);
    f.main_op = op > 0 && op < kOpKindCount ? OpKind(op) : OpKind::kInvalid;
    f.main_node = g.main_node;
    if (g.nodes)
      for (size_t k = 0; k < g.num_nodes; ++k) f.nodes.push_back(g.nodes[k]);
    f.predicted_seconds = g.predicted_seconds;
    f.flops = g.flops;
    f.dram_bytes_read = g.dram_bytes_read;
    f.dram_bytes_written = g.dram_bytes_written;
    f.sram_bytes = g.sram_bytes;
    if (HAL_ABI_HAS_FIELD(hal_fused_group_info, bound, g.struct_size)) {
      const int32_t b = int32_t(g.bound);
      f.bound = b >= 0 && b <= int32_t(BoundBy::kLink) ? BoundBy(b) : BoundBy::kUnknown;
    }
    out.groups.push_back(std::move(f));
  }
  return out;
}

Result<std::vector<uint8_t>> Executable::serialize() const {
  if (!handle_) return failed_precondition("serialize of an empty executable");
  const auto& p = device_->plugin();
  if (!has_serialization(p))
    return unimplemented(device_->id() + ": plugin " + p.name + " cannot serialize executables");
  size_t size = 0;
  HAL_RETURN_IF_ERROR(p.take_error(p.api->executable_serialize(handle_, nullptr, 0, &size),
                                   device_->id() + ": serialize executable"));
  std::vector<uint8_t> blob(size);
  size_t written = 0;
  HAL_RETURN_IF_ERROR(
      p.take_error(p.api->executable_serialize(handle_, blob.data(), blob.size(), &written),
                   device_->id() + ": serialize executable"));
  if (written != size)
    return internal_error(device_->id() + ": serialize reported " + std::to_string(size) +
                          " bytes, then " + std::to_string(written));
  return blob;
}

// ---- Device -----------------------------------------------------------------------

bool Device::compiles() const { return has_executables(*plugin_); }

Result<Partition> Device::partition(const GraphView& view) const {
  HAL_RETURN_IF_ERROR(view.validate().with_context(id() + ": partition"));
  Partition out;
  out.node_unit.assign(view.nodes.size(), -1);
  out.reasons.assign(view.nodes.size(), "");
  if (!compiles()) {
    const std::string why =
        "the plugin " + plugin_->name + " (ABI " + abi_of(*plugin_) + ") has no compiler: op by op";
    for (auto& r : out.reasons) r = why;
    return out;
  }
  detail::CGraphView c(view);
  DeclineSink sink{&out};
  hal_partition_args a{};
  a.struct_size = sizeof(a);
  a.device = handle_;
  a.graph = &c.desc;
  a.node_unit = out.node_unit.data();
  a.decline = &record_decline;
  a.decline_user_data = &sink;
  HAL_RETURN_IF_ERROR(
      plugin_->take_error(plugin_->api->device_partition(&a), id() + ": partition"));
  out.units = int32_t(a.num_units);
  for (size_t n = 0; n < out.node_unit.size(); ++n) {
    const int32_t u = out.node_unit[n];
    if (u < -1 || u >= out.units)
      return internal_error(id() + ": partition put node " + std::to_string(n) + " in unit " +
                            std::to_string(u) + " of " + std::to_string(out.units));
    if (u >= 0) out.reasons[n].clear();
    if (u < 0 && out.reasons[n].empty()) out.reasons[n] = "declined (no reason given)";
  }
  return out;
}

Result<Executable> Device::compile(const GraphView& view, const CompileOptions& options) {
  if (!compiles())
    return unimplemented(id() + ": the plugin " + plugin_->name + " (ABI " + abi_of(*plugin_) +
                         ") has no compiler");
  HAL_RETURN_IF_ERROR(view.validate().with_context(id() + ": compile"));
  auto shared = std::make_shared<const GraphView>(view);
  detail::CGraphView c(*shared);
  std::vector<hal_option> opts;
  for (const auto& [k, v] : options) opts.push_back({k.c_str(), v.c_str()});
  hal_executable_compile_args a{};
  a.struct_size = sizeof(a);
  a.device = handle_;
  a.graph = &c.desc;
  a.options = opts.data();
  a.num_options = opts.size();
  HAL_RETURN_IF_ERROR(
      plugin_->take_error(plugin_->api->executable_compile(&a), id() + ": compile"));
  if (!a.executable) return internal_error(id() + ": compile returned no executable");
  return Executable(this, a.executable, std::move(shared));
}

Result<std::string> Device::executable_key() const {
  if (!has_serialization(*plugin_))
    return unimplemented(id() + ": plugin " + plugin_->name + " cannot serialize executables");
  size_t length = 0;
  HAL_RETURN_IF_ERROR(plugin_->take_error(
      plugin_->api->device_get_executable_key(handle_, nullptr, 0, &length), id() + ": key"));
  std::string key(length + 1, '\0');
  HAL_RETURN_IF_ERROR(plugin_->take_error(
      plugin_->api->device_get_executable_key(handle_, key.data(), key.size(), &length),
      id() + ": key"));
  key.resize(std::min(length, key.size() - 1));
  return key;
}

Result<Executable> Device::load_executable(std::span<const uint8_t> blob, const GraphView& view) {
  if (!has_serialization(*plugin_))
    return unimplemented(id() + ": plugin " + plugin_->name + " cannot load executables");
  HAL_RETURN_IF_ERROR(view.validate().with_context(id() + ": load executable"));
  hal_executable_deserialize_args a{};
  a.struct_size = sizeof(a);
  a.device = handle_;
  a.data = blob.data();
  a.size = blob.size();
  HAL_RETURN_IF_ERROR(
      plugin_->take_error(plugin_->api->executable_deserialize(&a), id() + ": load executable"));
  if (!a.executable) return internal_error(id() + ": load returned no executable");
  return Executable(this, a.executable, std::make_shared<const GraphView>(view));
}

// ---- Stream -----------------------------------------------------------------------

Status Stream::execute(const Executable& executable, const ExecuteArgs& args, uint64_t tag) {
  if (!handle_) return failed_precondition("execute on an empty stream");
  if (!executable.valid())
    return invalid_argument(device_->id() + ": execute of an empty executable");
  if (&executable.device() != device_)
    return invalid_argument(device_->id() + ": execute of an executable of " +
                            executable.device().id());
  const GraphView& view = executable.view();
  HAL_RETURN_IF_ERROR(view.check_symbols(args.symbols).with_context(device_->id() + ": execute"));
  std::vector<hal_binding> bindings;
  bindings.reserve(args.bindings.size());
  for (const ExecutableBinding& b : args.bindings) {
    if (b.value < 0 || size_t(b.value) >= view.values.size() || !view.is_bound(b.value))
      return invalid_argument(device_->id() + ": execute binds value " + std::to_string(b.value) +
                              ", which is not a bound value of the executable's graph");
    if (!b.buffer || !b.buffer->valid() || &b.buffer->device() != device_)
      return invalid_argument(device_->id() + ": execute binds value '" +
                              view.values[size_t(b.value)].name +
                              "' to a buffer that is empty or of another device");
    bindings.push_back({b.value, b.buffer->handle(), b.offset_bytes});
  }
  if (args.scratch && (!args.scratch->valid() || &args.scratch->device() != device_))
    return invalid_argument(device_->id() + ": execute with a scratch buffer of another device");
  hal_execute_args a{};
  a.struct_size = sizeof(a);
  a.stream = handle_;
  a.executable = executable.handle();
  a.bindings = bindings.data();
  a.num_bindings = bindings.size();
  a.binding_size = sizeof(hal_binding);
  a.scratch = args.scratch ? args.scratch->handle() : nullptr;
  a.scratch_offset = args.scratch_offset;
  a.symbol_values = args.symbols.data();
  a.num_symbol_values = args.symbols.size();
  a.tag = tag;
  const auto& p = device_->plugin();
  return p.take_error(p.api->stream_execute(&a), device_->id() + ": execute");
}

}  // namespace hal
