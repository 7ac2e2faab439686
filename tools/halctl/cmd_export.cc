// halctl export: write a model as a GGUF file, in any weight type GGUF defines, to hand
// it to another engine (llama.cpp) or to keep a quantized copy.
//
//   halctl export --model gpt2-small-random --out gpt2.gguf [--format f16]
//                 [--metadata-from vocab.gguf]
//
// --format: f32 (default), f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k;
// weights that matmuls read (and embedding tables) take it, norms and biases stay f32,
// a weight whose rows are not whole blocks of the format falls back to q8_0 or f32
// (hal/runtime/model.h, save_gguf). --metadata-from copies another GGUF file's metadata
// under tokenizer.* (a vocabulary, e.g. for built-in models, which have none).
//
// Exit codes: 0 written; 2 bad input (unknown model, format or file); 1 the write failed.
#include <fmt/format.h>

#include "common.h"
#include "hal/runtime/model.h"

namespace halctl {

int cmd_export(const Args& args) {
  CommonOptions common;
  std::string model_name, out_path, format_text = "f32", metadata_from;
  po::options_description desc("halctl export options");
  add_common_options(desc, common);
  desc.add_options()("model", po::value<std::string>(&model_name)->required(),
                     "checkpoint directory, GGUF file or built-in name")(
      "out", po::value<std::string>(&out_path)->required(), "the GGUF file to write")(
      "format", po::value<std::string>(&format_text)->default_value(format_text),
      "weight type: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k")(
      "metadata-from", po::value<std::string>(&metadata_from),
      "copy this GGUF file's tokenizer.* metadata (a vocabulary) into the output");
  po::variables_map vm;
  if (auto stop = parse_args("export", args, desc, {}, vm,
                             "halctl export --model DIR|FILE|NAME --out FILE.gguf [--format f16]"))
    return *stop;
  const auto format = hal::parse_dtype(format_text);
  if (!format || !hal::runtime::ggml_type_of(*format) || hal::dtype_size(*format) == 1 ||
      *format == hal::DType::kI32 || *format == hal::DType::kI64)
    return usage_error("export",
                       "--format '" + format_text +
                           "' is not a GGUF weight type (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, "
                           "q5_1, q4_k, q5_k, q6_k)");
  auto model = hal::runtime::load_model(model_name);
  if (!model.ok()) return report_error("export", model.status());
  hal::runtime::GgufExportOptions o;
  o.format = *format;
  if (!metadata_from.empty()) {
    auto src = hal::runtime::GgufFile::open(metadata_from);
    if (!src.ok()) return report_error("export", src.status());
    for (const auto& [key, value] : (*src)->header().metadata)
      if (key.rfind("tokenizer.", 0) == 0) o.extra.emplace_back(key, value);
    if (o.extra.empty())
      return report_error("export",
                          hal::invalid_argument(metadata_from + ": no tokenizer.* metadata"));
  }
  const hal::Status s = hal::runtime::save_gguf(**model, out_path, o);
  if (!s.ok()) return report_error("export", s);
  auto back = hal::runtime::GgufFile::open(out_path);
  if (!back.ok()) return report_error("export", back.status());
  uint64_t bytes = 0;
  for (const auto& t : (*back)->header().tensors) bytes += t.bytes;
  if (common.json) {
    print_json({{"model", (*model)->name()},
                {"out", out_path},
                {"format", format_text},
                {"tensors", (*back)->header().tensors.size()},
                {"tensor_bytes", bytes},
                {"metadata", (*back)->header().metadata.size()}});
    return 0;
  }
  fmt::print("wrote {}: {} tensors ({}), {} metadata entries\n", out_path,
             (*back)->header().tensors.size(), hal::format_bytes(bytes),
             (*back)->header().metadata.size());
  return 0;
}

}  // namespace halctl
