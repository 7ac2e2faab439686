// tools/halctl/plan_parallel.h: the tensor/pipeline-parallel half of `halctl plan`
// (--tensor-parallel, --pipeline-parallel, --hosts): printing and JSON of a
// hal::runtime::ParallelForecast, and the device-list and degree parsing it needs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common.h"
#include "hal/runtime/parallel_forecast.h"

namespace halctl {

// "npu:0..7" -> npu:0, ..., npu:7; other entries unchanged.
hal::Result<std::vector<std::string>> expand_device_ranges(const std::vector<std::string>& ids);

// "auto" or "" -> nullopt; a positive integer; else INVALID_ARGUMENT naming the option.
hal::Result<std::optional<int32_t>> parse_degree(const std::string& text,
                                                 const std::string& option);

nlohmann::json parallel_plan_json(const hal::runtime::ParallelForecast& p,
                                  const std::string& source,
                                  const hal::runtime::ForecastRequest& request);
void print_parallel_plan(const hal::runtime::ParallelForecast& p, const std::string& source,
                         const hal::runtime::ForecastRequest& request);

}  // namespace halctl
