// Reference (de)quantization of the quantized weight formats (layouts in hal/op.h).
// Compiled with -ffp-contract=off: each multiply and add rounds on its own, as the
// layouts specify, so dequantized values are bit-exact with ggml's.
#include "hal/quant_reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace hal::reference {

namespace {

float load_f16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return f16_to_float(v);
}
void store_f16(uint8_t* p, float f) {
  const uint16_t v = float_to_f16(f);
  std::memcpy(p, &v, 2);
}
float load_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
void store_f32(uint8_t* p, float f) { std::memcpy(p, &f, 4); }

int nearest_int(float x) { return int(std::lround(x)); }
int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// The 6-bit scale and min of sub-block j (kQ4_K/kQ5_K), per hal/op.h.
void unpack_scale_min(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}
void pack_scale_min(const int* sc, const int* m, uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    s[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

// ---- dequantization, one block -------------------------------------------------------

void deq_q8_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  for (int i = 0; i < 32; ++i) y[i] = float(int8_t(b[2 + i])) * d;
}
void deq_q4_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = float((qs[j] & 15) - 8) * d;
    y[j + 16] = float((qs[j] >> 4) - 8) * d;
  }
}
void deq_q4_1(const uint8_t* b, float* y) {
  const float d = load_f16(b), m = load_f16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = float(qs[j] & 15) * d + m;
    y[j + 16] = float(qs[j] >> 4) * d + m;
  }
}
uint32_t load_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void deq_q5_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint32_t qh = load_u32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 15) | int((qh >> j) & 1) << 4;
    const int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
    y[j] = float(lo - 16) * d;
    y[j + 16] = float(hi - 16) * d;
  }
}
void deq_q5_1(const uint8_t* b, float* y) {
  const float d = load_f16(b), m = load_f16(b + 2);
  const uint32_t qh = load_u32(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 15) | int((qh >> j) & 1) << 4;
    const int hi = (qs[j] >> 4) | int((qh >> (j + 16)) & 1) << 4;
    y[j] = float(lo) * d + m;
    y[j + 16] = float(hi) * d + m;
  }
}
// kQ4_K (five_bit false) and kQ5_K.
void deq_q45_k(const uint8_t* b, float* y, bool five_bit) {
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = five_bit ? b + 48 : b + 16;
  for (int p = 0; p < 4; ++p) {
    int sc, m;
    unpack_scale_min(scales, 2 * p, &sc, &m);
    const float d1 = d * float(sc), m1 = dmin * float(m);
    unpack_scale_min(scales, 2 * p + 1, &sc, &m);
    const float d2 = d * float(sc), m2 = dmin * float(m);
    for (int l = 0; l < 32; ++l) {
      int lo = qs[32 * p + l] & 15, hi = qs[32 * p + l] >> 4;
      if (five_bit) {
        lo |= ((qh[l] >> (2 * p)) & 1) << 4;
        hi |= ((qh[l] >> (2 * p + 1)) & 1) << 4;
      }
      y[64 * p + l] = d1 * float(lo) - m1;
      y[64 * p + 32 + l] = d2 * float(hi) - m2;
    }
  }
}
void deq_q6_k(const uint8_t* b, float* y) {
  const float d = load_f16(b + 208);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b + 64 * h;
    const uint8_t* qh = b + 128 + 32 * h;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192) + 8 * h;
    float* o = y + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int q[4] = {
          (ql[l] & 15) | ((qh[l] & 3) << 4), (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4),
          (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4), (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)};
      for (int c = 0; c < 4; ++c) {
        const int e = 32 * c + l;
        o[e] = d * float(sc[e / 16]) * float(q[c] - 32);
      }
    }
  }
}
void deq_i4(const uint8_t* b, float* y, int g) {
  const float scale = load_f16(b);
  const int zero = b[2];
  const uint8_t* q = b + 4;
  for (int i = 0; i < g / 2; ++i) {
    y[2 * i] = scale * float((q[i] & 15) - zero);
    y[2 * i + 1] = scale * float((q[i] >> 4) - zero);
  }
}

// ---- quantization, one block ---------------------------------------------------------

// The value of largest magnitude (its sign kept), as the symmetric GGUF formats use.
float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  return max;
}

