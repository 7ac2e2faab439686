// Attention (flash-style: key blocks with an online softmax, never a full score matrix)
// and rotary embedding.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cpu_ops.h"
#include "cpu_simd.h"
#include "cpu_threading.h"

namespace hal::cpu {

namespace {

constexpr int64_t kKeyBlock = 64;  // keys per block (4 vectors of scores per row)
constexpr int64_t kRowBlock = 64;  // query rows per work item (at most 4 vectors)
constexpr int64_t kFewRows = 4;    // up to this many rows: dot products straight off K rows

int64_t round16(int64_t v) { return (v + 15) / 16 * 16; }

struct AttentionShape {
  int64_t B, Sq, Hq, D, Skv, Hkv, Dv, G;
  float scale;
  bool causal;
};

// Rows of K or V for keys [j0, j0 + jn) of (b, head) as dense-enough f32: in place when
// f32 with a unit last stride (and, for V, a width the vector loops may read whole), else
// converted into `buf` with rows `pad` apart.
struct KeyRows {
  const float* p;
  int64_t stride;
};
KeyRows key_rows(const void* base, const TensorDesc& t, int64_t b, int64_t j0, int64_t jn,
                 int64_t head, int64_t width, int64_t pad, bool need_whole_vectors, float* buf) {
  const int64_t off = b * t.strides[0] + j0 * t.strides[1] + head * t.strides[2];
  if (t.dtype == DType::kF32 && (t.strides[3] == 1 || width == 1) &&
      (!need_whole_vectors || width % 16 == 0))
    return {static_cast<const float*>(base) + off, t.strides[1]};
  const int64_t esz = dtype_size(t.dtype);
  const char* p = static_cast<const char*>(base) + off * esz;
  for (int64_t j = 0; j < jn; ++j) {
    float* row = buf + j * pad;
    load_f32(p + j * t.strides[1] * esz, t.dtype, t.strides[3], width, row);
    for (int64_t e = width; e < pad; ++e) row[e] = 0.0f;
  }
  return {buf, pad};
}

// In 8-float vectors: compiled for AVX2, GCC kept the 16-float form's accumulators on the
// stack (a 16-float vector is two ymm registers there), and the decode attention spent
// its time on those round trips. Each lane sums what it summed in the 16-float form
// (lo = lanes 0-7, hi = lanes 8-15 of its two accumulators) and the lanes are added in
// the same order, so the values are unchanged.
HAL_CPU_INLINE float dot(const float* a, const float* b, int64_t n) {
  v8f lo0{}, hi0{}, lo1{}, hi1{};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    lo0 += load8(a + i) * load8(b + i);
    hi0 += load8(a + i + 8) * load8(b + i + 8);
    lo1 += load8(a + i + 16) * load8(b + i + 16);
    hi1 += load8(a + i + 24) * load8(b + i + 24);
  }
  for (; i + 16 <= n; i += 16) {
    lo0 += load8(a + i) * load8(b + i);
    hi0 += load8(a + i + 8) * load8(b + i + 8);
  }
  const v8f lo = lo0 + lo1, hi = hi0 + hi1;
  float s = 0;
  for (int l = 0; l < 8; ++l) s += lo[l];
  for (int l = 0; l < 8; ++l) s += hi[l];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// ---- few query rows (decode): dot products straight off the K rows -----------------

// Lane t of the result = the sum of v[t]'s 8 lanes (a transposing pairwise-add tree).
HAL_CPU_INLINE v8f lane_sums8(const v8f* v) {
  auto hadd = [](v8f a, v8f b) {
    return __builtin_shufflevector(a, b, 0, 2, 8, 10, 4, 6, 12, 14) +
           __builtin_shufflevector(a, b, 1, 3, 9, 11, 5, 7, 13, 15);
  };
  const v8f h01 = hadd(v[0], v[1]), h23 = hadd(v[2], v[3]);
  const v8f h45 = hadd(v[4], v[5]), h67 = hadd(v[6], v[7]);
  const v8f h0123 = hadd(h01, h23), h4567 = hadd(h45, h67);
  // h0123 = [k0..k3 over lanes 0-3 | k0..k3 over lanes 4-7], h4567 likewise for k4..k7.
  return __builtin_shufflevector(h0123, h4567, 0, 1, 2, 3, 8, 9, 10, 11) +
         __builtin_shufflevector(h0123, h4567, 4, 5, 6, 7, 12, 13, 14, 15);
}

// s[r * kKeyBlock + j] = q_r . k_j for nr <= kFewRows rows (q: rows d apart). Eight keys
// at a time, one accumulator each, reduced together: one key at a time spent most of its
// time in the serial sum of its accumulator's lanes (decode attention was ~14% of a
// GPT-2-small q4_0 decode at a 200-token context).
HAL_CPU_MULTIVERSION
void few_rows_scores(const float* q, int64_t nr, int64_t d, const KeyRows& k, int64_t jn,
                     float* s) {
  int64_t j = 0;
  if (d % 8 == 0)
    for (; j + 8 <= jn; j += 8)
      for (int64_t r = 0; r < nr; ++r) {
        const float* qr = q + r * d;
        v8f acc[8] = {};
        for (int64_t e = 0; e < d; e += 8) {
          const v8f qv = load8(qr + e);
          for (int t = 0; t < 8; ++t) acc[t] += qv * load8(k.p + (j + t) * k.stride + e);
        }
        store8(s + r * kKeyBlock + j, lane_sums8(acc));
      }
  for (; j < jn; ++j) {
    const float* kr = k.p + j * k.stride;
    for (int64_t r = 0; r < nr; ++r) s[r * kKeyBlock + j] = dot(q + r * d, kr, d);
  }
}

// o[0..8w) = o * corr + sum_j s[j] v_j[c..c + 8w): W vectors when W > 0 (a fixed count the
// compiler keeps in registers; a run-time count left the accumulators on the stack), else w.
template <int W>
HAL_CPU_INLINE void weighted_rows(const float* s, int64_t jn, const KeyRows& v, int64_t c,
                                  float corr, float* o, int64_t w = W) {
  v8f acc[8] = {};
#pragma GCC unroll 8
  for (int64_t q = 0; q < (W ? W : w); ++q) acc[q] = load8(o + 8 * q) * corr;
  for (int64_t j = 0; j < jn; ++j) {
    const float p = s[j];
    const float* vr = v.p + j * v.stride + c;
#pragma GCC unroll 8
    for (int64_t q = 0; q < (W ? W : w); ++q) acc[q] += p * load8(vr + 8 * q);
  }
#pragma GCC unroll 8
  for (int64_t q = 0; q < (W ? W : w); ++q) store8(o + 8 * q, acc[q]);
}

// Online softmax step for one row: scores s[0..jn) (already masked with -inf), state
// (m, l, o[dvp]); v rows of width dvp (a multiple of 16) with `v.stride` between keys.
HAL_CPU_MULTIVERSION
void few_rows_update(float* s, int64_t jn, const KeyRows& v, int64_t dvp, float* m, float* l,
                     float* o) {
  const float bm = row_max(s, jn);
  const float m_new = bm > *m ? bm : *m;
  if (m_new == -__builtin_inff()) return;  // nothing visible yet
  const float corr = fast_exp(*m - m_new);
  int64_t j = 0;
  for (; j + 8 <= jn; j += 8) store8(s + j, fast_exp<v8f>(load8(s + j) - m_new));
  for (; j < jn; ++j) s[j] = fast_exp(s[j] - m_new);
  *l = *l * corr + row_sum(s, jn);
  *m = m_new;
  // 8-float vectors for the reason dot() gives (same lanes, same values).
  for (int64_t c = 0; c < dvp; c += 64) {
    const int64_t w = std::min<int64_t>(64, dvp - c) / 8;  // 8-float vectors in this chunk
    if (w == 8)
      weighted_rows<8>(s, jn, v, c, corr, o + c);
    else
      weighted_rows<0>(s, jn, v, c, corr, o + c, w);
  }
}

// ---- many query rows (prefill, grouped heads): scores transposed, st[j][r] ---------------
//
// Q is transposed once per work item (qt[e][r], rows padded to a multiple of 16 with
// zeros), so scores come out as st[key][row]: the masked online softmax then runs along
// rows in whole vectors, and no K block needs transposing.

// Register tiles: an AVX-512 core holds 32 16-float vectors, an AVX2 core 16 8-float ones
// (a v16f takes two there), so the tiles are chosen by what the running CPU has (the
// same test target_clones' resolver makes). Every tile sums in the same order, so the
// choice changes speed, never values.
bool wide_registers() {
#if defined(__x86_64__) && !defined(HAL_CPU_NO_MULTIVERSION)
  static const bool wide = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return wide;
#else
  return false;
#endif
}

template <class V>
HAL_CPU_INLINE V loadv(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
HAL_CPU_INLINE void storev(float* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

// st[j + q][L v ..] = k_{j+q} . qt[.][L v ..] for q < KB, v < NV (V: vectors of L floats).
template <class V, int KB, int NV>
HAL_CPU_INLINE void st_tile(const float* qt, int64_t nrp, int64_t d, const KeyRows& k, int64_t j,
                            float* st) {
  constexpr int L = int(sizeof(V) / sizeof(float));
  const float* k0 = k.p + j * k.stride;
  V acc[KB][NV];
  for (int q = 0; q < KB; ++q)
    for (int v = 0; v < NV; ++v) acc[q][v] = V{};
  for (int64_t e = 0; e < d; ++e) {
    V x[NV];
    for (int v = 0; v < NV; ++v) x[v] = loadv<V>(qt + e * nrp + L * v);
    for (int q = 0; q < KB; ++q) {
      const float a = k0[q * k.stride + e];
      for (int v = 0; v < NV; ++v) acc[q][v] += a * x[v];
    }
  }
  for (int q = 0; q < KB; ++q)
    for (int v = 0; v < NV; ++v) storev(st + (j + q) * nrp + L * v, acc[q][v]);
}

// Scores of keys [0, jn) for nrp transposed query rows (nrp a multiple of NV x L): tiles
// of KB keys x NV vectors of rows.
template <class V, int KB, int NV>
HAL_CPU_INLINE void st_scores(const float* qt, int64_t nrp, int64_t d, const KeyRows& k, int64_t jn,
                              float* st) {
  constexpr int L = int(sizeof(V) / sizeof(float));
  for (int64_t c = 0; c < nrp; c += NV * L) {
    int64_t j = 0;
    for (; j + KB <= jn; j += KB) st_tile<V, KB, NV>(qt + c, nrp, d, k, j, st + c);
    for (; j < jn; ++j) st_tile<V, 1, NV>(qt + c, nrp, d, k, j, st + c);
  }
}

// o[r][c..c+L W) = o * corr[r] + sum_j st[j][r] v[j][c..], rows r0..r0+3.
template <class V, int W>
HAL_CPU_INLINE void pv_rows4(const float* st, int64_t nrp, int64_t r0, int64_t jn, const KeyRows& v,
                             int64_t c, const float* corr, float* o, int64_t dvp) {
  constexpr int L = int(sizeof(V) / sizeof(float));
  V acc[4][W];
  for (int i = 0; i < 4; ++i)
    for (int w = 0; w < W; ++w) acc[i][w] = loadv<V>(o + (r0 + i) * dvp + c + L * w) * corr[r0 + i];
  for (int64_t j = 0; j < jn; ++j) {
    const float* vr = v.p + j * v.stride + c;
    V x[W];
    for (int w = 0; w < W; ++w) x[w] = loadv<V>(vr + L * w);
    const float* p = st + j * nrp + r0;
    for (int i = 0; i < 4; ++i)
      for (int w = 0; w < W; ++w) acc[i][w] += p[i] * x[w];
  }
  for (int i = 0; i < 4; ++i)
    for (int w = 0; w < W; ++w) storev(o + (r0 + i) * dvp + c + L * w, acc[i][w]);
}

// One key block for nrp (multiple of 16, <= 64) transposed query rows; nr real rows.
HAL_CPU_MULTIVERSION
void many_rows_block(const float* qt, int64_t nr, int64_t nrp, int64_t d, const KeyRows& k,
                     int64_t jn, int64_t j0, const float* vis, const KeyRows& v, int64_t dvp,
                     float* st, float* m, float* l, float* corr, float* o) {
  const bool wide = wide_registers();
  if (!wide) {
    st_scores<v8f, 4, 2>(qt, nrp, d, k, jn, st);  // 8 + 2 + 1 of AVX2's 16 registers
  } else {
    switch (nrp / 16) {
      case 1:
        st_scores<v16f, 4, 1>(qt, nrp, d, k, jn, st);
        break;
      case 2:
        st_scores<v16f, 4, 2>(qt, nrp, d, k, jn, st);
        break;
      case 3:
        st_scores<v16f, 4, 3>(qt, nrp, d, k, jn, st);
        break;
      default:
        st_scores<v16f, 4, 4>(qt, nrp, d, k, jn, st);
        break;
    }
  }
  // Mask, block maximum, rescale factors; all in whole vectors along rows (8-float ones,
  // whose selects stay vector instructions on AVX2).
  const int64_t nv = nrp / 8;
  v8f bm[kRowBlock / 8];
  for (int64_t q = 0; q < nv; ++q) bm[q] = v8f{} - __builtin_inff();
  for (int64_t j = 0; j < jn; ++j) {
    const float key = float(j0 + j);
    float* sr = st + j * nrp;
    for (int64_t q = 0; q < nv; ++q) {
      const v8f x = key >= load8(vis + 8 * q) ? -__builtin_inff() : load8(sr + 8 * q);
      store8(sr + 8 * q, x);
      bm[q] = x > bm[q] ? x : bm[q];
    }
  }
  v8f msafe[kRowBlock / 8], lsum[kRowBlock / 8];
  for (int64_t q = 0; q < nv; ++q) {
    const v8f mo = load8(m + 8 * q);
    const v8f m_new = bm[q] > mo ? bm[q] : mo;
    msafe[q] = m_new == -__builtin_inff() ? 0.0f : m_new;  // no -inf - -inf
    const v8f c = fast_exp(mo - msafe[q]);
    store8(corr + 8 * q, c);
    store8(m + 8 * q, m_new);
    lsum[q] = load8(l + 8 * q) * c;
  }
  for (int64_t j = 0; j < jn; ++j) {
    float* sr = st + j * nrp;
    for (int64_t q = 0; q < nv; ++q) {
      const v8f p = fast_exp(load8(sr + 8 * q) - msafe[q]);
      store8(sr + 8 * q, p);
      lsum[q] += p;
    }
  }
  for (int64_t q = 0; q < nv; ++q) store8(l + 8 * q, lsum[q]);
  for (int64_t r0 = 0; r0 < nr; r0 += 4) {
    if (!wide) {  // dvp is a multiple of 16: two 8-float vectors per pass
      for (int64_t c = 0; c < dvp; c += 16) pv_rows4<v8f, 2>(st, nrp, r0, jn, v, c, corr, o, dvp);
      continue;
    }
    for (int64_t c = 0; c < dvp; c += 64) {
      switch (std::min<int64_t>(64, dvp - c) / 16) {
        case 1:
          pv_rows4<v16f, 1>(st, nrp, r0, jn, v, c, corr, o, dvp);
          break;
        case 2:
          pv_rows4<v16f, 2>(st, nrp, r0, jn, v, c, corr, o, dvp);
          break;
        case 3:
          pv_rows4<v16f, 3>(st, nrp, r0, jn, v, c, corr, o, dvp);
          break;
        default:
          pv_rows4<v16f, 4>(st, nrp, r0, jn, v, c, corr, o, dvp);
          break;
      }
    }
  }
}

}  // namespace

Status attention(const OpSpec& spec, const void* const* in, void* out) {
  const TensorDesc& qd = spec.inputs[0];
  const TensorDesc& kd = spec.inputs[1];
  const TensorDesc& vd = spec.inputs[2];
  const TensorDesc& od = spec.output;
  const OpAttributes& at = spec.attrs;
  AttentionShape sh{qd.shape[0], qd.shape[1], qd.shape[2], qd.shape[3], kd.shape[1],
                    kd.shape[2], vd.shape[3], 0,           0.0f,        at.causal};
  sh.G = sh.Hq / sh.Hkv;
  sh.scale = at.scale == 0.0f ? float(1.0 / std::sqrt(double(sh.D))) : at.scale;
  if (od.numel() == 0) return ok_status();

  // Visible key counts per batch, checked before any work.
  std::vector<int64_t> kv_len(size_t(sh.B));
  for (int64_t b = 0; b < sh.B; ++b) {
    int64_t n = at.kv_length > 0 ? at.kv_length : sh.Skv;
    if (spec.num_inputs == 4) {
      n = static_cast<const int32_t*>(in[3])[b * spec.inputs[3].strides[0]];
      if (n < 0 || n > sh.Skv)
        return invalid_argument("attention: kv_lengths[" + std::to_string(b) + "] = " +
                                std::to_string(n) + " outside [0, " + std::to_string(sh.Skv) + "]");
    }
    kv_len[size_t(b)] = n;
  }
  auto q_offset = [&](int64_t b) {
    return at.q_offset >= 0 ? at.q_offset : kv_len[size_t(b)] - sh.Sq;
  };
  auto visible = [&](int64_t b, int64_t i) {
    const int64_t n = kv_len[size_t(b)];
    return sh.causal ? std::clamp<int64_t>(q_offset(b) + i + 1, 0, n) : n;
  };

  // Work items: (b, kv head, block of query rows, key split). Rows of a kv head are
  // (query i, group member g), so one K/V block serves every query head that shares it.
  const int64_t rows = sh.Sq * sh.G;
  const int64_t row_blocks = (rows + kRowBlock - 1) / kRowBlock;
  const int64_t base_items = sh.B * sh.Hkv * row_blocks;
  int64_t max_kv = 0;
  for (int64_t n : kv_len) max_kv = std::max(max_kv, n);
  // Few items over a long cache (decode): split the keys so every core streams a part.
  const int64_t threads = thread_budget();
  int64_t splits = 1;
  if (base_items < 2 * threads && max_kv >= 512)
    splits = std::clamp<int64_t>((2 * threads + base_items - 1) / base_items, 1, max_kv / 256);
  const int64_t items = base_items * splits;

  const int64_t dvp = round16(sh.Dv), dp = round16(sh.D);
  const int64_t nr_max = std::min(rows, kRowBlock);
  // Split partial results: per item, per row: m, l, o[dvp].
  const int64_t partial_row = 2 + dvp;
  float* partial =
      splits > 1 ? scratch_floats(Scratch::kOuter0, size_t(items * nr_max * partial_row)) : nullptr;
  const int64_t qsz = dtype_size(qd.dtype), osz = dtype_size(od.dtype);

  auto row_head = [&](int64_t hk, int64_t r, int64_t* i, int64_t* h) {
    *i = r / sh.G;
    *h = hk * sh.G + r % sh.G;
  };

  parallel_for(items, 1, [&](int64_t it0, int64_t it1) {
    const int64_t nrp_max = round16(nr_max);
    const size_t need = size_t(nrp_max * dp + nrp_max * dvp + nrp_max * kKeyBlock + kKeyBlock * dp +
                               kKeyBlock * dvp + 4 * nrp_max);
    float* mem = scratch_floats(Scratch::kLeaf0, need);
    float* qs = mem;               // few rows: q[r][e]; many rows: qt[e][r]
    float* o = qs + nrp_max * dp;  // [row][dvp]
    float* s = o + nrp_max * dvp;  // few rows: s[r][j]; many rows: st[j][r]
    float* ks = s + nrp_max * kKeyBlock;
    float* vs = ks + kKeyBlock * dp;
    float* m = vs + kKeyBlock * dvp;
    float* l = m + nrp_max;
    float* corr = l + nrp_max;
    float* visf = corr + nrp_max;
    for (int64_t it = it0; it < it1; ++it) {
      const int64_t split = it % splits;
      int64_t rest = it / splits;
      const int64_t rb = rest % row_blocks;
      rest /= row_blocks;
      const int64_t hk = rest % sh.Hkv;
      const int64_t b = rest / sh.Hkv;
      const int64_t r0 = rb * kRowBlock, nr = std::min(kRowBlock, rows - r0);
      const bool few = nr <= kFewRows;
      const int64_t nrp = few ? nr : round16(nr);
      // Queries (scaled) and each row's visible key count; padded rows see nothing.
      int64_t row_vis[kRowBlock];
      int64_t j_end = 0;
      for (int64_t r = 0; r < nrp; ++r) {
        m[r] = -__builtin_inff();
        l[r] = 0.0f;
        visf[r] = 0.0f;
        for (int64_t e = 0; e < dvp; ++e) o[r * dvp + e] = 0.0f;
        if (!few)
          for (int64_t e = 0; e < sh.D; ++e) qs[e * nrp + r] = 0.0f;
      }
      float* qrow = scratch_floats(Scratch::kLeaf1, size_t(sh.D));
      for (int64_t r = 0; r < nr; ++r) {
        int64_t i, h;
        row_head(hk, r0 + r, &i, &h);
        const char* qp = static_cast<const char*>(in[0]) +
                         (b * qd.strides[0] + i * qd.strides[1] + h * qd.strides[2]) * qsz;
        load_f32(qp, qd.dtype, qd.strides[3], sh.D, qrow);
        for (int64_t e = 0; e < sh.D; ++e) {
          if (few)
            qs[r * sh.D + e] = qrow[e] * sh.scale;
          else
            qs[e * nrp + r] = qrow[e] * sh.scale;
        }
        row_vis[r] = visible(b, i);
        visf[r] = float(row_vis[r]);
        j_end = std::max(j_end, row_vis[r]);
      }
      const int64_t span = max_kv;
      const int64_t j_lo = span * split / splits;
      const int64_t j_hi = std::min(j_end, span * (split + 1) / splits);
      for (int64_t j0 = j_lo; j0 < j_hi; j0 += kKeyBlock) {
        const int64_t jn = std::min(kKeyBlock, j_hi - j0);
        const KeyRows kr = key_rows(in[1], kd, b, j0, jn, hk, sh.D, sh.D, false, ks);
        const KeyRows vr = key_rows(in[2], vd, b, j0, jn, hk, sh.Dv, dvp, true, vs);
        if (!few) {
          many_rows_block(qs, nr, nrp, sh.D, kr, jn, j0, visf, vr, dvp, s, m, l, corr, o);
          continue;
        }
        few_rows_scores(qs, nr, sh.D, kr, jn, s);
        for (int64_t r = 0; r < nr; ++r) {
          float* sr = s + r * kKeyBlock;
          for (int64_t j = std::max<int64_t>(0, row_vis[r] - j0); j < jn; ++j)
            sr[j] = -__builtin_inff();
          few_rows_update(sr, jn, vr, dvp, m + r, l + r, o + r * dvp);
        }
      }
      if (splits > 1) {
        float* part = partial + it * nr_max * partial_row;
        for (int64_t r = 0; r < nr; ++r) {
          part[r * partial_row] = m[r];
          part[r * partial_row + 1] = l[r];
          std::copy(o + r * dvp, o + (r + 1) * dvp, part + r * partial_row + 2);
        }
        continue;
      }
      for (int64_t r = 0; r < nr; ++r) {
        int64_t i, h;
        row_head(hk, r0 + r, &i, &h);
        float* orow = o + r * dvp;
        const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        for (int64_t e = 0; e < sh.Dv; ++e) orow[e] *= inv;
        char* op = static_cast<char*>(out) +
                   (b * od.strides[0] + i * od.strides[1] + h * od.strides[2]) * osz;
        store_f32(op, od.dtype, od.strides[3], sh.Dv, orow);
      }
    }
  });
  if (splits == 1) return ok_status();

  // Combine the key splits of each (b, kv head, row block).
  parallel_for(base_items, 1, [&](int64_t g0, int64_t g1) {
    float* acc = scratch_floats(Scratch::kLeaf0, size_t(dvp));
    for (int64_t gi = g0; gi < g1; ++gi) {
      const int64_t rb = gi % row_blocks;
      const int64_t hk = (gi / row_blocks) % sh.Hkv;
      const int64_t b = gi / (row_blocks * sh.Hkv);
      const int64_t r0 = rb * kRowBlock, nr = std::min(kRowBlock, rows - r0);
      for (int64_t r = 0; r < nr; ++r) {
        float mx = -__builtin_inff();
        for (int64_t sp = 0; sp < splits; ++sp)
          mx = std::max(mx, partial[((gi * splits + sp) * nr_max + r) * partial_row]);
        float lsum = 0;
        std::fill(acc, acc + dvp, 0.0f);
        if (mx != -__builtin_inff()) {
          for (int64_t sp = 0; sp < splits; ++sp) {
            const float* part = partial + ((gi * splits + sp) * nr_max + r) * partial_row;
            if (part[1] == 0.0f) continue;
            const float w = std::exp(part[0] - mx);
            lsum += part[1] * w;
            for (int64_t e = 0; e < sh.Dv; ++e) acc[e] += part[2 + e] * w;
          }
        }
        const float inv = lsum > 0.0f ? 1.0f / lsum : 0.0f;
        for (int64_t e = 0; e < sh.Dv; ++e) acc[e] *= inv;
        int64_t i, h;
        row_head(hk, r0 + r, &i, &h);
        char* op = static_cast<char*>(out) +
                   (b * od.strides[0] + i * od.strides[1] + h * od.strides[2]) * osz;
        store_f32(op, od.dtype, od.strides[3], sh.Dv, acc);
      }
    }
  });
  return ok_status();
}

// ---- rotary --------------------------------------------------------------------------------

namespace {

// Per thread: cos and sin of the angles of the positions it rotated last, for one table of
// inverse frequencies. A decode step rotates q and k of every layer at one position with
// the model's one table, so the step computes its angles once, not twice per layer. Why it
// matters beyond the arithmetic: a layer's q rotary follows the q/k/v products, whose weight
// streams evict libm's code and tables, and its cos/sin calls took ~10,000 of the op's
// ~15,000 cycles (rdtsc inside the kernel, llama-small-random decode) where the k rotary
// right after took ~1,200 for the same calls; the cost model, which cannot tell the two
// apart by shape, predicted the class 35% low.
//
// The table and positions live in this thread's kRotaryAngles scratch block (which only
// this kernel uses); `block` and `half` say what it holds. Entries are looked up by
// position, slot = position mod kSlots; a different table (another model, rope scaling or
// rotary_dim) empties them.
struct RotaryAngleCache {
  static constexpr int64_t kSlots = 64;
  float* block = nullptr;  // the scratch block when it was laid out (moved: emptied)
  int64_t half = 0;
};
thread_local RotaryAngleCache rotary_angle_cache;

// The block's layout for `half`: the table (half doubles), kSlots positions (doubles, NaN
// = empty), then per slot `half` cos and `half` sin floats.
struct RotaryAngleView {
  double* inv_freq;
  double* positions;
  float* angles;
  int64_t half;
  static size_t floats(int64_t half) {
    return size_t(2 * half + 2 * RotaryAngleCache::kSlots + 2 * RotaryAngleCache::kSlots * half);
  }
};

// This thread's cache, serving `inv_freq` (half entries).
RotaryAngleView rotary_angles_for(const double* inv_freq, int64_t half) {
  RotaryAngleCache& c = rotary_angle_cache;
  float* block = scratch_floats(Scratch::kRotaryAngles, RotaryAngleView::floats(half));
  RotaryAngleView v{reinterpret_cast<double*>(block), reinterpret_cast<double*>(block) + half,
                    block + 2 * half + 2 * RotaryAngleCache::kSlots, half};
  const bool same = c.block == block && c.half == half &&
                    std::memcmp(v.inv_freq, inv_freq, size_t(half) * sizeof(double)) == 0;
  if (!same) {
    std::memcpy(v.inv_freq, inv_freq, size_t(half) * sizeof(double));
    std::fill_n(v.positions, RotaryAngleCache::kSlots, std::nan(""));
    c.block = block;
    c.half = half;
  }
  return v;
}

// cos and sin of position p's angles (p * inv_freq[i], in double, rounded to float).
std::pair<const float*, const float*> rotary_angles(const RotaryAngleView& v, double p) {
  const int64_t slot = int64_t(std::fmod(std::fabs(p), double(RotaryAngleCache::kSlots)));
  float* cs = v.angles + 2 * slot * v.half;
  float* sn = cs + v.half;
  if (!(v.positions[slot] == p)) {
    for (int64_t i = 0; i < v.half; ++i) {
      const double ang = p * v.inv_freq[i];
      cs[i] = float(std::cos(ang));
      sn[i] = float(std::sin(ang));
    }
    v.positions[slot] = p;
  }
  return {cs, sn};
}

}  // namespace

Status rotary(const OpSpec& spec, const void* const* in, void* out) {
  const TensorDesc& x = spec.inputs[0];
  const TensorDesc& pos = spec.inputs[1];
  const TensorDesc& o = spec.output;
  const OpAttributes& at = spec.attrs;
  const int r = x.shape.rank;
  const int64_t d = x.shape.back(), heads = x.shape.back(2);
  const int64_t rd = at.rotary_dim == 0 ? d : at.rotary_dim, half = rd / 2;
  if (o.numel() == 0) return ok_status();

  // The inverse frequencies: the op's table input, else theta^(-2i/rd). On the stack up to
  // a head dim of 512 (no allocation per op; scratch is no place for it: a kernel may run
  // where another's top level is waiting).
  double on_stack[256];
  std::vector<double> on_heap(half > 256 ? size_t(half) : 0);
  double* inv_freq = half > 256 ? on_heap.data() : on_stack;
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = spec.num_inputs == 3
                      ? double(load_as_float(in[2], DType::kF32, i * spec.inputs[2].strides[0]))
                      : std::pow(double(at.rope_theta), -2.0 * double(i) / double(rd));

  // Units: every (.., s) position; each rotates its `heads` rows with one cos/sin table.
  int64_t units = 1;
  for (int dd = 0; dd < r - 2; ++dd) units *= x.shape[dd];
  const int64_t xsz = dtype_size(x.dtype), osz = dtype_size(o.dtype);
  parallel_for(units, std::max<int64_t>(1, 8192 / std::max<int64_t>(heads * d, 1)),
               [&](int64_t u0, int64_t u1) {
                 float* row = scratch_floats(Scratch::kLeaf0, size_t(d));
                 const RotaryAngleView angles = rotary_angles_for(inv_freq, half);
                 for (int64_t u = u0; u < u1; ++u) {
                   // Unravel u over dims [0, r-2): the last of them is s.
                   int64_t xo = 0, oo = 0, rem = u, s = 0, b0 = 0;
                   for (int dd = r - 3; dd >= 0; --dd) {
                     const int64_t idx = rem % x.shape[dd];
                     rem /= x.shape[dd];
                     if (dd == r - 3) s = idx;
                     if (dd == 0) b0 = idx;
                     xo += idx * x.strides[dd];
                     oo += idx * o.strides[dd];
                   }
                   const int64_t pe = pos.shape.rank == 2 ? b0 * pos.strides[0] + s * pos.strides[1]
                                                          : s * pos.strides[0];
                   const double p = pos.dtype == DType::kI64
                                        ? double(static_cast<const int64_t*>(in[1])[pe])
                                        : double(static_cast<const int32_t*>(in[1])[pe]);
                   const auto [cs, sn] = rotary_angles(angles, p);
                   for (int64_t h = 0; h < heads; ++h) {
                     const char* xp =
                         static_cast<const char*>(in[0]) + (xo + h * x.strides[r - 2]) * xsz;
                     char* op = static_cast<char*>(out) + (oo + h * o.strides[r - 2]) * osz;
                     load_f32(xp, x.dtype, x.strides[r - 1], d, row);
                     if (at.rope_style == RopeStyle::kRotateHalf) {
                       for (int64_t i = 0; i < half; ++i) {
                         const float a = row[i], b = row[i + half];
                         row[i] = a * cs[i] - b * sn[i];
                         row[i + half] = b * cs[i] + a * sn[i];
                       }
                     } else {
                       for (int64_t i = 0; i < half; ++i) {
                         const float a = row[2 * i], b = row[2 * i + 1];
                         row[2 * i] = a * cs[i] - b * sn[i];
                         row[2 * i + 1] = b * cs[i] + a * sn[i];
                       }
                     }
                     store_f32(op, o.dtype, o.strides[r - 1], d, row);
                   }
                 }
               });
  return ok_status();
}

}  // namespace hal::cpu
