// GGUF files: a checked parser over bytes, typed metadata getters, memory-mapped files
// and a writer (hal/runtime/gguf.h).
#include "hal/runtime/gguf.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

namespace hal::runtime {

namespace {

constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", 1, 4, DType::kF32},          {1, "F16", 1, 2, DType::kF16},
    {2, "Q4_0", 32, 18, DType::kQ4_0},      {3, "Q4_1", 32, 20, DType::kQ4_1},
    {6, "Q5_0", 32, 22, DType::kQ5_0},      {7, "Q5_1", 32, 24, DType::kQ5_1},
    {8, "Q8_0", 32, 34, DType::kQ8_0},      {9, "Q8_1", 32, 36, std::nullopt},
    {10, "Q2_K", 256, 84, std::nullopt},    {11, "Q3_K", 256, 110, std::nullopt},
    {12, "Q4_K", 256, 144, DType::kQ4_K},   {13, "Q5_K", 256, 176, DType::kQ5_K},
    {14, "Q6_K", 256, 210, DType::kQ6_K},   {15, "Q8_K", 256, 292, std::nullopt},
    {16, "IQ2_XXS", 256, 66, std::nullopt}, {17, "IQ2_XS", 256, 74, std::nullopt},
    {18, "IQ3_XXS", 256, 98, std::nullopt}, {19, "IQ1_S", 256, 50, std::nullopt},
    {20, "IQ4_NL", 32, 18, std::nullopt},   {21, "IQ3_S", 256, 110, std::nullopt},
    {22, "IQ2_S", 256, 82, std::nullopt},   {23, "IQ4_XS", 256, 136, std::nullopt},
    {24, "I8", 1, 1, DType::kI8},           {25, "I16", 1, 2, std::nullopt},
    {26, "I32", 1, 4, DType::kI32},         {27, "I64", 1, 8, DType::kI64},
    {28, "F64", 1, 8, std::nullopt},        {29, "IQ1_M", 256, 56, std::nullopt},
    {30, "BF16", 1, 2, DType::kBF16},       {34, "TQ1_0", 256, 54, std::nullopt},
    {35, "TQ2_0", 256, 66, std::nullopt},   {39, "MXFP4", 32, 17, std::nullopt},
};

// Arrays of arrays deeper than this are refused (the format allows nesting; real files
// nest at most once, and a bound keeps hostile input from recursing without end).
constexpr int kMaxArrayDepth = 4;

class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, std::string file) : b_(bytes), file_(std::move(file)) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return b_.size() - pos_; }
  const std::string& file() const { return file_; }

  Status need(uint64_t n, const std::string& what) {
    if (n > left())
      return data_loss(file_ + ": " + what + ": needs " + std::to_string(n) + " bytes at offset " +
                       std::to_string(pos_) + ", the file has " + std::to_string(left()) + " left");
    return ok_status();
  }
  template <typename T>
  Result<T> get(const std::string& what) {
    HAL_RETURN_IF_ERROR(need(sizeof(T), what));
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  Result<std::string> string(const std::string& what) {
    HAL_ASSIGN_OR_RETURN(uint64_t n, get<uint64_t>(what + " length"));
    HAL_RETURN_IF_ERROR(need(n, what + " (a string of " + std::to_string(n) + " bytes)"));
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), size_t(n));
    pos_ += n;
    return s;
  }

 private:
  std::span<const uint8_t> b_;
  std::string file_;
  uint64_t pos_ = 0;
};

uint64_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
      return 8;
    default:
      return 0;  // string (>= 8), array (>= 12)
  }
}

Result<GgufType> value_type(Reader& r, const std::string& what) {
  HAL_ASSIGN_OR_RETURN(uint32_t t, r.get<uint32_t>(what + " type"));
  if (t > uint32_t(GgufType::kF64))
    return invalid_argument(r.file() + ": " + what + ": value type " + std::to_string(t) +
                            " is not a GGUF type (0-12)");
  return GgufType(t);
}

