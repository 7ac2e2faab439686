// The safetensors reader: a checked parser over bytes, and memory-mapped files.
#include "hal/runtime/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "hal/file_io.h"

namespace hal::runtime {

namespace {

constexpr SafetensorsDType kDTypes[] = {
    {"F64", 8, std::nullopt},  {"F32", 4, DType::kF32},         {"F16", 2, DType::kF16},
    {"BF16", 2, DType::kBF16}, {"I64", 8, DType::kI64},         {"I32", 4, DType::kI32},
    {"I16", 2, std::nullopt},  {"I8", 1, DType::kI8},           {"U64", 8, std::nullopt},
    {"U32", 4, std::nullopt},  {"U16", 2, std::nullopt},        {"U8", 1, DType::kU8},
    {"BOOL", 1, std::nullopt}, {"F8_E4M3", 1, DType::kFP8E4M3}, {"F8_E5M2", 1, DType::kFP8E5M2},
};

// Deepest nesting a well-formed header has is 3 (root, entry, shape list); a limit
// keeps the recursive JSON parser's stack small on hostile input.
constexpr int kMaxJsonDepth = 16;

bool nesting_within(std::span<const uint8_t> text, int limit) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (uint8_t c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > limit) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

std::optional<SafetensorsDType> safetensors_dtype(std::string_view name) {
  for (const SafetensorsDType& d : kDTypes)
    if (d.name == name) return d;
  return std::nullopt;
}

const SafetensorsEntry* SafetensorsHeader::find(std::string_view name) const {
  auto it =
      std::lower_bound(tensors.begin(), tensors.end(), name,
                       [](const SafetensorsEntry& e, std::string_view n) { return e.name < n; });
  return it != tensors.end() && it->name == name ? &*it : nullptr;
}

Result<SafetensorsHeader> parse_safetensors(std::span<const uint8_t> bytes,
                                            std::string_view file_name) {
  const std::string file(file_name);
  auto bad = [&](const std::string& msg) { return invalid_argument(file + ": " + msg); };
  if (bytes.size() < 8)
    return data_loss(file + ": truncated: " + std::to_string(bytes.size()) +
                     " bytes, fewer than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[size_t(i)];
  const uint64_t available = bytes.size() - 8;
  if (n > available)
    return data_loss(file + ": header length " + std::to_string(n) +
                     " runs past the end of the file (" + std::to_string(bytes.size()) +
                     " bytes; truncated or not a safetensors file)");
  if (n > kMaxSafetensorsHeaderBytes)
    return bad("header length " + std::to_string(n) + " exceeds the " +
               std::to_string(kMaxSafetensorsHeaderBytes) + "-byte limit");
  if (n < 2) return bad("header of " + std::to_string(n) + " bytes cannot hold a JSON object");
  const std::span<const uint8_t> text = bytes.subspan(8, size_t(n));
  if (!nesting_within(text, kMaxJsonDepth))
    return bad("malformed JSON header: nested deeper than " + std::to_string(kMaxJsonDepth));
  nlohmann::json root = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                              /*allow_exceptions=*/false);
  if (root.is_discarded()) return bad("malformed JSON header (does not parse)");
  if (!root.is_object()) return bad("malformed JSON header: not a JSON object");

  SafetensorsHeader h;
  h.header_bytes = n;
  h.data_offset = 8 + n;
  h.data_bytes = available - n;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& e = it.value();
    if (name == "__metadata__") {
      if (!e.is_object()) return bad("__metadata__ is not an object");
      for (auto m = e.begin(); m != e.end(); ++m) {
        if (!m.value().is_string())
          return bad("__metadata__ value '" + m.key() + "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!e.is_object()) return bad(where + ": entry is not an object");
    auto dt = e.find("dtype");
    if (dt == e.end() || !dt->is_string()) return bad(where + ": missing or non-string dtype");
    auto dtype = safetensors_dtype(dt->get_ref<const std::string&>());
    if (!dtype) return bad(where + ": unknown dtype '" + dt->get<std::string>() + "'");
    auto sh = e.find("shape");
    if (sh == e.end() || !sh->is_array()) return bad(where + ": missing or non-array shape");
    if (sh->size() > 64) return bad(where + ": shape has " + std::to_string(sh->size()) + " dims");
    SafetensorsEntry entry;
    entry.name = name;
    entry.dtype = *dtype;
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : *sh) {
      if (!d.is_number_integer() ||
          (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0))
        return bad(where + ": shape " + sh->dump() +
                   " has a dim that is not a non-negative integer");
      const uint64_t v = d.get<uint64_t>();
      if (v > uint64_t(INT64_MAX)) return bad(where + ": dim " + std::to_string(v) + " too large");
      entry.shape.push_back(int64_t(v));
      if (v != 0 && numel > UINT64_MAX / v) overflow = true;
      numel *= v;
    }
    auto off = e.find("data_offsets");
    if (off == e.end() || !off->is_array() || off->size() != 2)
      return bad(where + ": data_offsets must be a list of two integers");
    for (const auto& o : *off)
      if (!o.is_number_unsigned())
        return bad(where + ": data_offsets " + off->dump() + " are not non-negative integers");
    entry.begin = (*off)[0].get<uint64_t>();
    entry.end = (*off)[1].get<uint64_t>();
    if (entry.begin > entry.end)
      return bad(where + ": data_offsets [" + std::to_string(entry.begin) + ", " +
                 std::to_string(entry.end) + "] end before they begin");
    if (entry.end > h.data_bytes)
      return bad(where + ": data_offsets [" + std::to_string(entry.begin) + ", " +
                 std::to_string(entry.end) + "] run past the data section (" +
                 std::to_string(h.data_bytes) + " bytes; file truncated?)");
    if (overflow || (dtype->size != 0 && numel > UINT64_MAX / dtype->size) ||
        numel * dtype->size != entry.end - entry.begin)
      return bad(where + ": " + std::string(dtype->name) + shape_string(entry.shape) + " needs " +
                 (overflow ? std::string("more than 2^64") : std::to_string(numel * dtype->size)) +
                 " bytes but data_offsets span " + std::to_string(entry.end - entry.begin));
    h.tensors.push_back(std::move(entry));
  }
  // No two tensors may share bytes.
  std::vector<const SafetensorsEntry*> by_offset;
  for (const auto& t : h.tensors)
    if (t.end > t.begin) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i]->begin < by_offset[i - 1]->end)
      return bad("tensors '" + by_offset[i - 1]->name + "' [" +
                 std::to_string(by_offset[i - 1]->begin) + ", " +
                 std::to_string(by_offset[i - 1]->end) + ") and '" + by_offset[i]->name + "' [" +
                 std::to_string(by_offset[i]->begin) + ", " + std::to_string(by_offset[i]->end) +
                 ") overlap");
  std::sort(h.tensors.begin(), h.tensors.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.name < b.name; });
  return h;
}

