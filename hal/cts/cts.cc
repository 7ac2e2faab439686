// The CTS runner: builds the case list for a device, applies the filter, runs each case
// under a watchdog and a leak check, and formats the report (see hal/cts.h).
#include "hal/cts.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "cts_internal.h"
#include "hal/units.h"

namespace hal::cts {

namespace detail {

bool Context::accepts(MemoryKind kind) const {
  for (MemoryKind k : accepted_kinds)
    if (k == kind) return true;
  return false;
}

std::mt19937_64 Context::rng(std::string_view salt) const {
  // FNV-1a of the salt mixed with the seed: stable across runs and platforms.
  uint64_t h = 1469598103934665603ull ^ seed;
  for (char c : salt) h = (h ^ uint8_t(c)) * 1099511628211ull;
  return std::mt19937_64(h);
}

std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = uint8_t(rng() >> 24);
  return out;
}

Status upload(Stream& stream, const Buffer& buffer, uint64_t offset, const void* data, uint64_t n) {
  HAL_RETURN_IF_ERROR(stream.copy_from_host(data, buffer, offset, n));
  return stream.synchronize();
}

Status download(Stream& stream, const Buffer& buffer, uint64_t offset, void* data, uint64_t n) {
  HAL_RETURN_IF_ERROR(stream.copy_to_host(buffer, offset, data, n));
  return stream.synchronize();
}

Result<std::vector<uint8_t>> read_all(Stream& stream, const Buffer& buffer) {
  std::vector<uint8_t> out(buffer.size());
  HAL_RETURN_IF_ERROR(download(stream, buffer, 0, out.data(), out.size()));
  return out;
}

std::string compare_bytes(const uint8_t* got, const uint8_t* want, size_t n, uint64_t base_offset) {
  for (size_t i = 0; i < n; ++i) {
    if (got[i] != want[i]) {
      char buf[128];
      std::snprintf(buf, sizeof(buf), "byte %llu: got 0x%02x, want 0x%02x",
                    static_cast<unsigned long long>(base_offset + i), got[i], want[i]);
      return buf;
    }
  }
  return "";
}

std::string code_name(const Status& s) { return std::string(status_code_name(s.code())); }

Result<OpSpec> make_spec(OpKind kind, const OpAttributes& attrs,
                         const std::vector<TensorDesc>& inputs, DType out_dtype) {
  OpSpec spec;
  spec.kind = kind;
  spec.attrs = attrs;
  spec.num_inputs = int32_t(inputs.size());
  for (size_t i = 0; i < inputs.size() && i < size_t(kMaxOpInputs); ++i) spec.inputs[i] = inputs[i];
  HAL_ASSIGN_OR_RETURN(TensorDesc out,
                       infer_output(kind, attrs, spec.inputs.data(), spec.num_inputs));
  spec.output =
      TensorDesc::contiguous(out_dtype == DType::kInvalid ? out.dtype : out_dtype, out.shape);
  return spec;
}

std::string describe(const OpSpec& s) {
  std::string out = std::string(op_kind_name(s.kind)) + "(";
  for (int i = 0; i < s.num_inputs; ++i) out += (i ? ", " : "") + s.inputs[i].to_string();
  return out + ") -> " + s.output.to_string();
}

}  // namespace detail

using detail::Case;
using detail::Context;
using detail::Verdict;

std::string_view outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPass:
      return "pass";
    case Outcome::kFail:
      return "fail";
    case Outcome::kSkip:
      return "skip";
  }
  return "unknown";
}

Summary Report::summary() const {
  Summary s;
  for (const CaseResult& c : cases) {
    if (c.outcome == Outcome::kPass) ++s.passed;
    if (c.outcome == Outcome::kFail) ++s.failed;
    if (c.outcome == Outcome::kSkip) ++s.skipped;
  }
  return s;
}