// Reads one scalar of type t into v (integers to i/u, floats to f, bool to b).
Status read_scalar(Reader& r, GgufType t, GgufValue& v, const std::string& what) {
  switch (t) {
#define HAL_GGUF_INT(T, C)                     \
  case GgufType::T: {                          \
    HAL_ASSIGN_OR_RETURN(C x, r.get<C>(what)); \
    v.i = int64_t(x);                          \
    v.u = uint64_t(x);                         \
    return ok_status();                        \
  }
    HAL_GGUF_INT(kU8, uint8_t)
    HAL_GGUF_INT(kI8, int8_t)
    HAL_GGUF_INT(kU16, uint16_t)
    HAL_GGUF_INT(kI16, int16_t)
    HAL_GGUF_INT(kU32, uint32_t)
    HAL_GGUF_INT(kI32, int32_t)
    HAL_GGUF_INT(kI64, int64_t)
#undef HAL_GGUF_INT
    case GgufType::kU64: {
      HAL_ASSIGN_OR_RETURN(uint64_t x, r.get<uint64_t>(what));
      v.u = x;
      v.i = int64_t(x);
      return ok_status();
    }
    case GgufType::kF32: {
      HAL_ASSIGN_OR_RETURN(float x, r.get<float>(what));
      v.f = x;
      return ok_status();
    }
    case GgufType::kF64: {
      HAL_ASSIGN_OR_RETURN(double x, r.get<double>(what));
      v.f = x;
      return ok_status();
    }
    case GgufType::kBool: {
      HAL_ASSIGN_OR_RETURN(uint8_t x, r.get<uint8_t>(what));
      if (x > 1)
        return invalid_argument(r.file() + ": " + what + ": bool value " + std::to_string(x) +
                                " is neither 0 nor 1");
      v.b = x == 1;
      v.i = x;
      return ok_status();
    }
    case GgufType::kString: {
      HAL_ASSIGN_OR_RETURN(v.s, r.string(what));
      return ok_status();
    }
    case GgufType::kArray:
      break;
  }
  return invalid_argument(r.file() + ": " + what + ": not a scalar");
}

Status read_value(Reader& r, GgufType t, GgufValue& v, const std::string& what, int depth) {
  v.type = t;
  if (t != GgufType::kArray) return read_scalar(r, t, v, what);
  if (depth >= kMaxArrayDepth)
    return invalid_argument(r.file() + ": " + what + ": arrays nested deeper than " +
                            std::to_string(kMaxArrayDepth));
  HAL_ASSIGN_OR_RETURN(v.elem, value_type(r, what + " element"));
  HAL_ASSIGN_OR_RETURN(v.count, r.get<uint64_t>(what + " element count"));
  // Every element takes at least this many bytes: the count cannot exceed the file.
  const uint64_t min_size = v.elem == GgufType::kString  ? 8
                            : v.elem == GgufType::kArray ? 12
                                                         : scalar_size(v.elem);
  if (v.count > r.left() / min_size)
    return data_loss(r.file() + ": " + what + ": " + std::to_string(v.count) + " elements of " +
                     std::string(gguf_type_name(v.elem)) + " cannot fit in the " +
                     std::to_string(r.left()) + " bytes left");
  GgufValue e;
  for (uint64_t i = 0; i < v.count; ++i) {
    const std::string ew = what + "[" + std::to_string(i) + "]";
    if (v.elem == GgufType::kArray) {
      HAL_ASSIGN_OR_RETURN(GgufType inner, value_type(r, ew));
      GgufValue nested;
      HAL_RETURN_IF_ERROR(read_value(r, inner, nested, ew, depth + 1));
      continue;  // nested arrays: only their length is kept
    }
    HAL_RETURN_IF_ERROR(read_scalar(r, v.elem, e, ew));
    switch (v.elem) {
      case GgufType::kString:
        v.strings.push_back(std::move(e.s));
        break;
      case GgufType::kF32:
      case GgufType::kF64:
        v.floats.push_back(e.f);
        break;
      case GgufType::kU64:
        v.uints.push_back(e.u);
        break;
      default:
        v.ints.push_back(e.i);
        break;
    }
  }
  return ok_status();
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view kNames[] = {"u8",  "i8",  "u16",  "i16",    "u32",
                                                "i32", "f32", "bool", "string", "array",
                                                "u64", "i64", "f64"};
  const uint32_t i = uint32_t(t);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kU16:
    case GgufType::kI16:
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kU64:
    case GgufType::kI64:
      return true;
    default:
      return false;
  }
}

