// tools/halctl/run_outputs.h: the placement and profiling side of `halctl run`: its
// options (--placement, --strict-placement, --scheduler, --report, --trace), the
// scheduling planner it gives the session, and what it prints and writes after the run.
// Kept apart from cmd_run.cc so the run command stays about generation; the report
// building itself is in the runtime (hal/runtime/run_report.h), shared with other tools.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "hal/runtime/run_report.h"
#include "hal/runtime/scheduled_plan.h"

namespace halctl {

struct RunPlacementOptions {
  std::string placement;           // --placement
  bool strict = false;             // --strict-placement
  std::string algorithm = "auto";  // --scheduler
  std::string report_path;         // --report
  std::string trace_path;          // --trace
  bool profile() const { return !report_path.empty() || !trace_path.empty(); }
};

void add_run_placement_options(po::options_description& desc, RunPlacementOptions& o);

// The planner for the session (INVALID_ARGUMENT naming the option for a bad
// --scheduler or --placement).
hal::Result<std::shared_ptr<hal::runtime::ScheduledPlanBuilder>> make_run_planner(
    const RunPlacementOptions& o, const std::vector<hal::Device*>& devices,
    const hal::runtime::CompileSettings& compile = {});

// Human lines: the scheduler's choice, predicted times and each fallback.
std::string placement_lines(const hal::runtime::ScheduledPlanBuilder& planner);
// The same for --json.
nlohmann::json placement_json(const hal::runtime::ScheduledPlanBuilder& planner);

// Writes --report and --trace (when asked); returns the report built (for printing).
// `planner` null: no predictions or fallbacks (the plain layer split placed the run).
hal::Result<hal::runtime::RunReport> write_run_outputs(
    const RunPlacementOptions& o, const std::string& model, hal::DType dtype,
    const std::vector<hal::Device*>& devices, const hal::runtime::ScheduledPlanBuilder* planner,
    const hal::runtime::GenerationResult& result);

// --dump-logits: each generated token's logits (GenerationResult::logits) as one row of
// little-endian float32, prompt after prompt. INVALID_ARGUMENT naming the file when it
// cannot be written.
hal::Status write_logits(const std::string& path, const hal::runtime::GenerationResult& r);

}  // namespace halctl
