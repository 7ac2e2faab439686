// halctl run: load a model (a Hugging Face checkpoint directory or a built-in name), put
// it on the chosen devices, prefill the prompt(s) and decode new tokens; print the
// tokens and prefill/decode throughput (--json for machines), optionally dump the logits
// each token was chosen from.
//
//   halctl run --model gpt2-tiny --devices cpu:0 --prompt-ids 1,2,3 --max-new-tokens 16
//   halctl run --model DIR --prompts "1,2,3;4,5" --temperature 0.8 --top-k 40 --seed 7 --json
//   halctl run --model gpt2-small-random --devices cpu:0,npu:0 --report r.json --trace t.json
//
// Placement: the scheduler (hal/runtime/scheduled_plan.h) places ops across --devices,
// within each device's memory, pinned by --placement; a device that lacks an op falls
// back (printed with reason and cost), or fails the run with --strict-placement (exit 1).
// --report / --trace profile the run (run_outputs.h).
//
// Device faults: without --failover a fault fails the run (exit 1, the status names the
// device, node and op); with --failover the run continues on the devices left and each
// recovery is reported on stderr and in --json's "failovers" (session.h, "Device
// faults"). Faults can be injected into the NPU simulator: --plugin-option
// npu_sim.faults=npu:1:lost@op=40 (backends/npu_sim/README.md).
//
// Exit codes: 0 ok; 1 the run failed on a device; 2 bad input (missing directory, bad
// config or weights, ids outside the vocabulary, unknown device, bad option).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

#include "common.h"
#include "hal/runtime/session.h"
#include "hal/units.h"
#include "run_outputs.h"

namespace halctl {

namespace {

// A one-line progress display on stderr, only when stderr is a terminal, shown once a
// stage has taken long enough to be worth watching, redrawn at most 10 times a second.
class TerminalProgress {
 public:
  TerminalProgress() : enabled_(::isatty(STDERR_FILENO) != 0) {}
  ~TerminalProgress() { finish(); }

