// Sessions: weights on devices, KV caches, prepared prefill/decode executors, and the
// generation loop with sampling.
#include "hal/runtime/session.h"

#include "hal/runtime/quantize.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <tuple>

namespace hal::runtime {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool same_shape(const ModelGraphShape& a, const ModelGraphShape& b) {
  return a.batch == b.batch && a.seq == b.seq && a.cache_len == b.cache_len &&
         a.logits_at == b.logits_at && a.compute_dtype == b.compute_dtype && a.weights == b.weights;
}

// Four floats or ints: GCC/Clang vector extensions, one SSE register on baseline x86-64
// (a 32-byte type there compiles to slow lane-by-lane code).
typedef float Floats4 __attribute__((vector_size(16)));
typedef int32_t Ints4 __attribute__((vector_size(16)));

// The lowest id of the largest logit; NaNs never compare greater, so they never win. Each
// of eight lanes (two vectors) follows ids l, l + 8, ...: its maximum and the first id
// reaching it (strictly greater replaces); then the lanes' maxima are compared, ties to the
// lower id. Exact in any order (a maximum is), and one pass: GPT-2's 50,257 logits, once
// per decoded token, 35-60 -> 13 us against two scalar passes (standalone, -O3).
int32_t greedy_token(std::span<const float> logits) {
  const int32_t n = int32_t(logits.size());
  const float* v = logits.data();
  const float lowest = -std::numeric_limits<float>::infinity();
  float top = lowest;
  int32_t at = -1;
  int32_t i = 0;
  if (n >= 16) {
    Floats4 lane_top[2] = {{lowest, lowest, lowest, lowest}, {lowest, lowest, lowest, lowest}};
    Ints4 lane_at[2] = {{-1, -1, -1, -1}, {-1, -1, -1, -1}};
    Ints4 ids[2] = {{0, 1, 2, 3}, {4, 5, 6, 7}};
    for (; i + 8 <= n; i += 8)
      for (int h = 0; h < 2; ++h) {
        Floats4 x;
        std::memcpy(&x, v + i + 4 * h, sizeof(x));
        const Ints4 greater = x > lane_top[h];
        lane_top[h] = greater ? x : lane_top[h];
        lane_at[h] = greater ? ids[h] : lane_at[h];
        ids[h] += 8;
      }
    for (int h = 0; h < 2; ++h)
      for (int l = 0; l < 4; ++l) {
        const float t = lane_top[h][l];
        const int32_t id = lane_at[h][l];
        if (id >= 0 && (t > top || (t == top && id < at))) {
          top = t;
          at = id;
        }
      }
  }
  for (; i < n; ++i)
    if (v[i] > top) {
      top = v[i];
      at = i;
    }
  if (at >= 0) return at;
  // Nothing above -inf: the first -inf, else (all NaN, or empty) id 0.
  for (int32_t j = 0; j < n; ++j)
    if (v[j] == lowest) return j;
  return 0;
}

}  // namespace

// ---- sampling --------------------------------------------------------------------

uint64_t SamplingRng::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double SamplingRng::uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }

