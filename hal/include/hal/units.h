// hal/units.h: human-readable sizes, rates and times for messages and reports.
#pragma once

#include <cstdint>
#include <string>

namespace hal {

std::string format_bytes(uint64_t bytes);          // "15.7 GiB", "512 B"
std::string format_rate(double bytes_per_s);       // "256.0 GB/s" (decimal, as vendors quote)
std::string format_flops(double flops_per_s);      // "32.0 TFLOP/s"
std::string format_seconds(double seconds);        // "1.25 ms"

}  // namespace hal