// ---- MappedFile ------------------------------------------------------------------

Result<std::unique_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  // A FIFO or device named as a weights file is refused, not waited on (file_io.h).
  HAL_ASSIGN_OR_RETURN(OpenedFile file, open_regular_file(path, ""));
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = size_t(file.size_bytes);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, file.fd.get(), 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      return invalid_argument(path + ": cannot map: " + std::strerror(err));
    }
    f->data_ = static_cast<const uint8_t*>(p);
  }
  return f;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

// ---- SafetensorsFile -------------------------------------------------------------

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  HAL_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(path));
  HAL_ASSIGN_OR_RETURN(auto header, parse_safetensors(mapped->bytes(), path));
  auto f = std::make_unique<SafetensorsFile>();
  f->file_ = std::move(mapped);
  f->header_ = std::move(header);
  return f;
}

Result<HostTensor> SafetensorsFile::tensor(std::string_view name) const {
  const SafetensorsEntry* e = header_.find(name);
  if (!e) return not_found(path() + ": no tensor '" + std::string(name) + "'");
  if (!e->dtype.hal_dtype)
    return invalid_argument(path() + ": tensor '" + e->name + "' has dtype " +
                            std::string(e->dtype.name) + ", which the runtime does not read");
  if (e->shape.size() > size_t(kMaxRank))
    return invalid_argument(path() + ": tensor '" + e->name + "' has rank " +
                            std::to_string(e->shape.size()) + " (at most 8)");
  HostTensor t;
  t.name = e->name;
  t.dtype = *e->dtype.hal_dtype;
  t.shape.rank = int32_t(e->shape.size());
  for (size_t i = 0; i < e->shape.size(); ++i) t.shape.dims[i] = e->shape[i];
  t.data = file_->bytes().data() + header_.data_offset + e->begin;
  t.bytes = e->end - e->begin;
  t.source = path();
  return t;
}

}  // namespace hal::runtime
