// tools/halctl/commands.h: the subcommands of halctl. Each lives in cmd_<name>.cc and
// takes the arguments after its name. Exit codes: 0 success, 1 the work failed (a
// device error, a failed check), 2 bad usage or bad input (unknown device, malformed
// file, impossible option).
#pragma once

#include <string>
#include <vector>

namespace halctl {

using Args = std::vector<std::string>;

int cmd_list(const Args& args);
int cmd_info(const Args& args);
int cmd_topo(const Args& args);
int cmd_bench(const Args& args);
int cmd_bench_model(const Args& args);  // halctl bench --model
int cmd_plugins(const Args& args);
int cmd_cts(const Args& args);
int cmd_run(const Args& args);
int cmd_plan(const Args& args);
int cmd_report(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_detokenize(const Args& args);
int cmd_export(const Args& args);

}  // namespace halctl
