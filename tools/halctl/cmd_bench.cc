// halctl bench DEVICE: what a device achieves against its own peak figures: copy
// (halctl bench --model: the llama-bench-style model benchmark, cmd_bench_model.cc)
// bandwidth host<->device, within the device and to every other device, and matmul
// FLOP/s over a sweep of sizes and dtypes.
//
// Everything a device runs is timed with HAL events on that device's clock
// (Event::elapsed_seconds), so a simulated device reports simulated time. The one
// exception is a copy to a device of another plugin, which the HAL stages through host
// memory in a host function: it is timed on the host's clock and labelled so.
//
// On a simulated device (one that declares the property simulated=true or has a
// timing-only mode) matmul operands are virtual buffers: the simulator times the op
// without computing it, so big sizes take no host time. --timing-only forces this on
// (or off) for any device.
//
// --calibrate: instead of the sweep above, measures what the device reaches of its own
// peaks per op class (matrix: square and decode-shaped matmuls; vector: add, rms_norm,
// softmax; data: transpose and cast) over a range of sizes, fits efficiencies with
// hal::scheduler::fit_calibration (per class and size bucket, plus the per-op overhead)
// and stores them where hal::scheduler's CostModel (the scheduler, `halctl run`,
// `halctl plan --timing cost-model`) finds them: --calibration-dir, else
// $HAL_CALIBRATION_DIR, else ~/.cache/hal/calibration. --quick runs a small sweep.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include "common.h"
#include "hal/scheduler/calibration.h"
#include "hal/scheduler/cost_model.h"

namespace halctl {

namespace {

struct Timing {
  double seconds = 0;  // per repetition
  int reps = 0;
  std::string clock;  // "device" or "host"
};

struct BenchOptions {
  double min_time_s = 0.2;  // measured time per point (device clock)
  int min_reps = 2;
  int max_reps = 1000;
};

// Times `enqueue` (one repetition of the work, enqueued on `stream`) between two events
// on the device's clock: a warm-up, then repetitions until `min_time_s` is covered.
hal::Result<Timing> time_on_device(hal::Device& device, hal::Stream& stream,
                                   const std::function<hal::Status()>& enqueue,
                                   const BenchOptions& opt) {
  HAL_ASSIGN_OR_RETURN(hal::Event start, device.create_event());
  HAL_ASSIGN_OR_RETURN(hal::Event end, device.create_event());
  HAL_RETURN_IF_ERROR(enqueue());  // warm-up: first-touch, caches, lazy initialisation
  HAL_RETURN_IF_ERROR(stream.synchronize());
  int reps = opt.min_reps;
  for (;;) {
    HAL_RETURN_IF_ERROR(stream.record(start));
    for (int i = 0; i < reps; ++i) HAL_RETURN_IF_ERROR(enqueue());
    HAL_RETURN_IF_ERROR(stream.record(end));
    HAL_RETURN_IF_ERROR(stream.synchronize());
    HAL_ASSIGN_OR_RETURN(double elapsed, hal::Event::elapsed_seconds(start, end));
    if (elapsed >= opt.min_time_s || reps >= opt.max_reps)
      return Timing{elapsed / reps, reps, "device"};
    // Enough repetitions to cover min_time_s, with margin; at most 10x more per round.
    const double per_rep = std::max(elapsed / reps, 1e-9);
    reps = std::min({opt.max_reps, reps * 10, int(std::ceil(1.2 * opt.min_time_s / per_rep))});
  }
}

// The same on the host's clock (for work the HAL runs in host functions).
hal::Result<Timing> time_on_host(hal::Stream& stream, const std::function<hal::Status()>& enqueue,
                                 const BenchOptions& opt) {
  HAL_RETURN_IF_ERROR(enqueue());
  HAL_RETURN_IF_ERROR(stream.synchronize());
  int reps = opt.min_reps;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) HAL_RETURN_IF_ERROR(enqueue());
    HAL_RETURN_IF_ERROR(stream.synchronize());
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (elapsed >= opt.min_time_s || reps >= opt.max_reps)
      return Timing{elapsed / reps, reps, "host"};
    const double per_rep = std::max(elapsed / reps, 1e-9);
    reps = std::min({opt.max_reps, reps * 10, int(std::ceil(1.2 * opt.min_time_s / per_rep))});
  }
}