std::optional<GgmlType> ggml_type(uint32_t id) {
  for (const GgmlType& t : kGgmlTypes)
    if (t.id == id) return t;
  return std::nullopt;
}

std::optional<uint32_t> ggml_type_of(DType t) {
  for (const GgmlType& g : kGgmlTypes)
    if (g.hal_dtype == t) return g.id;
  return std::nullopt;
}

bool looks_like_gguf(std::span<const uint8_t> bytes) {
  return bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0;
}

Result<GgufHeader> parse_gguf(std::span<const uint8_t> bytes, std::string_view file_name) {
  GgufHeader h;
  h.file = std::string(file_name);
  const std::string& file = h.file;
  auto bad = [&](const std::string& msg) { return invalid_argument(file + ": " + msg); };
  Reader r(bytes, file);
  HAL_RETURN_IF_ERROR(r.need(4, "magic"));
  if (!looks_like_gguf(bytes)) return bad("not a GGUF file (the first 4 bytes are not \"GGUF\")");
  (void)r.get<uint32_t>("magic");
  HAL_ASSIGN_OR_RETURN(h.version, r.get<uint32_t>("version"));
  if (h.version == 0x03000000u || h.version == 0x02000000u)
    return bad("a big-endian GGUF file; only little-endian files are supported");
  if (h.version != 2 && h.version != 3)
    return bad("GGUF version " + std::to_string(h.version) + " is not supported (2 or 3)");
  HAL_ASSIGN_OR_RETURN(uint64_t n_tensors, r.get<uint64_t>("tensor count"));
  HAL_ASSIGN_OR_RETURN(uint64_t n_kv, r.get<uint64_t>("metadata count"));
  // Each metadata entry takes >= 12 bytes (key length, type) and each tensor info >= 24.
  if (n_kv > r.left() / 12)
    return data_loss(file + ": metadata count " + std::to_string(n_kv) + " cannot fit in the file");
  if (n_tensors > r.left() / 24)
    return data_loss(file + ": tensor count " + std::to_string(n_tensors) +
                     " cannot fit in the file");

  std::set<std::string> keys;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string what = "metadata entry " + std::to_string(i);
    HAL_ASSIGN_OR_RETURN(std::string key, r.string(what + " key"));
    const std::string named = what + " ('" + key + "')";
    if (key.empty()) return bad(what + ": empty key");
    if (!keys.insert(key).second) return bad(named + ": duplicate key");
    HAL_ASSIGN_OR_RETURN(GgufType t, value_type(r, named));
    GgufValue v;
    HAL_RETURN_IF_ERROR(read_value(r, t, v, named, 0));
    h.metadata.emplace_back(std::move(key), std::move(v));
  }
  if (const GgufValue* a = h.find("general.alignment")) {
    if (!a->is_integer() || a->type == GgufType::kBool)
      return bad("metadata 'general.alignment' is a " + std::string(gguf_type_name(a->type)) +
                 ", not an integer");
    if (a->i <= 0 || (a->u & (a->u - 1)) != 0 || a->u > (uint64_t(1) << 30))
      return bad("metadata 'general.alignment' " + std::to_string(a->i) +
                 " is not a power of two (up to 2^30)");
    h.alignment = a->u;
  }

  std::set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const std::string what = "tensor info " + std::to_string(i);
    GgufTensorInfo t;
    HAL_ASSIGN_OR_RETURN(t.name, r.string(what + " name"));
    const std::string named = "tensor '" + t.name + "'";
    if (t.name.empty()) return bad(what + ": empty name");
    if (!names.insert(t.name).second) return bad(named + ": duplicate tensor name");
    HAL_ASSIGN_OR_RETURN(uint32_t rank, r.get<uint32_t>(named + " rank"));
    if (rank > uint32_t(kMaxRank))
      return bad(named + ": rank " + std::to_string(rank) + " exceeds " + std::to_string(kMaxRank));
    uint64_t numel = 1;
    for (uint32_t d = 0; d < rank; ++d) {
      HAL_ASSIGN_OR_RETURN(uint64_t ne, r.get<uint64_t>(named + " dim " + std::to_string(d)));
      if (ne > uint64_t(INT64_MAX) || mul_overflows(numel, ne, &numel) ||
          numel > uint64_t(INT64_MAX))
        return bad(named + ": dims overflow 64 bits");
      t.ne.push_back(int64_t(ne));
    }
    t.shape.rank = int32_t(rank);
    for (uint32_t d = 0; d < rank; ++d) t.shape.dims[rank - 1 - d] = t.ne[d];
    HAL_ASSIGN_OR_RETURN(uint32_t type, r.get<uint32_t>(named + " type"));
    const std::optional<GgmlType> gt = ggml_type(type);
    if (!gt)
      return bad(named + ": tensor type " + std::to_string(type) +
                 " is not a ggml type this reader knows");
    t.type = *gt;
    const uint64_t ne0 = rank > 0 ? uint64_t(t.ne[0]) : 1;
    if (ne0 % t.type.block != 0)
      return bad(named + ": its innermost dim " + std::to_string(ne0) + " is not a multiple of " +
                 std::string(t.type.name) + "'s block of " + std::to_string(t.type.block));
    if (mul_overflows(numel / t.type.block, t.type.block_bytes, &t.bytes))
      return bad(named + ": byte size overflows 64 bits");
    HAL_ASSIGN_OR_RETURN(t.offset, r.get<uint64_t>(named + " offset"));
    if (t.offset % h.alignment != 0)
      return bad(named + ": offset " + std::to_string(t.offset) +
                 " is not a multiple of the alignment " + std::to_string(h.alignment));
    h.tensors.push_back(std::move(t));
  }
  h.data_offset = (r.pos() + h.alignment - 1) / h.alignment * h.alignment;
  if (h.data_offset > bytes.size() && !h.tensors.empty())
    return data_loss(file + ": the data section (at " + std::to_string(h.data_offset) +
                     ") starts past the end of the file (" + std::to_string(bytes.size()) +
                     " bytes)");
  const uint64_t data_bytes = bytes.size() > h.data_offset ? bytes.size() - h.data_offset : 0;
  std::vector<std::pair<uint64_t, size_t>> spans;
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const GgufTensorInfo& t = h.tensors[i];
    if (t.offset > data_bytes || t.bytes > data_bytes - t.offset)
      return data_loss(file + ": tensor '" + t.name + "': data [" + std::to_string(t.offset) +
                       ", " + std::to_string(t.offset + t.bytes) +
                       ") of the data section runs past the end of " + "the file (" +
                       std::to_string(data_bytes) + " data bytes)");
    if (t.bytes > 0) spans.emplace_back(t.offset, i);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    const GgufTensorInfo& prev = h.tensors[spans[i - 1].second];
    const GgufTensorInfo& cur = h.tensors[spans[i].second];
    if (prev.offset + prev.bytes > cur.offset)
      return bad("tensors '" + prev.name + "' and '" + cur.name + "' overlap");
  }
  return h;
}

