// tools/halctl/common.h: the pieces every halctl subcommand shares, so that each
// cmd_<name>.cc only holds what is particular to its command.
//
// What is here and how to use it (a typical command):
//
//   int cmd_foo(const Args& args) {
//     CommonOptions common;
//     po::options_description desc("halctl foo options");
//     add_common_options(desc, common);             // --plugin-path, --plugin-option, --json, ...
//     desc.add_options()("device", po::value<std::string>(), "device id");
//     po::positional_options_description pos;
//     pos.add("device", 1);
//     po::variables_map vm;
//     if (auto stop = parse_args("foo", args, desc, pos, vm, "halctl foo DEVICE [options]"))
//       return *stop;                                // --help printed (0) or usage error (2)
//     auto platform = open_platform(common);
//     if (!platform.ok()) return report_error("foo", platform.status());
//     auto device = (*platform)->device(vm["device"].as<std::string>());
//     if (!device.ok()) return report_error("foo", device.status());   // exit 2, names known ids
//     ...
//     if (common.json) print_json(result); else fmt::print(...);
//   }
//
// - Platform opening: CommonOptions -> hal::PlatformOptions (plugin paths, per-plugin
//   options "PLUGIN.KEY=VALUE", --no-default-plugins) and Platform::create.
// - Errors: report_error() prints "halctl <cmd>: <message>" to stderr and maps the
//   status to the exit code (2 for bad input: invalid argument, not found, ABI mismatch;
//   1 for work that failed). usage_error() prints a usage problem and returns 2.
// - Lists: split_list(), parse_size_list() ("256,512" or "256..4096" doubling, with
//   K/M/G suffixes), parse_dtype_list(), parse_id_list(), parse_device_list(). These are
//   fuzzed (tests/fuzz/fuzz_halctl_lists.cc).
// - JSON: to_json() for DeviceInfo (the `halctl list` object), LinkInfo, MemoryStats,
//   Telemetry and Status; print_json() writes indented JSON and a newline to stdout.
// - Sources: source_of(info, field) finds the "source.*" property that says where a
//   DeviceInfo figure came from.
//
// Exit codes (all commands): 0 success, 1 the work failed, 2 bad usage or bad input.
//
// Threading: single-threaded helpers for a command-line program.
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "hal/hal.h"
#include "hal/units.h"

namespace halctl {

namespace po = boost::program_options;

// Options every command accepts.
struct CommonOptions {
  // --plugin-path PATH (repeatable, or ':'-separated): plugin files or directories
  // searched first (PlatformOptions::plugin_paths).
  std::vector<std::string> plugin_paths;
  // --plugin-option PLUGIN.KEY=VALUE (repeatable), e.g. npu_sim.devices=atom,atom.
  std::vector<std::string> plugin_options;
  // --no-default-plugins: search only --plugin-path (not HAL_PLUGIN_PATH nor the
  // installation's plugin directory).
  bool no_default_plugins = false;
  // --json: machine-readable output on stdout.
  bool json = false;
};

// Adds the common options (and --help) to `desc`, bound to `common`.
void add_common_options(po::options_description& desc, CommonOptions& common);

// Parses `args`. Returns an exit code when the command must stop now: 0 after printing
// help for --help, 2 after printing a usage error (unknown option, missing value).
// Returns std::nullopt when the command should go on.
std::optional<int> parse_args(std::string_view command, const Args& args,
                              const po::options_description& desc,
                              const po::positional_options_description& positional,
                              po::variables_map& vm, std::string_view usage_line);

// The PlatformOptions the common options describe (INVALID_ARGUMENT for a malformed
// --plugin-option).
hal::Result<hal::PlatformOptions> platform_options(const CommonOptions& common);
// Platform::create with those options.
hal::Result<std::unique_ptr<hal::Platform>> open_platform(const CommonOptions& common);

// 2 for statuses that mean bad input (invalid argument, not found, ABI mismatch),
// 1 for everything else that failed, 0 for ok.
int exit_code_for(const hal::Status& status);
// Prints "halctl <command>: <status>" to stderr; returns exit_code_for(status).
int report_error(std::string_view command, const hal::Status& status);
// Prints "halctl <command>: <message>" and a pointer to --help to stderr; returns 2.
int usage_error(std::string_view command, std::string_view message);

// "a, b,,c" -> {"a", "b", "c"}: split at `separator`, trimmed, empty items dropped.
std::vector<std::string> split_list(std::string_view text, char separator = ',');
// "256,1024" or "256..4096" (powers of two from 256 to 4096) or mixes; each number may
// carry a K, M or G suffix (binary: 1K = 1024). `what` names the option in errors.
hal::Result<std::vector<uint64_t>> parse_size_list(std::string_view text, std::string_view what);
// "f32,bf16" (any name hal::parse_dtype accepts).
hal::Result<std::vector<hal::DType>> parse_dtype_list(std::string_view text, std::string_view what);
// "1, 2,3" -> token ids (each an int32; at least one). `what` names the option in errors.
hal::Result<std::vector<int32_t>> parse_id_list(std::string_view text, std::string_view what);
// "cpu:0,npu:0" -> devices of `platform` (NOT_FOUND naming the known ids).
hal::Result<std::vector<hal::Device*>> parse_device_list(const hal::Platform& platform,
                                                         std::string_view text);

// Where a DeviceInfo figure came from: the property "source.<field>" (also tried with
// unit suffixes such as _bytes, _bytes_per_s, _hz, _s removed, e.g. field
// "memory_bandwidth_bytes_per_s" finds "source.memory_bandwidth"), else "source",
// else "unstated".
std::string source_of(const hal::DeviceInfo& info, std::string_view field);

// {"f32": 1.2e11, "bf16": ...}
nlohmann::json peak_flops_json(const hal::DeviceInfo& info);
// The `halctl list` object of a device: id, backend, name, kind, vendor, memory_kind,
// memory_bytes, memory_bandwidth_bytes_per_s, peak_flops, sram_bytes, compute_units,
// clock_hz, launch_overhead_s.
nlohmann::json to_json(const hal::DeviceInfo& info);
nlohmann::json to_json(const hal::LinkInfo& link);
nlohmann::json to_json(const hal::MemoryStats& stats);
// Readings the device cannot take (negative) are null.
nlohmann::json to_json(const hal::Telemetry& telemetry);
// {"code": "not found", "message": "..."}
nlohmann::json to_json(const hal::Status& status);

// Writes `value` indented, plus a newline, to stdout.
void print_json(const nlohmann::json& value);

}  // namespace halctl
