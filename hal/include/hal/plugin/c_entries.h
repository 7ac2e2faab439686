// hal/plugin/c_entries.h (the plugin kit's internals, namespace detail): the entry points
// of the C table (hal/plugin_abi.h) for a plugin made with the adapter
// (hal/plugin_adapter.h): each converts its C arguments (c_conversions.h), checks them,
// calls the plugin's C++ classes and converts the result back, catching every exception.
//
// Threading: adds no locks (the plugin's classes are thread-safe).
#pragma once

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hal/plugin/c_conversions.h"
#include "hal/plugin/executable_blob.h"

namespace hal::plugin::detail {

template <PluginFactory Factory>
struct Entries {
  static hal_status_code error_code(const hal_error* e) {
    return e ? reinterpret_cast<const Error*>(e)->code : HAL_STATUS_OK;
  }
  static const char* error_message(const hal_error* e) {
    return e ? reinterpret_cast<const Error*>(e)->message.c_str() : "";
  }
  static void error_destroy(hal_error* e) {
    auto* err = reinterpret_cast<Error*>(e);
    if (err && err->owned) delete err;
  }
  static void error_get_detail(const hal_error* e, hal_error_detail* out) {
    if (!out || out->struct_size < sizeof(size_t)) return;
    hal_error_detail d{};
    d.struct_size = sizeof(d);
    if (e) {
      const StatusDetail& detail = reinterpret_cast<const Error*>(e)->detail;
      if (detail.command_tag) {
        d.fields |= HAL_ERROR_DETAIL_COMMAND_TAG;
        d.command_tag = *detail.command_tag;
      }
      if (detail.node) {
        d.fields |= HAL_ERROR_DETAIL_NODE;
        d.node = *detail.node;
      }
      if (detail.group) {
        d.fields |= HAL_ERROR_DETAIL_GROUP;
        d.group = *detail.group;
      }
    }
    const size_t n = std::min(out->struct_size, sizeof(d));
    d.struct_size = n;
    std::memcpy(static_cast<void*>(out), &d, n);
  }
  static const hal_extension_header* get_extension(hal_plugin* p, uint32_t type) {
    if (!p) return nullptr;
    try {
      return reinterpret_cast<AdaptedPlugin*>(p)->impl->extension(type);
    } catch (...) {
      return nullptr;
    }
  }

  static inline const char* name_ = "";
  static inline const char* version_ = "";

