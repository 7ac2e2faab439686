// Test fixture plugins for the ABI policy and the loader (tests/plugins) and for the CTS's
// own tests: one source, built once per fixture with HAL_FIXTURE_<VARIANT> defined (see
// CMakeLists.txt). Each library is named like a real plugin (libhal_plugin_<name>.so)
// but lives in the build's tests/plugins/fixtures directory, never in the plugin
// directory, so only tests that ask for them load them.
//
// The device every loadable fixture presents ("fx" prefix) computes on the host with the
// reference kernels, accepts every memory kind, and keeps real asynchronous streams
// (hal::plugin::HostQueueStream), so it is a conforming device: the old- and new-minor
// fixtures pass the CTS. The variants then break one thing each:
//   OLD_MINOR          presents ABI 1.0: the 1.0-sized table, no device_get_telemetry
//   MINOR_1_1          presents ABI 1.1: telemetry, but no error details or extensions
//   NEW_MINOR          presents the host's minor + 1: a longer table whose extra entry
//                      aborts if called
//   WRONG_MAJOR        says ABI 2.0
//   MISSING_REQUIRED   leaves the required stream_fill entry NULL
//   SHORT_TABLE        a table shorter than ABI 1.0's
//   NO_ENTRY_POINT     exports no hal_plugin_get_api
//   NULL_TABLE         the entry point returns NULL
//   CREATE_FAILS       plugin_create returns an error
//   CREATE_THROWS      the factory throws (the adapter must turn it into an error)
//   BAD_PREFIX         its device reports the id prefix "Bad-Prefix"
//   BAD_PEER           its device lists a link to device index 3 of 1
//   NAN_BANDWIDTH      its device reports a memory bandwidth that is not a number
//   COUNT_LIES         says 2 devices, but device_get(1) returns no device
//   SAME_HANDLE        says 2 devices and returns the same handle for both
//   HUGE_COUNT         says 5000 devices (more than the host accepts from one plugin)
//   CREATE_NO_PLUGIN   plugin_create reports success but returns no plugin
//   UNDEFINED_SYMBOL   needs a symbol nothing defines, so dlopen() fails
//   PARTIAL_CHANNELS   sets channel_create but not stream_collective (ABI 1.2's channel
//                      entries come as a set)
//   BUGGY              a device with bugs chosen by the plugin option "bug" (wrong_add,
//                      leak, write_outside, ignore_wait, drop_record, lost_event): the
//                      CTS must catch each one
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "hal/plugin/host_queue_stream.h"
#include "hal/plugin/memory_accountant.h"
#include "hal/plugin_adapter.h"
#include "hal/reference_ops.h"

#ifndef HAL_FIXTURE_NAME
#error "define HAL_FIXTURE_NAME and one HAL_FIXTURE_<VARIANT>"
#endif

#if defined(HAL_FIXTURE_UNDEFINED_SYMBOL)
// Declared, defined nowhere: the dynamic loader refuses the library.
extern "C" int hal_fixture_symbol_that_does_not_exist(void);
extern "C" HAL_PLUGIN_EXPORT int hal_fixture_use_missing_symbol(void) {
  return hal_fixture_symbol_that_does_not_exist();
}
#endif

namespace hal::fixture {
namespace {

using plugin::BufferImpl;
using plugin::CopyCall;
using plugin::DeviceImpl;
using plugin::EventImpl;
using plugin::FillCall;
using plugin::HostEvent;
using plugin::HostQueueStream;
using plugin::MemoryAccountant;
using plugin::OpCall;
using plugin::steady_clock_ns;
using plugin::StreamImpl;

// The bugs the BUGGY fixture can have (option "bug").
enum class Bug { kNone, kWrongAdd, kLeak, kWriteOutside, kIgnoreWait, kDropRecord, kLostEvent };

class FxBuffer : public BufferImpl {
 public:
  FxBuffer(DeviceImpl* d, uint64_t size, MemoryKind kind, void* data, MemoryAccountant* memory,
           bool leak)
      : BufferImpl(d, size, kind), data_(static_cast<char*>(data)), memory_(memory), leak_(leak) {}
  ~FxBuffer() override {
    std::free(data_);
    if (!leak_) memory_->release(size());
  }
  Result<void*> map() override {
    if (!data_) return failed_precondition("a virtual buffer has no storage");
    return static_cast<void*>(data_);
  }
  char* data() { return data_; }

