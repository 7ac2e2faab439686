// backends/npu_sim/npu_device.h: the simulated NPU as HAL plugin classes: the system
// (the plugin instance: cards, devices, the shared simulated clock), devices, buffers,
// streams and events.
//
// Simulated time (README.md, "Simulated time"):
// - One epoch for the whole plugin, starting at 0 when it is created.
// - Each stream keeps a clock. A command becomes ready at max(stream clock, host fence
//   when it was enqueued) and occupies its engine (Lane) from the earliest free slot of
//   that engine's calendar: streams of one device contend for its neural engines; dies
//   of one card contend for the card's host link.
// - The host fence is the latest device time the host has observed (a stream or event
//   synchronize, an event query that found the event done): work enqueued afterwards
//   cannot start earlier, as on real hardware.
// - Events complete at the recording stream's clock; a stream that waits on an event
//   advances its clock to the event's time.
//
// Functional execution happens on each stream's worker thread in enqueue order, as on
// the CPU backend, unless the buffers lack storage (timing-only mode, virtual buffers).
//
// Lifetime: the system owns cards and devices; buffers, streams and events are owned by
// the host (deleted through the adapter) and must go before the system.
//
// Threading: all classes are thread-safe. Calendars and counters are guarded by the
// system's timeline mutex; memory by each device's accountants.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hal/plugin/host_queue_stream.h"
#include "hal/plugin/memory_accountant.h"
#include "hal/plugin_adapter.h"
#include "npu_command_gate.h"
#include "npu_config.h"
#include "npu_perf_model.h"
#include "npu_spec.h"
#include "npu_timeline.h"

namespace hal::npu_sim {

class NpuSystem;

// Totals of completed device commands.
struct WorkCounters {
  uint64_t commands = 0;
  uint64_t ops = 0;
  double flops = 0;
  uint64_t dram_bytes_read = 0;
  uint64_t dram_bytes_written = 0;
  uint64_t sram_bytes_read = 0;
  uint64_t sram_bytes_written = 0;
  uint64_t link_bytes = 0;
};

// Host memory that backs a buffer: zero-filled, aligned, freed on destruction.
class HostStorage {
 public:
  HostStorage() = default;
  ~HostStorage();
  HostStorage(HostStorage&& o) noexcept;
  HostStorage& operator=(HostStorage&& o) noexcept;
  HostStorage(const HostStorage&) = delete;
  HostStorage& operator=(const HostStorage&) = delete;

  static Result<HostStorage> allocate(uint64_t size, uint64_t alignment);
  char* data() const { return data_; }

 private:
  void release();
  char* data_ = nullptr;
  void* region_ = nullptr;  // what to free
  uint64_t region_size_ = 0;
  bool mapped_ = false;
};

// The engines one card shares between its dies: the host link, per direction.
struct Card {
  BusyCalendar host_in;
  BusyCalendar host_out;
};

class NpuDevice : public plugin::DeviceImpl {
 public:
  NpuDevice(NpuSystem* system, uint32_t index, uint32_t card_index, uint32_t die, Card* card,
            DeviceSpec spec, bool timing_only);
  ~NpuDevice() override;

  // DeviceImpl
  const DeviceInfo& info() const override { return info_; }
  bool supports(const OpSpec& spec) const override;
  Result<std::unique_ptr<plugin::BufferImpl>> allocate(uint64_t size, MemoryKind kind,
                                                       uint64_t alignment) override;
  Result<std::unique_ptr<plugin::StreamImpl>> create_stream(uint32_t flags) override;
  Result<std::unique_ptr<plugin::EventImpl>> create_event() override;
  MemoryStats memory_stats() const override;
  Result<Telemetry> telemetry() const override;
  // npu_collectives.cc
  Result<std::unique_ptr<plugin::ChannelImpl>> create_channel(
      const plugin::ChannelConfig& config) override;
  // Executables (npu_executable.cc; the compiler is npu_compiler.h).
  Result<Partition> partition(const GraphView& view) const override;
  Result<std::unique_ptr<plugin::ExecutableImpl>> compile(const GraphView& view,
                                                          const CompileOptions& options) override;
  Result<std::unique_ptr<plugin::ExecutableImpl>> deserialize(
      std::span<const uint8_t> payload) override;
  // The preset and every figure the compiler and the performance model read.
  std::string fingerprint() const override;

  // Simulator internals.
  NpuSystem& system() const { return *system_; }
  const DeviceSpec& spec() const { return spec_; }
  const PerfModel& model() const { return model_; }
  uint32_t index() const { return index_; }
  uint32_t card_index() const { return card_index_; }
  bool timing_only() const { return timing_only_; }
  bool has_peer_link_to(const NpuDevice& other) const;
  // Adds peer links to `siblings` (other dies of the card) and freezes info().
  void finish_info(const std::vector<NpuDevice*>& all_devices);

  // The fault-injection seam (npu_command_gate.h): numbers the ticket and asks the gate.
  Status admit(CommandTicket& ticket);
  void set_command_gate(std::shared_ptr<CommandGate> gate);

  // Guarded by the system's timeline mutex.
  BusyCalendar& lane(Lane lane);
  WorkCounters& counters() { return counters_; }
  uint64_t horizon_ns() const;  // latest booked end on any of this device's lanes

  void release(MemoryKind kind, uint64_t size);

 private:
  NpuSystem* system_;
  uint32_t index_;
  uint32_t card_index_;
  uint32_t die_;
  Card* card_;
  DeviceSpec spec_;
  PerfModel model_;
  bool timing_only_;
  DeviceInfo info_;

