// tools/halctl/run_executables.h: the compiled-executable side of `halctl run`, `halctl
// compile` and `halctl plan` (ABI 1.2 executables; hal/runtime/compiled_units.h): the
// options, the compile settings they make, the artifact directory's manifest, and what
// the commands print about the executables a run used.
//
//   --compile on|off             whole-graph offload on devices with a compiler (default on)
//   --executable-cache DIR       where compiled executables are cached (default
//                                ~/.cache/hal/executables or $HAL_EXECUTABLE_CACHE)
//   --no-executable-cache        compile every time, keep nothing
//   --compiled DIR               run with the executables `halctl compile` wrote to DIR
//                                (its manifest fixes the shapes; an executable missing from
//                                DIR, or one its device refuses, is an error)
//
// Manifest (DIR/manifest.json): {"format": 1, "model", "devices": [...], "dtype",
// "batch", "prompt_len", "context", "executables": [{"file", "device", "first_node",
// "nodes", "groups", "predicted_s", "dram_bytes", "sram_bytes", "compile_s"}]}.
#pragma once

#include <string>
#include <vector>

#include "common.h"
#include "hal/runtime/compiled_units.h"
#include "hal/runtime/scheduled_plan.h"
#include "hal/runtime/session.h"

namespace halctl {

struct CompileCliOptions {
  std::string mode = "on";   // --compile
  std::string cache_dir;     // --executable-cache
  bool no_cache = false;     // --no-executable-cache
  std::string compiled_dir;  // --compiled (run only)
};

// Adds --compile, --executable-cache, --no-executable-cache (and --compiled when
// `with_compiled`).
void add_compile_options(po::options_description& desc, CompileCliOptions& o, bool with_compiled);

// The settings the options ask for (INVALID_ARGUMENT naming the option when malformed).
hal::Result<hal::runtime::CompileSettings> compile_settings(const CompileCliOptions& o);

// What a compiled directory's manifest fixes for a run.
struct CompiledManifest {
  std::string model;
  std::vector<std::string> devices;
  std::string dtype;
  int64_t batch = 1;
  int64_t prompt_len = 0;
  int64_t context = 0;
};
hal::Result<CompiledManifest> read_manifest(const std::string& dir);
hal::Status write_manifest(const std::string& dir, const CompiledManifest& m,
                           const hal::runtime::ScheduledPlanBuilder& planner);

// Every compiled unit of the session's graphs, with its measured time per run when the
// result was profiled. `phase_of` names each scheduled graph.
nlohmann::json executables_json(const hal::runtime::ScheduledPlanBuilder& planner,
                                const hal::runtime::GenerationResult& result);
std::string executables_lines(const hal::runtime::ScheduledPlanBuilder& planner,
                              const hal::runtime::GenerationResult& result);

}  // namespace halctl
