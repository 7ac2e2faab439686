// backends/cpu/cpu_isa.h: which instruction-set level the CPU kernels compiled per level
// (cpu_stream_kernels.inc, cpu_quant_kernels.inc) run at.
//
// Contract: cpu_isa_level() is the widest level the running CPU supports, capped by
// HAL_CPU_ISA ("x86-64", "x86-64-v3", "x86-64-v4") so tests can run every copy on one
// machine; always kBase without x86-64 multiversioning (other architectures, sanitized
// builds). kV4Vnni additionally needs AVX512-VNNI. Decided once per process.
//
// Threading: thread-safe (a function-local static).
#pragma once

#include <cstdlib>
#include <string>

namespace hal::cpu {

enum class IsaLevel : int { kBase = 0, kV3 = 3, kV4 = 4, kV4Vnni = 5 };

inline IsaLevel cpu_isa_level() {
  static const IsaLevel level = [] {
#if defined(__x86_64__) && !defined(HAL_CPU_NO_MULTIVERSION)
    __builtin_cpu_init();
    const char* cap_env = std::getenv("HAL_CPU_ISA");
    const std::string cap = cap_env ? cap_env : "";
    const bool allow_v4 = cap.empty() || cap == "x86-64-v4";
    const bool allow_v3 = allow_v4 || cap == "x86-64-v3";
    if (allow_v4 && __builtin_cpu_supports("x86-64-v4"))
      return __builtin_cpu_supports("avx512vnni") ? IsaLevel::kV4Vnni : IsaLevel::kV4;
    if (allow_v3 && __builtin_cpu_supports("x86-64-v3")) return IsaLevel::kV3;
#endif
    return IsaLevel::kBase;
  }();
  return level;
}

}  // namespace hal::cpu
