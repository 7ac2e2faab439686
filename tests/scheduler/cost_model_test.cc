// Cost model: the roofline from DeviceInfo, links, and calibration (fit, file format,
// storage and automatic loading).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "hal/scheduler/calibration.h"
#include "hal/scheduler/cost_model.h"

namespace hal::scheduler {
namespace {

DeviceInfo npu_info() {
  DeviceInfo d;
  d.id = "npu:0";
  d.backend = "npu_sim";
  d.name = "RBLN-CA12 (simulated)";
  d.kind = DeviceKind::kNpu;
  d.memory_bytes = 16ull << 30;
  d.memory_bandwidth_bytes_per_s = 256e9;
  d.peak_flops[DType::kF16] = 32e12;
  d.peak_flops[DType::kBF16] = 32e12;
  d.peak_flops[DType::kI8] = 128e12;
  d.launch_overhead_s = 3e-6;
  LinkInfo host;
  host.peer = "host";
  host.kind = "pcie-gen5-x16";
  host.bandwidth_bytes_per_s = 50e9;
  host.latency_s = 2e-6;
  d.links.push_back(host);
  return d;
}

DeviceInfo cpu_info() {
  DeviceInfo d;
  d.id = "cpu:0";
  d.backend = "cpu";
  d.name = "Test CPU 9000";
  d.kind = DeviceKind::kCpu;
  d.memory_bytes = 64ull << 30;
  d.memory_bandwidth_bytes_per_s = 40e9;
  d.peak_flops[DType::kF32] = 1e12;
  d.launch_overhead_s = 1e-6;
  LinkInfo host;
  host.peer = "host";
  host.kind = "memory-bus";
  host.bandwidth_bytes_per_s = 20e9;
  host.latency_s = 1e-7;
  d.links.push_back(host);
  return d;
}

OpWork work(OpClass c, DType t, double flops, double bytes) {
  OpWork w;
  w.op_class = c;
  w.dtype = t;
  w.flops = flops;
  w.bytes = bytes;
  return w;
}

// The f32 calibration of a memory-bound op kind (no FLOP rate), samples to be added.
OpCalibration memory_bound_calibration(OpKind op, double overhead_s, double bytes_per_s) {
  OpCalibration c;
  c.op = op;
  c.dtype = DType::kF32;
  c.overhead_s = overhead_s;
  c.bytes_per_s = bytes_per_s;
  return c;
}

// A calibration of cpu_info()'s device with op kind calibrations only.
Calibration calibration_of(std::vector<OpCalibration> ops) {
  Calibration cal;
  cal.device_name = "Test CPU 9000";
  cal.backend = "cpu";
  cal.ops = std::move(ops);
  return cal;
}

TEST(Roofline, ComputeBoundMatmul) {
  const DeviceCostModel m(npu_info());
  const OpWork w = work(OpClass::kMatrix, DType::kF16, 2e12, 1e9);
  const OpEstimate e = m.estimate(w);
  const Efficiency eff = kDefaultEfficiency[0];
  EXPECT_DOUBLE_EQ(e.compute_s, 2e12 / (32e12 * eff.compute));
  EXPECT_DOUBLE_EQ(e.memory_s, 1e9 / (256e9 * eff.memory));
  EXPECT_DOUBLE_EQ(e.seconds, e.compute_s + 3e-6);
  EXPECT_EQ(e.bound, Bound::kCompute);
}

TEST(Roofline, MemoryBoundDecodeMatmulAndDtypePeaks) {
  const DeviceCostModel m(npu_info());
  // A decode matmul: 1 x 4096 @ 4096 x 4096 in f16 reads 32 MiB of weights for 33 MFLOP.
  const OpWork w = work(OpClass::kMatrix, DType::kF16, 2.0 * 4096 * 4096, 2.0 * 4096 * 4096);
  const OpEstimate e = m.estimate(w);
  EXPECT_EQ(e.bound, Bound::kMemory);
  EXPECT_DOUBLE_EQ(e.seconds, 2.0 * 4096 * 4096 / (256e9 * kDefaultEfficiency[0].memory) + 3e-6);
  // int8 uses its own peak; f32 is not listed and falls back to f32's (absent: 0) ->
  // infinite: the model never places an op on a device without a peak for it.
  const OpWork i8 = work(OpClass::kMatrix, DType::kI8, 1e12, 1);
  EXPECT_DOUBLE_EQ(m.estimate(i8).compute_s, 1e12 / (128e12 * kDefaultEfficiency[0].compute));
  EXPECT_TRUE(std::isinf(m.seconds(work(OpClass::kMatrix, DType::kF32, 1e9, 1e6))));
  EXPECT_EQ(m.seconds(work(OpClass::kData, DType::kF32, 0, 0)), 3e-6);
}

TEST(Roofline, OverheadBoundAndVectorPeakProperty) {
  DeviceInfo info = npu_info();
  const DeviceCostModel plain(info);
  const OpWork tiny = work(OpClass::kVector, DType::kF16, 100, 400);
  EXPECT_EQ(plain.bound(tiny), Bound::kOverhead);
  // A plugin reporting its vector-unit rate makes vector ops compute against it.
  info.properties.emplace_back("vector_flops", "2e12");
  const DeviceCostModel with_vector(info);
  const OpWork gelu = work(OpClass::kVector, DType::kF16, 8e7, 4e6);
  EXPECT_DOUBLE_EQ(with_vector.estimate(gelu).compute_s,
                   8e7 / (2e12 * kDefaultEfficiency[1].compute));
  EXPECT_EQ(with_vector.bound(gelu), Bound::kCompute);
  EXPECT_EQ(plain.bound(gelu), Bound::kMemory);
  // A malformed property is ignored rather than trusted.
  info.properties.back().second = "fast";
  EXPECT_DOUBLE_EQ(DeviceCostModel(info).peak_flops(OpClass::kVector, DType::kF16), 32e12);
}

TEST(Roofline, OpWorkFromSpecUsesAnalyticCost) {
  OpSpec spec;
  spec.kind = OpKind::kMatmul;
  spec.num_inputs = 2;
  spec.inputs[0] = TensorDesc::contiguous(DType::kF16, {8, 64});
  spec.inputs[1] = TensorDesc::contiguous(DType::kF16, {64, 32});
  spec.output = TensorDesc::contiguous(DType::kF16, {8, 32});
  const OpWork w = OpWork::from_spec(spec);
  EXPECT_EQ(w.op_class, OpClass::kMatrix);
  EXPECT_EQ(w.dtype, DType::kF16);
  EXPECT_DOUBLE_EQ(w.flops, 2.0 * 8 * 32 * 64);
  EXPECT_DOUBLE_EQ(w.bytes, 2.0 * (8 * 64 + 64 * 32 + 8 * 32));
}

TEST(Links, PeerLinkElseHostStaged) {
  DeviceInfo a = npu_info();
  DeviceInfo b = npu_info();
  b.id = "npu:1";
  DeviceInfo c = cpu_info();
  LinkInfo peer;
  peer.peer = "npu:1";
  peer.kind = "pcie-p2p";
  peer.bandwidth_bytes_per_s = 30e9;
  peer.latency_s = 5e-6;
  a.links.push_back(peer);
  EXPECT_EQ(link_between(a, b).kind, "pcie-p2p");
  const LinkInfo back = link_between(b, a);  // b lists no peer link
  EXPECT_EQ(back.kind, "host-staged");
  EXPECT_DOUBLE_EQ(back.bandwidth_bytes_per_s, 50e9);
  EXPECT_DOUBLE_EQ(back.latency_s, 4e-6);
  const LinkInfo to_cpu = link_between(a, c);
  EXPECT_DOUBLE_EQ(to_cpu.bandwidth_bytes_per_s, 20e9);  // the slower host link
  EXPECT_DOUBLE_EQ(to_cpu.latency_s, 2e-6 + 1e-7);

  const CostModel model = CostModel::from_infos({a, b, c}, CalibrationOptions{false, {}});
  EXPECT_EQ(model.transfer_seconds(0, 0, 1e9), 0.0);
  EXPECT_DOUBLE_EQ(model.transfer_seconds(0, 1, 3e9), 5e-6 + 0.1);
  EXPECT_DOUBLE_EQ(model.transfer_seconds(1, 0, 5e9), 4e-6 + 0.1);
  EXPECT_DOUBLE_EQ(model.transfer_seconds(2, 0, 0), 2e-6 + 1e-7);  // latency only
  LinkCost none{"none", 0, 0};
  EXPECT_TRUE(std::isinf(none.seconds(1)));
}

// Samples generated from a known roofline, as `halctl bench --calibrate` would measure.
std::vector<CalibrationSample> synthetic_samples(const DeviceInfo& info, Efficiency matrix,
                                                 Efficiency vector, double noise) {
  std::vector<CalibrationSample> out;
  uint64_t state = 7;
  auto jitter = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return 1.0 + noise * (double(state >> 11) * 0x1.0p-53 * 2 - 1);
  };
  const double pf = info.peak_flops_for(DType::kF16);
  const double pb = info.memory_bandwidth_bytes_per_s;
  for (double n : {256.0, 512.0, 1024.0, 2048.0, 4096.0}) {
    // Square matmuls (compute bound) and matrix-vector products (memory bound).
    const double f1 = 2 * n * n * n, b1 = 3 * 2 * n * n;
    const double f2 = 2 * n * n, b2 = 2 * n * n;
    for (auto [f, b] : {std::pair{f1, b1}, std::pair{f2, b2}}) {
      const double t = std::max(f / (pf * matrix.compute), b / (pb * matrix.memory));
      out.push_back({OpClass::kMatrix, DType::kF16, f, b, t * jitter() + info.launch_overhead_s});
    }
    const double bv = 4 * n * n;
    out.push_back({OpClass::kVector, DType::kF16, n * n, bv,
                   bv / (pb * vector.memory) * jitter() + info.launch_overhead_s});
  }
  return out;
}

TEST(Calibration, FitRecoversTheEfficienciesThatMadeTheSamples) {
  const DeviceInfo info = npu_info();
  const Efficiency matrix{0.62, 0.71}, vector{0.5, 0.44};
  const auto samples = synthetic_samples(info, matrix, vector, 0.0);
  auto cal = fit_calibration(info, samples);
  ASSERT_TRUE(cal.ok()) << cal.status().to_string();
  EXPECT_EQ(cal->device_name, info.name);
  EXPECT_EQ(cal->backend, "npu_sim");
  ASSERT_NE(cal->for_class(OpClass::kMatrix), nullptr);
  EXPECT_NEAR(cal->for_class(OpClass::kMatrix)->efficiency.compute, 0.62, 1e-9);
  EXPECT_NEAR(cal->for_class(OpClass::kMatrix)->efficiency.memory, 0.71, 1e-9);
  EXPECT_EQ(cal->for_class(OpClass::kMatrix)->samples, 10);
  ASSERT_NE(cal->for_class(OpClass::kVector), nullptr);
  EXPECT_NEAR(cal->for_class(OpClass::kVector)->efficiency.memory, 0.44, 1e-9);
  EXPECT_EQ(cal->for_class(OpClass::kData), nullptr);  // no samples: defaults stay

  // With the calibration the model predicts the measured times.
  const DeviceCostModel model(info, *cal);
  for (const CalibrationSample& s : samples)
    EXPECT_NEAR(model.seconds(work(s.op_class, s.dtype, s.flops, s.bytes)), s.seconds,
                1e-9 * s.seconds);
}

TEST(Calibration, NoisySamplesStayClose) {
  const DeviceInfo info = npu_info();
  auto cal = fit_calibration(info, synthetic_samples(info, {0.62, 0.71}, {0.5, 0.44}, 0.05));
  ASSERT_TRUE(cal.ok());
  EXPECT_NEAR(cal->for_class(OpClass::kMatrix)->efficiency.compute, 0.62, 0.62 * 0.06);
  EXPECT_NEAR(cal->for_class(OpClass::kMatrix)->efficiency.memory, 0.71, 0.71 * 0.06);
}

TEST(Calibration, SizeBucketsInterpolateSmallAndLargeOps) {
  const DeviceInfo info = npu_info();
  const double pb = info.memory_bandwidth_bytes_per_s;
  std::vector<CalibrationSample> samples;
  // Small copies reach 20% of the bandwidth, large ones 80%.
  for (double bytes : {1e4, 2e4, 5e4})
    samples.push_back(
        {OpClass::kData, DType::kF16, 0, bytes, bytes / (pb * 0.2) + info.launch_overhead_s});
  for (double bytes : {1e8, 2e8, 5e8})
    samples.push_back(
        {OpClass::kData, DType::kF16, 0, bytes, bytes / (pb * 0.8) + info.launch_overhead_s});
  auto cal = fit_calibration(info, samples);
  ASSERT_TRUE(cal.ok());
  const ClassCalibration* data = cal->for_class(OpClass::kData);
  ASSERT_NE(data, nullptr);
  ASSERT_EQ(data->buckets.size(), 2u);
  const DeviceCostModel model(info, *cal);
  EXPECT_NEAR(model.efficiency(OpClass::kData, 1e4 / pb).memory, 0.2, 1e-9);  // clamped below
  EXPECT_NEAR(model.efficiency(OpClass::kData, 1e9 / pb).memory, 0.8, 1e-9);  // clamped above
  const double mid = model.efficiency(OpClass::kData, 1e6 / pb).memory;
  EXPECT_GT(mid, 0.2);
  EXPECT_LT(mid, 0.8);
  // Continuous and monotone in size between the buckets.
  double last = 0;
  for (double b = 1e4; b <= 1e9; b *= 1.5) {
    const double e = model.efficiency(OpClass::kData, b / pb).memory;
    EXPECT_GE(e, last - 1e-12);
    last = e;
  }
}

TEST(Calibration, FitsTheOverheadWhenAsked) {
  DeviceInfo info = npu_info();
  const auto samples = synthetic_samples(info, {0.6, 0.7}, {0.5, 0.5}, 0.0);
  info.launch_overhead_s = 0;  // the device did not report one
  CalibrationFitOptions opt;
  opt.fit_overhead = true;
  auto cal = fit_calibration(info, samples, opt);
  ASSERT_TRUE(cal.ok());
  ASSERT_TRUE(cal->launch_overhead_s.has_value());
  EXPECT_GT(*cal->launch_overhead_s, 3e-6 * 0.99);
  EXPECT_LT(*cal->launch_overhead_s, 3e-6 + 2e-6);  // an upper bound, tight for small ops
  EXPECT_EQ(DeviceCostModel(info, *cal).launch_overhead_s(), *cal->launch_overhead_s);
}

TEST(Calibration, FitRejectsBadSamples) {
  const DeviceInfo info = npu_info();
  EXPECT_EQ(fit_calibration(info, {}).status().code(), StatusCode::kInvalidArgument);
  const CalibrationSample zero_time{OpClass::kMatrix, DType::kF16, 1e9, 1e6, 0};
  auto r = fit_calibration(info, std::vector{zero_time});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sample 0 (matrix)"), std::string::npos);
  const CalibrationSample negative{OpClass::kVector, DType::kF16, -1, 1e6, 1e-3};
  EXPECT_FALSE(fit_calibration(info, std::vector{negative}).ok());
  DeviceInfo no_peaks = info;
  no_peaks.peak_flops.clear();
  r = fit_calibration(
      no_peaks, std::vector{CalibrationSample{OpClass::kMatrix, DType::kF16, 1e9, 1e6, 1e-3}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no peak FLOP/s for f16"), std::string::npos);
  // Every sample at or below the overhead: nothing to learn.
  r = fit_calibration(info,
                      std::vector{CalibrationSample{OpClass::kVector, DType::kF16, 1, 1, 1e-6}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("per-op overhead"), std::string::npos);
}

// ---- golden predictions ------------------------------------------------------------
// The cost model's predictions for fixed device figures (cpu_info(): 40 GB/s, 1 TFLOP/s,
// 1 us per op) and a fixed calibration, for the ops a GPT-2-small decode step and prefill
// dispatch. A change that moves any of them is a change of the model: update the values
// only with a reason in the commit.

OpSpec spec_of(OpKind kind, std::vector<TensorDesc> inputs, TensorDesc output,
               OpAttributes attrs = {}) {
  OpSpec s;
  s.kind = kind;
  s.attrs = attrs;
  s.num_inputs = int32_t(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) s.inputs[i] = inputs[i];
  s.output = output;
  return s;
}

struct GoldenOp {
  const char* what;
  OpSpec spec;
};

std::vector<GoldenOp> gpt2_small_ops() {
  const DType f = DType::kF32;
  auto t = [&](std::initializer_list<int64_t> dims) {
    return TensorDesc::contiguous(f, Shape(dims));
  };
  OpAttributes head;
  head.transpose_b = true;
  OpAttributes attn;
  attn.causal = true;
  attn.scale = 0.125f;
  attn.kv_length = 100;
  OpAttributes attn_prefill = attn;
  attn_prefill.kv_length = 128;
  const TensorDesc ids1 = TensorDesc::contiguous(DType::kI32, Shape{1, 1});
  const TensorDesc lens = TensorDesc::contiguous(DType::kI32, Shape{1});
  return {
      {"decode qkv",
       spec_of(OpKind::kMatmul, {t({1, 1, 768}), t({768, 2304}), t({2304})}, t({1, 1, 2304}))},
      {"decode lm head",
       spec_of(OpKind::kMatmul, {t({1, 768}), t({50257, 768})}, t({1, 50257}), head)},
      {"decode attention",
       spec_of(OpKind::kAttention,
               {t({1, 1, 12, 64}), t({1, 1024, 12, 64}), t({1, 1024, 12, 64}), lens},
               t({1, 1, 12, 64}), attn)},
      {"decode layer norm",
       spec_of(OpKind::kLayerNorm, {t({1, 1, 768}), t({768}), t({768})}, t({1, 1, 768}))},
      {"decode gelu", spec_of(OpKind::kGelu, {t({1, 1, 3072})}, t({1, 1, 3072}))},
      {"decode add", spec_of(OpKind::kAdd, {t({1, 1, 768}), t({1, 1, 768})}, t({1, 1, 768}))},
      {"decode embedding", spec_of(OpKind::kEmbedding, {t({50257, 768}), ids1}, t({1, 1, 768}))},
      {"prefill fc",
       spec_of(OpKind::kMatmul, {t({1, 128, 768}), t({768, 3072}), t({3072})}, t({1, 128, 3072}))},
      {"prefill attention",
       spec_of(OpKind::kAttention,
               {t({1, 128, 12, 64}), t({1, 1024, 12, 64}), t({1, 1024, 12, 64}), lens},
               t({1, 128, 12, 64}), attn_prefill)},
      {"prefill layer norm",
       spec_of(OpKind::kLayerNorm, {t({1, 128, 768}), t({768}), t({768})}, t({1, 128, 768}))},
  };
}

// A calibration of cpu_info() as `halctl bench --calibrate` would store it, written out
// by hand: matmuls with a 4 us overhead, 300 GFLOP/s and 30 GB/s and two samples (a
// decode one 10% slower than its baseline, a prefill one 5% faster); element-wise ops
// with 2 us and 20 GB/s; attention and embeddings left to the class efficiencies.
Calibration fixed_calibration() {
  Calibration cal;
  cal.device_name = "Test CPU 9000";
  cal.backend = "cpu";
  OpCalibration mm;
  mm.op = OpKind::kMatmul;
  mm.dtype = DType::kF32;
  mm.overhead_s = 4e-6;
  mm.flops_per_s = 3e11;
  mm.bytes_per_s = 3e10;
  const double decode_f = 2.0 * 768 * 2304, decode_b = 4.0 * (768 + 768 * 2304 + 2304 + 2304);
  const double prefill_f = 2.0 * 128 * 768 * 3072,
               prefill_b = 4.0 * (128 * 768 + 768 * 3072 + 3072 + 128 * 3072);
  mm.samples = {{decode_f, decode_b, 1.10 * mm.baseline_seconds(decode_f, decode_b)},
                {prefill_f, prefill_b, 0.95 * mm.baseline_seconds(prefill_f, prefill_b)}};
  cal.ops.push_back(mm);
  for (OpKind k : {OpKind::kLayerNorm, OpKind::kGelu, OpKind::kAdd}) {
    OpCalibration v;
    v.op = k;
    v.dtype = DType::kF32;
    v.overhead_s = 2e-6;
    v.flops_per_s = 0;
    v.bytes_per_s = 2e10;
    v.samples = {{0, 1e4, v.baseline_seconds(0, 1e4)}, {0, 1e6, v.baseline_seconds(0, 1e6)}};
    cal.ops.push_back(v);
  }
  ClassCalibration matrix;
  matrix.efficiency = {0.5, 0.6};
  cal.op_classes[size_t(OpClass::kMatrix)] = matrix;
  return cal;
}

TEST(GoldenPredictions, RooflineOfFixedFigures) {
  const DeviceCostModel m(cpu_info());
  const double golden[] = {0.00022285599999999998, 0.004832050125,
                           2.0392125e-05,          1.4096e-06,
                           1.8191999999999999e-06, 1.3072e-06,
                           1.2561666666666665e-06, 0.000806830656,
                           5.015212499999999e-05,  2.7419200000000003e-05};
  const auto ops = gpt2_small_ops();
  ASSERT_EQ(std::size(golden), ops.size());
  for (size_t i = 0; i < ops.size(); ++i)
    EXPECT_NEAR(m.seconds(OpWork::from_spec(ops[i].spec)), golden[i], 1e-9 * golden[i])
        << ops[i].what << ": " << m.seconds(OpWork::from_spec(ops[i].spec));
}

TEST(GoldenPredictions, CalibratedOfFixedFiguresAndCalibration) {
  const DeviceCostModel m(cpu_info(), fixed_calibration());
  const double golden[] = {0.00026471102679974774,
                           0.005217323615589182,
                           2.685616666666667e-05,
                           2.6144e-06,
                           3.2288e-06,
                           2.4608e-06,
                           1.2561666666666665e-06,
                           0.0019176478901132873,
                           6.653616666666666e-05,
                           4.1628800000000004e-05};
  const auto ops = gpt2_small_ops();
  ASSERT_EQ(std::size(golden), ops.size());
  for (size_t i = 0; i < ops.size(); ++i)
    EXPECT_NEAR(m.seconds(OpWork::from_spec(ops[i].spec)), golden[i], 1e-9 * golden[i])
        << ops[i].what << ": " << m.seconds(OpWork::from_spec(ops[i].spec));
  // At a sample the correction reproduces it (up to the neutral pseudo-sample's pull).
  const OpCalibration& mm = *m.calibration()->for_op(OpKind::kMatmul, DType::kF32);
  const OpEstimate at = m.estimate(OpWork::from_spec(gpt2_small_ops()[0].spec));
  EXPECT_TRUE(at.op_calibrated);
  EXPECT_NEAR(at.seconds / mm.baseline_seconds(mm.samples[0].flops, mm.samples[0].bytes), 1.10,
              0.01);
  EXPECT_EQ(at.bound, Bound::kMemory);
  // Attention has no calibration of its own: the matrix class efficiencies.
  EXPECT_FALSE(m.estimate(OpWork::from_spec(gpt2_small_ops()[2].spec)).op_calibrated);
}

// The fit recovers the baseline that made a sweep's samples (overhead + roofline of
// rates), and its predictions at the samples are pinned.
TEST(GoldenPredictions, FitOfAnOpKind) {
  std::vector<OpSample> samples;
  const double overhead = 3e-6, rc = 2e11, rm = 2.5e10;
  for (double rows : {1.0, 4.0, 16.0, 64.0, 256.0})
    for (double kn : {768.0 * 768, 1024.0 * 4096, 4096.0 * 4096}) {
      const double f = 2 * rows * kn, b = 4 * kn;
      samples.push_back({f, b, overhead + std::max(f / rc, b / rm)});
    }
  const OpCalibration fit = fit_op_calibration(OpKind::kMatmul, DType::kF32, samples);
  EXPECT_NEAR(fit.overhead_s, overhead, 0.02 * overhead);
  EXPECT_NEAR(fit.flops_per_s, rc, 0.01 * rc);
  EXPECT_NEAR(fit.bytes_per_s, rm, 0.01 * rm);
  EXPECT_EQ(fit.samples.size(), samples.size());
  const Calibration cal = calibration_of({fit});
  const DeviceCostModel m(cpu_info(), cal);
  for (const OpSample& s : samples) {
    OpWork w = work(OpClass::kMatrix, DType::kF32, s.flops, s.bytes);
    w.op = OpKind::kMatmul;
    EXPECT_NEAR(m.seconds(w), s.seconds, 0.01 * s.seconds);
  }
}

// Samples of one shape are one point: their mean log ratio, a sample from inside the
// sweep's block weighing as the 12 layers a model runs it in. A sweep measures an add at
// several places of a step (once right after the embeddings, its code cold, then twice in
// the block), and the odd place first in sweep order must not decide the shape's
// prediction; a K and a V cache write (both in the block, 2x and 1x) count alike.
TEST(Calibration, SamplesOfOneShapeArePooledByHowOftenAModelRunsThem) {
  OpCalibration add = memory_bound_calibration(OpKind::kAdd, 1e-6, 2e10);
  const double small = 6144, large = 12288;
  const double base_small = add.baseline_seconds(0, small),
               base_large = add.baseline_seconds(0, large);
  // Per shape, in sweep order: the cold one at 2x outside the block, then two at 0.8x in
  // it; four steps of it. Pooled: exp((ln 2 + 24 ln 0.8) / 25) = 0.828x.
  for (int step = 0; step < 4; ++step)
    for (double b : {small, large}) {
      const double base = b == small ? base_small : base_large;
      add.samples.push_back({0, b, 2.0 * base, false});
      add.samples.push_back({0, b, 0.8 * base, true});
      add.samples.push_back({0, b, 0.8 * base, true});
    }
  // A shape sampled twice in the block (a K and a V write): their geometric mean, 1.414x.
  const double big = 4e6, base_big = add.baseline_seconds(0, big);
  add.samples.push_back({0, big, 2.0 * base_big, true});
  add.samples.push_back({0, big, 1.0 * base_big, true});
  const Calibration cal = calibration_of({add});
  const DeviceCostModel m(cpu_info(), cal);
  OpWork at_big = work(OpClass::kVector, DType::kF32, 0, big);
  at_big.op = OpKind::kAdd;
  // At a sampled shape, pulled a little towards the baseline by the neutral sample.
  EXPECT_GT(m.seconds(at_big) / base_big, 1.38);
  EXPECT_LT(m.seconds(at_big) / base_big, 1.415);
  OpWork w = work(OpClass::kVector, DType::kF32, 0, small);
  w.op = OpKind::kAdd;
  const double at_small = m.seconds(w) / base_small;
  EXPECT_GT(at_small, 0.82);
  EXPECT_LT(at_small, 0.835);
  // Between the two shapes: still the common case, not a blend with the cold one.
  w.bytes = 9216;
  const double between = m.seconds(w) / add.baseline_seconds(0, w.bytes);
  EXPECT_GT(between, 0.82);
  EXPECT_LT(between, 0.9);
}

// An op right after a weight stream is predicted from the samples taken in that place,
// the others from the rest: a q rotary right after the q/k/v products (3x its baseline
// here) and a k rotary of the same shape after it (0.5x) are two predictions, not one
// blend; a place without samples falls back to the other's.
TEST(Calibration, OpsAfterAWeightStreamArePredictedFromSamplesTakenThere) {
  OpCalibration rot = memory_bound_calibration(OpKind::kRotary, 1e-6, 1e10);
  for (double b : {4096.0, 8192.0, 16384.0}) {
    const double base = rot.baseline_seconds(0, b);
    rot.samples.push_back({0, b, 3.0 * base, true, true});
    rot.samples.push_back({0, b, 0.5 * base, true, false});
  }
  const Calibration cal = calibration_of({rot});
  const DeviceCostModel m(cpu_info(), cal);
  OpWork w = work(OpClass::kVector, DType::kF32, 0, 6144);
  w.op = OpKind::kRotary;
  const double base = rot.baseline_seconds(0, 6144);
  OpWork cold = w;
  cold.after_stream = true;
  EXPECT_GT(m.seconds(cold) / base, 2.8);
  EXPECT_LT(m.seconds(cold) / base, 3.0);
  EXPECT_GT(m.seconds(w) / base, 0.5);
  EXPECT_LT(m.seconds(w) / base, 0.54);
  // Only samples after a stream: both places are predicted from them.
  OpCalibration only_cold = rot;
  only_cold.samples.clear();
  for (const OpSample& s : rot.samples)
    if (s.after_stream) only_cold.samples.push_back(s);
  const DeviceCostModel mc(cpu_info(), calibration_of({only_cold}));
  EXPECT_GT(mc.seconds(w) / base, 2.8);
}

class CalibrationFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hal_sched_cal_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::filesystem::path& p, const std::string& text) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  std::filesystem::path dir_;
};

TEST_F(CalibrationFiles, SaveLoadRoundTrip) {
  const DeviceInfo info = npu_info();
  auto cal = fit_calibration(info, synthetic_samples(info, {0.6, 0.7}, {0.5, 0.45}, 0.0));
  ASSERT_TRUE(cal.ok());
  cal->created_by = "halctl bench --calibrate";
  cal->launch_overhead_s = 4e-6;
  const std::filesystem::path path = calibration_path(info, dir_);
  EXPECT_EQ(path.filename(), "npu-sim-rbln-ca12-simulated.json");
  ASSERT_TRUE(save_calibration(*cal, path).ok());
  auto back = load_calibration(path);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->device_name, cal->device_name);
  EXPECT_EQ(back->backend, cal->backend);
  EXPECT_EQ(back->device_id, "npu:0");
  EXPECT_EQ(back->created_by, "halctl bench --calibrate");
  EXPECT_EQ(back->created_at, cal->created_at);
  EXPECT_EQ(back->launch_overhead_s, 4e-6);
  for (int c = 0; c < kOpClassCount; ++c) {
    ASSERT_EQ(back->op_classes[size_t(c)].has_value(), cal->op_classes[size_t(c)].has_value());
    if (!cal->op_classes[size_t(c)]) continue;
    EXPECT_DOUBLE_EQ(back->op_classes[size_t(c)]->efficiency.compute,
                     cal->op_classes[size_t(c)]->efficiency.compute);
    EXPECT_DOUBLE_EQ(back->op_classes[size_t(c)]->efficiency.memory,
                     cal->op_classes[size_t(c)]->efficiency.memory);
    EXPECT_EQ(back->op_classes[size_t(c)]->samples, cal->op_classes[size_t(c)]->samples);
    EXPECT_EQ(back->op_classes[size_t(c)]->buckets.size(),
              cal->op_classes[size_t(c)]->buckets.size());
  }
  // No temporary file left behind.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST_F(CalibrationFiles, OpCalibrationsRoundTripAndVersionOneFilesStillLoad) {
  const DeviceInfo info = cpu_info();
  std::vector<CalibrationSample> samples;
  for (double n : {256.0, 1024.0, 4096.0}) {
    samples.push_back({OpClass::kMatrix, DType::kF32, 2 * n * n, 4 * n * n, 2e-6 + 4 * n * n / 2e10,
                       OpKind::kMatmul});
    samples.push_back({OpClass::kVector, DType::kF32, n, 12 * n, 1e-6 + 12 * n / 3e10, OpKind::kAdd,
                       0, /*in_block=*/n > 256, /*after_stream=*/n > 1024});
  }
  // Two samples of gelu: fewer than min_op_samples, so only its class learns from them.
  samples.push_back({OpClass::kVector, DType::kF32, 8e3, 8e3, 3e-6, OpKind::kGelu});
  samples.push_back({OpClass::kVector, DType::kF32, 8e5, 8e5, 3e-5, OpKind::kGelu});
  auto cal = fit_calibration(info, samples);
  ASSERT_TRUE(cal.ok()) << cal.status().to_string();
  ASSERT_EQ(cal->ops.size(), 2u);
  EXPECT_NE(cal->for_op(OpKind::kMatmul, DType::kF32), nullptr);
  EXPECT_NE(cal->for_op(OpKind::kAdd, DType::kF32), nullptr);
  EXPECT_EQ(cal->for_op(OpKind::kGelu, DType::kF32), nullptr);
  EXPECT_EQ(cal->for_op(OpKind::kMatmul, DType::kBF16), nullptr);
  EXPECT_EQ(cal->memory_bandwidth_bytes_per_s, 40e9);
  const std::filesystem::path path = calibration_path(info, dir_);
  ASSERT_TRUE(save_calibration(*cal, path).ok());
  auto back = load_calibration(path);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->ops.size(), cal->ops.size());
  for (size_t i = 0; i < cal->ops.size(); ++i) {
    EXPECT_EQ(back->ops[i].op, cal->ops[i].op);
    EXPECT_EQ(back->ops[i].dtype, cal->ops[i].dtype);
    EXPECT_DOUBLE_EQ(back->ops[i].overhead_s, cal->ops[i].overhead_s);
    EXPECT_DOUBLE_EQ(back->ops[i].flops_per_s, cal->ops[i].flops_per_s);
    EXPECT_DOUBLE_EQ(back->ops[i].bytes_per_s, cal->ops[i].bytes_per_s);
    ASSERT_EQ(back->ops[i].samples.size(), cal->ops[i].samples.size());
    EXPECT_DOUBLE_EQ(back->ops[i].samples[1].seconds, cal->ops[i].samples[1].seconds);
    for (size_t k = 0; k < cal->ops[i].samples.size(); ++k) {
      EXPECT_EQ(back->ops[i].samples[k].in_block, cal->ops[i].samples[k].in_block);
      EXPECT_EQ(back->ops[i].samples[k].after_stream, cal->ops[i].samples[k].after_stream);
    }
  }
  const OpCalibration& adds = *back->for_op(OpKind::kAdd, DType::kF32);
  EXPECT_FALSE(adds.samples[0].in_block);
  EXPECT_TRUE(adds.samples[1].in_block);
  EXPECT_FALSE(adds.samples[1].after_stream);
  EXPECT_TRUE(adds.samples[2].after_stream);
  EXPECT_EQ(back->memory_bandwidth_bytes_per_s, 40e9);
  EXPECT_EQ(back->peak_flops.at(DType::kF32), 1e12);
  EXPECT_EQ(calibration_to_json(*back), calibration_to_json(*cal));
  // Predictions from the loaded file equal those of the fitted calibration.
  OpWork add = work(OpClass::kVector, DType::kF32, 500, 6000);
  add.op = OpKind::kAdd;
  EXPECT_DOUBLE_EQ(DeviceCostModel(info, *back).seconds(add),
                   DeviceCostModel(info, *cal).seconds(add));
  // A version 1 file (class efficiencies only) still loads.
  auto v1 = parse_calibration(
      R"({"format": "hal-calibration", "version": 1, "device": {"name": "Test CPU 9000",
          "backend": "cpu"}, "op_classes": {"matrix": {"compute_efficiency": 0.5,
          "memory_efficiency": 0.6}}})",
      "v1.json");
  ASSERT_TRUE(v1.ok()) << v1.status().to_string();
  EXPECT_TRUE(v1->ops.empty());
  EXPECT_DOUBLE_EQ(v1->for_class(OpClass::kMatrix)->efficiency.memory, 0.6);
}

