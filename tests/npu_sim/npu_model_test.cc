// The NPU performance model: roofline sanity, traffic in closed form, bounds of decode-
// and prefill-shaped matmuls, and the engine calendars behind simulated time.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "npu_perf_model.h"
#include "npu_spec.h"
#include "npu_timeline.h"

namespace hal::npu_sim {
namespace {

OpSpec make_op(OpKind kind, std::vector<TensorDesc> inputs, OpAttributes attrs = {},
               DType out_dtype = DType::kInvalid) {
  OpSpec s;
  s.kind = kind;
  s.attrs = attrs;
  s.num_inputs = int32_t(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) s.inputs[i] = inputs[i];
  auto out = infer_output(kind, attrs, s.inputs.data(), s.num_inputs);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  s.output = *out;
  if (out_dtype != DType::kInvalid) s.output.dtype = out_dtype;
  EXPECT_TRUE(validate_op(s).ok()) << validate_op(s).to_string();
  return s;
}

TensorDesc t(DType d, Shape s) { return TensorDesc::contiguous(d, s); }

OpSpec matmul(DType d, int64_t m, int64_t k, int64_t n, bool bias = false) {
  std::vector<TensorDesc> in = {t(d, {m, k}), t(d, {k, n})};
  if (bias) in.push_back(t(d, {n}));
  return make_op(OpKind::kMatmul, in);
}

OpSpec attention(DType d, int64_t b, int64_t sq, int64_t hq, int64_t skv, int64_t hkv, int64_t dim,
                 bool causal) {
  OpAttributes a;
  a.causal = causal;
  return make_op(OpKind::kAttention,
                 {t(d, {b, sq, hq, dim}), t(d, {b, skv, hkv, dim}), t(d, {b, skv, hkv, dim})}, a);
}

// A representative sweep of op shapes (transformer layers of several sizes).
std::vector<OpSpec> sweep() {
  std::vector<OpSpec> ops;
  for (DType d : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (auto [m, k, n] : std::vector<std::array<int64_t, 3>>{{1, 4096, 4096},
                                                              {7, 300, 501},
                                                              {128, 768, 2304},
                                                              {2048, 4096, 4096},
                                                              {8192, 8192, 8192},
                                                              {1, 8192, 128256},
                                                              {33, 64, 17}})
      ops.push_back(matmul(d, m, k, n, m == 128));
    ops.push_back(make_op(OpKind::kMatmul, {t(d, {12, 64, 128}), t(d, {12, 128, 64})}));
    ops.push_back(make_op(OpKind::kMatmul, {t(d, {4, 16, 512}), t(d, {512, 256})}));
    ops.push_back(attention(d, 1, 1, 32, 4096, 8, 128, true));
    ops.push_back(attention(d, 2, 512, 12, 512, 12, 64, true));
    ops.push_back(attention(d, 1, 2048, 32, 2048, 8, 128, true));
    ops.push_back(attention(d, 4, 16, 8, 1000, 2, 64, false));
    ops.push_back(make_op(OpKind::kLayerNorm, {t(d, {512, 768}), t(d, {768}), t(d, {768})}));
    ops.push_back(make_op(OpKind::kRmsNorm, {t(d, {2048, 4096}), t(d, {4096})}));
    ops.push_back(make_op(OpKind::kSoftmax, {t(d, {12, 512, 512})}));
    ops.push_back(make_op(OpKind::kAdd, {t(d, {512, 768}), t(d, {768})}));
    ops.push_back(make_op(OpKind::kGelu, {t(d, {512, 3072})}));
    ops.push_back(make_op(OpKind::kSilu, {t(d, {1, 14336})}));
    ops.push_back(make_op(OpKind::kEmbedding, {t(d, {50257, 768}), t(DType::kI32, {4, 128})}));
    ops.push_back(make_op(OpKind::kArgmax, {t(d, {4, 128256})}));
    OpAttributes perm;
    perm.perm = {0, 2, 1, 3, 4, 5, 6, 7};
    ops.push_back(make_op(OpKind::kTranspose, {t(d, {2, 128, 12, 64})}, perm));
    ops.push_back(make_op(OpKind::kCast, {t(d, {1024, 1024})}, {}, DType::kF32));
  }
  return ops;
}

class NpuModelPresets : public ::testing::TestWithParam<std::string> {};

// No command is faster than its roofline: FLOPs at the dtype's peak, and the analytic
// minimum traffic at the peak memory bandwidth; and the modelled traffic is never below
// that minimum.
TEST_P(NpuModelPresets, NoOpBeatsTheRoofline) {
  auto spec = preset(GetParam());
  ASSERT_TRUE(spec.ok());
  const PerfModel model(*spec);
  for (const OpSpec& op : sweep()) {
    SCOPED_TRACE(std::string(op_kind_name(op.kind)) + " " + op.inputs[0].to_string() + " x " +
                 op.inputs[1].to_string());
    const OpCost a = analytic_cost(op);
    const CommandCost c = model.op(op);
    const double peak = spec->matrix_peak(op.inputs[0].dtype);
    ASSERT_GT(peak, 0);
    const double roof = std::max(a.flops / peak, double(a.bytes_read + a.bytes_written) /
                                                     spec->memory_bandwidth_bytes_per_s);
    EXPECT_GE(c.duration_s, roof);
    EXPECT_GE(c.dram_bytes_read, a.bytes_read);
    EXPECT_GE(c.dram_bytes_written, a.bytes_written);
    EXPECT_EQ(c.flops, a.flops);
    EXPECT_GT(c.duration_s, 0);
    EXPECT_GE(c.duration_s, spec->command_overhead_s);
    EXPECT_NE(c.bound, BoundBy::kUnknown);
    if (op_class(op.kind) == OpClass::kVector) {
      EXPECT_GE(c.duration_s, a.flops / spec->vector_flops);
    }
  }
}

TEST_P(NpuModelPresets, DecodeMatmulIsMemoryBoundAndPrefillComputeBound) {
  auto spec = preset(GetParam());
  ASSERT_TRUE(spec.ok());
  const PerfModel model(*spec);
  const CommandCost decode = model.op(matmul(DType::kBF16, 1, 4096, 4096));
  EXPECT_EQ(decode.bound, BoundBy::kMemory);
  EXPECT_GT(decode.memory_s, decode.compute_s);
  // The weights stream once: time is their bytes at the sustained bandwidth.
  EXPECT_NEAR(decode.memory_s,
              (4096.0 * 4096 * 2 + 2 * 4096 * 2) / spec->sustained_memory_bandwidth(), 1e-12);
  const CommandCost prefill = model.op(matmul(DType::kBF16, 2048, 4096, 4096));
  EXPECT_EQ(prefill.bound, BoundBy::kCompute);
  EXPECT_GT(prefill.compute_s, prefill.memory_s);
  // Full tiles on every engine: compute at the dtype's peak.
  EXPECT_DOUBLE_EQ(prefill.utilization, 1.0);
  EXPECT_NEAR(prefill.compute_s, 2.0 * 2048 * 4096 * 4096 / spec->matrix_peak(DType::kBF16), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Presets, NpuModelPresets,
                         ::testing::Values("atom", "rebel-quad", "atom-max"));

TEST(NpuModel, SmallMWastesTheMacArray) {
  auto spec = preset("atom");
  const PerfModel model(*spec);
  EXPECT_DOUBLE_EQ(model.op(matmul(DType::kBF16, 1, 1024, 4096)).utilization, 1.0 / 32);
  EXPECT_DOUBLE_EQ(model.op(matmul(DType::kBF16, 16, 1024, 4096)).utilization, 16.0 / 32);
  EXPECT_DOUBLE_EQ(model.op(matmul(DType::kBF16, 32, 1024, 4096)).utilization, 1.0);
  // 40 rows need two row tiles of 32.
  EXPECT_DOUBLE_EQ(model.op(matmul(DType::kBF16, 40, 1024, 4096)).utilization, 40.0 / 64);
  // One 32x32 output tile keeps one engine of eight busy.
  EXPECT_DOUBLE_EQ(model.op(matmul(DType::kBF16, 32, 1024, 32)).utilization, 1.0 / 8);
}

// When operands fit in SRAM the model moves exactly the analytic minimum, and SRAM
// traffic is DMA in + out plus the engines' operand fetches.
TEST(NpuModel, TrafficEqualsTheMinimumWhenEverythingFits) {
  auto spec = preset("atom");
  const PerfModel model(*spec);
  const std::vector<OpSpec> ops = {
      matmul(DType::kF32, 64, 256, 128, true),
      make_op(OpKind::kMatmul, {t(DType::kBF16, {8, 64, 128}), t(DType::kBF16, {128, 96})}),
      make_op(OpKind::kAdd, {t(DType::kF32, {256, 768}), t(DType::kF32, {768})}),
      make_op(OpKind::kLayerNorm,
              {t(DType::kBF16, {512, 768}), t(DType::kBF16, {768}), t(DType::kBF16, {768})}),
      make_op(OpKind::kSoftmax, {t(DType::kF32, {12, 128, 128})}),
      make_op(OpKind::kEmbedding, {t(DType::kF32, {1000, 64}), t(DType::kI64, {3, 5})}),
      attention(DType::kBF16, 1, 1, 32, 4096, 8, 128, false),
      attention(DType::kF16, 2, 64, 8, 64, 8, 64, true),
  };
  for (const OpSpec& op : ops) {
    SCOPED_TRACE(std::string(op_kind_name(op.kind)) + " " + op.inputs[0].to_string());
    const OpCost a = analytic_cost(op);
    const CommandCost c = model.op(op);
    EXPECT_EQ(c.dram_bytes_read, a.bytes_read);
    EXPECT_EQ(c.dram_bytes_written, a.bytes_written);
    EXPECT_GE(c.sram_bytes_written, c.dram_bytes_read + c.dram_bytes_written);
    EXPECT_GE(c.sram_bytes_read, c.dram_bytes_written);
  }
  // Matmul SRAM reads in closed form: A once per column of arrays, B once per row of
  // arrays, and the result drained once.
  const CommandCost mm = model.op(matmul(DType::kBF16, 64, 256, 128));
  const uint64_t a_bytes = 64 * 256 * 2, b_bytes = 256 * 128 * 2, o_bytes = 64 * 128 * 2;
  EXPECT_EQ(mm.sram_bytes_read, a_bytes * (128 / 32) + b_bytes * (64 / 32) + o_bytes);
  EXPECT_EQ(mm.sram_bytes_written, a_bytes + b_bytes + o_bytes);
  EXPECT_EQ(mm.staging, MatmulStaging::kResidentA);
}

// A device with little SRAM cannot keep either operand resident: A is re-read once per
// column tile and B once per row tile.
TEST(NpuModel, TiledMatmulReReadsOperandsInClosedForm) {
  auto spec = parse_spec(R"({"extends": "atom", "name": "tiny-sram",
      "sram_local_bytes_per_engine": 0, "sram_shared_bytes": 262144, "sram_usable_fraction": 1.0})",
                         "test spec");
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  const PerfModel model(*spec);
  const int64_t m = 512, k = 512, n = 512;
  const CommandCost c = model.op(matmul(DType::kF32, m, k, n));
  ASSERT_EQ(c.staging, MatmulStaging::kTiled);
  const uint64_t a = m * k * 4, b = k * n * 4;
  const uint64_t rep_a = uint64_t((n + c.tile_n - 1) / c.tile_n),
                 rep_b = uint64_t((m + c.tile_m - 1) / c.tile_m);
  EXPECT_GT(rep_a * rep_b, 1u);
  EXPECT_EQ(c.dram_bytes_read, a * rep_a + b * rep_b);
  EXPECT_EQ(c.dram_bytes_written, uint64_t(m * n * 4));
  EXPECT_GT(c.dram_bytes_read, analytic_cost(matmul(DType::kF32, m, k, n)).bytes_read);
  // The chosen tile (double-buffered panels of up to 256 deep + fp32 accumulators) fits.
  const double kc = 256;
  EXPECT_LE(2 * kc * (c.tile_m * 4 + c.tile_n * 4) + c.tile_m * c.tile_n * 4, model.sram_budget());
}

// Attention whose query block does not fit streams K/V again per block.
TEST(NpuModel, AttentionReReadsKvPerQueryBlockWhenSramIsShort) {
  auto spec = parse_spec(R"({"extends": "atom", "name": "tiny-sram",
      "neural_engines": 1, "sram_local_bytes_per_engine": 0, "sram_shared_bytes": 262144,
      "sram_usable_fraction": 1.0})",
                         "test spec");
  ASSERT_TRUE(spec.ok()) << spec.status().to_string();
  const PerfModel model(*spec);
  const int64_t B = 1, S = 1024, H = 4, D = 64;
  const OpSpec op = attention(DType::kBF16, B, S, H, S, H, D, false);
  const CommandCost c = model.op(op);
  ASSERT_GT(c.kv_passes, 1);
  const uint64_t q = B * S * H * D * 2, kv_row = (D + D) * 2;
  EXPECT_EQ(c.dram_bytes_read, q + uint64_t(B * H * c.kv_passes * S) * kv_row);
  EXPECT_GT(c.dram_bytes_read, analytic_cost(op).bytes_read);
}

