// tests/support/cli_run.h: runs a shell command line the way a user would (stdin closed)
// and captures its stdout, stderr and exit code separately, for tests of command-line
// programs such as halctl. Header-only; POSIX (popen). Not thread-safe across tests that
// run in one process at once (the stderr file is named after the process id).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace hal::test {

struct CliRun {
  int exit_code = -1;  // -1: the command could not be started or was killed by a signal
  std::string out, err;
};

inline CliRun run_command_line(const std::string& command_line) {
  namespace fs = std::filesystem;
  const fs::path err_file =
      fs::temp_directory_path() / ("hal_cli_run_err_" + std::to_string(::getpid()));
  const std::string cmd = command_line + " 2>" + err_file.string() + " </dev/null";
  CliRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  fs::remove(err_file);
  return r;
}

// `word` as one shell word (single-quoted, quotes inside escaped).
inline std::string shell_quote(const std::string& word) {
  std::string q = "'";
  for (char c : word) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

// Runs `program` with `args`, each passed as one word, after the environment assignments
// in `env` ("NAME=value ...", or empty).
inline CliRun run_program(const std::string& program, const std::vector<std::string>& args,
                          const std::string& env = "") {
  std::string line = env.empty() ? "" : env + " ";
  line += shell_quote(program);
  for (const std::string& a : args) {
    line += ' ';
    line += shell_quote(a);
  }
  return run_command_line(line);
}

}  // namespace hal::test
