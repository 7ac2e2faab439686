// Every op of hal/op.h on the GPU against hal::reference: many shapes (odd sizes, sizes
// around the kernels' tile and warp boundaries), f32/f16/bf16, strided and transposed
// layouts, broadcasting, and the data-dependent failures (embedding ids, kv lengths).
//
// Tolerances (README "Numerics"): f32 outputs within the CTS bounds (matmul 2e-4 + 1e-4
// |ref|, attention 5e-5 + 2e-4 |ref| for its f32 exp/sum over up to 1000 keys, vector ops
// 2e-6 + 2e-5 |ref|); f16/bf16 outputs add one rounding of the output; TF32 matmuls
// 2e-2 + 2e-2 |ref| (10-bit mantissa inputs); data movement, casts and argmax exact.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_support.h"
#include "hal/quant_reference.h"

namespace hal::cuda_test {
namespace {

constexpr DType kFloats[] = {DType::kF32, DType::kF16, DType::kBF16};

TensorDesc dense(DType t, Shape s) { return TensorDesc::contiguous(t, s); }

// A function, not a macro: the arguments are braced lists. The failure names the op and
// its shapes, which identifies the case.
void expect_matches(Device& device, const OpSpec& spec, const std::vector<InputFill>& fills,
                    Tol tol, uint64_t seed) {
  const std::string err = run_and_compare(device, spec, fills, tol, seed);
  EXPECT_TRUE(err.empty()) << shape_text(spec) << ": " << err;
}

// ---- matmul -------------------------------------------------------------------------

TEST(CudaOps, MatmulShapesAndDtypes) {
  HAL_CUDA_GPU_OR_SKIP(d);
  const int64_t sizes[][3] = {{1, 1, 1},      {1, 64, 64},  {3, 5, 7},      {16, 16, 16},
                              {17, 33, 65},   {64, 1, 128}, {127, 129, 31}, {256, 96, 255},
                              {1, 4096, 512}, {200, 300, 1}};
  for (DType t : kFloats)
    for (const auto& s : sizes)
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
          OpAttributes at;
          at.transpose_a = ta;
          at.transpose_b = tb;
          const Shape as = ta ? Shape{s[2], s[0]} : Shape{s[0], s[2]};
          const Shape bs = tb ? Shape{s[1], s[2]} : Shape{s[2], s[1]};
          const OpSpec spec = make_spec(OpKind::kMatmul, at, {dense(t, as), dense(t, bs)});
          expect_matches(*d, spec, {}, tol_for(t, {2e-4, 1e-4}), 1);
        }
}

TEST(CudaOps, MatmulBatchBiasAlphaAndLayouts) {
  HAL_CUDA_GPU_OR_SKIP(d);
  for (DType t : kFloats) {
    const Tol tol = tol_for(t, {2e-4, 1e-4});
    OpAttributes at;
    // Batched with a shared weight (folds into one GEMM) and a bias (epilogue).
    expect_matches(
        *d,
        make_spec(OpKind::kMatmul, at, {dense(t, {3, 7, 40}), dense(t, {40, 24}), dense(t, {24})}),
        {}, tol, 2);
    // Broadcast batch dims on both sides, alpha.
    at.alpha = 0.37f;
    expect_matches(
        *d, make_spec(OpKind::kMatmul, at, {dense(t, {2, 1, 9, 33}), dense(t, {1, 3, 33, 5})}), {},
        tol, 3);
    at.alpha = 1.0f;
    // Padded strides (not expressible for cuBLASLt when both strides exceed 1 -> fallback).
    expect_matches(*d,
                   make_spec(OpKind::kMatmul, at,
                             {layout_desc(t, {2, 13, 21}, Layout::kPadded),
                              layout_desc(t, {21, 11}, Layout::kPadded),
                              layout_desc(t, {11}, Layout::kPadded)}),
                   {}, tol, 4);
    // Transposed storage of A and a column-major output (bias added by a second kernel).
    expect_matches(*d,
                   make_spec(OpKind::kMatmul, at,
                             {layout_desc(t, {19, 37}, Layout::kTransposed), dense(t, {37, 23}),
                              dense(t, {23})},
                             DType::kInvalid, Layout::kTransposed),
                   {}, tol, 5);
    // Half-precision inputs with an f32 output.
    if (t != DType::kF32)
      expect_matches(
          *d, make_spec(OpKind::kMatmul, at, {dense(t, {31, 64}), dense(t, {64, 17})}, DType::kF32),
          {}, Tol{2e-4, 1e-4}, 6);
    // Mixed input types (fallback kernel).
    expect_matches(
        *d, make_spec(OpKind::kMatmul, at, {dense(t, {9, 40}), dense(DType::kF32, {40, 10})}), {},
        tol, 7);
    // K = 0: the output is the bias.
    expect_matches(
        *d, make_spec(OpKind::kMatmul, at, {dense(t, {4, 0}), dense(t, {0, 6}), dense(t, {6})}), {},
        tol, 8);
  }
}

// Quantized weights (hal/op.h formats): decode-sized products dequantize in registers
// and use A in f32 (matmul tolerance); prefill-sized ones go through an f16 copy of the
// weights (one f16 rounding of each weight: 1e-2 + 1e-2 |ref| over K = 256).
TEST(CudaOps, MatmulWithQuantizedWeights) {
  HAL_CUDA_GPU_OR_SKIP(d);
  for (int f = int(DType::kQ8_0); f < kDTypeCount; ++f) {
    const DType w = DType(f);
    const int64_t k = 256, n = 70;
    auto fill = [&](int i, const TensorDesc& t, void* base) {
      if (i != 1) return false;
      std::mt19937 rng(static_cast<uint32_t>(f));
      std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
      std::vector<float> v(size_t(t.shape.numel()));
      for (float& x : v) x = dist(rng);
      const std::vector<uint8_t> q = reference::quantize_rows(w, v.data(), n, k);
      std::memcpy(base, q.data(), q.size());
      return true;
    };
    OpAttributes at;
    at.transpose_b = true;
    for (int64_t m : {1, 5, 40})
      for (DType a : kFloats) {
        const OpSpec spec = make_spec(OpKind::kMatmul, at, {dense(a, {m, k}), dense(w, {n, k}), dense(a, {n})});
        const Tol tol = m <= 8 ? tol_for(a, {2e-4, 1e-4}) : tol_for(a, {1e-2, 1e-2});
        const std::string err = run_and_compare(*d, spec, {}, tol, 3, fill);
        EXPECT_TRUE(err.empty()) << shape_text(spec) << ": " << err;
      }
    // The embedding gather from a quantized table: exact values, then one output rounding.
    OpAttributes none;
    const OpSpec gather = make_spec(OpKind::kEmbedding, none, {dense(w, {n, k}), dense(DType::kI32, {2, 3})},
                                    DType::kF32);
    const std::string err = run_and_compare(*d, gather, {{}, {0, double(n)}}, Tol{0, 0}, 4,
                                            [&](int i, const TensorDesc& t, void* base) {
                                              return i == 0 ? fill(1, t, base) : false;
                                            });
    EXPECT_TRUE(err.empty()) << shape_text(gather) << ": " << err;
  }
}

TEST(CudaOps, MatmulTf32) {
  HAL_CUDA_GPU_OR_SKIP(d0);
  (void)d0;
  Platform* p = cuda_platform("tf32");
  ASSERT_TRUE(p && !p->devices().empty());
  Device& d = *p->devices()[0];
  EXPECT_EQ(d.info().property("compute_precision"), "tf32");
  OpAttributes at;
  expect_matches(d,
                 make_spec(OpKind::kMatmul, at,
                           {dense(DType::kF32, {65, 128}), dense(DType::kF32, {128, 48})}),
                 {}, Tol{2e-2, 2e-2}, 9);
}

// ---- elementwise --------------------------------------------------------------------

TEST(CudaOps, ElementwiseWithBroadcastAndLayouts) {
  HAL_CUDA_GPU_OR_SKIP(d);
  const Shape shapes[][2] = {{{1}, {1}},
                             {{7}, {7}},
                             {{1000003}, {1000003}},
                             {{5, 9}, {9}},
                             {{5, 1}, {1, 9}},
                             {{2, 3, 4, 5}, {3, 1, 5}},
                             {{33, 65}, {33, 65}},
                             {{4, 1, 7}, {4, 6, 7}}};
  for (DType t : kFloats) {
    const Tol tol = tol_for(t, {1e-6, 4e-6});
    for (const auto& sh : shapes) {
      for (OpKind k : {OpKind::kAdd, OpKind::kMul})
        expect_matches(*d, make_spec(k, {}, {dense(t, sh[0]), dense(t, sh[1])}), {}, tol, 10);
      OpAttributes sc;
      sc.alpha = -1.75f;
      sc.beta = 0.25f;
      expect_matches(*d, make_spec(OpKind::kScale, sc, {dense(t, sh[0])}), {}, tol, 11);
      OpAttributes g;
      for (GeluApproximation ga : {GeluApproximation::kErf, GeluApproximation::kTanh}) {
        g.gelu_approximation = ga;
        expect_matches(*d, make_spec(OpKind::kGelu, g, {dense(t, sh[0])}), {{-6, 6}}, tol, 12);
      }
      expect_matches(*d, make_spec(OpKind::kSilu, {}, {dense(t, sh[0])}), {{-8, 8}}, tol, 13);
    }
    // Strided operands and output, mixed dtypes.
    expect_matches(*d,
                   make_spec(OpKind::kAdd, {},
                             {layout_desc(t, {6, 10}, Layout::kTransposed),
                              layout_desc(DType::kF32, {6, 10}, Layout::kPadded)},
                             DType::kInvalid, Layout::kPadded),
                   {}, tol, 14);
  }
}

TEST(CudaOps, CastsBetweenEveryType) {
  HAL_CUDA_GPU_OR_SKIP(d);
  const DType types[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kI32,
                         DType::kI64, DType::kI8,  DType::kU8};
  for (DType from : types)
    for (DType to : types) {
      // Values beyond every integer range saturate; fractions truncate toward zero.
      const InputFill fill = is_integer(from) ? InputFill{-300, 300} : InputFill{-400.5, 400.5};
      expect_matches(
          *d, make_spec(OpKind::kCast, {}, {layout_desc(from, {37, 9}, Layout::kPadded)}, to),
          {fill}, Tol{}, 15);
    }
}

TEST(CudaOps, TransposeAnyPermutation) {
  HAL_CUDA_GPU_OR_SKIP(d);
  const std::array<int32_t, kMaxRank> perms[] = {
      {0, 1, 2, 3}, {0, 2, 1, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}};
  for (DType t : {DType::kF32, DType::kBF16, DType::kI64, DType::kU8})
    for (const auto& perm : perms) {
      OpAttributes a;
      a.perm = perm;
      for (int i = 4; i < kMaxRank; ++i) a.perm[i] = i;
      expect_matches(*d, make_spec(OpKind::kTranspose, a, {dense(t, {3, 5, 7, 11})}), {{-100, 100}},
                     Tol{}, 16);
    }
}

// ---- rows ---------------------------------------------------------------------------

TEST(CudaOps, NormsSoftmaxArgmax) {
  HAL_CUDA_GPU_OR_SKIP(d);
  // Row lengths around the warp-per-row (<= 1024) and block-per-row boundary.
  const int64_t lengths[] = {1, 7, 32, 33, 1000, 1024, 1025, 4099};
  for (DType t : kFloats) {
    const Tol tol = tol_for(t, {2e-6, 2e-5});
    for (int64_t n : lengths) {
      const Shape x{3, 5, n};
      OpAttributes ln;
      ln.epsilon = 1e-5f;
      expect_matches(*d,
                     make_spec(OpKind::kLayerNorm, ln, {dense(t, x), dense(t, {n}), dense(t, {n})}),
                     {}, tol, 20);
      expect_matches(*d,
                     make_spec(OpKind::kLayerNorm, ln,
                               {layout_desc(t, x, Layout::kPadded), dense(DType::kF32, {n})}),
                     {}, tol, 21);
      expect_matches(*d, make_spec(OpKind::kRmsNorm, ln, {dense(t, x), dense(t, {n})}), {}, tol,
                     22);
      for (int causal = 0; causal < 2; ++causal) {
        OpAttributes sm;
        sm.causal = causal;
        sm.scale = causal ? 0.125f : 0.0f;
        expect_matches(*d, make_spec(OpKind::kSoftmax, sm, {dense(t, x)}), {{-8, 8}}, tol, 23);
      }
      expect_matches(*d, make_spec(OpKind::kArgmax, {}, {layout_desc(t, x, Layout::kPadded)}), {},
                     Tol{}, 24);
    }
    // Causal softmax with fewer queries than keys (decode with a cache) and more (rows
    // fully masked yield zeros).
    OpAttributes sm;
    sm.causal = true;
    expect_matches(*d, make_spec(OpKind::kSoftmax, sm, {dense(t, {2, 3, 40})}), {}, tol, 25);
    expect_matches(*d, make_spec(OpKind::kSoftmax, sm, {dense(t, {2, 40, 3})}), {}, tol, 26);
  }
}

TEST(CudaOps, ArgmaxTiesAndNans) {
  HAL_CUDA_GPU_OR_SKIP(d);
  const OpSpec spec = make_spec(OpKind::kArgmax, {}, {dense(DType::kF32, {4, 2000})});
  const std::string err =
      run_and_compare(*d, spec, {}, Tol{}, 27, [](int i, const TensorDesc&, void* base) {
        if (i != 0) return false;
        float* x = static_cast<float*>(base);
        for (int r = 0; r < 4; ++r)
          for (int j = 0; j < 2000; ++j) x[r * 2000 + j] = float(j % 7);  // ties: lowest index wins
        x[1 * 2000 + 5] = std::nanf("");                                  // NaN never wins
        for (int j = 0; j < 2000; ++j) x[2 * 2000 + j] = std::nanf("");   // all NaN -> 0
        x[3 * 2000 + 1999] = 100.0f;
        return true;
      });
  EXPECT_TRUE(err.empty()) << err;
}

// ---- rotary, embedding ----------------------------------------------------------------

TEST(CudaOps, RotaryStylesAndPositions) {
  HAL_CUDA_GPU_OR_SKIP(d);
  for (DType t : kFloats) {
    const Tol tol = tol_for(t, {2e-6, 2e-5});
    for (RopeStyle style : {RopeStyle::kRotateHalf, RopeStyle::kInterleaved})
      for (int32_t rd : {0, 16}) {
        OpAttributes a;
        a.rope_style = style;
        a.rotary_dim = rd;
        a.rope_theta = 500000.0f;
        expect_matches(
            *d, make_spec(OpKind::kRotary, a, {dense(t, {7, 3, 24}), dense(DType::kI32, {7})}),
            {{-1, 1}, {0, 100000}}, tol, 30);
        expect_matches(
            *d,
            make_spec(OpKind::kRotary, a,
                      {layout_desc(t, {2, 5, 4, 24}, Layout::kPadded), dense(DType::kI32, {2, 5})}),
            {{-1, 1}, {0, 4096}}, tol, 31);
        const int64_t half = (rd ? rd : 24) / 2;
        expect_matches(
            *d,
            make_spec(OpKind::kRotary, a,
                      {dense(t, {5, 2, 24}), dense(DType::kI32, {5}), dense(DType::kF32, {half})}),
            {{-1, 1}, {0, 2048}, {0.0001, 1}}, tol, 32);
      }
  }
}

TEST(CudaOps, EmbeddingGathers) {
  HAL_CUDA_GPU_OR_SKIP(d);
  for (DType t : kFloats)
    for (DType id : {DType::kI32, DType::kI64}) {
      expect_matches(*d,
                     make_spec(OpKind::kEmbedding, {}, {dense(t, {1000, 67}), dense(id, {3, 11})}),
                     {{-1, 1}, {0, 1000}}, Tol{}, 33);
      expect_matches(*d,
                     make_spec(OpKind::kEmbedding, {},
                               {layout_desc(t, {50, 300}, Layout::kPadded), dense(id, {1})},
                               DType::kInvalid, Layout::kPadded),
                     {{-1, 1}, {0, 50}}, Tol{}, 34);
    }
}

// An id outside the vocabulary fails the command with INVALID_ARGUMENT naming the id; the
// stream's later commands are skipped until synchronize, and then it works again.
TEST(CudaOps, EmbeddingIdOutOfRangeFailsTheCommand) {
  HAL_CUDA_GPU_OR_SKIP(d);
  auto s = d->create_stream();
  ASSERT_TRUE(s.ok());
  auto table = d->allocate(100 * 8 * 4);
  auto ids = d->allocate(3 * 4);
  auto out = d->allocate(3 * 8 * 4);
  ASSERT_TRUE(table.ok() && ids.ok() && out.ok());
  const int32_t bad[3] = {1, 100, 2};
  ASSERT_TRUE(s->fill(*table, 0, 100 * 8 * 4, 0, 4).ok());
  ASSERT_TRUE(s->copy_from_host(bad, *ids, 0, sizeof bad).ok());
  OpDescriptor op(OpKind::kEmbedding,
                  {TensorRef::contiguous(*table, DType::kF32, {100, 8}),
                   TensorRef::contiguous(*ids, DType::kI32, {3})},
                  TensorRef::contiguous(*out, DType::kF32, {3, 8}));
  ASSERT_TRUE(s->dispatch(op).ok());
  float marker = 42.0f, back = 0.0f;
  ASSERT_TRUE(s->fill(*out, 0, 4, 0x3F800000u, 4).ok());  // skipped: out[0] stays unspecified
  Status st = s->synchronize();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("100"), std::string::npos) << st.to_string();
  // Usable again.
  ASSERT_TRUE(s->copy_from_host(&marker, *out, 0, 4).ok());
  ASSERT_TRUE(s->copy_to_host(*out, 0, &back, 4).ok());
  ASSERT_TRUE(s->synchronize().ok());
  EXPECT_EQ(back, 42.0f);
}