TEST(NpuModel, CopiesTakeLatencyPlusBytesOverTheLink) {
  auto spec = preset("atom");
  const PerfModel model(*spec);
  const uint64_t bytes = 256 << 20;
  const CommandCost h2d = model.copy_host_to_device(bytes);
  EXPECT_DOUBLE_EQ(h2d.duration_s, 2e-6 + double(bytes) / 50e9);
  EXPECT_EQ(h2d.bound, BoundBy::kLink);
  EXPECT_EQ(h2d.link_bytes, bytes);
  EXPECT_EQ(h2d.dram_bytes_written, bytes);
  const CommandCost d2d = model.copy_on_device(bytes);
  EXPECT_DOUBLE_EQ(d2d.duration_s, 3e-6 + 2.0 * double(bytes) / (256e9 * 0.8));
  EXPECT_EQ(d2d.bound, BoundBy::kMemory);
  const CommandCost fill = model.fill(64);
  EXPECT_EQ(fill.bound, BoundBy::kOverhead);

  auto max = preset("atom-max");
  const CommandCost peer = PerfModel::copy_peer(bytes, *max, *max, true);
  EXPECT_DOUBLE_EQ(peer.duration_s, 2e-6 + double(bytes) / 50e9);
  const CommandCost staged = PerfModel::copy_peer(bytes, *spec, *spec, false);
  EXPECT_DOUBLE_EQ(staged.duration_s, 4e-6 + double(bytes) / 50e9);
}

