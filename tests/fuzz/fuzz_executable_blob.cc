// Fuzzes what a compiled executable loaded from disk goes through (a cache entry or a
// `halctl compile` artifact): the kit's blob envelope (hal/plugin/executable_blob.h) and
// the simulated NPU's payload inside it (a graph view, then the compiled plan;
// hal/graph_view.h, npu_compiler.h). An input is read both as a whole blob and as a bare
// payload. Properties: never crashes, throws or aborts; a blob is refused under any key but
// the one it carries; a decoded view validates; a plan check_plan accepts keeps every value
// inside its memory, and timing it gives a finite, non-negative time.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "fuzz_support.h"
#include "hal/graph_view.h"
#include "hal/plugin/executable_blob.h"
#include "npu_compiler.h"
#include "npu_spec.h"

using namespace hal;
using namespace hal::npu_sim;

namespace {

// The NPU payload: [u64 view bytes][view][plan] (NpuExecutable::serialize).
void check_npu_payload(std::span<const uint8_t> bytes) {
  if (bytes.size() < 8) return;
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > bytes.size() - 8) return;
  auto view = GraphView::decode(bytes.subspan(8, size_t(n)));
  if (!view.ok()) return;
  FUZZ_CHECK(view->validate().ok(), "a decoded view validates");
  static const DeviceSpec spec = *preset("atom");
  auto plan = CompiledPlan::decode(bytes.subspan(8 + size_t(n)));
  if (!plan.ok()) return;
  if (!check_plan(*plan, *view, spec).ok()) return;
  for (size_t v = 0; v < view->values.size(); ++v) {
    const uint64_t end = plan->offset[v] + view->values[v].desc.extent_bytes();
    if (plan->where[v] == Residency::kSram) FUZZ_CHECK(end <= plan->sram_image_bytes, "sram");
    if (plan->where[v] == Residency::kSpill) FUZZ_CHECK(end <= plan->scratch_bytes, "spill");
  }
  const PerfModel model(spec);
  const ExecutionTiming t = time_plan(*plan, *view, model, view->max_symbols());
  FUZZ_CHECK(std::isfinite(t.seconds) && t.seconds >= 0, "execution time");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  // The key the blob says it was compiled under (the seeds carry a real atom key).
  std::string carried;
  if (size >= 12 && std::memcmp(data, plugin::kExecutableBlobMagic, 8) == 0) {
    uint32_t key_size = 0;
    std::memcpy(&key_size, data + 8, 4);
    if (key_size <= size - 12) carried.assign(reinterpret_cast<const char*>(data + 12), key_size);
  }
  const std::string foreign = plugin::executable_key("npu_sim", "0.1.0", "atom-fuzz");
  FUZZ_CHECK(carried == foreign || !plugin::unwrap_blob(bytes, foreign).ok(),
             "a blob is refused under another key");
  // Under its own key the lengths and the checksum decide; what passes is a payload.
  if (auto payload = plugin::unwrap_blob(bytes, carried); payload.ok()) {
    FUZZ_CHECK(payload->size() <= size, "the payload lies inside the blob");
    check_npu_payload(*payload);
  }
  check_npu_payload(bytes);
  return 0;
}
