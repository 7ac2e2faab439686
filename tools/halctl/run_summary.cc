// What `halctl run` prints once generation is done (run_summary.h).
#include "run_summary.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstdio>

#include "hal/units.h"
#include "run_executables.h"
#include "weight_options.h"

namespace halctl {

namespace {

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

// The scheduler's layer split, and where the session runs each layer (where most of its
// weights are read) beside it.
std::string placement_text(const RunSummary& s) {
  const std::vector<hal::Device*>& placed_on = s.session.options().devices;
  std::string placement = layer_ranges(s.session.layer_devices(), placed_on);
  if (s.planner && placed_on.size() > 1 && placed_on == s.requested_devices &&
      !s.planner->scheduled().empty() && !s.planner->scheduled().front().placement.empty())
    placement = s.planner->scheduled().front().placement + " (layers: " + placement + ")";
  return placement;
}

}  // namespace

void print_failovers(const hal::runtime::GenerationResult& result) {
  for (const hal::runtime::FailoverEvent& ev : result.failovers)
    fmt::print(stderr,
               "halctl run: failover after {}\n  {}; continued on {}: {} generated tokens "
               "kept, {} prompt + kept tokens prefilled again in {}{}\n",
               ev.fault.to_string(),
               ev.lost.empty() ? std::string("no device lost (transient)")
                               : "lost " + fmt::format("{}", fmt::join(ev.lost, ", ")),
               fmt::format("{}", fmt::join(ev.devices, ", ")), ev.tokens_kept, ev.tokens_prefilled,
               hal::format_seconds(ev.seconds), ev.note.empty() ? "" : "; " + ev.note);
}

void print_run_json(const RunSummary& s) {
  const auto& cfg = s.model.config();
  const hal::runtime::GenerationResult& r = s.result;
  // After a failover the session runs on fewer devices; placement refers to those.
  const std::vector<hal::Device*>& placed_on = s.session.options().devices;
  const std::vector<std::vector<int32_t>>& prompts = s.prompts;
  const std::string placement = placement_text(s);
  nlohmann::json out;
  out["model"] = s.model.name();
  out["family"] = std::string(hal::runtime::model_family_name(cfg.family));
  out["parameters"] = cfg.parameter_count();
  out["vocab_size"] = cfg.vocab_size;
  out["dtype"] = std::string(hal::dtype_name(s.dtype));
  nlohmann::json ids = nlohmann::json::array();
  for (const auto* d : placed_on) ids.push_back(d->id());
  out["devices"] = ids;
  out["placement"] = placement;
  if (s.planner) {
    out["scheduling"] = placement_json(*s.planner);
    out["executables"] = executables_json(*s.planner, s.result);
  }
  if (s.placing.profile()) {
    nlohmann::json mk;
    for (const hal::runtime::PhaseReport& ph : s.profile.phases)
      mk[ph.name] = {{"predicted_s", ph.predicted_makespan_s},
                     {"measured_s", ph.measured_makespan_s}};
    out["makespan_per_run"] = mk;
  }
  out["layer_devices"] = s.session.layer_devices();
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
  for (double seconds : r.step_seconds) steps.push_back(seconds * 1e3);
  out["decode_step_ms"] = steps;
  if (s.requested_devices.size() == 1) {
    out["device_clock"] = {{"prefill_seconds", r.prefill_device_seconds},
                           {"decode_seconds", r.decode_device_seconds},
                           {"decode_tokens_per_s", r.device_decode_tokens_per_s()}};
  }
  out["weight_bytes"] = s.session.weight_bytes();
  out["kv_cache_bytes"] = r.kv_cache_bytes;
  if (s.failover) {
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
  if (s.text) s.text->add_json(out);
  out["prefill_activation_bytes"] = r.prefill_activation_bytes;
  out["decode_activation_bytes"] = r.decode_activation_bytes;
  if (!s.dump_logits.empty()) out["dump_logits"] = s.dump_logits;
  print_json(out);
}

void print_generation_lines(const std::vector<std::vector<int32_t>>& prompts,
                            const hal::runtime::GenerationResult& r, const RunText* text,
                            const std::string& clock_device) {
  if (text) text->print();
  for (size_t b = 0; b < prompts.size() && !text; ++b) {
    const std::string tag = prompts.size() > 1 ? fmt::format("[{}] ", b) : "";
    fmt::print("prompt     {}{}\n", tag, fmt::join(prompts[b], ","));
    fmt::print("generated  {}{}\n", tag, fmt::join(r.tokens[b], ","));
  }
  fmt::print("prefill    {} tokens in {} ({:.1f} tokens/s)\n", r.prompt_tokens,
             hal::format_seconds(r.prefill_seconds), r.prefill_tokens_per_s());
  if (r.decode_tokens > 0)
    fmt::print("decode     {} tokens in {} ({:.1f} tokens/s)\n", r.decode_tokens,
               hal::format_seconds(r.decode_seconds), r.decode_tokens_per_s());
  // A simulated device's clock is what its model predicts; say so when it differs.
  if (!clock_device.empty() && r.decode_tokens > 0 && r.decode_device_seconds > 0 &&
      std::abs(r.decode_device_seconds - r.decode_seconds) > 0.1 * r.decode_seconds)
    fmt::print("device     {} clock: prefill {}, decode {} ({:.1f} tokens/s)\n", clock_device,
               hal::format_seconds(r.prefill_device_seconds),
               hal::format_seconds(r.decode_device_seconds), r.device_decode_tokens_per_s());
}

void print_run_text(const RunSummary& s) {
  const auto& cfg = s.model.config();
  const hal::runtime::GenerationResult& r = s.result;
  const std::vector<std::vector<int32_t>>& prompts = s.prompts;
  const std::string placement = placement_text(s);
  fmt::print("model      {} ({}, {:.1f} M parameters, {})\n", s.model.name(), cfg.summary(),
             double(cfg.parameter_count()) / 1e6, hal::dtype_name(s.dtype));
  fmt::print("placement  {}\n", placement);
  fmt::print("weights    {}\n", weight_summary(s.session.weight_formats()));
  if (s.planner)
    fmt::print("{}{}", placement_lines(*s.planner), executables_lines(*s.planner, s.result));
  print_generation_lines(prompts, r, s.text,
                         s.requested_devices.size() == 1 ? s.requested_devices[0]->id() : "");
  fmt::print("memory     weights {}, KV cache {}, activations {} (prefill) / {} (decode)\n",
             hal::format_bytes(s.session.weight_bytes()), hal::format_bytes(r.kv_cache_bytes),
             hal::format_bytes(r.prefill_activation_bytes),
             hal::format_bytes(r.decode_activation_bytes));
  if (!s.dump_logits.empty()) {
    size_t rows = 0;
    for (const auto& t : r.tokens) rows += t.size();
    fmt::print("logits     {} rows of {} floats in {}\n", rows, cfg.vocab_size, s.dump_logits);
  }
  if (s.placing.profile()) {
    for (const hal::runtime::PhaseReport& ph : s.profile.phases)
      fmt::print("makespan   {}: measured {} per run, predicted {}{}\n{}", ph.name,
                 hal::format_seconds(ph.measured_makespan_s),
                 hal::format_seconds(ph.predicted_makespan_s),
                 hal::runtime::signed_error(ph.predicted_makespan_s, ph.measured_makespan_s),
                 hal::runtime::phase_prediction_text(ph));
    if (s.profile.decode_tokens > 0)
      for (const hal::runtime::DeviceReport& d : s.profile.devices)
        fmt::print("hbm        {}: {} per decode token (weights read in full there {}, held {})\n",
                   d.id, hal::format_bytes(uint64_t(d.decode_hbm_bytes_per_token)),
                   hal::format_bytes(d.decode_streamed_weight_bytes),
                   hal::format_bytes(d.decode_weight_bytes));
    if (!s.placing.report_path.empty()) fmt::print("report     {}\n", s.placing.report_path);
    if (!s.placing.trace_path.empty()) fmt::print("trace      {}\n", s.placing.trace_path);
  }
}

}  // namespace halctl