TEST(NpuModel, ChipletsPayForActivationsCrossingDieToDieLinks) {
  auto quad = preset("rebel-quad");
  const PerfModel model(*quad);
  const CommandCost c = model.op(matmul(DType::kBF16, 2048, 4096, 4096));
  const double a_bytes = 2048.0 * 4096 * 2;
  EXPECT_NEAR(c.link_s, 3 * a_bytes / (4 * 1e12) + 11e-9, 1e-12);
}

// ---- calendars --------------------------------------------------------------------------

TEST(NpuTimeline, CommandsFillGapsAndNeverOverlap) {
  BusyCalendar cal;
  uint64_t s = 0;
  EXPECT_EQ(cal.reserve(100, 50, &s), 150u);
  EXPECT_EQ(s, 100u);
  EXPECT_EQ(cal.reserve(0, 50, &s), 50u);  // fits before the first booking
  EXPECT_EQ(s, 0u);
  EXPECT_EQ(cal.reserve(0, 60, &s), 210u);  // the 50-wide gap is too small
  EXPECT_EQ(s, 150u);
  EXPECT_EQ(cal.reserve(10, 0, &s), 10u);  // zero-length books nothing
  EXPECT_EQ(cal.busy_ns(), 160u);
  EXPECT_EQ(cal.last_end_ns(), 210u);
  EXPECT_EQ(cal.interval_count(), 2u);  // [0,50) and [100,210) merged where touching
}

TEST(NpuTimeline, ReserveTogetherFindsASlotFreeOnBoth) {
  BusyCalendar a, b;
  a.book(0, 100);
  b.book(100, 100);
  uint64_t s = 0;
  EXPECT_EQ(reserve_together(a, b, 0, 50, &s), 250u);
  EXPECT_EQ(s, 200u);
  EXPECT_EQ(a.busy_ns(), 150u);
  EXPECT_EQ(b.busy_ns(), 150u);
}

TEST(NpuTimeline, IntervalCountStaysBounded) {
  BusyCalendar cal;
  for (uint64_t i = 0; i < BusyCalendar::kMaxIntervals + 100; ++i) cal.book(i * 10, 5);
  EXPECT_LE(cal.interval_count(), BusyCalendar::kMaxIntervals);
  uint64_t s = 0;
  cal.reserve(0, 5, &s);
  EXPECT_GE(s, 5u);  // merged old gaps count as busy
}

}  // namespace
}  // namespace hal::npu_sim
