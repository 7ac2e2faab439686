// Planning without running: the model's real graphs through the scheduler (planner.h).
// About 800 lines: the built-in configs, the graph-to-task conversion (collective nodes
// included) and plan_model share its pricing and memory helpers; parallel plans
// (parallel/parallel_planner.cc) call plan_model per stage rather than copy it.
#include "hal/runtime/planner.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "hal/file_io.h"
#include "hal/runtime/graph.h"
#include "hal/runtime/memory_plan.h"
#include "hal/runtime/model.h"
#include "hal/runtime/model_graph.h"
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

// ---- graph -> task graph ----------------------------------------------------------------

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

// One scheduler task per node that does device work.
struct TaskInfo {
  NodeId node = kNoNode;
  bool is_op = false;
  // kCollective: priced by PlanRequest::collective_price.
  std::optional<CollectiveShape> collective;
  int32_t channel = 0;
  OpSpec spec;       // kOp: as the device runs it (compute dtype)
  OpSpec cost_spec;  // with quantised weights (what the bytes are)
  // KV-cache writes merged into this task (the attention reading the cache): bytes they
  // copy (read + written), timed by the cost model on top of a timer's op time.
  double copy_bytes = 0;
  DType copy_dtype = DType::kBF16;
};

struct Converted {
  sch::TaskGraph graph;
  std::vector<TaskInfo> tasks;
  uint64_t weight_bytes = 0;
  uint64_t state_bytes = 0;
};

// Symbols of a model graph for a phase: every row has `past` tokens cached and sees
// `kv` keys.
std::vector<int64_t> phase_symbols(const Graph& g, int64_t past, int64_t kv) {
  std::vector<int64_t> sym(g.symbols().size(), 0);
  for (size_t i = 0; i < sym.size(); ++i)
    sym[i] = g.symbols()[i].rfind("past.", 0) == 0 ? past : kv;
  return sym;
}

