// hal/plugin/spin_wait.h: the pause a spinning thread takes between polls of a flag.
// Part of the plugin kit; header-only.
//
// Contract: cpu_relax() tells the core this thread is spin-waiting (x86 `pause`, Arm
// `yield`): the loop stops hogging the pipeline its sibling hyperthread shares and leaves
// it without a memory-order mis-speculation when the flag changes. No-op elsewhere.
// Threading: any thread.
#pragma once

namespace hal::plugin {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace hal::plugin
