// The tensor/pipeline-parallel output of `halctl plan` (plan_parallel.h).
#include "plan_parallel.h"

#include <fmt/format.h>

#include <algorithm>

#include "hal/units.h"

namespace halctl {

namespace rt = hal::runtime;

hal::Result<std::vector<std::string>> expand_device_ranges(const std::vector<std::string>& ids) {
  std::vector<std::string> out;
  for (const std::string& id : ids) {
    const size_t colon = id.find(':'), dots = id.find("..");
    if (colon == std::string::npos || dots == std::string::npos || dots < colon) {
      out.push_back(id);
      continue;
    }
    const std::string prefix = id.substr(0, colon + 1);
    try {
      size_t used = 0;
      const int first = std::stoi(id.substr(colon + 1, dots - colon - 1), &used);
      const std::string last_text = id.substr(dots + 2);
      const int last = std::stoi(last_text, &used);
      if (used != last_text.size() || first < 0 || last < first || last - first > 4096)
        throw std::invalid_argument(id);
      for (int i = first; i <= last; ++i) out.push_back(prefix + std::to_string(i));
    } catch (const std::exception&) {
      return hal::invalid_argument("device range '" + id +
                                   "' is not PREFIX:FIRST..LAST (e.g. npu:0..7)");
    }
  }
  return out;
}

hal::Result<std::optional<int32_t>> parse_degree(const std::string& text,
                                                 const std::string& option) {
  if (text.empty() || text == "auto") return std::optional<int32_t>();
  try {
    size_t used = 0;
    const int v = std::stoi(text, &used);
    if (used == text.size() && v >= 1 && v <= 4096) return std::optional<int32_t>(v);
  } catch (const std::exception&) {
  }
  return hal::invalid_argument(option + " takes a positive number or auto, not '" + text + "'");
}

namespace {

std::string device_span(const std::vector<std::string>& ids) {
  if (ids.empty()) return "-";
  if (ids.size() == 1) return ids[0];
  return ids.front() + ".." + ids.back().substr(ids.back().find(':') + 1);
}

// A candidate's refusal in a few words: "does not fit: 16.9 GiB per device, 15.7 GiB each"
// for the planner's out-of-memory sentence, the message itself otherwise.
std::string short_reason(const std::string& why) {
  const size_t eq = why.find(" = "), before = why.find(" before activations"),
               hold = why.find("the devices hold "), in_all = why.find(" in all");
  if (eq == std::string::npos || before == std::string::npos || hold == std::string::npos ||
      in_all == std::string::npos || before < eq || in_all < hold)
    return why;
  const size_t stage_end = why.find("): ");
  const std::string stage = stage_end == std::string::npos ? "" : why.substr(0, stage_end + 1);
  return "does not fit: needs " + why.substr(eq + 3, before - eq - 3) + " per device" +
         (stage.empty() ? "" : " in " + stage) + ", a device holds " +
         why.substr(hold + 17, in_all - hold - 17);
}

uint64_t stage_peak(const rt::StagePlan& s) {
  return s.rank.devices.empty() ? 0 : s.rank.devices[0].peak_bytes();
}

}  // namespace

nlohmann::json parallel_plan_json(const rt::ParallelForecast& p, const std::string& source,
                                  const rt::ForecastRequest& req) {
  nlohmann::json stages = nlohmann::json::array();
  for (const rt::StagePlan& s : p.stages) {
    const rt::DevicePlan* d = s.rank.devices.empty() ? nullptr : &s.rank.devices[0];
    stages.push_back({{"stage", s.stage},
                      {"devices", s.devices},
                      {"layers", {s.layer_begin, s.layer_end - 1}},
                      {"per_device",
                       {{"weights_bytes", d ? d->weight_bytes : 0},
                        {"kv_cache_bytes", d ? d->kv_cache_bytes : 0},
                        {"peak_bytes", stage_peak(s)},
                        {"capacity_bytes", d ? d->capacity_bytes : 0}}},
                      {"decode_seconds_per_step", s.decode_s},
                      {"prefill_seconds", s.prefill_s},
                      {"all_reduces_per_step", s.all_reduces},
                      {"all_reduce_seconds_per_step", s.all_reduce_s},
                      {"tp_link", s.tp_link},
                      {"tp_link_bytes_per_step", s.tp_link_bytes},
                      {"pipeline_seconds_per_step", s.pipeline_s},
                      {"pipeline_link", s.pipeline_link}});
  }
  nlohmann::json candidates = nlohmann::json::array();
  for (const rt::ParallelCandidate& c : p.candidates)
    candidates.push_back({{"tensor_parallel", c.degrees.tp},
                          {"pipeline_parallel", c.degrees.pp},
                          {"feasible", c.feasible},
                          {"decode_tokens_per_s", c.decode_tokens_per_s},
                          {"why_not", c.why_not}});
  return {{"model", p.model},
          {"source", source},
          {"batch", req.batch},
          {"prompt_len", req.prompt_len},
          {"max_new_tokens", req.max_new_tokens},
          {"dtype", std::string(hal::dtype_name(req.weight_dtype))},
          {"tensor_parallel", p.degrees.tp},
          {"pipeline_parallel", p.degrees.pp},
          {"chosen", p.chosen},
          {"hosts", p.hosts},
          {"stages", stages},
          {"decode",
           {{"seconds_per_step", p.decode_step_s},
            {"tokens_per_s", p.decode_tokens_per_s},
            {"all_reduces_per_step", p.all_reduces_per_step},
            {"all_reduce_seconds_per_step", p.all_reduce_s_per_step},
            {"all_reduce_seconds_per_token",
             req.batch > 0 ? p.all_reduce_s_per_step / double(req.batch) : 0.0},
            {"tp_link_utilisation", p.tp_link_utilisation},
            {"bound", p.bound.dominant()},
            {"seconds_by_bound",
             {{"compute", p.bound.compute_s},
              {"memory", p.bound.memory_s},
              {"overhead", p.bound.overhead_s},
              {"link", p.bound.link_s}}},
            {"bandwidth_limit_tokens_per_s", p.bandwidth_limit_tokens_per_s}}},
          {"prefill_seconds", p.prefill_s},
          {"max_device_bytes", p.max_device_bytes},
          {"candidates", candidates},
          {"method", p.method},
          {"why", p.why},
          {"notes", p.notes}};
}

void print_parallel_plan(const rt::ParallelForecast& p, const std::string& source,
                         const rt::ForecastRequest& req) {
  fmt::print("{} ({}): {}, {:.2f} B parameters\n", p.model, source, req.config.summary(),
             double(req.config.parameter_count()) * 1e-9);
  int32_t feasible = 0;
  for (const rt::ParallelCandidate& c : p.candidates) feasible += c.feasible ? 1 : 0;
  fmt::print("{} over {} device(s){}{}\n", p.degrees.to_string(), p.degrees.ranks(),
             p.hosts > 1 ? fmt::format(" on {} hosts", p.hosts) : std::string(),
             p.chosen ? fmt::format(" (chosen: the fastest of {} feasible splits)", feasible) : "");
  fmt::print("batch {}, prompt {} tokens, {} new tokens; weights {}\n", req.batch, req.prompt_len,
             req.max_new_tokens, hal::dtype_name(req.weight_dtype));
  fmt::print("method: {}\n", p.method);
  fmt::print("\n{:<5} {:<8} {:<16} {:>11} {:>11} {:>6} {:>11} {:>22}  {}\n", "STAGE", "LAYERS",
             "DEVICES", "WEIGHTS/DEV", "KV/DEV", "USED", "DECODE", "ALL-REDUCES/STEP", "TP LINK");
  for (const rt::StagePlan& s : p.stages) {
    const rt::DevicePlan* d = s.rank.devices.empty() ? nullptr : &s.rank.devices[0];
    const double used =
        d && d->capacity_bytes ? 100.0 * double(stage_peak(s)) / double(d->capacity_bytes) : 0;
    fmt::print("{:<5} {:<8} {:<16} {:>11} {:>11} {:>5.1f}% {:>11} {:>22}  {}\n", s.stage,
               fmt::format("{}-{}", s.layer_begin, s.layer_end - 1), device_span(s.devices),
               hal::format_bytes(d ? d->weight_bytes : 0),
               hal::format_bytes(d ? d->kv_cache_bytes : 0), used, hal::format_seconds(s.decode_s),
               s.all_reduces
                   ? fmt::format("{} = {}", s.all_reduces, hal::format_seconds(s.all_reduce_s))
                   : std::string("-"),
               s.tp_link.empty() ? "-" : s.tp_link);
  }
  for (const rt::StagePlan& s : p.stages)
    if (!s.pipeline_link.empty())
      fmt::print("stage {} -> {}: {} per step over {}\n", s.stage, s.stage + 1,
                 hal::format_seconds(s.pipeline_s), s.pipeline_link);
  fmt::print("\ndecode   {:.1f} tokens/s ({} per step of {} token(s))\n", p.decode_tokens_per_s,
             hal::format_seconds(p.decode_step_s), req.batch);
  fmt::print(
      "         all-reduce {} per step ({} of them, {:.0f}% of the step), {} per token; "
      "busiest TP link {:.1f}% utilised\n",
      hal::format_seconds(p.all_reduce_s_per_step), p.all_reduces_per_step,
      p.decode_step_s > 0 ? 100 * p.all_reduce_s_per_step / p.decode_step_s : 0.0,
      hal::format_seconds(req.batch > 0 ? p.all_reduce_s_per_step / double(req.batch) : 0.0),
      100 * p.tp_link_utilisation);
  fmt::print("         {} bound: compute {:.0f}%, memory {:.0f}%, link {:.0f}%, overhead {:.0f}%\n",
             p.bound.dominant(), 100 * p.bound.fraction("compute"),
             100 * p.bound.fraction("memory"), 100 * p.bound.fraction("link"),
             100 * p.bound.fraction("overhead"));
  fmt::print("prefill  {} for {} x {} tokens\n", hal::format_seconds(p.prefill_s), req.batch,
             req.prompt_len);
  fmt::print("why      {}\n", p.why);
  if (p.candidates.size() > 1) {
    fmt::print("\ncandidates (decode tokens/s):\n");
    for (const rt::ParallelCandidate& c : p.candidates) {
      const bool picked = c.degrees.tp == p.degrees.tp && c.degrees.pp == p.degrees.pp;
      if (c.feasible)
        fmt::print("  {:<14} {:>9.1f}{}\n", c.degrees.to_string(), c.decode_tokens_per_s,
                   picked ? "  <- chosen" : "");
      else
        fmt::print("  {:<14}       no: {}\n", c.degrees.to_string(), short_reason(c.why_not));
    }
  }
  for (const std::string& n : p.notes) fmt::print("note: {}\n", n);
}

}  // namespace halctl