Result<Converted> to_task_graph(const Graph& g, std::span<const int64_t> symbols,
                                DType weight_dtype) {
  Converted out;
  const bool quantised = dtype_size(weight_dtype) == 1;
  // Which constants are stored in the weight dtype: matmul weights and embedding tables.
  std::vector<uint8_t> quantise(g.values().size(), 0);
  if (quantised) {
    for (const Node& n : g.nodes()) {
      if (n.kind != NodeKind::kOp) continue;
      int idx = n.op == OpKind::kMatmul ? 1 : n.op == OpKind::kEmbedding ? 0 : -1;
      if (idx < 0 || idx >= int(n.inputs.size())) continue;
      const ValueId root = g.storage_root(n.inputs[size_t(idx)]);
      if (g.value(root).kind == ValueKind::kConstant && is_floating(g.value(root).desc.dtype) &&
          g.value(root).desc.dtype != DType::kF32)
        quantise[size_t(root)] = 1;
    }
  }
  auto stored_dtype = [&](ValueId root) {
    return quantise[size_t(root)] ? weight_dtype : g.value(root).desc.dtype;
  };

  std::vector<sch::TaskId> task_of(g.nodes().size(), sch::kNoTask);
  std::map<ValueId, sch::ResidentId> resident_of;
  auto resident = [&](ValueId root) -> sch::ResidentId {
    auto it = resident_of.find(root);
    if (it != resident_of.end()) return it->second;
    const Value& v = g.value(root);
    const bool state = v.kind == ValueKind::kState;
    const uint64_t bytes = uint64_t(v.desc.numel()) * dtype_size(stored_dtype(root));
    (state ? out.state_bytes : out.weight_bytes) += bytes;
    const sch::ResidentId r = out.graph.add_resident(
        v.name, bytes, state ? sch::ResidentKind::kState : sch::ResidentKind::kWeights);
    resident_of.emplace(root, r);
    return r;
  };

  // A KV-cache write and the attention that reads the cache form one task: the cache is
  // bound on one device, so the two must run there together (the runtime's scheduler
  // does the same); as separate tasks the scheduler could split them and count the
  // cache on both devices.
  std::vector<NodeId> merge_into(g.nodes().size(), kNoNode);
  std::vector<std::vector<NodeId>> merged(g.nodes().size());
  for (NodeId id = 0; id < NodeId(g.nodes().size()); ++id) {
    const Node& n = g.node(id);
    if (n.kind != NodeKind::kWriteSlice) continue;
    if (g.value(g.storage_root(n.outputs.at(0))).kind != ValueKind::kState) continue;
    for (NodeId c : g.consumers(n.outputs[0])) {
      if (g.node(c).kind != NodeKind::kOp) continue;
      merge_into[size_t(id)] = c;
      merged[size_t(c)].push_back(id);
      break;
    }
  }

  for (NodeId id = 0; id < NodeId(g.nodes().size()); ++id) {
    const Node& n = g.node(id);
    if (is_view_kind(n.kind) || merge_into[size_t(id)] != kNoNode) continue;
    TaskInfo info;
    info.node = id;
    sch::Task task;
    task.name = n.name;
    task.layer = n.layer;
    const Value& outv = g.value(n.outputs.at(0));
    const ValueKind out_root_kind = g.value(g.storage_root(n.outputs[0])).kind;
    if (n.kind == NodeKind::kOp) {
      info.is_op = true;
      OpSpec s = node_op_spec(g, id);
      if (n.kv_length) s.attrs.kv_length = n.kv_length->eval(symbols);
      info.spec = s;
      info.cost_spec = s;
      bool reads_quantised = false;
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        const ValueId root = g.storage_root(n.inputs[i]);
        if (quantise[size_t(root)]) {
          info.cost_spec.inputs[i].dtype = weight_dtype;
          reads_quantised = true;
        }
      }
      task.work = sch::OpWork::from_spec(info.cost_spec);
      // A matmul on 1-byte weights runs at that dtype's peak where the device has one.
      if (reads_quantised && n.op == OpKind::kMatmul) task.work.dtype = weight_dtype;
    } else if (n.kind == NodeKind::kCollective) {
      // Priced by the request's collective_price (its time on the links); it reads and
      // writes its tensor once in device memory.
      CollectiveShape cs;
      cs.kind = n.collective;
      cs.dtype = outv.desc.dtype;
      cs.count = uint64_t(outv.desc.numel());
      cs.peer = n.peer;
      info.collective = cs;
      info.channel = n.channel;
      task.work.op_class = OpClass::kData;
      task.work.dtype = outv.desc.dtype;
      task.work.bytes = 2.0 * double(outv.desc.bytes());
    } else {
      // Copies (concat, KV-cache writes, transfers): every byte read once, written once.
      uint64_t moved = outv.desc.bytes();
      if (n.kind == NodeKind::kWriteSlice && n.inputs.size() > 1)
        moved = g.value(n.inputs[1]).desc.bytes();
      task.work.op_class = OpClass::kData;
      task.work.dtype = outv.desc.dtype;
      task.work.bytes = 2.0 * double(moved);
    }
    std::vector<ValueId> inputs = n.inputs;
    for (NodeId w : merged[size_t(id)]) {
      const Node& wn = g.node(w);
      const double moved = 2.0 * double(g.value(wn.inputs.at(1)).desc.bytes());
      info.copy_bytes += moved;
      info.copy_dtype = g.value(wn.inputs[1]).desc.dtype;
      task.work.bytes += moved;
      inputs.insert(inputs.end(), wn.inputs.begin(), wn.inputs.end());
    }
    // Outputs that alias a state (the KV cache written in place) are not transient.
    task.activation_bytes = out_root_kind == ValueKind::kIntermediate ? outv.desc.bytes() : 0;
    const sch::TaskId t = out.graph.add_task(std::move(task));
    task_of[size_t(id)] = t;
    for (NodeId w : merged[size_t(id)]) task_of[size_t(w)] = t;
    out.tasks.push_back(info);

    for (ValueId in : inputs) {
      const ValueId root = g.storage_root(in);
      const ValueKind kind = g.value(root).kind;
      if (kind == ValueKind::kConstant || kind == ValueKind::kState)
        out.graph.use_resident(t, resident(root));
      // The task that last produced what `in` reads: follow views to a working node.
      ValueId v = in;
      sch::TaskId producer = sch::kNoTask;
      for (;;) {
        const NodeId p = g.value(v).producer;
        if (p == kNoNode) break;
        if (task_of[size_t(p)] != sch::kNoTask) {
          producer = task_of[size_t(p)];
          break;
        }
        v = g.node(p).inputs.at(0);
      }
      if (producer == sch::kNoTask || producer == t) continue;
      // Data in a state (the KV cache) stays where the state lives: an ordering edge.
      const double bytes = kind == ValueKind::kState ? 0.0 : double(g.value(root).desc.bytes());
      out.graph.add_edge(producer, t, bytes, root);
    }
  }
  HAL_RETURN_IF_ERROR(out.graph.finalize());
  return out;
}

std::string fmt_bytes(uint64_t b) { return hal::format_bytes(b); }

struct PhaseResult {
  sch::Problem problem;
  sch::Schedule schedule;
  Converted converted;
  std::vector<std::string> bounds;  // per task, on its chosen device
  std::vector<double> bytes;        // per task, on its chosen device
};

}  // namespace

