// halctl run: load a model (a Hugging Face checkpoint directory, a GGUF file or a built-in
// name; weights stored or quantized on load as weight_options.h says), put
// it on the chosen devices, prefill the prompt(s) and decode new tokens; print the
// tokens and prefill/decode throughput (--json for machines), optionally dump the logits
// each token was chosen from.
//
//   halctl run --model gpt2-tiny --devices cpu:0 --prompt-ids 1,2,3 --max-new-tokens 16
//   halctl run --model DIR --prompts "1,2,3;4,5" --temperature 0.8 --top-k 40 --seed 7 --json
//   halctl run --model gpt2-small-random --devices cpu:0,npu:0 --report r.json --trace t.json
//   halctl run --model DIR --prompt "Hello" [--chat] [--stop S]   # text in, text out
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
//
// The command reads as its steps: parse the options, check what needs no device, generate
// (platform, model, session, tokens), write the logits and profile files, print
// (run_summary.h); the progress line is terminal_progress.h. Text prompts (--prompt,
// --prompt-file, --chat, --stop, ...) are run_text.h's: the steps hook it in.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "common.h"
#include "hal/runtime/session.h"
#include "plan_parallel.h"
#include "run_executables.h"
#include "run_outputs.h"
#include "run_parallel.h"
#include "run_summary.h"
#include "run_text.h"
#include "terminal_progress.h"
#include "weight_options.h"

