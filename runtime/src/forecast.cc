// Planning without running: the model's real graphs through the scheduler (forecast.h).
// About 800 lines: the built-in configs, the graph-to-task conversion (collective nodes
// included) and forecast_model share its pricing and memory helpers; parallel plans
// (parallel/parallel_forecast.cc) call forecast_model per stage rather than copy it.
#include "hal/runtime/forecast.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "hal/file_io.h"
#include "hal/runtime/arena_layout.h"
#include "hal/runtime/graph.h"
#include "hal/runtime/model.h"
#include "hal/runtime/model_graph.h"
#include "hal/runtime/scheduled_plan.h"
#include "hal/units.h"

namespace hal::runtime {

namespace sch = hal::scheduler;

// ---- built-in configs ----------------------------------------------------------------

namespace {

struct BuiltinModel {
  const char* name;
  const char* config_json;
};

// The values of each model's config.json on the Hugging Face Hub (only the keys the
// parser reads, plus the dtype they are published in):
//   gpt2         https://huggingface.co/openai-community/gpt2/blob/main/config.json
//   gpt2-medium  https://huggingface.co/openai-community/gpt2-medium/blob/main/config.json
//   gpt2-large   https://huggingface.co/openai-community/gpt2-large/blob/main/config.json
//   gpt2-xl      https://huggingface.co/openai-community/gpt2-xl/blob/main/config.json
//   llama-3-8b   https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json
//   llama-3-70b  https://huggingface.co/meta-llama/Meta-Llama-3-70B/blob/main/config.json
//   llama-3.1-405b  https://huggingface.co/meta-llama/Llama-3.1-405B/blob/main/config.json
const BuiltinModel kBuiltins[] = {
    {"gpt2",
     R"({"model_type": "gpt2", "activation_function": "gelu_new", "n_ctx": 1024, "n_embd": 768,
         "n_head": 12, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257,
         "layer_norm_epsilon": 1e-05, "bos_token_id": 50256, "eos_token_id": 50256})"},
    {"gpt2-medium",
     R"({"model_type": "gpt2", "activation_function": "gelu_new", "n_ctx": 1024, "n_embd": 1024,
         "n_head": 16, "n_layer": 24, "n_positions": 1024, "vocab_size": 50257,
         "layer_norm_epsilon": 1e-05, "bos_token_id": 50256, "eos_token_id": 50256})"},
    {"gpt2-large",
     R"({"model_type": "gpt2", "activation_function": "gelu_new", "n_ctx": 1024, "n_embd": 1280,
         "n_head": 20, "n_layer": 36, "n_positions": 1024, "vocab_size": 50257,
         "layer_norm_epsilon": 1e-05, "bos_token_id": 50256, "eos_token_id": 50256})"},
    {"gpt2-xl",
     R"({"model_type": "gpt2", "activation_function": "gelu_new", "n_ctx": 1024, "n_embd": 1600,
         "n_head": 25, "n_layer": 48, "n_positions": 1024, "vocab_size": 50257,
         "layer_norm_epsilon": 1e-05, "bos_token_id": 50256, "eos_token_id": 50256})"},
    {"llama-3-8b",
     R"({"model_type": "llama", "hidden_act": "silu", "hidden_size": 4096,
         "intermediate_size": 14336, "max_position_embeddings": 8192,
         "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
         "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 500000.0,
         "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256,
         "attention_bias": false, "bos_token_id": 128000, "eos_token_id": 128001})"},
    {"llama-3-70b",
     R"({"model_type": "llama", "hidden_act": "silu", "hidden_size": 8192,
         "intermediate_size": 28672, "max_position_embeddings": 8192,
         "num_attention_heads": 64, "num_hidden_layers": 80, "num_key_value_heads": 8,
         "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 500000.0,
         "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256,
         "attention_bias": false, "bos_token_id": 128000, "eos_token_id": 128001})"},
    {"llama-3.1-405b",
     R"({"model_type": "llama", "hidden_act": "silu", "hidden_size": 16384,
         "intermediate_size": 53248, "max_position_embeddings": 131072,
         "num_attention_heads": 128, "num_hidden_layers": 126, "num_key_value_heads": 8,
         "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
         "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192, "rope_type": "llama3"},
         "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256,
         "attention_bias": false, "bos_token_id": 128000, "eos_token_id": 128001})"},
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<std::string> read_file(const std::filesystem::path& path) {
  return read_regular_file(path.string(), "model config", uint64_t(64) << 20);
}

}  // namespace

std::vector<std::string> public_model_names() {
  std::vector<std::string> names;
  for (const BuiltinModel& m : kBuiltins) names.push_back(m.name);
  return names;
}

std::optional<std::string> public_model_config_json(std::string_view name) {
  const std::string n = lower(name);
  for (const BuiltinModel& m : kBuiltins)
    if (n == m.name) return std::string(m.config_json);
  return std::nullopt;
}