void q_q8_0(const float* x, uint8_t* b) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  store_f16(b, amax / 127.0f);
  const float d = load_f16(b);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < 32; ++i)
    b[2 + i] = uint8_t(int8_t(clamp_int(nearest_int(x[i] * id), -127, 127)));
}
// Symmetric 4/5-bit (kQ4_0, kQ5_0): d = max / -half, q = round(x / d) + half.
void q_sym(const float* x, uint8_t* b, int half, int qmax, int* q) {
  store_f16(b, signed_absmax(x, 32) / float(-half));
  const float d = load_f16(b);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < 32; ++i) q[i] = clamp_int(nearest_int(x[i] * id) + half, 0, qmax);
}
// Asymmetric 4/5-bit (kQ4_1, kQ5_1): x = d * q + m with m the block's minimum.
void q_asym(const float* x, uint8_t* b, int qmax, int* q) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < 32; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  store_f16(b, (hi - lo) / float(qmax));
  store_f16(b + 2, lo);
  const float d = load_f16(b), m = load_f16(b + 2);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < 32; ++i) q[i] = clamp_int(nearest_int((x[i] - m) * id), 0, qmax);
}
void pack_nibbles_split(const int* q, uint8_t* qs) {  // element j low, j + 16 high
  for (int j = 0; j < 16; ++j) qs[j] = uint8_t((q[j] & 15) | ((q[j + 16] & 15) << 4));
}
void pack_high_bits(const int* q, uint8_t* qh) {
  uint32_t bits = 0;
  for (int j = 0; j < 32; ++j) bits |= uint32_t((q[j] >> 4) & 1) << j;
  for (int i = 0; i < 4; ++i) qh[i] = uint8_t(bits >> (8 * i));
}

// Fits x ~ scale * q + offset (offset <= 0, q in [0, qmax]) to n values: candidate
// inverse scales around qmax / range, each followed by a least-squares refit.
void fit_scale_min(const float* x, int n, int qmax, float* scale, float* offset) {
  float lo = std::min(0.0f, *std::min_element(x, x + n));
  const float hi = *std::max_element(x, x + n);
  if (hi <= lo) {
    *scale = 0;
    *offset = lo;
    return;
  }
  float best_s = (hi - lo) / float(qmax), best_b = lo, best_err = INFINITY;
  for (int step = -10; step <= 10; ++step) {
    const float iscale = (float(qmax) + 0.1f * float(step)) / (hi - lo);
    double sl = 0, sll = 0, sx = 0, slx = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * (x[i] - lo)), 0, qmax);
      sl += l;
      sll += double(l) * l;
      sx += x[i];
      slx += double(l) * x[i];
    }
    const double det = double(n) * sll - sl * sl;
    if (det <= 0) continue;
    double s = (double(n) * slx - sl * sx) / det;
    double b = (sx - s * sl) / double(n);
    if (b > 0) {
      b = 0;
      s = sll > 0 ? slx / sll : 0;
    }
    if (s <= 0) continue;
    double err = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(int(std::lround((x[i] - b) / s)), 0, qmax);
      const double e = s * l + b - x[i];
      err += e * e;
    }
    if (err < best_err) {
      best_err = float(err);
      best_s = float(s);
      best_b = float(b);
    }
  }
  *scale = best_s;
  *offset = best_b;
}

void q_q45_k(const float* x, uint8_t* b, bool five_bit) {
  const int qmax = five_bit ? 31 : 15;
  float scale[8], mins[8];  // mins >= 0: x = scale * q - mins
  for (int j = 0; j < 8; ++j) {
    float off;
    fit_scale_min(x + 32 * j, 32, qmax, &scale[j], &off);
    mins[j] = -off;
  }
  const float max_scale = *std::max_element(scale, scale + 8);
  const float max_min = *std::max_element(mins, mins + 8);
  store_f16(b, max_scale / 63.0f);
  store_f16(b + 2, max_min / 63.0f);
  const float d = load_f16(b), dmin = load_f16(b + 2);
  int sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = d > 0 ? clamp_int(nearest_int(scale[j] / d), 0, 63) : 0;
    m[j] = dmin > 0 ? clamp_int(nearest_int(mins[j] / dmin), 0, 63) : 0;
  }
  uint8_t* scales = b + 4;
  pack_scale_min(sc, m, scales);
  uint8_t* qh = b + 16;
  uint8_t* qs = five_bit ? b + 48 : b + 16;
  if (five_bit) std::memset(qh, 0, 32);
  int q[256];
  for (int j = 0; j < 8; ++j) {
    const float dj = d * float(sc[j]), mj = dmin * float(m[j]);
    for (int l = 0; l < 32; ++l)
      q[32 * j + l] = dj > 0 ? clamp_int(nearest_int((x[32 * j + l] + mj) / dj), 0, qmax) : 0;
  }
  for (int p = 0; p < 4; ++p)
    for (int l = 0; l < 32; ++l) {
      const int lo = q[64 * p + l], hi = q[64 * p + 32 + l];
      qs[32 * p + l] = uint8_t((lo & 15) | ((hi & 15) << 4));
      if (five_bit)
        qh[l] |= uint8_t((((lo >> 4) & 1) << (2 * p)) | (((hi >> 4) & 1) << (2 * p + 1)));
    }
}

