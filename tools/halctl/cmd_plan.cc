// halctl plan: how a model would run on devices the user may not own, without running it.
//
// A thin CLI over hal::runtime::forecast_model (runtime/include/hal/runtime/forecast.h): it
// opens the platform with the NPU simulator in timing-only mode (so nothing of the model
// is ever allocated, and a 70B model is planned from its config.json alone), optionally
// on a preset (--preset rebel-quad), resolves --devices, gives every simulated device an
// op timer that dispatches the op on virtual buffers and reads the simulator's duration,
// and prints the plan.
//
// Devices that are not on this machine (cuda:0 without a GPU) are an error naming the
// devices present: the planner predicts only for devices the HAL can open (the ones
// present, and simulated NPUs from presets or spec files). Users' guide: PLANNING.md.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common.h"
#include "hal/runtime/forecast.h"
#include "plan_parallel.h"
#include "run_executables.h"

namespace halctl {

namespace {

namespace rt = hal::runtime;

std::string layers_text(const rt::DevicePlan& d) {
  std::string s;
  for (auto [a, b] : d.layers)
    s += fmt::format("{}{}", s.empty() ? "" : ",",
                     a == b ? fmt::format("{}", a) : fmt::format("{}-{}", a, b));
  return s.empty() ? "-" : s;
}

nlohmann::json bound_json(const rt::BoundBreakdown& b) {
  return {{"bound", b.dominant()},
          {"seconds_by_bound",
           {{"compute", b.compute_s},
            {"memory", b.memory_s},
            {"overhead", b.overhead_s},
            {"link", b.link_s}}},
          {"fraction", b.fraction(b.dominant())}};
}

nlohmann::json compiled_json(const rt::PhasePlan& p) {
  return {{"units", p.units},
          {"compiled", p.compiled},
          {"declined_nodes", p.declined},
          {"op_by_op_seconds", p.op_by_op_seconds},
          {"compile_seconds", p.compile_seconds}};
}

nlohmann::json plan_json(const rt::ModelForecast& p, const std::string& source) {
  nlohmann::json devices = nlohmann::json::array();
  for (const rt::DevicePlan& d : p.devices) {
    devices.push_back({{"id", d.id},
                       {"name", d.name},
                       {"timing", d.timing},
                       {"layers", layers_text(d)},
                       {"layer_count", d.layer_count},
                       {"embedding", d.embedding},
                       {"head", d.head},
                       {"memory",
                        {{"weights_bytes", d.weight_bytes},
                         {"kv_cache_bytes", d.kv_cache_bytes},
                         {"prefill_activation_bytes", d.prefill_activation_bytes},
                         {"decode_activation_bytes", d.decode_activation_bytes},
                         {"peak_bytes", d.peak_bytes()},
                         {"capacity_bytes", d.capacity_bytes}}},
                       {"memory_bandwidth_bytes_per_s", d.bandwidth_bytes_per_s},
                       {"decode_hbm_bytes_per_step", d.decode_hbm_bytes},
                       {"decode_busy_seconds_per_step", d.decode_busy_s},
                       {"prefill_busy_seconds", d.prefill_busy_s},
                       {"sram_bytes", d.sram_bytes}});
  }
  const double pre_s = p.prefill.seconds;
  return {{"model", p.model},
          {"source", source},
          {"config", p.summary},
          {"parameters", p.parameters},
          {"batch", p.batch},
          {"prompt_len", p.prompt_len},
          {"max_new_tokens", p.max_new_tokens},
          {"dtype", std::string(hal::dtype_name(p.weight_dtype))},
          {"compute_dtype", std::string(hal::dtype_name(p.compute_dtype))},
          {"weight_bytes", p.weight_bytes},
          {"kv_cache_bytes", p.kv_cache_bytes},
          {"placement", p.placement},
          {"method", p.method},
          {"devices", devices},
          {"prefill",
           {{"seconds", pre_s},
            {"tokens", p.prefill.tokens},
            {"tokens_per_s", pre_s > 0 ? double(p.prefill.tokens) / pre_s : 0.0},
            {"flops", p.prefill.flops},
            {"hbm_bytes", p.prefill.hbm_bytes},
            {"transfer_bytes", p.prefill.transfer_bytes},
            {"tasks", p.prefill.tasks},
            {"fallbacks", p.prefill.fallbacks},
            {"algorithm", p.prefill.algorithm},
            {"bound", bound_json(p.prefill.bound)},
            {"compiled", compiled_json(p.prefill)}}},
          {"decode",
           {{"seconds_per_step", p.decode.seconds},
            {"tokens_per_s", p.decode_tokens_per_s()},
            {"context", p.decode.context},
            {"hbm_bytes_per_step", p.decode.hbm_bytes},
            {"hbm_bytes_per_token", p.decode_hbm_bytes_per_token()},
            {"flops_per_step", p.decode.flops},
            {"transfer_bytes_per_step", p.decode.transfer_bytes},
            {"tasks", p.decode.tasks},
            {"fallbacks", p.decode.fallbacks},
            {"algorithm", p.decode.algorithm},
            {"bound", bound_json(p.decode.bound)},
            {"compiled", compiled_json(p.decode)},
            {"op_by_op_tokens_per_s",
             p.decode.op_by_op_seconds > 0 ? double(p.batch) / p.decode.op_by_op_seconds : 0.0}}},
          {"bandwidth_limit",
           {{"tokens_per_s", p.bandwidth_limit_tokens_per_s()},
            {"step_seconds", p.bandwidth_limit_step_s},
            {"weight_read_bytes_per_step", p.weight_read_bytes},
            {"all_weights_tokens_per_s", p.all_weights_tokens_per_s()},
            {"formula",
             "batch / (the decode schedule replayed with each op taking its weight bytes read / "
             "peak memory bandwidth); one device: batch x bandwidth / weight bytes read"}}},
          {"total_seconds", p.total_seconds()},
          {"why", p.why},
          {"notes", p.notes}};
}

void print_plan(const rt::ModelForecast& p, const std::string& source) {
  fmt::print("{} ({}): {}, {:.2f} B parameters\n", p.model, source, p.summary,
             double(p.parameters) * 1e-9);
  fmt::print(
      "batch {}, prompt {} tokens, {} new tokens; weights {} ({}), compute {}, KV cache {}\n",
      p.batch, p.prompt_len, p.max_new_tokens, hal::dtype_name(p.weight_dtype),
      hal::format_bytes(p.weight_bytes), hal::dtype_name(p.compute_dtype),
      hal::format_bytes(p.kv_cache_bytes));
  fmt::print("method: {}\n", p.method);

  size_t name_width = 6;
  for (const rt::DevicePlan& d : p.devices) name_width = std::max(name_width, d.name.size());
  fmt::print("\n{:<8} {:<12} {:>6} {:>5} {:>5}  {:<{}}  {}\n", "PLACE", "LAYERS", "COUNT", "EMBED",
             "HEAD", "DEVICE", name_width, "OP TIMES FROM");
  for (const rt::DevicePlan& d : p.devices)
    fmt::print("{:<8} {:<12} {:>6} {:>5} {:>5}  {:<{}}  {}\n", d.id, layers_text(d), d.layer_count,
               d.embedding ? "yes" : "-", d.head ? "yes" : "-", d.name, name_width, d.timing);
  fmt::print("placement: {}\n", p.placement.empty() ? "(all on one device)" : p.placement);

  fmt::print("\n{:<8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>6}\n", "MEMORY", "WEIGHTS",
             "KV CACHE", "ACT PRE", "ACT DEC", "PEAK", "CAPACITY", "USED");
  for (const rt::DevicePlan& d : p.devices)
    fmt::print("{:<8} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>5.1f}%\n", d.id,
               hal::format_bytes(d.weight_bytes), hal::format_bytes(d.kv_cache_bytes),
               hal::format_bytes(d.prefill_activation_bytes),
               hal::format_bytes(d.decode_activation_bytes), hal::format_bytes(d.peak_bytes()),
               hal::format_bytes(d.capacity_bytes),
               d.capacity_bytes ? 100.0 * double(d.peak_bytes()) / double(d.capacity_bytes) : 0.0);

  auto bound_text = [](const rt::BoundBreakdown& b) {
    const std::string dom = b.dominant();
    const char* what = dom == "memory"    ? "memory-bandwidth bound"
                       : dom == "compute" ? "compute bound"
                       : dom == "link"    ? "link bound"
                                          : "per-op overhead bound";
    return fmt::format(
        "{} ({:.0f}% of op time; compute {:.0f}%, memory {:.0f}%, overhead "
        "{:.0f}%, link {:.0f}%)",
        what, 100 * b.fraction(dom), 100 * b.fraction("compute"), 100 * b.fraction("memory"),
        100 * b.fraction("overhead"), 100 * b.fraction("link"));
  };
  fmt::print("\nprefill  {} x {} tokens: {} ({:.0f} tokens/s), {}, HBM {}\n", p.batch, p.prompt_len,
             hal::format_seconds(p.prefill.seconds),
             p.prefill.seconds > 0 ? double(p.prefill.tokens) / p.prefill.seconds : 0.0,
             hal::format_flops(p.prefill.seconds > 0 ? p.prefill.flops / p.prefill.seconds : 0),
             hal::format_bytes(uint64_t(p.prefill.hbm_bytes)));
  fmt::print("         {}\n", bound_text(p.prefill.bound));
  fmt::print("decode   {:.1f} tokens/s ({} per step, batch {}, context {}), HBM {} per token\n",
             p.decode_tokens_per_s(), hal::format_seconds(p.decode.seconds), p.batch,
             p.decode.context, hal::format_bytes(uint64_t(p.decode_hbm_bytes_per_token())));
  fmt::print("         {}\n", bound_text(p.decode.bound));
  for (const rt::PhasePlan* ph : {&p.prefill, &p.decode})
    if (ph->compiled)
      fmt::print(
          "compiled {}: {} unit(s), {} node(s) op by op, compiled in {}; op by op it would "
          "take {} ({:.2f}x)\n",
          ph->name, ph->units, ph->declined, hal::format_seconds(ph->compile_seconds),
          hal::format_seconds(ph->op_by_op_seconds),
          ph->seconds > 0 ? ph->op_by_op_seconds / ph->seconds : 0.0);
  for (const rt::DevicePlan& d : p.devices)
    if (d.sram_bytes > 0)
      fmt::print("sram     {}: compiled units hold {} of on-chip SRAM at their peak\n", d.id,
                 hal::format_bytes(d.sram_bytes));
  const double pct = p.bandwidth_limit_tokens_per_s() > 0
                         ? 100 * p.decode_tokens_per_s() / p.bandwidth_limit_tokens_per_s()
                         : 0.0;
  if (p.devices.size() == 1)
    fmt::print(
        "limit    bandwidth / weight bytes read per step = {} / {} = {} per step -> {:.1f} "
        "tokens/s; predicted is {:.0f}% of it\n"
        "         (all {} of weights: {:.1f} tokens/s; the embedding reads only its rows)\n",
        hal::format_rate(p.devices[0].bandwidth_bytes_per_s),
        hal::format_bytes(uint64_t(p.weight_read_bytes)),
        hal::format_seconds(p.bandwidth_limit_step_s), p.bandwidth_limit_tokens_per_s(), pct,
        hal::format_bytes(p.weight_bytes), p.all_weights_tokens_per_s());
  else
    fmt::print(
        "limit    weight bytes read / bandwidth, replayed over this placement's schedule: "
        "{} per step -> {:.1f} tokens/s; predicted is {:.0f}% of it\n",
        hal::format_seconds(p.bandwidth_limit_step_s), p.bandwidth_limit_tokens_per_s(), pct);
  fmt::print("why      {}\n", p.why);
  fmt::print("total    {} for prefill + {} decode steps\n", hal::format_seconds(p.total_seconds()),
             std::max<int64_t>(0, p.max_new_tokens - 1));
  for (const std::string& n : p.notes) fmt::print("note: {}\n", n);
}

// The highest npu index named in `ids` plus one (0 when none).
int32_t npu_count_needed(const std::vector<std::string>& ids) {
  int32_t need = 0;
  for (const std::string& id : ids) {
    if (id.rfind("npu:", 0) != 0) continue;
    try {
      need = std::max(need, int32_t(std::stoi(id.substr(4))) + 1);
    } catch (const std::exception&) {
    }
  }
  return need;
}

}  // namespace

int cmd_plan(const Args& args) {
  CommonOptions common;
  std::string model_text, devices_text = "npu:0", preset, dtype_text = "bf16", placement;
  std::string timing_text = "auto", calibration_dir, algorithm_text = "auto";
  int64_t batch = 1, prompt_len = 128, max_new_tokens = 128;
  bool no_calibration = false;
  CompileCliOptions compiling;
  std::string tp_text, pp_text;
  int32_t hosts = 1;
  double network_bandwidth = 0, network_latency = -1;
  po::options_description desc("halctl plan options");
  add_common_options(desc, common);
  add_compile_options(desc, compiling, /*with_compiled=*/false);
  desc.add_options()(
      "model", po::value<std::string>(&model_text),
      "a checkpoint directory (its config.json), a config.json, or a built-in: "
      "gpt2, gpt2-medium, gpt2-large, gpt2-xl, llama-3-8b, llama-3-70b, llama-3.1-405b")(
      "devices", po::value<std::string>(&devices_text)->default_value(devices_text),
      "devices to plan for, e.g. npu:0,npu:1 or npu:0,cpu:0")(
      "preset", po::value<std::string>(&preset),
      "simulated NPU preset(s) for npu:N (atom, atom-max, rebel-quad, or spec files; repeated "
      "as needed to provide every npu:N named)")(
      "batch", po::value<int64_t>(&batch)->default_value(batch), "sequences per batch")(
      "prompt-len", po::value<int64_t>(&prompt_len)->default_value(prompt_len),
      "prompt tokens per sequence")(
      "max-new-tokens", po::value<int64_t>(&max_new_tokens)->default_value(max_new_tokens),
      "tokens generated per sequence")(
      "dtype", po::value<std::string>(&dtype_text)->default_value(dtype_text),
      "weight dtype: bf16, fp16, fp8 or int8 (how 1-byte weights are planned: PLANNING.md)")(
      "placement", po::value<std::string>(&placement),
      "pin layers, e.g. layers=0-15:npu:0,16-31:npu:1 (default: the scheduler decides)")(
      "timing", po::value<std::string>(&timing_text)->default_value(timing_text),
      "op times: auto (simulated devices run each op timing-only, others use the cost model), "
      "simulator, or cost-model (the roofline cost model with stored calibrations everywhere)")(
      "algorithm", po::value<std::string>(&algorithm_text)->default_value(algorithm_text),
      "scheduler: auto, heft, peft, lookahead, layer-partition, all-on-fastest, round-robin")(
      "calibration-dir", po::value<std::string>(&calibration_dir),
      "where stored calibrations are read (default $HAL_CALIBRATION_DIR, else "
      "~/.cache/hal/calibration)")("no-calibration", po::bool_switch(&no_calibration),
                                   "ignore stored calibrations")(
      "tensor-parallel", po::value<std::string>(&tp_text),
      "split every layer over N devices (Megatron: heads and MLP columns, an all-reduce after "
      "attention and after the MLP); auto: choose")(
      "pipeline-parallel", po::value<std::string>(&pp_text),
      "split the layers into M stages of tensor-parallel groups; auto: choose")(
      "hosts", po::value<int32_t>(&hosts)->default_value(hosts),
      "the devices are spread evenly over this many hosts (in order), linked by the network")(
      "network-bandwidth", po::value<double>(&network_bandwidth),
      "between hosts, bytes/s per direction (default: the devices' network_link)")(
      "network-latency", po::value<double>(&network_latency),
      "between hosts, seconds (default: the devices' network_link)");
  po::positional_options_description pos;
  po::variables_map vm;
  if (auto stop = parse_args("plan", args, desc, pos, vm,
                             "halctl plan --model DIR|config.json|NAME [--devices npu:0,...] "
                             "[--preset rebel-quad] [--batch B] [--prompt-len P] "
                             "[--max-new-tokens N] [--dtype bf16|fp16|fp8|int8] "
                             "[--tensor-parallel N|auto] [--pipeline-parallel M|auto] [--hosts H] "
                             "[--json]"))
    return *stop;
  if (model_text.empty())
    return usage_error("plan",
                       "which model? --model DIR|config.json|NAME (built-ins: gpt2, "
                       "gpt2-medium, gpt2-large, gpt2-xl, llama-3-8b, llama-3-70b)");
  if (timing_text != "auto" && timing_text != "simulator" && timing_text != "cost-model")
    return usage_error("plan",
                       "--timing takes auto, simulator or cost-model, not '" + timing_text + "'");
  if (batch < 1 || prompt_len < 1 || max_new_tokens < 1)
    return usage_error("plan", "--batch, --prompt-len and --max-new-tokens must be >= 1");

  const auto algorithm = hal::scheduler::parse_algorithm(algorithm_text);
  if (!algorithm || *algorithm == hal::scheduler::Algorithm::kExhaustive)
    return usage_error("plan", "--algorithm '" + algorithm_text +
                                   "' is not one of auto, heft, peft, lookahead, layer-partition, "
                                   "all-on-fastest, round-robin, refine");
  std::string source;
  auto config = rt::resolve_model_config(model_text, &source);
  if (!config.ok()) return report_error("plan", config.status());
  auto dtype = rt::parse_plan_dtype(dtype_text);
  if (!dtype.ok()) return report_error("plan", dtype.status());
  auto expanded = expand_device_ranges(split_list(devices_text));
  if (!expanded.ok()) return report_error("plan", expanded.status());
  const std::vector<std::string> ids = *expanded;
  if (ids.empty()) return usage_error("plan", "--devices is empty");
  auto tp = parse_degree(tp_text, "--tensor-parallel");
  if (!tp.ok()) return usage_error("plan", tp.status().message());
  auto pp = parse_degree(pp_text, "--pipeline-parallel");
  if (!pp.ok()) return usage_error("plan", pp.status().message());
  const bool parallel = !tp_text.empty() || !pp_text.empty() || hosts > 1;
  if (hosts < 1 || (hosts > 1 && ids.size() % size_t(hosts) != 0))
    return usage_error("plan", "--hosts " + std::to_string(hosts) + " must divide the " +
                                   std::to_string(ids.size()) + " devices evenly");
  if (parallel && !placement.empty())
    return usage_error("plan",
                       "--placement pins layers of a single-rank plan; a parallel plan "
                       "places stages itself");

  // The simulator in timing-only mode: no model data is ever stored. A preset is
  // repeated until every npu:N named exists (atom-max gives four per card).
  auto open = [&](int copies) -> hal::Result<std::unique_ptr<hal::Platform>> {
    CommonOptions c = common;
    bool timing_given = false;
    for (const std::string& o : c.plugin_options)
      timing_given = timing_given || o.rfind("npu_sim.timing_only=", 0) == 0;
    if (!timing_given) c.plugin_options.push_back("npu_sim.timing_only=true");
    if (!preset.empty()) {
      std::string list;
      for (int i = 0; i < copies; ++i) list += (list.empty() ? "" : ",") + preset;
      c.plugin_options.push_back("npu_sim.devices=" + list);
    }
    return open_platform(c);
  };
  auto platform = open(1);
  if (!platform.ok()) return report_error("plan", platform.status());
  const int32_t need = npu_count_needed(ids);
  if (!preset.empty() && need > 0) {
    int32_t have = 0;
    for (hal::Device* d : (*platform)->devices()) have += d->id().rfind("npu:", 0) == 0;
    if (have == 0)
      return report_error("plan", hal::invalid_argument("--preset " + preset +
                                                        " gave no npu devices (is the npu_sim "
                                                        "plugin loaded? see 'halctl plugins')"));
    if (have < need) {
      platform->reset();  // one simulator instance at a time
      platform = open((need + have - 1) / have);
      if (!platform.ok()) return report_error("plan", platform.status());
    }
  }
  std::vector<hal::Device*> devices;
  for (const std::string& id : ids) {
    auto d = (*platform)->device(id);
    if (!d.ok()) {
      std::string known;
      for (hal::Device* k : (*platform)->devices()) known += (known.empty() ? "" : ", ") + k->id();
      return report_error(
          "plan",
          hal::not_found(id + " is not a device here (devices: " + known +
                         "); plan predicts for devices the HAL can open: those present and "
                         "simulated NPUs (--preset atom|atom-max|rebel-quad, or a spec file via "
                         "--plugin-option npu_sim.devices=FILE)"));
    }
    if (std::find(devices.begin(), devices.end(), *d) != devices.end())
      return usage_error("plan", "device " + id + " is named twice in --devices");
    devices.push_back(*d);
  }

  std::vector<rt::PlanDevice> plan_devices;
  for (hal::Device* d : devices) {
    rt::PlanDevice pd;
    pd.info = d->info();
    pd.device = d;
    pd.supports = [d](const hal::OpSpec& s) { return d->supports(s); };
    const bool use_sim =
        timing_text == "simulator" || (timing_text == "auto" && rt::is_simulated_device(d->info()));
    if (use_sim) {
      if (!rt::is_simulated_device(d->info()))
        return usage_error("plan", "--timing simulator: " + d->id() +
                                       " is not a simulated device (use auto or cost-model)");
      pd.timer = rt::simulated_op_timer(*d);
      pd.timing_source = d->info().backend + " timing-only execution";
    }
    plan_devices.push_back(std::move(pd));
  }

  rt::ForecastRequest req;
  req.config = *config;
  req.model_name = source.rfind("built-in ", 0) == 0 ? source.substr(9) : model_text;
  req.batch = batch;
  req.prompt_len = prompt_len;
  req.max_new_tokens = max_new_tokens;
  req.weight_dtype = *dtype;
  req.placement = placement;
  req.algorithm = *algorithm;
  req.calibration.load = !no_calibration;
  req.calibration.directory = calibration_dir;
  auto compile = compile_settings(compiling);
  if (!compile.ok()) return usage_error("plan", compile.status().message());
  req.compile = *compile;
  if (parallel) {
    rt::ParallelForecastRequest pr;
    pr.base = req;
    pr.tp = *tp;
    pr.pp = *pp;
    if (hosts > 1) {
      for (size_t i = 0; i < ids.size(); ++i)
        pr.host_of.push_back(int32_t(i / (ids.size() / size_t(hosts))));
      const hal::DeviceInfo& first = plan_devices[0].info;
      auto number = [&](const char* key) {
        try {
          return std::stod(first.property(key));
        } catch (const std::exception&) {
          return -1.0;
        }
      };
      pr.network.kind = first.property("network_link.kind");
      pr.network.bandwidth_bytes_per_s =
          network_bandwidth > 0 ? network_bandwidth : number("network_link.bandwidth_bytes_per_s");
      pr.network.latency_s =
          network_latency >= 0 ? network_latency : number("network_link.latency_s");
      if (network_bandwidth > 0 || network_latency >= 0) pr.network.kind = "given";
      if (!(pr.network.bandwidth_bytes_per_s > 0) || !(pr.network.latency_s >= 0))
        return usage_error("plan", "--hosts " + std::to_string(hosts) + ": " + first.id +
                                       " states no network link; give --network-bandwidth and "
                                       "--network-latency");
    }
    auto pplan = rt::forecast_parallel(pr, plan_devices);
    if (!pplan.ok()) return report_error("plan", pplan.status());
    if (common.json)
      print_json(parallel_plan_json(*pplan, source, req));
    else
      print_parallel_plan(*pplan, source, req);
    return 0;
  }
  auto plan = rt::forecast_model(req, plan_devices);
  if (!plan.ok()) return report_error("plan", plan.status());
  if (common.json)
    print_json(plan_json(*plan, source));
  else
    print_plan(*plan, source);
  return 0;
}

}  // namespace halctl