namespace halctl {

namespace {

// What the command line asks for, before it is checked.
struct RunRequest {
  CommonOptions common;
  RunPlacementOptions placing;
  CompileCliOptions compiling;
  RunTextOptions text;
  WeightCliOptions weight_cli;
  std::string model_name = "gpt2-tiny", devices_text = "cpu:0", prompt_ids, prompts_text;
  std::string dtype_text = "f32", dump_logits;
  int64_t max_new_tokens = 16, batch = 1, eos_id = -1;
  float temperature = 0.0f, top_p = 1.0f;
  int32_t top_k = 0;
  uint64_t seed = 0;
  bool failover = false;
  bool prompt_ids_given = false, prompts_given = false;  // even when empty
  std::string tp_text, pp_text;  // --tensor-parallel, --pipeline-parallel (run_parallel.h)
  double collective_timeout = 0;
};

// Parses the command line into `req`; an exit code when the command stops here (--help,
// bad usage).
std::optional<int> parse_request(const Args& args, RunRequest& req) {
  po::options_description desc("halctl run options");
  add_common_options(desc, req.common);
  add_run_placement_options(desc, req.placing);
  add_compile_options(desc, req.compiling, /*with_compiled=*/true);
  add_run_text_options(desc, req.text);
  add_weight_options(desc, req.weight_cli);
  desc.add_options()("model",
                     po::value<std::string>(&req.model_name)->default_value(req.model_name),
                     "checkpoint directory (config.json + safetensors), GGUF file or built-in "
                     "name: gpt2-tiny, gpt2-small-random, llama-tiny, llama-small-random")(
      "devices", po::value<std::string>(&req.devices_text)->default_value(req.devices_text),
      "devices to run on, e.g. cpu:0 or cpu:0,npu:0 (several: blocks split by layer ranges)")(
      "prompt-ids", po::value<std::string>(&req.prompt_ids),
      "prompt token ids, e.g. 1,2,3 (without --prompt-ids or --prompts: the one-token "
      "prompt 0; an empty list is refused)")(
      "prompts", po::value<std::string>(&req.prompts_text),
      "several prompts run as one batch, ';'-separated: \"1,2,3;4,5\"")(
      "batch", po::value<int64_t>(&req.batch)->default_value(1),
      "run the --prompt-ids prompt this many times as one batch")(
      "max-new-tokens", po::value<int64_t>(&req.max_new_tokens)->default_value(16),
      "tokens to generate per prompt")(
      "dtype", po::value<std::string>(&req.dtype_text)->default_value(req.dtype_text),
      "compute dtype: f32, f16 or bf16")(
      "temperature", po::value<float>(&req.temperature)->default_value(0.0f),
      "0 = greedy; > 0 samples from softmax(logits / temperature)")(
      "top-k", po::value<int32_t>(&req.top_k)->default_value(0),
      "sample among the k likeliest (0 = all)")("top-p",
                                                po::value<float>(&req.top_p)->default_value(1.0f),
                                                "nucleus sampling mass (1 = all)")(
      "seed", po::value<uint64_t>(&req.seed)->default_value(0), "sampling seed")(
      "eos-id", po::value<int64_t>(&req.eos_id)->default_value(-1),
      "stop a prompt's generation after this token (-1 = never)")(
      "failover", po::bool_switch(&req.failover),
      "survive device faults: drop a lost device, rebuild on the devices left and continue "
      "(each recovery reported on stderr and in --json)")(
      "dump-logits", po::value<std::string>(&req.dump_logits),
      "write float32 little-endian logits, one row of vocab_size per generated token "
      "(row 0 from the last prompt position), prompt after prompt")(
      "tensor-parallel", po::value<std::string>(&req.tp_text),
      "split every layer over N ranks (heads and MLP columns; an all-reduce after attention "
      "and after the MLP); under mpirun the default is the job's size")(
      "pipeline-parallel", po::value<std::string>(&req.pp_text),
      "split the layers into M stages (activations sent between them)")(
      "collective-timeout", po::value<double>(&req.collective_timeout),
      "seconds a collective waits for its peers before the run fails (default: "
      "HAL_COLLECTIVE_TIMEOUT, else 300)");
  po::variables_map vm;
  if (auto stop = parse_args("run", args, desc, {}, vm,
                             "halctl run --model DIR|NAME [--devices cpu:0] (--prompt TEXT | "
                             "--prompt-ids 1,2,3) [--max-new-tokens N] [--json] "
                             "[--dump-logits FILE] [--tensor-parallel N] [--pipeline-parallel M]"))
    return stop;
  req.prompt_ids_given = vm.count("prompt-ids") > 0;
  req.prompts_given = vm.count("prompts") > 0;
  return std::nullopt;
}

// The request's values that need no device, checked.
struct CheckedRequest {
  std::vector<std::vector<int32_t>> prompts;
  hal::DType dtype = hal::DType::kF32;
  std::unique_ptr<RunText> text;  // text prompts: their ids are `prompts`
};

// Checks the prompts, counts and dtype; an exit code after reporting a bad one.
std::optional<int> check_request(const RunRequest& req, CheckedRequest& out) {
  if (req.prompts_given && req.prompt_ids_given)
    return usage_error("run", "give --prompt-ids or --prompts, not both");
  if (const std::string misuse = req.text.misuse(); !misuse.empty())
    return usage_error("run", misuse);
  if (req.text.any()) {
    if (req.prompts_given || req.prompt_ids_given)
      return usage_error("run",
                         "give text prompts (--prompt, --prompt-file) or token ids "
                         "(--prompt-ids, --prompts), not both");
    if (req.batch < 1 || req.batch > 4096)
      return usage_error("run", "--batch must be in [1, 4096]");
    auto text = RunText::create(req.text, req.model_name, req.batch);
    if (!text.ok()) return report_error("run", text.status());
    out.text = std::move(*text);
    out.prompts = out.text->prompt_ids();
  } else if (req.prompts_given) {
    for (const std::string& p : split_list(req.prompts_text, ';')) {
      auto ids = parse_id_list(p, "--prompts");
      if (!ids.ok()) return report_error("run", ids.status());
      out.prompts.push_back(std::move(*ids));
    }
    if (out.prompts.empty()) return usage_error("run", "--prompts holds no prompt");
  } else {
    // No prompt given: the documented one-token prompt 0. A given but empty list is an
    // error (parse_id_list), never silently that default.
    auto ids = parse_id_list(req.prompt_ids_given ? req.prompt_ids : "0", "--prompt-ids");
    if (!ids.ok()) return report_error("run", ids.status());
    if (req.batch < 1 || req.batch > 4096)
      return usage_error("run", "--batch must be in [1, 4096]");
    out.prompts.assign(size_t(req.batch), *ids);
  }
  if (req.max_new_tokens < 1) return usage_error("run", "--max-new-tokens must be >= 1");
  const auto dtype = hal::parse_dtype(req.dtype_text);
  if (!dtype ||
      (*dtype != hal::DType::kF32 && *dtype != hal::DType::kF16 && *dtype != hal::DType::kBF16))
    return usage_error("run", "--dtype must be f32, f16 or bf16, got '" + req.dtype_text + "'");
  out.dtype = *dtype;
  return std::nullopt;
}

// A finished generation and everything it ran on. Members are declared so that each
// outlives what uses it (the session goes before the progress line it reports to, the
// platform last).
struct RunState {
  std::unique_ptr<hal::Platform> platform;
  std::vector<hal::Device*> devices;  // --devices
  std::shared_ptr<const hal::runtime::Model> model;
  std::shared_ptr<hal::runtime::ScheduledPlanBuilder> planner;  // null: plain layer split
  TerminalProgress progress;
  std::unique_ptr<hal::runtime::Session> session;
  hal::runtime::GenerationResult result;
};

// Opens the devices, loads the model, builds the session (placed by the scheduler) and
// generates; an exit code after reporting a failure.
std::optional<int> generate(const RunRequest& req, const CheckedRequest& checked, RunState& run) {
  auto platform = open_platform(req.common);
  if (!platform.ok()) return report_error("run", platform.status());
  run.platform = std::move(*platform);
  auto devices = parse_device_list(*run.platform, req.devices_text);
  if (!devices.ok()) return report_error("run", devices.status());
  run.devices = std::move(*devices);

  auto model = hal::runtime::load_model(req.model_name);
  if (!model.ok()) return report_error("run", model.status());
  run.model = std::move(*model);

  hal::runtime::SessionOptions so;
  so.devices = run.devices;
  auto compile = compile_settings(req.compiling);
  if (!compile.ok()) return usage_error("run", compile.status().message());
  if (!req.compiling.compiled_dir.empty()) {
    // Ahead-of-time executables: the shapes they were compiled for.
    auto m = read_manifest(req.compiling.compiled_dir);
    if (!m.ok()) return report_error("run", m.status());
    std::vector<std::string> ids;
    for (const hal::Device* d : run.devices) ids.push_back(d->id());
    if (m->model != req.model_name || m->devices != ids || m->dtype != req.dtype_text ||
        m->batch != int64_t(checked.prompts.size()))
      return usage_error(
          "run", fmt::format("--compiled {}: compiled for model {} on {} ({}, "
                             "batch {}), this run is {} on {} ({}, batch {})",
                             req.compiling.compiled_dir, m->model, fmt::join(m->devices, ","),
                             m->dtype, m->batch, req.model_name, fmt::join(ids, ","),
                             req.dtype_text, checked.prompts.size()));
    so.prompt_buckets = {m->prompt_len};
    so.context = m->context;
  }
  // A device listed twice (cpu:0,cpu:0) exercises the plain layer split: the scheduler
  // needs distinct devices.
  std::vector<hal::Device*> distinct = run.devices;
  std::sort(distinct.begin(), distinct.end());
  if (std::unique(distinct.begin(), distinct.end()) == distinct.end()) {
    auto made = make_run_planner(req.placing, run.devices, *compile);
    if (!made.ok()) return report_error("run", made.status());
    run.planner = std::move(*made);
    so.planner = run.planner->planner();
  } else if (!req.placing.placement.empty() || req.placing.strict) {
    return usage_error("run", "--placement and --strict-placement need distinct --devices");
  } else {
    so.compile = *compile;
  }
  // --json lists each executable's measured time: the runs are profiled for it.
  so.profile = req.placing.profile() || (req.common.json && compile->enabled);
  so.compute_dtype = checked.dtype;
  auto weights = weight_options(req.weight_cli, *run.model);
  if (!weights.ok()) return report_error("run", weights.status());
  so.weights = *weights;
  so.progress = [&progress = run.progress](std::string_view what, uint64_t done, uint64_t total) {
    progress.update(what, done, total);
  };
  auto session = hal::runtime::Session::create(run.model, so);
  run.progress.finish();
  if (!session.ok()) return report_error("run", session.status());
  run.session = std::move(*session);

  hal::runtime::GenerationOptions go;
  go.max_new_tokens = req.max_new_tokens;
  go.sampling.temperature = req.temperature;
  go.sampling.top_k = req.top_k;
  go.sampling.top_p = req.top_p;
  go.sampling.seed = req.seed;
  go.eos_token_id = req.eos_id;
  go.keep_logits = !req.dump_logits.empty();
  go.progress = so.progress;
  go.failover = req.failover;
  if (checked.text)
    checked.text->attach(go, /*stream=*/!req.common.json && checked.prompts.size() == 1);
  auto result = run.session->generate(checked.prompts, go);
  run.progress.finish();
  if (!result.ok()) return report_error("run", result.status());
  run.result = std::move(*result);
  if (checked.text) checked.text->complete(run.result);
  return std::nullopt;
}

// Tensor/pipeline parallelism (degrees given, or started by mpirun): run_parallel.h runs
// it; nullopt when this is a plain run.
std::optional<int> maybe_run_parallel(const RunRequest& req, const CheckedRequest& checked) {
  auto tp = parse_degree(req.tp_text, "--tensor-parallel");
  if (!tp.ok() || req.tp_text == "auto")
    return usage_error("run", "--tensor-parallel takes a positive number");
  auto pp = parse_degree(req.pp_text, "--pipeline-parallel");
  if (!pp.ok() || req.pp_text == "auto")
    return usage_error("run", "--pipeline-parallel takes a positive number");
  if (!wants_parallel_run(*tp, *pp)) return std::nullopt;
  if (req.failover || !req.placing.placement.empty() || req.placing.strict)
    return usage_error("run",
                       "--failover, --placement and --strict-placement "
                       "do not combine with tensor or pipeline parallelism");
  ParallelRunRequest pr;
  pr.common = req.common;
  pr.placing = req.placing;
  pr.model_name = req.model_name;
  pr.devices_text = req.devices_text;
  pr.tp = *tp;
  pr.pp = *pp;
  pr.collective_timeout_s = req.collective_timeout;
  pr.dtype = checked.dtype;
  pr.prompts = checked.prompts;
  pr.text = checked.text.get();
  pr.generation.max_new_tokens = req.max_new_tokens;
  pr.generation.sampling.temperature = req.temperature;
  pr.generation.sampling.top_k = req.top_k;
  pr.generation.sampling.top_p = req.top_p;
  pr.generation.sampling.seed = req.seed;
  pr.generation.eos_token_id = req.eos_id;
  pr.generation.keep_logits = !req.dump_logits.empty();
  pr.dump_logits = req.dump_logits;
  return run_parallel(pr);
}

}  // namespace

int cmd_run(const Args& args) {
  RunRequest req;
  if (auto stop = parse_request(args, req)) return *stop;
  CheckedRequest checked;
  if (auto stop = check_request(req, checked)) return *stop;
  if (auto stop = maybe_run_parallel(req, checked)) return *stop;
  RunState run;
  if (auto stop = generate(req, checked, run)) return *stop;

  print_failovers(run.result);
  if (!req.dump_logits.empty())
    if (hal::Status s = write_logits(req.dump_logits, run.result); !s.ok())
      return report_error("run", s);
  // After a failover the runs before it were placed on more devices than are left; the
  // report describes the devices the session ends on.
  auto profile = write_run_outputs(req.placing, run.model->name(), checked.dtype,
                                   run.session->options().devices, run.planner.get(), run.result);
  if (!profile.ok()) return report_error("run", profile.status());

  const RunSummary summary{*run.model,   checked.dtype,     checked.prompts, run.devices,
                           *run.session, run.planner.get(), req.placing,     *profile,
                           run.result,   req.failover,      req.dump_logits, checked.text.get()};
  if (req.common.json)
    print_run_json(summary);
  else
    print_run_text(summary);
  return 0;
}

}  // namespace halctl