int32_t sample_token(std::span<const float> logits, const SamplingOptions& o, SamplingRng& rng) {
  const int32_t n = int32_t(logits.size());
  if (n == 0) return 0;
  // The lowest id of the largest logit, NaNs ignored (0 when nothing beats -inf and no
  // logit is -inf). greedy_token: eight lanes each keep their running maximum and the
  // first id that reached it, one pass.
  auto argmax = [&] { return greedy_token(logits); };
  if (!(o.temperature > 0.0f)) return argmax();
  // Candidates sorted by logit (descending, then by id), cut by top-k.
  std::vector<int32_t> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) {
    const float la = logits[size_t(a)], lb = logits[size_t(b)];
    return la > lb || (la == lb && a < b);
  };
  size_t keep = size_t(n);
  if (o.top_k > 0 && o.top_k < n) {
    keep = size_t(o.top_k);
    std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(keep), ids.end(), by_logit);
  } else {
    std::sort(ids.begin(), ids.end(), by_logit);
  }
  ids.resize(keep);
  ids.erase(std::remove_if(ids.begin(), ids.end(),
                           [&](int32_t i) { return std::isnan(logits[size_t(i)]); }),
            ids.end());
  if (ids.empty()) return argmax();
  const double inv_t = 1.0 / double(o.temperature);
  const double top = double(logits[size_t(ids[0])]) * inv_t;
  std::vector<double> p(ids.size());
  double sum = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    p[i] = std::exp(double(logits[size_t(ids[i])]) * inv_t - top);
    sum += p[i];
  }
  // Nucleus: the smallest prefix whose probability reaches top_p (at least one token).
  if (o.top_p < 1.0f) {
    double acc = 0;
    size_t cut = ids.size();
    for (size_t i = 0; i < ids.size(); ++i) {
      acc += p[i] / sum;
      if (acc >= double(o.top_p)) {
        cut = i + 1;
        break;
      }
    }
    p.resize(cut);
    ids.resize(cut);
    sum = std::accumulate(p.begin(), p.end(), 0.0);
  }
  double u = rng.uniform() * sum;
  for (size_t i = 0; i < ids.size(); ++i) {
    u -= p[i];
    if (u < 0) return ids[i];
  }
  return ids.back();
}

// ---- Session ---------------------------------------------------------------------

struct Session::Prepared {
  ModelGraphShape shape;
  ModelGraph graph;
  std::unique_ptr<Executor> executor;
  uint64_t bound_epoch = 0;  // state_epoch_ when last bound; 0 = never
  uint64_t activation_bytes = 0;
  std::shared_ptr<const PlanFootprint> footprint;  // profile only
};

Session::~Session() {
  prepared_.clear();  // executors (streams) before the buffers they use
  states_.clear();
  weights_.clear();
}

// These two here, where Prepared is complete. failover.cc empties prepared_, states_
// and weights_ before it assigns, so no executor outlives the buffers it was bound to.
Session& Session::operator=(Session&&) = default;

void Session::release_run_state() {
  prepared_.clear();  // executors (streams, arenas) before the caches they were bound to
  states_.clear();
  ++state_epoch_;
}

