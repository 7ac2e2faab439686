// The NPU performance model (assumptions in README.md, "Performance model").
#include "npu_perf_model.h"

#include <algorithm>
#include <cmath>

namespace hal::npu_sim {

namespace {

double ceil_div(double a, double b) { return std::ceil(a / b); }

// Fraction of an array dimension of `granule` a size-`n` dimension keeps busy.
double granule_util(double n, double granule) {
  if (n <= 0 || granule <= 1) return 1.0;
  return n / (ceil_div(n, granule) * granule);
}

// Fraction of `engines` busy when `tiles` equal tiles are spread over them.
double engine_util(double tiles, double engines) {
  if (tiles <= 0 || engines <= 1) return 1.0;
  return tiles / (ceil_div(tiles, engines) * engines);
}

double nbytes(const TensorDesc& t) { return double(t.bytes()); }

// Bytes per element, fractional for quantized formats (a row's bytes / its length).
double element_bytes(const TensorDesc& t) {
  if (!is_quantized(t.dtype)) return double(dtype_size(t.dtype));
  const int64_t k = std::max<int64_t>(t.shape.back(), 1);
  return double(dtype_row_bytes(t.dtype, k)) / double(k);
}

uint64_t to_bytes(double v) { return v <= 0 ? 0 : uint64_t(std::llround(v)); }

}  // namespace

std::string_view matmul_staging_name(MatmulStaging s) {
  switch (s) {
    case MatmulStaging::kResidentA:
      return "resident_a";
    case MatmulStaging::kResidentB:
      return "resident_b";
    case MatmulStaging::kTiled:
      return "tiled";
  }
  return "unknown";
}

PerfModel::PerfModel(const DeviceSpec& spec) : spec_(spec) {}

double PerfModel::sram_budget() const {
  return double(spec_.sram_bytes()) * spec_.sram_usable_fraction;
}

void PerfModel::finish(CommandCost& c) const {
  const double body = std::max({c.compute_s, c.sram_s, c.memory_s, c.link_s});
  c.duration_s = c.overhead_s + body + c.fill_s;
  if (c.overhead_s >= body && c.overhead_s > 0) {
    c.bound = BoundBy::kOverhead;
  } else if (body == c.memory_s) {
    c.bound = BoundBy::kMemory;
  } else if (body == c.link_s) {
    c.bound = BoundBy::kLink;
  } else {
    c.bound = BoundBy::kCompute;
  }
}

CommandCost PerfModel::op(const OpSpec& s) const {
  switch (s.kind) {
    case OpKind::kMatmul:
      return matmul(s);
    case OpKind::kAttention:
      return attention(s);
    default:
      return vector_op(s);
  }
}

CommandCost PerfModel::matmul(const OpSpec& s) const {
  CommandCost c;
  const OpCost analytic = analytic_cost(s);
  c.flops = analytic.flops;
  const TensorDesc& a = s.inputs[0];
  const TensorDesc& b = s.inputs[1];
  const TensorDesc& o = s.output;
  const int ro = o.shape.rank;
  const double m = double(o.shape[ro - 2]), n = double(o.shape[ro - 1]);
  const double k = double(s.attrs.transpose_a ? a.shape.back(2) : a.shape.back(1));
  const double out_n = double(std::max<int64_t>(o.numel(), 0));
  c.overhead_s = spec_.command_overhead_s;
  if (out_n == 0) {
    finish(c);
    return c;
  }
  const double batch = out_n / (m * n);
  const double a_batch = k > 0 ? double(a.numel()) / (m * k) : batch;
  const double b_batch = k > 0 ? double(b.numel()) / (k * n) : batch;
  const double ea = dtype_size(a.dtype), eb = element_bytes(b), eo = dtype_size(o.dtype);

  // A weight shared by a whole batch is one big product (rows of every batch stacked);
  // likewise a shared A (columns stacked). Otherwise each batch is its own product.
  double mf = m, nf = n, products = batch;
  if (batch > 1 && b_batch == 1) {
    mf = m * batch;
    products = 1;
  } else if (batch > 1 && a_batch == 1) {
    nf = n * batch;
    products = 1;
  }
  const double a1 = mf * k * ea, b1 = k * nf * eb, o1 = mf * nf * eo;
  const double rows = spec_.mac_array_rows, cols = spec_.mac_array_cols;
  const double budget = sram_budget();
  double kc = std::min(k, 256.0);
  if (kc < 1) kc = 1;

  // Staging: keep A or B resident when it fits beside the other's double-buffered
  // panels and the accumulators; else tile the output (tm x tn) and re-read.
  double rep_a = 1, rep_b = 1, stage_bytes = 0;
  const double tm0 = std::min(mf, rows), tn0 = std::min(nf, cols);
  const bool fit_a = a1 + 2 * kc * tn0 * eb + mf * tn0 * 4 <= budget;
  const bool fit_b = b1 + 2 * tm0 * kc * ea + tm0 * nf * 4 <= budget;
  if (fit_a && (!fit_b || a1 <= b1)) {
    c.staging = MatmulStaging::kResidentA;
    c.tile_m = int64_t(mf);
    c.tile_n = int64_t(tn0);
    stage_bytes = kc * (tm0 * ea + tn0 * eb);
  } else if (fit_b) {
    c.staging = MatmulStaging::kResidentB;
    c.tile_m = int64_t(tm0);
    c.tile_n = int64_t(nf);
    stage_bytes = kc * (tm0 * ea + tn0 * eb);
  } else {
    c.staging = MatmulStaging::kTiled;
    double best = -1, best_tm = tm0, best_tn = tn0, best_kc = kc;
    for (double kcc = kc; kcc >= 1; kcc = std::floor(kcc / 2)) {
      for (double tm = rows; tm < mf * 2; tm *= 2) {
        const double tmc = std::min(tm, mf);
        for (double tn = cols; tn < nf * 2; tn *= 2) {
          const double tnc = std::min(tn, nf);
          if (2 * kcc * (tmc * ea + tnc * eb) + tmc * tnc * 4 > budget) continue;
          const double traffic = a1 * ceil_div(nf, tnc) + b1 * ceil_div(mf, tmc);
          if (best < 0 || traffic < best || (traffic == best && tmc * tnc > best_tm * best_tn)) {
            best = traffic;
            best_tm = tmc;
            best_tn = tnc;
            best_kc = kcc;
          }
        }
      }
      if (best >= 0 || kcc <= 1) break;
    }
    rep_a = ceil_div(nf, best_tn);
    rep_b = ceil_div(mf, best_tm);
    c.tile_m = int64_t(best_tm);
    c.tile_n = int64_t(best_tn);
    stage_bytes = best_kc * (best_tm * ea + best_tn * eb);
  }
  const double bias = s.num_inputs == 3 ? nbytes(s.inputs[2]) : 0;
  const double a_traffic = products * a1 * rep_a;
  const double dram_read = a_traffic + products * b1 * rep_b + bias;
  const double dram_written = products * o1;
  c.dram_bytes_read = to_bytes(dram_read);
  c.dram_bytes_written = to_bytes(dram_written);

  // Matrix engines: the slower operand's rate, derated by array and engine utilisation.
  // Quantized weights run on their format's engine (activations converted as they
  // stream in: W8A8 / W4A8 / fp8); float operands at the slower operand's rate.
  const double peak = is_quantized(b.dtype)
                          ? spec_.weight_format_peak(b.dtype)
                          : std::min(spec_.matrix_peak(a.dtype), spec_.matrix_peak(b.dtype));
  const double tiles = products * ceil_div(mf, rows) * ceil_div(nf, cols);
  c.utilization = granule_util(mf, rows) * granule_util(nf, cols) *
                  engine_util(tiles, double(spec_.neural_engines));
  const double mm_flops = 2.0 * out_n * k;
  const double epilogue = std::max(0.0, c.flops - mm_flops);
  const double matrix_s =
      peak > 0 ? mm_flops / (peak * c.utilization) : mm_flops / spec_.vector_flops;
  // The epilogue runs on the vector unit after the accumulators drain (not overlapped:
  // conservative, and no op then beats FLOPs / peak).
  c.compute_s = matrix_s + epilogue / spec_.vector_flops;

  // SRAM: DMA fills, the engines' operand fetches (A once per column of arrays, B once
  // per row of arrays), and the results drained to DMA.
  const double fetch =
      products * (mf * k * ea * ceil_div(nf, cols) + k * nf * eb * ceil_div(mf, rows));
  c.sram_bytes_written = to_bytes(dram_read + dram_written);
  c.sram_bytes_read = to_bytes(fetch + dram_written);
  c.sram_s = double(c.sram_bytes_read + c.sram_bytes_written) / spec_.sram_bandwidth_bytes_per_s;
  c.memory_s = (dram_read + dram_written) / spec_.sustained_memory_bandwidth();
  // Chiplets split N; each needs all of A, so (chiplets - 1) / chiplets of it crosses
  // die-to-die links into every chiplet.
  if (spec_.chiplets > 1) {
    const double ch = spec_.chiplets;
    const double d2d = (ch - 1) * a_traffic;
    c.link_s =
        d2d / (ch * spec_.die_to_die_link.bandwidth_bytes_per_s) + spec_.die_to_die_link.latency_s;
  }
  const double burst = double(spec_.dma_burst_bytes);
  c.fill_s =
      (std::min(stage_bytes, burst) + std::min(double(c.tile_m) * double(c.tile_n) * eo, burst)) /
      spec_.sustained_memory_bandwidth();
  finish(c);
  return c;
}

CommandCost PerfModel::attention(const OpSpec& s) const {
  CommandCost c;
  const OpCost analytic = analytic_cost(s);
  c.flops = analytic.flops;
  c.overhead_s = spec_.command_overhead_s;
  const TensorDesc& qd = s.inputs[0];
  const TensorDesc& kd = s.inputs[1];
  const TensorDesc& vd = s.inputs[2];
  const double B = double(qd.shape[0]), Sq = double(qd.shape[1]), Hq = double(qd.shape[2]);
  const double D = double(qd.shape[3]), Skv = double(kd.shape[1]), Hkv = double(kd.shape[2]);
  const double Dv = double(vd.shape[3]);
  const double eq = dtype_size(qd.dtype), ek = dtype_size(kd.dtype), ev = dtype_size(vd.dtype);
  const OpAttributes& at = s.attrs;
  const int64_t kv_len = at.kv_length > 0 ? at.kv_length : int64_t(Skv);
  const int64_t sq = int64_t(Sq);
  const int64_t q_off = at.q_offset >= 0 ? at.q_offset : kv_len - sq;
  auto visible = [&](int64_t i) -> int64_t {
    return at.causal ? std::clamp<int64_t>(q_off + i + 1, 0, kv_len) : kv_len;
  };
  if (B * Sq * Hq == 0) {
    c.dram_bytes_read = analytic.bytes_read;
    finish(c);
    return c;
  }
  double visible_total = 0;
  int64_t max_vis = 0;
  for (int64_t i = 0; i < sq; ++i) {
    visible_total += double(visible(i));
    max_vis = std::max(max_vis, visible(i));
  }
  const double group = Hq / Hkv;
  const double units = B * Hkv;  // one (batch, kv head) shares its K/V
  const double engines = spec_.neural_engines;
  const double budget_unit = sram_budget() / std::min(units, engines);
  const double kc = std::max<double>(1, std::min<double>(double(max_vis), 128));
  const double kv_row = D * ek + Dv * ev;
  const double per_query = group * (D * eq + Dv * 4 + 8 + kc * 4);
  double fit = std::floor((budget_unit - 2 * kc * kv_row) / per_query);
  if (fit < 1) fit = 1;
  const int64_t q_block = int64_t(std::min(Sq, fit));
  double kv_rows = 0;  // K/V rows read per unit, summed over query blocks
  int64_t passes = 0;
  for (int64_t start = 0; start < sq; start += q_block, ++passes) {
    const int64_t last = std::min(sq, start + q_block) - 1;
    int64_t block_max = 0;
    for (int64_t i = start; i <= last; ++i) block_max = std::max(block_max, visible(i));
    kv_rows += double(block_max);
  }
  c.kv_passes = passes;
  const double q_bytes = nbytes(qd);
  const double kv_bytes = units * kv_rows * kv_row;
  const double lengths = s.num_inputs == 4 ? nbytes(s.inputs[3]) : 0;
  const double out_bytes = nbytes(s.output);
  const double dram_read = q_bytes + kv_bytes + lengths;
  c.dram_bytes_read = to_bytes(dram_read);
  c.dram_bytes_written = to_bytes(out_bytes);

  const double rows = spec_.mac_array_rows, cols = spec_.mac_array_cols;
  const double r = group * double(q_block);  // query rows sharing one K/V stream
  const double util_m = granule_util(r, rows);
  const double util_qk = util_m * granule_util(double(max_vis), cols);
  const double util_pv = util_m * granule_util(Dv, cols);
  const double tiles = units * double(passes) * ceil_div(r, rows);
  const double util_e = engine_util(tiles, engines);
  const double pairs = B * Hq * visible_total;
  const double qk_flops = pairs * 2 * D, pv_flops = pairs * 2 * Dv;
  const double peak = std::min(
      {spec_.matrix_peak(qd.dtype), spec_.matrix_peak(kd.dtype), spec_.matrix_peak(vd.dtype)});
  const double matrix_s = peak > 0 ? (qk_flops / util_qk + pv_flops / util_pv) / (peak * util_e)
                                   : (qk_flops + pv_flops) / spec_.vector_flops;
  c.utilization = (qk_flops + pv_flops) > 0
                      ? (qk_flops + pv_flops) / (qk_flops / util_qk + pv_flops / util_pv) * util_e
                      : 1.0;
  // Softmax on the vector unit between the two products, serialised with them.
  const double softmax_s = pairs * 5 / spec_.vector_flops;
  c.compute_s = matrix_s + softmax_s;

  // SRAM: DMA fills; Q fetched once per column of key tiles, K and V once per row tile
  // of queries; probabilities written in bf16 and fetched per column of V tiles.
  const double q_fetch = q_bytes * ceil_div(double(max_vis), cols);
  const double kv_fetch = kv_bytes * ceil_div(r, rows);
  const double p_bytes = pairs * 2;
  c.sram_bytes_written = to_bytes(dram_read + p_bytes + out_bytes);
  c.sram_bytes_read = to_bytes(q_fetch + kv_fetch + p_bytes * ceil_div(Dv, cols) + out_bytes);
  c.sram_s = double(c.sram_bytes_read + c.sram_bytes_written) / spec_.sram_bandwidth_bytes_per_s;
  c.memory_s = (dram_read + out_bytes) / spec_.sustained_memory_bandwidth();
  const double burst = double(spec_.dma_burst_bytes);
  c.fill_s = (std::min(double(q_block) * group * D * eq + kc * kv_row, burst) +
              std::min(double(q_block) * group * Dv * dtype_size(s.output.dtype), burst)) /
             spec_.sustained_memory_bandwidth();
  finish(c);
  return c;
}

CommandCost PerfModel::vector_op(const OpSpec& s) const {
  CommandCost c;
  const OpCost analytic = analytic_cost(s);
  c.flops = analytic.flops;
  c.overhead_s = spec_.command_overhead_s;
  const TensorDesc& o = s.output;
  const double out_n = double(std::max<int64_t>(o.numel(), 0));
  const double out_bytes = nbytes(o);
  const double budget = sram_budget();
  const double engines = spec_.neural_engines;

  double dram_read = 0;
  double sram_passes = 1;
  if (s.kind == OpKind::kEmbedding) {
    dram_read = double(analytic.bytes_read);
  } else {
    for (int i = 0; i < s.num_inputs; ++i) {
      const TensorDesc& in = s.inputs[i];
      double bytes = nbytes(in);
      // A broadcast operand too big to stay in SRAM is streamed again with the output.
      const double in_n = double(std::max<int64_t>(in.numel(), 0));
      if ((s.kind == OpKind::kAdd || s.kind == OpKind::kMul) && in_n > 0 && in_n < out_n &&
          bytes > budget / 4)
        bytes *= out_n / in_n;
      dram_read += bytes;
    }
    // Row ops (norms, softmax) make two passes over a row: statistics, then the
    // normalised output. A row that does not fit an engine's share of SRAM is read twice.
    if (s.kind == OpKind::kLayerNorm || s.kind == OpKind::kRmsNorm || s.kind == OpKind::kSoftmax) {
      sram_passes = 2;
      const TensorDesc& x = s.inputs[0];
      const double row_bytes = double(x.shape.back()) * dtype_size(x.dtype);
      if (row_bytes * 3 > budget / engines) dram_read += nbytes(x);
    }
  }
  c.dram_bytes_read = to_bytes(dram_read);
  c.dram_bytes_written = to_bytes(out_bytes);
  // Data-movement ops (transpose, cast, embedding) still pass every element through the
  // vector unit once.
  const double work = c.flops > 0 ? c.flops : out_n;
  c.compute_s = work / spec_.vector_flops;
  const double first_input = s.num_inputs > 0 ? nbytes(s.inputs[0]) : 0;
  c.sram_bytes_written = to_bytes(dram_read + out_bytes);
  c.sram_bytes_read = to_bytes(dram_read * sram_passes + out_bytes);
  c.sram_s = double(c.sram_bytes_read + c.sram_bytes_written) / spec_.sram_bandwidth_bytes_per_s;
  c.memory_s = (dram_read + out_bytes) / spec_.sustained_memory_bandwidth();
  const double burst = double(spec_.dma_burst_bytes);
  c.fill_s = (std::min(first_input, burst) + std::min(out_bytes, burst)) /
             spec_.sustained_memory_bandwidth();
  finish(c);
  return c;
}

CommandCost PerfModel::fill(uint64_t bytes) const {
  CommandCost c;
  c.overhead_s = spec_.command_overhead_s;
  c.dram_bytes_written = bytes;
  c.memory_s = double(bytes) / spec_.sustained_memory_bandwidth();
  finish(c);
  return c;
}

CommandCost PerfModel::copy_on_device(uint64_t bytes) const {
  CommandCost c;
  c.overhead_s = spec_.command_overhead_s;
  c.dram_bytes_read = bytes;
  c.dram_bytes_written = bytes;
  c.memory_s = 2.0 * double(bytes) / spec_.sustained_memory_bandwidth();
  finish(c);
  return c;
}

CommandCost PerfModel::copy_host_to_device(uint64_t bytes) const {
  CommandCost c;
  c.dram_bytes_written = bytes;
  c.link_bytes = bytes;
  c.link_s = spec_.host_link.latency_s + double(bytes) / spec_.host_link.bandwidth_bytes_per_s;
  c.memory_s = double(bytes) / spec_.sustained_memory_bandwidth();
  finish(c);
  return c;
}

CommandCost PerfModel::copy_device_to_host(uint64_t bytes) const {
  CommandCost c;
  c.dram_bytes_read = bytes;
  c.link_bytes = bytes;
  c.link_s = spec_.host_link.latency_s + double(bytes) / spec_.host_link.bandwidth_bytes_per_s;
  c.memory_s = double(bytes) / spec_.sustained_memory_bandwidth();
  finish(c);
  return c;
}

CommandCost PerfModel::copy_peer(uint64_t bytes, const DeviceSpec& src, const DeviceSpec& dst,
                                 bool direct) {
  CommandCost c;
  c.dram_bytes_read = bytes;
  c.dram_bytes_written = bytes;
  c.link_bytes = bytes;
  if (direct) {
    c.link_s = src.peer_link.latency_s + double(bytes) / src.peer_link.bandwidth_bytes_per_s;
  } else {
    // Through host memory, pipelined in bursts: both latencies, the slower link's rate.
    c.link_s = src.host_link.latency_s + dst.host_link.latency_s +
               double(bytes) / std::min(src.host_link.bandwidth_bytes_per_s,
                                        dst.host_link.bandwidth_bytes_per_s);
  }
  c.memory_s =
      double(bytes) / std::min(src.sustained_memory_bandwidth(), dst.sustained_memory_bandwidth());
  c.duration_s = std::max(c.link_s, c.memory_s);
  c.bound = c.link_s >= c.memory_s ? BoundBy::kLink : BoundBy::kMemory;
  return c;
}

}  // namespace hal::npu_sim
