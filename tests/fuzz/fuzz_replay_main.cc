// Replays inputs through a fuzz target without libFuzzer, so ctest checks the seed
// corpus and every regression input in the ordinary build (see fuzz_support.h).
//   <target>_replay [--optional] PATH...   each PATH a file or a directory of files (not
//   recursive); a PATH after --optional may be absent (regressions/<target>/ exists only
//   once a finding was committed for that target)
// Exit 0 when every input ran (a finding aborts inside the target); 2 when a path cannot
// be read or holds no input at all (a missing corpus must not pass silently).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool run_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A copy of exactly the input's size, so ASan sees any read past its end.
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(copy.data(), copy.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  size_t runs = 0;
  bool optional = false;
  for (int i = 1; i < argc; ++i) {
    const std::string path = argv[i];
    if (path == "--optional") {
      optional = true;
      continue;
    }
    struct stat st;
    if (optional && ::stat(path.c_str(), &st) != 0) continue;
    std::vector<std::string> files;
    if (is_dir(path)) {
      DIR* d = ::opendir(path.c_str());
      while (dirent* e = d ? ::readdir(d) : nullptr)
        if (e->d_name[0] != '.') files.push_back(path + "/" + e->d_name);
      if (d) ::closedir(d);
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(path);
    }
    for (const std::string& f : files) {
      if (!run_file(f)) {
        std::fprintf(stderr, "%s: cannot read %s\n", argv[0], f.c_str());
        return 2;
      }
      ++runs;
    }
  }
  if (runs == 0) {
    std::fprintf(stderr, "%s: no inputs found\n", argv[0]);
    return 2;
  }
  std::printf("%zu inputs replayed without a finding\n", runs);
  return 0;
}
