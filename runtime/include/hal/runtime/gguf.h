// hal/runtime/gguf.h: reading and writing GGUF files (the llama.cpp ecosystem's model
// format), version 3 (and 2, which has the same layout), little-endian.
//
// Format: "GGUF" magic, u32 version, u64 tensor count, u64 metadata count; metadata
// key/value pairs (keys are u64-length-prefixed strings; values typed: u8 .. f64, bool,
// string, arrays of any of them, arrays of arrays); tensor infos (name, u32 rank, u64
// dims innermost first, u32 ggml type, u64 offset); padding to `general.alignment`
// (default 32); the data section. A tensor's dims [ne0, ne1, ..] are the row-major
// shape [.., ne1, ne0]: `shape` below is already in that (our) order.
//
// Contract
// - parse_gguf() is a pure function over the file's bytes (fuzzed by tests/fuzz). It
//   never reads outside `bytes` and never crashes; malformed input is INVALID_ARGUMENT
//   (DATA_LOSS where the file ends early) naming the file and the field:
//     "model.gguf: metadata entry 3 ('llama.block_count'): value type 13 is not a GGUF type"
//     "model.gguf: tensor 'blk.0.attn_q.weight': data [1000, 5000) runs past the end of
//      the file (4096 bytes)"
//   Checked: magic, version (2 or 3; a byte-swapped version is called big-endian),
//   counts against the bytes left, string lengths, value types, nesting depth, duplicate
//   keys and tensor names, alignment (a power of two), ranks (<= 8), dims (>= 0, the
//   element count and byte size without overflow, ne0 a multiple of the type's block),
//   known tensor types, offsets aligned and inside the data section, tensors that overlap.
// - Metadata getters are typed: an integer getter accepts any integer type whose value
//   fits, a float getter f32 or f64; a missing key is NOT_FOUND, a mistyped one
//   INVALID_ARGUMENT, both naming the file and the key.
// - GgufFile maps the file read-only and keeps it mapped while it lives; tensor data
//   pointers stay valid that long.
// - GgufWriter lays out a file the same way (alignment 32 unless set) and writes it.
//
// Threading: parse_gguf is pure; GgufFile and GgufHeader are immutable after creation.
#pragma once

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
#include "hal/runtime/safetensors.h"
#include "hal/status.h"

namespace hal::runtime {

// GGUF metadata value types (the numbering of the specification).
enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
std::string_view gguf_type_name(GgufType t);  // "u8", ..., "string", "array"

// One metadata value. Scalars fill one of i/u/f/b/s; arrays set `elem` and fill the
// vector of their element kind (integers go to `ints`, or `uints` for u64; floats to
// `floats`; strings to `strings`; bools to `ints` as 0/1); arrays of arrays keep only
// their length (`count`).
struct GgufValue {
  GgufType type = GgufType::kU8;
  GgufType elem = GgufType::kU8;  // arrays
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  bool b = false;
  std::string s;
  uint64_t count = 0;  // arrays: element count
  std::vector<int64_t> ints;
  std::vector<uint64_t> uints;
  std::vector<double> floats;
  std::vector<std::string> strings;

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kF32 || type == GgufType::kF64; }
};

// ggml tensor types the format names (the numbering of the specification), with their
// block geometry. Those with a HAL equivalent map to it (F32, F16, BF16, Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, I8, I32, I64); the others parse, so a file using
// them is read and its unsupported tensors named when asked for.
struct GgmlType {
  uint32_t id = 0;
  std::string_view name;  // "F32", "Q4_K", ...
  uint32_t block = 1;     // elements per block
  uint32_t block_bytes = 0;
  std::optional<DType> hal_dtype;
};
std::optional<GgmlType> ggml_type(uint32_t id);
// The ggml type of a HAL dtype (nullopt for formats GGUF does not define).
std::optional<uint32_t> ggml_type_of(DType t);

struct GgufTensorInfo {
  std::string name;
  GgmlType type;
  std::vector<int64_t> ne;  // dims as stored: innermost first
  Shape shape;              // row-major: ne reversed
  uint64_t offset = 0;      // relative to the data section
  uint64_t bytes = 0;
};

struct GgufHeader {
  std::string file;  // for messages
  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // where the data section starts in the file
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
  std::vector<GgufTensorInfo> tensors;                      // in file order

  const GgufValue* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const GgufTensorInfo* tensor(std::string_view name) const;

  Result<std::string> get_string(std::string_view key) const;
  Result<int64_t> get_int(std::string_view key) const;    // any integer type, fitting int64
  Result<uint64_t> get_uint(std::string_view key) const;  // any integer type, >= 0
  Result<double> get_float(std::string_view key) const;   // f32/f64 (integers accepted too)
  Result<bool> get_bool(std::string_view key) const;
  Result<std::vector<std::string>> get_string_array(std::string_view key) const;
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;   // any integer elements
  Result<std::vector<double>> get_float_array(std::string_view key) const;  // f32/f64 elements
};

// Parses and checks a whole file held in `bytes`; `file_name` only labels errors.
Result<GgufHeader> parse_gguf(std::span<const uint8_t> bytes, std::string_view file_name);

// True when `bytes` start with the GGUF magic.
bool looks_like_gguf(std::span<const uint8_t> bytes);

class GgufFile {
 public:
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path);
  const GgufHeader& header() const { return header_; }
  const std::string& path() const { return file_->path(); }
  // The tensor's bytes in its row-major shape. NOT_FOUND naming the file; INVALID_ARGUMENT
  // when its type has no HAL equivalent.
  Result<HostTensor> tensor(std::string_view name) const;

 private:
  std::unique_ptr<MappedFile> file_;
  GgufHeader header_;
};

// Builds a GGUF file. Tensors are referenced, not copied: their data must stay valid
// until write()/serialize() returns.
class GgufWriter {
 public:
  void set_alignment(uint32_t alignment) { alignment_ = alignment; }
  void add_string(const std::string& key, const std::string& value);
  void add_u32(const std::string& key, uint32_t value);
  void add_i32(const std::string& key, int32_t value);
  void add_u64(const std::string& key, uint64_t value);
  void add_f32(const std::string& key, float value);
  void add_bool(const std::string& key, bool value);
  void add_string_array(const std::string& key, const std::vector<std::string>& values);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& values);
  void add_f32_array(const std::string& key, const std::vector<float>& values);
  // Any value as read by parse_gguf (to copy metadata between files).
  void add_value(const std::string& key, const GgufValue& value);
  // `shape` row-major; `dtype` must have a ggml type; bytes must match the shape.
  Status add_tensor(const std::string& name, DType dtype, const Shape& shape, const void* data,
                    uint64_t bytes);
  std::vector<uint8_t> serialize() const;
  Status write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    uint32_t type;
    Shape shape;
    const void* data;
    uint64_t bytes;
  };
  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> kv_;  // key, encoded type + value
  std::vector<Tensor> tensors_;
};

}  // namespace hal::runtime
