// CTS op cases: every op of hal/op.h on a set of shapes and layouts (dense, padded
// strides, transposed storage, offsets inside the buffer) in f32, f16 and bf16 (and the
// casts between types, and products and gathers with quantized weights in every format),
// compared with hal::reference::execute.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cts_internal.h"
#include "hal/quant_reference.h"
#include "hal/reference_ops.h"

namespace hal::cts::detail {

namespace {

// How a tensor is laid out in its buffer.
enum class Layout {
  kDense,       // row-major
  kPadded,      // row-major with gaps of 1-2 elements after every dim
  kTransposed,  // the last two dims stored swapped (column-major matrix), then padded
};

struct InputDef {
  DType dtype = DType::kF32;
  Shape shape;
  Layout layout = Layout::kDense;
  double lo = -1.0, hi = 1.0;  // value range (uniform); integers take whole numbers
};

struct OpCaseDef {
  std::string name;  // full case name
  OpKind kind = OpKind::kInvalid;
  OpAttributes attrs;
  std::vector<InputDef> inputs;
  DType out_dtype = DType::kInvalid;  // kInvalid: the inferred dtype
  Layout out_layout = Layout::kDense;
};

TensorDesc make_desc(DType dtype, const Shape& shape, Layout layout) {
  TensorDesc d;
  d.dtype = dtype;
  d.shape = shape;
  const int r = shape.rank;
  int order[kMaxRank];  // dims from innermost to outermost
  for (int i = 0; i < r; ++i) order[i] = r - 1 - i;
  if (layout == Layout::kTransposed && r >= 2) std::swap(order[0], order[1]);
  int64_t stride = 1;
  for (int i = 0; i < r; ++i) {
    const int dim = order[i];
    d.strides[dim] = stride;
    int64_t extent = std::max<int64_t>(shape.dims[dim], 1);
    if (layout != Layout::kDense) extent += 1 + (dim % 2);
    stride *= extent;
  }
  return d;
}

// Calls fn(index) for every index of `shape`, row-major.
template <typename Fn>
void for_each_index(const Shape& shape, Fn&& fn) {
  if (shape.numel() <= 0) return;
  int64_t idx[kMaxRank] = {};
  for (;;) {
    fn(static_cast<const int64_t*>(idx));
    int d = shape.rank - 1;
    for (; d >= 0; --d) {
      if (++idx[d] < shape.dims[d]) break;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

std::string index_text(const int64_t* idx, int rank) {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(idx[i]);
  return s + "]";
}

// ---- tolerances -------------------------------------------------------------------

struct Tolerance {
  double atol = 0;
  double rtol = 0;
  bool from_device = false;
};

// The suite's bound for an op, before the output dtype's rounding is added.
Tolerance base_tolerance(OpKind kind) {
  switch (kind) {
    case OpKind::kMatmul:
      return {2e-4, 1e-4};
    case OpKind::kAttention:
      return {2e-5, 1e-4};
    case OpKind::kAdd:
    case OpKind::kMul:
    case OpKind::kScale:
    case OpKind::kGelu:
    case OpKind::kSilu:
      return {1e-6, 4e-6};
    case OpKind::kLayerNorm:
    case OpKind::kRmsNorm:
    case OpKind::kSoftmax:
    case OpKind::kRotary:
      return {2e-6, 2e-5};
    default:
      return {0, 0};  // data movement, casts and argmax are exact
  }
}

bool exact_op(OpKind kind) {
  return kind == OpKind::kEmbedding || kind == OpKind::kTranspose || kind == OpKind::kCast ||
         kind == OpKind::kArgmax;
}

// "atol,rtol" -> Tolerance
std::optional<Tolerance> parse_tolerance(const std::string& text) {
  const size_t comma = text.find(',');
  if (comma == std::string::npos) return std::nullopt;
  char* end = nullptr;
  const std::string a = text.substr(0, comma), r = text.substr(comma + 1);
  const double atol = std::strtod(a.c_str(), &end);
  if (end == a.c_str() || *end != '\0') return std::nullopt;
  const double rtol = std::strtod(r.c_str(), &end);
  if (end == r.c_str() || *end != '\0') return std::nullopt;
  if (!(atol >= 0) || !(rtol >= 0)) return std::nullopt;
  return Tolerance{atol, rtol, true};
}

// The bound for `spec` on `device`: the device's declared one, else the suite's default
// widened by the rounding of a half-precision output.
Result<Tolerance> tolerance_for(const Device& device, const OpSpec& spec) {
  const std::string op(op_kind_name(spec.kind));
  const std::string dt(dtype_name(spec.output.dtype));
  // A product with quantized weights may round its activations (hal/op.h): the device
  // declares that under the weight format ("cts.tolerance.matmul.q4_0").
  std::vector<std::string> keys;
  for (int i = 0; i < spec.num_inputs; ++i)
    if (is_quantized(spec.inputs[i].dtype))
      keys.push_back("cts.tolerance." + op + "." + std::string(dtype_name(spec.inputs[i].dtype)));
  keys.push_back("cts.tolerance." + op + "." + dt);
  keys.push_back("cts.tolerance." + op);
  for (const std::string& key : keys) {
    const std::string value = device.info().property(key);
    if (value.empty()) continue;
    auto t = parse_tolerance(value);
    if (!t)
      return invalid_argument("device property " + key + " = '" + value +
                              "' is not '<atol>,<rtol>' with non-negative numbers");
    return *t;
  }
  Tolerance t = base_tolerance(spec.kind);
  if (!exact_op(spec.kind)) {
    if (spec.output.dtype == DType::kF16) t = {std::max(t.atol, 1e-3), std::max(t.rtol, 2e-3)};
    if (spec.output.dtype == DType::kBF16) t = {std::max(t.atol, 8e-3), std::max(t.rtol, 1.6e-2)};
  }
  return t;
}

// ---- running one case --------------------------------------------------------------

// A host image of one buffer: the tensor at `offset` inside sentinel bytes.
struct Image {
  TensorDesc desc;
  uint64_t offset = 0;
  std::vector<uint8_t> bytes;
  void* data() { return bytes.data() + offset; }
  const void* data() const { return bytes.data() + offset; }
};

Image make_image(const TensorDesc& desc, uint64_t offset, uint8_t sentinel) {
  Image im;
  im.desc = desc;
  im.offset = offset;
  im.bytes.assign(offset + desc.extent_bytes() + 16, sentinel);
  return im;
}

void fill_values(Image& im, const InputDef& def, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> dist(def.lo, def.hi);
  if (is_quantized(def.dtype)) {
    // Dense rows of random values, quantized by the reference (hal/quant_reference.h).
    const int64_t k = im.desc.shape.back(), rows = im.desc.shape.numel() / std::max<int64_t>(k, 1);
    std::vector<float> v(size_t(rows * k));
    for (float& x : v) x = float(dist(rng));
    const std::vector<uint8_t> q = reference::quantize_rows(def.dtype, v.data(), rows, k);
    std::memcpy(im.data(), q.data(), q.size());
    return;
  }
  const bool integer = is_integer(def.dtype);
  for_each_index(im.desc.shape, [&](const int64_t* idx) {
    double v = dist(rng);
    if (integer) v = std::min(std::floor(v), def.hi - 1);
    reference::store(im.data(), im.desc, idx, v);
  });
}

Verdict run_op_case(Context& ctx, const OpCaseDef& def) {
  std::vector<TensorDesc> descs;
  for (const InputDef& in : def.inputs) descs.push_back(make_desc(in.dtype, in.shape, in.layout));
  auto built = make_spec(def.kind, def.attrs, descs, def.out_dtype);
  if (!built.ok())
    return fail("the suite built a malformed case (a CTS bug): " + built.status().to_string());
  OpSpec spec = *built;
  spec.output = make_desc(spec.output.dtype, spec.output.shape, def.out_layout);
  if (Status v = validate_op(spec); !v.ok())
    return fail("the suite built an invalid case (a CTS bug): " + v.to_string());
  if (!ctx.device.supports(spec)) return skip("not supported by the device: " + describe(spec));
  CTS_ASSIGN(Tolerance tol, tolerance_for(ctx.device, spec), "tolerance");

  // Host images: inputs at odd element offsets inside their buffers, sentinel around.
  auto rng = ctx.rng(def.name);
  std::vector<Image> inputs;
  for (size_t i = 0; i < def.inputs.size(); ++i) {
    Image im = make_image(spec.inputs[i], dtype_size(spec.inputs[i].dtype) * (1 + i), 0xAB);
    fill_values(im, def.inputs[i], rng);
    inputs.push_back(std::move(im));
  }
  Image got = make_image(spec.output, dtype_size(spec.output.dtype) * 3, 0xCD);
  Image want = got;

  // On the device.
  CTS_ASSIGN(Stream s, ctx.device.create_stream(), "create stream");
  std::vector<Buffer> buffers;
  for (const Image& im : inputs) {
    CTS_ASSIGN(Buffer b, ctx.device.allocate(im.bytes.size()), "allocate an input");
    buffers.push_back(std::move(b));
  }
  CTS_ASSIGN(Buffer out, ctx.device.allocate(got.bytes.size()), "allocate the output");
  Drain drain{{&s}, nullptr};
  for (size_t i = 0; i < inputs.size(); ++i)
    CTS_OK(s.copy_from_host(inputs[i].bytes.data(), buffers[i], 0, inputs[i].bytes.size()),
           "upload input " + std::to_string(i));
  CTS_OK(s.copy_from_host(got.bytes.data(), out, 0, got.bytes.size()), "upload output sentinel");
  OpDescriptor op;
  op.kind = spec.kind;
  op.attrs = spec.attrs;
  op.num_inputs = spec.num_inputs;
  for (size_t i = 0; i < inputs.size(); ++i)
    op.inputs[i] = TensorRef{&buffers[i], inputs[i].offset, spec.inputs[i]};
  op.output = TensorRef{&out, got.offset, spec.output};
  CTS_OK(s.dispatch(op), "dispatch " + describe(spec));
  CTS_OK(s.copy_to_host(out, 0, got.bytes.data(), got.bytes.size()), "download the output");
  CTS_OK(s.synchronize(), "run " + describe(spec));

  // The reference.
  const void* ptrs[kMaxOpInputs] = {};
  for (size_t i = 0; i < inputs.size(); ++i) ptrs[i] = inputs[i].data();
  CTS_OK(reference::execute(spec, ptrs, want.data()), "reference " + describe(spec));

  const TensorDesc& o = spec.output;
  std::string first_error;
  int64_t errors = 0;
  double worst = 0;
  for_each_index(o.shape, [&](const int64_t* idx) {
    const double g = reference::load(got.data(), o, idx);
    const double w = reference::load(want.data(), o, idx);
    const bool ok = (std::isnan(w) && std::isnan(g)) || (std::isinf(w) && g == w) ||
                    std::fabs(g - w) <= tol.atol + tol.rtol * std::fabs(w);
    if (!ok) {
      worst = std::max(worst, std::fabs(g - w));
      if (errors++ == 0)
        first_error = "at " + index_text(idx, o.shape.rank) + ": got " + std::to_string(g) +
                      ", reference " + std::to_string(w);
    }
  });
  const std::string tol_text = "tolerance " + std::to_string(tol.atol) + " + " +
                               std::to_string(tol.rtol) + " * |ref|" +
                               (tol.from_device ? " (declared by the device)" : "");
  if (errors > 0)
    return fail(describe(spec) + ": " + std::to_string(errors) + " of " +
                std::to_string(o.numel()) + " elements outside the " + tol_text + "; first " +
                first_error + "; largest error " + std::to_string(worst));
  // Bytes outside the output view (guards, gaps of strided layouts) must be untouched:
  // blank the view in both images, then every byte must agree.
  for_each_index(o.shape, [&](const int64_t* idx) {
    reference::store(got.data(), o, idx, 0.0);
    reference::store(want.data(), o, idx, 0.0);
  });
  const std::string diff = compare_bytes(got.bytes.data(), want.bytes.data(), got.bytes.size());
  if (!diff.empty())
    return fail(describe(spec) + " wrote outside its output view (view at byte offset " +
                std::to_string(got.offset) + "): " + diff);
  return tol.from_device ? pass(tol_text) : pass();
}

// ---- the cases ---------------------------------------------------------------------

std::vector<OpCaseDef> op_case_defs() {
  std::vector<OpCaseDef> defs;
  using L = Layout;
  const DType floats[] = {DType::kF32, DType::kF16, DType::kBF16};
  auto add = [&](OpKind kind, DType t, std::string variant, std::vector<InputDef> inputs,
                 OpAttributes attrs = {}, L out_layout = L::kDense) {
    OpCaseDef d;
    d.name =
        "op." + std::string(op_kind_name(kind)) + "." + std::string(dtype_name(t)) + "." + variant;
    d.kind = kind;
    d.attrs = attrs;
    d.inputs = std::move(inputs);
    d.out_layout = out_layout;
    defs.push_back(std::move(d));
  };
  for (DType t : floats) {
    auto in = [t](Shape s, L l = L::kDense, double lo = -1, double hi = 1) {
      return InputDef{t, s, l, lo, hi};
    };
    auto ints = [](DType dt, Shape s, double lo, double hi) {
      return InputDef{dt, s, L::kDense, lo, hi};
    };
    OpAttributes a;

    // matmul
    add(OpKind::kMatmul, t, "m3k5n4", {in({3, 5}), in({5, 4})});
    add(OpKind::kMatmul, t, "decode.m1k64n33", {in({1, 64}), in({64, 33})});
    a = {};
    a.transpose_a = true;
    add(OpKind::kMatmul, t, "transpose_a.m17k9n13", {in({9, 17}), in({9, 13})}, a);
    a = {};
    a.transpose_b = true;
    a.alpha = 0.5f;
    add(OpKind::kMatmul, t, "transpose_b.alpha.bias.m8k16n5", {in({8, 16}), in({5, 16}), in({5})},
        a);
    add(OpKind::kMatmul, t, "batch_broadcast.2x3.m4k6n5", {in({2, 3, 4, 6}), in({6, 5})});
    add(OpKind::kMatmul, t, "batch_size1_broadcast.m5k7n6", {in({3, 5, 7}), in({1, 7, 6})});
    add(OpKind::kMatmul, t, "strided.m33k31n29",
        {in({33, 31}, L::kPadded), in({31, 29}, L::kTransposed)}, {}, L::kPadded);
    add(OpKind::kMatmul, t, "k0", {in({3, 0}), in({0, 4})});

    // add / mul
    for (OpKind k : {OpKind::kAdd, OpKind::kMul}) {
      add(k, t, "same.4x33", {in({4, 33}), in({4, 33})});
      add(k, t, "broadcast.3x1x5_4x1", {in({3, 1, 5}), in({4, 1})});
      add(k, t, "row_vector.7x16_16", {in({7, 16}), in({16})});
      add(k, t, "strided.5x9", {in({5, 9}, L::kPadded), in({5, 9}, L::kTransposed)}, {},
          L::kPadded);
      add(k, t, "empty.0x5", {in({0, 5}), in({0, 5})});
    }
    // scale
    a = {};
    a.alpha = 1.5f;
    a.beta = -0.25f;
    add(OpKind::kScale, t, "3x17", {in({3, 17})}, a);
    add(OpKind::kScale, t, "strided.4x9x5", {in({4, 9, 5}, L::kPadded)}, a, L::kPadded);
    // gelu / silu
    a = {};
    add(OpKind::kGelu, t, "erf.5x37", {in({5, 37}, L::kDense, -4, 4)}, a);
    a.gelu_approximation = GeluApproximation::kTanh;
    add(OpKind::kGelu, t, "tanh.5x37", {in({5, 37}, L::kDense, -4, 4)}, a);
    add(OpKind::kGelu, t, "tanh.strided.6x7", {in({6, 7}, L::kTransposed, -4, 4)}, a, L::kPadded);
    add(OpKind::kSilu, t, "5x37", {in({5, 37}, L::kDense, -6, 6)});
    add(OpKind::kSilu, t, "strided.6x7", {in({6, 7}, L::kPadded, -6, 6)}, {}, L::kPadded);

    // norms
    a = {};
    add(OpKind::kLayerNorm, t, "beta.4x33",
        {in({4, 33}, L::kDense, -2, 3), in({33}, L::kDense, 0.5, 1.5), in({33})});
    a.epsilon = 1e-3f;
    add(OpKind::kLayerNorm, t, "no_beta.3x2x64", {in({3, 2, 64}), in({64}, L::kDense, 0.5, 1.5)},
        a);
    add(OpKind::kLayerNorm, t, "strided.5x17",
        {in({5, 17}, L::kPadded), in({17}, L::kPadded, 0.5, 1.5), in({17}, L::kPadded)}, {},
        L::kPadded);
    add(OpKind::kRmsNorm, t, "4x33", {in({4, 33}), in({33}, L::kDense, 0.5, 1.5)});
    add(OpKind::kRmsNorm, t, "strided.3x2x20",
        {in({3, 2, 20}, L::kPadded), in({20}, L::kPadded, 0.5, 1.5)}, {}, L::kPadded);

    // softmax
    a = {};
    add(OpKind::kSoftmax, t, "3x17", {in({3, 17}, L::kDense, -5, 5)});
    a.causal = true;
    a.scale = 0.5f;
    add(OpKind::kSoftmax, t, "causal.scale.2x5x7", {in({2, 5, 7}, L::kDense, -5, 5)}, a);
    add(OpKind::kSoftmax, t, "causal.fully_masked_rows.7x5", {in({7, 5}, L::kDense, -5, 5)}, a);
    add(OpKind::kSoftmax, t, "strided.4x9", {in({4, 9}, L::kTransposed, -5, 5)}, {}, L::kPadded);

    // rotary
    a = {};
    add(OpKind::kRotary, t, "s5h3d8.positions_i32", {in({5, 3, 8}), ints(DType::kI32, {5}, 0, 32)},
        a);
    a.rope_style = RopeStyle::kInterleaved;
    add(OpKind::kRotary, t, "interleaved.b2s4h2d8.positions_i64_2d",
        {in({2, 4, 2, 8}), ints(DType::kI64, {2, 4}, 0, 32)}, a);
    a = {};
    a.rotary_dim = 4;
    a.rope_theta = 500.0f;
    add(OpKind::kRotary, t, "partial.rotary_dim4.s3h2d8",
        {in({3, 2, 8}, L::kPadded), ints(DType::kI32, {3}, 0, 32)}, a, L::kPadded);
    a = {};
    add(OpKind::kRotary, t, "inv_freq.s4h1d8",
        {in({4, 1, 8}), ints(DType::kI32, {4}, 0, 32),
         InputDef{DType::kF32, {4}, L::kDense, 0.01, 1.0}},
        a);

    // attention
    a = {};
    add(OpKind::kAttention, t, "gqa.b1sq4skv6.hq4hkv2.d8",
        {in({1, 4, 4, 8}), in({1, 6, 2, 8}), in({1, 6, 2, 8})}, a);
    a.causal = true;
    add(OpKind::kAttention, t, "causal.b2sq5skv5.hq2hkv1.d8",
        {in({2, 5, 2, 8}), in({2, 5, 1, 8}), in({2, 5, 1, 8})}, a);
    a = {};
    a.causal = true;
    a.kv_length = 7;
    add(OpKind::kAttention, t, "decode.kv_length7.b2sq1skv9.d16",
        {in({2, 1, 2, 16}), in({2, 9, 2, 16}), in({2, 9, 2, 16})}, a);
    a = {};
    a.causal = true;
    add(OpKind::kAttention, t, "causal.kv_lengths.b2sq3skv8",
        {in({2, 3, 2, 8}), in({2, 8, 1, 8}), in({2, 8, 1, 8}), ints(DType::kI32, {2}, 3, 9)}, a);
    a = {};
    a.causal = true;
    a.kv_length = 2;
    a.scale = 0.25f;
    add(OpKind::kAttention, t, "causal.queries_without_keys.sq4skv6",
        {in({1, 4, 1, 8}), in({1, 6, 1, 8}), in({1, 6, 1, 8})}, a);
    a = {};
    add(OpKind::kAttention, t, "dv4.strided.b1sq3skv5.d8",
        {in({1, 3, 2, 8}, L::kPadded), in({1, 5, 2, 8}, L::kPadded), in({1, 5, 2, 4}, L::kPadded)},
        a, L::kPadded);

    // embedding
    add(OpKind::kEmbedding, t, "v10d8.ids_i32_3x4",
        {in({10, 8}), ints(DType::kI32, {3, 4}, 0, 10)});
    add(OpKind::kEmbedding, t, "strided.v7d5.ids_i64_6",
        {in({7, 5}, L::kPadded), ints(DType::kI64, {6}, 0, 7)}, {}, L::kPadded);

    // transpose
    a = {};
    a.perm = {2, 0, 1, 3, 4, 5, 6, 7};
    add(OpKind::kTranspose, t, "perm201.2x3x4", {in({2, 3, 4})}, a);
    a.perm = {0, 2, 1, 3, 4, 5, 6, 7};
    add(OpKind::kTranspose, t, "perm0213.2x5x3x4", {in({2, 5, 3, 4}, L::kPadded)}, a);
    a = {};
    add(OpKind::kTranspose, t, "identity.strided_copy.5x6", {in({5, 6}, L::kTransposed)}, a,
        L::kPadded);

    // argmax
    add(OpKind::kArgmax, t, "4x9", {in({4, 9})});
    add(OpKind::kArgmax, t, "strided.2x3x17", {in({2, 3, 17}, L::kPadded)}, {}, L::kPadded);
    add(OpKind::kArgmax, t, "ties.3x8", {in({3, 8}, L::kDense, -1, -0.99)});
  }

  // Quantized weights (ABI 1.2 formats of hal/op.h): a decode and a prefill product with
  // B [N, K] quantized, and a gather from a quantized table; a device runs each format it
  // says it supports.
  for (int f = int(DType::kQ8_0); f < kDTypeCount; ++f) {
    const DType q = DType(f);
    OpAttributes tb;
    tb.transpose_b = true;
    auto qcase = [&](OpKind kind, std::string variant, std::vector<InputDef> inputs, OpAttributes a,
                     DType out) {
      OpCaseDef d;
      d.name = "op." + std::string(op_kind_name(kind)) + "." + std::string(dtype_name(q)) + "." +
               variant;
      d.kind = kind;
      d.attrs = a;
      d.inputs = std::move(inputs);
      d.out_dtype = out;
      defs.push_back(std::move(d));
    };
    const InputDef w{q, {33, 256}, L::kDense, -1, 1};
    qcase(OpKind::kMatmul, "decode.bias.m1k256n33",
          {InputDef{DType::kF32, {1, 256}}, w, InputDef{DType::kF32, {33}}}, tb, DType::kInvalid);
    qcase(OpKind::kMatmul, "prefill.bf16.m12k256n33", {InputDef{DType::kBF16, {12, 256}}, w}, tb,
          DType::kInvalid);
    qcase(OpKind::kEmbedding, "v33d256.ids_i32_5",
          {w, InputDef{DType::kI32, {5}, L::kDense, 0, 33}}, {}, DType::kF32);
  }

  // casts: every pair the model runtime uses, plus integer conversions.
  struct CastDef {
    DType from, to;
    double lo, hi;
  };
  const CastDef casts[] = {
      {DType::kF32, DType::kF16, -100, 100},   {DType::kF32, DType::kBF16, -100, 100},
      {DType::kF16, DType::kF32, -100, 100},   {DType::kBF16, DType::kF32, -100, 100},
      {DType::kF16, DType::kBF16, -100, 100},  {DType::kBF16, DType::kF16, -100, 100},
      {DType::kF32, DType::kI32, -1000, 1000}, {DType::kI32, DType::kF32, -1000, 1000},
      {DType::kI64, DType::kF32, -1000, 1000}, {DType::kF32, DType::kF32, -1, 1},
  };
  for (const CastDef& c : casts) {
    for (L layout : {L::kDense, L::kPadded}) {
      OpCaseDef d;
      d.name = "op.cast." + std::string(dtype_name(c.from)) + "_to_" +
               std::string(dtype_name(c.to)) + (layout == L::kDense ? ".6x7" : ".strided.6x7");
      d.kind = OpKind::kCast;
      d.inputs = {InputDef{c.from, {6, 7}, layout, c.lo, c.hi}};
      d.out_dtype = c.to;
      d.out_layout = layout;
      defs.push_back(std::move(d));
    }
  }
  return defs;
}

}  // namespace

void add_op_cases(const Context&, std::vector<Case>& cases) {
  for (OpCaseDef& def : op_case_defs()) {
    std::string name = def.name;
    cases.push_back(
        {std::move(name), [def = std::move(def)](Context& c) { return run_op_case(c, def); }});
  }
}

}  // namespace hal::cts::detail
