// hal/file_io.h: files named by users are read only when they are regular files, and
// what is there instead is named; nothing blocks on a FIFO.
#include "hal/file_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class FileIo : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hal_file_io_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST_F(FileIo, ReadsARegularFileWhole) {
  const std::string text("{\"a\": 1}\n\0tail", 14);
  std::ofstream(path("f.json"), std::ios::binary) << text;
  auto got = hal::read_regular_file(path("f.json"), "config");
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, text);
  auto opened = hal::open_regular_file(path("f.json"), "config");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->size_bytes, text.size());
  EXPECT_GE(opened->fd.get(), 0);
  std::ofstream(path("empty"), std::ios::binary);
  auto empty = hal::read_regular_file(path("empty"), "config");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST_F(FileIo, NamesWhatIsThereInsteadOfAFile) {
  auto missing = hal::read_regular_file(path("nope"), "spec file");
  EXPECT_EQ(missing.status().code(), hal::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("spec file " + path("nope")));

  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  auto fifo = hal::read_regular_file(path("fifo"), "model config");  // must not block
  EXPECT_EQ(fifo.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_THAT(fifo.status().message(),
              HasSubstr("model config " + path("fifo") + ": is a FIFO, not a regular file"));

  auto dir = hal::read_regular_file(dir_.string(), "report");
  EXPECT_EQ(dir.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_THAT(dir.status().message(), HasSubstr("is a directory"));

  auto dev = hal::open_regular_file("/dev/zero", "calibration");
  EXPECT_EQ(dev.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_THAT(dev.status().message(), HasSubstr("is a character device"));
}

TEST_F(FileIo, RefusesAFileLargerThanTheCallersLimit) {
  std::ofstream(path("big"), std::ios::binary) << std::string(100, 'x');
  auto big = hal::read_regular_file(path("big"), "config", 99);
  EXPECT_EQ(big.status().code(), hal::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("100 bytes"));
  EXPECT_TRUE(hal::read_regular_file(path("big"), "config", 100).ok());
}

TEST(UniqueFd, ClosesOnDestructionAndMove) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  int read_end = fds[0];
  {
    hal::UniqueFd a(fds[0]);
    hal::UniqueFd b(std::move(a));
    EXPECT_EQ(a.get(), -1);
    EXPECT_EQ(b.get(), read_end);
  }
  EXPECT_EQ(::close(read_end), -1);  // already closed by b
  ::close(fds[1]);
}

}  // namespace
