// tests/halctl/halctl_invocation.h: runs the built halctl (HALCTL_PATH) as a user would,
// through tests/support/cli_run.h, and reads its JSON output, for the halctl tests.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/cli_run.h"

namespace halctl_test {

// One halctl run: exit code, stdout and stderr, and stdout parsed as JSON.
struct Invocation : hal::test::CliRun {
  nlohmann::json parsed() const {
    try {
      return nlohmann::json::parse(out);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "stdout is not JSON (" << e.what() << "):\n" << out << "\nstderr:\n" << err;
      return nlohmann::json();
    }
  }
};

// Runs halctl with `args` (each one shell word) after the `env` assignments (may be empty).
inline Invocation halctl(const std::vector<std::string>& args, const std::string& env = "") {
  return Invocation{hal::test::run_program(HALCTL_PATH, args, env)};
}

}  // namespace halctl_test
