// Fuzzes the safetensors reader: parse_safetensors over the bytes of a whole file, and
// the same bytes opened as a file (SafetensorsFile: mmap, then tensor() for every entry).
// Properties (safetensors.h's contract): never crashes or reads outside the input; an
// accepted header describes tensors whose [begin, end) lies inside the data section,
// whose byte size is dtype x shape, that do not overlap and are sorted by name; the
// file path agrees with the pure parser.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "hal/runtime/safetensors.h"

using namespace hal::runtime;

namespace {

// One in-memory file reused for every input (no disk writes, no temp-file litter).
const std::string& memfd_path(int* fd_out) {
  static int fd = ::memfd_create("fuzz_safetensors", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  *fd_out = fd;
  return path;
}

void check_header(const SafetensorsHeader& h, size_t file_size) {
  FUZZ_CHECK(h.data_offset == 8 + h.header_bytes, "data offset");
  FUZZ_CHECK(h.data_offset <= file_size, "data section starts inside the file");
  FUZZ_CHECK(h.data_bytes == file_size - h.data_offset, "data section size");
  const SafetensorsEntry* prev = nullptr;
  for (const SafetensorsEntry& t : h.tensors) {
    FUZZ_CHECK(t.begin <= t.end && t.end <= h.data_bytes, t.name + ": offsets inside data");
    uint64_t elements = 1;
    for (int64_t d : t.shape) {
      FUZZ_CHECK(d >= 0, t.name + ": dims are non-negative");
      if (d != 0 && elements > UINT64_MAX / uint64_t(d))
        elements = UINT64_MAX;  // flagged below
      else
        elements *= uint64_t(d);
    }
    FUZZ_CHECK(elements != UINT64_MAX && elements * t.dtype.size == t.end - t.begin,
               t.name + ": byte size is dtype x shape");
    if (prev) {
      FUZZ_CHECK(prev->name < t.name, "sorted by name, unique");
    }
    prev = &t;
    FUZZ_CHECK(h.find(t.name) == &t, t.name + ": find() finds it");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = parse_safetensors({data, size}, "fuzz.safetensors");
  if (parsed.ok())
    check_header(*parsed, size);
  else
    FUZZ_CHECK(!parsed.status().message().empty(), "errors say what was wrong");

  // The same bytes as a file through the mapping path.
  int fd = -1;
  const std::string& path = memfd_path(&fd);
  if (fd < 0) return 0;
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != ssize_t(size)) return 0;
  auto file = SafetensorsFile::open(path);
  FUZZ_CHECK(
      file.ok() == parsed.ok(),
      "file and bytes agree: " + (file.ok() ? std::string("file ok") : file.status().to_string()));
  if (!file.ok()) return 0;
  for (const SafetensorsEntry& e : (*file)->header().tensors) {
    auto t = (*file)->tensor(e.name);
    if (!t.ok()) continue;  // dtypes without a HAL equivalent, rank > 8: refused by name
    FUZZ_CHECK(t->bytes == e.end - e.begin, e.name + ": tensor bytes");
    // Touch the first and last byte: ASan reports a view outside the mapping.
    if (t->bytes) {
      volatile uint8_t sink = static_cast<const uint8_t*>(t->data)[0];
      sink = static_cast<const uint8_t*>(t->data)[t->bytes - 1];
      (void)sink;
    }
  }
  FUZZ_CHECK(!(*file)->tensor("\x01 no such tensor").ok(), "unknown names are NOT_FOUND");
  return 0;
}
