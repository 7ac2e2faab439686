// tests/support/temp_dirs.h: directories a test process writes its files to (model
// checkpoints, GGUF files) under the system's temp directory, removed with their contents
// when the process exits. (Made by hand per test, two test files left ~1,350 directories
// in /tmp over a day's suite runs.)
//
// Threading: call from one thread at a time (the tests' own).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace hal::testing {

namespace detail {
struct TempDirs {
  std::vector<std::filesystem::path> made;
  ~TempDirs() {
    for (const auto& d : made) {
      std::error_code ignored;  // best effort: a file still open elsewhere stays
      std::filesystem::remove_all(d, ignored);
    }
  }
};
inline TempDirs& temp_dirs() {
  static TempDirs dirs;
  return dirs;
}
}  // namespace detail

// An empty directory `<temp>/<prefix>_<pid>[_<name>]`, made now (anything there before is
// removed) and removed at process exit.
inline std::filesystem::path process_temp_dir(const std::string& prefix,
                                              const std::string& name = "") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      (prefix + "_" + std::to_string(::getpid()) + (name.empty() ? "" : "_" + name));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  detail::temp_dirs().made.push_back(dir);
  return dir;
}

}  // namespace hal::testing