// ---- attention ----------------------------------------------------------------------

struct AttnCase {
  int64_t b, sq, skv, hq, hkv, d, dv;
  bool causal;
  int64_t kv_length, q_offset;
};

TEST(CudaOps, AttentionMatchesReference) {
  HAL_CUDA_GPU_OR_SKIP(d);
  const AttnCase cases[] = {
      {1, 1, 1, 1, 1, 16, 16, false, 0, -1},    {1, 5, 5, 4, 4, 64, 64, true, 0, -1},
      {2, 37, 37, 8, 2, 64, 64, true, 0, -1},   {1, 1, 300, 8, 2, 128, 128, true, 0, -1},
      {2, 1, 1000, 6, 1, 80, 80, true, 0, -1},  {1, 4, 200, 4, 4, 32, 48, false, 150, -1},
      {1, 3, 64, 2, 1, 256, 256, true, 40, 10}, {1, 40, 30, 2, 2, 16, 16, true, 0, 0},
      {3, 2, 100, 12, 4, 64, 64, false, 0, -1}, {1, 70, 70, 3, 3, 96, 96, true, 0, -1}};
  for (DType t : kFloats)
    for (const AttnCase& c : cases) {
      OpAttributes a;
      a.causal = c.causal;
      a.kv_length = c.kv_length;
      a.q_offset = c.q_offset;
      const OpSpec spec =
          make_spec(OpKind::kAttention, a,
                    {dense(t, {c.b, c.sq, c.hq, c.d}), dense(t, {c.b, c.skv, c.hkv, c.d}),
                     dense(t, {c.b, c.skv, c.hkv, c.dv})});
      expect_matches(*d, spec, {}, tol_for(t, {5e-5, 2e-4}), 40);
    }
}