Result<std::unique_ptr<Session>> Session::create(std::shared_ptr<const Model> model,
                                                 SessionOptions options) {
  if (!model) return invalid_argument("session: no model");
  if (options.devices.empty()) return invalid_argument("session: no devices");
  for (Device* d : options.devices)
    if (!d) return invalid_argument("session: a device is null");
  const DType dt = options.compute_dtype;
  if (dt != DType::kF32 && dt != DType::kF16 && dt != DType::kBF16)
    return invalid_argument("session: compute dtype must be f32, f16 or bf16, got " +
                            std::string(dtype_name(dt)));
  std::unique_ptr<Session> s(new Session());
  s->model_ = std::move(model);
  s->options_ = std::move(options);
  // Upload every weight the decode graph reads, where it reads it.
  // The prototype: one decode step over the planned context, so the placement counts
  // the KV caches a long generation needs against each device's capacity.
  HAL_ASSIGN_OR_RETURN(WeightFormats formats,
                       plan_weight_formats(*s->model_, dt, s->options_.weights));
  s->weight_formats_ = std::make_shared<const WeightFormats>(std::move(formats));
  ModelGraphShape proto;
  proto.compute_dtype = dt;
  proto.weights = s->weight_formats_;
  const int64_t positions = s->config().max_positions;
  proto.cache_len = s->options_.planned_context > 0 ? s->options_.planned_context
                    : positions > 0                 ? std::min<int64_t>(positions, 4096)
                                                    : 2048;
  HAL_ASSIGN_OR_RETURN(ModelGraph mg, build_model_graph(s->config(), proto));
  HAL_ASSIGN_OR_RETURN(ExecutionPlan plan, s->make_plan(mg.graph));
  // Each block's device: where most of its weight bytes are read (a scheduler may run a
  // block's cheap first op elsewhere); a block without weights: its first op's device.
  const size_t n_layers = size_t(s->config().num_layers);
  const size_t n_devices = plan.devices.size();
  s->layer_device_.assign(n_layers, -1);
  std::vector<uint64_t> weight_bytes(n_layers * n_devices, 0);
  for (const PlannedStep& step : plan.steps) {
    const Node& n = plan.graph->node(step.node);
    if (n.layer < 0 || size_t(n.layer) >= n_layers || n.kind != NodeKind::kOp) continue;
    if (s->layer_device_[size_t(n.layer)] < 0) s->layer_device_[size_t(n.layer)] = step.device;
    for (ValueId in : n.inputs) {
      const Value& v = plan.graph->value(plan.graph->storage_root(in));
      if (v.kind == ValueKind::kConstant && size_t(step.device) < n_devices)
        weight_bytes[size_t(n.layer) * n_devices + size_t(step.device)] += v.desc.bytes();
    }
  }
  for (size_t l = 0; l < n_layers; ++l) {
    const auto first = weight_bytes.begin() + std::ptrdiff_t(l * n_devices);
    const auto most = std::max_element(first, first + std::ptrdiff_t(n_devices));
    if (n_devices > 0 && *most > 0) s->layer_device_[l] = int32_t(most - first);
    s->layer_device_[l] = std::max(s->layer_device_[l], 0);
  }
  uint64_t total = 0;
  std::vector<std::pair<std::string, int32_t>> wanted;
  for (const RequiredBinding& b : plan.required_bindings) {
    const Value& v = plan.graph->value(b.value);
    if (v.kind != ValueKind::kConstant) continue;
    wanted.emplace_back(v.name, b.device);
    total += v.desc.bytes();
  }
  uint64_t done = 0;
  std::vector<Stream> upload_streams;
  for (Device* d : s->options_.devices) {
    HAL_ASSIGN_OR_RETURN(Stream st, d->create_stream());
    upload_streams.push_back(std::move(st));
  }
  for (const auto& [name, dev] : wanted) {
    const Value& v = plan.graph->value(*plan.graph->find_value(name));
    HAL_ASSIGN_OR_RETURN(HostTensor t, s->model_->weight(name));
    Device* device = s->options_.devices[size_t(dev)];
    const uint64_t bytes = v.desc.bytes();
    auto buf = device->allocate(bytes);
    if (!buf.ok())
      return buf.status().with_context("session: weight '" + name + "' on " + device->id());
    WeightFormat format{v.desc.dtype, false};
    if (const WeightFormat* f = s->weight_formats_->find(name)) format = *f;
    auto converted = convert_weight(t, format);
    if (!converted.ok()) return converted.status().with_context("session: weight '" + name + "'");
    if (converted->bytes != bytes)
      return internal_error("session: weight '" + name + "' converts to " +
                            std::to_string(converted->bytes) + " bytes; its graph value needs " +
                            std::to_string(bytes));
    const void* src = converted->data;
    Stream& st = upload_streams[size_t(dev)];
    HAL_RETURN_IF_ERROR(st.copy_from_host(src, *buf, 0, bytes));
    HAL_RETURN_IF_ERROR(st.synchronize().with_context("session: uploading '" + name + "'"));
    s->weights_.emplace(std::make_pair(name, dev), std::move(*buf));
    s->weight_bytes_ += bytes;
    done += bytes;
    if (s->options_.progress) s->options_.progress("uploading weights", done, total);
  }
  return s;
}

Result<ExecutionPlan> Session::make_plan(std::shared_ptr<const Graph> graph) const {
  if (options_.planner) {
    HAL_ASSIGN_OR_RETURN(ExecutionPlan plan, options_.planner(std::move(graph), options_.devices));
    if (plan.devices != options_.devices)
      return invalid_argument("session: the planner must place on the session's devices, in order");
    return plan;
  }
  ExecutionPlan plan;
  if (options_.devices.size() == 1) {
    HAL_ASSIGN_OR_RETURN(plan, make_single_device_plan(std::move(graph), options_.devices[0]));
  } else {
    const int64_t layers = config().num_layers;
    const int64_t devices = int64_t(options_.devices.size());
    std::vector<int32_t> layer_device;
    for (int64_t l = 0; l < layers; ++l)
      layer_device.push_back(int32_t(l * devices / std::max<int64_t>(layers, 1)));
    HAL_ASSIGN_OR_RETURN(
        plan, make_layer_split_plan(std::move(graph), options_.devices, std::move(layer_device)));
  }
  HAL_RETURN_IF_ERROR(compile_plan_units(plan, options_.compile));
  return plan;
}