// ---- metadata getters ------------------------------------------------------------------

const GgufValue* GgufHeader::find(std::string_view key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

const GgufTensorInfo* GgufHeader::tensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

namespace {

Result<const GgufValue*> lookup(const GgufHeader& h, std::string_view key) {
  const GgufValue* v = h.find(key);
  if (!v) return not_found(h.file + ": no metadata key '" + std::string(key) + "'");
  return v;
}
Status mistyped(const GgufHeader& h, std::string_view key, const GgufValue& v, const char* want) {
  std::string got(gguf_type_name(v.type));
  if (v.type == GgufType::kArray) got = "array of " + std::string(gguf_type_name(v.elem));
  return invalid_argument(h.file + ": metadata '" + std::string(key) + "' is " + got +
                          ", expected " + want);
}
bool integer_type(GgufType t) {
  GgufValue v;
  v.type = t;
  return v.is_integer();
}

}  // namespace

Result<std::string> GgufHeader::get_string(std::string_view key) const {
  HAL_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->type != GgufType::kString) return mistyped(*this, key, *v, "a string");
  return v->s;
}

Result<int64_t> GgufHeader::get_int(std::string_view key) const {
  HAL_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (!v->is_integer()) return mistyped(*this, key, *v, "an integer");
  if (v->type == GgufType::kU64 && v->u > uint64_t(INT64_MAX))
    return invalid_argument(file + ": metadata '" + std::string(key) + "' " + std::to_string(v->u) +
                            " does not fit a signed 64-bit integer");
  return v->i;
}

