// halctl bench --model: a llama-bench-style model benchmark. For each model, device and
// thread count: prompt processing (pp: one prefill of --n-prompt tokens) and token
// generation (tg: --n-gen tokens decoded one at a time after a one-token prompt),
// tokens/s as mean +- standard deviation over --repetitions runs (after one warm-up),
// with the device-memory bytes each generated token reads (the weights matmuls stream,
// in their stored format) and the fraction of the memory bandwidth that makes: on cpu,
// each repetition against a read bandwidth probed right before it (over a buffer much
// larger than the last-level cache; a shared host's bandwidth moves by 1.5x within
// seconds, so one probe at the start compared repetitions with another machine state),
// averaged over the repetitions; on other devices, against the device's stated bandwidth.
//
//   halctl bench --model gpt2.gguf,gpt2-q4_0.gguf --devices cpu:0 --threads 1,2
//                --n-prompt 128 --n-gen 32 --repetitions 5 [--output md|json]
//   ... --llama-bench /path/to/llama-bench   also runs llama.cpp's llama-bench on each
//                                            GGUF model (same threads and sizes), round
//                                            by round alternating with ours (one
//                                            repetition each per round, the order flipped
//                                            every round), and lists its rows beside ours
//
// Thread counts other than the process's own (HAL_CPU_THREADS) run in a child halctl
// with HAL_CPU_THREADS set, since the CPU backend fixes its pool at start-up.
// --quantize / --weights store weights as weight_options.h says.
//
// Exit codes: 0 done; 2 bad input (unknown model, device, option); 1 a run failed.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <thread>

#include "common.h"
#include "hal/file_io.h"
#include "hal/memory_bandwidth.h"
#include "hal/runtime/session.h"
#include "weight_options.h"

namespace halctl {

namespace {

using Clock = std::chrono::steady_clock;

// Where a cpu row's bandwidth fraction comes from (bandwidth_source).
constexpr const char* kProbedSource = "read bandwidth probed before each repetition in this run";

struct Row {
  std::string engine = "hal";  // "hal" or "llama.cpp"
  std::string model;
  std::string weights;     // how weights are stored ("q4_0 x 49, f32 x 98")
  double model_bytes = 0;  // bytes of every weight as stored
  double params = 0;
  std::string device;
  int threads = 0;
  std::string test;  // "pp128", "tg32"
  std::vector<double> samples_ts;
  double bytes_per_token = 0;  // tg: device-memory bytes read per generated token
  double bandwidth = 0;        // bytes/s the fraction is taken against
  std::string bandwidth_source;
  // When not empty: the read bandwidth probed right before each sample (bytes/s), which
  // the sample's fraction is taken against instead.
  std::vector<double> bandwidth_samples;

