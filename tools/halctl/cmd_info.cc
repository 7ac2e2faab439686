// halctl info: not built yet (owned by its issue's work).
#include <cstdio>

#include "commands.h"

namespace halctl {

int cmd_info(const Args&) {
  std::fprintf(stderr, "halctl info: not available in this build yet\n");
  return 2;
}

}  // namespace halctl