  void update(std::string_view what, uint64_t done, uint64_t total) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (what != stage_) {
      finish();
      stage_ = std::string(what);
      stage_start_ = now;
      last_draw_ = {};
    }
    if (now - stage_start_ < std::chrono::milliseconds(500)) return;
    if (done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double frac = total ? double(done) / double(total) : 1.0;
    std::string detail = stage_ == "uploading weights"
                             ? hal::format_bytes(done) + " / " + hal::format_bytes(total)
                             : fmt::format("{} / {} tokens", done, total);
    fmt::print(stderr, "\r{}: {:3.0f}%  {}   ", stage_, 100.0 * frac, detail);
    std::fflush(stderr);
    drawn_ = true;
  }
  void finish() {
    if (drawn_) {
      fmt::print(stderr, "\r\033[K");
      std::fflush(stderr);
    }
    drawn_ = false;
    stage_.clear();
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  bool drawn_ = false;
  std::string stage_;
  Clock::time_point stage_start_{}, last_draw_{};
};

std::string layer_ranges(const std::vector<int32_t>& layer_device,
                         const std::vector<hal::Device*>& devices) {
  std::string s;
  size_t start = 0;
  for (size_t l = 1; l <= layer_device.size(); ++l) {
    if (l < layer_device.size() && layer_device[l] == layer_device[start]) continue;
    if (!s.empty()) s += ", ";
    s +=
        l - 1 == start ? fmt::format("layer {}", start) : fmt::format("layers {}-{}", start, l - 1);
    s += " on " + devices[size_t(layer_device[start])]->id();
    start = l;
  }
  return s;
}

}  // namespace

int cmd_run(const Args& args) {
  CommonOptions common;
  std::string model_name = "gpt2-tiny", devices_text = "cpu:0", prompt_ids, prompts_text;
  std::string dtype_text = "f32", dump_logits;
  int64_t max_new_tokens = 16, batch = 1, eos_id = -1;
  float temperature = 0.0f, top_p = 1.0f;
  int32_t top_k = 0;
  uint64_t seed = 0;
  bool failover = false;
  RunPlacementOptions placing;
  po::options_description desc("halctl run options");
  add_common_options(desc, common);
  add_run_placement_options(desc, placing);
  desc.add_options()("model", po::value<std::string>(&model_name)->default_value(model_name),
                     "checkpoint directory (config.json + safetensors) or built-in name: "
                     "gpt2-tiny, gpt2-small-random, llama-tiny, llama-small-random")(
      "devices", po::value<std::string>(&devices_text)->default_value(devices_text),
      "devices to run on, e.g. cpu:0 or cpu:0,npu:0 (several: blocks split by layer ranges)")(
      "prompt-ids", po::value<std::string>(&prompt_ids),
      "prompt token ids, e.g. 1,2,3 (without --prompt-ids or --prompts: the one-token "
      "prompt 0; an empty list is refused)")(
      "prompts", po::value<std::string>(&prompts_text),
      "several prompts run as one batch, ';'-separated: \"1,2,3;4,5\"")(
      "batch", po::value<int64_t>(&batch)->default_value(1),
      "run the --prompt-ids prompt this many times as one batch")(
      "max-new-tokens", po::value<int64_t>(&max_new_tokens)->default_value(16),
      "tokens to generate per prompt")(
      "dtype", po::value<std::string>(&dtype_text)->default_value(dtype_text),
      "compute dtype: f32, f16 or bf16")(
      "temperature", po::value<float>(&temperature)->default_value(0.0f),
      "0 = greedy; > 0 samples from softmax(logits / temperature)")(
      "top-k", po::value<int32_t>(&top_k)->default_value(0),
      "sample among the k likeliest (0 = all)")(
      "top-p", po::value<float>(&top_p)->default_value(1.0f), "nucleus sampling mass (1 = all)")(
      "seed", po::value<uint64_t>(&seed)->default_value(0), "sampling seed")(
      "eos-id", po::value<int64_t>(&eos_id)->default_value(-1),
      "stop a prompt's generation after this token (-1 = never)")(
      "failover", po::bool_switch(&failover),
      "survive device faults: drop a lost device, rebuild on the devices left and continue "
      "(each recovery reported on stderr and in --json)")(
      "dump-logits", po::value<std::string>(&dump_logits),
      "write float32 little-endian logits, one row of vocab_size per generated token "
      "(row 0 from the last prompt position), prompt after prompt");
  po::variables_map vm;
  if (auto stop = parse_args("run", args, desc, {}, vm,
                             "halctl run --model DIR|NAME [--devices cpu:0] --prompt-ids 1,2,3 "
                             "[--max-new-tokens N] [--json] [--dump-logits FILE]"))
    return *stop;

  // Prompts.
  std::vector<std::vector<int32_t>> prompts;
  if (vm.count("prompts") && vm.count("prompt-ids"))
    return usage_error("run", "give --prompt-ids or --prompts, not both");
  if (vm.count("prompts")) {
    for (const std::string& p : split_list(prompts_text, ';')) {
      auto ids = parse_id_list(p, "--prompts");
      if (!ids.ok()) return report_error("run", ids.status());
      prompts.push_back(std::move(*ids));
    }
    if (prompts.empty()) return usage_error("run", "--prompts holds no prompt");
  } else {
    // No prompt given: the documented one-token prompt 0. A given but empty list is an
    // error (parse_id_list), never silently that default.
    auto ids = parse_id_list(vm.count("prompt-ids") ? prompt_ids : "0", "--prompt-ids");
    if (!ids.ok()) return report_error("run", ids.status());
    if (batch < 1 || batch > 4096) return usage_error("run", "--batch must be in [1, 4096]");
    prompts.assign(size_t(batch), *ids);
  }
  if (max_new_tokens < 1) return usage_error("run", "--max-new-tokens must be >= 1");
  const auto dtype = hal::parse_dtype(dtype_text);
  if (!dtype ||
      (*dtype != hal::DType::kF32 && *dtype != hal::DType::kF16 && *dtype != hal::DType::kBF16))
    return usage_error("run", "--dtype must be f32, f16 or bf16, got '" + dtype_text + "'");

  auto platform = open_platform(common);
  if (!platform.ok()) return report_error("run", platform.status());
  auto devices = parse_device_list(**platform, devices_text);
  if (!devices.ok()) return report_error("run", devices.status());

  auto model = hal::runtime::load_model(model_name);
  if (!model.ok()) return report_error("run", model.status());
  std::shared_ptr<const hal::runtime::Model> shared(std::move(*model));

  TerminalProgress progress;
  hal::runtime::SessionOptions so;
  so.devices = *devices;
  // A device listed twice (cpu:0,cpu:0) exercises the plain layer split: the scheduler
  // needs distinct devices.
  std::shared_ptr<hal::runtime::SchedulingPlanner> planner;
  std::vector<hal::Device*> distinct = *devices;
  std::sort(distinct.begin(), distinct.end());
  if (std::unique(distinct.begin(), distinct.end()) == distinct.end()) {
    auto made = make_run_planner(placing, *devices);
    if (!made.ok()) return report_error("run", made.status());
    planner = std::move(*made);
    so.planner = planner->planner();
  } else if (!placing.placement.empty() || placing.strict) {
    return usage_error("run", "--placement and --strict-placement need distinct --devices");
  }
  so.profile = placing.profile();
  so.compute_dtype = *dtype;
  so.progress = [&](std::string_view what, uint64_t done, uint64_t total) {
    progress.update(what, done, total);
  };
  auto session = hal::runtime::Session::create(shared, so);
  progress.finish();
  if (!session.ok()) return report_error("run", session.status());

  hal::runtime::GenerationOptions go;
  go.max_new_tokens = max_new_tokens;
  go.sampling.temperature = temperature;
  go.sampling.top_k = top_k;
  go.sampling.top_p = top_p;
  go.sampling.seed = seed;
  go.eos_token_id = eos_id;
  go.keep_logits = !dump_logits.empty();
  go.progress = so.progress;
  go.failover = failover;
  auto result = (*session)->generate(prompts, go);
  progress.finish();
  if (!result.ok()) return report_error("run", result.status());
  for (const hal::runtime::FailoverEvent& ev : result->failovers)
    fmt::print(stderr,
               "halctl run: failover after {}\n  {}; continued on {}: {} generated tokens "
               "kept, {} prompt + kept tokens prefilled again in {}{}\n",
               ev.fault.to_string(),
               ev.lost.empty() ? std::string("no device lost (transient)")
                               : "lost " + fmt::format("{}", fmt::join(ev.lost, ", ")),
               fmt::format("{}", fmt::join(ev.devices, ", ")), ev.tokens_kept, ev.tokens_prefilled,
               hal::format_seconds(ev.seconds), ev.note.empty() ? "" : "; " + ev.note);
  // After a failover the session runs on fewer devices; placement refers to those.
  const std::vector<hal::Device*>& placed_on = (*session)->options().devices;
  const hal::runtime::GenerationResult& r = *result;

  if (!dump_logits.empty()) {
    std::ofstream f(dump_logits, std::ios::binary);
    for (const auto& rows : r.logits) {
      if constexpr (std::endian::native == std::endian::little) {
        f.write(reinterpret_cast<const char*>(rows.data()), std::streamsize(rows.size() * 4));
      } else {
        for (float v : rows) {
          const uint32_t u = std::bit_cast<uint32_t>(v);
          const char le[4] = {char(u), char(u >> 8), char(u >> 16), char(u >> 24)};
          f.write(le, 4);
        }
      }
    }
    if (!f)
      return report_error(
          "run", hal::invalid_argument("--dump-logits: cannot write '" + dump_logits + "'"));
  }

  // After a failover the runs before it were placed on more devices than are left; the
  // report describes the devices the session ends on.
  auto outputs = write_run_outputs(placing, shared->name(), *dtype, (*session)->options().devices,
                                   planner.get(), r);
  if (!outputs.ok()) return report_error("run", outputs.status());

  const auto& cfg = shared->config();
  // The scheduler's layer split (each layer where most of its weights are), and the
  // device of each layer's first op beside it.
  std::string placement = layer_ranges((*session)->layer_devices(), placed_on);
  if (planner && placed_on.size() > 1 && placed_on == *devices && !planner->scheduled().empty() &&
      !planner->scheduled().front().placement.empty())
    placement = planner->scheduled().front().placement + " (first ops: " + placement + ")";
  if (common.json) {
    nlohmann::json out;
    out["model"] = shared->name();
    out["family"] = std::string(hal::runtime::model_family_name(cfg.family));
    out["parameters"] = cfg.parameter_count();
    out["vocab_size"] = cfg.vocab_size;
    out["dtype"] = std::string(hal::dtype_name(*dtype));
    nlohmann::json ids = nlohmann::json::array();
    for (const auto* d : placed_on) ids.push_back(d->id());
    out["devices"] = ids;
    out["placement"] = placement;
    if (planner) out["scheduling"] = placement_json(*planner);
    if (placing.profile()) {
      nlohmann::json mk;
      for (const hal::runtime::PhaseReport& ph : outputs->phases)
        mk[ph.name] = {{"predicted_s", ph.predicted_makespan_s},
                       {"measured_s", ph.measured_makespan_s}};
      out["makespan_per_run"] = mk;
    }
    out["layer_devices"] = (*session)->layer_devices();
    if (prompts.size() == 1) {
      out["generated_ids"] = r.tokens[0];
      out["prompt_ids"] = prompts[0];
    } else {
      out["generated_ids"] = r.tokens;
      out["prompt_ids"] = prompts;
    }
    out["batch"] = prompts.size();
    out["prompt_tokens"] = r.prompt_tokens;
    out["decode_tokens"] = r.decode_tokens;
    out["prefill_seconds"] = r.prefill_seconds;
    out["decode_seconds"] = r.decode_seconds;
    out["prefill_tokens_per_s"] = r.prefill_tokens_per_s();
    out["decode_tokens_per_s"] = r.decode_tokens_per_s();
    nlohmann::json steps = nlohmann::json::array();
    for (double s : r.step_seconds) steps.push_back(s * 1e3);
    out["decode_step_ms"] = steps;
    if (devices->size() == 1) {
      out["device_clock"] = {{"prefill_seconds", r.prefill_device_seconds},
                             {"decode_seconds", r.decode_device_seconds},
                             {"decode_tokens_per_s", r.device_decode_tokens_per_s()}};
    }
    out["weight_bytes"] = (*session)->weight_bytes();
    out["kv_cache_bytes"] = r.kv_cache_bytes;
    if (failover) {
      nlohmann::json events = nlohmann::json::array();
      for (const hal::runtime::FailoverEvent& ev : r.failovers)
        events.push_back({{"code", std::string(hal::status_code_name(ev.fault.code()))},
                          {"fault", ev.fault.message()},
                          {"lost", ev.lost},
                          {"devices", ev.devices},
                          {"tokens_kept", ev.tokens_kept},
                          {"tokens_prefilled", ev.tokens_prefilled},
                          {"seconds", ev.seconds},
                          {"note", ev.note}});
      out["failovers"] = events;
    }
    out["prefill_activation_bytes"] = r.prefill_activation_bytes;
    out["decode_activation_bytes"] = r.decode_activation_bytes;
    if (!dump_logits.empty()) out["dump_logits"] = dump_logits;
    print_json(out);
    return 0;
  }
  fmt::print("model      {} ({}, {:.1f} M parameters, {})\n", shared->name(), cfg.summary(),
             double(cfg.parameter_count()) / 1e6, hal::dtype_name(*dtype));
  fmt::print("placement  {}\n", placement);
  if (planner) fmt::print("{}", placement_lines(*planner));
  auto ids_text = [](const std::vector<int32_t>& ids) {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) s += ',';
      s += std::to_string(ids[i]);
    }
    return s;
  };
  for (size_t b = 0; b < prompts.size(); ++b) {
    const std::string tag = prompts.size() > 1 ? fmt::format("[{}] ", b) : "";
    fmt::print("prompt     {}{}\n", tag, ids_text(prompts[b]));
    fmt::print("generated  {}{}\n", tag, ids_text(r.tokens[b]));
  }
  fmt::print("prefill    {} tokens in {} ({:.1f} tokens/s)\n", r.prompt_tokens,
             hal::format_seconds(r.prefill_seconds), r.prefill_tokens_per_s());
  if (r.decode_tokens > 0)
    fmt::print("decode     {} tokens in {} ({:.1f} tokens/s)\n", r.decode_tokens,
               hal::format_seconds(r.decode_seconds), r.decode_tokens_per_s());
  // A simulated device's clock is what its model predicts; say so when it differs.
  if (devices->size() == 1 && r.decode_tokens > 0 && r.decode_device_seconds > 0 &&
      std::abs(r.decode_device_seconds - r.decode_seconds) > 0.1 * r.decode_seconds)
    fmt::print("device     {} clock: prefill {}, decode {} ({:.1f} tokens/s)\n",
               (*devices)[0]->id(), hal::format_seconds(r.prefill_device_seconds),
               hal::format_seconds(r.decode_device_seconds), r.device_decode_tokens_per_s());
  fmt::print("memory     weights {}, KV cache {}, activations {} (prefill) / {} (decode)\n",
             hal::format_bytes((*session)->weight_bytes()), hal::format_bytes(r.kv_cache_bytes),
             hal::format_bytes(r.prefill_activation_bytes),
             hal::format_bytes(r.decode_activation_bytes));
  if (!dump_logits.empty()) {
    size_t rows = 0;
    for (const auto& t : r.tokens) rows += t.size();
    fmt::print("logits     {} rows of {} floats in {}\n", rows, cfg.vocab_size, dump_logits);
  }
  if (placing.profile()) {
    for (const hal::runtime::PhaseReport& ph : outputs->phases)
      fmt::print("makespan   {}: measured {} per run, predicted {}{}\n{}", ph.name,
                 hal::format_seconds(ph.measured_makespan_s),
                 hal::format_seconds(ph.predicted_makespan_s),
                 hal::runtime::signed_error(ph.predicted_makespan_s, ph.measured_makespan_s),
                 hal::runtime::phase_prediction_text(ph));
    if (outputs->decode_tokens > 0)
      for (const hal::runtime::DeviceReport& d : outputs->devices)
        fmt::print("hbm        {}: {} per decode token (weights read in full there {}, held {})\n",
                   d.id, hal::format_bytes(uint64_t(d.decode_hbm_bytes_per_token)),
                   hal::format_bytes(d.decode_streamed_weight_bytes),
                   hal::format_bytes(d.decode_weight_bytes));
    if (!placing.report_path.empty()) fmt::print("report     {}\n", placing.report_path);
    if (!placing.trace_path.empty()) fmt::print("trace      {}\n", placing.trace_path);
  }
  return 0;
}

}  // namespace halctl
