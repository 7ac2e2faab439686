// hal/runtime/safetensors.h: reading .safetensors files (the Hugging Face weight format)
// by memory mapping, with every field checked.
//
// Format: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [768, 2304], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"format": "pt"}}
// then the data section; offsets are relative to the data section's start.
//
// Contract
// - parse_safetensors() is a pure function over the file's bytes (no I/O, no globals),
//   so it can be fuzzed directly. Malformed input is an INVALID_ARGUMENT (DATA_LOSS for
//   a truncated file) naming the file and, where one is involved, the tensor:
//     fewer than 8 bytes, header length past the end of the file, header too large,
//     JSON that does not parse or nests too deeply, entries that are not objects,
//     missing or mistyped dtype/shape/data_offsets, unknown dtype, negative or
//     overflowing dims, begin > end, offsets past the data section, byte size not
//     matching dtype x shape, two tensors whose bytes overlap.
//   It never crashes and never reads outside `bytes`.
// - SafetensorsFile maps a file read-only (MAP_PRIVATE) and keeps it mapped while it
//   lives; tensor data pointers stay valid that long.
//
// Threading: parse_safetensors is pure; a SafetensorsFile is immutable after open() and
// may be read from several threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hal/dtype.h"
#include "hal/op.h"
#include "hal/status.h"

namespace hal::runtime {

// The dtypes the format names. Those with a HAL equivalent map to it; F64, I16, U16,
// U32, U64 and BOOL parse but have none (hal_dtype is nullopt).
struct SafetensorsDType {
  std::string_view name;  // "F32", "BF16", ...
  uint32_t size = 0;      // bytes per element
  std::optional<DType> hal_dtype;
};
// nullopt for a name the format does not define.
std::optional<SafetensorsDType> safetensors_dtype(std::string_view name);

struct SafetensorsEntry {
  std::string name;
  SafetensorsDType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  uint64_t header_bytes = 0;              // N
  uint64_t data_offset = 0;               // 8 + N: where the data section starts in the file
  uint64_t data_bytes = 0;                // size of the data section
  std::vector<SafetensorsEntry> tensors;  // sorted by name
  std::map<std::string, std::string> metadata;

  const SafetensorsEntry* find(std::string_view name) const;
};

// Largest JSON header accepted (the reference implementation's limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100u << 20;

// Parses and checks a whole file held in `bytes`; `file_name` only labels errors.
Result<SafetensorsHeader> parse_safetensors(std::span<const uint8_t> bytes,
                                            std::string_view file_name);

// A read-only memory mapping of a whole file.
class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// A view of one tensor's bytes inside a mapped file (or any host memory).
struct HostTensor {
  std::string name;
  DType dtype = DType::kInvalid;
  Shape shape;
  const void* data = nullptr;
  uint64_t bytes = 0;
  std::string source;  // file it came from ("" for generated tensors)
  // A 2-D weight stored as the transpose of its canonical shape (model_config.h):
  // e.g. a GGUF gpt2 projection, [out, in] where Hugging Face's Conv1D is [in, out].
  // `shape` is then the stored (transposed) shape.
  bool transposed = false;
};

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);

  const SafetensorsHeader& header() const { return header_; }
  const std::string& path() const { return file_->path(); }
  // The tensor's bytes. NOT_FOUND naming the file; INVALID_ARGUMENT when its dtype has
  // no HAL equivalent or its rank exceeds 8.
  Result<HostTensor> tensor(std::string_view name) const;

 private:
  std::unique_ptr<MappedFile> file_;
  SafetensorsHeader header_;
};

}  // namespace hal::runtime