Result<ModelPlan> plan_model(const PlanRequest& req, const std::vector<PlanDevice>& devices) {
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

  ModelPlan plan;
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
  std::vector<std::string> device_ids;
  for (const auto& i : infos) device_ids.push_back(i.id);

  // Decode is timed at the mean context of its N steps (planner.h).
  const int64_t decode_context = req.prompt_len + (req.max_new_tokens + 1) / 2;

  // Timing cache: identical ops (every layer's) are timed once per device.
  std::vector<std::map<std::string, std::optional<OpTiming>>> timed(devices.size());
  std::vector<int64_t> cost_model_fallbacks(devices.size(), 0);
  std::vector<std::set<std::string>> cost_model_fallback_ops(devices.size());

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
    HAL_ASSIGN_OR_RETURN(Converted conv, to_task_graph(*mg.graph, symbols, w));
    const std::vector<TaskInfo> tasks = conv.tasks;
    PhaseResult r;
    HAL_ASSIGN_OR_RETURN(r.problem, sch::Problem::from_cost_model(conv.graph, model));
    for (int32_t d = 0; d < r.problem.device_count(); ++d) {
      const uint64_t cap = r.problem.device(d).capacity_bytes;
      if (cap > 0 && reserve > 0) r.problem.set_capacity(d, cap > reserve ? cap - reserve : 1);
    }
    r.converted = std::move(conv);
    r.bounds.assign(tasks.size(), "memory");
    r.bytes.assign(tasks.size(), 0);
    // Collectives: their price on every device.
    for (size_t t = 0; t < tasks.size(); ++t) {
      if (!tasks[t].collective) continue;
      const CollectivePrice price =
          req.collective_price ? req.collective_price(*tasks[t].collective, tasks[t].channel)
                               : CollectivePrice{};
      for (size_t d = 0; d < devices.size(); ++d)
        r.problem.set_cost(sch::TaskId(t), int32_t(d), price.seconds);
    }
    // Support and simulator timings.
    for (size_t t = 0; t < tasks.size(); ++t) {
      if (!tasks[t].is_op) continue;
      for (size_t d = 0; d < devices.size(); ++d) {
        if (devices[d].supports && !devices[d].supports(tasks[t].spec)) {
          r.problem.set_supported(sch::TaskId(t), int32_t(d), false);
          continue;
        }
        if (!devices[d].timer) continue;
        // The timer runs the op with its weights as stored. A device that cannot take
        // 1-byte weights in a matmul would dequantise them first; timing the bf16 op
        // instead would double the weight traffic, so such ops keep the cost model's
        // time (which accounts 1-byte weights).
        const OpSpec& s = tasks[t].cost_spec;
        if (devices[d].supports && !devices[d].supports(s)) {
          ++cost_model_fallbacks[d];
          cost_model_fallback_ops[d].insert(std::string(op_kind_name(s.kind)));
          continue;
        }
        const std::string key = op_spec_key(s);
        auto it = timed[d].find(key);
        if (it == timed[d].end()) {
          HAL_ASSIGN_OR_RETURN(std::optional<OpTiming> timing, devices[d].timer(s));
          it = timed[d].emplace(key, std::move(timing)).first;
        }
        if (it->second) {
          double seconds = it->second->seconds;
          if (tasks[t].copy_bytes > 0)
            seconds += model.device(int32_t(d))
                           .estimate({OpClass::kData, tasks[t].copy_dtype, 0, tasks[t].copy_bytes})
                           .seconds;
          r.problem.set_cost(sch::TaskId(t), int32_t(d), seconds);
        }
      }
    }
    auto scheduled = sch::schedule(r.problem, options);
    if (!scheduled.ok())
      return Status(scheduled.status().code(), std::string(name) + " of " + req.model_name + ": " +
                                                   scheduled.status().message());
    r.schedule = std::move(*scheduled);
    for (size_t t = 0; t < tasks.size(); ++t) {
      const int32_t d = r.schedule.tasks[t].device;
      const sch::OpWork& work = r.converted.graph.task(sch::TaskId(t)).work;
      std::optional<OpTiming> sim;
      if (tasks[t].is_op && devices[size_t(d)].timer) {
        auto it = timed[size_t(d)].find(op_spec_key(tasks[t].cost_spec));
        if (it != timed[size_t(d)].end()) sim = it->second;
      }
      if (tasks[t].collective) {
        r.bounds[t] = "link";
        r.bytes[t] = work.bytes;
      } else if (sim) {
        r.bounds[t] = sim->bound;
        r.bytes[t] = sim->bytes > 0 ? sim->bytes + tasks[t].copy_bytes : work.bytes;
      } else {
        r.bounds[t] = std::string(sch::bound_name(model.device(d).estimate(work).bound));
        r.bytes[t] = work.bytes;
      }
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
    // Recompute the sizes for the message from a graph conversion alone.
    ModelGraphShape shape;
    shape.batch = req.batch;
    shape.seq = 1;
    shape.cache_len = cache_len;
    shape.compute_dtype = compute;
    auto mg = build_model_graph(c, shape);
    if (mg.ok()) {
      auto conv = to_task_graph(*mg->graph, phase_symbols(*mg->graph, 0, 1), w);
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

  sch::Options pre = base;
  // Every prefill task goes where decode put the task of the same name (node names are
  // the checkpoint's, equal in both graphs), so each weight stays on one device, as the
  // runtime uploads it once. Prefill-only tasks are placed freely.
  std::map<std::string, int32_t> decode_device_of;
  for (size_t t = 0; t < decode.converted.tasks.size(); ++t)
    decode_device_of[decode.converted.graph.task(sch::TaskId(t)).name] =
        decode.schedule.tasks[t].device;
  // Prefill: built separately to read its task names for the pins.
  PhaseResult prefill;
  {
    sch::Options o = pre;
    ModelGraphShape shape;
    shape.batch = req.batch;
    shape.seq = req.prompt_len;
    shape.cache_len = cache_len;
    shape.compute_dtype = compute;
    HAL_ASSIGN_OR_RETURN(ModelGraph mg, build_model_graph(c, shape));
    HAL_ASSIGN_OR_RETURN(Converted conv,
                         to_task_graph(*mg.graph, phase_symbols(*mg.graph, 0, req.prompt_len), w));
    if (req.placement.empty()) {
      o.task_pins.assign(conv.graph.task_count(), -1);
      for (size_t t = 0; t < conv.graph.task_count(); ++t) {
        const sch::Task& task = conv.graph.task(sch::TaskId(t));
        auto it = decode_device_of.find(task.name);
        if (it != decode_device_of.end()) o.task_pins[t] = it->second;
      }
    }
    HAL_ASSIGN_OR_RETURN(prefill, run_phase("prefill", req.prompt_len, 0, req.prompt_len, o));
  }

  // ---- results ----
  plan.weight_bytes = decode.converted.weight_bytes;
  plan.kv_cache_bytes = decode.converted.state_bytes;
  plan.placement = sch::format_placement(sch::placement_of(decode.problem, decode.schedule));
  plan.method = "the model's prefill and decode graphs placed and timed by hal::scheduler (" +
                std::string(sch::algorithm_name(decode.schedule.algorithm)) + "); op times from ";
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
    p.tasks = int64_t(r.converted.tasks.size());
    p.fallbacks = int32_t(r.schedule.fallbacks.size());
    p.algorithm = std::string(sch::algorithm_name(r.schedule.algorithm));
    for (size_t t = 0; t < r.converted.tasks.size(); ++t) {
      const sch::TaskPlacement& tp = r.schedule.tasks[t];
      p.flops += r.converted.graph.task(sch::TaskId(t)).work.flops;
      p.hbm_bytes += r.bytes[t];
      add_bound(p.bound, r.bounds[t], tp.finish - tp.start);
      const TaskInfo& info = r.converted.tasks[t];
      if (info.collective) {
        ++p.collectives;
        p.collective_s += tp.finish - tp.start;
        if (req.collective_price)
          p.collective_link_bytes +=
              req.collective_price(*info.collective, info.channel).link_bytes;
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
    const sch::DeviceMemory& dm = decode.schedule.memory[d];
    dp.weight_bytes = dm.weights_bytes;
    dp.kv_cache_bytes = dm.state_bytes;
    dp.decode_activation_bytes = dm.peak_activation_bytes;
    dp.prefill_activation_bytes = prefill.schedule.memory[d].peak_activation_bytes;
    std::vector<uint8_t> has_layer(size_t(std::max<int64_t>(c.num_layers, 0)), 0);
    for (size_t t = 0; t < decode.converted.tasks.size(); ++t) {
      const sch::TaskPlacement& tp = decode.schedule.tasks[t];
      if (tp.device != int32_t(d)) continue;
      const sch::Task& task = decode.converted.graph.task(sch::TaskId(t));
      dp.decode_hbm_bytes += decode.bytes[t];
      dp.decode_busy_s += tp.finish - tp.start;
      if (task.layer >= 0 && task.layer < c.num_layers) has_layer[size_t(task.layer)] = 1;
      if (task.name == "lm_head") dp.head = true;
      if (task.name == "wte" || task.name == "model.embed_tokens") dp.embedding = true;
    }
    for (size_t t = 0; t < prefill.converted.tasks.size(); ++t)
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
    const sch::TaskGraph& g = decode.converted.graph;
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
