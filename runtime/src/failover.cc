// Surviving device faults during generation (session.h, "Device faults"): find the
// devices that are gone, rebuild the session on the rest, and resume generation by
// prefilling each unfinished row's prompt plus the tokens it has produced so far.
//
// Why re-prefill rather than salvage the KV caches: after a fault the caches on every
// device are suspect (a lost device takes its layers' caches with it, an ECC error may
// have hit any of them, a timed-out command left its output undefined), and a prefill
// over the known tokens rebuilds them exactly from the inputs, on any set of devices,
// in one pass.
#include <algorithm>
#include <chrono>
#include <iterator>

#include "hal/runtime/session.h"

namespace hal::runtime {

namespace {

using Clock = std::chrono::steady_clock;

// Faults of a device (worth a recovery), as opposed to bad requests or exhausted memory.
bool is_device_fault(StatusCode code) {
  return code == StatusCode::kDeviceLost || code == StatusCode::kDataLoss ||
         code == StatusCode::kDeadlineExceeded || code == StatusCode::kUnavailable ||
         code == StatusCode::kAborted;
}

// Whether `device` still executes commands: a tiny fill, synchronised.
Status probe(Device& device) {
  HAL_ASSIGN_OR_RETURN(Buffer buffer, device.allocate(256));
  HAL_ASSIGN_OR_RETURN(Stream stream, device.create_stream());
  HAL_RETURN_IF_ERROR(stream.fill(buffer, 0, 256, 0x5a, 1));
  return stream.synchronize();
}

// Lost: the probe says so, or it fails twice for another reason (a device that does not
// answer is as good as lost).
bool device_lost(Device& device) {
  Status p = probe(device);
  if (p.ok()) return false;
  if (p.code() == StatusCode::kDeviceLost) return true;
  return !probe(device).ok();
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

}  // namespace

Result<GenerationResult> Session::resume_after_fault(
    const std::vector<std::vector<int32_t>>& prompts, const GenerationOptions& opt,
    GenerationResult r, std::vector<SamplingRng> rngs, Status fault) {
  const size_t batch = prompts.size();
  const int64_t n_new = opt.max_new_tokens;
  r.tokens.resize(batch);
  r.stopped.resize(batch, 0);
  if (opt.keep_logits) r.logits.resize(batch);
  int32_t transient = 0;
  std::vector<std::string> lost_so_far;  // in this generate() call
  for (;;) {
    if (!is_device_fault(fault.code())) {
      release_run_state();
      return fault;
    }
    const auto t0 = Clock::now();
    FailoverEvent ev;
    ev.fault = fault;
    std::vector<Device*> left;
    for (Device* d : options_.devices) {
      if (device_lost(*d)) {
        ev.lost.push_back(d->id());
        lost_so_far.push_back(d->id());
      } else {
        left.push_back(d);
      }
    }
    if (left.empty()) {
      release_run_state();
      return fault.with_context("failover: no device left (lost: " + join(lost_so_far) + ")");
    }
    if (ev.lost.empty() && ++transient > kMaxTransientRecoveries) {
      release_run_state();
      return fault.with_context("failover: " + std::to_string(kMaxTransientRecoveries) +
                                " recoveries without a device lost; giving up");
    }
    for (Device* d : left) ev.devices.push_back(d->id());

    // Rebuild on the devices left: free this session's buffers first (the survivors
    // need the room), then place and upload the weights anew.
    {
      SessionOptions o = options_;
      o.devices = left;
      release_run_state();
      weights_.clear();
      weight_bytes_ = 0;
      options_.devices = left;  // what is left, even if the rebuild fails
      auto fresh = Session::create(model_, o);
      if (!fresh.ok() && o.planner) {
        // A planner made for the old device set (a scheduler's model of it, pins by
        // device index) may refuse the new one: fall back to the default placement.
        ev.note = "the planner refused the devices left (" + fresh.status().message() +
                  "); default placement on " + join(ev.devices);
        o.planner = nullptr;
        fresh = Session::create(model_, o);
      }
      if (!fresh.ok())
        return fresh.status().with_context("failover after '" + fault.message() +
                                           "': rebuilding the session on " + join(ev.devices));
      *this = std::move(**fresh);
    }

    // Resume the unfinished rows: prompt + tokens so far, and the tokens still to come.
    std::vector<size_t> rows;
    std::vector<std::vector<int32_t>> seqs;
    std::vector<SamplingRng> row_rngs;
    int64_t produced = 0;  // by each unfinished row (they advance in step)
    for (size_t b = 0; b < batch; ++b) {
      const auto& t = r.tokens[b];
      ev.tokens_kept += int64_t(t.size());
      const bool done = int64_t(t.size()) >= n_new || r.stopped[b];
      if (done) continue;
      produced = std::max<int64_t>(produced, int64_t(t.size()));
      rows.push_back(b);
      std::vector<int32_t> seq = prompts[b];
      seq.insert(seq.end(), t.begin(), t.end());
      ev.tokens_prefilled += int64_t(seq.size());
      seqs.push_back(std::move(seq));
      row_rngs.push_back(rngs[b]);
    }
    for (size_t i : rows)
      if (int64_t(r.tokens[i].size()) != produced)
        return internal_error("failover: unfinished rows produced different token counts");
    if (rows.empty()) {  // the fault came after the last token was taken
      r.failovers.push_back(ev);
      return r;
    }
    GenerationOptions o = opt;
    o.failover = false;  // this loop recovers
    o.max_new_tokens = n_new - produced;
    if (opt.progress)
      o.progress = [&opt, produced, n_new](std::string_view what, uint64_t done, uint64_t) {
        opt.progress(what, done + uint64_t(produced), uint64_t(n_new));
      };
    // The resumed rows are a subset: the callback hears each under its own row number.
    if (opt.on_token)
      o.on_token = [&opt, &rows](int64_t row, int32_t token) {
        return opt.on_token(int64_t(rows[size_t(row)]), token);
      };
    GenerationResult r2;
    const Status s2 = generate_into(seqs, o, r2, row_rngs);

    // Merge what the resumed run produced, even if it failed part way.
    int64_t from_prefill = 0;
    for (size_t i = 0; i < rows.size() && i < r2.tokens.size(); ++i) {
      const size_t b = rows[i];
      if (!r2.tokens[i].empty()) ++from_prefill;
      r.tokens[b].insert(r.tokens[b].end(), r2.tokens[i].begin(), r2.tokens[i].end());
      if (i < r2.stopped.size()) r.stopped[b] = r2.stopped[i];
      if (opt.keep_logits && i < r2.logits.size())
        r.logits[b].insert(r.logits[b].end(), r2.logits[i].begin(), r2.logits[i].end());
      rngs[b] = row_rngs[i];
    }
    if (produced == 0) {  // the fault hit the prefill: the resumed prefill is the prefill
      r.prefill_seconds = r2.prefill_seconds;
      r.decode_tokens += r2.decode_tokens;
    } else {  // its first tokens stand for a decode step of an undisturbed run
      r.decode_tokens += r2.decode_tokens + from_prefill;
      r.decode_seconds += r2.prefill_seconds;
      r.step_seconds.push_back(r2.prefill_seconds);
    }
    r.decode_seconds += r2.decode_seconds;
    r.step_seconds.insert(r.step_seconds.end(), r2.step_seconds.begin(), r2.step_seconds.end());
    // Profiled runs (SessionOptions::profile) after the recovery are on the new plans.
    r.runs.insert(r.runs.end(), std::make_move_iterator(r2.runs.begin()),
                  std::make_move_iterator(r2.runs.end()));
    // Device-clock totals would mix the clocks of different device sets.
    r.prefill_device_seconds = r.decode_device_seconds = 0;
    if (r2.kv_cache_bytes) r.kv_cache_bytes = r2.kv_cache_bytes;
    if (r2.prefill_activation_bytes) r.prefill_activation_bytes = r2.prefill_activation_bytes;
    if (r2.decode_activation_bytes) r.decode_activation_bytes = r2.decode_activation_bytes;
    ev.seconds = std::chrono::duration<double>(Clock::now() - t0).count() - r2.decode_seconds;
    r.failovers.push_back(std::move(ev));
    if (s2.ok()) return r;
    fault = s2;
  }
}

}  // namespace hal::runtime
