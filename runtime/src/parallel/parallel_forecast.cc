// Planning tensor- and pipeline-parallel runs (hal/runtime/parallel_forecast.h).
#include "hal/runtime/parallel_forecast.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "hal/collective_cost.h"
#include "hal/runtime/graph.h"
#include "hal/runtime/model_graph.h"
#include "hal/scheduler/cost_model.h"
#include "hal/units.h"

namespace hal::runtime {

namespace {

namespace sch = hal::scheduler;

std::string link_text(const CollectiveLinkCost& l, const std::string& kind) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s %.0f GB/s, %.3g us", kind.c_str(),
                l.bandwidth_bytes_per_s / 1e9, l.latency_s * 1e6);
  return buf;
}

LinkClass class_of(const std::string& kind) {
  if (kind == "host-staged") return LinkClass::kHostStaged;
  if (kind.rfind("ucie", 0) == 0) return LinkClass::kDieToDie;
  if (kind == "network") return LinkClass::kNetwork;
  return LinkClass::kPeer;
}

// Links between the plan's devices: DeviceInfo links on one host, the network between.
struct Links {
  const std::vector<PlanDevice>& devices;
  const std::vector<int32_t>& host_of;
  const hal::LinkInfo& network;

  int32_t host(int32_t d) const { return host_of.empty() ? 0 : host_of[size_t(d)]; }
  std::pair<CollectiveLinkCost, std::string> between(int32_t a, int32_t b) const {
    const hal::DeviceInfo& ia = devices[size_t(a)].info;
    const hal::DeviceInfo& ib = devices[size_t(b)].info;
    if (host(a) != host(b)) {
      const hal::LinkInfo ha = ia.host_link(), hb = ib.host_link();
      CollectiveLinkCost l;
      l.latency_s = ha.latency_s + network.latency_s + hb.latency_s;
      l.bandwidth_bytes_per_s = std::min(
          {ha.bandwidth_bytes_per_s, network.bandwidth_bytes_per_s, hb.bandwidth_bytes_per_s});
      l.link_class = LinkClass::kNetwork;
      return {l, "network (" + (network.kind.empty() ? std::string("hosts") : network.kind) + ")"};
    }
    const hal::LinkInfo li = sch::link_between(ia, ib);
    CollectiveLinkCost l;
    l.latency_s = li.latency_s;
    l.bandwidth_bytes_per_s = li.bandwidth_bytes_per_s > 0 ? li.bandwidth_bytes_per_s : 1;
    l.link_class = class_of(li.kind);
    return {l, li.kind};
  }
  // A collective over `members` (indices into devices); names the slowest link.
  CollectiveTiming time(const CollectiveShape& shape, const std::vector<int32_t>& members,
                        std::string* slowest, CollectiveLinkCost* worst) const {
    const int32_t n = int32_t(members.size());
    // The slowest link: the longest time for a 1 MiB message (latency and bandwidth).
    double worst_s = -1;
    auto link = [&](int32_t a, int32_t b) {
      auto [l, kind] = between(members[size_t(a)], members[size_t(b)]);
      const double t = l.latency_s + double(1 << 20) / l.bandwidth_bytes_per_s;
      if (t > worst_s) {
        worst_s = t;
        if (slowest) *slowest = link_text(l, kind);
        if (worst) *worst = l;
      }
      return l;
    };
    return time_collective(shape, n, link);
  }
};