bool is_simulated(const hal::DeviceInfo& info) {
  const std::string s = info.property("simulated");
  return s == "true" || s == "1" || s == "yes" || !info.property("timing_only").empty();
}

double ratio(double achieved, double peak) { return peak > 0 ? achieved / peak : 0; }

// A 1.0 fill pattern for float dtypes, so matmuls run on ordinary numbers.
std::pair<uint64_t, uint32_t> one_pattern(hal::DType t) {
  switch (t) {
    case hal::DType::kF32:
      return {0x3f800000u, 4};
    case hal::DType::kF16:
      return {0x3c00u, 2};
    case hal::DType::kBF16:
      return {0x3f80u, 2};
    default:
      return {0, 1};
  }
}

struct Report {
  nlohmann::json copies = nlohmann::json::array();
  nlohmann::json matmul = nlohmann::json::array();
  nlohmann::json skipped = nlohmann::json::array();
  void skip(const std::string& what, const std::string& why) {
    skipped.push_back({{"what", what}, {"reason", why}});
  }
};

// Copies of each size: host -> device, device -> host, within the device.
void bench_copies(hal::Device& d, const std::vector<uint64_t>& sizes, const BenchOptions& opt,
                  Report& report) {
  const hal::DeviceInfo& info = d.info();
  const hal::LinkInfo host_link = d.platform().link(nullptr, &d);
  for (uint64_t size : sizes) {
    const std::string label = hal::format_bytes(size);
    if (info.memory_bytes && size > info.memory_bytes / 4) {
      report.skip("copies of " + label, "larger than a quarter of the device memory");
      continue;
    }
    auto stream = d.create_stream();
    auto a = d.allocate(size);
    auto b = d.allocate(size);
    if (!stream.ok() || !a.ok() || !b.ok()) {
      report.skip("copies of " + label, (!stream.ok() ? stream.status()
                                         : !a.ok()    ? a.status()
                                                      : b.status())
                                            .to_string());
      continue;
    }
    // Host memory for host<->device: the device's pinned memory when it has any.
    std::vector<uint8_t> pageable;
    void* host = nullptr;
    std::string host_kind = "pageable";
    hal::Buffer pinned;
    if (auto p = d.allocate(size, hal::MemoryKind::kHostPinned); p.ok()) {
      if (auto m = p->map(); m.ok()) {
        host = *m;
        host_kind = "host_pinned";
        pinned = std::move(*p);
      }
    }
    if (!host) {
      pageable.assign(size, 1);
      host = pageable.data();
    }
    std::memset(host, 1, size);
    struct Kind {
      const char* name;
      std::string to;
      std::function<hal::Status()> enqueue;
      double peak;
      uint64_t traffic;  // bytes moved through the resource `peak` describes
      std::string peak_of;
    };
    hal::Stream& s = *stream;
    const Kind kinds[] = {
        {"h2d", d.id(), [&] { return s.copy_from_host(host, *a, 0, size); },
         host_link.bandwidth_bytes_per_s, size, "host link (" + host_link.kind + ")"},
        {"d2h", "host", [&] { return s.copy_to_host(*a, 0, host, size); },
         host_link.bandwidth_bytes_per_s, size, "host link (" + host_link.kind + ")"},
        // Within the device every byte is read once and written once.
        {"d2d", d.id(), [&] { return s.copy(*a, 0, *b, 0, size); },
         info.memory_bandwidth_bytes_per_s, 2 * size, "device memory (read + write)"},
    };
    for (const Kind& k : kinds) {
      auto t = time_on_device(d, s, k.enqueue, opt);
      if (!t.ok()) {
        report.skip(std::string(k.name) + " " + label, t.status().to_string());
        continue;
      }
      const double bw = double(k.traffic) / t->seconds;
      report.copies.push_back({{"kind", k.name},
                               {"to", k.to},
                               {"host_memory", k.name == std::string("d2d") ? "" : host_kind},
                               {"bytes", size},
                               {"traffic_bytes", k.traffic},
                               {"seconds", t->seconds},
                               {"reps", t->reps},
                               {"clock", t->clock},
                               {"bytes_per_s", bw},
                               {"peak_bytes_per_s", k.peak},
                               {"peak_of", k.peak_of},
                               {"ratio", ratio(bw, k.peak)}});
    }
  }
}