namespace {

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative '*' backtracking: linear enough for case names.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::shared_ptr<Context> make_context(Platform& platform, Device& device, const Options& options) {
  auto ctx = std::shared_ptr<Context>(
      new Context{platform, device, {}, {}, {}, {}, options.seed, options.wait_probe_s});
  std::set<std::string> other_backends;
  for (Device* d : platform.devices()) {
    if (d == &device) continue;
    if (d->info().backend == device.info().backend) {
      ctx->same_plugin_peers.push_back(d);
    } else if (other_backends.insert(d->info().backend).second) {
      ctx->other_plugin_devices.push_back(d);
    }
  }
  for (MemoryKind kind : {MemoryKind::kDevice, MemoryKind::kHostPinned, MemoryKind::kHostVisible,
                          MemoryKind::kVirtual}) {
    Result<Buffer> b = device.allocate(4096, kind);
    if (b.ok()) {
      ctx->accepted_kinds.push_back(kind);
    } else {
      ctx->refused_kinds[kind] = b.status().to_string();
    }
  }
  return ctx;
}

std::vector<Case> build_cases(const Context& ctx, const Options& options) {
  std::vector<Case> all;
  detail::add_memory_cases(ctx, all);
  detail::add_stream_cases(ctx, all);
  detail::add_op_cases(ctx, all);
  detail::add_channel_cases(ctx, all);
  detail::add_executable_cases(ctx, all);
  std::vector<Case> selected;
  for (Case& c : all)
    if (matches_filter(c.name, options.filter)) selected.push_back(std::move(c));
  return selected;
}

struct LeakProbe {
  bool ok = false;
  MemoryStats stats;
};
LeakProbe probe_stats(const Device& device) {
  LeakProbe p;
  Result<MemoryStats> s = device.memory_stats();
  if (s.ok()) {
    p.ok = true;
    p.stats = *s;
  }
  return p;
}

// Runs one case on a worker thread; returns false when it did not finish in time.
bool run_with_watchdog(const std::shared_ptr<Context>& ctx, const Case& c, double timeout_s,
                       Verdict* verdict) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Verdict verdict;
  };
  auto shared = std::make_shared<Shared>();
  std::thread worker([ctx, fn = c.fn, shared] {
    Verdict v;
    try {
      v = fn(*ctx);
    } catch (const std::exception& e) {
      v = detail::fail(std::string("the case threw: ") + e.what());
    } catch (...) {
      v = detail::fail("the case threw an unknown exception");
    }
    std::lock_guard<std::mutex> lock(shared->mu);
    shared->verdict = std::move(v);
    shared->done = true;
    shared->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(shared->mu);
  const bool finished = shared->cv.wait_for(lock, std::chrono::duration<double>(timeout_s),
                                            [&] { return shared->done; });
  if (!finished) {
    lock.unlock();
    worker.detach();  // it still uses the device: the caller must not tear the platform down
    return false;
  }
  *verdict = std::move(shared->verdict);
  lock.unlock();
  worker.join();
  return true;
}

}  // namespace

bool matches_filter(std::string_view name, std::string_view filter) {
  bool any_positive = false, positive_hit = false;
  size_t start = 0;
  while (start <= filter.size()) {
    size_t end = filter.find(',', start);
    if (end == std::string_view::npos) end = filter.size();
    std::string_view pat = filter.substr(start, end - start);
    while (!pat.empty() && pat.front() == ' ') pat.remove_prefix(1);
    while (!pat.empty() && pat.back() == ' ') pat.remove_suffix(1);
    if (!pat.empty()) {
      if (pat.front() == '-') {
        if (glob_match(pat.substr(1), name)) return false;
      } else {
        any_positive = true;
        positive_hit |= glob_match(pat, name);
      }
    }
    start = end + 1;
  }
  return !any_positive || positive_hit;
}

std::vector<std::string> list_cases(Platform& platform, Device& device, const Options& options) {
  auto ctx = make_context(platform, device, options);
  std::vector<std::string> names;
  for (const Case& c : build_cases(*ctx, options)) names.push_back(c.name);
  return names;
}

Report run(Platform& platform, Device& device, const Options& options) {
  Report report;
  report.device = device.id();
  report.backend = device.info().backend;
  auto ctx = make_context(platform, device, options);
  const LeakProbe suite_start = probe_stats(device);
  std::vector<Case> cases = build_cases(*ctx, options);

  for (const Case& c : cases) {
    CaseResult r;
    r.name = c.name;
    r.device = device.id();
    const LeakProbe before = probe_stats(device);
    const auto t0 = std::chrono::steady_clock::now();
    Verdict v;
    const bool finished = run_with_watchdog(ctx, c, options.case_timeout_s, &v);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!finished) {
      r.outcome = Outcome::kFail;
      r.reason = "hung: did not finish within " + format_seconds(options.case_timeout_s) +
                 " (an event or stream that never completes?); the suite stopped here";
      report.cases.push_back(r);
      if (options.on_case) options.on_case(r);
      report.hung = true;
      return report;
    }
    r.outcome = v.outcome;
    r.reason = std::move(v.reason);
    // Every case must give back all it allocated.
    const LeakProbe after = probe_stats(device);
    if (before.ok && after.ok && r.outcome != Outcome::kFail &&
        (after.stats.bytes_in_use != before.stats.bytes_in_use ||
         after.stats.allocation_count != before.stats.allocation_count)) {
      r.outcome = Outcome::kFail;
      r.reason = "allocator statistics did not return to their value before the case: " +
                 std::to_string(before.stats.bytes_in_use) + " -> " +
                 std::to_string(after.stats.bytes_in_use) + " bytes in use, " +
                 std::to_string(before.stats.allocation_count) + " -> " +
                 std::to_string(after.stats.allocation_count) + " live allocations" +
                 (r.reason.empty() ? "" : " (" + r.reason + ")");
    }
    report.cases.push_back(r);
    if (options.on_case) options.on_case(report.cases.back());
  }

  // The suite as a whole: statistics back at their starting point, and readable at all.
  if (matches_filter("alloc.stats.suite_end", options.filter)) {
    CaseResult r;
    r.name = "alloc.stats.suite_end";
    r.device = device.id();
    const LeakProbe end = probe_stats(device);
    if (!suite_start.ok || !end.ok) {
      r.outcome = Outcome::kFail;
      r.reason = "memory_stats() failed: " + device.memory_stats().status().to_string();
    } else if (end.stats.bytes_in_use != suite_start.stats.bytes_in_use ||
               end.stats.allocation_count != suite_start.stats.allocation_count) {
      r.outcome = Outcome::kFail;
      r.reason = "after the suite " + std::to_string(end.stats.bytes_in_use) + " bytes in " +
                 std::to_string(end.stats.allocation_count) + " allocations are in use (before: " +
                 std::to_string(suite_start.stats.bytes_in_use) + " in " +
                 std::to_string(suite_start.stats.allocation_count) + ")";
    }
    report.cases.push_back(r);
    if (options.on_case) options.on_case(r);
  }
  return report;
}