Result<uint64_t> GgufHeader::get_uint(std::string_view key) const {
  HAL_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (!v->is_integer()) return mistyped(*this, key, *v, "an integer");
  if (v->type != GgufType::kU64 && v->i < 0)
    return invalid_argument(file + ": metadata '" + std::string(key) + "' is negative (" +
                            std::to_string(v->i) + ")");
  return v->u;
}

Result<double> GgufHeader::get_float(std::string_view key) const {
  HAL_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->is_float()) return v->f;
  if (v->is_integer()) return v->type == GgufType::kU64 ? double(v->u) : double(v->i);
  return mistyped(*this, key, *v, "a number");
}

Result<bool> GgufHeader::get_bool(std::string_view key) const {
  HAL_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->type != GgufType::kBool) return mistyped(*this, key, *v, "a bool");
  return v->b;
}

Result<std::vector<std::string>> GgufHeader::get_string_array(std::string_view key) const {
  HAL_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->type != GgufType::kArray || v->elem != GgufType::kString)
    return mistyped(*this, key, *v, "an array of strings");
  return v->strings;
}

Result<std::vector<int64_t>> GgufHeader::get_int_array(std::string_view key) const {
  HAL_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->type != GgufType::kArray || !integer_type(v->elem) || v->elem == GgufType::kBool)
    return mistyped(*this, key, *v, "an array of integers");
  if (v->elem != GgufType::kU64) return v->ints;
  std::vector<int64_t> out;
  for (uint64_t u : v->uints) {
    if (u > uint64_t(INT64_MAX))
      return invalid_argument(file + ": metadata '" + std::string(key) + "' holds " +
                              std::to_string(u) + ", which does not fit a signed 64-bit integer");
    out.push_back(int64_t(u));
  }
  return out;
}

Result<std::vector<double>> GgufHeader::get_float_array(std::string_view key) const {
  HAL_ASSIGN_OR_RETURN(const GgufValue* v, lookup(*this, key));
  if (v->type != GgufType::kArray || (v->elem != GgufType::kF32 && v->elem != GgufType::kF64))
    return mistyped(*this, key, *v, "an array of floats");
  return v->floats;
}

// ---- files ---------------------------------------------------------------------------

Result<std::unique_ptr<GgufFile>> GgufFile::open(const std::string& path) {
  HAL_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(path));
  HAL_ASSIGN_OR_RETURN(GgufHeader header, parse_gguf(mapped->bytes(), path));
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->file_ = std::move(mapped);
  f->header_ = std::move(header);
  return f;
}

Result<HostTensor> GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* t = header_.tensor(name);
  if (!t) return not_found(path() + ": no tensor '" + std::string(name) + "'");
  if (!t->type.hal_dtype)
    return invalid_argument(
        path() + ": tensor '" + t->name + "' has type " + std::string(t->type.name) +
        ", which this runtime does not run (supported: F32, F16, BF16, Q8_0, Q4_0, "
        "Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
  HostTensor h;
  h.name = t->name;
  h.dtype = *t->type.hal_dtype;
  h.shape = t->shape;
  h.data = file_->bytes().data() + header_.data_offset + t->offset;
  h.bytes = t->bytes;
  h.source = path();
  return h;
}

