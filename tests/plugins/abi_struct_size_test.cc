// The other half of the ABI policy, seen from the plugin: a plugin built with the
// current header (the fixture_good library, made with the plugin adapter) must work with
// hosts of other minors. This test plays those hosts through the C table directly:
// - a newer host passes argument structs longer than the plugin knows (fields appended
//   in a future minor) and spaces op tensors further apart: the plugin reads what it
//   knows and ignores the rest;
// - an older host passes shorter structs: the plugin writes no byte beyond the
//   struct_size it was given and reports how much it wrote.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "hal/plugin_abi.h"

namespace {

constexpr uint8_t kGuard = 0xEE;

class PluginAsSeenByOtherHosts : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = std::string(HAL_FIXTURE_DIR) + "/libhal_plugin_fixture_good.so";
    handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle_, nullptr) << ::dlerror();
    auto get = reinterpret_cast<hal_plugin_get_api_fn>(::dlsym(handle_, HAL_PLUGIN_ENTRY_POINT));
    ASSERT_NE(get, nullptr);
    // A newer host announces itself as 1.(minor+1); the plugin must not mind.
    api_ = get(HAL_ABI_VERSION_MAJOR, HAL_ABI_VERSION_MINOR + 1);
    ASSERT_NE(api_, nullptr);

    // plugin_create with the args struct of a newer host: one more field appended.
    struct NewerCreateArgs {
      hal_plugin_create_args base;
      uint64_t future_field;
    } args{};
    args.base.struct_size = sizeof(args);
    args.future_field = 0xDEADBEEF;
    host_.struct_size = sizeof(host_);
    host_.abi_major = HAL_ABI_VERSION_MAJOR;
    host_.abi_minor = HAL_ABI_VERSION_MINOR + 1;
    args.base.host = &host_;
    ASSERT_EQ(api_->plugin_create(&args.base), nullptr);
    plugin_ = args.base.plugin;
    ASSERT_NE(plugin_, nullptr);
    ASSERT_EQ(api_->device_get(plugin_, 0, &device_), nullptr);
  }
  void TearDown() override {
    if (plugin_) api_->plugin_destroy(plugin_);
    // The library stays mapped, as the host keeps plugins mapped (its threads).
  }

  // Error to string (and free).
  std::string take(hal_error* e) {
    if (!e) return "";
    std::string m = api_->error_message(e);
    api_->error_destroy(e);
    return m.empty() ? "error" : m;
  }

  void* handle_ = nullptr;
  const hal_plugin_api* api_ = nullptr;
  hal_host_api host_{};
  hal_plugin* plugin_ = nullptr;
  hal_device* device_ = nullptr;
};

TEST_F(PluginAsSeenByOtherHosts, DeviceInfoFillsOnlyWhatAnOlderHostAsked) {
  const size_t older = offsetof(hal_device_info, links);  // a host that knows fewer fields
  std::vector<uint8_t> storage(sizeof(hal_device_info) + 32, kGuard);
  auto* info = reinterpret_cast<hal_device_info*>(storage.data());
  info->struct_size = older;
  ASSERT_EQ(take(api_->device_get_info(device_, info)), "");
  EXPECT_EQ(info->struct_size, older);
  EXPECT_STREQ(info->id_prefix, "fx");
  EXPECT_EQ(info->memory_bytes, uint64_t(1) << 30);
  for (size_t i = older; i < storage.size(); ++i)
    ASSERT_EQ(storage[i], kGuard) << "byte " << i << " beyond the host's struct_size was written";
}

TEST_F(PluginAsSeenByOtherHosts, DeviceInfoFromANewerHostLeavesUnknownFieldsAlone) {
  std::vector<uint8_t> storage(sizeof(hal_device_info) + 32, kGuard);
  auto* info = reinterpret_cast<hal_device_info*>(storage.data());
  info->struct_size = storage.size();  // a newer host's longer struct
  ASSERT_EQ(take(api_->device_get_info(device_, info)), "");
  EXPECT_EQ(info->struct_size, sizeof(hal_device_info)) << "the plugin reports what it wrote";
  for (size_t i = sizeof(hal_device_info); i < storage.size(); ++i)
    ASSERT_EQ(storage[i], kGuard) << "byte " << i
                                  << " (a field the plugin does not know) was written";
}