Result<ModelConfig> resolve_model_config(std::string_view model, std::string* source) {
  if (model.empty())
    return invalid_argument("no model given (a directory, a config.json or a built-in name)");
  std::error_code ec;
  std::filesystem::path path{std::string(model)};
  if (std::filesystem::is_directory(path, ec)) path /= "config.json";
  if (std::filesystem::exists(path, ec)) {
    HAL_ASSIGN_OR_RETURN(std::string text, read_file(path));
    if (source) *source = path.string();
    return parse_model_config(text, path.string());
  }
  if (auto json = public_model_config_json(model)) {
    if (source) *source = "built-in " + lower(model);
    return parse_model_config(*json, "built-in " + lower(model));
  }
  // The runtime's own built-in models (the ones `halctl run` runs with nothing downloaded).
  for (const std::string& n : builtin_model_names()) {
    if (lower(model) != lower(n)) continue;
    HAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> m, make_builtin_model(n));
    if (source) *source = "built-in " + n;
    return m->config();
  }
  std::string names;
  for (const std::string& n : public_model_names()) names += (names.empty() ? "" : ", ") + n;
  for (const std::string& n : builtin_model_names()) names += ", " + n;
  return invalid_argument("unknown model '" + std::string(model) +
                          "': not a directory or config.json file, and not a built-in (" + names +
                          ")");
}

Result<DType> parse_plan_dtype(std::string_view name) {
  const std::string n = lower(name);
  if (n == "bf16" || n == "bfloat16") return DType::kBF16;
  if (n == "fp16" || n == "f16" || n == "float16" || n == "half") return DType::kF16;
  if (n == "fp8" || n == "fp8e4m3" || n == "e4m3") return DType::kFP8E4M3;
  if (n == "int8" || n == "i8") return DType::kI8;
  return invalid_argument("dtype '" + std::string(name) +
                          "' is not one a plan takes (bf16, fp16, fp8, int8)");
}

// ---- bounds ---------------------------------------------------------------------------

std::string BoundBreakdown::dominant() const {
  std::pair<double, const char*> best{compute_s, "compute"};
  for (auto c : {std::pair<double, const char*>{memory_s, "memory"},
                 {link_s, "link"},
                 {overhead_s, "overhead"}})
    if (c.first > best.first) best = c;
  return best.second;
}

double BoundBreakdown::fraction(std::string_view bound) const {
  const double t = total();
  if (!(t > 0)) return 0;
  if (bound == "compute") return compute_s / t;
  if (bound == "memory") return memory_s / t;
  if (bound == "link") return link_s / t;
  if (bound == "overhead") return overhead_s / t;
  return 0;
}

// ---- phases ----------------------------------------------------------------------------

namespace {

void add_bound(BoundBreakdown& b, std::string_view bound, double seconds) {
  if (bound == "compute")
    b.compute_s += seconds;
  else if (bound == "link")
    b.link_s += seconds;
  else if (bound == "overhead")
    b.overhead_s += seconds;
  else
    b.memory_s += seconds;
}

// Symbols of a model graph for a phase: every row has `past` tokens cached and sees
// `kv` keys.
std::vector<int64_t> phase_symbols(const Graph& g, int64_t past, int64_t kv) {
  std::vector<int64_t> sym(g.symbols().size(), 0);
  for (size_t i = 0; i < sym.size(); ++i)
    sym[i] = g.symbols()[i].rfind("past.", 0) == 0 ? past : kv;
  return sym;
}

std::string fmt_bytes(uint64_t b) { return hal::format_bytes(b); }

// One phase scheduled (and compiled): per task what bounds it and its device-memory bytes.
// A collective node of a parallel rank's graph (graph.h, kCollective): what it moves and
// over which of the rank's channels.
struct CollectiveTask {
  CollectiveShape shape;
  int32_t channel = 0;
};

// Per task, the collective it runs (none for tasks of ops and copies).
std::vector<std::optional<CollectiveTask>> collectives_of_tasks(const Graph& g,
                                                                const GraphTasks& tasks) {
  std::vector<std::optional<CollectiveTask>> out(tasks.nodes_of_task.size());
  for (size_t t = 0; t < tasks.nodes_of_task.size(); ++t)
    for (NodeId id : tasks.nodes_of_task[t]) {
      const Node& n = g.node(id);
      if (n.kind != NodeKind::kCollective) continue;
      const TensorDesc& d = g.value(n.outputs.at(0)).desc;
      CollectiveTask c;
      c.shape.kind = n.collective;
      c.shape.dtype = d.dtype;
      c.shape.count = uint64_t(d.numel());
      c.shape.peer = n.peer;
      c.channel = n.channel;
      out[t] = c;
    }
  return out;
}

struct PhaseResult {
  GraphTasks tasks;
  std::vector<std::optional<CollectiveTask>> collectives;  // per task (above)
  sch::Problem problem;
  sch::Schedule schedule;
  std::vector<BoundBreakdown> task_bounds;        // per task: its predicted time by bound
  std::vector<double> bytes;                      // per task, on its chosen device
  std::map<std::string, int32_t> op_task_device;  // op-level task name -> device
  std::vector<std::pair<int32_t, int32_t>> op_layer_device;  // op-level tasks: (layer, device)
  double op_by_op_seconds = 0;                               // the op-level schedule's makespan
  bool compiled = false;
  int64_t units = 0;
  std::vector<uint64_t> sram_bytes;  // per device: peak over its units
  std::vector<DeclinedNode> declined;
  std::vector<std::string> compile_notes;
  double compile_seconds = 0;
};

std::string_view bound_word(BoundBy b) {
  switch (b) {
    case BoundBy::kCompute:
      return "compute";
    case BoundBy::kOverhead:
      return "overhead";
    case BoundBy::kLink:
      return "link";
    default:
      return "memory";
  }
}

}  // namespace