// Device -> each peer: a peer copy within one plugin (device clock), staged through the
// host across plugins (host clock).
void bench_peers(hal::Device& d, const std::vector<hal::Device*>& peers,
                 const std::vector<uint64_t>& sizes, const BenchOptions& opt, Report& report) {
  for (hal::Device* peer : peers) {
    const hal::LinkInfo link = d.platform().link(&d, peer);
    const bool same_plugin = peer->info().backend == d.info().backend;
    for (uint64_t size : sizes) {
      const std::string what =
          "copy " + d.id() + " -> " + peer->id() + " " + hal::format_bytes(size);
      if ((d.info().memory_bytes && size > d.info().memory_bytes / 4) ||
          (peer->info().memory_bytes && size > peer->info().memory_bytes / 4)) {
        report.skip(what, "larger than a quarter of a device's memory");
        continue;
      }
      auto stream = d.create_stream();
      auto a = d.allocate(size);
      auto b = peer->allocate(size);
      if (!stream.ok() || !a.ok() || !b.ok()) {
        report.skip(what, (!stream.ok() ? stream.status()
                           : !a.ok()    ? a.status()
                                        : b.status())
                              .to_string());
        continue;
      }
      hal::Stream& s = *stream;
      auto enqueue = [&] { return s.copy(*a, 0, *b, 0, size); };
      auto t = same_plugin ? time_on_device(d, s, enqueue, opt) : time_on_host(s, enqueue, opt);
      if (!t.ok()) {
        report.skip(what, t.status().to_string());
        continue;
      }
      const double bw = double(size) / t->seconds;
      report.copies.push_back({{"kind", same_plugin ? "peer" : "staged"},
                               {"to", peer->id()},
                               {"host_memory", ""},
                               {"bytes", size},
                               {"traffic_bytes", size},
                               {"seconds", t->seconds},
                               {"reps", t->reps},
                               {"clock", t->clock},
                               {"bytes_per_s", bw},
                               {"peak_bytes_per_s", link.bandwidth_bytes_per_s},
                               {"peak_of", "link (" + link.kind + ")"},
                               {"ratio", ratio(bw, link.bandwidth_bytes_per_s)}});
    }
  }
}

void bench_matmul(hal::Device& d, const std::vector<uint64_t>& sizes,
                  const std::vector<hal::DType>& dtypes, bool timing_only, const BenchOptions& opt,
                  Report& report) {
  const hal::MemoryKind kind = timing_only ? hal::MemoryKind::kVirtual : hal::MemoryKind::kDevice;
  for (hal::DType t : dtypes) {
    const double peak = d.info().peak_flops_for(t);
    for (uint64_t n64 : sizes) {
      const int64_t n = int64_t(n64);
      const std::string what = fmt::format("matmul {} {}^3", hal::dtype_name(t), n);
      const uint64_t bytes = uint64_t(n) * uint64_t(n) * hal::dtype_size(t);
      auto stream = d.create_stream();
      auto a = d.allocate(bytes, kind);
      auto b = d.allocate(bytes, kind);
      auto c = d.allocate(bytes, kind);
      if (!stream.ok() || !a.ok() || !b.ok() || !c.ok()) {
        report.skip(what, (!stream.ok() ? stream.status()
                           : !a.ok()    ? a.status()
                           : !b.ok()    ? b.status()
                                        : c.status())
                              .to_string());
        continue;
      }
      hal::OpDescriptor op(
          hal::OpKind::kMatmul,
          {hal::TensorRef::contiguous(*a, t, {n, n}), hal::TensorRef::contiguous(*b, t, {n, n})},
          hal::TensorRef::contiguous(*c, t, {n, n}));
      if (!d.supports(op.spec())) {
        report.skip(what, "not supported by the device");
        continue;
      }
      hal::Stream& s = *stream;
      if (!timing_only) {
        const auto [pattern, width] = one_pattern(t);
        hal::Status st = s.fill(*a, 0, bytes, pattern, width);
        if (st.ok()) st = s.fill(*b, 0, bytes, pattern, width);
        if (st.ok()) st = s.synchronize();
        if (!st.ok()) {
          report.skip(what, st.to_string());
          continue;
        }
      }
      auto timing = time_on_device(
          d, s, [&] { return s.dispatch(op); }, opt);
      if (!timing.ok()) {
        report.skip(what, timing.status().to_string());
        continue;
      }
      const double flops = 2.0 * double(n) * double(n) * double(n);
      const double achieved = flops / timing->seconds;
      report.matmul.push_back({{"dtype", std::string(hal::dtype_name(t))},
                               {"m", n},
                               {"n", n},
                               {"k", n},
                               {"flops", flops},
                               {"seconds", timing->seconds},
                               {"reps", timing->reps},
                               {"clock", timing->clock},
                               {"timing_only", timing_only},
                               {"flops_per_s", achieved},
                               {"peak_flops_per_s", peak},
                               {"ratio", ratio(achieved, peak)}});
    }
  }
}