TEST_F(PluginAsSeenByOtherHosts, MemoryStatsAndTelemetryRespectTheHostsSize) {
  std::vector<uint8_t> storage(sizeof(hal_memory_stats) + 16, kGuard);
  auto* stats = reinterpret_cast<hal_memory_stats*>(storage.data());
  stats->struct_size = offsetof(hal_memory_stats, allocation_count);
  ASSERT_EQ(take(api_->device_get_memory_stats(device_, stats)), "");
  EXPECT_EQ(stats->struct_size, offsetof(hal_memory_stats, allocation_count));
  for (size_t i = offsetof(hal_memory_stats, allocation_count); i < storage.size(); ++i)
    ASSERT_EQ(storage[i], kGuard);

  hal_telemetry t{};
  t.struct_size = offsetof(hal_telemetry, memory_used_bytes);  // only utilization known
  t.memory_used_bytes = -7;
  ASSERT_EQ(take(api_->device_get_telemetry(device_, &t)), "");
  EXPECT_EQ(t.utilization_percent, 12.5);
  EXPECT_EQ(t.memory_used_bytes, -7) << "written beyond the host's struct_size";
}

TEST_F(PluginAsSeenByOtherHosts, ErrorDetailsRespectTheHostsSize) {
  hal_device* none = nullptr;
  hal_error* e = api_->device_get(plugin_, 99, &none);  // an error without details
  ASSERT_NE(e, nullptr);
  ASSERT_NE(api_->error_get_detail, nullptr);
  // A host that knows only `fields`: nothing beyond it is written.
  std::vector<uint8_t> storage(sizeof(hal_error_detail) + 16, kGuard);
  auto* d = reinterpret_cast<hal_error_detail*>(storage.data());
  d->struct_size = offsetof(hal_error_detail, command_tag);
  api_->error_get_detail(e, d);
  EXPECT_EQ(d->struct_size, offsetof(hal_error_detail, command_tag));
  EXPECT_EQ(d->fields, 0u);
  for (size_t i = offsetof(hal_error_detail, command_tag); i < storage.size(); ++i)
    ASSERT_EQ(storage[i], kGuard) << "byte " << i << " beyond the host's struct_size was written";
  api_->error_destroy(e);
  // No extension of an unassigned type.
  ASSERT_NE(api_->get_extension, nullptr);
  EXPECT_EQ(api_->get_extension(plugin_, HAL_EXTENSION_TYPE_PRIVATE_FIRST), nullptr);
}

