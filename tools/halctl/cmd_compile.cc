// halctl compile: ahead-of-time compilation of a model for devices (whole-graph offload,
// ABI 1.2 executables): the prefill graph for a prompt bucket and the decode graph for a
// context, placed exactly as `halctl run` places them, every unit a device compiles
// written to a directory with a manifest, as an NPU SDK writes its compiled model files.
//
//   halctl compile --model gpt2-small-random --devices npu:0 --prompt-len 128
//                  --max-context 256 --out build/gpt2.npu
//   halctl run --model gpt2-small-random --devices npu:0 --prompt-ids 1,2,3
//              --max-new-tokens 32 --compiled build/gpt2.npu
//
// The run then loads every executable from the directory (no compiler runs); prompts up
// to --prompt-len tokens run in that bucket (padded at the end), and prompt + new tokens
// must fit --max-context. A file changed after compilation is refused by its device
// (checksum, compatibility key) and the run fails naming it.
//
// Exit codes: 0 written; 1 a device failed to compile; 2 bad usage or input.
#include <fmt/format.h>

#include <filesystem>

#include "common.h"
#include "hal/runtime/session.h"
#include "run_executables.h"
#include "run_outputs.h"

namespace halctl {

int cmd_compile(const Args& args) {
  CommonOptions common;
  RunPlacementOptions placing;
  std::string model_name = "gpt2-tiny", devices_text = "cpu:0", dtype_text = "f32", out;
  int64_t batch = 1, prompt_len = 128, context = 0;
  po::options_description desc("halctl compile options");
  add_common_options(desc, common);
  desc.add_options()("model", po::value<std::string>(&model_name)->default_value(model_name),
                     "checkpoint directory or built-in model (as halctl run)")(
      "devices", po::value<std::string>(&devices_text)->default_value(devices_text),
      "devices the model will run on (as halctl run --devices)")(
      "batch", po::value<int64_t>(&batch)->default_value(batch), "prompts per batch")(
      "prompt-len", po::value<int64_t>(&prompt_len)->default_value(prompt_len),
      "the prompt bucket: prompts up to this many tokens run in it")(
      "max-context", po::value<int64_t>(&context)->default_value(0),
      "positions of the KV cache: prompt + new tokens (0: prompt-len + 128)")(
      "dtype", po::value<std::string>(&dtype_text)->default_value(dtype_text),
      "compute dtype: f32, f16 or bf16")("placement", po::value<std::string>(&placing.placement),
                                         "pins, as halctl run --placement")(
      "out", po::value<std::string>(&out), "directory to write the executables and manifest to");
  po::variables_map vm;
  if (auto stop = parse_args("compile", args, desc, {}, vm,
                             "halctl compile --model M --devices npu:0 [--batch B] "
                             "[--prompt-len P] [--max-context C] --out DIR"))
    return *stop;
  if (out.empty()) return usage_error("compile", "--out DIR is required");
  if (batch < 1 || batch > 4096) return usage_error("compile", "--batch must be in [1, 4096]");
  if (prompt_len < 1) return usage_error("compile", "--prompt-len must be >= 1");
  if (context == 0) context = prompt_len + 128;
  if (context < prompt_len + 1)
    return usage_error("compile", "--max-context must exceed --prompt-len (room for new tokens)");
  const auto dtype = hal::parse_dtype(dtype_text);
  if (!dtype ||
      (*dtype != hal::DType::kF32 && *dtype != hal::DType::kF16 && *dtype != hal::DType::kBF16))
    return usage_error("compile", "--dtype must be f32, f16 or bf16, got '" + dtype_text + "'");
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec)
    return report_error("compile", hal::invalid_argument("--out " + out + ": " + ec.message()));

  auto platform = open_platform(common);
  if (!platform.ok()) return report_error("compile", platform.status());
  auto devices = parse_device_list(**platform, devices_text);
  if (!devices.ok()) return report_error("compile", devices.status());
  auto loaded = hal::runtime::load_model(model_name);
  if (!loaded.ok()) return report_error("compile", loaded.status());
  std::shared_ptr<const hal::runtime::Model> model = std::move(*loaded);
  if (model->config().max_positions > 0 && context > model->config().max_positions)
    return usage_error("compile", fmt::format("--max-context {} exceeds {}'s {} positions", context,
                                              model_name, model->config().max_positions));

  hal::runtime::CompileSettings compile;
  compile.enabled = true;
  compile.cache = std::make_shared<hal::runtime::ExecutableCache>(out);
  auto planner = make_run_planner(placing, *devices, compile);
  if (!planner.ok()) return report_error("compile", planner.status());
  hal::runtime::SessionOptions so;
  so.devices = *devices;
  so.planner = (*planner)->planner();
  so.compute_dtype = *dtype;
  so.prompt_buckets = {prompt_len};
  so.context = context;
  auto session = hal::runtime::Session::create(model, so);
  if (!session.ok()) return report_error("compile", session.status());
  if (hal::Status s = (*session)->prepare_generation(batch, prompt_len, context - prompt_len + 1);
      !s.ok())
    return report_error("compile", s);

  CompiledManifest m;
  m.model = model_name;
  for (const hal::Device* d : *devices) m.devices.push_back(d->id());
  m.dtype = dtype_text;
  m.batch = batch;
  m.prompt_len = prompt_len;
  m.context = context;
  if (hal::Status s = write_manifest(out, m, **planner); !s.ok()) return report_error("compile", s);

  hal::runtime::GenerationResult none;
  if (common.json) {
    nlohmann::json j = {{"out", out},
                        {"model", model_name},
                        {"devices", m.devices},
                        {"batch", batch},
                        {"prompt_len", prompt_len},
                        {"context", context},
                        {"executables", executables_json(**planner, none)}};
    print_json(j);
  } else {
    fmt::print("compiled   {} for {} (batch {}, prompt bucket {}, context {}) into {}\n",
               model_name, devices_text, batch, prompt_len, context, out);
    fmt::print("{}", executables_lines(**planner, none));
  }
  return 0;
}

}  // namespace halctl
