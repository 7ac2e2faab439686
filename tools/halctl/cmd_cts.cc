// halctl cts: not built yet (owned by its issue's work).
#include <cstdio>

#include "commands.h"

namespace halctl {

int cmd_cts(const Args&) {
  std::fprintf(stderr, "halctl cts: not available in this build yet\n");
  return 2;
}

}  // namespace halctl