 private:
  char* data_;
  MemoryAccountant* memory_;
  bool leak_;
};

char* at(BufferImpl* b, uint64_t offset) { return static_cast<FxBuffer*>(b)->data() + offset; }
bool is_virtual(const BufferImpl* b) { return b && b->kind() == MemoryKind::kVirtual; }

// The kit's host-queue stream, with the BUGGY fixture's stream bugs.
class FxStream : public HostQueueStream {
 public:
  FxStream(uint32_t flags, Bug bug) : HostQueueStream(flags), bug_(bug) {}
  ~FxStream() override { drain(); }

  Status copy(const CopyCall& c) override {
    enqueue([this, c]() -> Status {
      const uint64_t t0 = steady_clock_ns();
      if (c.size_bytes > 0 && !is_virtual(c.src_buffer) && !is_virtual(c.dst_buffer)) {
        const void* src = c.src_host ? c.src_host : at(c.src_buffer, c.src_offset);
        void* dst = c.dst_host ? c.dst_host : at(c.dst_buffer, c.dst_offset);
        std::memmove(dst, src, c.size_bytes);
      }
      log(c.tag, c.direction, OpKind::kInvalid, t0, 0);
      return ok_status();
    });
    return ok_status();
  }
  Status fill(const FillCall& f) override {
    enqueue([this, f]() -> Status {
      const uint64_t t0 = steady_clock_ns();
      if (!is_virtual(f.buffer)) plugin::write_fill_pattern(at(f.buffer, f.offset), f);
      log(f.tag, CommandKind::kFill, OpKind::kInvalid, t0, 0);
      return ok_status();
    });
    return ok_status();
  }
  Status dispatch(const OpCall& op, uint64_t tag) override {
    enqueue([this, op, tag]() -> Status {
      const uint64_t t0 = steady_clock_ns();
      const OpSpec spec = op.spec();
      bool virt = is_virtual(op.output.buffer);
      for (int i = 0; i < op.num_inputs; ++i) virt |= is_virtual(op.inputs[i].buffer);
      if (!virt) {
        const void* in[kMaxOpInputs] = {};
        for (int i = 0; i < op.num_inputs; ++i)
          in[i] = at(op.inputs[i].buffer, op.inputs[i].offset_bytes);
        char* out = at(op.output.buffer, op.output.offset_bytes);
        if (Status s = reference::execute(spec, in, out); !s.ok()) return s.with_command_tag(tag);
        if (bug_ == Bug::kWrongAdd && op.kind == OpKind::kAdd && spec.output.numel() > 0) {
          const int64_t first[kMaxRank] = {};
          reference::store(out, spec.output, first, reference::load(out, spec.output, first) + 0.5);
        }
        if (bug_ == Bug::kWriteOutside && op.output.offset_bytes > 0) out[-1] = 0x7f;
      }
      log(tag, CommandKind::kOp, op.kind, t0, analytic_cost(spec).flops);
      return ok_status();
    });
    return ok_status();
  }
  Status record_event(EventImpl& e) override {
    if (bug_ != Bug::kLostEvent) return HostQueueStream::record_event(e);
    static_cast<HostEvent&>(e).begin_record();  // a new generation that never completes
    return ok_status();
  }
  Status wait_event(EventImpl& e) override {
    if (bug_ == Bug::kIgnoreWait) return ok_status();
    return HostQueueStream::wait_event(e);
  }

 private:
  void log(uint64_t tag, CommandKind kind, OpKind op, uint64_t t0, double flops) {
    if (bug_ == Bug::kDropRecord && kind == CommandKind::kFill) return;
    CommandRecord r;
    r.tag = tag;
    r.command = kind;
    r.op = op;
    r.start_ns = t0;
    r.end_ns = steady_clock_ns();
    r.flops = flops;
    records().add(r);
  }

