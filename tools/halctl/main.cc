// halctl: inspect and drive the HAL's devices, run and plan models.
#include <cstdio>
#include <cstring>
#include <string>

#include "commands.h"

namespace {

struct Command {
  const char* name;
  int (*fn)(const halctl::Args&);
  const char* summary;
};

const Command kCommands[] = {
    {"list", halctl::cmd_list, "list devices (--json)"},
    {"info", halctl::cmd_info, "describe one device: figures, their sources, telemetry (--json)"},
    {"topo", halctl::cmd_topo, "link matrix between the host and every device (--json)"},
    {"bench", halctl::cmd_bench, "measure copy bandwidth and matmul FLOP/s of a device (--json)"},
    {"plugins", halctl::cmd_plugins,
     "every plugin candidate: path, ABI, devices, loaded or why not"},
    {"cts", halctl::cmd_cts, "run the conformance test suite on a device or plugin"},
    {"run", halctl::cmd_run, "run a model: prefill + decode on chosen devices"},
    {"plan", halctl::cmd_plan, "predict how a model would run on (simulated) devices"},
    {"report", halctl::cmd_report, "render a run report (roofline SVG)"},
    {"tokenize", halctl::cmd_tokenize, "text to token ids with a model's tokenizer (--json)"},
    {"detokenize", halctl::cmd_detokenize, "token ids to text with a model's tokenizer"},
    {"export", halctl::cmd_export, "write a model as a GGUF file (any GGUF weight type)"},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: halctl <command> [options]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out, "\n'halctl <command> --help' describes a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(stdout);
    return 0;
  }
  for (const Command& c : kCommands) {
    if (name == c.name) {
      halctl::Args args(argv + 2, argv + argc);
      try {
        return c.fn(args);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "halctl %s: %s\n", c.name, e.what());
        return 1;
      }
    }
  }
  std::fprintf(stderr, "halctl: unknown command '%s'\n\n", name.c_str());
  usage(stderr);
  return 2;
}