// One candidate, fully planned.
Result<ParallelForecast> plan_degrees(const ParallelForecastRequest& req,
                                      const std::vector<PlanDevice>& devices, ParallelDegrees deg) {
  const ModelConfig& full = req.base.config;
  HAL_RETURN_IF_ERROR(check_parallel_degrees(full, deg));
  if (deg.ranks() > int32_t(devices.size()))
    return invalid_argument(deg.to_string() + " needs " + std::to_string(deg.ranks()) +
                            " devices; " + std::to_string(devices.size()) + " given");
  const Links links{devices, req.host_of, req.network};
  ParallelForecast plan;
  plan.model = req.base.model_name;
  plan.degrees = deg;
  for (int32_t h : req.host_of) plan.hosts = std::max(plan.hosts, h + 1);
  for (int32_t s = 0; s < deg.pp; ++s) {
    StagePlan st;
    st.stage = s;
    std::vector<int32_t> tp_members, pp_members;
    for (int32_t t = 0; t < deg.tp; ++t) tp_members.push_back(s * deg.tp + t);
    for (int32_t q = 0; q < deg.pp; ++q) pp_members.push_back(q * deg.tp);
    for (int32_t m : tp_members) st.devices.push_back(devices[size_t(m)].info.id);
    const int32_t first = tp_members[0];
    ForecastRequest r = req.base;
    r.placement.clear();
    r.config = shard_config(full, deg, 0, s);
    st.layer_begin = r.config.shard.layer_begin;
    st.layer_end = r.config.shard.layer_end < 0 ? full.num_layers : r.config.shard.layer_end;
    CollectiveLinkCost tp_worst;
    std::string tp_slowest, pp_slowest;
    const double overhead = devices[size_t(first)].info.launch_overhead_s;
    r.collective_price = [&](const CollectiveShape& shape, int32_t channel) {
      CollectivePrice price;
      if (channel == kTensorParallelChannel) {
        if (deg.tp <= 1) return price;
        const CollectiveTiming t = links.time(shape, tp_members, &tp_slowest, &tp_worst);
        price.seconds = overhead + t.link_s;
        price.link_bytes = double(t.members[0].bytes_sent);
        return price;
      }
      if (deg.pp <= 1) return price;
      // The pipeline: a stage's send to the next (the receive waits for it and costs
      // nothing more), the logits broadcast from the last stage.
      if (shape.kind == CollectiveKind::kRecv) return price;
      if (shape.kind == CollectiveKind::kSend) {
        auto [l, kind] = links.between(first, (s + 1) * deg.tp);
        pp_slowest = link_text(l, kind);
        const double bytes = double(shape.count * dtype_size(shape.dtype));
        price.seconds = overhead + l.latency_s + bytes / l.bandwidth_bytes_per_s;
        price.link_bytes = bytes;
        return price;
      }
      const CollectiveTiming t = links.time(shape, pp_members, nullptr, nullptr);
      price.seconds = overhead + t.link_s;
      price.link_bytes = double(t.members[size_t(s)].bytes_sent);
      return price;
    };
    std::vector<PlanDevice> one = {devices[size_t(first)]};
    auto rank_plan = forecast_model(r, one);
    if (!rank_plan.ok())
      return Status(rank_plan.status().code(),
                    "stage " + std::to_string(s) + " (layers " + std::to_string(st.layer_begin) +
                        "-" + std::to_string(st.layer_end - 1) + " on " +
                        devices[size_t(first)].info.id + ", " + deg.to_string() +
                        "): " + rank_plan.status().message());
    st.rank = std::move(*rank_plan);
    st.decode_s = st.rank.decode.seconds;
    st.prefill_s = st.rank.prefill.seconds;
    // The decode step's collectives: all-reduces (channel TP) and the pipeline's.
    {
      ModelGraphShape shape;
      shape.batch = req.base.batch;
      shape.cache_len = req.base.prompt_len + req.base.max_new_tokens;
      shape.compute_dtype = st.rank.compute_dtype;
      HAL_ASSIGN_OR_RETURN(ModelGraph mg, build_model_graph(r.config, shape));
      for (const Node& n : mg.graph->nodes()) {
        if (n.kind != NodeKind::kCollective) continue;
        const TensorDesc& d = mg.graph->value(n.outputs.at(0)).desc;
        const CollectivePrice p = r.collective_price(
            {n.collective, Reduction::kSum, d.dtype, uint64_t(d.numel()), n.peer}, n.channel);
        if (n.channel == kTensorParallelChannel) {
          ++st.all_reduces;
          st.all_reduce_s += p.seconds;
          st.tp_link_bytes += p.link_bytes;
        } else {
          st.pipeline_s += p.seconds;
        }
      }
    }
    st.tp_link = tp_slowest;
    st.tp_link_bandwidth = tp_worst.bandwidth_bytes_per_s;
    st.pipeline_link = pp_slowest;
    plan.decode_step_s += st.decode_s;
    plan.prefill_s += st.prefill_s;
    plan.all_reduce_s_per_step += st.all_reduce_s;
    plan.all_reduces_per_step += st.all_reduces;
    plan.bound.compute_s += st.rank.decode.bound.compute_s;
    plan.bound.memory_s += st.rank.decode.bound.memory_s;
    plan.bound.overhead_s += st.rank.decode.bound.overhead_s;
    plan.bound.link_s += st.rank.decode.bound.link_s;
    for (const DevicePlan& dp : st.rank.devices)
      plan.max_device_bytes = std::max(plan.max_device_bytes, dp.peak_bytes());
    const double limit_step = st.rank.bandwidth_limit_step_s;
    plan.bandwidth_limit_tokens_per_s += limit_step;  // summed as seconds; inverted below
    plan.stages.push_back(std::move(st));
  }
  const double limit_s = plan.bandwidth_limit_tokens_per_s;
  plan.bandwidth_limit_tokens_per_s = limit_s > 0 ? double(req.base.batch) / limit_s : 0;
  plan.decode_tokens_per_s =
      plan.decode_step_s > 0 ? double(req.base.batch) / plan.decode_step_s : 0;
  // Each stage's TP links carry its all-reduces; their busiest share of a decode step.
  for (const StagePlan& st : plan.stages)
    if (st.tp_link_bandwidth > 0 && plan.decode_step_s > 0)
      plan.tp_link_utilisation = std::max(
          plan.tp_link_utilisation, st.tp_link_bytes / (plan.decode_step_s * st.tp_link_bandwidth));
  return plan;
}