  Bug bug_;
};

DeviceInfo describe() {
  DeviceInfo info;
#if defined(HAL_FIXTURE_BAD_PREFIX)
  info.id_prefix = "Bad-Prefix";
#else
  info.id_prefix = "fx";
#endif
  info.kind = DeviceKind::kOther;
  info.vendor = "HAL tests";
  info.name = "fixture device (" HAL_FIXTURE_NAME ")";
  info.memory_kind = "host";
  info.memory_bytes = uint64_t(1) << 30;
#if defined(HAL_FIXTURE_NAN_BANDWIDTH)
  info.memory_bandwidth_bytes_per_s = std::nan("");
#else
  info.memory_bandwidth_bytes_per_s = 1e9;
#endif
  info.peak_flops[DType::kF32] = 1e9;
  info.properties.emplace_back("source.memory_bytes", "fixed by the test fixture");
  LinkInfo host;
  host.peer_index = -1;
  host.kind = "test-link";
  host.bandwidth_bytes_per_s = 1e9;
  host.latency_s = 1e-6;
  info.links.push_back(host);
#if defined(HAL_FIXTURE_BAD_PEER)
  LinkInfo ghost = host;
  ghost.peer_index = 3;  // the plugin has one device
  ghost.kind = "ghost-link";
  info.links.push_back(ghost);
#endif
  return info;
}

class FxDevice : public DeviceImpl {
 public:
  explicit FxDevice(Bug bug) : info_(describe()), memory_(info_.memory_bytes), bug_(bug) {}
  const DeviceInfo& info() const override { return info_; }
  bool supports(const OpSpec& spec) const override {
    for (int i = 0; i < spec.num_inputs; ++i)
      if (spec.inputs[i].dtype == DType::kFP8E4M3 || spec.inputs[i].dtype == DType::kFP8E5M2)
        return false;
    return spec.output.dtype != DType::kFP8E4M3 && spec.output.dtype != DType::kFP8E5M2;
  }
  Result<std::unique_ptr<BufferImpl>> allocate(uint64_t size, MemoryKind kind,
                                               uint64_t alignment) override {
    const uint64_t align = std::max<uint64_t>(alignment, 64);
    HAL_RETURN_IF_ERROR(memory_.reserve(size));
    void* data = nullptr;
    if (kind != MemoryKind::kVirtual) {
      data = std::aligned_alloc(align, (size + align) / align * align);
      if (!data) {
        memory_.release(size);
        return out_of_memory("host allocation failed");
      }
    }
    return std::unique_ptr<BufferImpl>(
        new FxBuffer(this, size, kind, data, &memory_, bug_ == Bug::kLeak));
  }
  Result<std::unique_ptr<StreamImpl>> create_stream(uint32_t flags) override {
    return std::unique_ptr<StreamImpl>(new FxStream(flags, bug_));
  }
  Result<std::unique_ptr<EventImpl>> create_event() override {
    return std::unique_ptr<EventImpl>(new HostEvent());
  }
  MemoryStats memory_stats() const override { return memory_.stats(); }
  Result<Telemetry> telemetry() const override {
    Telemetry t;
    t.utilization_percent = 12.5;
    t.memory_used_bytes = double(memory_.stats().bytes_in_use);
    return t;
  }

 private:
  DeviceInfo info_;
  MemoryAccountant memory_;
  Bug bug_;
};

class FxPlugin : public plugin::PluginImpl {
 public:
  explicit FxPlugin(Bug bug) : device_(bug) {}
#if defined(HAL_FIXTURE_COUNT_LIES)
  uint32_t device_count() const override { return 2; }
  DeviceImpl* device(uint32_t index) override { return index == 0 ? &device_ : nullptr; }
#elif defined(HAL_FIXTURE_SAME_HANDLE)
  uint32_t device_count() const override { return 2; }
  DeviceImpl* device(uint32_t) override { return &device_; }
#elif defined(HAL_FIXTURE_HUGE_COUNT)
  uint32_t device_count() const override { return 5000; }
  DeviceImpl* device(uint32_t) override { return &device_; }
#else
  uint32_t device_count() const override { return 1; }
  DeviceImpl* device(uint32_t) override { return &device_; }
#endif

