// tests/fuzz/fuzz_support.h: what the fuzz targets share.
//
// Each target defines LLVMFuzzerTestOneInput. Built two ways (CMakeLists.txt):
// - with clang and HAL_BUILD_FUZZERS=ON, linked with libFuzzer (-fsanitize=fuzzer) to
//   explore inputs;
// - always, linked with fuzz_replay_main.cc into <target>_replay, which ctest runs over
//   the committed seed corpus and every regression input (regressions/<target>/), so a
//   crash once found stays fixed in the ordinary build with any compiler.
//
// FUZZ_CHECK states a property the parsed result must have (the parser's contract). A
// violation prints what failed and aborts: in a fuzzer, abort() is how a finding is
// reported (the product code itself never aborts on input).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond, what)                                                                  \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "%s:%d: fuzz property failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
                   std::string(what).c_str());                                                  \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)

namespace hal::fuzz {

// Consumes fuzz input front to back: small integers and strings for targets that build
// structured input (plugin tables, device reports). Runs dry as zeros / empty strings.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ == end_; }
  uint8_t u8() { return p_ == end_ ? 0 : *p_++; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(u8()) << (8 * i);
    return v;
  }
  uint64_t u64() { return uint64_t(u32()) | (uint64_t(u32()) << 32); }
  double f64() {
    const uint64_t bits = u64();
    double d;
    static_assert(sizeof(d) == sizeof(bits));
    __builtin_memcpy(&d, &bits, sizeof(d));
    return d;
  }
  // A string of up to `max` bytes, length-prefixed by one byte.
  std::string str(size_t max = 32) {
    size_t n = u8() % (max + 1);
    std::string s;
    while (n-- && p_ != end_) s.push_back(char(*p_++));
    return s;
  }
  std::string_view rest() {
    std::string_view s(reinterpret_cast<const char*>(p_), size_t(end_ - p_));
    p_ = end_;
    return s;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace hal::fuzz