// ---- calibration ----------------------------------------------------------------------

struct CalibrationCase {
  std::string what;
  hal::OpKind kind;
  std::vector<hal::TensorDesc> inputs;
  hal::TensorDesc output;
  hal::OpAttributes attrs;
};

// The sweep: sizes chosen so small ops show the overhead-dominated regime and big ones
// the sustained rates, in every class the cost model distinguishes.
std::vector<CalibrationCase> calibration_cases(hal::DType t, bool quick) {
  using hal::TensorDesc;
  std::vector<CalibrationCase> cases;
  const std::vector<int64_t> square = quick ? std::vector<int64_t>{64, 256, 512}
                                            : std::vector<int64_t>{64, 128, 256, 512, 1024, 2048};
  for (int64_t n : square)
    cases.push_back({fmt::format("matmul {}^3", n),
                     hal::OpKind::kMatmul,
                     {TensorDesc::contiguous(t, {n, n}), TensorDesc::contiguous(t, {n, n})},
                     TensorDesc::contiguous(t, {n, n}),
                     {}});
  // Decode-shaped (one row against a weight): bound by streaming the weight.
  const std::vector<int64_t> skinny = quick ? std::vector<int64_t>{512, 1024, 2048}
                                            : std::vector<int64_t>{512, 1024, 2048, 4096, 8192};
  for (int64_t n : skinny)
    cases.push_back({fmt::format("matmul 1x{}x{}", n, n),
                     hal::OpKind::kMatmul,
                     {TensorDesc::contiguous(t, {1, n}), TensorDesc::contiguous(t, {n, n})},
                     TensorDesc::contiguous(t, {1, n}),
                     {}});
  const std::vector<int64_t> elems =
      quick ? std::vector<int64_t>{1 << 14, 1 << 18, 1 << 20}
            : std::vector<int64_t>{1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22};
  for (int64_t e : elems) {
    const int64_t cols = 1024, rows = std::max<int64_t>(1, e / cols);
    const TensorDesc x = TensorDesc::contiguous(t, {rows, cols});
    cases.push_back({fmt::format("add {}", e), hal::OpKind::kAdd, {x, x}, x, {}});
    cases.push_back({fmt::format("rms_norm {}x{}", rows, cols),
                     hal::OpKind::kRmsNorm,
                     {x, TensorDesc::contiguous(t, {cols})},
                     x,
                     {}});
    cases.push_back({fmt::format("softmax {}x{}", rows, cols), hal::OpKind::kSoftmax, {x}, x, {}});
    hal::OpAttributes tr;
    tr.perm = {1, 0, 2, 3, 4, 5, 6, 7};
    cases.push_back({fmt::format("transpose {}x{}", rows, cols),
                     hal::OpKind::kTranspose,
                     {x},
                     TensorDesc::contiguous(t, {cols, rows}),
                     tr});
    const hal::DType other = t == hal::DType::kF32 ? hal::DType::kBF16 : hal::DType::kF32;
    cases.push_back({fmt::format("cast {} {}->{}", e, hal::dtype_name(t), hal::dtype_name(other)),
                     hal::OpKind::kCast,
                     {x},
                     TensorDesc::contiguous(other, {rows, cols}),
                     {}});
  }
  return cases;
}

