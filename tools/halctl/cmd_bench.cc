// halctl bench: not built yet (owned by its issue's work).
#include <cstdio>

#include "commands.h"

namespace halctl {

int cmd_bench(const Args&) {
  std::fprintf(stderr, "halctl bench: not available in this build yet\n");
  return 2;
}

}  // namespace halctl
