// hal/file_io.h: opening and reading the files users name (model checkpoints and
// configs, NPU spec files, calibrations, reports) without hanging on what is not a file.
//
// A path a user gives may name a FIFO, a character device, a directory or a socket.
// Opening a FIFO for reading blocks until a writer appears, and reading a character
// device such as /dev/zero never ends, so every file the HAL, its plugins, the runtime
// and halctl read from a user's path goes through here: it is opened non-blocking and
// must be a regular file before a byte is read.
//
// Errors: NOT_FOUND when nothing is at the path; INVALID_ARGUMENT naming what is there
// instead ("is a FIFO", "is a directory"), when it cannot be opened or read, or when a
// whole-file read is larger than the caller's limit. Every message starts with the
// caller's description and the path ("model config /m/config.json: is a FIFO").
//
// Threading: no shared state; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hal/status.h"

namespace hal {

// An owned file descriptor: closed when destroyed.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// A regular file opened for reading, with its size at the time it was opened.
struct OpenedFile {
  UniqueFd fd;
  uint64_t size_bytes = 0;
};

// Opens `path` read-only if it is a regular file. `what` describes it for messages
// ("model config", "spec file").
Result<OpenedFile> open_regular_file(const std::string& path, std::string_view what);

// Reads the whole regular file at `path` (at most max_bytes; larger is INVALID_ARGUMENT).
Result<std::string> read_regular_file(const std::string& path, std::string_view what,
                                      uint64_t max_bytes = uint64_t(1) << 30);

}  // namespace hal
