#include "hal/units.h"

#include <cmath>
#include <cstdio>

namespace hal {
namespace {
std::string printf_string(const char* fmt, double v, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v, unit);
  return buf;
}
}  // namespace

std::string format_bytes(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  if (u == 0) return std::to_string(bytes) + " B";
  return printf_string("%.1f %s", v, units[u]);
}

std::string format_rate(double bytes_per_s) {
  static const char* units[] = {"B/s", "KB/s", "MB/s", "GB/s", "TB/s", "PB/s"};
  double v = bytes_per_s;
  int u = 0;
  while (std::fabs(v) >= 1000.0 && u < 5) {
    v /= 1000.0;
    ++u;
  }
  return printf_string("%.1f %s", v, units[u]);
}

std::string format_flops(double flops_per_s) {
  static const char* units[] = {"FLOP/s", "KFLOP/s", "MFLOP/s", "GFLOP/s", "TFLOP/s", "PFLOP/s"};
  double v = flops_per_s;
  int u = 0;
  while (std::fabs(v) >= 1000.0 && u < 5) {
    v /= 1000.0;
    ++u;
  }
  return printf_string("%.1f %s", v, units[u]);
}

std::string format_seconds(double s) {
  if (s >= 1.0) return printf_string("%.3f %s", s, "s");
  if (s >= 1e-3) return printf_string("%.3f %s", s * 1e3, "ms");
  if (s >= 1e-6) return printf_string("%.3f %s", s * 1e6, "us");
  return printf_string("%.1f %s", s * 1e9, "ns");
}

}  // namespace hal