 private:
  FxDevice device_;
};

[[maybe_unused]] Result<std::unique_ptr<plugin::PluginImpl>> create(
    const plugin::PluginContext& ctx) {
#if defined(HAL_FIXTURE_CREATE_FAILS)
  (void)ctx;
  return unavailable("fixture_create_fails: the simulated device failed to initialise");
#elif defined(HAL_FIXTURE_CREATE_THROWS)
  (void)ctx;
  throw std::runtime_error("fixture_create_throws: exception from the factory");
#else
  const std::string b = ctx.option("bug", "none");
  const std::pair<const char*, Bug> bugs[] = {{"none", Bug::kNone},
                                              {"wrong_add", Bug::kWrongAdd},
                                              {"leak", Bug::kLeak},
                                              {"write_outside", Bug::kWriteOutside},
                                              {"ignore_wait", Bug::kIgnoreWait},
                                              {"drop_record", Bug::kDropRecord},
                                              {"lost_event", Bug::kLostEvent}};
  const auto it = std::find_if(std::begin(bugs), std::end(bugs),
                               [&](const auto& entry) { return b == entry.first; });
  if (it == std::end(bugs)) return invalid_argument("unknown bug '" + b + "'");
  const Bug bug = it->second;
  return std::unique_ptr<plugin::PluginImpl>(new FxPlugin(bug));
#endif
}

// The table the variant presents.
const hal_plugin_api* table() {
#if defined(HAL_FIXTURE_OLD_MINOR)
  return plugin::make_plugin_api<create>(HAL_FIXTURE_NAME, "1.0.0", /*abi_minor=*/0);
#elif defined(HAL_FIXTURE_MINOR_1_1)
  return plugin::make_plugin_api<create>(HAL_FIXTURE_NAME, "1.1.0", /*abi_minor=*/1);
#elif defined(HAL_FIXTURE_NEW_MINOR)
  // The next minor as a future header might define it: one more entry after the current
  // table. This host must not touch it (calling it aborts the test).
  struct ApiNextMinor {
    hal_plugin_api current;
    void (*future_entry)(void);
  };
  static ApiNextMinor api = [] {
    ApiNextMinor a{};
    a.current = *plugin::make_plugin_api<create>(HAL_FIXTURE_NAME, "1.3.0");
    a.current.struct_size = sizeof(ApiNextMinor);
    a.current.abi_minor = HAL_ABI_VERSION_MINOR + 1;
    a.future_entry = [] { std::abort(); };
    return a;
  }();
  return &api.current;
#elif defined(HAL_FIXTURE_WRONG_MAJOR)
  static hal_plugin_api api = [] {
    hal_plugin_api a = *plugin::make_plugin_api<create>(HAL_FIXTURE_NAME, "2.0.0");
    a.abi_major = HAL_ABI_VERSION_MAJOR + 1;
    a.abi_minor = 0;
    return a;
  }();
  return &api;
#elif defined(HAL_FIXTURE_PARTIAL_CHANNELS)
  static hal_plugin_api api = [] {
    hal_plugin_api a = *plugin::make_plugin_api<create>(HAL_FIXTURE_NAME, "1.2.0");
    a.stream_collective = nullptr;
    return a;
  }();
  return &api;
#elif defined(HAL_FIXTURE_MISSING_REQUIRED)
  static hal_plugin_api api = [] {
    hal_plugin_api a = *plugin::make_plugin_api<create>(HAL_FIXTURE_NAME, "1.2.0");
    a.stream_fill = nullptr;
    return a;
  }();
  return &api;
#elif defined(HAL_FIXTURE_SHORT_TABLE)
  static hal_plugin_api api = [] {
    hal_plugin_api a = *plugin::make_plugin_api<create>(HAL_FIXTURE_NAME, "0.9.0");
    a.struct_size = offsetof(hal_plugin_api, device_get_info);
    return a;
  }();
  return &api;
#elif defined(HAL_FIXTURE_NULL_TABLE)
  return nullptr;
#elif defined(HAL_FIXTURE_CREATE_NO_PLUGIN)
  static hal_plugin_api api = [] {
    hal_plugin_api a = *plugin::make_plugin_api<create>(HAL_FIXTURE_NAME, "1.2.0");
    a.plugin_create = [](hal_plugin_create_args*) -> hal_error* { return nullptr; };
    return a;
  }();
  return &api;
#else
  return plugin::make_plugin_api<create>(HAL_FIXTURE_NAME, "1.2.0");
#endif
}

}  // namespace
}  // namespace hal::fixture

#if !defined(HAL_FIXTURE_NO_ENTRY_POINT)
extern "C" HAL_PLUGIN_EXPORT const hal_plugin_api* hal_plugin_get_api(uint32_t, uint32_t) {
  return hal::fixture::table();
}
#else
// Exports something, just not the entry point.
extern "C" HAL_PLUGIN_EXPORT const hal_plugin_api* hal_plugin_get_api_v0(uint32_t, uint32_t) {
  return hal::fixture::table();
}
#endif
