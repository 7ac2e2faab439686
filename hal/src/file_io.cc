#include "hal/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hal {
namespace {

std::string where(std::string_view what, const std::string& path) {
  std::string w(what);
  if (!w.empty()) w += ' ';
  return w + path;
}

// What a non-regular file is, for the message.
const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<OpenedFile> open_regular_file(const std::string& path, std::string_view what) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  // It has no effect on reads of a regular file.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return not_found(where(what, path) + ": no such file");
    return invalid_argument(where(what, path) + ": cannot open: " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    const int err = errno;
    return invalid_argument(where(what, path) + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode))
    return invalid_argument(where(what, path) + ": is " + file_kind(st.st_mode) +
                            ", not a regular file");
  return OpenedFile{std::move(fd), uint64_t(st.st_size)};
}

Result<std::string> read_regular_file(const std::string& path, std::string_view what,
                                      uint64_t max_bytes) {
  HAL_ASSIGN_OR_RETURN(OpenedFile file, open_regular_file(path, what));
  if (file.size_bytes > max_bytes)
    return invalid_argument(where(what, path) + ": " + std::to_string(file.size_bytes) +
                            " bytes, more than the " + std::to_string(max_bytes) +
                            " this file may have");
  std::string text;
  text.resize(size_t(file.size_bytes));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::read(file.fd.get(), text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      return invalid_argument(where(what, path) + ": read failed: " + std::strerror(err));
    }
    if (n == 0) break;  // the file shrank since it was opened
    done += size_t(n);
  }
  text.resize(done);
  return text;
}

}  // namespace hal
