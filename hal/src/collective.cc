#include "hal/collective.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "hal/fp8.h"

namespace hal {

std::string_view collective_kind_name(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllReduce:
      return "all_reduce";
    case CollectiveKind::kAllGather:
      return "all_gather";
    case CollectiveKind::kReduceScatter:
      return "reduce_scatter";
    case CollectiveKind::kBroadcast:
      return "broadcast";
    case CollectiveKind::kSend:
      return "send";
    case CollectiveKind::kRecv:
      return "recv";
    case CollectiveKind::kInvalid:
      break;
  }
  return "invalid";
}

std::string_view reduction_name(Reduction r) {
  switch (r) {
    case Reduction::kSum:
      return "sum";
    case Reduction::kProd:
      return "prod";
    case Reduction::kMin:
      return "min";
    case Reduction::kMax:
      return "max";
  }
  return "invalid";
}

std::string_view link_class_name(LinkClass c) {
  switch (c) {
    case LinkClass::kNone:
      return "none";
    case LinkClass::kSharedMemory:
      return "shared-memory";
    case LinkClass::kPeer:
      return "peer";
    case LinkClass::kDieToDie:
      return "die-to-die";
    case LinkClass::kHostStaged:
      return "host-staged";
    case LinkClass::kNetwork:
      return "network";
  }
  return "invalid";
}

std::string_view collective_algorithm_name(CollectiveAlgorithm a) {
  switch (a) {
    case CollectiveAlgorithm::kDefault:
      return "default";
    case CollectiveAlgorithm::kRing:
      return "ring";
    case CollectiveAlgorithm::kTree:
      return "tree";
    case CollectiveAlgorithm::kDirect:
      return "direct";
  }
  return "invalid";
}

bool is_collective_dtype(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kI32:
    case DType::kI64:
    case DType::kI8:
    case DType::kU8:
    case DType::kFP8E4M3:
    case DType::kFP8E5M2:
      return true;
    default:
      return false;
  }
}

namespace {

// count * esize * factor, or max when it overflows.
uint64_t checked_bytes(uint64_t count, uint64_t esize, uint64_t factor) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  if (count != 0 && esize > max / count) return max;
  const uint64_t b = count * esize;
  if (b != 0 && factor > max / b) return max;
  return b * factor;
}

}  // namespace

uint64_t CollectiveShape::send_bytes(int32_t rank, int32_t size) const {
  const uint64_t e = dtype_size(dtype);
  switch (kind) {
    case CollectiveKind::kAllReduce:
    case CollectiveKind::kAllGather:
    case CollectiveKind::kSend:
      return checked_bytes(count, e, 1);
    case CollectiveKind::kReduceScatter:
      return checked_bytes(count, e, uint64_t(size > 0 ? size : 0));
    case CollectiveKind::kBroadcast:
      return rank == peer ? checked_bytes(count, e, 1) : 0;
    default:
      return 0;
  }
}

uint64_t CollectiveShape::recv_bytes(int32_t /*rank*/, int32_t size) const {
  const uint64_t e = dtype_size(dtype);
  switch (kind) {
    case CollectiveKind::kAllReduce:
    case CollectiveKind::kReduceScatter:
    case CollectiveKind::kBroadcast:
    case CollectiveKind::kRecv:
      return checked_bytes(count, e, 1);
    case CollectiveKind::kAllGather:
      return checked_bytes(count, e, uint64_t(size > 0 ? size : 0));
    default:
      return 0;
  }
}

std::string CollectiveShape::describe() const {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on
  // "literal" + std::string chains.
  std::string s(collective_kind_name(kind));
  if (reduces()) {
    s.append("(");
    s.append(reduction_name(reduction));
    s.append(")");
  }
  s.append(" of ");
  s.append(std::to_string(count));
  s.append(" ");
  s.append(dtype_name(dtype));
  if (kind == CollectiveKind::kBroadcast || kind == CollectiveKind::kRecv) s.append(" from rank ");
  if (kind == CollectiveKind::kSend) s.append(" to rank ");
  if (kind == CollectiveKind::kBroadcast || kind == CollectiveKind::kSend ||
      kind == CollectiveKind::kRecv)
    s.append(std::to_string(peer));
  return s;
}