TEST(CudaOps, AttentionStridedAndKvLengths) {
  HAL_CUDA_GPU_OR_SKIP(d);
  for (DType t : kFloats) {
    OpAttributes a;
    a.causal = true;
    a.scale = 0.3f;
    // A KV cache with room for 512 keys, per-batch valid lengths.
    const OpSpec spec =
        make_spec(OpKind::kAttention, a,
                  {layout_desc(t, {3, 2, 4, 64}, Layout::kPadded), dense(t, {3, 512, 2, 64}),
                   dense(t, {3, 512, 2, 64}), dense(DType::kI32, {3})},
                  DType::kInvalid, Layout::kPadded);
    const std::string err = run_and_compare(*d, spec, {}, tol_for(t, {5e-5, 2e-4}), 41,
                                            [](int i, const TensorDesc&, void* base) {
                                              if (i != 3) return false;
                                              const int32_t lens[3] = {1, 300, 512};
                                              std::memcpy(base, lens, sizeof lens);
                                              return true;
                                            });
    EXPECT_TRUE(err.empty()) << shape_text(spec) << ": " << err;
  }
}

TEST(CudaOps, AttentionKvLengthOutOfRangeFails) {
  HAL_CUDA_GPU_OR_SKIP(d);
  OpAttributes a;
  const OpSpec spec =
      make_spec(OpKind::kAttention, a,
                {dense(DType::kF32, {2, 1, 2, 16}), dense(DType::kF32, {2, 8, 2, 16}),
                 dense(DType::kF32, {2, 8, 2, 16}), dense(DType::kI32, {2})});
  const std::string err =
      run_and_compare(*d, spec, {}, Tol{}, 42, [](int i, const TensorDesc&, void* base) {
        if (i != 3) return false;
        const int32_t lens[2] = {8, 9};
        std::memcpy(base, lens, sizeof lens);
        return true;
      });
  EXPECT_NE(err.find("invalid argument"), std::string::npos) << err;
  EXPECT_NE(err.find("kv_lengths[1] = 9"), std::string::npos) << err;
}

TEST(CudaOps, SupportsEveryOpOnFloatTypes) {
  HAL_CUDA_GPU_OR_SKIP(d);
  for (DType t : kFloats) {
    EXPECT_TRUE(d->supports(make_spec(OpKind::kMatmul, {}, {dense(t, {4, 4}), dense(t, {4, 4})})));
    EXPECT_TRUE(d->supports(
        make_spec(OpKind::kAttention, {},
                  {dense(t, {1, 1, 1, 256}), dense(t, {1, 1, 1, 256}), dense(t, {1, 1, 1, 256})})));
    // Head dims beyond the kernel's registers are refused (the runtime falls back).
    EXPECT_FALSE(d->supports(
        make_spec(OpKind::kAttention, {},
                  {dense(t, {1, 1, 1, 512}), dense(t, {1, 1, 1, 512}), dense(t, {1, 1, 1, 512})})));
  }
}

}  // namespace
}  // namespace hal::cuda_test
