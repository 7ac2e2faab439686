// Fuzzes the simulated NPU's spec-file parser (parse_spec) and what is built on an
// accepted spec. Properties (npu_spec.h: "a parsed DeviceSpec is fully validated and
// self-consistent; the performance model and the plugin rely on that"): never crashes,
// throws or aborts; an accepted spec has positive engines, clock, bandwidths and
// capacity, a reservation below the capacity and efficiencies in (0, 1]; the performance
// model gives every command a finite, non-negative duration.
#include <cmath>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "hal/op.h"
#include "npu_perf_model.h"
#include "npu_spec.h"

using namespace hal;
using namespace hal::npu_sim;

namespace {

void check_cost(const CommandCost& c, const std::string& what) {
  FUZZ_CHECK(std::isfinite(c.duration_s) && c.duration_s >= 0, what + " duration");
}

OpSpec matmul(int64_t m, int64_t k, int64_t n) {
  OpSpec s;
  s.kind = OpKind::kMatmul;
  s.num_inputs = 2;
  s.inputs[0] = TensorDesc::contiguous(DType::kBF16, {m, k});
  s.inputs[1] = TensorDesc::contiguous(DType::kBF16, {k, n});
  s.output = TensorDesc::contiguous(DType::kBF16, {m, n});
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_spec(text, "spec file fuzz.json");
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty(), "errors say what was wrong");
    return 0;
  }
  const DeviceSpec& s = *parsed;
  FUZZ_CHECK(s.dies_per_card >= 1 && s.chiplets >= 1 && s.neural_engines >= 1, s.origin);
  FUZZ_CHECK(s.clock_hz > 0 && std::isfinite(s.clock_hz), "clock");
  FUZZ_CHECK(s.memory_bytes > 0 && s.memory_reserved_bytes < s.memory_bytes, "capacity");
  FUZZ_CHECK(s.memory_bandwidth_bytes_per_s > 0 && std::isfinite(s.memory_bandwidth_bytes_per_s),
             "memory bandwidth");
  FUZZ_CHECK(s.memory_efficiency > 0 && s.memory_efficiency <= 1, "memory efficiency");
  FUZZ_CHECK(s.sram_usable_fraction > 0 && s.sram_usable_fraction <= 1, "sram fraction");
  (void)s.tunable_keys();

  const PerfModel model(s);
  check_cost(model.fill(1 << 20), "fill");
  check_cost(model.copy_on_device(1 << 20), "copy on device");
  check_cost(model.copy_host_to_device(1 << 20), "copy to device");
  check_cost(model.copy_device_to_host(1 << 20), "copy to host");
  check_cost(PerfModel::copy_peer(1 << 20, s, s, s.peer_link.present), "peer copy");
  for (auto [m, k, n] : {std::array<int64_t, 3>{1, 4096, 4096}, {512, 768, 2304}, {7, 3, 5}})
    check_cost(model.op(matmul(m, k, n)), "matmul");
  return 0;
}
