// halctl topo: not built yet (owned by its issue's work).
#include <cstdio>

#include "commands.h"

namespace halctl {

int cmd_topo(const Args&) {
  std::fprintf(stderr, "halctl topo: not available in this build yet\n");
  return 2;
}

}  // namespace halctl
