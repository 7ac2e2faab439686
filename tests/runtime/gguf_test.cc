// GGUF files (hal/runtime/gguf.h): the writer and reader round trip every metadata type
// and tensor type, the typed getters convert and refuse as documented, and malformed
// files (every truncation, and each field corrupted in turn) are errors naming the
// file and the field.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>

#include "hal/quant_reference.h"
#include "hal/runtime/gguf.h"

namespace hal::runtime {
namespace {

GgufWriter sample_writer(std::vector<std::vector<uint8_t>>& keep) {
  GgufWriter w;
  w.add_string("general.architecture", "gpt2");
  w.add_u32("gpt2.block_count", 12);
  w.add_i32("signed", -5);
  w.add_u64("big", uint64_t(1) << 40);
  w.add_f32("gpt2.attention.layer_norm_epsilon", 1e-5f);
  w.add_bool("flag", true);
  w.add_string_array("tokenizer.ggml.tokens", {"a", "bc", "", "d\xc3\xa9"});
  w.add_i32_array("tokenizer.ggml.token_type", {1, 2, 3});
  w.add_f32_array("tokenizer.ggml.scores", {0.5f, -1.0f});
  // One tensor per type we run.
  const DType types[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                         DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                         DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};
  for (DType t : types) {
    std::vector<float> v(2 * 256);
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 17) * 0.25f - 2.0f;
    keep.push_back(reference::quantize_rows(t, v.data(), 2, 256));
    EXPECT_TRUE(w.add_tensor("t." + std::string(dtype_name(t)), t, Shape{2, 256},
                             keep.back().data(), keep.back().size())
                    .ok());
  }
  return w;
}

TEST(Gguf, WriterAndReaderRoundTrip) {
  std::vector<std::vector<uint8_t>> keep;
  const std::vector<uint8_t> bytes = sample_writer(keep).serialize();
  auto h = parse_gguf(bytes, "sample.gguf");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(h->version, 3u);
  EXPECT_EQ(h->alignment, 32u);
  EXPECT_EQ(h->data_offset % 32, 0u);
  EXPECT_EQ(*h->get_string("general.architecture"), "gpt2");
  EXPECT_EQ(*h->get_int("gpt2.block_count"), 12);
  EXPECT_EQ(*h->get_uint("gpt2.block_count"), 12u);
  EXPECT_EQ(*h->get_int("signed"), -5);
  EXPECT_EQ(*h->get_uint("big"), uint64_t(1) << 40);
  EXPECT_FLOAT_EQ(float(*h->get_float("gpt2.attention.layer_norm_epsilon")), 1e-5f);
  EXPECT_EQ(*h->get_float("gpt2.block_count"), 12.0);  // integers read as numbers too
  EXPECT_TRUE(*h->get_bool("flag"));
  EXPECT_EQ(*h->get_string_array("tokenizer.ggml.tokens"),
            (std::vector<std::string>{"a", "bc", "", "d\xc3\xa9"}));
  EXPECT_EQ(*h->get_int_array("tokenizer.ggml.token_type"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(*h->get_float_array("tokenizer.ggml.scores"), (std::vector<double>{0.5, -1.0}));
  ASSERT_EQ(h->tensors.size(), keep.size());
  for (size_t i = 0; i < keep.size(); ++i) {
    const GgufTensorInfo& t = h->tensors[i];
    EXPECT_EQ(t.shape, (Shape{2, 256}));
    EXPECT_EQ(t.ne, (std::vector<int64_t>{256, 2}));  // stored innermost first
    EXPECT_EQ(t.bytes, keep[i].size());
    EXPECT_EQ(t.offset % 32, 0u);
    EXPECT_EQ(std::memcmp(bytes.data() + h->data_offset + t.offset, keep[i].data(), t.bytes), 0)
        << t.name;
    ASSERT_TRUE(t.type.hal_dtype.has_value());
    EXPECT_EQ("t." + std::string(dtype_name(*t.type.hal_dtype)), t.name);
  }
  // Re-encoding what was read gives the same metadata (copying a tokenizer between files).
  GgufWriter copy;
  for (const auto& [k, v] : h->metadata) copy.add_value(k, v);
  auto again = parse_gguf(copy.serialize(), "copy.gguf");
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(*again->get_string_array("tokenizer.ggml.tokens"),
            *h->get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(*again->get_uint("big"), uint64_t(1) << 40);
}

TEST(Gguf, GettersRefuseMissingAndMistypedKeys) {
  std::vector<std::vector<uint8_t>> keep;
  auto h = parse_gguf(sample_writer(keep).serialize(), "sample.gguf");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->get_int("nope").status().code(), StatusCode::kNotFound);
  EXPECT_NE(h->get_int("nope").status().message().find("sample.gguf: no metadata key 'nope'"),
            std::string::npos);
  const Status s = h->get_int("general.architecture").status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'general.architecture' is string, expected an integer"),
            std::string::npos)
      << s.message();
  EXPECT_FALSE(h->get_uint("signed").ok());  // negative
  EXPECT_FALSE(h->get_string_array("tokenizer.ggml.token_type").ok());
  EXPECT_FALSE(h->get_bool("gpt2.block_count").ok());
  EXPECT_NE(h->get_float_array("tokenizer.ggml.tokens").status().message().find("array of string"),
            std::string::npos);
}

TEST(Gguf, CustomAlignmentIsHonoured) {
  GgufWriter w;
  w.set_alignment(64);
  std::vector<float> v(7, 1.0f);
  ASSERT_TRUE(w.add_tensor("a", DType::kF32, Shape{7}, v.data(), 28).ok());
  ASSERT_TRUE(w.add_tensor("b", DType::kF32, Shape{7}, v.data(), 28).ok());
  auto h = parse_gguf(w.serialize(), "x.gguf");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(h->alignment, 64u);
  EXPECT_EQ(h->data_offset % 64, 0u);
  EXPECT_EQ(h->tensors[1].offset, 64u);
  // The writer refuses a tensor whose bytes do not match its shape.
  EXPECT_FALSE(w.add_tensor("c", DType::kQ4_0, Shape{2, 32}, v.data(), 28).ok());
}

TEST(Gguf, EveryTruncationIsAnError) {
  std::vector<std::vector<uint8_t>> keep;
  const std::vector<uint8_t> bytes = sample_writer(keep).serialize();
  auto whole = parse_gguf(bytes, "whole.gguf");
  ASSERT_TRUE(whole.ok());
  uint64_t end = 0;  // the last tensor's last byte (padding may follow it)
  for (const GgufTensorInfo& t : whole->tensors)
    end = std::max(end, whole->data_offset + t.offset + t.bytes);
  for (size_t n = 0; n < end; n += (n < 4096 ? 1 : 97)) {
    auto h = parse_gguf(std::span(bytes.data(), n), "cut.gguf");
    ASSERT_FALSE(h.ok()) << "accepted a file cut at " << n << " of " << bytes.size();
    EXPECT_NE(h.status().message().find("cut.gguf"), std::string::npos) << h.status().message();
  }
}

// A small file whose fields sit at known offsets, for corrupting one at a time.
struct Small {
  std::vector<uint8_t> bytes;
  size_t kv_type_at = 0;      // the value type of the first metadata entry
  size_t tensor_info_at = 0;  // the first tensor info (its name length)
};
Small small_file() {
  GgufWriter w;
  w.add_u32("k", 7);
  static const std::vector<float> v(64, 0.5f);
  EXPECT_TRUE(w.add_tensor("w", DType::kF32, Shape{2, 32}, v.data(), 256).ok());
  EXPECT_TRUE(w.add_tensor("x", DType::kF32, Shape{2, 32}, v.data(), 256).ok());
  Small s;
  s.bytes = w.serialize();
  s.kv_type_at = 24 + 8 + 1;
  s.tensor_info_at = s.kv_type_at + 4 + 4;
  return s;
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& fragment) {
  auto h = parse_gguf(bytes, "bad.gguf");
  ASSERT_FALSE(h.ok()) << "accepted; wanted an error containing \"" << fragment << "\"";
  EXPECT_NE(h.status().message().find(fragment), std::string::npos) << h.status().message();
  EXPECT_NE(h.status().message().find("bad.gguf"), std::string::npos) << h.status().message();
}

template <typename T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

TEST(Gguf, CorruptFieldsAreNamed) {
  const Small s = small_file();
  ASSERT_TRUE(parse_gguf(s.bytes, "ok.gguf").ok());
  const size_t name_len = s.tensor_info_at;  // u64 name length of tensor 'w'
  const size_t rank = name_len + 8 + 1;      // after "w"
  const size_t dims = rank + 4;
  const size_t type = dims + 16;
  const size_t offset = type + 4;
  auto b = s.bytes;
  b[0] = 'X';
  expect_error(b, "not a GGUF file");
  b = s.bytes;
  poke<uint32_t>(b, 4, 1);
  expect_error(b, "version 1 is not supported");
  b = s.bytes;
  poke<uint32_t>(b, 4, 0x03000000u);
  expect_error(b, "big-endian");
  b = s.bytes;
  poke<uint64_t>(b, 8, uint64_t(1) << 60);
  expect_error(b, "tensor count");
  b = s.bytes;
  poke<uint64_t>(b, 16, uint64_t(1) << 60);
  expect_error(b, "metadata count");
  b = s.bytes;
  poke<uint64_t>(b, 24, uint64_t(1) << 50);
  expect_error(b, "metadata entry 0 key");
  b = s.bytes;
  poke<uint32_t>(b, s.kv_type_at, 13);
  expect_error(b, "metadata entry 0 ('k'): value type 13 is not a GGUF type");
  b = s.bytes;
  poke<uint32_t>(b, s.kv_type_at, uint32_t(GgufType::kBool));
  expect_error(b, "bool value 7");
  b = s.bytes;
  poke<uint64_t>(b, name_len, uint64_t(1) << 40);
  expect_error(b, "tensor info 0 name");
  b = s.bytes;
  poke<uint32_t>(b, rank, 9);
  expect_error(b, "tensor 'w': rank 9 exceeds 8");
  b = s.bytes;
  poke<uint64_t>(b, dims, uint64_t(1) << 62);
  poke<uint64_t>(b, dims + 8, uint64_t(1) << 62);
  expect_error(b, "tensor 'w': dims overflow");
  b = s.bytes;
  poke<uint32_t>(b, type, 2);  // Q4_0 needs ne0 % 32 == 0 (it is 32) and 18 bytes per block
  EXPECT_TRUE(parse_gguf(b, "ok.gguf").ok());
  poke<uint64_t>(b, dims, 33);
  expect_error(b, "tensor 'w': its innermost dim 33 is not a multiple of Q4_0's block of 32");
  b = s.bytes;
  poke<uint32_t>(b, type, 99);
  expect_error(b, "tensor 'w': tensor type 99");
  b = s.bytes;
  poke<uint64_t>(b, offset, 3);
  expect_error(b, "offset 3 is not a multiple of the alignment 32");
  b = s.bytes;
  poke<uint64_t>(b, offset, 4096);
  expect_error(b, "tensor 'w': data [4096, 4352)");
  b = s.bytes;
  poke<uint64_t>(b, offset, 256);  // onto 'x'
  expect_error(b, "overlap");
  // Duplicate names and keys; a bad alignment.
  GgufWriter dup;
  dup.add_u32("k", 1);
  dup.add_u32("k", 2);
  expect_error(dup.serialize(), "duplicate key");
  GgufWriter align;
  align.add_u32("general.alignment", 24);
  expect_error(align.serialize(), "not a power of two");
  GgufWriter names;
  static const float one = 1;
  ASSERT_TRUE(names.add_tensor("t", DType::kF32, Shape{1}, &one, 4).ok());
  ASSERT_TRUE(names.add_tensor("t", DType::kF32, Shape{1}, &one, 4).ok());
  expect_error(names.serialize(), "duplicate tensor name");
}

TEST(Gguf, FilesMapAndNameUnsupportedTypes) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "hal_gguf_test";
  std::filesystem::create_directories(dir);
  std::vector<std::vector<uint8_t>> keep;
  const std::string path = (dir / "sample.gguf").string();
  ASSERT_TRUE(sample_writer(keep).write(path).ok());
  auto f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  auto t = (*f)->tensor("t.q4_k");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->dtype, DType::kQ4_K);
  EXPECT_EQ(t->bytes, 2u * 144);
  EXPECT_EQ((*f)->tensor("missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(GgufFile::open((dir / "none.gguf").string()).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(ggml_type(10).has_value());
  EXPECT_FALSE(ggml_type(10)->hal_dtype.has_value());
  EXPECT_EQ(ggml_type(10)->name, "Q2_K");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace hal::runtime
