// Gather and data-movement kernels: rotary embedding, embedding lookup (with the id range
// check reported through the error slot), pattern fills and byte copies that honour the
// error slot.
#include <cmath>

#include "kernel_common.cuh"
#include "quant_blocks.h"

namespace hal::cuda::kernels {
namespace {

// One thread per output element of x [.., S, H, D]; the angle in f64 so positions in the
// hundreds of thousands keep their precision, as in the reference.
__global__ void rotary_kernel(RotaryArgs a) {
  if (stream_failed(a.err)) return;
  const int r = a.rank;
  const int64_t d = a.shape[r - 1];
  const int64_t rd = a.rotary_dim;
  const int64_t half = rd / 2;
  int64_t total = 1;
  for (int i = 0; i < r; ++i) total *= a.shape[i];
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
    const int64_t j = e % d;
    int64_t rest = e / d;
    int64_t xo = j * a.x_strides[r - 1], oo = j * a.out_strides[r - 1];
    int64_t s = 0, b = 0;
    for (int dim = r - 2; dim >= 0; --dim) {
      const int64_t c = rest % a.shape[dim];
      rest /= a.shape[dim];
      xo += c * a.x_strides[dim];
      oo += c * a.out_strides[dim];
      if (dim == r - 3) s = c;
      if (dim == 0) b = c;
    }
    const float v = load_f(a.x, a.x_dtype, xo);
    float y = v;
    if (j < rd) {
      int64_t i, partner;
      bool first;
      if (a.interleaved) {
        first = (j % 2) == 0;
        i = j / 2;
        partner = first ? j + 1 : j - 1;
      } else {
        first = j < half;
        i = first ? j : j - half;
        partner = first ? j + half : j - half;
      }
      const int64_t po = a.positions_rank == 2 ? b * a.positions_strides[0] + s * a.positions_strides[1]
                                                : s * a.positions_strides[0];
      const double p = double(load_i64(a.positions, a.positions_dtype, po));
      const double inv_freq = a.inv_freq ? double(a.inv_freq[i * a.inv_freq_stride])
                                         : pow(double(a.theta), -2.0 * double(i) / double(rd));
      double sn, cs;
      sincos(p * inv_freq, &sn, &cs);
      const double u = double(v);
      const double w = double(load_f(a.x, a.x_dtype, xo + (partner - j) * a.x_strides[r - 1]));
      y = float(first ? u * cs - w * sn : u * cs + w * sn);
    }
    store_f(a.out, a.x_dtype, oo, y);
  }
}

// A block per id (grid-stride over ids), threads over the row.
__global__ void embedding_kernel(EmbeddingArgs a) {
  if (stream_failed(a.err)) return;
  for (int64_t flat = blockIdx.x; flat < a.num_ids; flat += gridDim.x) {
    int64_t io = 0, oo = 0, rest = flat;
    for (int dim = a.ids_rank - 1; dim >= 0; --dim) {
      const int64_t c = rest % a.ids_shape[dim];
      rest /= a.ids_shape[dim];
      io += c * a.ids_strides[dim];
      oo += c * a.out_strides[dim];
    }
    const int64_t id = load_i64(a.ids, a.ids_dtype, io);
    if (id < 0 || id >= a.vocab) {
      if (threadIdx.x == 0) record_failure(a.err, a.op_kind, id, flat, a.vocab);
      continue;
    }
    const int64_t ostride = a.out_strides[a.ids_rank];
    if (a.table_row_bytes > 0) {
      // Quantized table: threads over the row's 32-element blocks, decoded exactly.
      const uint8_t* row = static_cast<const uint8_t*>(a.table) + uint64_t(id * a.table_strides[0]) * a.table_row_bytes;
      for (int64_t b = threadIdx.x; b < a.dim / 32; b += blockDim.x) {
        float w[32];
        quant::dequant_block32(a.table_dtype, row, b, w);
        for (int j = 0; j < 32; ++j) store_f(a.out, a.out_dtype, oo + (32 * b + j) * ostride, w[j]);
      }
      continue;
    }
    const int64_t to = id * a.table_strides[0];
    for (int64_t e = threadIdx.x; e < a.dim; e += blockDim.x) {
      const int64_t src = to + e * a.table_strides[1];
      const int64_t dst = oo + e * ostride;
      if (a.table_dtype == a.out_dtype && a.table_dtype != kKF32)
        static_cast<uint16_t*>(a.out)[dst] = static_cast<const uint16_t*>(a.table)[src];
      else
        store_f(a.out, a.out_dtype, dst, load_f(a.table, a.table_dtype, src));
    }
  }
}

__global__ void fill_kernel(uint8_t* dst, uint64_t bytes, uint64_t pattern, uint32_t psize,
                            ErrorRef err) {
  if (stream_failed(err)) return;
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  const uint64_t first = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool aligned = (reinterpret_cast<uintptr_t>(dst) % psize) == 0;
  if (aligned && psize == 8) {
    for (uint64_t i = first; i < bytes / 8; i += stride) reinterpret_cast<uint64_t*>(dst)[i] = pattern;
  } else if (aligned && psize == 4) {
    for (uint64_t i = first; i < bytes / 4; i += stride)
      reinterpret_cast<uint32_t*>(dst)[i] = uint32_t(pattern);
  } else if (aligned && psize == 2) {
    for (uint64_t i = first; i < bytes / 2; i += stride)
      reinterpret_cast<uint16_t*>(dst)[i] = uint16_t(pattern);
  } else {
    for (uint64_t i = first; i < bytes; i += stride)
      dst[i] = uint8_t(pattern >> (8 * (i % psize)));
  }
}

__global__ void copy_bytes_kernel(uint8_t* dst, const uint8_t* src, uint64_t bytes, ErrorRef err) {
  if (stream_failed(err)) return;
  const uint64_t stride = uint64_t(gridDim.x) * blockDim.x;
  const uint64_t first = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool vec = ((reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src)) & 15) == 0;
  uint64_t done = 0;
  if (vec) {
    const uint64_t n16 = bytes / 16;
    for (uint64_t i = first; i < n16; i += stride)
      reinterpret_cast<uint4*>(dst)[i] = reinterpret_cast<const uint4*>(src)[i];
    done = n16 * 16;
  }
  for (uint64_t i = done + first; i < bytes; i += stride) dst[i] = src[i];
}

}  // namespace
}  // namespace hal::cuda::kernels