struct CalibrationRun {
  std::vector<hal::scheduler::CalibrationSample> samples;
  nlohmann::json measured = nlohmann::json::array();
};

void calibration_sweep(hal::Device& d, const std::vector<hal::DType>& dtypes, bool quick,
                       bool timing_only, const BenchOptions& opt, CalibrationRun& run,
                       Report& report) {
  const hal::MemoryKind kind = timing_only ? hal::MemoryKind::kVirtual : hal::MemoryKind::kDevice;
  auto stream = d.create_stream();
  if (!stream.ok()) {
    report.skip("calibration", stream.status().to_string());
    return;
  }
  hal::Stream& s = *stream;
  for (hal::DType t : dtypes) {
    for (const CalibrationCase& c : calibration_cases(t, quick)) {
      const std::string what = fmt::format("{} {}", c.what, hal::dtype_name(t));
      hal::OpSpec spec;
      spec.kind = c.kind;
      spec.attrs = c.attrs;
      spec.num_inputs = int32_t(c.inputs.size());
      for (size_t i = 0; i < c.inputs.size(); ++i) spec.inputs[i] = c.inputs[i];
      spec.output = c.output;
      if (!d.supports(spec)) {
        report.skip(what, "not supported by the device");
        continue;
      }
      std::vector<hal::Buffer> buffers;
      buffers.reserve(c.inputs.size() + 1);
      hal::Status st;
      auto make = [&](const hal::TensorDesc& desc) -> const hal::Buffer* {
        auto b = d.allocate(desc.bytes(), kind);
        if (!b.ok()) {
          st = b.status();
          return nullptr;
        }
        buffers.push_back(std::move(*b));
        hal::Buffer& buf = buffers.back();
        if (!timing_only) {
          // Ones: ordinary numbers for every op (no denormals, no NaN).
          const auto [pattern, width] = one_pattern(desc.dtype);
          if (width > 1) st = s.fill(buf, 0, desc.bytes(), pattern, width);
        }
        return &buf;
      };
      hal::OpDescriptor op;
      op.kind = c.kind;
      op.attrs = c.attrs;
      op.num_inputs = spec.num_inputs;
      for (size_t i = 0; i < c.inputs.size() && st.ok(); ++i)
        if (const hal::Buffer* b = make(c.inputs[i]))
          op.inputs[i] = hal::TensorRef{b, 0, c.inputs[i]};
      const hal::Buffer* out = st.ok() ? make(c.output) : nullptr;
      if (out) op.output = hal::TensorRef{out, 0, c.output};
      if (st.ok()) st = s.synchronize();
      if (!st.ok()) {
        report.skip(what, st.to_string());
        continue;
      }
      auto timing = time_on_device(
          d, s, [&] { return s.dispatch(op); }, opt);
      if (!timing.ok()) {
        report.skip(what, timing.status().to_string());
        continue;
      }
      const hal::OpCost cost = hal::analytic_cost(spec);
      hal::scheduler::CalibrationSample sample;
      sample.op_class = hal::op_class(c.kind);
      sample.dtype = t;
      sample.flops = cost.flops;
      sample.bytes = double(cost.bytes_read + cost.bytes_written);
      sample.seconds = timing->seconds;
      run.samples.push_back(sample);
      run.measured.push_back(
          {{"op", what},
           {"class", std::string(hal::scheduler::op_class_name(sample.op_class))},
           {"flops", sample.flops},
           {"bytes", sample.bytes},
           {"seconds", sample.seconds},
           {"reps", timing->reps}});
    }
  }
}