Status Session::bind_all(Prepared& p) {
  const Graph& g = p.executor->graph();
  for (const RequiredBinding& b : p.executor->plan().required_bindings) {
    const Value& v = g.value(b.value);
    Device* device = options_.devices[size_t(b.device)];
    if (v.kind == ValueKind::kConstant) {
      auto it = weights_.find({v.name, b.device});
      if (it == weights_.end())
        return internal_error("session: weight '" + v.name + "' was not uploaded to " +
                              device->id() +
                              " (the planner placed it differently than for "
                              "the prototype graph)");
      HAL_RETURN_IF_ERROR(p.executor->bind(b.value, b.device, it->second));
      continue;
    }
    // A state (KV cache): shared by every graph of the same shape, reallocated when the
    // shape changes.
    Buffer& buf = states_[{v.name, b.device}];
    const uint64_t need = v.desc.extent_bytes();
    if (!buf.valid() || buf.size() != need) {
      buf.reset();
      auto fresh = device->allocate(need);
      if (!fresh.ok())
        return fresh.status().with_context("session: '" + v.name + "' on " + device->id());
      buf = std::move(*fresh);
      ++state_epoch_;
    }
    HAL_RETURN_IF_ERROR(p.executor->bind(b.value, b.device, buf));
  }
  p.bound_epoch = state_epoch_;
  return ok_status();
}

uint64_t Session::state_bytes(const Prepared& p) const {
  uint64_t total = 0;
  const Graph& g = p.executor->graph();
  for (const RequiredBinding& b : p.executor->plan().required_bindings)
    if (g.value(b.value).kind == ValueKind::kState) total += g.value(b.value).desc.extent_bytes();
  return total;
}

Result<Session::Prepared*> Session::prepare(const ModelGraphShape& requested) {
  ModelGraphShape shape = requested;
  shape.weights = weight_formats_;
  Prepared* p = nullptr;
  for (auto& e : prepared_)
    if (same_shape(e->shape, shape)) p = e.get();
  if (!p) {
    HAL_ASSIGN_OR_RETURN(ModelGraph mg, build_model_graph(config(), shape));
    HAL_ASSIGN_OR_RETURN(ExecutionPlan plan, make_plan(mg.graph));
    // The plan may have copied the graph (transfers): ids are kept, so mg's ids hold.
    ExecutorOptions eo;
    eo.record_commands = options_.record_commands || options_.profile;
    eo.channels = options_.channels;
    const uint64_t activation = plan.peak_activation_bytes();
    std::shared_ptr<const PlanFootprint> footprint;
    if (options_.profile) footprint = std::make_shared<PlanFootprint>(plan_footprint(plan));
    HAL_ASSIGN_OR_RETURN(auto executor, Executor::create(std::move(plan), eo));
    auto entry = std::make_unique<Prepared>();
    entry->shape = shape;
    entry->graph = std::move(mg);
    entry->executor = std::move(executor);
    entry->activation_bytes = activation;
    entry->footprint = std::move(footprint);
    if (prepared_.size() >= 6) prepared_.erase(prepared_.begin());  // bounded: oldest out
    prepared_.push_back(std::move(entry));
    p = prepared_.back().get();
  }
  if (p->bound_epoch != state_epoch_) HAL_RETURN_IF_ERROR(bind_all(*p));
  return p;
}

Status Session::check_prompts(const std::vector<std::vector<int32_t>>& prompts,
                              int64_t extra) const {
  if (prompts.empty()) return invalid_argument("no prompts");
  const ModelConfig& c = config();
  for (size_t b = 0; b < prompts.size(); ++b) {
    if (prompts[b].empty()) return invalid_argument("prompt " + std::to_string(b) + " is empty");
    for (size_t i = 0; i < prompts[b].size(); ++i) {
      const int32_t id = prompts[b][i];
      if (id < 0 || id >= c.vocab_size)
        return invalid_argument("prompt " + std::to_string(b) + ": token id " + std::to_string(id) +
                                " at position " + std::to_string(i) +
                                " is outside the vocabulary [0, " + std::to_string(c.vocab_size) +
                                ")");
    }
    const int64_t need = int64_t(prompts[b].size()) + extra;
    if (c.family == ModelFamily::kGpt2 && need > c.max_positions)
      return invalid_argument("prompt " + std::to_string(b) + ": " +
                              std::to_string(prompts[b].size()) + " tokens + " +
                              std::to_string(extra) + " more exceed the model's " +
                              std::to_string(c.max_positions) + " positions");
  }
  return ok_status();
}

