// The safetensors parser on valid and malformed files: every error class gives a clear
// status naming the file (and the tensor, where one is involved); nothing crashes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "hal/runtime/safetensors.h"
#include "test_models.h"

namespace {

namespace fs = std::filesystem;
using hal::StatusCode;
using hal::runtime::parse_safetensors;
using ::testing::HasSubstr;

// A file from a header text and a data section of `data_bytes` bytes.
std::vector<uint8_t> file_with_header(const std::string& header, size_t data_bytes = 0,
                                      int64_t declared_length = -1) {
  const uint64_t n = declared_length >= 0 ? uint64_t(declared_length) : header.size();
  std::vector<uint8_t> out;
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(n >> (8 * i)));
  for (char c : header) out.push_back(uint8_t(c));
  out.resize(out.size() + data_bytes, 0);
  return out;
}

hal::Status parse_status(const std::vector<uint8_t>& bytes) {
  auto r = parse_safetensors(bytes, "w.safetensors");
  return r.ok() ? hal::ok_status() : r.status();
}

TEST(Safetensors, ParsesAValidFile) {
  testmodels::Tensor a{{2, 3}, {1, 2, 3, 4, 5, 6}};
  testmodels::Tensor b{{4}, {0.5f, -1.f, 2.f, 8.f}};
  const auto bytes =
      testmodels::safetensors_bytes({{"a", &a}, {"b.weight", &b}}, testmodels::FileDType::kBF16);
  auto h = parse_safetensors(bytes, "ok.safetensors");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  ASSERT_EQ(h->tensors.size(), 2u);
  const auto* e = h->find("b.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype.name, "BF16");
  EXPECT_EQ(e->shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(e->end - e->begin, 8u);
  EXPECT_EQ(h->metadata.at("format"), "pt");
  EXPECT_EQ(h->data_offset + h->data_bytes, bytes.size());
  // The bytes are where the header says.
  const uint8_t* p = bytes.data() + h->data_offset + e->begin;
  EXPECT_EQ(testmodels::from_bf16_bits(uint16_t(p[6] | (p[7] << 8))), 8.f);
}

TEST(Safetensors, TooShortForTheLengthField) {
  const std::vector<uint8_t> bytes = {1, 2, 3};
  hal::Status s = parse_status(bytes);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("w.safetensors"));
  EXPECT_THAT(s.message(), HasSubstr("truncated"));
  EXPECT_FALSE(parse_status({}).ok());
}

TEST(Safetensors, HeaderLengthBeyondTheFile) {
  hal::Status s = parse_status(file_with_header("{}", 0, 1000));
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr("header length 1000 runs past the end of the file"));
  // A length near 2^64 (would overflow when added to 8).
  std::vector<uint8_t> huge(16, 0xff);
  EXPECT_EQ(parse_status(huge).code(), StatusCode::kDataLoss);
}

TEST(Safetensors, TruncatedDataSection) {
  testmodels::Tensor a{{4, 4}, std::vector<float>(16, 1.f)};
  auto bytes = testmodels::safetensors_bytes({{"layer.weight", &a}}, testmodels::FileDType::kF32);
  bytes.resize(bytes.size() - 10);
  hal::Status s = parse_status(bytes);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("tensor 'layer.weight'"));
  EXPECT_THAT(s.message(), HasSubstr("run past the data section"));
}

TEST(Safetensors, MalformedJson) {
  for (const std::string h :
       {"{\"a\": ", "not json at all", "{\"a\": {\"dtype\": \"F32\",}}", "\xff\xfe"}) {
    hal::Status s = parse_status(file_with_header(h));
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << h;
    EXPECT_THAT(s.message(), HasSubstr("malformed JSON header")) << h;
  }
  EXPECT_THAT(parse_status(file_with_header("[1, 2]")).message(), HasSubstr("not a JSON object"));
  // Deep nesting is refused before the recursive parser sees it.
  std::string deep = "{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_THAT(parse_status(file_with_header(deep)).message(), HasSubstr("nested deeper"));
}

