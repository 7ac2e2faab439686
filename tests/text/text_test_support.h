// tests/text/text_test_support.h: reading the goldens (tests/text/goldens, made by
// goldens/make_goldens.py with the reference implementations).
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "hal/text/tokenizer.h"

namespace hal::text::test {

// tests/text/goldens in the source tree (tests/text/CMakeLists.txt defines it).
inline std::filesystem::path goldens_dir() { return HAL_TEXT_GOLDENS_DIR; }

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
  return nlohmann::json::parse(read_text(p));
}

inline std::vector<TokenId> ids_of(const nlohmann::json& j) {
  return j.get<std::vector<TokenId>>();
}

// "a\tb" with control characters and non-ASCII escaped, for readable failure messages.
inline std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20)
      out += "\\x" + std::to_string(c);
    else
      out.push_back(char(c));
  }
  return out;
}

}  // namespace hal::text::test
