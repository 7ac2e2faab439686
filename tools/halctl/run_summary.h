// tools/halctl/run_summary.h: what `halctl run` prints once generation is done: the model
// and where each layer ran, prompts and generated ids, throughput on the host's clock and
// (for one simulated device) the device's, memory, failovers, and the profiling results;
// as aligned text or, with --json, one JSON object (its keys are listed in cmd_run.cc's
// help). Kept apart from cmd_run.cc so the command reads as parse, check, run, print.
//
// Threading: single-threaded; prints to stdout (failovers to stderr).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hal/runtime/session.h"
#include "run_outputs.h"
#include "run_text.h"

namespace halctl {

// Everything a finished run reports. References stay valid while printing.
struct RunSummary {
  const hal::runtime::Model& model;
  hal::DType dtype;
  const std::vector<std::vector<int32_t>>& prompts;
  const std::vector<hal::Device*>& requested_devices;  // --devices
  const hal::runtime::Session& session;                // its devices: those left after any failover
  const hal::runtime::ScheduledPlanBuilder* planner;   // null: the plain layer split placed it
  const RunPlacementOptions& placing;
  const hal::runtime::RunReport& profile;  // what --report/--trace wrote (empty otherwise)
  const hal::runtime::GenerationResult& result;
  bool failover = false;          // --failover: the JSON lists the recoveries
  std::string dump_logits;        // --dump-logits path, or empty
  const RunText* text = nullptr;  // text prompts (run_text.h): text instead of ids
};

// The lines every run prints after its header (a plain run and a parallel one alike): each
// prompt and its generated ids (or, for text prompts, `text`'s own lines), prefill and
// decode on the host's clock, and `clock_device`'s clock where it differs from the host's
// by over 10% (a simulated device's: what its model predicts); `clock_device` empty: none.
void print_generation_lines(const std::vector<std::vector<int32_t>>& prompts,
                            const hal::runtime::GenerationResult& result, const RunText* text,
                            const std::string& clock_device);

// One stderr note per recovery: the fault, the devices lost and left, what was kept.
void print_failovers(const hal::runtime::GenerationResult& result);
void print_run_text(const RunSummary& summary);
void print_run_json(const RunSummary& summary);

}  // namespace halctl