Status validate_collective(const CollectiveShape& c, int32_t rank, int32_t size) {
  const int32_t kind = int32_t(c.kind);
  if (kind <= 0 || kind >= kCollectiveKindCount)
    return invalid_argument("collective kind " + std::to_string(kind) + " is unknown");
  const std::string what(collective_kind_name(c.kind));
  if (size < 1 || rank < 0 || rank >= size)
    return invalid_argument(what + ": rank " + std::to_string(rank) + " of a channel of " +
                            std::to_string(size));
  if (!is_collective_dtype(c.dtype))
    return invalid_argument(what + ": dtype " + std::string(dtype_name(c.dtype)) +
                            " is not an element type collectives move (f32, f16, bf16, i32, i64, "
                            "i8, u8, fp8e4m3, fp8e5m2)");
  if (c.reduces() && (int32_t(c.reduction) < 0 || int32_t(c.reduction) >= kReductionCount))
    return invalid_argument(what + ": reduction " + std::to_string(int32_t(c.reduction)) +
                            " is unknown");
  const bool p2p = c.kind == CollectiveKind::kSend || c.kind == CollectiveKind::kRecv;
  if (c.kind == CollectiveKind::kBroadcast || p2p) {
    if (c.peer < 0 || c.peer >= size)
      return invalid_argument(what + ": " + (p2p ? "peer" : "root") + " rank " +
                              std::to_string(c.peer) + " is outside the channel's [0, " +
                              std::to_string(size) + ")");
    if (p2p && c.peer == rank)
      return invalid_argument(what + ": rank " + std::to_string(rank) + " cannot " + what +
                              " to itself");
  }
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  if (c.send_bytes(rank, size) == max || c.recv_bytes(rank, size) == max)
    return invalid_argument(what + ": " + std::to_string(c.count) + " elements overflow a size");
  return ok_status();
}

Status check_collective_overlap(const CollectiveShape& c, int32_t rank, int32_t size,
                                bool same_buffer, uint64_t send_offset, uint64_t recv_offset) {
  if (!same_buffer) return ok_status();
  const uint64_t sb = c.send_bytes(rank, size), rb = c.recv_bytes(rank, size);
  if (sb == 0 || rb == 0) return ok_status();
  const bool overlap = send_offset < recv_offset + rb && recv_offset < send_offset + sb;
  if (!overlap) return ok_status();
  const uint64_t block = c.count * dtype_size(c.dtype);
  bool in_place = false;
  switch (c.kind) {
    case CollectiveKind::kAllReduce:
    case CollectiveKind::kBroadcast:
      in_place = send_offset == recv_offset;
      break;
    case CollectiveKind::kAllGather:
      in_place = send_offset == recv_offset + uint64_t(rank) * block;
      break;
    case CollectiveKind::kReduceScatter:
      in_place = recv_offset == send_offset + uint64_t(rank) * block;
      break;
    default:
      break;
  }
  if (in_place) return ok_status();
  return invalid_argument(std::string(collective_kind_name(c.kind)) +
                          ": send and recv overlap (send at byte " + std::to_string(send_offset) +
                          ", recv at byte " + std::to_string(recv_offset) +
                          " of one buffer) other than in place");
}

