// Fuzzes the GGUF reader and the GGUF model loader: parse_gguf over the bytes of a whole
// file, every typed metadata getter on every key, then the same bytes opened as a file
// (GgufFile: mmap, tensor() for every entry) and as a model (open_gguf_model: the
// architecture from the metadata, every tensor the architecture implies).
// Properties (gguf.h's contract): never crashes or reads outside the input; an accepted
// header describes tensors whose data lies inside the file, whose byte size is the
// type's blocks x shape, aligned and not overlapping; errors name the file; the file
// path agrees with the pure parser.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "hal/runtime/gguf.h"
#include "hal/runtime/model.h"

using namespace hal::runtime;

namespace {

const std::string& memfd_path(int* fd_out) {
  static int fd = ::memfd_create("fuzz_gguf", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  *fd_out = fd;
  return path;
}

void check_header(const GgufHeader& h, size_t file_size) {
  FUZZ_CHECK(h.alignment > 0 && (h.alignment & (h.alignment - 1)) == 0, "alignment is a power of two");
  FUZZ_CHECK(h.data_offset % h.alignment == 0, "data section aligned");
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const GgufTensorInfo& t : h.tensors) {
    FUZZ_CHECK(t.offset % h.alignment == 0, t.name + ": offset aligned");
    FUZZ_CHECK(h.data_offset + t.offset + t.bytes <= file_size, t.name + ": data inside the file");
    uint64_t n = 1;
    for (int64_t d : t.ne) n *= uint64_t(d);
    FUZZ_CHECK(n % t.type.block == 0 && n / t.type.block * t.type.block_bytes == t.bytes,
               t.name + ": bytes are blocks x block bytes");
    FUZZ_CHECK(t.shape.rank == int32_t(t.ne.size()), t.name + ": rank");
    if (t.bytes) spans.emplace_back(t.offset, t.offset + t.bytes);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) FUZZ_CHECK(spans[i - 1].second <= spans[i].first, "no overlap");
  // Getters: each succeeds or fails with a message naming the file; never crashes.
  for (const auto& [key, v] : h.metadata) {
    (void)v;
    for (const hal::Status& s : {h.get_string(key).status(), h.get_int(key).status(), h.get_uint(key).status(),
                            h.get_float(key).status(), h.get_bool(key).status(),
                            h.get_string_array(key).status(), h.get_int_array(key).status(),
                            h.get_float_array(key).status()})
      FUZZ_CHECK(s.ok() || s.message().find(h.file) != std::string::npos, "getter errors name the file");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = parse_gguf({data, size}, "fuzz.gguf");
  if (parsed.ok())
    check_header(*parsed, size);
  else
    FUZZ_CHECK(parsed.status().message().find("fuzz.gguf") != std::string::npos, "errors name the file");

  int fd = -1;
  const std::string& path = memfd_path(&fd);
  if (fd < 0) return 0;
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != ssize_t(size)) return 0;
  auto file = GgufFile::open(path);
  FUZZ_CHECK(file.ok() == parsed.ok(),
             "file and bytes agree: " + (file.ok() ? std::string("file ok") : file.status().to_string()));
  if (!file.ok()) return 0;
  for (const GgufTensorInfo& e : (*file)->header().tensors) {
    auto t = (*file)->tensor(e.name);
    if (!t.ok()) continue;  // types without a HAL equivalent: refused by name
    FUZZ_CHECK(t->bytes == e.bytes, e.name + ": tensor bytes");
    if (t->bytes) {
      volatile uint8_t sink = static_cast<const uint8_t*>(t->data)[0];
      sink = static_cast<const uint8_t*>(t->data)[t->bytes - 1];
      (void)sink;
    }
  }
  // As a model: accepted or refused with a message; a loaded model's weights are readable.
  auto model = open_gguf_model(path);
  if (model.ok()) {
    for (const std::string& name : (*model)->weight_names()) {
      auto w = (*model)->weight(name);
      FUZZ_CHECK(w.ok(), name + ": every weight a loaded model names exists");
      if (w.ok() && w->bytes) {
        volatile uint8_t sink = static_cast<const uint8_t*>(w->data)[w->bytes - 1];
        (void)sink;
      }
    }
  } else {
    FUZZ_CHECK(!model.status().message().empty(), "model errors say what was wrong");
  }
  return 0;
}
