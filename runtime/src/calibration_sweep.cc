// The calibration sweep (calibration_sweep.h): the ops of synthetic transformer graphs,
// and their times on a device through one recording stream.
#include "hal/runtime/calibration_sweep.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "hal/event.h"
#include "hal/runtime/arena_layout.h"
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
  const std::vector<int64_t> hiddens =
      quick ? std::vector<int64_t>{512, 1024} : std::vector<int64_t>{512, 1024, 2048};
  const std::vector<int64_t> kv_lengths =
      quick ? std::vector<int64_t>{32, 512} : std::vector<int64_t>{8, 32, 256, 1024};
  const std::vector<int64_t> prefills =
      quick ? std::vector<int64_t>{8, 64} : std::vector<int64_t>{4, 8, 16, 64, 256};
  int32_t sequence = 0;
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
        auto order = g.topological_order();
        if (!order.ok()) continue;
        // The executor's layout of the activations over this order.
        const ArenaLayout arena = plan_memory(g, *order);
        auto offset_of = [&](ValueId v) -> uint64_t {
          return size_t(v) < arena.offsets.size() && arena.offsets[size_t(v)] != kNotPlanned
                     ? arena.offsets[size_t(v)]
                     : 0;
        };
        bool previous_streamed = false;  // the last node that dispatched ops streamed
        for (NodeId n : *order) {
          const Node& node = g.node(n);
          int concat_part = 0;
          const std::vector<OpSpec> specs = node_op_specs(g, n);
          for (OpSpec spec : specs) {
            CalibrationOp op;
            op.sequence = sequence;
            if (node.kind == NodeKind::kOp && node.op == OpKind::kAttention) {
              op.kv_length = sh.kv;
              spec.attrs.kv_length = sh.kv;
            }
            op.spec = spec;
            op.in_block = node.layer >= 0;
            op.after_stream = concat_part == 0 && previous_streamed;
            // Which inputs a model reads from weights or KV caches: a kOp node's inputs
            // by their storage; a copy's source is an activation.
            if (node.kind == NodeKind::kOp)
              for (size_t i = 0; i < node.inputs.size() && i < size_t(kMaxOpInputs); ++i) {
                const ValueKind k = g.value(g.storage_root(node.inputs[i])).kind;
                op.cold[i] = k == ValueKind::kConstant || k == ValueKind::kState;
              }
            // Which activations it reads and writes (the values its spec's operands come
            // from: a kOp's inputs, a concat part's or KV write's source; its output).
            auto activation = [&](ValueId v, DType dtype) -> int32_t {
              const ValueId root = g.storage_root(v);
              if (g.value(root).kind != ValueKind::kIntermediate || !is_floating(dtype)) return -1;
              return int32_t(root);
            };
            auto read = [&](size_t i, ValueId v) {
              op.input_value[i] = activation(v, spec.inputs[i].dtype);
              op.input_offset[i] = offset_of(v);
            };
            auto write = [&](ValueId v) {
              op.output_value = activation(v, spec.output.dtype);
              op.output_offset = offset_of(v);
            };
            if (node.kind == NodeKind::kOp) {
              for (int i = 0; i < spec.num_inputs && size_t(i) < node.inputs.size(); ++i)
                read(size_t(i), node.inputs[size_t(i)]);
              if (!node.outputs.empty()) write(node.outputs[0]);
            } else if (node.kind == NodeKind::kConcat && !node.outputs.empty()) {
              const size_t part = size_t(concat_part++);
              if (part < node.inputs.size()) read(0, node.inputs[part]);
              write(node.outputs[0]);
            } else if (node.kind == NodeKind::kWriteSlice && node.inputs.size() > 1) {
              read(0, node.inputs[1]);
              write(node.inputs[0]);
              op.cold_output = g.value(g.storage_root(node.inputs[0])).kind == ValueKind::kState;
            }
            op.arena_bytes = arena.arena_bytes;
            // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on
            // "literal" + std::string chains.
            op.label = where;
            op.label.append(": ").append(node.name).append(" ").append(op_kind_name(spec.kind));
            for (int i = 0; i < spec.num_inputs; ++i)
              op.label.append(" ").append(spec.inputs[i].shape.to_string());
            op.label.append(" -> ").append(spec.output.shape.to_string());
            out.push_back(std::move(op));
          }
          if (!specs.empty()) previous_streamed = evicts_caches(g, n);
        }
        ++sequence;
      }
    }
  return out;
}