// ---- writer --------------------------------------------------------------------------

namespace {

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}
void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

}  // namespace

void GgufWriter::add_string(const std::string& key, const std::string& value) {
  std::vector<uint8_t> v;
  put<uint32_t>(v, uint32_t(GgufType::kString));
  put_string(v, value);
  kv_.emplace_back(key, std::move(v));
}
void GgufWriter::add_u32(const std::string& key, uint32_t value) {
  std::vector<uint8_t> v;
  put<uint32_t>(v, uint32_t(GgufType::kU32));
  put<uint32_t>(v, value);
  kv_.emplace_back(key, std::move(v));
}
void GgufWriter::add_i32(const std::string& key, int32_t value) {
  std::vector<uint8_t> v;
  put<uint32_t>(v, uint32_t(GgufType::kI32));
  put<int32_t>(v, value);
  kv_.emplace_back(key, std::move(v));
}
void GgufWriter::add_u64(const std::string& key, uint64_t value) {
  std::vector<uint8_t> v;
  put<uint32_t>(v, uint32_t(GgufType::kU64));
  put<uint64_t>(v, value);
  kv_.emplace_back(key, std::move(v));
}
void GgufWriter::add_f32(const std::string& key, float value) {
  std::vector<uint8_t> v;
  put<uint32_t>(v, uint32_t(GgufType::kF32));
  put<float>(v, value);
  kv_.emplace_back(key, std::move(v));
}
void GgufWriter::add_bool(const std::string& key, bool value) {
  std::vector<uint8_t> v;
  put<uint32_t>(v, uint32_t(GgufType::kBool));
  put<uint8_t>(v, value ? 1 : 0);
  kv_.emplace_back(key, std::move(v));
}
void GgufWriter::add_string_array(const std::string& key, const std::vector<std::string>& values) {
  std::vector<uint8_t> v;
  put<uint32_t>(v, uint32_t(GgufType::kArray));
  put<uint32_t>(v, uint32_t(GgufType::kString));
  put<uint64_t>(v, values.size());
  for (const std::string& s : values) put_string(v, s);
  kv_.emplace_back(key, std::move(v));
}
void GgufWriter::add_i32_array(const std::string& key, const std::vector<int32_t>& values) {
  std::vector<uint8_t> v;
  put<uint32_t>(v, uint32_t(GgufType::kArray));
  put<uint32_t>(v, uint32_t(GgufType::kI32));
  put<uint64_t>(v, values.size());
  for (int32_t x : values) put<int32_t>(v, x);
  kv_.emplace_back(key, std::move(v));
}
void GgufWriter::add_f32_array(const std::string& key, const std::vector<float>& values) {
  std::vector<uint8_t> v;
  put<uint32_t>(v, uint32_t(GgufType::kArray));
  put<uint32_t>(v, uint32_t(GgufType::kF32));
  put<uint64_t>(v, values.size());
  for (float x : values) put<float>(v, x);
  kv_.emplace_back(key, std::move(v));
}

