// halctl report: read a run report (`halctl run --report FILE`), print its summary (or
// the report itself with --json) and optionally draw each device's roofline with every
// op class as a point.
//
//   halctl report r.json
//   halctl report r.json --roofline roofline.svg
//
// Exit codes: 0 ok; 2 a missing, unreadable or malformed report, or an unwritable
// output file.
#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "common.h"
#include "hal/file_io.h"
#include "hal/runtime/run_report.h"

namespace halctl {

int cmd_report(const Args& args) {
  CommonOptions common;
  std::string file, roofline;
  po::options_description desc("halctl report options");
  add_common_options(desc, common);
  desc.add_options()("file", po::value<std::string>(&file), "the report (JSON)")(
      "roofline", po::value<std::string>(&roofline),
      "write an SVG: each device's roofline (log-log, peak FLOP/s and bandwidth) with "
      "every op class as a point");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (auto stop = parse_args("report", args, desc, pos, vm,
                             "halctl report FILE [--roofline OUT.svg] [--json]"))
    return *stop;
  if (file.empty()) return usage_error("report", "give the report file (halctl run --report)");
  auto text = hal::read_regular_file(file, "report", uint64_t(1) << 30);
  if (!text.ok()) return report_error("report", text.status());
  auto report = hal::runtime::parse_run_report(*text, file);
  if (!report.ok()) return report_error("report", report.status());
  if (!roofline.empty()) {
    std::ofstream out(roofline, std::ios::binary);
    out << hal::runtime::roofline_svg(*report);
    out.close();
    if (!out)
      return report_error("report",
                          hal::invalid_argument("--roofline: cannot write '" + roofline + "'"));
  }
  if (common.json) {
    nlohmann::json j = nlohmann::json::parse(hal::runtime::run_report_to_json(*report));
    if (!roofline.empty()) j["roofline"] = roofline;
    print_json(j);
    return 0;
  }
  fmt::print("{}", hal::runtime::report_summary_text(*report));
  if (!roofline.empty()) {
    size_t points = 0;
    for (const auto& d : report->devices) points += d.op_classes.size();
    fmt::print("roofline   {} ({} devices, {} op-class points)\n", roofline, report->devices.size(),
               points);
  }
  return 0;
}

}  // namespace halctl