// Symmetric fit of 16 values to scale * (q - 32), q in [0, 63]: candidate scales near
// max / -32, each refitted by least squares.
float fit_scale_q6(const float* x) {
  const float max = signed_absmax(x, 16);
  if (max == 0) return 0;
  float best = max / -32.0f, best_err = INFINITY;
  for (int step = -9; step <= 9; ++step) {
    const float iscale = -(32.0f + 0.1f * float(step)) / max;
    double sxl = 0, sll = 0;
    for (int i = 0; i < 16; ++i) {
      const int l = clamp_int(nearest_int(iscale * x[i]), -32, 31);
      sxl += double(x[i]) * l;
      sll += double(l) * l;
    }
    if (sll <= 0) continue;
    const double s = sxl / sll;
    double err = 0;
    for (int i = 0; i < 16; ++i) {
      const int l = clamp_int(int(std::lround(x[i] / s)), -32, 31);
      err += (s * l - x[i]) * (s * l - x[i]);
    }
    if (err < best_err) {
      best_err = float(err);
      best = float(s);
    }
  }
  return best;
}

void q_q6_k(const float* x, uint8_t* b) {
  float scale[16];
  float amax = 0;
  for (int j = 0; j < 16; ++j) {
    scale[j] = fit_scale_q6(x + 16 * j);
    amax = std::max(amax, std::fabs(scale[j]));
  }
  store_f16(b + 208, amax / 127.0f);
  const float d = load_f16(b + 208);
  int8_t* sc = reinterpret_cast<int8_t*>(b + 192);
  int q[256];
  for (int j = 0; j < 16; ++j) {
    sc[j] = int8_t(d > 0 ? clamp_int(nearest_int(scale[j] / d), -127, 127) : 0);
    const float dj = d * float(sc[j]);
    for (int i = 0; i < 16; ++i)
      q[16 * j + i] = dj != 0 ? clamp_int(nearest_int(x[16 * j + i] / dj), -32, 31) + 32 : 32;
  }
  for (int h = 0; h < 2; ++h) {
    uint8_t* ql = b + 64 * h;
    uint8_t* qh = b + 128 + 32 * h;
    const int* qq = q + 128 * h;
    for (int l = 0; l < 32; ++l) {
      ql[l] = uint8_t((qq[l] & 15) | ((qq[l + 64] & 15) << 4));
      ql[l + 32] = uint8_t((qq[l + 32] & 15) | ((qq[l + 96] & 15) << 4));
      qh[l] = uint8_t((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) | ((qq[l + 64] >> 4) << 4) |
                      ((qq[l + 96] >> 4) << 6));
    }
  }
}

void q_i4(const float* x, uint8_t* b, int g) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < g; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  store_f16(b, std::max(hi - lo, 1e-5f) / 15.0f);
  const float s = load_f16(b);
  const int zero = clamp_int(nearest_int(-lo / s), 0, 15);
  b[2] = uint8_t(zero);
  b[3] = 0;
  for (int i = 0; i < g / 2; ++i) {
    const int q0 = clamp_int(nearest_int(x[2 * i] / s) + zero, 0, 15);
    const int q1 = clamp_int(nearest_int(x[2 * i + 1] / s) + zero, 0, 15);
    b[4 + i] = uint8_t(q0 | (q1 << 4));
  }
}

}  // namespace

float fp8_e4m3_to_float(uint8_t b) {
  const float sign = (b & 0x80) ? -1.0f : 1.0f;
  const int exp = (b >> 3) & 15, mant = b & 7;
  if (exp == 15 && mant == 7) return std::nanf("");
  if (exp == 0) return sign * std::ldexp(float(mant), -9);
  return sign * std::ldexp(1.0f + float(mant) / 8.0f, exp - 7);
}

uint8_t float_to_fp8_e4m3(float f) {
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  if (std::isnan(f)) return uint8_t(sign | 0x7f);
  const float a = std::fabs(f);
  if (a < std::ldexp(1.0f, -6)) {  // subnormal: steps of 2^-9 (8 steps reach the smallest normal)
    const int q = int(std::nearbyint(a * 512.0f));
    return uint8_t(sign | q);
  }
  int e = std::ilogb(a);
  int mant = int(std::nearbyint((std::ldexp(a, -e) - 1.0f) * 8.0f));
  if (mant == 8) {
    mant = 0;
    ++e;
  }
  if (e > 8 || (e == 8 && mant > 6)) return uint8_t(sign | 0x7e);  // saturate to 448
  return uint8_t(sign | ((e + 7) << 3) | mant);
}