  double mean() const {
    return samples_ts.empty() ? 0
                              : std::accumulate(samples_ts.begin(), samples_ts.end(), 0.0) /
                                    double(samples_ts.size());
  }
  double stddev() const {
    if (samples_ts.size() < 2) return 0;
    const double m = mean();
    double s = 0;
    for (double v : samples_ts) s += (v - m) * (v - m);
    return std::sqrt(s / double(samples_ts.size() - 1));
  }
  double fraction() const {
    if (!bandwidth_samples.empty() && bandwidth_samples.size() == samples_ts.size()) {
      double sum = 0;
      for (size_t i = 0; i < samples_ts.size(); ++i)
        if (bandwidth_samples[i] > 0) sum += bytes_per_token * samples_ts[i] / bandwidth_samples[i];
      return sum / double(samples_ts.size());
    }
    return bandwidth > 0 ? bytes_per_token * mean() / bandwidth : 0;
  }
};

nlohmann::json row_json(const Row& r) {
  return {{"engine", r.engine},
          {"model_filename", r.model},
          {"weights", r.weights},
          {"model_size", r.model_bytes},
          {"model_n_params", r.params},
          {"backends", r.device},
          {"n_threads", r.threads},
          {"test", r.test},
          {"avg_ts", r.mean()},
          {"stddev_ts", r.stddev()},
          {"samples_ts", r.samples_ts},
          {"bytes_per_token", r.bytes_per_token},
          {"bandwidth_bytes_per_s", r.bandwidth},
          {"bandwidth_source", r.bandwidth_source},
          {"bandwidth_samples_bytes_per_s", r.bandwidth_samples},
          {"bandwidth_fraction", r.fraction()}};
}

Row row_from_json(const nlohmann::json& j) {
  Row r;
  r.engine = j.value("engine", "hal");
  r.model = j.value("model_filename", "");
  r.weights = j.value("weights", "");
  r.model_bytes = j.value("model_size", 0.0);
  r.params = j.value("model_n_params", 0.0);
  r.device = j.value("backends", "");
  r.threads = j.value("n_threads", 0);
  r.test = j.value("test", "");
  if (j.contains("samples_ts")) r.samples_ts = j["samples_ts"].get<std::vector<double>>();
  r.bytes_per_token = j.value("bytes_per_token", 0.0);
  r.bandwidth = j.value("bandwidth_bytes_per_s", 0.0);
  r.bandwidth_source = j.value("bandwidth_source", "");
  if (j.contains("bandwidth_samples_bytes_per_s") && j["bandwidth_samples_bytes_per_s"].is_array())
    r.bandwidth_samples = j["bandwidth_samples_bytes_per_s"].get<std::vector<double>>();
  return r;
}

struct Plan {
  std::vector<std::string> models;
  std::vector<std::string> devices;
  std::vector<int> threads;
  int64_t n_prompt = 128, n_gen = 32;
  int reps = 5;
  WeightCliOptions weights;
  std::string llama_bench;
  CommonOptions common;
};

// Our tests for one model on one device, in this process (its thread budget): the
// session is made once; each round adds one sample per test.
class OurBench {
 public:
  static hal::Result<std::unique_ptr<OurBench>> open(const Plan& p, const std::string& model_name,
                                                     hal::Device* device, int threads,
                                                     double host_bandwidth) {
    std::unique_ptr<OurBench> b(new OurBench());
    b->p_ = &p;
    HAL_ASSIGN_OR_RETURN(auto loaded, hal::runtime::load_model(model_name));
    b->model_ = std::shared_ptr<const hal::runtime::Model>(std::move(loaded));
    hal::runtime::SessionOptions so;
    so.devices = {device};
    HAL_ASSIGN_OR_RETURN(so.weights, weight_options(p.weights, *b->model_));
    so.planned_context = std::max<int64_t>(p.n_prompt, p.n_gen + 1) + 1;
    HAL_ASSIGN_OR_RETURN(b->session_, hal::runtime::Session::create(b->model_, so));
    const hal::runtime::ModelConfig& cfg = b->model_->config();
    // Bytes as stored, and what one generated token streams: every matmul weight once.
    double stored = 0, streamed = 0;
    for (const auto& [name, f] : b->session_->weight_formats().by_name) {
      HAL_ASSIGN_OR_RETURN(hal::runtime::HostTensor t, b->model_->weight(name));
      const hal::Shape canonical = hal::runtime::stored_shape(t.shape, t.transposed);
      const double bytes = double(
          hal::TensorDesc::contiguous(f.dtype, hal::runtime::stored_shape(canonical, f.transposed))
              .bytes());
      stored += bytes;
      if (hal::runtime::is_matmul_weight(cfg, name)) streamed += bytes;
    }
    Row base;
    base.model = model_name;
    base.weights =
        weight_summary(hal::runtime::WeightFormats{b->session_->weight_formats().by_name, {}});
    base.model_bytes = stored;
    base.params = double(cfg.parameter_count());
    base.device = device->id();
    base.threads = threads;
    const bool cpu = device->info().kind == hal::DeviceKind::kCpu;
    b->probed_ = cpu && host_bandwidth > 0;
    // A simulated device is timed on its own (simulated) clock: what the device would take.
    b->simulated_ = device->info().property("simulated") == "true";
    if (b->simulated_) base.device += " (simulated clock)";
    base.bandwidth =
        cpu && host_bandwidth > 0 ? host_bandwidth : device->info().memory_bandwidth_bytes_per_s;
    base.bandwidth_source = cpu && host_bandwidth > 0 ? kProbedSource : "device info";
    if (p.n_prompt > 0) {
      b->pp_ = base;
      b->pp_.test = "pp" + std::to_string(p.n_prompt);
    }
    if (p.n_gen > 0) {
      b->tg_ = base;
      b->tg_.test = "tg" + std::to_string(p.n_gen);
      b->tg_.bytes_per_token = streamed;
    }
    return b;
  }