void explain(ParallelForecast& p, int64_t batch) {
  const BoundBreakdown& b = p.bound;
  const std::string dom = b.dominant();
  char buf[640];
  std::snprintf(buf, sizeof buf,
                "%s: a decode step of %d token(s) takes %.3g ms = %.1f tokens/s; %.0f%% of it is "
                "memory-bound ops, %.0f%% collectives and links (%d all-reduces, %.3g ms), %.0f%% "
                "compute, %.0f%% launch overheads: %s bound (each stage's weights read at peak "
                "bandwidth allow %.1f tokens/s)",
                p.degrees.to_string().c_str(), int(batch), p.decode_step_s * 1e3,
                p.decode_tokens_per_s, 100 * b.fraction("memory"), 100 * b.fraction("link"),
                p.all_reduces_per_step, p.all_reduce_s_per_step * 1e3, 100 * b.fraction("compute"),
                100 * b.fraction("overhead"), dom.c_str(), p.bandwidth_limit_tokens_per_s);
  p.why = buf;
}

}  // namespace

Result<ParallelForecast> forecast_parallel(const ParallelForecastRequest& req,
                                           const std::vector<PlanDevice>& devices) {
  if (devices.empty()) return invalid_argument("plan: no devices");
  if (!req.host_of.empty() && req.host_of.size() != devices.size())
    return invalid_argument("plan: a host for each of the " + std::to_string(devices.size()) +
                            " devices");
  const int32_t n = int32_t(devices.size());
  std::vector<ParallelDegrees> options;
  if (req.tp && req.pp) {
    options.push_back({*req.tp, *req.pp});
  } else {
    for (int32_t tp = 1; tp <= n; ++tp)
      for (int32_t pp = 1; tp * pp <= n; ++pp) {
        if (req.tp && tp != *req.tp) continue;
        if (req.pp && pp != *req.pp) continue;
        options.push_back({tp, pp});
      }
  }
  std::vector<ParallelCandidate> candidates;
  std::optional<ParallelForecast> best;
  Status first_error;
  for (const ParallelDegrees& d : options) {
    ParallelCandidate c;
    c.degrees = d;
    if (Status s = check_parallel_degrees(req.base.config, d); !s.ok()) {
      c.why_not = s.message();
      if (first_error.ok() && options.size() == 1) first_error = s;
      candidates.push_back(c);
      continue;
    }
    auto p = plan_degrees(req, devices, d);
    if (!p.ok()) {
      c.why_not = p.status().message();
      if (first_error.ok()) first_error = p.status();
      candidates.push_back(c);
      continue;
    }
    c.feasible = true;
    c.decode_tokens_per_s = p->decode_tokens_per_s;
    candidates.push_back(c);
    // Higher throughput wins; within 1 %, fewer devices.
    if (!best || p->decode_tokens_per_s > best->decode_tokens_per_s * 1.01 ||
        (p->decode_tokens_per_s >= best->decode_tokens_per_s * 0.99 &&
         p->degrees.ranks() < best->degrees.ranks()))
      best = std::move(*p);
  }
  if (!best) {
    // When memory is what stops every split, say how much the model needs in all.
    std::string total;
    if (first_error.code() == StatusCode::kOutOfMemory) {
      const double weights =
          double(req.base.config.parameter_count()) * double(dtype_size(req.base.weight_dtype));
      double capacity = 0, largest = 0;
      for (const PlanDevice& d : devices) {
        capacity += double(d.info.memory_bytes);
        largest = std::max(largest, double(d.info.memory_bytes));
      }
      const int64_t at_least = largest > 0 ? int64_t(std::ceil(weights / largest)) : 0;
      total = ": its " + std::string(dtype_name(req.base.weight_dtype)) + " weights alone are " +
              format_bytes(uint64_t(weights)) + " and the " + std::to_string(n) + " devices hold " +
              format_bytes(uint64_t(capacity)) + " (with the replicated embedding and head, and " +
              "the KV cache, more), so it needs at least " + std::to_string(at_least) +
              " devices of " + format_bytes(uint64_t(largest)) + " or a 1-byte --dtype (fp8, int8)";
    }
    if (!first_error.ok() && options.size() == 1)
      return Status(
          first_error.code(),
          first_error.message() + (total.empty() ? "" : "\n" + req.base.model_name + total));
    std::string why;
    for (const ParallelCandidate& c : candidates)
      why += "\n  " + c.degrees.to_string() + ": " + c.why_not;
    return Status(first_error.ok() ? StatusCode::kInvalidArgument : first_error.code(),
                  "no tensor x pipeline split of " + req.base.model_name + " fits these " +
                      std::to_string(n) + " devices" + total + why);
  }
  ParallelForecast plan = std::move(*best);
  plan.chosen = !(req.tp && req.pp);
  plan.candidates = std::move(candidates);
  plan.method =
      "each stage's tensor-parallel rank planned by forecast_model on its device (the rank's own "
      "graph: its heads, MLP columns and layers); collectives priced by the HAL's alpha-beta "
      "model (hal/collective_cost.h) over the links between the members";
  if (plan.hosts > 1) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "%d hosts; between them %s at %.0f GB/s and %.3g us behind both host links",
                  plan.hosts, req.network.kind.empty() ? "the network" : req.network.kind.c_str(),
                  req.network.bandwidth_bytes_per_s / 1e9, req.network.latency_s * 1e6);
    plan.notes.push_back(buf);
  }
  for (const StagePlan& s : plan.stages)
    for (const std::string& note : s.rank.notes)
      plan.notes.push_back("stage " + std::to_string(s.stage) + ": " + note);
  explain(plan, req.base.batch);
  return plan;
}

}  // namespace hal::runtime