void dequantize_row(DType t, const void* row, float* out, int64_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(row);
  const QuantLayout l = quant_layout(t);
  if (!is_quantized(t)) {
    if (is_floating(t) && dtype_size(t) >= 2)
      for (int64_t i = 0; i < n; ++i) out[i] = load_as_float(row, t, i);
    else
      std::fill(out, out + n, 0.0f);
    return;
  }
  if (t == DType::kI8Channel || t == DType::kFP8E4M3Channel) {
    const float scale = load_f32(p);
    for (int64_t i = 0; i < n; ++i)
      out[i] =
          scale * (t == DType::kI8Channel ? float(int8_t(p[4 + i])) : fp8_e4m3_to_float(p[4 + i]));
    return;
  }
  for (int64_t b = 0; b < n / l.block; ++b) {
    const uint8_t* blk = p + b * l.block_bytes;
    float* y = out + b * l.block;
    switch (t) {
      case DType::kQ8_0:
        deq_q8_0(blk, y);
        break;
      case DType::kQ4_0:
        deq_q4_0(blk, y);
        break;
      case DType::kQ4_1:
        deq_q4_1(blk, y);
        break;
      case DType::kQ5_0:
        deq_q5_0(blk, y);
        break;
      case DType::kQ5_1:
        deq_q5_1(blk, y);
        break;
      case DType::kQ4_K:
        deq_q45_k(blk, y, false);
        break;
      case DType::kQ5_K:
        deq_q45_k(blk, y, true);
        break;
      case DType::kQ6_K:
        deq_q6_k(blk, y);
        break;
      case DType::kI4G32:
      case DType::kI4G64:
      case DType::kI4G128:
        deq_i4(blk, y, l.block);
        break;
      default:
        break;
    }
  }
}

void quantize_row(DType t, const float* in, void* row, int64_t n) {
  uint8_t* p = static_cast<uint8_t*>(row);
  const QuantLayout l = quant_layout(t);
  if (!is_quantized(t)) {
    if (is_floating(t) && dtype_size(t) >= 2)
      for (int64_t i = 0; i < n; ++i) store_from_float(row, t, i, in[i]);
    return;
  }
  if (t == DType::kI8Channel || t == DType::kFP8E4M3Channel) {
    float amax = 0;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(in[i]));
    const float scale = amax / (t == DType::kI8Channel ? 127.0f : 448.0f);
    store_f32(p, scale);
    const float inv = scale > 0 ? 1.0f / scale : 0.0f;
    for (int64_t i = 0; i < n; ++i)
      p[4 + i] = t == DType::kI8Channel
                     ? uint8_t(int8_t(clamp_int(nearest_int(in[i] * inv), -127, 127)))
                     : float_to_fp8_e4m3(in[i] * inv);
    return;
  }
  int q[32];
  for (int64_t b = 0; b < n / l.block; ++b) {
    uint8_t* blk = p + b * l.block_bytes;
    const float* x = in + b * l.block;
    switch (t) {
      case DType::kQ8_0:
        q_q8_0(x, blk);
        break;
      case DType::kQ4_0:
        q_sym(x, blk, 8, 15, q);
        pack_nibbles_split(q, blk + 2);
        break;
      case DType::kQ4_1:
        q_asym(x, blk, 15, q);
        pack_nibbles_split(q, blk + 4);
        break;
      case DType::kQ5_0:
        q_sym(x, blk, 16, 31, q);
        pack_high_bits(q, blk + 2);
        pack_nibbles_split(q, blk + 6);
        break;
      case DType::kQ5_1:
        q_asym(x, blk, 31, q);
        pack_high_bits(q, blk + 4);
        pack_nibbles_split(q, blk + 8);
        break;
      case DType::kQ4_K:
        q_q45_k(x, blk, false);
        break;
      case DType::kQ5_K:
        q_q45_k(x, blk, true);
        break;
      case DType::kQ6_K:
        q_q6_k(x, blk);
        break;
      case DType::kI4G32:
      case DType::kI4G64:
      case DType::kI4G128:
        q_i4(x, blk, l.block);
        break;
      default:
        break;
    }
  }
}

std::vector<float> dequantize_rows(DType t, const void* data, int64_t rows, int64_t n) {
  std::vector<float> out(size_t(std::max<int64_t>(rows * n, 0)));
  const uint64_t rb = dtype_row_bytes(t, n);
  for (int64_t r = 0; r < rows; ++r)
    dequantize_row(t, static_cast<const uint8_t*>(data) + r * rb, out.data() + r * n, n);
  return out;
}

std::vector<uint8_t> quantize_rows(DType t, const float* in, int64_t rows, int64_t n) {
  const uint64_t rb = dtype_row_bytes(t, n);
  std::vector<uint8_t> out(size_t(rb * uint64_t(std::max<int64_t>(rows, 0))));
  for (int64_t r = 0; r < rows; ++r) quantize_row(t, in + r * n, out.data() + r * rb, n);
  return out;
}

}  // namespace hal::reference
