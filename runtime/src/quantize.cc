// Weight storage decisions, quantization on load and weight conversions
// (hal/runtime/quantize.h).
#include "hal/runtime/quantize.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "hal/quant_reference.h"

namespace hal::runtime {

namespace {

// Runs fn(begin, end) over [0, n) on the machine's cores.
template <typename Fn>
void parallel_rows(int64_t n, Fn&& fn) {
  const int64_t threads = std::clamp<int64_t>(int64_t(std::thread::hardware_concurrency()), 1,
                                              std::max<int64_t>(n / 64, 1));
  if (threads <= 1) {
    fn(int64_t(0), n);
    return;
  }
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t)
    pool.emplace_back([&, t] { fn(n * t / threads, n * (t + 1) / threads); });
  for (std::thread& th : pool) th.join();
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string tied_table(const ModelConfig& c) {
  return c.family == ModelFamily::kGpt2 ? "wte.weight" : "model.embed_tokens.weight";
}

}  // namespace

Shape stored_shape(const Shape& canonical, bool transposed) {
  if (!transposed || canonical.rank != 2) return canonical;
  return Shape{canonical[1], canonical[0]};
}

bool is_matmul_weight(const ModelConfig& c, std::string_view name) {
  if (name == "lm_head.weight") return true;
  if (name == tied_table(c)) return c.tie_word_embeddings;
  if (name == "wpe.weight" || name == "rope.inv_freq") return false;
  if (!ends_with(name, ".weight")) return false;
  // Projections: gpt2 attn.c_attn / attn.c_proj / mlp.c_fc / mlp.c_proj; llama *_proj.
  return ends_with(name, "_proj.weight") || ends_with(name, "c_attn.weight") ||
         ends_with(name, "c_proj.weight") || ends_with(name, "c_fc.weight");
}

Result<WeightFormats> plan_weight_formats(const Model& model, DType compute,
                                          const WeightOptions& o) {
  WeightFormats out;
  const ModelConfig& c = model.config();
  if (o.quantize && !is_quantized(*o.quantize) &&
      !(is_floating(*o.quantize) && dtype_size(*o.quantize) >= 2))
    return invalid_argument("quantize: " + std::string(dtype_name(*o.quantize)) +
                            " is not a weight format (f32, f16, bf16 or a quantized format)");
  for (const std::string& name : model.weight_names()) {
    HAL_ASSIGN_OR_RETURN(HostTensor t, model.weight(name));
    WeightFormat f;
    f.transposed = t.transposed;
    const bool matmul = is_matmul_weight(c, name);
    if (name == "rope.inv_freq") {
      f.dtype = DType::kF32;
    } else if (is_quantized(t.dtype)) {
      if (t.shape.rank != 2)
        return invalid_argument(model.name() + ": weight '" + name + "' is " +
                                std::string(dtype_name(t.dtype)) + " with shape " +
                                t.shape.to_string() + "; quantized weights must be 2-D");
      // A table the head does not read is only gathered: any quantized table works. A
      // matmul weight must be [out, in]: canonical for llama and tables, transposed for
      // gpt2's Conv1D projections.
      const bool in_out = c.family == ModelFamily::kGpt2 && matmul && name != "lm_head.weight" &&
                          name != tied_table(c);
      if (matmul && in_out != t.transposed)
        return invalid_argument(
            model.name() + ": quantized weight '" + name +
            "' is stored [in, out]; a quantized matmul weight must be [out, in]");
      f.dtype = t.dtype;
    } else if (o.quantize && matmul) {
      DType q = *o.quantize;
      // Quantized B is [out, in]: gpt2's Conv1D projections turn around.
      const bool in_out =
          c.family == ModelFamily::kGpt2 && name != "lm_head.weight" && name != tied_table(c);
      const bool quantized = is_quantized(q);
      f.transposed = quantized ? in_out : t.transposed;
      const int64_t k = stored_shape(stored_shape(t.shape, t.transposed), f.transposed).back();
      if (quantized && k % dtype_block(q) != 0) {
        const DType fallback = k % 32 == 0 ? DType::kQ8_0 : compute;
        out.notes.push_back(name + ": rows of " + std::to_string(k) +
                            " are not a whole number of " + std::string(dtype_name(q)) +
                            " blocks (" + std::to_string(dtype_block(q)) + "); stored as " +
                            std::string(dtype_name(fallback)));
        q = fallback;
        if (!is_quantized(q)) f.transposed = t.transposed;
      }
      f.dtype = q;
    } else if (o.keep_stored && matmul && is_floating(t.dtype) && dtype_size(t.dtype) >= 2) {
      f.dtype = t.dtype;
    } else {
      f.dtype = compute;
    }
    out.by_name.emplace(name, f);
  }
  return out;
}

Result<std::vector<float>> weight_values(const HostTensor& t, bool transposed) {
  const int64_t n = t.shape.numel();
  std::vector<float> v(size_t(std::max<int64_t>(n, 0)));
  if (is_quantized(t.dtype)) {
    const int64_t k = t.shape.back();
    const uint64_t rb = dtype_row_bytes(t.dtype, k);
    parallel_rows(n / k, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        reference::dequantize_row(t.dtype, static_cast<const uint8_t*>(t.data) + uint64_t(r) * rb,
                                  v.data() + r * k, k);
    });
  } else if (is_floating(t.dtype) && dtype_size(t.dtype) >= 2) {
    for (int64_t i = 0; i < n; ++i) v[size_t(i)] = load_as_float(t.data, t.dtype, i);
  } else {
    return invalid_argument(t.source + ": weight '" + t.name + "' has dtype " +
                            std::string(dtype_name(t.dtype)) + ", not a weight format");
  }
  if (transposed == t.transposed || t.shape.rank != 2) return v;
  const int64_t rows = t.shape[0], cols = t.shape[1];
  std::vector<float> tr(v.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) tr[size_t(c * rows + r)] = v[size_t(r * cols + c)];
  return tr;
}

Result<ConvertedWeight> convert_weight(const HostTensor& t, const WeightFormat& f) {
  ConvertedWeight out;
  const Shape canonical = stored_shape(t.shape, t.transposed);  // undo the stored transpose
  const Shape target = stored_shape(canonical, f.transposed);
  const uint64_t bytes = TensorDesc::contiguous(f.dtype, target).bytes();
  if (t.dtype == f.dtype && (t.transposed == f.transposed || t.shape.rank != 2)) {
    out.data = t.data;
    out.bytes = t.bytes;
    return out;
  }
  if (is_quantized(f.dtype) && (target.rank < 1 || target.back() % dtype_block(f.dtype) != 0))
    return invalid_argument("weight '" + t.name + "' " + target.to_string() +
                            ": rows are not a whole number of " + std::string(dtype_name(f.dtype)) +
                            " blocks");
  if (!is_quantized(f.dtype) && !(is_floating(f.dtype) && dtype_size(f.dtype) >= 2))
    return invalid_argument("weight '" + t.name + "': " + std::string(dtype_name(f.dtype)) +
                            " is not a weight format");
  HAL_ASSIGN_OR_RETURN(std::vector<float> v, weight_values(t, f.transposed));
  out.storage.resize(bytes);
  const int64_t k = target.rank > 0 ? target.back() : 1;
  const int64_t rows = k > 0 ? target.numel() / k : 0;
  const uint64_t rb = dtype_row_bytes(f.dtype, k);
  parallel_rows(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      reference::quantize_row(f.dtype, v.data() + r * k, out.storage.data() + uint64_t(r) * rb, k);
  });
  out.data = out.storage.data();
  out.bytes = bytes;
  return out;
}

}  // namespace hal::runtime
