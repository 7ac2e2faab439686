// The CPU backend's attention, rotary and embedding kernels against the reference:
// prefill (causal, grouped-query, kv_lengths, q_offset), decode (one query, long cache,
// the split-key path), odd head dims; rotary in both styles with [S] and [B, S]
// positions and scaled inv_freq; embedding gathers and its out-of-range error.
#include <gtest/gtest.h>

#include "kernel_check.h"

namespace hal::cpu::testing {
namespace {

constexpr DType kFloatTypes[] = {DType::kF32, DType::kF16, DType::kBF16};
constexpr Tolerance kAttentionTol{2e-5, 1e-4};

OpSpec attention_spec(bool causal, float scale = 0.0f, int64_t kv_length = 0,
                      int64_t q_offset = -1) {
  OpSpec s;
  s.kind = OpKind::kAttention;
  s.attrs.causal = causal;
  s.attrs.scale = scale;
  s.attrs.kv_length = kv_length;
  s.attrs.q_offset = q_offset;
  return s;
}

TEST(CpuAttention, PrefillCausalGroupedQuery) {
  struct Case {
    int64_t b, sq, hq, skv, hkv, d, dv;
  };
  const Case cases[] = {
      {1, 1, 1, 1, 1, 1, 1},       // degenerate
      {2, 17, 4, 17, 2, 16, 16},   // GQA, one block of rows
      {1, 65, 6, 65, 6, 24, 40},   // several row and key blocks, odd widths
      {1, 33, 8, 100, 1, 64, 64},  // MQA, query block not at position 0
      {2, 5, 2, 129, 2, 7, 9},     // tiny odd head dims
      {2, 1, 6, 45, 3, 16, 16},    // decode: keys 8 at a time, then a tail of 5
      {1, 1, 4, 37, 2, 20, 24},    // decode with a head dim not a multiple of 8
  };
  for (const Case& c : cases)
    for (bool causal : {false, true})
      for (DType t : kFloatTypes) {
        HostTensor q = make_tensor(t, {c.b, c.sq, c.hq, c.d});
        HostTensor k = make_tensor(t, {c.b, c.skv, c.hkv, c.d});
        HostTensor v = make_tensor(t, {c.b, c.skv, c.hkv, c.dv});
        check_op(attention_spec(causal), {&q, &k, &v}, kAttentionTol);
      }
}

TEST(CpuAttention, StridedViewsAndExplicitScale) {
  for (Layout l : {Layout::kPadded, Layout::kTransposed}) {
    HostTensor q = make_tensor(DType::kF32, {2, 9, 4, 32}, l);
    HostTensor k = make_tensor(DType::kF32, {2, 70, 2, 32}, l);
    HostTensor v = make_tensor(DType::kF32, {2, 70, 2, 32}, l);
    check_op(attention_spec(true, 0.3f), {&q, &k, &v}, kAttentionTol, Layout::kPadded);
  }
}

TEST(CpuAttention, KvLengthsAndOffsets) {
  HostTensor q = make_tensor(DType::kF32, {3, 4, 4, 16});
  HostTensor k = make_tensor(DType::kF32, {3, 90, 2, 16});
  HostTensor v = make_tensor(DType::kF32, {3, 90, 2, 16});
  HostTensor lens = make_tensor(DType::kI32, {3});
  int32_t* l = static_cast<int32_t*>(lens.data());
  l[0] = 90;
  l[1] = 3;  // fewer keys than queries: causal rows before the first key see nothing
  l[2] = 0;  // an empty cache: zeros
  for (bool causal : {false, true})
    check_op(attention_spec(causal), {&q, &k, &v, &lens}, kAttentionTol);
  check_op(attention_spec(true, 0.0f, 50), {&q, &k, &v}, kAttentionTol);
  check_op(attention_spec(true, 0.0f, 0, 10), {&q, &k, &v}, kAttentionTol);
  check_op(attention_spec(true, 0.0f, 0, 0), {&q, &k, &v}, kAttentionTol);
}

TEST(CpuAttention, DecodeOneQueryLongCacheSplitsKeys) {
  for (DType t : kFloatTypes)
    for (int64_t hkv : {int64_t(1), int64_t(4)}) {
      // One sequence, few heads, 1500 cached keys: the split-key (flash-decoding) path.
      HostTensor q = make_tensor(t, {1, 1, 4, 64});
      HostTensor k = make_tensor(t, {1, 1500, hkv, 64});
      HostTensor v = make_tensor(t, {1, 1500, hkv, 64});
      check_op(attention_spec(true), {&q, &k, &v}, kAttentionTol);
      check_op(attention_spec(false, 0.0f, 1201), {&q, &k, &v}, kAttentionTol);
    }
}

TEST(CpuAttention, BadKvLengthFailsWithMessage) {
  OpSpec s = attention_spec(true);
  HostTensor q = make_tensor(DType::kF32, {2, 1, 1, 4});
  HostTensor k = make_tensor(DType::kF32, {2, 8, 1, 4});
  HostTensor lens = make_tensor(DType::kI32, {2});
  static_cast<int32_t*>(lens.data())[0] = 4;
  static_cast<int32_t*>(lens.data())[1] = 9;
  s.num_inputs = 4;
  s.inputs = {q.desc, k.desc, k.desc, lens.desc};
  s.output = TensorDesc::contiguous(DType::kF32, {2, 1, 1, 4});
  ASSERT_TRUE(validate_op(s).ok());
  std::vector<float> out(8);
  const void* in[4] = {q.data(), k.data(), k.data(), lens.data()};
  const Status st = run_op(s, in, out.data());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("kv_lengths[1] = 9 outside [0, 8]"), std::string::npos)
      << st.message();
}

TEST(CpuRotary, BothStylesPositionsAndPartialDims) {
  for (RopeStyle style : {RopeStyle::kRotateHalf, RopeStyle::kInterleaved})
    for (DType t : kFloatTypes)
      for (int32_t rotary_dim : {0, 8}) {
        HostTensor x = make_tensor(t, {2, 5, 3, 16});
        HostTensor pos1 = make_tensor(DType::kI32, {5}, Layout::kDense, 0.0, 4000.0);
        HostTensor pos2 = make_tensor(DType::kI64, {2, 5}, Layout::kPadded, 0.0, 100.0);
        OpSpec s;
        s.kind = OpKind::kRotary;
        s.attrs.rope_style = style;
        s.attrs.rotary_dim = rotary_dim;
        check_op(s, {&x, &pos1}, kAttentionTol);
        check_op(s, {&x, &pos2}, kAttentionTol, Layout::kPadded);
        HostTensor xt = make_tensor(t, {7, 2, 10}, Layout::kTransposed);
        HostTensor pos3 = make_tensor(DType::kI32, {7}, Layout::kDense, 0.0, 50.0);
        s.attrs.rotary_dim = rotary_dim == 0 ? 0 : 6;
        check_op(s, {&xt, &pos3}, kAttentionTol);
      }
}

TEST(CpuRotary, ScaledInverseFrequencies) {
  HostTensor x = make_tensor(DType::kF32, {1, 9, 2, 12});
  HostTensor pos = make_tensor(DType::kI32, {9}, Layout::kDense, 0.0, 20000.0);
  HostTensor inv = make_tensor(DType::kF32, {6}, Layout::kPadded, 0.0, 1.0);
  OpSpec s;
  s.kind = OpKind::kRotary;
  check_op(s, {&x, &pos, &inv}, kAttentionTol);
}

// The kernel keeps each thread's last angles (cos/sin per position and table): a rotary
// at the same positions with another table, another rotary_dim or the theta formula
// must not reuse them.
TEST(CpuRotary, SamePositionsWithAnotherTableAreRecomputed) {
  HostTensor x = make_tensor(DType::kF32, {1, 3, 4, 16});
  HostTensor pos = make_tensor(DType::kI32, {3}, Layout::kDense, 0.0, 300.0);
  HostTensor table_a = make_tensor(DType::kF32, {8}, Layout::kDense, 0.0, 1.0);
  HostTensor table_b = make_tensor(DType::kF32, {8}, Layout::kDense, 0.0, 1.0);
  HostTensor table_short = make_tensor(DType::kF32, {4}, Layout::kDense, 0.0, 1.0);
  OpSpec s;
  s.kind = OpKind::kRotary;
  for (int round = 0; round < 2; ++round) {
    s.attrs.rotary_dim = 0;
    check_op(s, {&x, &pos, &table_a}, kAttentionTol);
    check_op(s, {&x, &pos, &table_b}, kAttentionTol);
    check_op(s, {&x, &pos}, kAttentionTol);  // theta^(-2i/d)
    s.attrs.rope_theta = 500000.0f;
    check_op(s, {&x, &pos}, kAttentionTol);
    s.attrs.rope_theta = 10000.0f;
    s.attrs.rotary_dim = 8;
    check_op(s, {&x, &pos, &table_short}, kAttentionTol);
  }
}

TEST(CpuEmbedding, GathersRowsForEveryDtypeAndLayout) {
  for (DType t : kFloatTypes)
    for (DType id_type : {DType::kI32, DType::kI64})
      for (Layout l : {Layout::kDense, Layout::kPadded, Layout::kTransposed}) {
        HostTensor table = make_tensor(t, {50, 17}, l);
        HostTensor ids = make_tensor(id_type, {3, 4}, l, 0.0, 49.99);
        OpSpec s;
        s.kind = OpKind::kEmbedding;
        check_op(s, {&table, &ids}, Tolerance{0.0, 0.0},
                 l == Layout::kDense ? Layout::kDense : Layout::kPadded);
      }
}

TEST(CpuEmbedding, OutOfRangeIdFailsAndLeavesOutputUntouched) {
  HostTensor table = make_tensor(DType::kF32, {10, 4});
  for (int64_t bad : {int64_t(10), int64_t(-1), int64_t(1) << 40}) {
    HostTensor ids = make_tensor(DType::kI64, {2, 3}, Layout::kDense, 0.0, 9.0);
    static_cast<int64_t*>(ids.data())[4] = bad;
    OpSpec s;
    s.kind = OpKind::kEmbedding;
    s.num_inputs = 2;
    s.inputs[0] = table.desc;
    s.inputs[1] = ids.desc;
    s.output = TensorDesc::contiguous(DType::kF32, {2, 3, 4});
    ASSERT_TRUE(validate_op(s).ok());
    std::vector<float> out(24, 7.0f);
    const void* in[2] = {table.data(), ids.data()};
    const Status st = run_op(s, in, out.data());
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("id " + std::to_string(bad) + " at ids[1, 1]"), std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("[0, 10)"), std::string::npos) << st.message();
    for (float f : out) EXPECT_EQ(f, 7.0f);
  }
}

TEST(CpuKernels, SupportsEveryOpButFp8) {
  OpSpec s;
  s.kind = OpKind::kAdd;
  s.num_inputs = 2;
  s.inputs[0] = TensorDesc::contiguous(DType::kF32, {4});
  s.inputs[1] = TensorDesc::contiguous(DType::kF32, {4});
  s.output = TensorDesc::contiguous(DType::kF32, {4});
  EXPECT_TRUE(kernel_supports(s));
  s.inputs[1].dtype = DType::kFP8E4M3;
  EXPECT_FALSE(kernel_supports(s));
  s.inputs[1].dtype = DType::kBF16;
  s.output.dtype = DType::kFP8E5M2;
  EXPECT_FALSE(kernel_supports(s));
}

}  // namespace
}  // namespace hal::cpu::testing