  static hal_error* plugin_create(hal_plugin_create_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("plugin_create args are null");
      const hal_plugin_create_args a = read_args(args);
      auto adapted = std::make_unique<AdaptedPlugin>();
      adapted->context.host = a.host;
      adapted->context.plugin_name = name_;
      for (size_t i = 0; i < a.num_options; ++i) {
        if (!a.options[i].key)
          return invalid_argument("plugin option " + std::to_string(i) + " has no key");
        adapted->context.options[a.options[i].key] = a.options[i].value ? a.options[i].value : "";
      }
      Result<std::unique_ptr<PluginImpl>> impl = Factory(adapted->context);
      if (!impl.ok()) return impl.status();
      adapted->impl = std::move(impl).value();
      args->plugin = reinterpret_cast<hal_plugin*>(adapted.release());
      return ok_status();
    });
  }
  static void plugin_destroy(hal_plugin* p) {
    try {
      delete reinterpret_cast<AdaptedPlugin*>(p);
    } catch (...) {
    }
  }
  static hal_error* device_count(hal_plugin* p, uint32_t* count) {
    return guard([&]() -> Status {
      if (!p || !count) return invalid_argument("device_count: null argument");
      *count = reinterpret_cast<AdaptedPlugin*>(p)->impl->device_count();
      return ok_status();
    });
  }
  static hal_error* device_get(hal_plugin* p, uint32_t index, hal_device** out) {
    return guard([&]() -> Status {
      if (!p || !out) return invalid_argument("device_get: null argument");
      auto* ap = reinterpret_cast<AdaptedPlugin*>(p);
      if (index >= ap->impl->device_count())
        return not_found("device index " + std::to_string(index) + " out of range");
      *out = reinterpret_cast<hal_device*>(ap->impl->device(index));
      return ok_status();
    });
  }
  static hal_error* device_get_info(hal_device* d, hal_device_info* info) {
    return guard([&]() -> Status {
      if (!d || !info) return invalid_argument("device_get_info: null argument");
      const size_t host_size = info->struct_size;
      const hal_device_info& mine = dev(d)->exported_info();
      std::memcpy(info, &mine, std::min(host_size, sizeof(hal_device_info)));
      info->struct_size = std::min(host_size, sizeof(hal_device_info));
      return ok_status();
    });
  }
  static hal_error* device_supports_op(hal_device* d, const hal_op_desc* op, int32_t* supported) {
    return guard([&]() -> Status {
      if (!d || !supported) return invalid_argument("device_supports_op: null argument");
      OpSpec spec;
      Status s = to_op(op, &spec, nullptr);
      if (!s.ok()) {
        *supported = 0;
        return s;
      }
      *supported = dev(d)->supports(spec) ? 1 : 0;
      return ok_status();
    });
  }
  static hal_error* device_get_memory_stats(hal_device* d, hal_memory_stats* out) {
    return guard([&]() -> Status {
      if (!d || !out) return invalid_argument("device_get_memory_stats: null argument");
      const MemoryStats m = dev(d)->memory_stats();
      hal_memory_stats s{};
      s.struct_size = sizeof(s);
      s.bytes_in_use = m.bytes_in_use;
      s.peak_bytes_in_use = m.peak_bytes_in_use;
      s.allocation_count = m.allocation_count;
      s.total_allocations = m.total_allocations;
      s.capacity_bytes = m.capacity_bytes;
      const size_t n = std::min(out->struct_size, sizeof(s));
      std::memcpy(out, &s, n);
      out->struct_size = n;
      return ok_status();
    });
  }
  static hal_error* device_get_telemetry(hal_device* d, hal_telemetry* out) {
    return guard([&]() -> Status {
      if (!d || !out) return invalid_argument("device_get_telemetry: null argument");
      Result<Telemetry> t = dev(d)->telemetry();
      if (!t.ok()) return t.status();
      hal_telemetry s{};
      s.struct_size = sizeof(s);
      s.utilization_percent = t->utilization_percent;
      s.memory_used_bytes = t->memory_used_bytes;
      s.power_watts = t->power_watts;
      s.temperature_celsius = t->temperature_celsius;
      s.core_clock_hz = t->core_clock_hz;
      s.memory_clock_hz = t->memory_clock_hz;
      const size_t n = std::min(out->struct_size, sizeof(s));
      std::memcpy(out, &s, n);
      out->struct_size = n;
      return ok_status();
    });
  }
  static hal_error* buffer_allocate(hal_buffer_allocate_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("buffer_allocate args are null");
      const hal_buffer_allocate_args a = read_args(args);
      if (!a.device) return invalid_argument("buffer_allocate: no device");
      const int32_t memory_kind = c_enum_value(a.memory_kind);
      if (memory_kind < HAL_MEMORY_DEVICE || memory_kind > HAL_MEMORY_VIRTUAL)
        return invalid_argument("buffer_allocate: unknown memory kind " +
                                std::to_string(memory_kind));
      if (a.alignment & (a.alignment - 1))
        return invalid_argument("buffer_allocate: alignment " + std::to_string(a.alignment) +
                                " is not a power of two");
      Result<std::unique_ptr<BufferImpl>> b =
          dev(a.device)->allocate(a.size_bytes, MemoryKind(memory_kind), a.alignment);
      if (!b.ok()) return b.status();
      if (!*b) return internal_error("buffer_allocate: the device returned no buffer");
      args->buffer = reinterpret_cast<hal_buffer*>(b->release());
      return ok_status();
    });
  }
  static void buffer_free(hal_buffer* b) {
    try {
      delete buf(b);
    } catch (...) {
    }
  }
  static hal_error* buffer_map(hal_buffer* b, void** ptr) {
    return guard([&]() -> Status {
      if (!b || !ptr) return invalid_argument("buffer_map: null argument");
      Result<void*> p = buf(b)->map();
      if (!p.ok()) return p.status();
      *ptr = *p;
      return ok_status();
    });
  }
  static hal_error* stream_create(hal_stream_create_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("stream_create args are null");
      const hal_stream_create_args a = read_args(args);
      if (!a.device) return invalid_argument("stream_create: no device");
      Result<std::unique_ptr<StreamImpl>> s = dev(a.device)->create_stream(a.flags);
      if (!s.ok()) return s.status();
      if (!*s) return internal_error("stream_create: the device returned no stream");
      auto b = std::make_unique<StreamBox>();
      b->impl = std::move(*s);
      b->device = dev(a.device);
      args->stream = reinterpret_cast<hal_stream*>(b.release());
      return ok_status();
    });
  }
  static void stream_destroy(hal_stream* s) {
    try {
      delete box(s);
    } catch (...) {
    }
  }
  static hal_error* stream_copy(const hal_copy_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("stream_copy args are null");
      const hal_copy_args a = read_args(args);
      if (!a.stream) return invalid_argument("copy: no stream");
      if ((a.src_buffer == nullptr) == (a.src_host == nullptr))
        return invalid_argument("copy: exactly one of a source buffer or host pointer is needed");
      if ((a.dst_buffer == nullptr) == (a.dst_host == nullptr))
        return invalid_argument(
            "copy: exactly one of a destination buffer or host pointer is needed");
      CopyCall c;
      c.src_buffer = buf(a.src_buffer);
      c.src_offset = a.src_offset;
      c.src_host = a.src_host;
      c.dst_buffer = buf(a.dst_buffer);
      c.dst_offset = a.dst_offset;
      c.dst_host = a.dst_host;
      c.size_bytes = a.size_bytes;
      c.tag = a.tag;
      auto in_bounds = [](BufferImpl* b, uint64_t off, uint64_t n) {
        return off <= b->size() && n <= b->size() - off;
      };
      if (c.src_buffer && !in_bounds(c.src_buffer, c.src_offset, c.size_bytes))
        return invalid_argument("copy of " + std::to_string(c.size_bytes) + " bytes from offset " +
                                std::to_string(c.src_offset) + " overruns the " +
                                std::to_string(c.src_buffer->size()) + "-byte source buffer");
      if (c.dst_buffer && !in_bounds(c.dst_buffer, c.dst_offset, c.size_bytes))
        return invalid_argument("copy of " + std::to_string(c.size_bytes) + " bytes to offset " +
                                std::to_string(c.dst_offset) + " overruns the " +
                                std::to_string(c.dst_buffer->size()) + "-byte destination buffer");
      if (c.src_host && c.dst_host)
        return invalid_argument("copy: host-to-host copies are not a device command");
      DeviceImpl* sd = box(a.stream)->device;
      if (c.src_host) {
        c.direction = CommandKind::kCopyHostToDevice;
      } else if (c.dst_host) {
        c.direction = CommandKind::kCopyDeviceToHost;
      } else if (c.src_buffer->device() == c.dst_buffer->device()) {
        c.direction = CommandKind::kCopyDeviceToDevice;
      } else {
        c.direction = CommandKind::kCopyPeer;
      }
      if (c.direction != CommandKind::kCopyPeer) {
        BufferImpl* b = c.src_buffer ? c.src_buffer : c.dst_buffer;
        if (b->device() != sd && !(c.src_buffer && c.dst_buffer))
          return invalid_argument("copy: the buffer belongs to another device than the stream");
      }
      return box(a.stream)->impl->copy(c);
    });
  }
  static hal_error* stream_fill(const hal_fill_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("stream_fill args are null");
      const hal_fill_args a = read_args(args);
      if (!a.stream || !a.buffer) return invalid_argument("fill: no stream or buffer");
      if (a.pattern_size != 1 && a.pattern_size != 2 && a.pattern_size != 4 && a.pattern_size != 8)
        return invalid_argument("fill: pattern size " + std::to_string(a.pattern_size) +
                                " is not 1, 2, 4 or 8");
      if (a.size_bytes % a.pattern_size != 0)
        return invalid_argument("fill: size " + std::to_string(a.size_bytes) +
                                " is not a multiple of the pattern size " +
                                std::to_string(a.pattern_size));
      BufferImpl* b = buf(a.buffer);
      if (a.offset > b->size() || a.size_bytes > b->size() - a.offset)
        return invalid_argument("fill of " + std::to_string(a.size_bytes) + " bytes at offset " +
                                std::to_string(a.offset) + " overruns the " +
                                std::to_string(b->size()) + "-byte buffer");
      if (b->device() != box(a.stream)->device)
        return invalid_argument("fill: the buffer belongs to another device than the stream");
      FillCall f;
      f.buffer = b;
      f.offset = a.offset;
      f.size_bytes = a.size_bytes;
      std::memcpy(f.pattern.data(), a.pattern, 8);
      f.pattern_size = a.pattern_size;
      f.tag = a.tag;
      return box(a.stream)->impl->fill(f);
    });
  }
  static hal_error* stream_dispatch(const hal_dispatch_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("stream_dispatch args are null");
      const hal_dispatch_args a = read_args(args);
      if (!a.stream) return invalid_argument("dispatch: no stream");
      OpSpec spec;
      OpCall call;
      HAL_RETURN_IF_ERROR(to_op(a.op, &spec, &call));
      DeviceImpl* d = box(a.stream)->device;
      for (int i = 0; i < call.num_inputs; ++i)
        if (call.inputs[i].buffer->device() != d)
          return invalid_argument(std::string(op_kind_name(call.kind)) + ": input " +
                                  std::to_string(i) + " lives on another device");
      if (call.output.buffer->device() != d)
        return invalid_argument(std::string(op_kind_name(call.kind)) +
                                ": output lives on another device");
      if (!d->supports(spec))
        return unimplemented(std::string(op_kind_name(call.kind)) + " with inputs " +
                             spec.inputs[0].to_string() + " is not supported by this device");
      return box(a.stream)->impl->dispatch(call, a.tag);
    });
  }
  static hal_error* stream_synchronize(hal_stream* s) {
    return guard([&]() -> Status {
      if (!s) return invalid_argument("stream_synchronize: null stream");
      return box(s)->impl->synchronize();
    });
  }
  static hal_error* stream_take_records(hal_stream* s, hal_command_record* out, size_t record_size,
                                        size_t capacity, size_t* count) {
    return guard([&]() -> Status {
      if (!s || !count || (capacity > 0 && !out))
        return invalid_argument("stream_take_records: null argument");
      if (record_size < offsetof(hal_command_record, bound) + sizeof(hal_bound_by))
        return invalid_argument("stream_take_records: record_size " + std::to_string(record_size) +
                                " is smaller than a hal 1.0 record");
      std::vector<CommandRecord> tmp(std::min<size_t>(capacity, 4096));
      const size_t n = box(s)->impl->take_records(tmp.data(), tmp.size());
      for (size_t i = 0; i < n; ++i) {
        hal_command_record r{};
        r.struct_size = sizeof(r);
        const CommandRecord& c = tmp[i];
        r.tag = c.tag;
        r.command = hal_command_kind(c.command);
        r.op = hal_op_kind(c.op);
        r.start_ns = c.start_ns;
        r.end_ns = c.end_ns;
        r.flops = c.flops;
        r.bytes_read = c.bytes_read;
        r.bytes_written = c.bytes_written;
        r.sram_bytes_read = c.sram_bytes_read;
        r.sram_bytes_written = c.sram_bytes_written;
        r.link_bytes = c.link_bytes;
        r.bound = hal_bound_by(c.bound);
        r.collective = hal_collective_kind(c.collective);
        r.channel_rank = c.channel_rank;
        r.channel_size = c.channel_size;
        r.peer_rank = c.peer_rank;
        r.link_bytes_received = c.link_bytes_received;
        r.link_class = hal_link_class(c.link_class);
        r.algorithm = hal_collective_algorithm(c.algorithm);
        r.group = c.group;
        r.node = c.node;
        const size_t copy = std::min(record_size, sizeof(r));
        r.struct_size = copy;
        std::memcpy(reinterpret_cast<char*>(out) + i * record_size, &r, copy);
      }
      *count = n;
      return ok_status();
    });
  }
  static hal_error* event_create(hal_device* d, hal_event** out) {
    return guard([&]() -> Status {
      if (!d || !out) return invalid_argument("event_create: null argument");
      Result<std::unique_ptr<EventImpl>> e = dev(d)->create_event();
      if (!e.ok()) return e.status();
      if (!*e) return internal_error("event_create: the device returned no event");
      *out = reinterpret_cast<hal_event*>(e->release());
      return ok_status();
    });
  }
  static void event_destroy(hal_event* e) {
    try {
      delete evt(e);
    } catch (...) {
    }
  }
  static hal_error* stream_record_event(hal_stream* s, hal_event* e) {
    return guard([&]() -> Status {
      if (!s || !e) return invalid_argument("stream_record_event: null argument");
      return box(s)->impl->record_event(*evt(e));
    });
  }
  static hal_error* stream_wait_event(hal_stream* s, hal_event* e) {
    return guard([&]() -> Status {
      if (!s || !e) return invalid_argument("stream_wait_event: null argument");
      return box(s)->impl->wait_event(*evt(e));
    });
  }
  static hal_error* stream_enqueue_host_func(hal_stream* s, hal_host_func fn, void* user) {
    return guard([&]() -> Status {
      if (!s || !fn) return invalid_argument("stream_enqueue_host_func: null argument");
      return box(s)->impl->enqueue_host_func(fn, user);
    });
  }
  static hal_error* event_synchronize(hal_event* e) {
    return guard([&]() -> Status {
      if (!e) return invalid_argument("event_synchronize: null event");
      return evt(e)->synchronize();
    });
  }
  static hal_error* event_query(hal_event* e, int32_t* done) {
    return guard([&]() -> Status {
      if (!e || !done) return invalid_argument("event_query: null argument");
      Result<bool> r = evt(e)->query();
      if (!r.ok()) return r.status();
      *done = *r ? 1 : 0;
      return ok_status();
    });
  }
  // ---- channels (1.2) ----
  static hal_error* channel_create(hal_channel_create_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("channel_create args are null");
      const hal_channel_create_args a = read_args(args);
      if (!a.device) return invalid_argument("channel_create: no device");
      ChannelConfig config;
      HAL_RETURN_IF_ERROR(to_channel_config(a, &config));
      Result<std::unique_ptr<ChannelImpl>> c = dev(a.device)->create_channel(config);
      if (!c.ok()) return c.status();
      if (!*c) return internal_error("channel_create: the device returned no channel");
      args->channel = reinterpret_cast<hal_channel*>(std::move(c).value().release());
      return ok_status();
    });
  }
  static void channel_destroy(hal_channel* c) {
    try {
      delete reinterpret_cast<ChannelImpl*>(c);
    } catch (...) {
    }
  }
  static void channel_abort(hal_channel* c, const char* reason) {
    try {
      if (c) reinterpret_cast<ChannelImpl*>(c)->abort(reason ? reason : "");
    } catch (...) {
    }
  }
  static hal_error* stream_collective(const hal_collective_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("stream_collective args are null");
      const hal_collective_args a = read_args(args);
      if (!a.stream || !a.channel) return invalid_argument("collective: no stream or channel");
      CollectiveCall call;
      call.channel = reinterpret_cast<ChannelImpl*>(a.channel);
      call.shape.kind = CollectiveKind(c_enum_value(a.kind));
      call.shape.reduction = Reduction(c_enum_value(a.reduction));
      call.shape.dtype = DType(c_enum_value(a.dtype));
      call.shape.count = a.count;
      call.shape.peer = a.peer;
      call.send = buf(a.send_buffer);
      call.send_offset = a.send_offset;
      call.recv = buf(a.recv_buffer);
      call.recv_offset = a.recv_offset;
      call.tag = a.tag;
      HAL_RETURN_IF_ERROR(check_collective_call(call, box(a.stream)->device));
      return box(a.stream)->impl->collective(call);
    });
  }

  static hal_error* event_timestamp_ns(hal_event* e, uint64_t* ts) {
    return guard([&]() -> Status {
      if (!e || !ts) return invalid_argument("event_timestamp_ns: null argument");
      Result<uint64_t> r = evt(e)->timestamp_ns();
      if (!r.ok()) return r.status();
      *ts = *r;
      return ok_status();
    });
  }

  // ---- executables (ABI 1.2) ----
  static std::string key_of(DeviceImpl* d) { return executable_key(name_, version_, d->fingerprint()); }

  static hal_error* device_partition(hal_partition_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("device_partition args are null");
      const hal_partition_args a = read_args(args);
      if (!a.device || !a.node_unit) return invalid_argument("device_partition: null argument");
      GraphView view;
      HAL_RETURN_IF_ERROR(to_graph_view(a.graph, &view).with_context("partition"));
      HAL_ASSIGN_OR_RETURN(Partition p, dev(a.device)->partition(view));
      if (p.node_unit.size() != view.nodes.size() || p.units < 0)
        return internal_error("partition: the device answered for " +
                              std::to_string(p.node_unit.size()) + " of " +
                              std::to_string(view.nodes.size()) + " nodes");
      for (size_t n = 0; n < view.nodes.size(); ++n) {
        const int32_t u = p.node_unit[n];
        if (u < -1 || u >= p.units)
          return internal_error("partition: node " + std::to_string(n) + " in unit " +
                                std::to_string(u) + " of " + std::to_string(p.units));
        a.node_unit[n] = u;
        if (u < 0 && a.decline) {
          const std::string why =
              n < p.reasons.size() && !p.reasons[n].empty() ? p.reasons[n] : "declined";
          a.decline(a.decline_user_data, uint32_t(n), why.c_str());
        }
      }
      args->num_units = uint32_t(p.units);
      return ok_status();
    });
  }
  static hal_error* executable_compile(hal_executable_compile_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("executable_compile args are null");
      const hal_executable_compile_args a = read_args(args);
      if (!a.device) return invalid_argument("executable_compile: no device");
      if (a.num_options && !a.options) return invalid_argument("compile options without storage");
      GraphView view;
      HAL_RETURN_IF_ERROR(to_graph_view(a.graph, &view).with_context("compile"));
      CompileOptions options;
      for (size_t i = 0; i < a.num_options; ++i) {
        if (!a.options[i].key) return invalid_argument("compile option without a key");
        options[a.options[i].key] = a.options[i].value ? a.options[i].value : "";
      }
      HAL_ASSIGN_OR_RETURN(std::unique_ptr<ExecutableImpl> impl,
                           dev(a.device)->compile(view, options));
      if (!impl) return internal_error("compile: the device returned no executable");
      auto b = std::make_unique<ExecutableBox>();
      b->impl = std::move(impl);
      b->device = dev(a.device);
      args->executable = reinterpret_cast<hal_executable*>(b.release());
      return ok_status();
    });
  }
  static void executable_destroy(hal_executable* e) {
    try {
      delete exe(e);
    } catch (...) {
    }
  }
  static hal_error* executable_get_info(hal_executable* e, hal_executable_info* out) {
    return guard([&]() -> Status {
      if (!e || !out) return invalid_argument("executable_get_info: null argument");
      const size_t host_size = out->struct_size;
      hal_executable_info in = read_args(out);
      ExecutableBox& b = *exe(e);
      const GraphView& view = b.impl->view();
      std::vector<int64_t> symbols = view.max_symbols();
      if (in.symbol_values) {
        symbols.assign(in.symbol_values, in.symbol_values + in.num_symbol_values);
        HAL_RETURN_IF_ERROR(view.check_symbols(symbols));
      }
      HAL_ASSIGN_OR_RETURN(ExecutableInfo info, b.impl->info(symbols));
      std::call_once(b.structure_once, [&] { b.structure = info.groups; });
      if (b.structure.size() != info.groups.size())
        return internal_error("executable info: the fused groups changed between calls");
      hal_executable_info r = in;
      r.struct_size = std::min(host_size, sizeof(r));
      r.predicted_seconds = info.predicted_seconds;
      r.scratch_bytes = info.scratch_bytes;
      r.dram_bytes_read = info.dram_bytes_read;
      r.dram_bytes_written = info.dram_bytes_written;
      r.sram_bytes = info.sram_bytes;
      r.flops = info.flops;
      r.num_groups = uint32_t(info.groups.size());
      if (in.groups && in.groups_capacity > 0) {
        if (in.group_size < offsetof(hal_fused_group_info, bound) + sizeof(hal_bound_by))
          return invalid_argument("executable info: group_size " + std::to_string(in.group_size) +
                                  " is smaller than ABI 1.2's");
        const size_t n = std::min(in.groups_capacity, info.groups.size());
        for (size_t i = 0; i < n; ++i) {
          const FusedGroupInfo& kept = b.structure[i];
          const FusedGroupInfo& now = info.groups[i];
          hal_fused_group_info g{};
          g.struct_size = sizeof(g);
          g.name = kept.name.c_str();
          g.main_op = hal_op_kind(kept.main_op);
          g.main_node = kept.main_node;
          g.nodes = kept.nodes.data();
          g.num_nodes = kept.nodes.size();
          g.predicted_seconds = now.predicted_seconds;
          g.flops = now.flops;
          g.dram_bytes_read = now.dram_bytes_read;
          g.dram_bytes_written = now.dram_bytes_written;
          g.sram_bytes = now.sram_bytes;
          g.bound = hal_bound_by(now.bound);
          auto* dst = reinterpret_cast<hal_fused_group_info*>(reinterpret_cast<char*>(in.groups) +
                                                              i * in.group_size);
          const size_t copy = std::min(std::min(dst->struct_size, in.group_size), sizeof(g));
          g.struct_size = copy;
          std::memcpy(static_cast<void*>(dst), &g, copy);
        }
      }
      std::memcpy(static_cast<void*>(out), &r, r.struct_size);
      return ok_status();
    });
  }
  static hal_error* stream_execute(const hal_execute_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("stream_execute args are null");
      const hal_execute_args a = read_args(args);
      if (!a.stream || !a.executable) return invalid_argument("execute: no stream or executable");
      ExecutableBox& b = *exe(a.executable);
      DeviceImpl* d = box(a.stream)->device;
      if (b.device != d)
        return invalid_argument("execute: the executable belongs to another device");
      const GraphView& view = b.impl->view();
      ExecuteCall call;
      call.executable = b.impl.get();
      if (a.num_symbol_values && !a.symbol_values)
        return invalid_argument("execute: symbol values without storage");
      call.symbols.assign(a.symbol_values, a.symbol_values + a.num_symbol_values);
      HAL_RETURN_IF_ERROR(view.check_symbols(call.symbols).with_context("execute"));
      if (a.num_bindings && (!a.bindings || a.binding_size < sizeof(hal_binding)))
        return invalid_argument("execute: bindings without storage or smaller than ABI 1.2's");
      call.bindings.assign(view.values.size(), BoundTensor{});
      for (size_t i = 0; i < a.num_bindings; ++i) {
        hal_binding c;
        std::memcpy(&c, reinterpret_cast<const char*>(a.bindings) + i * a.binding_size, sizeof c);
        if (c.value < 0 || size_t(c.value) >= view.values.size() || !view.is_bound(c.value))
          return invalid_argument("execute: binding " + std::to_string(i) + " names value " +
                                  std::to_string(c.value) + ", which is not a bound value");
        const GraphValue& v = view.values[size_t(c.value)];
        if (call.bindings[size_t(c.value)].buffer)
          return invalid_argument("execute: value '" + v.name + "' is bound twice");
        if (!c.buffer) return invalid_argument("execute: value '" + v.name + "' bound to no buffer");
        BufferImpl* bb = buf(c.buffer);
        if (bb->device() != d)
          return invalid_argument("execute: value '" + v.name + "' lives on another device");
        const uint64_t extent = v.desc.extent_bytes();
        if (c.offset_bytes > bb->size() || extent > bb->size() - c.offset_bytes)
          return invalid_argument("execute: value '" + v.name + "' " + v.desc.to_string() +
                                  " at offset " + std::to_string(c.offset_bytes) + " needs " +
                                  std::to_string(extent) + " bytes of a " +
                                  std::to_string(bb->size()) + "-byte buffer");
        call.bindings[size_t(c.value)] = {bb, c.offset_bytes};
      }
      for (size_t v = 0; v < view.values.size(); ++v)
        if (view.is_bound(int32_t(v)) && !call.bindings[v].buffer)
          return invalid_argument("execute: value '" + view.values[v].name + "' (" +
                                  std::string(graph_value_kind_name(view.values[v].kind)) +
                                  ") is not bound");
      const uint64_t scratch = b.impl->scratch_bytes();
      if (a.scratch) {
        BufferImpl* sb = buf(a.scratch);
        if (sb->device() != d) return invalid_argument("execute: scratch on another device");
        if (a.scratch_offset > sb->size() || scratch > sb->size() - a.scratch_offset)
          return invalid_argument("execute: scratch needs " + std::to_string(scratch) +
                                  " bytes at offset " + std::to_string(a.scratch_offset) +
                                  " of a " + std::to_string(sb->size()) + "-byte buffer");
        call.scratch = sb;
        call.scratch_offset = a.scratch_offset;
      } else if (scratch > 0) {
        return invalid_argument("execute: the executable needs " + std::to_string(scratch) +
                                " bytes of scratch, none given");
      }
      return box(a.stream)->impl->execute(call, a.tag);
    });
  }
  static hal_error* executable_serialize(hal_executable* e, void* data, size_t capacity,
                                         size_t* size) {
    return guard([&]() -> Status {
      if (!e || !size) return invalid_argument("executable_serialize: null argument");
      ExecutableBox& b = *exe(e);
      HAL_ASSIGN_OR_RETURN(std::vector<uint8_t> payload, b.impl->serialize());
      const std::vector<uint8_t> blob = wrap_blob(key_of(b.device), payload);
      *size = blob.size();
      if (data && capacity >= blob.size()) std::memcpy(data, blob.data(), blob.size());
      return ok_status();
    });
  }
  static hal_error* executable_deserialize(hal_executable_deserialize_args* args) {
    return guard([&]() -> Status {
      if (!args) return invalid_argument("executable_deserialize args are null");
      const hal_executable_deserialize_args a = read_args(args);
      if (!a.device || (a.size && !a.data))
        return invalid_argument("executable_deserialize: null argument");
      DeviceImpl* d = dev(a.device);
      HAL_ASSIGN_OR_RETURN(
          std::span<const uint8_t> payload,
          unwrap_blob({static_cast<const uint8_t*>(a.data), a.size}, key_of(d)));
      HAL_ASSIGN_OR_RETURN(std::unique_ptr<ExecutableImpl> impl, d->deserialize(payload));
      if (!impl) return internal_error("deserialize: the device returned no executable");
      auto b = std::make_unique<ExecutableBox>();
      b->impl = std::move(impl);
      b->device = d;
      args->executable = reinterpret_cast<hal_executable*>(b.release());
      return ok_status();
    });
  }
  static hal_error* device_get_executable_key(hal_device* d, char* buffer, size_t capacity,
                                              size_t* length) {
    return guard([&]() -> Status {
      if (!d || !length) return invalid_argument("device_get_executable_key: null argument");
      const std::string key = key_of(dev(d));
      *length = key.size();
      if (buffer && capacity > key.size()) std::memcpy(buffer, key.c_str(), key.size() + 1);
      return ok_status();
    });
  }
};

}  // namespace hal::plugin::detail