namespace {

constexpr uint64_t kBlock = 1024;

float load_f(const void* p, DType t, uint64_t i) {
  switch (t) {
    case DType::kF32:
      return static_cast<const float*>(p)[i];
    case DType::kF16:
      return f16_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::kBF16:
      return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
    case DType::kFP8E4M3:
      return fp8e4m3_to_float(static_cast<const uint8_t*>(p)[i]);
    case DType::kFP8E5M2:
      return fp8e5m2_to_float(static_cast<const uint8_t*>(p)[i]);
    default:
      return 0.f;
  }
}

void store_f(void* p, DType t, uint64_t i, float v) {
  switch (t) {
    case DType::kF32:
      static_cast<float*>(p)[i] = v;
      break;
    case DType::kF16:
      static_cast<uint16_t*>(p)[i] = float_to_f16(v);
      break;
    case DType::kBF16:
      static_cast<uint16_t*>(p)[i] = float_to_bf16(v);
      break;
    case DType::kFP8E4M3:
      static_cast<uint8_t*>(p)[i] = float_to_fp8e4m3(v);
      break;
    case DType::kFP8E5M2:
      static_cast<uint8_t*>(p)[i] = float_to_fp8e5m2(v);
      break;
    default:
      break;
  }
}

float combine_f(Reduction op, float a, float b) {
  switch (op) {
    case Reduction::kSum:
      return a + b;
    case Reduction::kProd:
      return a * b;
    case Reduction::kMin:
      return (a != a || b != b) ? NAN : (b < a ? b : a);
    case Reduction::kMax:
      return (a != a || b != b) ? NAN : (b > a ? b : a);
  }
  return a;
}

// Integers: sums and products wrap (computed on the unsigned type of the same width).
template <typename T>
T combine_i(Reduction op, T a, T b) {
  using U = std::make_unsigned_t<T>;
  switch (op) {
    case Reduction::kSum:
      return T(U(U(a) + U(b)));
    case Reduction::kProd:
      return T(U(U(a) * U(b)));
    case Reduction::kMin:
      return b < a ? b : a;
    case Reduction::kMax:
      return b > a ? b : a;
  }
  return a;
}

// f32 fast path: the fold over inputs, a block at a time so the accumulator stays in L1.
template <Reduction Op>
void reduce_f32(const void* const* inputs, int32_t n, uint64_t count, float* out) {
  float acc[kBlock];
  for (uint64_t b0 = 0; b0 < count; b0 += kBlock) {
    const uint64_t m = std::min(kBlock, count - b0);
    const float* first = static_cast<const float*>(inputs[0]) + b0;
    for (uint64_t j = 0; j < m; ++j) acc[j] = first[j];
    for (int32_t k = 1; k < n; ++k) {
      const float* in = static_cast<const float*>(inputs[k]) + b0;
      if constexpr (Op == Reduction::kSum) {
        for (uint64_t j = 0; j < m; ++j) acc[j] += in[j];
      } else {
        for (uint64_t j = 0; j < m; ++j) acc[j] = combine_f(Op, acc[j], in[j]);
      }
    }
    std::memcpy(out + b0, acc, m * sizeof(float));
  }
}

void reduce_float(DType t, Reduction op, const void* const* inputs, int32_t n, uint64_t count,
                  void* out) {
  if (t == DType::kF32) {
    float* o = static_cast<float*>(out);
    switch (op) {
      case Reduction::kSum:
        return reduce_f32<Reduction::kSum>(inputs, n, count, o);
      case Reduction::kProd:
        return reduce_f32<Reduction::kProd>(inputs, n, count, o);
      case Reduction::kMin:
        return reduce_f32<Reduction::kMin>(inputs, n, count, o);
      case Reduction::kMax:
        return reduce_f32<Reduction::kMax>(inputs, n, count, o);
    }
    return;
  }
  float acc[kBlock];
  for (uint64_t b0 = 0; b0 < count; b0 += kBlock) {
    const uint64_t m = std::min(kBlock, count - b0);
    for (uint64_t j = 0; j < m; ++j) acc[j] = load_f(inputs[0], t, b0 + j);
    for (int32_t k = 1; k < n; ++k)
      for (uint64_t j = 0; j < m; ++j) acc[j] = combine_f(op, acc[j], load_f(inputs[k], t, b0 + j));
    for (uint64_t j = 0; j < m; ++j) store_f(out, t, b0 + j, acc[j]);
  }
}

template <typename T>
void reduce_int(Reduction op, const void* const* inputs, int32_t n, uint64_t count, void* out) {
  T acc[kBlock];
  for (uint64_t b0 = 0; b0 < count; b0 += kBlock) {
    const uint64_t m = std::min(kBlock, count - b0);
    std::memcpy(acc, static_cast<const T*>(inputs[0]) + b0, m * sizeof(T));
    for (int32_t k = 1; k < n; ++k) {
      const T* in = static_cast<const T*>(inputs[k]) + b0;
      for (uint64_t j = 0; j < m; ++j) acc[j] = combine_i<T>(op, acc[j], in[j]);
    }
    std::memcpy(static_cast<T*>(out) + b0, acc, m * sizeof(T));
  }
}

}  // namespace

void reduce_elements(DType dtype, Reduction op, const void* const* inputs, int32_t num_inputs,
                     uint64_t count, void* out) {
  if (num_inputs < 1 || count == 0) return;
  switch (dtype) {
    case DType::kI32:
      return reduce_int<int32_t>(op, inputs, num_inputs, count, out);
    case DType::kI64:
      return reduce_int<int64_t>(op, inputs, num_inputs, count, out);
    case DType::kI8:
      return reduce_int<int8_t>(op, inputs, num_inputs, count, out);
    case DType::kU8:
      return reduce_int<uint8_t>(op, inputs, num_inputs, count, out);
    default:
      return reduce_float(dtype, op, inputs, num_inputs, count, out);
  }
}

double bus_bandwidth_factor(CollectiveKind kind, int32_t size) {
  const double n = size > 0 ? double(size) : 1.0;
  switch (kind) {
    case CollectiveKind::kAllReduce:
      return 2.0 * (n - 1) / n;
    case CollectiveKind::kAllGather:
    case CollectiveKind::kReduceScatter:
      return (n - 1) / n;
    default:
      return 1.0;
  }
}

double reduction_flops(const CollectiveShape& shape, int32_t size) {
  const double n = size > 0 ? double(size) : 1.0;
  if (shape.kind == CollectiveKind::kAllReduce) return double(shape.count) * (n - 1) / n;
  if (shape.kind == CollectiveKind::kReduceScatter) return double(shape.count) * (n - 1);
  return 0;
}

}  // namespace hal
