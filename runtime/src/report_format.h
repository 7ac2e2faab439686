// runtime/src/report_format.h: number formatting shared by the run report's text and SVG
// forms (run_report.cc, run_report_svg.cc). Internal to the runtime library.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

namespace hal::runtime {

// printf-style formatting of one double.
inline std::string fmt_double(double v, const char* f = "%.3g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// v with an SI prefix: si(2.5e12, "FLOP/s") == "2.5 TFLOP/s".
inline std::string si(double v, const char* unit) {
  const char* prefixes[] = {"", "K", "M", "G", "T", "P", "E"};
  int p = 0;
  while (std::abs(v) >= 1000 && p < 6) {
    v /= 1000;
    ++p;
  }
  return fmt_double(v, "%.3g") + " " + prefixes[p] + unit;
}

}  // namespace hal::runtime