// Fits, stores and prints (or returns as JSON) the calibration of `d`.
int calibrate(hal::Device& d, const std::vector<hal::DType>& dtypes, bool quick, bool timing_only,
              const std::string& dir, const BenchOptions& opt, bool json) {
  Report report;
  CalibrationRun run;
  calibration_sweep(d, dtypes, quick, timing_only, opt, run, report);
  if (run.samples.empty()) {
    for (const auto& s : report.skipped)
      std::fprintf(stderr, "skipped: %s: %s\n", s["what"].get<std::string>().c_str(),
                   s["reason"].get<std::string>().c_str());
    return report_error("bench", hal::unimplemented(d.id() + ": no op of the calibration sweep "
                                                             "could be measured"));
  }
  // The per-op overhead stays the device's own figure: fitting it from the smallest ops
  // assumes no op beats its time at peak, which cache-resident ops on a CPU do.
  auto cal = hal::scheduler::fit_calibration(d.info(), run.samples);
  if (!cal.ok()) return report_error("bench", cal.status());
  cal->created_by = std::string("halctl bench --calibrate") + (quick ? " --quick" : "");
  const std::filesystem::path path = hal::scheduler::calibration_path(d.info(), dir);
  if (hal::Status st = hal::scheduler::save_calibration(*cal, path); !st.ok())
    return report_error("bench", st);
  // What a later run reads back: check that it does.
  auto found = hal::scheduler::find_calibration(d.info(), dir);
  if (!found.ok() || !*found)
    return report_error("bench", found.ok() ? hal::internal_error("calibration " + path.string() +
                                                                  " was written but not found")
                                            : found.status());
  // Which efficiencies were measured: a class whose samples are all bound by memory says
  // nothing about its compute efficiency (the fit keeps the default), and vice versa.
  std::array<std::array<int, 2>, hal::scheduler::kOpClassCount> bound_by{};
  {
    const hal::scheduler::DeviceCostModel peaks(d.info());
    for (const auto& smp : run.samples) {
      const auto& cc = cal->op_classes[size_t(smp.op_class)];
      if (!cc) continue;
      const double pf = peaks.peak_flops(smp.op_class, smp.dtype);
      const double pb = d.info().memory_bandwidth_bytes_per_s;
      const double tc = pf > 0 ? smp.flops / pf / cc->efficiency.compute : 0;
      const double tm = pb > 0 ? smp.bytes / pb / cc->efficiency.memory : 0;
      ++bound_by[size_t(smp.op_class)][tc >= tm && smp.flops > 0 ? 0 : 1];
    }
  }
  auto shown = [&](int c, int which, double v) {
    return bound_by[size_t(c)][size_t(which)] > 0 ? fmt::format("{:.3f}", v)
                                                  : fmt::format("({:.2f})", v);
  };
  if (json) {
    nlohmann::json measured = nlohmann::json::object();
    for (int c = 0; c < hal::scheduler::kOpClassCount; ++c)
      if (cal->op_classes[size_t(c)])
        measured[std::string(hal::scheduler::op_class_name(hal::OpClass(c)))] = {
            {"compute_bound_samples", bound_by[size_t(c)][0]},
            {"memory_bound_samples", bound_by[size_t(c)][1]}};
    print_json({{"device", d.id()},
                {"name", d.info().name},
                {"backend", d.info().backend},
                {"path", path.string()},
                {"calibration", nlohmann::json::parse(hal::scheduler::calibration_to_json(*cal))},
                {"samples", run.measured},
                {"bound_samples", measured},
                {"skipped", report.skipped}});
    return 0;
  }
  fmt::print("{}  {}: calibrated from {} measured ops ({})\n", d.id(), d.info().name,
             run.samples.size(), timing_only ? "simulated clock, timing-only" : "device clock");
  if (cal->launch_overhead_s)
    fmt::print("per-op overhead  {} (device reports {})\n",
               hal::format_seconds(*cal->launch_overhead_s),
               hal::format_seconds(d.info().launch_overhead_s));
  fmt::print("\n{:<8} {:>8} {:>9} {:>9}  {}\n", "CLASS", "SAMPLES", "COMPUTE", "MEMORY",
             "BY SIZE (time at peak: compute / memory efficiency)");
  for (int c = 0; c < hal::scheduler::kOpClassCount; ++c) {
    const auto& cc = cal->op_classes[size_t(c)];
    if (!cc) continue;
    std::string buckets;
    for (const auto& b : cc->buckets)
      buckets += fmt::format("{}{}: {:.2f} / {:.2f}", buckets.empty() ? "" : ", ",
                             hal::format_seconds(b.ideal_seconds), b.efficiency.compute,
                             b.efficiency.memory);
    fmt::print("{:<8} {:>8} {:>9} {:>9}  {}\n", hal::scheduler::op_class_name(hal::OpClass(c)),
               cc->samples, shown(c, 0, cc->efficiency.compute), shown(c, 1, cc->efficiency.memory),
               buckets);
  }
  fmt::print(
      "(in parentheses: no sample of the class was bound by that resource, so the "
      "cost model's default stands)\n");
  fmt::print(
      "\nstored: {}\n(used by the scheduler's cost model, `halctl run` and `halctl plan "
      "--timing cost-model`; efficiencies are fractions of the device's peak FLOP/s and "
      "memory bandwidth)\n",
      path.string());
  for (const auto& s : report.skipped)
    fmt::print("skipped: {}: {}\n", s["what"].get<std::string>(), s["reason"].get<std::string>());
  return 0;
}

}  // namespace

