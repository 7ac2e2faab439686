// Fuzzes halctl's parsing of list arguments (tools/halctl/common.h): split_list,
// parse_size_list (--sizes), parse_dtype_list (--dtypes), parse_id_list (--prompt-ids,
// --prompts items), platform_options (--plugin-option PLUGIN.KEY=VALUE, --plugin-path)
// and parse_device_list (--devices) against a platform with no plugins. The first byte
// picks the parser, the rest is the argument. Properties: never crashes, throws or
// aborts; every refusal names the option; accepted lists are non-empty and hold what
// the grammar allows (sizes in a range double from LOW up to HIGH, no empty items).
#include <cstdint>
#include <memory>
#include <string>

#include "common.h"
#include "fuzz_support.h"

using namespace halctl;

namespace {

const hal::Platform& empty_platform() {
  static const std::unique_ptr<hal::Platform> platform = [] {
    hal::PlatformOptions o;
    o.use_env_plugin_path = false;
    o.use_default_plugin_dir = false;
    auto p = hal::Platform::create(o);
    FUZZ_CHECK(p.ok(), p.status().to_string());
    return std::move(*p);
  }();
  return *platform;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t which = data[0] % 6;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (which) {
    case 0: {
      for (const std::string& item : split_list(text))
        FUZZ_CHECK(!item.empty() && item.find(',') == std::string::npos, item);
      break;
    }
    case 1: {
      auto sizes = parse_size_list(text, "--sizes");
      if (sizes.ok())
        FUZZ_CHECK(!sizes->empty(), text);
      else
        FUZZ_CHECK(sizes.status().message().find("--sizes") != std::string::npos, text);
      break;
    }
    case 2: {
      auto dtypes = parse_dtype_list(text, "--dtypes");
      if (dtypes.ok())
        FUZZ_CHECK(!dtypes->empty(), text);
      else
        FUZZ_CHECK(dtypes.status().message().find("--dtypes") != std::string::npos, text);
      break;
    }
    case 3: {
      auto ids = parse_id_list(text, "--prompt-ids");
      if (ids.ok())
        FUZZ_CHECK(!ids->empty(), text);
      else
        FUZZ_CHECK(ids.status().message().find("--prompt-ids") != std::string::npos, text);
      break;
    }
    case 4: {
      CommonOptions common;
      common.plugin_options = split_list(text, '\n');
      common.plugin_paths = {text};
      common.no_default_plugins = true;
      auto options = platform_options(common);
      if (options.ok()) {
        for (const auto& [plugin, kv] : options->plugin_options) {
          FUZZ_CHECK(!plugin.empty(), text);
          for (const auto& [key, value] : kv) FUZZ_CHECK(!key.empty(), text);
        }
      } else {
        FUZZ_CHECK(options.status().message().find("--plugin-option") != std::string::npos, text);
      }
      break;
    }
    case 5: {
      auto devices = parse_device_list(empty_platform(), text);
      FUZZ_CHECK(!devices.ok(), "a platform without plugins has no devices");
      break;
    }
  }
  return 0;
}