TEST_F(PluginAsSeenByOtherHosts, NewerHostArgumentStructsAndWiderTensorsWork) {
  // buffer_allocate and stream_create with trailing fields the plugin does not know.
  struct NewerAllocate {
    hal_buffer_allocate_args base;
    uint64_t future_flags;
  };
  auto allocate = [&](uint64_t size) {
    NewerAllocate a{};
    a.base.struct_size = sizeof(a);
    a.base.device = device_;
    a.base.size_bytes = size;
    a.base.memory_kind = HAL_MEMORY_DEVICE;
    a.future_flags = ~uint64_t(0);
    EXPECT_EQ(take(api_->buffer_allocate(&a.base)), "");
    return a.base.buffer;
  };
  hal_buffer* x = allocate(16);
  hal_buffer* y = allocate(16);
  ASSERT_TRUE(x && y);
  struct NewerStreamCreate {
    hal_stream_create_args base;
    uint32_t future_priority;
  } sc{};
  sc.base.struct_size = sizeof(sc);
  sc.base.device = device_;
  sc.future_priority = 99;
  ASSERT_EQ(take(api_->stream_create(&sc.base)), "");
  hal_stream* stream = sc.base.stream;

  struct NewerCopy {
    hal_copy_args base;
    uint64_t future_hint;
  };
  const float in[4] = {1, -2, 3, 0.5f};
  NewerCopy up{};
  up.base.struct_size = sizeof(up);
  up.base.stream = stream;
  up.base.src_host = in;
  up.base.dst_buffer = x;
  up.base.size_bytes = 16;
  ASSERT_EQ(take(api_->stream_copy(&up.base)), "");

  // An op whose tensors are spaced by a newer, larger hal_tensor (tensor_size says so).
  struct NewerTensor {
    hal_tensor base;
    uint64_t future_layout;
  };
  NewerTensor inputs[1]{}, outputs[1]{};
  auto vec4 = [](hal_tensor& t, hal_buffer* b) {
    t.buffer = b;
    t.dtype = HAL_DTYPE_F32;
    t.rank = 1;
    t.shape[0] = 4;
    t.strides[0] = 1;
  };
  vec4(inputs[0].base, x);
  vec4(outputs[0].base, y);
  inputs[0].future_layout = outputs[0].future_layout = 12345;
  struct NewerAttrs {
    hal_op_attrs base;
    float future_attr;
  } attrs{};
  attrs.base.struct_size = sizeof(attrs);
  attrs.base.alpha = 3.0f;
  attrs.base.beta = -1.0f;
  hal_op_desc op{};
  op.struct_size = sizeof(op);
  op.kind = HAL_OP_SCALE;
  op.attrs = &attrs.base;
  op.tensor_size = sizeof(NewerTensor);
  op.inputs = &inputs[0].base;
  op.num_inputs = 1;
  op.outputs = &outputs[0].base;
  op.num_outputs = 1;
  hal_dispatch_args d{};
  d.struct_size = sizeof(d);
  d.stream = stream;
  d.op = &op;
  ASSERT_EQ(take(api_->stream_dispatch(&d)), "");

  float out[4] = {};
  NewerCopy down{};
  down.base.struct_size = sizeof(down);
  down.base.stream = stream;
  down.base.src_buffer = y;
  down.base.dst_host = out;
  down.base.size_bytes = 16;
  ASSERT_EQ(take(api_->stream_copy(&down.base)), "");
  ASSERT_EQ(take(api_->stream_synchronize(stream)), "");
  EXPECT_EQ(out[0], 2.0f);
  EXPECT_EQ(out[1], -7.0f);
  EXPECT_EQ(out[3], 0.5f);

  api_->stream_destroy(stream);
  api_->buffer_free(x);
  api_->buffer_free(y);
}

TEST_F(PluginAsSeenByOtherHosts, RecordsIntoAnOlderHostsShorterRecords) {
  hal_stream_create_args sc{};
  sc.struct_size = sizeof(sc);
  sc.device = device_;
  sc.flags = HAL_STREAM_FLAG_RECORD_COMMANDS;
  ASSERT_EQ(take(api_->stream_create(&sc)), "");
  hal_buffer_allocate_args a{};
  a.struct_size = sizeof(a);
  a.device = device_;
  a.size_bytes = 64;
  ASSERT_EQ(take(api_->buffer_allocate(&a)), "");
  for (uint64_t tag = 1; tag <= 2; ++tag) {
    hal_fill_args f{};
    f.struct_size = sizeof(f);
    f.stream = sc.stream;
    f.buffer = a.buffer;
    f.size_bytes = 64;
    f.pattern_size = 1;
    f.tag = tag;
    ASSERT_EQ(take(api_->stream_fill(&f)), "");
  }
  ASSERT_EQ(take(api_->stream_synchronize(sc.stream)), "");
  // An older host whose record ends right after `bound` (the 1.0 record).
  const size_t record_size = offsetof(hal_command_record, bound) + sizeof(hal_bound_by);
  std::vector<uint8_t> storage(record_size * 2 + 8, kGuard);
  size_t count = 0;
  ASSERT_EQ(take(api_->stream_take_records(sc.stream,
                                           reinterpret_cast<hal_command_record*>(storage.data()),
                                           record_size, 2, &count)),
            "");
  ASSERT_EQ(count, 2u);
  hal_command_record second;
  std::memcpy(&second, storage.data() + record_size, record_size);
  EXPECT_EQ(second.tag, 2u);
  EXPECT_EQ(second.command, HAL_COMMAND_FILL);
  EXPECT_LE(second.struct_size, record_size);
  for (size_t i = record_size * 2; i < storage.size(); ++i) ASSERT_EQ(storage[i], kGuard);
  api_->stream_destroy(sc.stream);
  api_->buffer_free(a.buffer);
}

}  // namespace
