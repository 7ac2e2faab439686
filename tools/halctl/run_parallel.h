// tools/halctl/run_parallel.h: `halctl run --tensor-parallel N --pipeline-parallel M`, in one
// process over several local devices, or one rank per process under mpirun (the MPI
// bootstrap, hal/mpi; each rank takes the device of its place on its host).
//
//   mpirun -np 2 halctl run --model DIR --tensor-parallel 2 --prompt-ids 1,2,3
//   mpirun -np 2 halctl run --model DIR --tensor-parallel 2 --prompt "Hello" [--stop S]
//   halctl run --model llama-tiny --tensor-parallel 2 --pipeline-parallel 2 --devices npu:0..3
//
// Under mpirun the degrees default to TP = the job's size; rank 0 prints (the tokens are the
// same on every rank; text prompts stream from rank 0 as in a plain run). A rank that fails prints
// why and ends the job (MPI_Abort), so no rank waits; a rank the launcher ends because another died
// says so on stderr.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common.h"
#include "hal/runtime/session.h"
#include "run_outputs.h"
#include "run_text.h"

namespace halctl {

struct ParallelRunRequest {
  CommonOptions common;
  RunPlacementOptions placing;  // --report / --trace (placement options do not apply)
  std::string model_name;
  std::string devices_text;
  std::optional<int32_t> tp, pp;
  double collective_timeout_s = 0;
  hal::DType dtype = hal::DType::kF32;
  std::vector<std::vector<int32_t>> prompts;
  hal::runtime::GenerationOptions generation;
  std::string dump_logits;  // --dump-logits (rank 0 writes it; generation.keep_logits set)
  RunText* text = nullptr;  // not owned; text prompts (their ids are `prompts`), else null
};

// Whether this run is a parallel one: degrees given, or started by an MPI launcher.
bool wants_parallel_run(const std::optional<int32_t>& tp, const std::optional<int32_t>& pp);

int run_parallel(const ParallelRunRequest& request);

}  // namespace halctl
