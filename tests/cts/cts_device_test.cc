// The conformance suite on every device present, one test per device and case group
// (Cts_<device>.<group>), so ctest shows which device fails what. Devices come from the
// default plugin directory (cpu, npu_sim, cuda where built) plus the in-tree template
// plugin, loaded by path. Test names are registered at run time from the devices found.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "hal/cts.h"
#include "hal/hal.h"

namespace {

class CtsGroup : public ::testing::Test {
 public:
  CtsGroup(hal::Platform* platform, hal::Device* device, std::string group)
      : platform_(platform), device_(device), group_(std::move(group)) {}
  void TestBody() override {
    hal::cts::Options options;
    options.filter = group_ + ".*";
    const hal::cts::Report report = hal::cts::run(*platform_, *device_, options);
    if (report.hung) {
      // The hung work still uses the device: report and leave without teardown.
      std::fprintf(stderr, "%s", hal::cts::format_text(report, false).c_str());
      std::_Exit(1);
    }
    ASSERT_GT(report.cases.size(), 0u) << "no case matched " << options.filter;
    EXPECT_TRUE(report.ok()) << hal::cts::format_text(report, false);
    const hal::cts::Summary s = report.summary();
    if (s.passed == 0 && s.failed == 0)
      GTEST_SKIP() << "every case skipped:\n" << hal::cts::format_text(report, true);
  }

 private:
  hal::Platform* platform_;
  hal::Device* device_;
  std::string group_;
};

std::string identifier(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  hal::PlatformOptions options;
#ifdef HAL_TEMPLATE_PLUGIN
  options.plugin_paths.push_back(HAL_TEMPLATE_PLUGIN);
#endif
  auto created = hal::Platform::create(options);
  if (!created.ok()) {
    std::fprintf(stderr, "cannot open the platform: %s\n", created.status().to_string().c_str());
    return 1;
  }
  std::unique_ptr<hal::Platform> platform = std::move(created).value();
  std::vector<std::string> groups = {"buffer", "alloc",  "copy",  "fill",   "stream",
                                     "event",  "record", "error", "channel"};
  for (int k = 1; k < hal::kOpKindCount; ++k)
    groups.push_back("op." + std::string(hal::op_kind_name(hal::OpKind(k))));
  for (hal::Device* device : platform->devices()) {
    for (const std::string& group : groups) {
      hal::Platform* p = platform.get();
      ::testing::RegisterTest(("Cts_" + identifier(device->id())).c_str(),
                              identifier(group).c_str(), nullptr, nullptr, __FILE__, __LINE__,
                              [=]() -> ::testing::Test* { return new CtsGroup(p, device, group); });
    }
  }
  const int rc = RUN_ALL_TESTS();
  platform.reset();
  return rc;
}
