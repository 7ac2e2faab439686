// backends/npu_sim/npu_perf_model.h: the performance model that gives every command of
// a simulated NPU its duration in simulated time and the traffic it causes.
//
// What it models (README.md, "Performance model", states each assumption and source):
// - Matrix engines (matmul, the QK^T and PV halves of attention) at the operand dtype's
//   peak, derated by utilisation of the MAC arrays (M and N rounded up to the array's
//   rows and columns) and of the engines (output tiles spread over them).
// - The vector unit (norms, softmax, activations, rotary, elementwise, data movement) at
//   `vector_flops`.
// - SRAM tiling: operands staged through the software-managed scratchpads, double
//   buffered. Matmul keeps A or B resident when it fits, else tiles the output and
//   re-reads A once per column tile and B once per row tile; attention streams K/V per
//   block of queries and re-reads them when a query block does not fit. Device-memory
//   traffic is therefore >= hal::analytic_cost's minimum, equal when everything fits.
// - DMA overlapping compute: duration = overhead + max(compute, SRAM, DRAM, die-to-die)
//   + pipeline fill/drain (first burst in, last burst out).
// - Host-link and peer-link copies: latency + bytes / link bandwidth.
//
// Contract: pure functions of (DeviceSpec, OpSpec or sizes); deterministic; never
// fail for a validated op. Durations are >= max(FLOPs / peak, bytes / peak bandwidth).
//
// Threading: PerfModel is immutable after construction; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "hal/command_record.h"
#include "hal/op.h"
#include "npu_spec.h"

namespace hal::npu_sim {

// The engine of a device (or of its card) that a command occupies.
enum class Lane : int32_t {
  kCompute = 0,  // neural engines + their DMA: ops, fills, on-device copies
  kHostIn = 1,   // host -> device DMA (External HDMA), per card
  kHostOut = 2,  // device -> host DMA, per card
  kPeerOut = 3,  // device -> peer device DMA (Device HDMA)
};
inline constexpr int kLaneCount = 4;

// How a matmul was staged through SRAM.
enum class MatmulStaging : int32_t { kResidentA = 0, kResidentB = 1, kTiled = 2 };
std::string_view matmul_staging_name(MatmulStaging s);  // "resident_a", "resident_b", "tiled"

struct CommandCost {
  double duration_s = 0;  // engine occupancy in simulated time
  double flops = 0;       // hal::analytic_cost's FLOPs for ops
  uint64_t dram_bytes_read = 0;
  uint64_t dram_bytes_written = 0;
  uint64_t sram_bytes_read = 0;
  uint64_t sram_bytes_written = 0;
  uint64_t link_bytes = 0;
  BoundBy bound = BoundBy::kUnknown;
  // Breakdown (seconds), for reports and tests.
  double overhead_s = 0;
  double compute_s = 0;    // matrix / vector engines, at their derated rate
  double sram_s = 0;       // engine <-> SRAM traffic at SRAM bandwidth
  double memory_s = 0;     // device-memory traffic at sustained bandwidth
  double link_s = 0;       // host/peer/die-to-die link time
  double fill_s = 0;       // pipeline fill and drain
  double utilization = 1;  // matrix-engine utilisation used (1 for vector ops)
  // Matmul staging (and attention: passes over K/V per query block).
  MatmulStaging staging = MatmulStaging::kResidentA;
  int64_t tile_m = 0, tile_n = 0;
  int64_t kv_passes = 0;
  // Ops: the device-memory bytes read for each input (re-reads included), so a compiler
  // that keeps an operand on chip can take its share out (npu_compiler.h). They add up to
  // dram_bytes_read. b_rereads: how often a matmul's B is read (1 when it streams once).
  std::array<double, kMaxOpInputs> input_dram_bytes{};
  double b_rereads = 1;
};

class PerfModel {
 public:
  explicit PerfModel(const DeviceSpec& spec);
  const DeviceSpec& spec() const { return spec_; }

  CommandCost op(const OpSpec& spec) const;
  CommandCost fill(uint64_t bytes) const;
  CommandCost copy_on_device(uint64_t bytes) const;
  CommandCost copy_host_to_device(uint64_t bytes) const;
  CommandCost copy_device_to_host(uint64_t bytes) const;
  // Between two devices of the plugin: over `link` when present (a peer link), else
  // staged through the host over both devices' host links.
  static CommandCost copy_peer(uint64_t bytes, const DeviceSpec& src, const DeviceSpec& dst,
                               bool direct);

  // SRAM bytes the tiler may fill with operands (usable fraction of the total).
  double sram_budget() const;

 private:
  CommandCost matmul(const OpSpec& spec) const;
  CommandCost attention(const OpSpec& spec) const;
  CommandCost vector_op(const OpSpec& spec) const;
  // Adds overhead, fill and the max of the overlapped parts, and picks the bound.
  void finish(CommandCost& c) const;

  DeviceSpec spec_;
};

}  // namespace hal::npu_sim