  plugin::MemoryAccountant device_memory_;
  plugin::MemoryAccountant host_memory_;
  mutable std::mutex stats_mu_;  // combined statistics over both accountants
  MemoryStats stats_;

  std::mutex gate_mu_;
  std::shared_ptr<CommandGate> gate_;
  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> admitted_ops_{0};

  BusyCalendar compute_;
  BusyCalendar peer_out_;
  WorkCounters counters_;
};

class NpuBuffer : public plugin::BufferImpl {
 public:
  NpuBuffer(NpuDevice* device, uint64_t size, MemoryKind kind, HostStorage storage)
      : BufferImpl(device, size, kind), storage_(std::move(storage)) {}
  ~NpuBuffer() override { static_cast<NpuDevice*>(device())->release(kind(), size()); }
  Result<void*> map() override;
  // Host memory behind the buffer; nullptr when it has none (timing-only, virtual).
  char* data() const { return storage_.data(); }

 private:
  HostStorage storage_;
};

// An event: completion generations (HostEvent) carrying simulated timestamps; waits
// and queries tell the system the host observed that time.
class NpuEvent : public plugin::HostEvent {
 public:
  explicit NpuEvent(NpuSystem* system) : system_(system) {}
  Status synchronize() override;
  Result<bool> query() override;

 private:
  NpuSystem* system_;
};

// A stream: the kit's host-queue stream (in-order worker, events, host functions,
// records) with simulated time: events complete at the stream's clock, waits advance it.
class NpuStream : public plugin::HostQueueStream {
 public:
  NpuStream(NpuDevice* device, uint32_t flags);
  ~NpuStream() override;

  Status copy(const plugin::CopyCall& call) override;
  Status fill(const plugin::FillCall& call) override;
  Status dispatch(const plugin::OpCall& op, uint64_t tag) override;
  // One execution of a compiled graph (npu_executable.cc): every node passes the command
  // gate as an op, runs with the op-by-op numerics, and the plan's timing is booked as
  // one command with one record per fused group.
  Status execute(const plugin::ExecuteCall& call, uint64_t tag) override;
  Status synchronize() override;  // also tells the system the host observed the clock
  Status collective(const plugin::CollectiveCall& call) override;  // npu_collectives.cc

  NpuDevice& device() const { return *device_; }
  uint64_t clock_ns() const { return clock_ns_.load(); }
  // Totals of this stream's completed commands (guarded by the timeline mutex).
  WorkCounters counters() const;

 private:
  // Lanes a command occupies: one calendar, or two booked together (staged peer copy).
  struct Booking {
    BusyCalendar* first = nullptr;
    BusyCalendar* second = nullptr;
  };
  // Who to credit device-memory traffic to (peer copies have two ends).
  struct Attribution {
    NpuDevice* read_device = nullptr;
    NpuDevice* write_device = nullptr;
  };
  // Gate, then `work` (functional execution), then booking, counters and the record.
  Status run_command(CommandTicket ticket, const CommandCost& cost, Booking booking,
                     Attribution attribution, uint64_t not_before,
                     const std::function<Status()>& work);
  // Books `duration_ns` on the lanes from the stream's ready time and credits `cost` to
  // the counters (`ops` dispatched ops); returns the booked [start, end).
  std::pair<uint64_t, uint64_t> book(const CommandCost& cost, uint64_t duration_ns, Booking booking,
                                     Attribution attribution, uint64_t not_before, uint64_t ops);
  uint64_t ready_time(uint64_t not_before);
  Status run_collective(const plugin::CollectiveCall& call, uint64_t not_before);

  // HostQueueStream's clock hooks: the host fence, the stream clock.
  uint64_t enqueue_fence_ns() override;
  uint64_t event_time_ns(uint64_t fence_ns) override;
  void on_event_waited(uint64_t event_time_ns) override;

  NpuDevice* device_;
  std::atomic<uint64_t> clock_ns_;
  WorkCounters counters_;
};

class NpuSystem : public plugin::PluginImpl {
 public:
  static Result<std::unique_ptr<NpuSystem>> create(const SimConfig& config);
  ~NpuSystem() override;

  uint32_t device_count() const override { return uint32_t(devices_.size()); }
  plugin::DeviceImpl* device(uint32_t index) override { return devices_[index].get(); }
  // HAL_EXTENSION_TYPE_NPU_SIM_COUNTERS (hal_npu_sim/npu_sim_ext.h, npu_counters_ext.cc);
  // no other extension.
  const hal_extension_header* extension(uint32_t type) const override;
  NpuDevice* npu(uint32_t index) const { return devices_[index].get(); }
  const SimConfig& config() const { return config_; }

  std::mutex& timeline_mutex() { return timeline_mu_; }
  // The latest simulated time the host has observed (see npu_device.h's top comment).
  uint64_t host_fence() const { return host_fence_.load(); }
  void observe(uint64_t time_ns);

 private:
  explicit NpuSystem(SimConfig config) : config_(std::move(config)) {}

  SimConfig config_;
  std::vector<std::unique_ptr<Card>> cards_;
  std::vector<std::unique_ptr<NpuDevice>> devices_;
  std::mutex timeline_mu_;
  std::atomic<uint64_t> host_fence_{0};
};

// Registry of live objects, so the extension entry points (hal_npu_sim/npu_sim_ext.h)
// can refuse handles that are not ours.
bool is_live_device(const void* device);
bool is_live_stream(const void* stream);
void set_stream_live(const void* stream, bool live);

}  // namespace hal::npu_sim