  // One sample of each test (not kept when `warmup`); `bandwidth`: the host's read
  // bandwidth probed right before (bytes/s), which a cpu sample's fraction is taken
  // against.
  hal::Status round(int index, bool warmup, double bandwidth) {
    const int64_t vocab = model_->config().vocab_size;
    // Tokens that cycle through the vocabulary (llama-bench draws random ids).
    auto tokens = [&](int64_t n) {
      std::vector<int32_t> ids;
      for (int64_t i = 0; i < n; ++i)
        ids.push_back(int32_t((i * 7919 + index * 104729 + 13) % vocab));
      return ids;
    };
    if (p_->n_prompt > 0) {
      hal::runtime::GenerationOptions go;
      go.max_new_tokens = 1;
      HAL_ASSIGN_OR_RETURN(auto g, session_->generate({tokens(p_->n_prompt)}, go));
      if (!warmup)
        pp_.samples_ts.push_back(double(p_->n_prompt) /
                                 (simulated_ ? g.prefill_device_seconds : g.prefill_seconds));
    }
    if (p_->n_gen > 0) {
      hal::runtime::GenerationOptions go;
      go.max_new_tokens = p_->n_gen + 1;  // the first comes from the one-token prefill
      HAL_ASSIGN_OR_RETURN(auto g, session_->generate({tokens(1)}, go));
      if (!warmup) {
        tg_.samples_ts.push_back(simulated_ ? g.device_decode_tokens_per_s()
                                            : g.decode_tokens_per_s());
        if (probed_) tg_.bandwidth_samples.push_back(bandwidth);
      }
    }
    return hal::ok_status();
  }

  // Whether its samples are taken against the host's probe (a cpu device).
  bool probed() const { return probed_; }

  std::vector<Row> rows() const {
    std::vector<Row> r;
    if (p_->n_prompt > 0) r.push_back(pp_);
    if (p_->n_gen > 0) r.push_back(tg_);
    return r;
  }