int cmd_bench(const Args& args) {
  // --model: the model benchmark (cmd_bench_model.cc).
  for (const std::string& a : args)
    if (a == "--model" || a.rfind("--model=", 0) == 0) return cmd_bench_model(args);
  CommonOptions common;
  std::string device_id, sizes_text = "256..4096", dtypes_text = "f32,bf16";
  std::string copy_sizes_text = "1M,16M,64M", peers_text, timing_only_text = "auto";
  BenchOptions opt;
  bool no_copies = false, no_matmul = false, calibrate_flag = false, quick = false;
  std::string calibration_dir;
  po::options_description desc("halctl bench options");
  add_common_options(desc, common);
  desc.add_options()("device", po::value<std::string>(&device_id), "device id, e.g. cpu:0")(
      "sizes", po::value<std::string>(&sizes_text)->default_value(sizes_text),
      "matmul sizes n (n x n x n): a list and/or ranges LOW..HIGH (powers of two)")(
      "dtypes", po::value<std::string>(&dtypes_text)->default_value(dtypes_text), "matmul dtypes")(
      "copy-sizes", po::value<std::string>(&copy_sizes_text)->default_value(copy_sizes_text),
      "copy sizes in bytes (K/M/G suffixes)")(
      "peers", po::value<std::string>(&peers_text),
      "devices to measure copies to (default: every other device; 'none' for none)")(
      "timing-only", po::value<std::string>(&timing_only_text)->default_value(timing_only_text),
      "matmul on virtual buffers (timed, not computed): on, off, or auto (on for simulated "
      "devices)")("min-time", po::value<double>(&opt.min_time_s)->default_value(opt.min_time_s),
                  "device seconds to measure per point")(
      "min-reps", po::value<int>(&opt.min_reps)->default_value(opt.min_reps),
      "repetitions at least")("no-copies", po::bool_switch(&no_copies), "skip the copy benchmarks")(
      "no-matmul", po::bool_switch(&no_matmul), "skip the matmul benchmarks")(
      "calibrate", po::bool_switch(&calibrate_flag),
      "measure efficiencies per op class (matrix, vector, data) and store them for the "
      "scheduler's cost model (instead of the copy/matmul sweep)")(
      "quick", po::bool_switch(&quick), "with --calibrate: a small, fast sweep")(
      "calibration-dir", po::value<std::string>(&calibration_dir),
      "with --calibrate: where to store it (default $HAL_CALIBRATION_DIR, else "
      "~/.cache/hal/calibration)");
  po::positional_options_description pos;
  pos.add("device", 1);
  po::variables_map vm;
  if (auto stop =
          parse_args("bench", args, desc, pos, vm, "halctl bench DEVICE [options] [--json]"))
    return *stop;
  if (device_id.empty()) return usage_error("bench", "which device? e.g. 'halctl bench cpu:0'");
  if (opt.min_reps < 1 || !(opt.min_time_s >= 0))
    return usage_error("bench", "--min-reps must be >= 1 and --min-time >= 0");
  if (timing_only_text != "auto" && timing_only_text != "on" && timing_only_text != "off")
    return usage_error("bench", "--timing-only takes on, off or auto");
  auto sizes = parse_size_list(sizes_text, "--sizes");
  if (!sizes.ok()) return report_error("bench", sizes.status());
  auto copy_sizes = parse_size_list(copy_sizes_text, "--copy-sizes");
  if (!copy_sizes.ok()) return report_error("bench", copy_sizes.status());
  auto dtypes = parse_dtype_list(dtypes_text, "--dtypes");
  if (!dtypes.ok()) return report_error("bench", dtypes.status());

  auto platform = open_platform(common);
  if (!platform.ok()) return report_error("bench", platform.status());
  auto found = (*platform)->device(device_id);
  if (!found.ok()) return report_error("bench", found.status());
  hal::Device& d = **found;
  std::vector<hal::Device*> peers;
  if (peers_text.empty()) {
    for (hal::Device* p : (*platform)->devices())
      if (p != &d) peers.push_back(p);
  } else if (peers_text != "none") {
    auto list = parse_device_list(**platform, peers_text);
    if (!list.ok()) return report_error("bench", list.status());
    peers = *list;
  }
  const bool simulated = is_simulated(d.info());
  const bool timing_only = timing_only_text == "on" || (timing_only_text == "auto" && simulated);
  if (calibrate_flag) {
    BenchOptions cal_opt = opt;
    if (quick && vm["min-time"].defaulted()) cal_opt.min_time_s = 0.01;
    return calibrate(d, *dtypes, quick, timing_only, calibration_dir, cal_opt, common.json);
  }
  if (quick || !calibration_dir.empty())
    return usage_error("bench", "--quick and --calibration-dir go with --calibrate");

  Report report;
  if (!no_copies) {
    bench_copies(d, *copy_sizes, opt, report);
    bench_peers(d, peers, *copy_sizes, opt, report);
  }
  if (!no_matmul) bench_matmul(d, *sizes, *dtypes, timing_only, opt, report);

  if (common.json) {
    print_json({{"device", d.id()},
                {"name", d.info().name},
                {"backend", d.info().backend},
                {"device_clock", simulated ? "simulated" : "real"},
                {"copies", report.copies},
                {"matmul", report.matmul},
                {"skipped", report.skipped}});
  } else {
    fmt::print("{}  {}  ({} clock)\n", d.id(), d.info().name, simulated ? "simulated" : "device");
    if (!report.copies.empty()) {
      fmt::print("\n{:<8} {:<10} {:>10} {:>12} {:>12} {:>12} {:>7}  {}\n", "COPY", "TO", "SIZE",
                 "TIME", "ACHIEVED", "PEAK", "RATIO", "PEAK OF");
      for (const auto& c : report.copies)
        fmt::print("{:<8} {:<10} {:>10} {:>12} {:>12} {:>12} {:>6.1f}%  {}{}\n",
                   c["kind"].get<std::string>(), c["to"].get<std::string>(),
                   hal::format_bytes(c["bytes"].get<uint64_t>()),
                   hal::format_seconds(c["seconds"].get<double>()),
                   hal::format_rate(c["bytes_per_s"].get<double>()),
                   hal::format_rate(c["peak_bytes_per_s"].get<double>()),
                   100 * c["ratio"].get<double>(), c["peak_of"].get<std::string>(),
                   c["clock"] == "host" ? " [host clock]" : "");
    }
    if (!report.matmul.empty()) {
      fmt::print("\n{:<8} {:<6} {:>6} {:>12} {:>16} {:>16} {:>7}\n", "MATMUL", "DTYPE", "N", "TIME",
                 "ACHIEVED", "PEAK", "RATIO");
      for (const auto& m : report.matmul)
        fmt::print("{:<8} {:<6} {:>6} {:>12} {:>16} {:>16} {:>6.1f}%{}\n", "",
                   m["dtype"].get<std::string>(), m["n"].get<int64_t>(),
                   hal::format_seconds(m["seconds"].get<double>()),
                   hal::format_flops(m["flops_per_s"].get<double>()),
                   hal::format_flops(m["peak_flops_per_s"].get<double>()),
                   100 * m["ratio"].get<double>(),
                   m["timing_only"].get<bool>() ? "  (timed, not computed)" : "");
    }
    for (const auto& s : report.skipped)
      fmt::print("skipped: {}: {}\n", s["what"].get<std::string>(), s["reason"].get<std::string>());
  }
  return report.copies.empty() && report.matmul.empty() && !(no_copies && no_matmul) ? 1 : 0;
}

}  // namespace halctl