TEST_F(CalibrationFiles, ParseErrorsNameTheKey) {
  struct Case {
    std::string text;
    std::string expect;
  };
  const std::string head =
      R"({"format": "hal-calibration", "version": 1, "device": {"name": "x", "backend": "cpu"}, )";
  const Case cases[] = {
      {"{", "f.json: not valid JSON"},
      {"[]", "f.json: not a JSON object"},
      {R"({"format": "other"})", "key 'format': must be \"hal-calibration\""},
      {R"({"format": "hal-calibration", "version": 3})",
       "key 'version': version 3 is not understood"},
      {R"({"format": "hal-calibration", "version": 1, "device": {"backend": "cpu"}})",
       "key 'device.name': missing"},
      {head + R"("op_classes": {"matrix": {"compute_efficiency": 1.5, "memory_efficiency": 0.5}}})",
       "key 'op_classes.matrix.compute_efficiency': must be in (0, 1], got 1.5"},
      {head + R"("op_classes": {"tensor": {}}})", "key 'op_classes.tensor': unknown op class"},
      {head + R"("op_classes": {"data": {"compute_efficiency": 0.5, "memory_efficiency": 0.5,
          "buckets": [{"compute_efficiency": 0.5, "memory_efficiency": 0.5}]}}})",
       "key 'op_classes.data.buckets[0].ideal_seconds': missing or not a number > 0"},
      {head + R"("launch_overhead_s": -1, "op_classes": {}})", "key 'launch_overhead_s'"},
      {head + R"("op_classes": {}, "ops": {}})", "key 'ops': must be an array"},
      {head + R"("op_classes": {}, "ops": [{"op": "conv", "dtype": "f32"}]})",
       "key 'ops[0].op': unknown op 'conv'"},
      {head + R"("op_classes": {}, "ops": [{"op": "matmul", "dtype": "f32", "overhead_s": 0,
          "flops_per_s": 1, "bytes_per_s": 1, "samples": [[1, 2]]}]})",
       "key 'ops[0].samples[0]': must be [flops >= 0, bytes >= 0, seconds > 0]"},
      {head + R"("op_classes": {}, "ops": [{"op": "matmul", "dtype": "f32", "overhead_s": 0,
          "flops_per_s": 1, "bytes_per_s": 1, "samples": [[1, 2, 3, 4]]}]})",
       "key 'ops[0].samples[0]': must be [flops >= 0, bytes >= 0, seconds > 0] or with a 4th "
       "element, its places, 0 to 3"},
      {head + R"("op_classes": {}, "ops": [{"op": "matmul", "dtype": "f32", "overhead_s": 0,
          "flops_per_s": 1, "bytes_per_s": 0, "samples": []}]})",
       "key 'ops[0].bytes_per_s': must be > 0"},
  };
  for (const Case& c : cases) {
    auto r = parse_calibration(c.text, "f.json");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << r.status().message() << "\n  expected: " << c.expect;
    EXPECT_NE(r.status().message().find("f.json"), std::string::npos);
  }
  auto missing = load_calibration(dir_ / "absent.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST_F(CalibrationFiles, CostModelLoadsCalibrationsAutomatically) {
  const DeviceInfo npu = npu_info();
  const DeviceInfo cpu = cpu_info();
  auto cal = fit_calibration(npu, synthetic_samples(npu, {0.3, 0.4}, {0.5, 0.45}, 0.0));
  ASSERT_TRUE(cal.ok());
  ASSERT_TRUE(save_calibration(*cal, calibration_path(npu, dir_)).ok());
  // The CPU's file is corrupt: ignored with a note, never fatal.
  write(calibration_path(cpu, dir_), "{ not json");

  std::vector<std::string> notes;
  const CostModel model = CostModel::from_infos({npu, cpu}, CalibrationOptions{true, dir_}, &notes);
  ASSERT_TRUE(model.device(0).calibration().has_value());
  EXPECT_FALSE(model.device(1).calibration().has_value());
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("npu:0: calibration from"), std::string::npos);
  EXPECT_NE(notes[1].find("cpu:0: calibration ignored (defaults used)"), std::string::npos);
  const OpWork big = work(OpClass::kMatrix, DType::kF16, 1e13, 1e6);
  EXPECT_DOUBLE_EQ(model.device(0).estimate(big).compute_s, 1e13 / (32e12 * 0.3));

  // A file for another device under this device's name is refused.
  DeviceInfo other = npu;
  other.backend = "npu_sim";
  other.name = "RBLN-CA12 (simulated)";
  Calibration foreign = *cal;
  foreign.device_name = "Some Other NPU";
  ASSERT_TRUE(save_calibration(foreign, calibration_path(other, dir_)).ok());
  auto found = find_calibration(other, dir_);
  ASSERT_FALSE(found.ok());
  EXPECT_NE(found.status().message().find("was written for 'Some Other NPU'"), std::string::npos);
  // No file: no calibration, no error.
  DeviceInfo fresh = npu;
  fresh.name = "Brand New";
  auto none = find_calibration(fresh, dir_);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(CalibrationFiles, DefaultDirectoryFollowsTheEnvironment) {
  const char* old = std::getenv("HAL_CALIBRATION_DIR");
  const std::string saved = old ? old : "";
  ::setenv("HAL_CALIBRATION_DIR", dir_.c_str(), 1);
  EXPECT_EQ(default_calibration_dir(), dir_);
  EXPECT_EQ(calibration_path(cpu_info()).parent_path(), dir_);
  ::unsetenv("HAL_CALIBRATION_DIR");
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (!xdg || !*xdg) {
    const char* home = std::getenv("HOME");
    if (home && *home) {
      EXPECT_EQ(default_calibration_dir(), std::filesystem::path(home) / ".cache/hal/calibration");
    }
  }
  if (old) ::setenv("HAL_CALIBRATION_DIR", saved.c_str(), 1);
}

}  // namespace
}  // namespace hal::scheduler