namespace hal::cuda {

cudaError_t launch_rotary(const RotaryArgs& a, cudaStream_t stream) {
  int64_t total = 1;
  for (int i = 0; i < a.rank; ++i) total *= a.shape[i];
  if (total <= 0) return cudaSuccess;
  kernels::rotary_kernel<<<kernels::grid_for(total, 256), 256, 0, stream>>>(a);
  return cudaGetLastError();
}

cudaError_t launch_embedding(const EmbeddingArgs& a, cudaStream_t stream) {
  if (a.num_ids <= 0) return cudaSuccess;
  const int threads = a.dim >= 256 ? 256 : (a.dim >= 64 ? 64 : 32);
  const int64_t blocks = a.num_ids < 65535 * 8 ? a.num_ids : 65535 * 8;
  kernels::embedding_kernel<<<unsigned(blocks), threads, 0, stream>>>(a);
  return cudaGetLastError();
}

cudaError_t launch_fill(void* dst, uint64_t bytes, const uint8_t pattern[8], uint32_t psize,
                        ErrorRef err, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  uint64_t p = 0;
  for (uint32_t i = 0; i < 8; ++i) p |= uint64_t(pattern[i % psize]) << (8 * i);
  kernels::fill_kernel<<<kernels::grid_for(int64_t(bytes / psize), 256, 4096), 256, 0, stream>>>(
      static_cast<uint8_t*>(dst), bytes, p, psize, err);
  return cudaGetLastError();
}

cudaError_t launch_copy_bytes(void* dst, const void* src, uint64_t bytes, ErrorRef err,
                              cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  kernels::copy_bytes_kernel<<<kernels::grid_for(int64_t(bytes / 16 + 1), 256, 4096), 256, 0,
                               stream>>>(static_cast<uint8_t*>(dst),
                                         static_cast<const uint8_t*>(src), bytes, err);
  return cudaGetLastError();
}

}  // namespace hal::cuda
