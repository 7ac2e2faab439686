// The calibration sweep (calibration_sweep.h): the ops of synthetic transformer graphs,
// and their times on a device through one recording stream.
#include "hal/runtime/calibration_sweep.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "hal/event.h"
#include "hal/runtime/graph.h"
#include "hal/runtime/model_config.h"
#include "hal/runtime/model_graph.h"
#include "hal/runtime/scheduled_plan.h"
#include "hal/stream.h"

namespace hal::runtime {

namespace {

ModelConfig synthetic_config(bool llama, int64_t hidden) {
  ModelConfig c;
  c.family = llama ? ModelFamily::kLlama : ModelFamily::kGpt2;
  c.model_type = llama ? "llama" : "gpt2";
  c.vocab_size = 32768;
  c.hidden_size = hidden;
  c.num_layers = 1;
  c.head_dim = 64;
  c.num_heads = hidden / 64;
  c.num_kv_heads = llama ? std::max<int64_t>(1, c.num_heads / 4) : c.num_heads;
  // gpt2: 4x; llama: about 8/3 x, a multiple of 256.
  c.intermediate_size = llama ? (hidden * 8 / 3 + 255) / 256 * 256 : 4 * hidden;
  c.max_positions = 4096;
  c.tie_word_embeddings = !llama;
  return c;
}

}  // namespace

std::vector<CalibrationOp> calibration_ops(DType compute_dtype, bool quick) {
  std::vector<CalibrationOp> out;
  std::set<std::string> seen;
  const std::vector<int64_t> hiddens =
      quick ? std::vector<int64_t>{512, 1024} : std::vector<int64_t>{512, 1024, 2048};
  const std::vector<int64_t> kv_lengths =
      quick ? std::vector<int64_t>{32, 512} : std::vector<int64_t>{32, 256, 1024};
  const std::vector<int64_t> prefills =
      quick ? std::vector<int64_t>{8, 64} : std::vector<int64_t>{4, 8, 16, 64, 256};
  for (bool llama : {false, true})
    for (int64_t hidden : hiddens) {
      const ModelConfig config = synthetic_config(llama, hidden);
      struct Shape {
        int64_t seq, kv;
      };
      std::vector<Shape> shapes;
      for (int64_t kv : kv_lengths) shapes.push_back({1, kv});
      for (int64_t seq : prefills) shapes.push_back({seq, seq});
      for (const Shape& sh : shapes) {
        ModelGraphShape gs;
        gs.seq = sh.seq;
        gs.cache_len = std::max<int64_t>(sh.kv, 64);
        gs.compute_dtype = compute_dtype;
        auto mg = build_model_graph(config, gs);
        if (!mg.ok()) continue;
        const Graph& g = *mg->graph;
        std::string where = "h";
        where.append(std::to_string(hidden)).append(llama ? " llama " : " gpt2 ");
        where.append(sh.seq == 1 ? "decode kv" : "prefill ")
            .append(std::to_string(sh.seq == 1 ? sh.kv : sh.seq));
        for (NodeId n = 0; n < NodeId(g.nodes().size()); ++n) {
          const Node& node = g.node(n);
          for (OpSpec spec : node_op_specs(g, n)) {
            int64_t kv = 0;
            if (node.kind == NodeKind::kOp && node.op == OpKind::kAttention) {
              kv = sh.kv;
              spec.attrs.kv_length = kv;
            }
            if (!seen.insert(op_spec_key(spec)).second) continue;
            CalibrationOp op;
            op.spec = spec;
            op.kv_length = kv;
            // Which inputs a model reads from weights or KV caches: a kOp node's inputs
            // by their storage; a copy's source is an activation.
            if (node.kind == NodeKind::kOp)
              for (size_t i = 0; i < node.inputs.size() && i < size_t(kMaxOpInputs); ++i) {
                const ValueKind k = g.value(g.storage_root(node.inputs[i])).kind;
                op.cold[i] = k == ValueKind::kConstant || k == ValueKind::kState;
              }
            // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on
            // "literal" + std::string chains.
            op.label = where;
            op.label.append(": ").append(op_kind_name(spec.kind));
            for (int i = 0; i < spec.num_inputs; ++i)
              op.label.append(" ").append(spec.inputs[i].shape.to_string());
            op.label.append(" -> ").append(spec.output.shape.to_string());
            out.push_back(std::move(op));
          }
        }
      }
    }
  return out;
}

namespace {

// A 1.0 fill pattern for float dtypes (ones: ordinary numbers for every op).
std::pair<uint64_t, uint32_t> one_pattern(DType t) {
  switch (t) {
    case DType::kF32:
      return {0x3f800000u, 4};
    case DType::kF16:
      return {0x3c00u, 2};
    case DType::kBF16:
      return {0x3f80u, 2};
    default:
      return {0, 1};
  }
}

constexpr uint64_t kAlign = 4096;
uint64_t aligned(uint64_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

struct OpBuffers {
  std::vector<Buffer> owned;
  std::vector<OpDescriptor> reps;  // the descriptors to cycle through
};

}  // namespace

Result<std::vector<MeasuredOp>> measure_calibration_ops(Device& device,
                                                        std::span<const CalibrationOp> ops,
                                                        const CalibrationMeasureOptions& options,
                                                        std::vector<CalibrationSkip>* skipped) {
  const MemoryKind kind = options.timing_only ? MemoryKind::kVirtual : MemoryKind::kDevice;
  StreamOptions so;
  so.record_commands = true;
  HAL_ASSIGN_OR_RETURN(Stream stream, device.create_stream(so));
  HAL_ASSIGN_OR_RETURN(Event start, device.create_event());
  HAL_ASSIGN_OR_RETURN(Event end, device.create_event());
  auto skip = [&](const std::string& what, const Status& why) {
    if (skipped) skipped->push_back({what, why.to_string()});
  };
  // The pool cold inputs rotate over, filled once with ones (f32 1.0; read as 16-bit
  // floats each word is 1.875 or 0: ordinary numbers too).
  Buffer pool;
  uint64_t pool_bytes = std::min(options.cold_bytes, device.info().memory_bytes / 4);
  if (pool_bytes > 0) {
    auto p = device.allocate(pool_bytes, kind);
    if (p.ok()) {
      pool = std::move(*p);
      if (!options.timing_only)
        HAL_RETURN_IF_ERROR(stream.fill(pool, 0, pool_bytes, 0x3f800000u, 4));
    } else {
      skip("cold-input pool of " + std::to_string(pool_bytes) + " bytes", p.status());
      pool_bytes = 0;
    }
  }
  std::vector<MeasuredOp> out;
  for (size_t k = 0; k < ops.size(); ++k) {
    if (options.progress) options.progress(k, ops.size());
    const CalibrationOp& c = ops[k];
    if (!device.supports(c.spec)) {
      skip(c.label, unimplemented("not supported by the device"));
      continue;
    }
    // Cold inputs: copies laid end to end in the pool (as many as fit, at least one; an
    // input larger than the pool gets a buffer of its own, already larger than caches).
    uint64_t cold_bytes = 0;
    for (int i = 0; i < c.spec.num_inputs; ++i)
      if (c.cold[size_t(i)]) cold_bytes += aligned(c.spec.inputs[i].extent_bytes());
    const uint64_t copies = cold_bytes > 0 && cold_bytes <= pool_bytes
                                ? std::min<uint64_t>(pool_bytes / cold_bytes, 4096)
                                : 1;
    OpBuffers b;
    b.owned.reserve(size_t(c.spec.num_inputs) + 1);
    Status st;
    auto make = [&](const TensorDesc& desc, int64_t int_value) -> const Buffer* {
      auto buf = device.allocate(std::max<uint64_t>(desc.extent_bytes(), 1), kind);
      if (!buf.ok()) {
        st = buf.status();
        return nullptr;
      }
      b.owned.push_back(std::move(*buf));
      const Buffer& made = b.owned.back();
      if (!options.timing_only && st.ok()) {
        if (desc.dtype == DType::kI32 || desc.dtype == DType::kI64) {
          st = stream.fill(made, 0, made.size(), uint64_t(int_value),
                           desc.dtype == DType::kI32 ? 4 : 8);
        } else {
          const auto [pattern, width] = one_pattern(desc.dtype);
          st = stream.fill(made, 0, made.size(), pattern, width);
        }
      }
      return &made;
    };
    OpDescriptor base;
    base.kind = c.spec.kind;
    base.attrs = c.spec.attrs;
    base.num_inputs = c.spec.num_inputs;
    std::array<uint64_t, kMaxOpInputs> pool_offset{};
    uint64_t cursor = 0;
    for (int i = 0; i < c.spec.num_inputs && st.ok(); ++i) {
      const TensorDesc& desc = c.spec.inputs[i];
      const bool from_pool = c.cold[size_t(i)] && cold_bytes <= pool_bytes && pool.valid();
      if (from_pool) {
        pool_offset[size_t(i)] = cursor;
        cursor += aligned(desc.extent_bytes());
        base.inputs[size_t(i)] = TensorRef{&pool, pool_offset[size_t(i)], desc};
      } else if (const Buffer* made = make(desc, c.kv_length)) {
        base.inputs[size_t(i)] = TensorRef{made, 0, desc};
      }
    }
    if (st.ok())
      if (const Buffer* o = make(c.spec.output, 0)) base.output = TensorRef{o, 0, c.spec.output};
    if (st.ok()) st = stream.synchronize();
    if (!st.ok()) {
      skip(c.label, st);
      continue;
    }
    for (uint64_t r = 0; r < copies; ++r) {
      OpDescriptor d = base;
      for (int i = 0; i < c.spec.num_inputs; ++i)
        if (c.cold[size_t(i)] && d.inputs[size_t(i)].buffer == &pool)
          d.inputs[size_t(i)].offset_bytes = pool_offset[size_t(i)] + r * cold_bytes;
      b.reps.push_back(d);
    }
    // Warm-up (first touch, lazy initialisation), then rounds until the records cover
    // min_time_s.
    size_t next = 0;
    auto dispatch_n = [&](int n) -> Status {
      for (int i = 0; i < n; ++i) {
        HAL_RETURN_IF_ERROR(stream.dispatch(b.reps[next], 1));
        next = (next + 1) % b.reps.size();
      }
      return ok_status();
    };
    st = dispatch_n(1);
    if (st.ok()) st = stream.synchronize();
    stream.take_records();
    double busy = 0, wall = 0;
    std::vector<double> durations;
    int reps = 0, round = options.min_reps;
    while (st.ok()) {
      st = stream.record(start);
      if (st.ok()) st = dispatch_n(round);
      if (st.ok()) st = stream.record(end);
      if (st.ok()) st = stream.synchronize();
      if (!st.ok()) break;
      auto elapsed = Event::elapsed_seconds(start, end);
      wall += elapsed.ok() ? *elapsed : 0.0;
      for (const CommandRecord& rec : stream.take_records())
        if (rec.command == CommandKind::kOp) {
          busy += rec.duration_s();
          durations.push_back(rec.duration_s());
        }
      reps += round;
      if (busy >= options.min_time_s || reps >= options.max_reps) break;
      const double per_rep = std::max(busy / reps, 1e-9);
      round = std::clamp(int(1.2 * (options.min_time_s - busy) / per_rep) + 1, 1,
                         std::min(options.max_reps - reps, reps * 10));
    }
    if (!st.ok() || reps == 0 || !(busy > 0)) {
      skip(c.label, st.ok() ? internal_error("no command records") : st);
      continue;
    }
    MeasuredOp m;
    m.op = &c;
    std::sort(durations.begin(), durations.end());
    m.seconds = durations[durations.size() / 2];
    m.mean_seconds = busy / reps;
    m.gap_seconds = std::max(0.0, (wall - busy) / reps);
    m.reps = reps;
    out.push_back(m);
  }
  if (options.progress) options.progress(ops.size(), ops.size());
  return out;
}

}  // namespace hal::runtime