std::string format_text(const Report& report, bool verbose) {
  std::string out;
  for (const CaseResult& c : report.cases) {
    if (!verbose && c.outcome != Outcome::kFail) continue;
    out += std::string(
        c.outcome == Outcome::kFail ? "FAIL" : (c.outcome == Outcome::kSkip ? "skip" : "pass"));
    out += "  " + c.device + "  " + c.name;
    if (!c.reason.empty()) out += "\n        " + c.reason;
    out += "\n";
  }
  const Summary s = report.summary();
  out += report.device + " (" + report.backend + "): " + std::to_string(s.passed) + " passed, " +
         std::to_string(s.failed) + " failed, " + std::to_string(s.skipped) + " skipped of " +
         std::to_string(s.total()) + (report.hung ? " (stopped: a case hung)" : "") + "\n";
  return out;
}

std::vector<Capability> probe_capabilities(const Device& device) {
  std::vector<Capability> out;
  const DType floats[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kFP8E4M3, DType::kFP8E5M2};
  for (int k = 1; k < kOpKindCount; ++k) {
    const OpKind kind = OpKind(k);
    Capability cap;
    cap.op = kind;
    auto probe = [&](DType t) {
      auto d = [&](DType dt, Shape s) { return TensorDesc::contiguous(dt, s); };
      OpAttributes attrs;
      std::vector<TensorDesc> in;
      DType out_dtype = DType::kInvalid;
      switch (kind) {
        case OpKind::kMatmul:
          in = {d(t, {8, 16}), d(t, {16, 8})};
          break;
        case OpKind::kAdd:
        case OpKind::kMul:
          in = {d(t, {4, 8}), d(t, {4, 8})};
          break;
        case OpKind::kLayerNorm:
          in = {d(t, {4, 8}), d(t, {8}), d(t, {8})};
          break;
        case OpKind::kRmsNorm:
          in = {d(t, {4, 8}), d(t, {8})};
          break;
        case OpKind::kRotary:
          in = {d(t, {4, 2, 8}), d(DType::kI32, {4})};
          break;
        case OpKind::kAttention:
          in = {d(t, {1, 4, 2, 8}), d(t, {1, 4, 2, 8}), d(t, {1, 4, 2, 8})};
          break;
        case OpKind::kEmbedding:
          in = {d(t, {16, 8}), d(DType::kI32, {4})};
          break;
        case OpKind::kTranspose:
          in = {d(t, {4, 8})};
          attrs.perm = {1, 0, 2, 3, 4, 5, 6, 7};
          break;
        case OpKind::kCast:
          in = {d(t, {4, 8})};
          out_dtype = t == DType::kF32 ? DType::kF16 : DType::kF32;
          break;
        default:
          in = {d(t, {4, 8})};
          break;
      }
      auto spec = detail::make_spec(kind, attrs, in, out_dtype);
      if (spec.ok() && device.supports(*spec)) cap.dtypes.push_back(t);
    };
    for (DType t : floats) probe(t);
    if (kind == OpKind::kCast || kind == OpKind::kTranspose)
      for (DType t : {DType::kI32, DType::kI64, DType::kI8, DType::kU8}) probe(t);
    out.push_back(std::move(cap));
  }
  return out;
}

}  // namespace hal::cts
