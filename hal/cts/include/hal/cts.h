// hal/cts.h: the conformance test suite (CTS): one suite that any device, from any
// plugin, must pass to be a HAL device. `halctl cts` and ctest run it; a backend author
// can also link hal::cts and call run() from a test of their own.
//
// What it checks (case names start with the group):
//   buffer.*  allocation of every memory kind the device accepts, zero-size buffers,
//             alignment, map() rules, out-of-memory as a status
//   alloc.*   allocator statistics (in use, peak, counts) rise and return to their
//             baseline; every case is also checked for leaks on its own
//   copy.*    host<->device and device<->device copies of many sizes (0, 1, odd, large)
//             at unaligned offsets, between memory kinds, to peer devices of the same
//             plugin and, staged through the host, to devices of other plugins
//   fill.*    1/2/4/8-byte patterns at aligned and unaligned offsets
//   stream.*  in-order execution, enqueue from several threads, host functions,
//             destruction waits for work
//   event.*   record/query/synchronize, timestamps, waits across streams, devices and
//             plugins
//   record.*  per-command accounting records (tags, kinds, FLOPs of ops)
//   error.*   out-of-bounds copies and fills, malformed ops, unknown op kinds,
//             unsupported ops, a failing command and the stream's recovery
//   op.*      every op of hal/op.h in f32/f16/bf16 (and casts) on a set of shapes,
//             including strided views and offsets, compared with hal::reference::execute
//             within per-op, per-dtype tolerances; bytes outside the output view must
//             stay untouched
//   executable.* (ABI 1.2) on a small f32 block (matmul + bias, gelu, matmul, residual
//             add, layer norm, a write into a state at a symbolic position, a scale):
//             partition answers consistent with supports_op (every node taken is one
//             it supports, declined nodes have reasons, units are convex); compile then
//             execute equals the device's own op-by-op dispatch of the same nodes at two
//             symbol values (within 1e-5 + 1e-4|x|, or the device's
//             "cts.tolerance.executable"); info and records add up (every node in one
//             fused group, group records partition the execution record); serialize /
//             load round trip gives the same bytes; a modified blob and one with another
//             device's key are refused; missing or too-small bindings and symbols out of
//             range are refused. Devices that compile nothing skip them.
//
// Capabilities decide what runs: an op case runs only when Device::supports() accepts
// it, a memory kind only when the device accepts allocations of it, host-function and
// cross-device cases only when the plugin and the platform offer them. Cases that do not
// apply are reported as skipped with the reason, never as failed.
//
// Tolerances: each op case compares |got - want| <= atol + rtol * |want| with a default
// per op and output dtype (documented in backends/template/README.md). A device whose
// arithmetic is documented to be coarser (e.g. bf16 accumulation) may declare its own
// bound with a property "cts.tolerance.<op>.<dtype>" or "cts.tolerance.<op>" whose
// value is "<atol>,<rtol>"; the case then says it used the device's tolerance.
//
// Contract
// - run() uses only the public HAL API. It needs the Platform for peer devices; other
//   devices of the platform are used as peers, never as devices under test.
// - Every case runs under a watchdog (Options::case_timeout_s). A case that does not
//   finish in time is reported as failed ("hung") and the suite stops: the hung work
//   still references the device, so the caller must not destroy the Platform afterwards
//   (Report::hung tells; halctl then exits without tearing down).
// - Results are deterministic for a given Options::seed.
//
// Threading: run() blocks; it may be called for different devices from different
// threads only if the devices' plugins allow concurrent use (all in-tree ones do).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "hal/device.h"
#include "hal/platform.h"

namespace hal::cts {

enum class Outcome : int32_t { kPass = 0, kFail = 1, kSkip = 2 };
std::string_view outcome_name(Outcome outcome);  // "pass", "fail", "skip"

struct CaseResult {
  std::string name;    // "copy.h2d_d2h.size_4097.offset_3"
  std::string device;  // "cpu:0"
  Outcome outcome = Outcome::kPass;
  std::string reason;  // why it failed or was skipped; for a pass, an optional note
  double seconds = 0;  // wall time of the case (informational)
};

struct Summary {
  int passed = 0;
  int failed = 0;
  int skipped = 0;
  int total() const { return passed + failed + skipped; }
};

struct Report {
  std::string device;   // the device under test
  std::string backend;  // its plugin
  std::vector<CaseResult> cases;
  bool hung = false;  // a case hung; the suite stopped (see the contract above)

  Summary summary() const;
  bool ok() const { return summary().failed == 0 && !hung; }
};

struct Options {
  // Comma-separated glob patterns ('*', '?') over case names; a pattern starting with
  // '-' excludes. Empty runs every case. "op.matmul.*,-*.bf16.*" runs the matmul cases
  // except bf16 ones.
  std::string filter;
  // Seed of the random test data.
  uint64_t seed = 20240601;
  // A case still running after this many seconds is reported as hung.
  double case_timeout_s = 120;
  // How long event-wait cases watch for work that runs before the event it waits for
  // completed. A correct device makes every such case take this long; a larger value
  // also catches broken devices that are slow to show it.
  double wait_probe_s = 0.05;
  // Called after each case finished (progress output); may be empty.
  std::function<void(const CaseResult&)> on_case;
};

// True when `name` is selected by `filter` (see Options::filter).
bool matches_filter(std::string_view name, std::string_view filter);

// The names of the cases run() would run for `device` with `options` (filter applied).
std::vector<std::string> list_cases(Platform& platform, Device& device,
                                    const Options& options = {});

// Runs the suite on `device`.
Report run(Platform& platform, Device& device, const Options& options = {});

// Human-readable report: one line per failed case (and per skipped or passed case
// when `verbose`), then the summary.
std::string format_text(const Report& report, bool verbose);

// Which dtypes a device accepts for each op, probed with Device::supports on one
// representative dense shape per op (f32/f16/bf16; casts by source dtype to f32).
struct Capability {
  OpKind op = OpKind::kInvalid;
  std::vector<DType> dtypes;
};
std::vector<Capability> probe_capabilities(const Device& device);

}  // namespace hal::cts
