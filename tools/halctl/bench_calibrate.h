// halctl bench DEVICE --calibrate: measures the ops transformer models dispatch on the
// device, at the shapes they dispatch them (hal/runtime/calibration_sweep.h), fits the
// cost model's calibration from them (per op kind and dtype, and per op class:
// hal/scheduler/calibration.h) and stores it where the scheduler's CostModel finds it
// (`halctl run`, `halctl plan --timing cost-model`): --calibration-dir, else
// $HAL_CALIBRATION_DIR, else ~/.cache/hal/calibration. It prints, per op kind, the fitted
// overhead and rates and how far the calibrated cost model is from the measured samples.
#pragma once

#include <string>
#include <vector>

#include "hal/device.h"

namespace halctl {

struct CalibrateOptions {
  std::vector<hal::DType> dtypes;  // compute dtypes to calibrate
  bool quick = false;              // the small sweep, 10 ms per op, a 256 MiB cold pool
  bool timing_only = false;        // virtual buffers (simulated devices)
  std::string directory;           // "" = the default calibration directory
  double min_time_s = 0.2;         // device seconds of records per sequence
  int min_reps = 3;                // steps per sequence at least
  bool json = false;
};

// Returns the process exit code (0 stored; 1 nothing could be measured or stored).
int calibrate_device(hal::Device& device, const CalibrateOptions& options);

}  // namespace halctl