Result<GenerationResult> Session::generate(const std::vector<std::vector<int32_t>>& prompts,
                                           const GenerationOptions& opt) {
  std::vector<SamplingRng> rngs(prompts.size(), SamplingRng(opt.sampling.seed));
  GenerationResult r;
  Status s = generate_into(prompts, opt, r, rngs);
  if (s.ok()) return r;
  if (opt.failover) return resume_after_fault(prompts, opt, std::move(r), std::move(rngs), s);
  release_run_state();
  return s;
}

Status Session::generate_into(const std::vector<std::vector<int32_t>>& prompts,
                              const GenerationOptions& opt, GenerationResult& r,
                              std::vector<SamplingRng>& rngs) {
  r = GenerationResult();
  if (opt.max_new_tokens < 0) return invalid_argument("max_new_tokens must be >= 0");
  const int64_t n_new = opt.max_new_tokens;
  HAL_RETURN_IF_ERROR(check_prompts(prompts, std::max<int64_t>(n_new - 1, 0)));
  if (opt.sampling.temperature < 0 || !(opt.sampling.top_p > 0 && opt.sampling.top_p <= 1) ||
      opt.sampling.top_k < 0)
    return invalid_argument("sampling needs temperature >= 0, top_k >= 0 and 0 < top_p <= 1");
  const ModelConfig& c = config();
  const int64_t batch = int64_t(prompts.size());
  const int64_t vocab = c.vocab_size;
  int64_t seq = 0;
  if (rngs.size() != prompts.size())
    return internal_error("session: one sampling generator per prompt expected");
  for (const auto& p : prompts) {
    seq = std::max<int64_t>(seq, int64_t(p.size()));
    r.prompt_tokens += int64_t(p.size());
  }
  r.tokens.assign(size_t(batch), {});
  r.stopped.assign(size_t(batch), 0);
  if (opt.keep_logits) r.logits.assign(size_t(batch), {});
  records_.clear();
  if (n_new == 0) return ok_status();
  int64_t cache_len = 0;
  {
    HAL_ASSIGN_OR_RETURN(auto sizes, generation_shape(seq, n_new));
    std::tie(seq, cache_len) = sizes;
  }

  std::vector<char> finished(size_t(batch), 0);
  std::vector<float> logits(size_t(batch * vocab));
  std::vector<int32_t> ids, positions, kv_lengths, last_index;
  std::vector<int64_t> symbols;
  double* device_seconds = &r.prefill_device_seconds;
  const char* phase = "prefill";
  const Prepared* running = nullptr;
  auto take = [&](const ModelGraph& mg, Executor& ex) -> Status {
    std::vector<HostInput> in = {{mg.ids, ids.data(), ids.size() * 4},
                                 {mg.positions, positions.data(), positions.size() * 4},
                                 {mg.kv_lengths, kv_lengths.data(), kv_lengths.size() * 4}};
    if (mg.last_index != kNoValue)
      in.push_back({mg.last_index, last_index.data(), last_index.size() * 4});
    const HostOutput out[] = {{mg.logits, logits.data(), logits.size() * 4}};
    HAL_RETURN_IF_ERROR(ex.run({symbols, in, out}));
    if (options_.devices.size() == 1) *device_seconds += ex.last_device_seconds(0);
    if (options_.record_commands) {
      for (StepRecord& rec : ex.take_records()) records_.push_back(rec);
    } else if (options_.profile) {
      ex.take_records();  // the timeline holds what the report needs
    }
    if (options_.profile) {
      ProfiledRun run;
      run.phase = phase;
      for (char f : finished) run.tokens += f ? 0 : 1;
      run.graph = ex.plan().graph;
      run.footprint = running ? running->footprint : nullptr;
      run.timeline = ex.last_timeline();
      run.symbols = symbols;
      r.runs.push_back(std::move(run));
    }
    for (int64_t b = 0; b < batch; ++b) {
      if (finished[size_t(b)]) continue;
      std::span<const float> row(logits.data() + b * vocab, size_t(vocab));
      const int32_t tok = sample_token(row, opt.sampling, rngs[size_t(b)]);
      r.tokens[size_t(b)].push_back(tok);
      if (opt.keep_logits)
        r.logits[size_t(b)].insert(r.logits[size_t(b)].end(), row.begin(), row.end());
      const bool stop_id = (opt.eos_token_id >= 0 && tok == opt.eos_token_id) ||
                           std::find(opt.stop_token_ids.begin(), opt.stop_token_ids.end(), tok) !=
                               opt.stop_token_ids.end();
      // The callback sees every token, the stopping one too (its text may complete a
      // character the stream holds).
      const bool go_on = !opt.on_token || opt.on_token(b, tok);
      if (stop_id || !go_on) finished[size_t(b)] = r.stopped[size_t(b)] = 1;
    }
    return ok_status();
  };

  // Prefill.
  ModelGraphShape shape;
  shape.batch = batch;
  shape.seq = seq;
  shape.cache_len = cache_len;
  shape.compute_dtype = options_.compute_dtype;
  const auto t0 = Clock::now();
  HAL_ASSIGN_OR_RETURN(Prepared * pre, prepare(shape));
  running = pre;
  ids.assign(size_t(batch * seq), 0);
  positions.resize(size_t(batch * seq));
  kv_lengths.assign(size_t(batch), int32_t(seq));
  last_index.resize(size_t(batch));
  for (int64_t b = 0; b < batch; ++b) {
    const auto& p = prompts[size_t(b)];
    std::copy(p.begin(), p.end(), ids.begin() + b * seq);
    for (int64_t i = 0; i < seq; ++i) positions[size_t(b * seq + i)] = int32_t(i);
    last_index[size_t(b)] = int32_t(b * seq + int64_t(p.size()) - 1);
  }
  symbols.assign(size_t(batch), 0);
  symbols.push_back(seq);
  HAL_RETURN_IF_ERROR(take(pre->graph, *pre->executor).with_context("prefill"));
  r.prefill_seconds = seconds_since(t0);
  r.prefill_activation_bytes = pre->activation_bytes;
  r.kv_cache_bytes = state_bytes(*pre);
  if (opt.progress) opt.progress("generating", 1, uint64_t(n_new));

  // Decode: one token per row per step, each row at its own position.
  if (n_new > 1) {
    shape.seq = 1;
    HAL_ASSIGN_OR_RETURN(Prepared * dec, prepare(shape));
    r.decode_activation_bytes = dec->activation_bytes;
    device_seconds = &r.decode_device_seconds;
    phase = "decode";
    running = dec;
    ids.assign(size_t(batch), 0);
    positions.assign(size_t(batch), 0);
    symbols.assign(size_t(batch) + 1, 0);
    const auto d0 = Clock::now();
    for (int64_t t = 1; t < n_new; ++t) {
      if (std::all_of(finished.begin(), finished.end(), [](char f) { return f != 0; })) break;
      const auto s0 = Clock::now();
      int64_t kv_max = 0;
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t past = int64_t(prompts[size_t(b)].size()) + t - 1;
        ids[size_t(b)] = r.tokens[size_t(b)].back();
        positions[size_t(b)] = int32_t(past);
        kv_lengths[size_t(b)] = int32_t(past + 1);
        symbols[size_t(b)] = past;
        kv_max = std::max(kv_max, past + 1);
      }
      symbols[size_t(batch)] = kv_max;
      int64_t active = 0;
      for (char f : finished) active += f ? 0 : 1;
      HAL_RETURN_IF_ERROR(
          take(dec->graph, *dec->executor).with_context("decode step " + std::to_string(t)));
      r.decode_tokens += active;
      r.step_seconds.push_back(seconds_since(s0));
      if (opt.progress) opt.progress("generating", uint64_t(t + 1), uint64_t(n_new));
    }
    r.decode_seconds = seconds_since(d0);
  }
  return ok_status();
}