TEST(Safetensors, EntryFieldsChecked) {
  auto msg = [](const std::string& entry, size_t data = 16) {
    return parse_status(file_with_header("{\"t\": " + entry + "}", data)).message();
  };
  EXPECT_THAT(msg("5"), HasSubstr("tensor 't': entry is not an object"));
  EXPECT_THAT(msg("{\"shape\": [4], \"data_offsets\": [0, 16]}"), HasSubstr("dtype"));
  EXPECT_THAT(msg("{\"dtype\": \"F32\", \"data_offsets\": [0, 16]}"), HasSubstr("shape"));
  EXPECT_THAT(msg("{\"dtype\": \"F32\", \"shape\": [4]}"), HasSubstr("data_offsets"));
  EXPECT_THAT(msg("{\"dtype\": \"F32\", \"shape\": [-4], \"data_offsets\": [0, 16]}"),
              HasSubstr("non-negative integer"));
  EXPECT_THAT(msg("{\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 16]}"),
              HasSubstr("non-negative integer"));
  EXPECT_THAT(msg("{\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, -16]}"),
              HasSubstr("not non-negative integers"));
  EXPECT_THAT(msg("{\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0]}"),
              HasSubstr("list of two integers"));
  EXPECT_THAT(msg("{\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}"),
              HasSubstr("end before they begin"));
  EXPECT_THAT(parse_status(file_with_header("{\"__metadata__\": {\"a\": 1}}")).message(),
              HasSubstr("__metadata__"));
}

TEST(Safetensors, UnknownDtype) {
  hal::Status s = parse_status(file_with_header(
      "{\"w\": {\"dtype\": \"F9\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("w.safetensors: tensor 'w': unknown dtype 'F9'"));
}

TEST(Safetensors, ByteSizeMustMatchDtypeTimesShape) {
  hal::Status s = parse_status(file_with_header(
      "{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8));
  EXPECT_THAT(s.message(), HasSubstr("tensor 'w': F32[3] needs 12 bytes but data_offsets span 8"));
  // Dims whose product overflows 64 bits.
  s =
      parse_status(file_with_header("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, "
                                    "4294967296, 16], \"data_offsets\": [0, 8]}}",
                                    8));
  EXPECT_THAT(s.message(), HasSubstr("more than 2^64"));
}

TEST(Safetensors, OffsetsOutOfRange) {
  hal::Status s = parse_status(file_with_header(
      "{\"w\": {\"dtype\": \"U8\", \"shape\": [8], \"data_offsets\": [4, 12]}}", 8));
  EXPECT_THAT(s.message(),
              HasSubstr("tensor 'w': data_offsets [4, 12] run past the data section (8 bytes"));
}

TEST(Safetensors, OverlappingTensors) {
  hal::Status s = parse_status(
      file_with_header("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                       " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                       12));
  EXPECT_THAT(s.message(), HasSubstr("tensors 'a' [0, 8) and 'b' [4, 12) overlap"));
  // Empty tensors may share an offset with anything.
  EXPECT_TRUE(
      parse_status(file_with_header(
                       "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                       " \"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]}}",
                       8))
          .ok());
}

TEST(Safetensors, DtypesWithoutHalEquivalentAreReportedOnRead) {
  const fs::path p = fs::temp_directory_path() / ("hal_st_f64_" + std::to_string(::getpid()));
  testmodels::write_file(
      p, file_with_header("{\"d\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}",
                          8));
  auto f = hal::runtime::SafetensorsFile::open(p.string());
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  auto t = (*f)->tensor("d");
  EXPECT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("tensor 'd' has dtype F64"));
  EXPECT_EQ((*f)->tensor("nope").status().code(), StatusCode::kNotFound);
  fs::remove(p);
  EXPECT_EQ(hal::runtime::SafetensorsFile::open(p.string()).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(hal::runtime::SafetensorsFile::open(fs::temp_directory_path().string()).ok());
}

// Random corruption of a valid file: every result is a clean success or a clean error.
TEST(Safetensors, CorruptedBytesNeverCrash) {
  testmodels::Tensor a{{3, 5}, std::vector<float>(15, 0.25f)};
  testmodels::Tensor b{{7}, std::vector<float>(7, -2.f)};
  const auto good =
      testmodels::safetensors_bytes({{"alpha", &a}, {"beta", &b}}, testmodels::FileDType::kF16);
  std::mt19937 rng(1234);
  int failures = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    auto bytes = good;
    const int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 3) {
        case 0:
          bytes[at] = uint8_t(rng());
          break;
        case 1:
          bytes.resize(at);
          break;
        default:
          bytes.insert(bytes.begin() + std::ptrdiff_t(at), uint8_t(rng()));
          break;
      }
      if (bytes.empty()) break;
    }
    auto r = parse_safetensors(bytes, "fuzz");
    if (!r.ok()) {
      ++failures;
      EXPECT_FALSE(r.status().message().empty());
      continue;
    }
    for (const auto& t : r->tensors) EXPECT_LE(t.end, r->data_bytes);
  }
  EXPECT_GT(failures, 1000);
}

}  // namespace