std::vector<int64_t> calibration_token_ids(int64_t count, int64_t rows, int64_t first) {
  std::vector<int64_t> ids(size_t(std::max<int64_t>(count, 0)));
  if (rows <= 0) return ids;
  // A prime stride is coprime with any table size it does not divide, so the ids stay
  // distinct for count <= rows: 7919, or 7907 for a multiple of 7919 (one row for a
  // multiple of both, 62.6 M rows).
  const int64_t prime = rows % 7919 != 0 ? 7919 : rows % 7907 != 0 ? 7907 : 1;
  const int64_t stride = prime % rows == 0 ? 1 : prime % rows;
  int64_t id = ((first % rows) + rows) % rows;
  for (int64_t& v : ids) {
    v = id;
    id = (id + stride) % rows;
  }
  return ids;
}

namespace {

// Fill patterns for float dtypes: 1.0 for activations' first step (they then hold what
// the ops computed), 2^-10 for weights and KV caches. With every weight 2^-10 a matmul
// over K ~ 1000 inputs keeps its input's magnitude and a norm scales to ~1e-3, so the
// values a block computes stay ordinary numbers, as a trained model's do. With weights
// of 1.0 they grew by K per matmul, and silu and gelu, whose exp takes a slow path far
// from zero, measured 2.5x what they take in a model.
std::pair<uint64_t, uint32_t> fill_pattern(DType t, bool weight) {
  switch (t) {
    case DType::kF32:
      return {weight ? 0x3a800000u : 0x3f800000u, 4};
    case DType::kF16:
      return {weight ? 0x1400u : 0x3c00u, 2};
    case DType::kBF16:
      return {weight ? 0x3a80u : 0x3f80u, 2};
    default:
      return {0, 1};
  }
}

constexpr uint64_t kAlign = 4096;
uint64_t aligned(uint64_t b) { return (b + kAlign - 1) / kAlign * kAlign; }

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

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
  // The pool cold inputs are read from, filled once with the weight pattern of their
  // dtype (the sweep's compute dtype). Every dispatch takes the next region of it, so a
  // region is read again only after the whole pool was.
  DType cold_dtype = DType::kF32;
  for (const CalibrationOp& c : ops) {
    const auto it = std::find(c.cold.begin(), c.cold.begin() + c.spec.num_inputs, true);
    if (it != c.cold.begin() + c.spec.num_inputs &&
        is_floating(c.spec.inputs[size_t(it - c.cold.begin())].dtype)) {
      cold_dtype = c.spec.inputs[size_t(it - c.cold.begin())].dtype;
      break;
    }
  }
  Buffer pool;
  uint64_t pool_bytes = std::min(options.cold_bytes, device.info().memory_bytes / 4);
  if (pool_bytes > 0) {
    auto p = device.allocate(pool_bytes, kind);
    if (p.ok()) {
      pool = std::move(*p);
      const auto [pattern, width] = fill_pattern(cold_dtype, /*weight=*/true);
      if (!options.timing_only)
        HAL_RETURN_IF_ERROR(stream.fill(pool, 0, pool_bytes, pattern, width));
    } else {
      skip("cold-input pool of " + std::to_string(pool_bytes) + " bytes", p.status());
      pool_bytes = 0;
    }
  }
  // Whether `d` lives in the pool's rotating regions (it fits in half the pool), and the
  // next region for it (from the start again when the rest is too short).
  auto in_pool = [&](const TensorDesc& d) {
    return pool.valid() && aligned(d.extent_bytes()) <= pool_bytes / 2;
  };
  uint64_t cursor = 0;
  auto next_region = [&](const TensorDesc& d, uint64_t spacing) {
    const uint64_t bytes = std::max(aligned(d.extent_bytes()), spacing);
    if (cursor + bytes > pool_bytes) cursor = 0;
    const uint64_t at = cursor;
    cursor += bytes;
    return at;
  };
  // A KV-cache write's region is followed by this much unused pool: a model's K and V
  // caches are allocations of their own, so its V write finds neither the page (TLB entry,
  // page-table line) nor the prefetched lines the K write just touched. Written back to
  // back, the V write of a decode step measured 0.3-0.7 us where a model's takes ~1 us.
  constexpr uint64_t kColdWriteSpacing = 2ull << 20;
  // Per op of `ops`: its records' durations over every round, and the per-op gap between
  // back-to-back commands of each round.
  std::vector<std::vector<double>> durations(ops.size());
  std::vector<std::vector<double>> gaps(ops.size());
  std::vector<bool> failed(ops.size(), false);
  const int rounds = std::max(1, options.rounds);
  for (int round = 0; round < rounds; ++round) {
    // Skips are the same every round: reported in the first.
    auto skip_once = [&](const std::string& what, const Status& why) {
      if (round == 0) skip(what, why);
    };
    size_t first = 0;
    while (first < ops.size()) {
      if (options.progress)
        options.progress((ops.size() * size_t(round) + first) / size_t(rounds), ops.size());
      size_t last = first;
      while (last < ops.size() && ops[last].sequence == ops[first].sequence) ++last;
      // The sequence's ops this device runs, with their buffers; cold inputs larger than
      // the pool get buffers of their own (already larger than any cache).
      struct Prepared {
        const CalibrationOp* op;
        OpDescriptor desc;
        std::array<bool, kMaxOpInputs> from_pool{};
        bool output_from_pool = false;
        std::vector<double> durations;
      };
      std::vector<Prepared> seq;
      std::vector<Buffer> owned;
      // Embedding ids, uploaded from here: alive until the synchronize below.
      std::vector<std::vector<uint8_t>> host_ids;
      owned.reserve(size_t(kMaxOpInputs + 1) * (last - first) + 4);  // pointers into it stay valid
      // The sequence's activation arena, as the executor lays it out (every use inside it),
      // filled once with the activation pattern of the first floating activation's dtype.
      uint64_t arena_bytes = 0;
      DType arena_dtype = DType::kF32;
      bool arena_typed = false;
      for (size_t k = first; k < last; ++k) {
        const CalibrationOp& c = ops[k];
        auto need = [&](int32_t value, uint64_t offset, const TensorDesc& d) {
          if (value < 0) return;
          arena_bytes = std::max<uint64_t>({arena_bytes, c.arena_bytes, offset + d.extent_bytes()});
          if (!arena_typed) arena_dtype = d.dtype;
          arena_typed = true;
        };
        for (int i = 0; i < c.spec.num_inputs; ++i)
          need(c.input_value[size_t(i)], c.input_offset[size_t(i)], c.spec.inputs[i]);
        need(c.output_value, c.output_offset, c.spec.output);
      }
      Buffer arena;
      Status st;
      if (arena_bytes > 0) {
        auto a = device.allocate(arena_bytes, kind);
        Status made = a.status();
        if (a.ok()) {
          arena = std::move(*a);
          const auto [pattern, width] = fill_pattern(arena_dtype, /*weight=*/false);
          if (!options.timing_only) made = stream.fill(arena, 0, arena_bytes, pattern, width);
        }
        if (!made.ok()) {
          // No arena, no sequence: each of its ops is skipped with the reason.
          const Status why =
              made.with_context("activation arena of " + std::to_string(arena_bytes) + " bytes");
          for (size_t k = first; k < last; ++k) skip_once(ops[k].label, why);
          first = last;
          continue;
        }
      }
      for (size_t k = first; k < last && st.ok(); ++k) {
        const CalibrationOp& c = ops[k];
        if (!device.supports(c.spec)) {
          skip_once(c.label, unimplemented("not supported by the device"));
          continue;
        }
        Prepared p;
        p.op = &c;
        p.desc.kind = c.spec.kind;
        p.desc.attrs = c.spec.attrs;
        p.desc.num_inputs = c.spec.num_inputs;
        // Where `desc` lives: the arena at `offset` for an activation, else a buffer of
        // its own.
        auto place = [&](const TensorDesc& desc, int64_t int_value, int32_t value, uint64_t offset,
                         bool weight) -> std::optional<TensorRef> {
          if (value >= 0) return TensorRef{&arena, offset, desc};
          auto buf = device.allocate(std::max<uint64_t>(desc.extent_bytes(), 1), kind);
          if (!buf.ok()) {
            st = buf.status();
            return std::nullopt;
          }
          owned.push_back(std::move(*buf));
          const Buffer& made = owned.back();
          if (!options.timing_only && st.ok()) {
            if (desc.dtype == DType::kI32 || desc.dtype == DType::kI64) {
              st = stream.fill(made, 0, made.size(), uint64_t(int_value),
                               desc.dtype == DType::kI32 ? 4 : 8);
            } else {
              const auto [pattern, width] = fill_pattern(desc.dtype, weight);
              st = stream.fill(made, 0, made.size(), pattern, width);
            }
          }
          return TensorRef{&made, 0, desc};
        };
        for (int i = 0; i < c.spec.num_inputs && st.ok(); ++i) {
          const TensorDesc& d = c.spec.inputs[i];
          if (c.cold[size_t(i)] && in_pool(d)) {
            p.from_pool[size_t(i)] = true;
            p.desc.inputs[size_t(i)] = TensorRef{&pool, 0, d};
          } else if (auto ref = place(d, c.kv_length, c.input_value[size_t(i)],
                                      c.input_offset[size_t(i)], c.cold[size_t(i)])) {
            p.desc.inputs[size_t(i)] = *ref;
            // An embedding's ids: distinct rows of its table, as a prompt's tokens.
            const bool ids = c.spec.kind == OpKind::kEmbedding && i == 1 &&
                             (d.dtype == DType::kI32 || d.dtype == DType::kI64) &&
                             c.spec.inputs[0].shape.rank >= 1;
            if (ids && !options.timing_only && st.ok()) {
              const int64_t width = d.dtype == DType::kI32 ? 4 : 8;
              const uint64_t bytes = ref->buffer->size();
              // From mid-table: the table sits in the pool just after the region the op
              // before streamed (the last step's lm_head), and its first rows came in
              // with that stream's prefetches (a decode step's gather measured half of
              // a model's).
              const int64_t rows = c.spec.inputs[0].shape[0];
              const std::vector<int64_t> v =
                  calibration_token_ids(int64_t(bytes) / width, rows, rows / 2 + c.kv_length);
              std::vector<uint8_t>& host = host_ids.emplace_back(bytes);
              for (size_t j = 0; j < v.size(); ++j) {
                const int32_t narrow = int32_t(v[j]);
                std::memcpy(host.data() + j * size_t(width),
                            width == 4 ? static_cast<const void*>(&narrow) : &v[j], size_t(width));
              }
              st = stream.copy_from_host(host.data(), *ref->buffer, 0, bytes);
            }
          }
        }
        if (st.ok() && c.cold_output && in_pool(c.spec.output)) {
          p.output_from_pool = true;
          p.desc.output = TensorRef{&pool, 0, c.spec.output};
        } else if (st.ok()) {
          if (auto ref = place(c.spec.output, 0, c.output_value, c.output_offset, false))
            p.desc.output = *ref;
        }
        if (!st.ok()) {
          skip_once(c.label, st);
          st = ok_status();
          continue;
        }
        seq.push_back(std::move(p));
      }
      if (st.ok()) st = stream.synchronize();
      // One step: every op once, in order, each reading the next regions of the pool.
      auto step = [&]() -> Status {
        for (size_t i = 0; i < seq.size(); ++i) {
          OpDescriptor d = seq[i].desc;
          for (int in = 0; in < d.num_inputs; ++in)
            if (seq[i].from_pool[size_t(in)])
              d.inputs[size_t(in)].offset_bytes = next_region(d.inputs[size_t(in)].desc, 0);
          if (seq[i].output_from_pool)
            d.output.offset_bytes = next_region(d.output.desc, kColdWriteSpacing);
          HAL_RETURN_IF_ERROR(stream.dispatch(d, uint64_t(i) + 1));
        }
        return ok_status();
      };
      // A warm-up step (first touch, lazy initialisation), then steps until the records
      // cover min_time_s and every op ran min_reps times.
      if (st.ok() && !seq.empty()) st = step();
      if (st.ok()) st = stream.synchronize();
      stream.take_records();
      double busy = 0, wall = 0;
      int reps = 0;
      while (st.ok() && !seq.empty()) {
        st = stream.record(start);
        if (st.ok()) st = step();
        if (st.ok()) st = stream.record(end);
        if (st.ok()) st = stream.synchronize();
        if (!st.ok()) break;
        auto elapsed = Event::elapsed_seconds(start, end);
        wall += elapsed.ok() ? *elapsed : 0.0;
        for (const CommandRecord& rec : stream.take_records())
          if (rec.command == CommandKind::kOp && rec.tag >= 1 && rec.tag <= seq.size()) {
            busy += rec.duration_s();
            seq[size_t(rec.tag - 1)].durations.push_back(rec.duration_s());
          }
        ++reps;
        if ((busy >= options.min_time_s && reps >= options.min_reps) || reps >= options.max_reps)
          break;
      }
      if (!st.ok()) {
        for (const Prepared& p : seq) {
          skip_once(p.op->label, st);
          failed[size_t(p.op - ops.data())] = true;
        }
      } else {
        const double gap = reps > 0 && !seq.empty()
                               ? std::max(0.0, (wall - busy) / double(reps) / double(seq.size()))
                               : 0.0;
        for (const Prepared& p : seq) {
          const size_t at = size_t(p.op - ops.data());
          durations[at].insert(durations[at].end(), p.durations.begin(), p.durations.end());
          gaps[at].push_back(gap);
        }
      }
      first = last;
    }
  }
  std::vector<MeasuredOp> out;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (failed[i] || gaps[i].empty()) continue;  // skipped (reported) or not run here
    if (durations[i].empty()) {
      skip(ops[i].label, internal_error("no command records"));
      continue;
    }
    MeasuredOp m;
    m.op = &ops[i];
    m.seconds = median_of(durations[i]);
    double sum = 0;
    for (double d : durations[i]) sum += d;
    m.mean_seconds = sum / double(durations[i].size());
    m.gap_seconds = median_of(gaps[i]);
    m.reps = int(durations[i].size());
    out.push_back(m);
  }
  if (options.progress) options.progress(ops.size(), ops.size());
  return out;
}

}  // namespace hal::runtime
