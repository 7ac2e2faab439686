// backends/cpu/cpu_device_info.h: what this machine's CPU is and can do.
//
// Memory capacity comes from the OS; peak FLOP/s from the CPU's features (cores x
// clock x SIMD width x FMA units); memory bandwidth from a short measurement (a
// STREAM-style triad) cached per machine. Each figure's origin is recorded in the
// "source.*" properties so `halctl info cpu:0` can label it.
#pragma once

#include "hal/device_info.h"

namespace hal::cpu {

DeviceInfo describe_cpu();

}  // namespace hal::cpu