Result<std::pair<int64_t, int64_t>> Session::generation_shape(int64_t longest,
                                                              int64_t max_new_tokens) const {
  int64_t seq = longest;
  const int64_t limit = config().max_positions;
  for (int64_t b : options_.prompt_buckets)
    if (b >= longest && (seq == longest || b < seq) && (limit <= 0 || b <= limit)) seq = b;
  // Positions written: prompt and all but the last new token; rounded up so similar
  // requests share prepared graphs.
  const int64_t need = longest + std::max<int64_t>(max_new_tokens, 1) - 1;
  int64_t cache_len = (std::max(seq, need) + 63) / 64 * 64;
  if (options_.context > 0) {
    if (need > options_.context || seq > options_.context)
      return invalid_argument("session: a prompt of " + std::to_string(longest) + " tokens and " +
                              std::to_string(max_new_tokens) + " new tokens need " +
                              std::to_string(std::max(seq, need)) +
                              " positions; the session is sized for " +
                              std::to_string(options_.context));
    cache_len = options_.context;
  }
  return std::make_pair(seq, cache_len);
}

Status Session::prepare_generation(int64_t batch, int64_t prompt_len, int64_t max_new_tokens) {
  if (batch < 1 || prompt_len < 1 || max_new_tokens < 1)
    return invalid_argument("session: batch, prompt length and new tokens must be >= 1");
  HAL_ASSIGN_OR_RETURN(auto sizes, generation_shape(prompt_len, max_new_tokens));
  ModelGraphShape shape;
  shape.batch = batch;
  shape.seq = sizes.first;
  shape.cache_len = sizes.second;
  shape.compute_dtype = options_.compute_dtype;
  HAL_RETURN_IF_ERROR(prepare(shape).status().with_context("prefill"));
  if (max_new_tokens > 1) {
    shape.seq = 1;
    HAL_RETURN_IF_ERROR(prepare(shape).status().with_context("decode"));
  }
  return ok_status();
}