 private:
  OurBench() = default;
  const Plan* p_ = nullptr;
  std::shared_ptr<const hal::runtime::Model> model_;
  std::unique_ptr<hal::runtime::Session> session_;
  bool simulated_ = false;
  bool probed_ = false;  // a cpu device with the host's probe: samples get their probe
  Row pp_, tg_;
};

// Runs a command, returning its stdout (exit status in *status).
std::string run_capture(const std::string& cmd, int* status) {
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) {
    *status = -1;
    return "";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  *status = ::pclose(f);
  return out;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// llama.cpp's rows for one GGUF model and thread count (reps repetitions), from
// llama-bench -o json.
hal::Result<std::vector<Row>> bench_llama_cpp(const Plan& p, const std::string& model, int threads,
                                              int reps) {
  const std::string cmd = quote(p.llama_bench) + " -m " + quote(model) + " -t " +
                          std::to_string(threads) + " -p " + std::to_string(p.n_prompt) + " -n " +
                          std::to_string(p.n_gen) + " -r " + std::to_string(reps) +
                          " -o json 2>/dev/null";
  int status = 0;
  const std::string out = run_capture(cmd, &status);
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (status != 0 || j.is_discarded() || !j.is_array())
    return hal::invalid_argument("llama-bench on '" + model + "' failed (exit " +
                                 std::to_string(status) + ")");
  std::vector<Row> rows;
  for (const auto& e : j) {
    Row r;
    r.engine = "llama.cpp";
    r.model = model;
    r.weights = e.value("model_type", "");
    r.model_bytes = e.value("model_size", 0.0);
    r.params = e.value("model_n_params", 0.0);
    r.device = e.value("backends", "CPU");
    r.threads = e.value("n_threads", threads);
    const int64_t np = e.value("n_prompt", 0), ng = e.value("n_gen", 0);
    r.test = np > 0 ? "pp" + std::to_string(np) : "tg" + std::to_string(ng);
    if (e.contains("samples_ts")) r.samples_ts = e["samples_ts"].get<std::vector<double>>();
    rows.push_back(r);
  }
  return rows;
}

bool is_gguf_file(const std::string& path) {
  auto f = hal::open_regular_file(path, "model");  // never blocks on a FIFO (file_io.h)
  if (!f.ok()) return false;
  char m[4] = {};
  return ::read(f->fd.get(), m, 4) == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

std::string format_row(const Row& r) {
  const std::string bw =
      r.bytes_per_token > 0 && r.bandwidth > 0
          ? fmt::format("{} | {:.0f}%", hal::format_bytes(uint64_t(r.bytes_per_token)),
                        100 * r.fraction())
          : std::string(" | ");
  return fmt::format("| {} | {} | {} | {} | {} | {} | {:.2f} ± {:.2f} | {} |", r.engine, r.model,
                     hal::format_bytes(uint64_t(r.model_bytes)), r.device, r.threads, r.test,
                     r.mean(), r.stddev(), bw);
}

}  // namespace

int cmd_bench_model(const Args& args) {
  Plan p;
  std::string models_text, devices_text = "cpu:0", threads_text, output = "md";
  bool child = false;
  po::options_description desc("halctl bench --model options");
  add_common_options(desc, p.common);
  add_weight_options(desc, p.weights);
  desc.add_options()("model", po::value<std::string>(&models_text)->required(),
                     "models, ','-separated: GGUF files, checkpoint directories, built-in names")(
      "devices", po::value<std::string>(&devices_text)->default_value(devices_text),
      "devices, ','-separated")(
      "threads", po::value<std::string>(&threads_text),
      "CPU thread counts, ','-separated (default: the CPU backend's budget)")(
      "n-prompt,p", po::value<int64_t>(&p.n_prompt)->default_value(p.n_prompt),
      "prompt tokens (pp test; 0 = none)")("n-gen,n",
                                           po::value<int64_t>(&p.n_gen)->default_value(p.n_gen),
                                           "generated tokens (tg test; 0 = none)")(
      "repetitions,r", po::value<int>(&p.reps)->default_value(p.reps), "repetitions of each test")(
      "output,o", po::value<std::string>(&output)->default_value(output), "md or json")(
      "llama-bench", po::value<std::string>(&p.llama_bench),
      "path to llama.cpp's llama-bench: run it on every GGUF model too, alternating with ours")(
      "child", po::bool_switch(&child), "(internal) one thread count, rows as JSON");
  po::variables_map vm;
  if (auto stop = parse_args(
          "bench", args, desc, {}, vm,
          "halctl bench --model M1[,M2] [--devices cpu:0] [--threads 1,2] [-p 128] [-n 32] "
          "[-r 5] [-o md|json] [--llama-bench PATH]"))
    return *stop;
  if (output != "md" && output != "json")
    return usage_error("bench", "--output must be md or json");
  if (p.reps < 1 || p.n_prompt < 0 || p.n_gen < 0 || (p.n_prompt == 0 && p.n_gen == 0))
    return usage_error("bench", "--repetitions must be >= 1 and -p / -n not both 0");
  p.models = split_list(models_text, ',');
  p.devices = split_list(devices_text, ',');
  if (p.models.empty()) return usage_error("bench", "--model names no model");
  const char* env_threads = std::getenv("HAL_CPU_THREADS");
  const int own = env_threads && std::atoi(env_threads) > 0
                      ? std::atoi(env_threads)
                      : int(std::max(1u, std::thread::hardware_concurrency()));
  if (threads_text.empty()) {
    p.threads = {own};
  } else {
    for (const std::string& t : split_list(threads_text, ',')) {
      char* end = nullptr;
      const long v = std::strtol(t.c_str(), &end, 10);
      if (!end || *end || v < 1 || v > 4096)
        return usage_error("bench", "--threads: '" + t + "' is not a count");
      p.threads.push_back(int(v));
    }
  }
  if (!p.weights.quantize.empty())
    if (auto f = parse_weight_format(p.weights.quantize); !f.ok())
      return report_error("bench", f.status());

  auto platform = open_platform(p.common);
  if (!platform.ok()) return report_error("bench", platform.status());
  std::vector<hal::Device*> devices;
  for (const std::string& id : p.devices) {
    auto d = (*platform)->device(id);
    if (!d.ok()) return report_error("bench", d.status());
    devices.push_back(*d);
  }

  std::vector<Row> rows;
  for (int threads : p.threads) {
    if (threads != own && !child) {
      // Another thread count: a child halctl with that CPU budget.
      char self[4096] = {};
      const ssize_t len = ::readlink("/proc/self/exe", self, sizeof self - 1);
      if (len <= 0)
        return report_error("bench", hal::internal_error("cannot find halctl's own path"));
      std::string cmd = "HAL_CPU_THREADS=" + std::to_string(threads) + " " +
                        quote(std::string(self, size_t(len)));
      std::vector<std::string> pass = {"bench",     "--child",
                                       "--output",  "json",
                                       "--threads", std::to_string(threads),
                                       "--model",   models_text,
                                       "--devices", devices_text,
                                       "-p",        std::to_string(p.n_prompt),
                                       "-n",        std::to_string(p.n_gen),
                                       "-r",        std::to_string(p.reps)};
      if (!p.weights.quantize.empty()) pass.insert(pass.end(), {"--quantize", p.weights.quantize});
      if (!p.weights.weights.empty()) pass.insert(pass.end(), {"--weights", p.weights.weights});
      if (!p.llama_bench.empty()) pass.insert(pass.end(), {"--llama-bench", p.llama_bench});
      for (const std::string& a : pass) cmd += " " + quote(a);
      int status = 0;
      const std::string out = run_capture(cmd, &status);
      auto j = nlohmann::json::parse(out, nullptr, false);
      if (status != 0 || j.is_discarded() || !j.is_array())
        return report_error(
            "bench", hal::internal_error("the run with " + std::to_string(threads) +
                                         " threads failed (exit " + std::to_string(status) + ")"));
      for (const auto& e : j) rows.push_back(row_from_json(e));
      continue;
    }
    // The host's read bandwidth at this thread count, by the probe the CPU backend's
    // device figure comes from (hal/memory_bandwidth.h), over a buffer past every cache.
    double host_bw = 0;
    std::string host_bw_how;
    std::unique_ptr<hal::MemoryBandwidthProbe> probe;
    std::vector<double> probes;  // the probes between repetitions (bytes/s)
    for (hal::Device* d : devices)
      if (d->info().kind == hal::DeviceKind::kCpu && !probe) {
        probe = std::make_unique<hal::MemoryBandwidthProbe>(
            hal::bandwidth_buffer_bytes(d->info().sram_bytes), threads);
        const hal::BandwidthMeasurement bw = probe->measure(5);
        host_bw = bw.read_best;
        host_bw_how = bw.describe();
      }
    // Read bandwidth right now: best of two passes (~0.1-0.2 s per GiB of buffer).
    auto probe_now = [&]() -> double {
      if (!probe || host_bw <= 0) return 0;
      const double bw = probe->measure(2).read_best;
      probes.push_back(bw);
      return bw;
    };
    for (const std::string& m : p.models) {
      // Side by side: round by round, llama.cpp (one repetition per call) and ours, in
      // alternating order, so a change in the machine's load hits both alike.
      std::vector<std::unique_ptr<OurBench>> ours;
      for (hal::Device* d : devices) {
        auto b = OurBench::open(p, m, d, threads, host_bw);
        if (!b.ok()) return report_error("bench", b.status().with_context(m + " on " + d->id()));
        ours.push_back(std::move(*b));
        if (hal::Status s = ours.back()->round(0, true, 0); !s.ok())
          return report_error("bench", s.with_context(m + " on " + d->id()));
      }
      const bool peer = !p.llama_bench.empty() && is_gguf_file(m);
      std::vector<Row> peer_rows;
      for (int r = 0; r < p.reps; ++r) {
        for (int order = 0; order < 2; ++order) {
          const bool peer_turn = (order == 0) == (r % 2 == 0);
          if (peer_turn && peer) {
            const double bw_now = probe_now();
            auto got = bench_llama_cpp(p, m, threads, 1);
            if (!got.ok()) return report_error("bench", got.status());
            for (Row& g : *got) {
              auto it = std::find_if(peer_rows.begin(), peer_rows.end(),
                                     [&](const Row& x) { return x.test == g.test; });
              if (it == peer_rows.end()) {
                g.bandwidth = host_bw;
                g.bandwidth_source = kProbedSource;
                it = peer_rows.insert(peer_rows.end(), g);
              } else {
                it->samples_ts.insert(it->samples_ts.end(), g.samples_ts.begin(),
                                      g.samples_ts.end());
              }
              if (bw_now > 0) it->bandwidth_samples.resize(it->samples_ts.size(), bw_now);
            }
          } else if (!peer_turn) {
            for (auto& b : ours) {
              const double bw_now = b->probed() ? probe_now() : 0;
              if (hal::Status s = b->round(r + 1, false, bw_now); !s.ok())
                return report_error("bench", s.with_context(m));
            }
          }
        }
      }
      rows.insert(rows.end(), peer_rows.begin(), peer_rows.end());
      for (const auto& b : ours) {
        const std::vector<Row> r = b->rows();
        rows.insert(rows.end(), r.begin(), r.end());
      }
    }
    if (host_bw > 0)
      rows.push_back([&] {
        Row r;
        r.engine = "memory";
        r.model = "read bandwidth";
        r.device = "host";
        r.threads = threads;
        r.test = "read";
        r.bandwidth_source = host_bw_how;  // how it was measured
        r.samples_ts = {host_bw / 1e9};
        r.bandwidth_samples = probes;  // the probes between repetitions
        return r;
      }());
  }
  // llama.cpp's rows share our bytes per token when they run the same file's weights.
  for (Row& r : rows)
    if (r.engine == "llama.cpp" && r.test.rfind("tg", 0) == 0)
      for (const Row& o : rows)
        if (o.engine == "hal" && o.model == r.model && o.test == r.test &&
            o.device.rfind("cpu", 0) == 0)
          r.bytes_per_token = o.bytes_per_token;

  if (output == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows) out.push_back(row_json(r));
    print_json(out);
    return 0;
  }
  fmt::print(
      "| engine | model | size | device | threads | test | t/s | bytes/token | of bandwidth |\n");
  fmt::print("| --- | --- | ---: | --- | ---: | --- | ---: | ---: | ---: |\n");
  for (const Row& r : rows) {
    if (r.engine == "memory") continue;
    fmt::print("{}\n", format_row(r));
  }
  for (const Row& r : rows)
    if (r.engine == "memory") {
      fmt::print("\nread bandwidth with {} threads (this run): {:.1f} GB/s; {}\n", r.threads,
                 r.samples_ts[0], r.bandwidth_source);
      if (!r.bandwidth_samples.empty()) {
        std::vector<double> v = r.bandwidth_samples;
        std::sort(v.begin(), v.end());
        fmt::print(
            "probed again before each repetition ({} probes, best of 2 passes each): median "
            "{:.1f} GB/s, {:.1f}-{:.1f}; \"of bandwidth\" takes each repetition against the "
            "probe right before it\n",
            v.size(), v[v.size() / 2] * 1e-9, v.front() * 1e-9, v.back() * 1e-9);
      }
    }
  for (const Row& r : rows)
    if (r.engine == "hal" && !r.weights.empty() && r.test.rfind("tg", 0) == 0 &&
        r.threads == p.threads.front())
      fmt::print("weights of {} on {}: {}\n", r.model, r.device, r.weights);
  return 0;
}

}  // namespace halctl
