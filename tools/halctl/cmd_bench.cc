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
// --calibrate: instead of the sweep above, measures the ops transformer models dispatch,
// at their shapes, and stores the cost model's calibration (bench_calibrate.h); --dtypes
// picks the compute dtypes to calibrate (default f32 there), --quick runs a small sweep.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include "bench_calibrate.h"
#include "common.h"

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
      "measure the ops models dispatch, at their shapes, and store the cost model's "
      "calibration (per op kind and dtype; instead of the copy/matmul sweep; --dtypes "
      "defaults to f32 here)")("quick", po::bool_switch(&quick),
                               "with --calibrate: a small, fast sweep")(
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
    CalibrateOptions co;
    co.dtypes = vm["dtypes"].defaulted() ? std::vector<hal::DType>{hal::DType::kF32} : *dtypes;
    co.quick = quick;
    co.timing_only = timing_only;
    co.directory = calibration_dir;
    co.min_time_s = quick && vm["min-time"].defaulted() ? 0.01 : opt.min_time_s;
    if (!vm["min-reps"].defaulted()) co.min_reps = opt.min_reps;
    co.json = common.json;
    return calibrate_device(d, co);
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