Result<std::vector<std::vector<float>>> Session::forward_all(
    const std::vector<std::vector<int32_t>>& sequences) {
  HAL_RETURN_IF_ERROR(check_prompts(sequences, 0));
  const int64_t batch = int64_t(sequences.size());
  int64_t seq = 0;
  for (const auto& s : sequences) seq = std::max<int64_t>(seq, int64_t(s.size()));
  const int64_t vocab = config().vocab_size;
  const int64_t cache_len = (seq + 63) / 64 * 64;
  ModelGraphShape shape;
  shape.batch = batch;
  shape.seq = seq;
  shape.cache_len = cache_len;
  shape.logits_at = LogitsAt::kAll;
  shape.compute_dtype = options_.compute_dtype;
  HAL_ASSIGN_OR_RETURN(Prepared * p, prepare(shape));
  std::vector<int32_t> ids(size_t(batch * seq), 0), positions(size_t(batch * seq));
  std::vector<int32_t> kv_lengths(static_cast<size_t>(batch), int32_t(seq));
  for (int64_t b = 0; b < batch; ++b) {
    std::copy(sequences[size_t(b)].begin(), sequences[size_t(b)].end(), ids.begin() + b * seq);
    for (int64_t i = 0; i < seq; ++i) positions[size_t(b * seq + i)] = int32_t(i);
  }
  std::vector<int64_t> symbols(size_t(batch), 0);
  symbols.push_back(seq);
  std::vector<float> logits(size_t(batch * seq * vocab));
  const HostInput in[] = {{p->graph.ids, ids.data(), ids.size() * 4},
                          {p->graph.positions, positions.data(), positions.size() * 4},
                          {p->graph.kv_lengths, kv_lengths.data(), kv_lengths.size() * 4}};
  const HostOutput out[] = {{p->graph.logits, logits.data(), logits.size() * 4}};
  HAL_RETURN_IF_ERROR(p->executor->run({symbols, in, out}));
  std::vector<std::vector<float>> rows(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) {
    const auto first = logits.begin() + b * seq * vocab;
    rows[size_t(b)].assign(first, first + int64_t(sequences[size_t(b)].size()) * vocab);
  }
  return rows;
}

}  // namespace hal::runtime