void GgufWriter::add_value(const std::string& key, const GgufValue& value) {
  std::vector<uint8_t> v;
  auto scalar = [&](GgufType t, const GgufValue& x, size_t i, bool in_array) {
    switch (t) {
      case GgufType::kU8:
        put<uint8_t>(v, uint8_t(in_array ? x.ints[i] : x.i));
        break;
      case GgufType::kI8:
        put<int8_t>(v, int8_t(in_array ? x.ints[i] : x.i));
        break;
      case GgufType::kU16:
        put<uint16_t>(v, uint16_t(in_array ? x.ints[i] : x.i));
        break;
      case GgufType::kI16:
        put<int16_t>(v, int16_t(in_array ? x.ints[i] : x.i));
        break;
      case GgufType::kU32:
        put<uint32_t>(v, uint32_t(in_array ? x.ints[i] : x.i));
        break;
      case GgufType::kI32:
        put<int32_t>(v, int32_t(in_array ? x.ints[i] : x.i));
        break;
      case GgufType::kI64:
        put<int64_t>(v, in_array ? x.ints[i] : x.i);
        break;
      case GgufType::kU64:
        put<uint64_t>(v, in_array ? x.uints[i] : x.u);
        break;
      case GgufType::kF32:
        put<float>(v, float(in_array ? x.floats[i] : x.f));
        break;
      case GgufType::kF64:
        put<double>(v, in_array ? x.floats[i] : x.f);
        break;
      case GgufType::kBool:
        put<uint8_t>(v, uint8_t(in_array ? x.ints[i] : x.b));
        break;
      case GgufType::kString:
        put_string(v, in_array ? x.strings[i] : x.s);
        break;
      case GgufType::kArray:
        break;
    }
  };
  if (value.type != GgufType::kArray) {
    put<uint32_t>(v, uint32_t(value.type));
    scalar(value.type, value, 0, false);
  } else {
    if (value.elem == GgufType::kArray) return;  // nested arrays are not kept by the reader
    put<uint32_t>(v, uint32_t(GgufType::kArray));
    put<uint32_t>(v, uint32_t(value.elem));
    put<uint64_t>(v, value.count);
    for (size_t i = 0; i < value.count; ++i) scalar(value.elem, value, i, true);
  }
  kv_.emplace_back(key, std::move(v));
}

Status GgufWriter::add_tensor(const std::string& name, DType dtype, const Shape& shape,
                              const void* data, uint64_t bytes) {
  const std::optional<uint32_t> type = ggml_type_of(dtype);
  if (!type)
    return invalid_argument("GGUF writer: tensor '" + name +
                            "': " + std::string(dtype_name(dtype)) + " has no GGUF type");
  const uint64_t want = TensorDesc::contiguous(dtype, shape).bytes();
  if (bytes != want)
    return invalid_argument("GGUF writer: tensor '" + name + "' " + shape.to_string() + " of " +
                            std::string(dtype_name(dtype)) + " needs " + std::to_string(want) +
                            " bytes, got " + std::to_string(bytes));
  tensors_.push_back(Tensor{name, *type, shape, data, bytes});
  return ok_status();
}

std::vector<uint8_t> GgufWriter::serialize() const {
  std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  const bool has_alignment = std::any_of(
      kv_.begin(), kv_.end(), [](const auto& kv) { return kv.first == "general.alignment"; });
  put<uint64_t>(out, kv_.size() + (alignment_ != 32 && !has_alignment ? 1 : 0));
  for (const auto& [key, value] : kv_) {
    put_string(out, key);
    out.insert(out.end(), value.begin(), value.end());
  }
  if (alignment_ != 32 && !has_alignment) {
    put_string(out, "general.alignment");
    put<uint32_t>(out, uint32_t(GgufType::kU32));
    put<uint32_t>(out, alignment_);
  }
  auto align = [&](uint64_t v) { return (v + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const Tensor& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, uint32_t(t.shape.rank));
    for (int d = t.shape.rank - 1; d >= 0; --d) put<uint64_t>(out, uint64_t(t.shape.dims[d]));
    put<uint32_t>(out, t.type);
    put<uint64_t>(out, offset);
    offsets.push_back(offset);
    offset = align(offset + t.bytes);
  }
  const uint64_t data_start = align(out.size());
  out.resize(data_start + offset, 0);
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (tensors_[i].bytes)
      std::memcpy(out.data() + data_start + offsets[i], tensors_[i].data, tensors_[i].bytes);
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  const std::vector<uint8_t> bytes = serialize();
  std::ofstream f(path, std::ios::binary);
  if (!f) return invalid_argument(path + ": cannot create");
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f) return invalid_argument(path + ": write failed");
  return ok_status();
}

}  // namespace hal::runtime