Result<ModelForecast> forecast_model(const ForecastRequest& req,
                                     const std::vector<PlanDevice>& devices) {
  const ModelConfig& c = req.config;
  if (devices.empty()) return invalid_argument("plan: no devices");
  if (req.batch < 1 || req.prompt_len < 1 || req.max_new_tokens < 1)
    return invalid_argument("plan: batch, prompt length and max new tokens must be >= 1 (got " +
                            std::to_string(req.batch) + ", " + std::to_string(req.prompt_len) +
                            ", " + std::to_string(req.max_new_tokens) + ")");
  const int64_t cache_len = req.prompt_len + req.max_new_tokens;
  if (c.max_positions > 0 && cache_len > c.max_positions)
    return invalid_argument("plan: prompt length " + std::to_string(req.prompt_len) + " + " +
                            std::to_string(req.max_new_tokens) +
                            " new tokens = " + std::to_string(cache_len) + " positions exceeds " +
                            req.model_name + "'s " + std::to_string(c.max_positions));
  const DType w = req.weight_dtype;
  if (w != DType::kBF16 && w != DType::kF16 && w != DType::kFP8E4M3 && w != DType::kI8)
    return invalid_argument("plan: weight dtype " + std::string(dtype_name(w)) +
                            " is not one a plan takes (bf16, fp16, fp8, int8)");
  const DType compute = w == DType::kF16 ? DType::kF16 : DType::kBF16;

  ModelForecast plan;
  plan.model = req.model_name;
  plan.summary = c.summary();
  plan.parameters = c.parameter_count();
  plan.batch = req.batch;
  plan.prompt_len = req.prompt_len;
  plan.max_new_tokens = req.max_new_tokens;
  plan.weight_dtype = w;
  plan.compute_dtype = compute;

  std::vector<hal::DeviceInfo> infos;
  for (const PlanDevice& d : devices) infos.push_back(d.info);
  std::vector<std::string> cal_notes;
  const sch::CostModel model = sch::CostModel::from_infos(infos, req.calibration, &cal_notes);

  // Decode is timed at the mean context of its N steps (forecast.h).
  const int64_t decode_context = req.prompt_len + (req.max_new_tokens + 1) / 2;

  // Op times: the device's timer (each distinct op once per device), else the cost model.
  std::vector<std::map<std::string, std::optional<OpTiming>>> timed(devices.size());
  std::vector<int64_t> cost_model_fallbacks(devices.size(), 0);
  std::vector<std::set<std::string>> cost_model_fallback_ops(devices.size());
  Status timer_error;
  auto timing = [&](int32_t d, const OpSpec& s) -> std::optional<OpTiming> {
    const PlanDevice& dev = devices[size_t(d)];
    if (!dev.timer || !timer_error.ok()) return std::nullopt;
    // A device that cannot take 1-byte weights in an op would dequantise them first;
    // timing the bf16 op would double the weight traffic, so such ops keep the cost
    // model's time (which accounts 1-byte weights).
    if (dev.supports && !dev.supports(s)) {
      ++cost_model_fallbacks[size_t(d)];
      cost_model_fallback_ops[size_t(d)].insert(std::string(op_kind_name(s.kind)));
      return std::nullopt;
    }
    const std::string key = op_spec_key(s);
    auto it = timed[size_t(d)].find(key);
    if (it == timed[size_t(d)].end()) {
      auto t = dev.timer(s);
      if (!t.ok()) {
        timer_error = t.status();
        return std::nullopt;
      }
      it = timed[size_t(d)].emplace(key, std::move(*t)).first;
    }
    return it->second;
  };
  const OpSeconds op_seconds = [&](int32_t d, const OpSpec& s) -> std::optional<double> {
    auto t = timing(d, s);
    return t ? std::optional<double>(t->seconds) : std::nullopt;
  };
  const OpSupport support = [&](int32_t d, const OpSpec& s) {
    return !devices[size_t(d)].supports || devices[size_t(d)].supports(s);
  };
  // A task's bound (by time) and bytes on device d from its ops.
  auto task_figures = [&](const GraphTasks& tasks, size_t t, int32_t d, BoundBreakdown* bound) {
    double bytes = 0;
    for (const OpSpec& s : tasks.cost_specs_of_task[t]) {
      if (auto tm = timing(d, s)) {
        add_bound(*bound, tm->bound, tm->seconds);
        bytes += tm->bytes > 0 ? tm->bytes : op_work(s).bytes;
      } else {
        const sch::OpEstimate e = model.device(d).estimate(op_work(s));
        add_bound(*bound, sch::bound_name(e.bound), e.seconds);
        bytes += op_work(s).bytes;
      }
    }
    return bytes;
  };
  std::vector<Device*> compile_devices;
  for (const PlanDevice& d : devices) compile_devices.push_back(d.device);
  const bool parallel_rank = bool(req.collective_price);
  const bool can_compile =
      req.compile.enabled && (w == DType::kBF16 || w == DType::kF16) && !parallel_rank &&
      std::find(compile_devices.begin(), compile_devices.end(), nullptr) == compile_devices.end();
  if (req.compile.enabled && !can_compile)
    plan.notes.push_back(
        parallel_rank ? "planned op by op: a parallel rank's collectives are priced per node, "
                        "and compiled units around them are not planned yet"
        : w == DType::kBF16 || w == DType::kF16
            ? "planned op by op: compiling needs every device opened (not only its figures)"
            : "planned op by op: " + std::string(dtype_name(w)) +
                  " weights are planned as 1-byte weights, which graph views do not carry yet");

  // Bytes kept free on every device while decode is placed (see below).
  uint64_t reserve = 0;
  auto run_phase = [&](const char* name, int64_t seq, int64_t past, int64_t kv,
                       const sch::Options& options) -> Result<PhaseResult> {
    ModelGraphShape shape;
    shape.batch = req.batch;
    shape.seq = seq;
    shape.cache_len = cache_len;
    shape.logits_at = LogitsAt::kLast;
    shape.compute_dtype = compute;
    HAL_ASSIGN_OR_RETURN(ModelGraph mg, build_model_graph(c, shape));
    const std::vector<int64_t> symbols = phase_symbols(*mg.graph, past, kv);
    TaskBuildOptions build;
    build.symbols = symbols;
    build.weight_dtype = dtype_size(w) == 1 ? w : DType::kInvalid;
    PhaseResult r;
    HAL_ASSIGN_OR_RETURN(r.tasks, build_graph_tasks(*mg.graph, build));
    HAL_ASSIGN_OR_RETURN(r.problem, make_problem(r.tasks, model, support, op_seconds));
    HAL_RETURN_IF_ERROR(timer_error);
    for (int32_t d = 0; d < r.problem.device_count(); ++d) {
      const uint64_t cap = r.problem.device(d).capacity_bytes;
      if (cap > 0 && reserve > 0) r.problem.set_capacity(d, cap > reserve ? cap - reserve : 1);
    }
    // A parallel rank's collectives: their price on every device
    // (ForecastRequest::collective_price).
    r.collectives = collectives_of_tasks(*mg.graph, r.tasks);
    for (size_t t = 0; t < r.collectives.size(); ++t) {
      if (!r.collectives[t]) continue;
      const CollectivePrice price =
          req.collective_price
              ? req.collective_price(r.collectives[t]->shape, r.collectives[t]->channel)
              : CollectivePrice{};
      for (int32_t d = 0; d < r.problem.device_count(); ++d)
        r.problem.set_cost(sch::TaskId(t), d, price.seconds);
    }
    auto scheduled = sch::schedule(r.problem, options);
    if (!scheduled.ok())
      return Status(scheduled.status().code(), std::string(name) + " of " + req.model_name + ": " +
                                                   scheduled.status().message());
    r.schedule = std::move(*scheduled);
    r.op_by_op_seconds = r.schedule.makespan;
    for (size_t t = 0; t < r.tasks.nodes_of_task.size(); ++t) {
      const sch::Task& task = r.tasks.tasks.task(sch::TaskId(t));
      r.op_task_device[task.name] = r.schedule.tasks[t].device;
      r.op_layer_device.push_back({task.layer, r.schedule.tasks[t].device});
    }
    // Whole-graph offload: each device compiles what it takes of this placement, and the
    // graph is scheduled again with the units as tasks (the same as halctl run does).
    if (can_compile) {
      HAL_ASSIGN_OR_RETURN(ExecutionPlan ep,
                           plan_from_schedule(mg.graph, compile_devices, r.tasks, r.schedule));
      CompileReport report;
      HAL_RETURN_IF_ERROR(compile_plan_units(ep, req.compile, &report));
      r.declined = std::move(report.declined);
      r.compile_notes = std::move(report.notes);
      r.compile_seconds = report.compile_seconds;
      if (!ep.units.empty()) {
        HAL_ASSIGN_OR_RETURN(UnitSchedule us,
                             schedule_with_units(ep, model, op_seconds, symbols, build));
        HAL_RETURN_IF_ERROR(timer_error);
        r.compiled = true;
        r.units = int64_t(ep.units.size());
        r.sram_bytes.assign(devices.size(), 0);
        for (size_t u = 0; u < ep.units.size(); ++u)
          r.sram_bytes[size_t(ep.units[u].device)] =
              std::max(r.sram_bytes[size_t(ep.units[u].device)], us.unit_info[u].sram_bytes);
        r.task_bounds.assign(us.tasks.nodes_of_task.size(), {});
        r.bytes.assign(us.tasks.nodes_of_task.size(), 0);
        for (size_t t = 0; t < us.tasks.nodes_of_task.size(); ++t) {
          const int32_t d = us.schedule.tasks[t].device;
          if (us.task_units[t].empty()) {
            r.bytes[t] = task_figures(us.tasks, t, d, &r.task_bounds[t]);
            continue;
          }
          for (int32_t u : us.task_units[t]) {
            const ExecutableInfo& info = us.unit_info[size_t(u)];
            double groups = 0;
            for (const FusedGroupInfo& g : info.groups) {
              add_bound(r.task_bounds[t], bound_word(g.bound), g.predicted_seconds);
              groups += g.predicted_seconds;
            }
            add_bound(r.task_bounds[t], "overhead", info.predicted_seconds - groups);
            r.bytes[t] += double(info.dram_bytes());
          }
        }
        r.tasks = std::move(us.tasks);
        r.problem = std::move(us.problem);
        r.schedule = std::move(us.schedule);
        return r;
      }
    }
    r.task_bounds.assign(r.tasks.nodes_of_task.size(), {});
    r.bytes.assign(r.tasks.nodes_of_task.size(), 0);
    for (size_t t = 0; t < r.tasks.nodes_of_task.size(); ++t) {
      if (const auto& col = r.collectives[t]) {
        // Link-bound; it reads and writes its tensor once in device memory.
        const sch::TaskPlacement& tp = r.schedule.tasks[t];
        add_bound(r.task_bounds[t], "link", tp.finish - tp.start);
        r.bytes[t] = 2.0 * double(col->shape.count * dtype_size(col->shape.dtype));
        continue;
      }
      r.bytes[t] = task_figures(r.tasks, t, r.schedule.tasks[t].device, &r.task_bounds[t]);
    }
    return r;
  };

  sch::Options base;
  base.algorithm = req.algorithm;
  if (!req.placement.empty()) {
    HAL_ASSIGN_OR_RETURN(base.placement, sch::parse_placement(req.placement));
  }

  // Decode first: its placement pins prefill's.
  // Decode decides where the weights go, and prefill must then fit beside them: decode
  // is placed with room left on every device for the prefill graph's activation peak
  // (its liveness-planned arena as if on one device: an upper bound for any device's
  // share, and close to it, since one layer's activations dominate).
  {
    ModelGraphShape shape;
    shape.batch = req.batch;
    shape.seq = req.prompt_len;
    shape.cache_len = cache_len;
    shape.compute_dtype = compute;
    HAL_ASSIGN_OR_RETURN(ModelGraph mg, build_model_graph(c, shape));
    HAL_ASSIGN_OR_RETURN(std::vector<NodeId> order, mg.graph->topological_order());
    reserve = plan_memory(*mg.graph, order).arena_bytes;
  }
  auto decode_r = run_phase("decode", 1, decode_context - 1, decode_context, base);
  reserve = 0;
  uint64_t capacity = 0;
  for (const auto& i : infos) capacity += i.memory_bytes;
  if (!decode_r.ok()) {
    // Does it fit at all? The scheduler names the task that did not fit; when the weights
    // and KV caches exceed all the devices together, say that in one sentence with sizes.
    ModelGraphShape shape;
    shape.batch = req.batch;
    shape.seq = 1;
    shape.cache_len = cache_len;
    shape.compute_dtype = compute;
    auto mg = build_model_graph(c, shape);
    if (mg.ok()) {
      TaskBuildOptions build;
      build.weight_dtype = dtype_size(w) == 1 ? w : DType::kInvalid;
      auto conv = build_graph_tasks(*mg->graph, build);
      if (conv.ok() && conv->weight_bytes + conv->state_bytes > capacity) {
        std::string devs;
        for (const auto& i : infos)
          devs +=
              (devs.empty() ? "" : ", ") + i.id + " (" + i.name + ") " + fmt_bytes(i.memory_bytes);
        const uint64_t largest =
            std::max_element(infos.begin(), infos.end(), [](const auto& a, const auto& b) {
              return a.memory_bytes < b.memory_bytes;
            })->memory_bytes;
        const uint64_t need = conv->weight_bytes + conv->state_bytes;
        const uint64_t at_least = largest ? (need + largest - 1) / largest : 0;
        return out_of_memory(
            req.model_name + " needs " + fmt_bytes(conv->weight_bytes) + " of " +
            std::string(dtype_name(w)) + " weights + " + fmt_bytes(conv->state_bytes) +
            " of KV cache (batch " + std::to_string(req.batch) + " x " + std::to_string(cache_len) +
            " positions) = " + fmt_bytes(need) + " before activations, but the devices hold " +
            fmt_bytes(capacity) + " in all (" + devs + "); it needs at least " +
            std::to_string(at_least) + " devices of " + fmt_bytes(largest) +
            " (or a smaller dtype, batch or context)");
      }
    }
    return decode_r.status();
  }
  PhaseResult decode = std::move(*decode_r);

  // Every prefill task goes where decode put the task of the same name (node names are
  // the checkpoint's, equal in both graphs), so each weight stays on one device, as the
  // runtime uploads it once. Prefill-only tasks are placed freely.
  PhaseResult prefill;
  {
    sch::Options o = base;
    ModelGraphShape shape;
    shape.batch = req.batch;
    shape.seq = req.prompt_len;
    shape.cache_len = cache_len;
    shape.compute_dtype = compute;
    HAL_ASSIGN_OR_RETURN(ModelGraph mg, build_model_graph(c, shape));
    // Kept alive: build.symbols is a view of it.
    const std::vector<int64_t> symbols = phase_symbols(*mg.graph, 0, req.prompt_len);
    TaskBuildOptions build;
    build.symbols = symbols;
    build.weight_dtype = dtype_size(w) == 1 ? w : DType::kInvalid;
    HAL_ASSIGN_OR_RETURN(GraphTasks conv, build_graph_tasks(*mg.graph, build));
    if (req.placement.empty()) {
      o.task_pins.assign(conv.tasks.task_count(), -1);
      for (size_t t = 0; t < conv.tasks.task_count(); ++t) {
        auto it = decode.op_task_device.find(conv.tasks.task(sch::TaskId(t)).name);
        if (it != decode.op_task_device.end()) o.task_pins[t] = it->second;
      }
    }
    HAL_ASSIGN_OR_RETURN(prefill, run_phase("prefill", req.prompt_len, 0, req.prompt_len, o));
  }

  // ---- results ----
  plan.weight_bytes = decode.tasks.weight_bytes;
  plan.kv_cache_bytes = decode.tasks.state_bytes;
  plan.placement = sch::format_placement(sch::placement_of(decode.problem, decode.schedule));
  plan.compiled = decode.compiled || prefill.compiled;
  plan.method = "the model's prefill and decode graphs placed and timed by hal::scheduler (" +
                std::string(sch::algorithm_name(decode.schedule.algorithm)) + "); " +
                (plan.compiled ? "compiled units timed by their executables (executable_get_info), "
                                 "other "
                               : "") +
                "op times from ";
  {
    std::string sources;
    bool any_model = false;
    for (const PlanDevice& d : devices) {
      if (d.timer) {
        if (sources.find(d.timing_source) == std::string::npos)
          sources += (sources.empty() ? "" : " and ") + d.timing_source + " (" + d.info.id + ")";
      } else {
        any_model = true;
      }
    }
    if (any_model)
      sources += std::string(sources.empty() ? "" : ", else ") +
                 "the roofline cost model (DeviceInfo peaks x efficiencies)";
    plan.method += sources;
  }
  for (const std::string& n : cal_notes) plan.notes.push_back(n);
  for (size_t d = 0; d < devices.size(); ++d)
    if (cost_model_fallbacks[d] > 0) {
      std::string kinds;
      for (const std::string& k : cost_model_fallback_ops[d]) {
        if (!kinds.empty()) kinds += ", ";
        kinds += k;
      }
      plan.notes.push_back(infos[d].id + ": " + std::to_string(cost_model_fallbacks[d]) + " ops (" +
                           kinds + ") with " + std::string(dtype_name(w)) +
                           " weights timed by the cost model (1-byte weight traffic): " +
                           devices[d].timing_source + " does not run them with such weights");
    }

  auto fill_phase = [&](PhasePlan& p, const PhaseResult& r, const char* name, int64_t tokens,
                        int64_t context) {
    p.name = name;
    p.tokens = tokens;
    p.context = context;
    p.seconds = r.schedule.makespan;
    p.op_by_op_seconds = r.op_by_op_seconds;
    p.compiled = r.compiled;
    p.units = r.units;
    p.declined = int64_t(r.declined.size());
    p.compile_seconds = r.compile_seconds;
    p.tasks = int64_t(r.tasks.nodes_of_task.size());
    p.fallbacks = int32_t(r.schedule.fallbacks.size());
    p.algorithm = std::string(sch::algorithm_name(r.schedule.algorithm));
    for (size_t t = 0; t < r.tasks.nodes_of_task.size(); ++t) {
      const sch::TaskPlacement& tp = r.schedule.tasks[t];
      p.flops += r.tasks.tasks.task(sch::TaskId(t)).work.flops;
      p.hbm_bytes += r.bytes[t];
      // The task's scheduled time, split as its predicted time splits by bound.
      const BoundBreakdown& b = r.task_bounds[t];
      const double span = tp.finish - tp.start, total = b.total();
      if (total > 0) {
        for (const char* k : {"compute", "memory", "overhead", "link"})
          add_bound(p.bound, k, span * b.fraction(k));
      } else {
        add_bound(p.bound, "overhead", span);
      }
      if (const auto& col = r.collectives[t]) {
        ++p.collectives;
        p.collective_s += tp.finish - tp.start;
        if (req.collective_price)
          p.collective_link_bytes += req.collective_price(col->shape, col->channel).link_bytes;
      }
    }
    for (const sch::Transfer& x : r.schedule.transfers) {
      p.transfer_bytes += x.bytes;
      p.bound.link_s += x.finish - x.start;
    }
  };
  fill_phase(plan.prefill, prefill, "prefill", req.batch * req.prompt_len, req.prompt_len);
  fill_phase(plan.decode, decode, "decode", req.batch, decode_context);
  for (const sch::Fallback& f : decode.schedule.fallbacks)
    plan.notes.push_back("decode: " + f.reason);
  for (const sch::Fallback& f : prefill.schedule.fallbacks)
    plan.notes.push_back("prefill: " + f.reason);
  for (const PhaseResult* r : {&decode, &prefill}) {
    std::map<std::pair<int32_t, std::string>, int64_t> declined;
    for (const DeclinedNode& dn : r->declined) ++declined[{dn.device, dn.reason}];
    for (const auto& [key, count] : declined)
      plan.notes.push_back(std::string(r == &decode ? "decode" : "prefill") + ": " +
                           std::to_string(count) + " node(s) on " + infos[size_t(key.first)].id +
                           " run op by op: " + key.second);
    for (const std::string& n : r->compile_notes) plan.notes.push_back(n);
  }

  for (size_t d = 0; d < devices.size(); ++d) {
    DevicePlan dp;
    const hal::DeviceInfo& info = infos[d];
    dp.id = info.id;
    dp.name = info.name;
    dp.capacity_bytes = info.memory_bytes;
    dp.bandwidth_bytes_per_s = info.memory_bandwidth_bytes_per_s;
    if (devices[d].timer) {
      dp.timing = devices[d].timing_source;
    } else {
      dp.timing = model.device(int32_t(d)).calibration()
                      ? "roofline cost model, calibrated"
                      : "roofline cost model, default efficiencies";
    }
    if (decode.compiled) dp.timing = "compiled executables; other ops: " + dp.timing;
    const sch::DeviceMemory& dm = decode.schedule.memory[d];
    dp.weight_bytes = dm.weights_bytes;
    dp.kv_cache_bytes = dm.state_bytes;
    dp.decode_activation_bytes = dm.peak_activation_bytes;
    dp.prefill_activation_bytes = prefill.schedule.memory[d].peak_activation_bytes;
    for (const PhaseResult* r : {&decode, &prefill})
      if (d < r->sram_bytes.size()) dp.sram_bytes = std::max(dp.sram_bytes, r->sram_bytes[d]);
    std::vector<uint8_t> has_layer(size_t(std::max<int64_t>(c.num_layers, 0)), 0);
    const GraphTasks& dt = decode.tasks;
    for (size_t t = 0; t < dt.nodes_of_task.size(); ++t) {
      const sch::TaskPlacement& tp = decode.schedule.tasks[t];
      if (tp.device != int32_t(d)) continue;
      dp.decode_hbm_bytes += decode.bytes[t];
      dp.decode_busy_s += tp.finish - tp.start;
    }
    // Layers, embedding and head from the op-level placement (a unit spans many layers).
    for (const auto& [name, device] : decode.op_task_device) {
      if (device != int32_t(d)) continue;
      if (name == "lm_head") dp.head = true;
      if (name == "wte" || name == "model.embed_tokens") dp.embedding = true;
    }
    for (const auto& [layer, device] : decode.op_layer_device)
      if (device == int32_t(d) && layer >= 0 && layer < c.num_layers) has_layer[size_t(layer)] = 1;
    for (size_t t = 0; t < prefill.tasks.nodes_of_task.size(); ++t)
      if (prefill.schedule.tasks[t].device == int32_t(d))
        dp.prefill_busy_s += prefill.schedule.tasks[t].finish - prefill.schedule.tasks[t].start;
    for (int32_t l = 0; l < int32_t(has_layer.size()); ++l) {
      if (!has_layer[size_t(l)]) continue;
      ++dp.layer_count;
      if (!dp.layers.empty() && dp.layers.back().second == l - 1)
        dp.layers.back().second = l;
      else
        dp.layers.push_back({l, l});
    }
    plan.devices.push_back(std::move(dp));
  }
  // The bandwidth limit of this placement: the decode schedule replayed in its own order
  // on its own devices with every op taking only the time to read its weights at the
  // device's peak bandwidth (and transfers free). Every op takes at least that long, so
  // no prediction can beat it. On one device, or with layers split in a pipeline, it is
  // sum(weight bytes / bandwidth), the textbook decode limit.
  {
    const sch::TaskGraph& g = decode.tasks.tasks;
    std::vector<sch::TaskId> order(g.task_count());
    for (size_t t = 0; t < order.size(); ++t) order[t] = sch::TaskId(t);
    std::sort(order.begin(), order.end(), [&](sch::TaskId a, sch::TaskId b) {
      const double sa = decode.schedule.tasks[size_t(a)].start;
      const double sb = decode.schedule.tasks[size_t(b)].start;
      return sa != sb ? sa < sb : g.topological_position(a) < g.topological_position(b);
    });
    std::vector<double> finish(g.task_count(), 0), device_free(infos.size(), 0);
    double longest = 0;
    for (sch::TaskId t : order) {
      const int32_t d = decode.schedule.tasks[size_t(t)].device;
      double start = device_free[size_t(d)];
      for (int32_t e : g.in_edges(t)) start = std::max(start, finish[size_t(g.edge(e).from)]);
      // The weight bytes the op must read: all of a matmul's weight, only the gathered
      // rows of an embedding table (the op's own traffic bounds what it reads).
      double bytes = 0;
      for (sch::ResidentId r : g.residents_of(t))
        if (g.resident(r).kind == sch::ResidentKind::kWeights) bytes += double(g.resident(r).bytes);
      bytes = std::min(bytes, g.task(t).work.bytes);
      plan.weight_read_bytes += bytes;
      const double bw = infos[size_t(d)].memory_bandwidth_bytes_per_s;
      finish[size_t(t)] = start + (bw > 0 ? bytes / bw : 0.0);
      device_free[size_t(d)] = finish[size_t(t)];
      longest = std::max(longest, finish[size_t(t)]);
    }
    plan.bandwidth_limit_step_s = longest;
    for (const DevicePlan& dp : plan.devices)
      if (dp.bandwidth_bytes_per_s > 0)
        plan.all_weights_step_s += double(dp.weight_bytes) / dp.bandwidth_bytes_per_s;
  }

  // Why decode runs at this speed, in one sentence.
  {
    const BoundBreakdown& b = plan.decode.bound;
    const std::string dom = b.dominant();
    char buf[512];
    const double limit = plan.bandwidth_limit_tokens_per_s();
    const double tps = plan.decode_tokens_per_s();
    if (dom == "memory") {
      std::snprintf(
          buf, sizeof buf,
          "decode is memory-bandwidth bound (%.0f%% of op time in memory-bound ops): "
          "each step reads its weights (%s; embeddings only their rows) plus the KV cache "
          "from device memory, so it cannot beat bandwidth / weight bytes read = %.1f tokens/s; "
          "predicted %.1f "
          "(%.0f%% of that limit: sustained bandwidth below peak, KV-cache reads, "
          "per-op overheads%s)",
          100 * b.fraction("memory"), fmt_bytes(uint64_t(plan.weight_read_bytes)).c_str(), limit,
          tps, limit > 0 ? 100 * tps / limit : 0.0,
          plan.devices.size() > 1 ? ", transfers between devices" : "");
    } else {
      std::snprintf(buf, sizeof buf,
                    "decode is %s bound (%.0f%% of op time): the bandwidth limit (bandwidth / "
                    "weight bytes = %.1f tokens/s) is not what holds it to %.1f tokens/s",
                    dom.c_str(), 100 * b.fraction(dom), limit, tps);
    }
    plan.why = buf;
  }
  return plan;
}

}  // namespace hal::runtime
