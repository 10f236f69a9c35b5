#include "models/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "core/half.h"
#include "core/simd.h"
#include "kernels/decode_attention.h"
#include "kernels/matmul.h"

namespace lorahub {

std::vector<float> Embedding::lookup(const std::vector<int32_t>& ids) const {
  std::vector<float> x(ids.size() * static_cast<size_t>(dim));
  const auto count = static_cast<int64_t>(ids.size());
  if (bf16 == nullptr) {
    embedding_lookup(f32.data(), rows, dim, ids.data(), count, x.data());
    return x;
  }
  for (int64_t t = 0; t < count; ++t) {
    check(ids[t] >= 0 && ids[t] < rows, "token id {} is outside the embedding table of {} rows",
          ids[t], rows);
    bf16_to_f32(&(*bf16)[static_cast<size_t>(ids[t] * dim)], &x[static_cast<size_t>(t * dim)],
                static_cast<size_t>(dim));
  }
  return x;
}

std::vector<float> Embedding::values() const {
  return bf16 == nullptr ? f32 : widen_bf16(*bf16);
}

void Embedding::convert_to_bf16() {
  if (!f32.empty()) bf16 = std::make_shared<const std::vector<uint16_t>>(take_as_bf16(f32));
}

void norm_forward(const NormLayer& norm, const float* x, int64_t rows, float* y) {
  rms_norm(x, norm.weight.data(), y, rows, static_cast<int64_t>(norm.weight.size()), norm.eps);
}

namespace {
// h[rows, hidden] = act(gate) · up from the fused projection y[rows, 2·hidden] = [gate | up].
std::unique_ptr<float[]> fused_gate_up(const FeedForward& ff, const float* x, int64_t rows,
                                       const LoraRows& lora) {
  const int64_t hidden = ff.gate.out / 2;
  const auto y = scratch_floats(rows * 2 * hidden);
  auto h = scratch_floats(rows * hidden);
  linear_forward(ff.gate, x, rows, y.get(), lora);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(&y[r * 2 * hidden], hidden, &h[r * hidden]);
    activate_and_multiply(ff.act, &h[r * hidden], &y[r * 2 * hidden + hidden], hidden);
  }
  return h;
}
}  // namespace

void feed_forward(const FeedForward& ff, const float* x, int64_t rows, float* y,
                  const LoraRows& lora) {
  if (ff.fused_gate_up) {
    const auto h = fused_gate_up(ff, x, rows, lora);
    linear_forward(ff.down, h.get(), rows, y, lora);
    return;
  }
  const int64_t hidden = ff.gate.out;
  const auto h = scratch_floats(rows * hidden);
  if (ff.gated) {
    // One call for both products: x rounded to bf16 once (bf16 weights), or quantized once
    // in one parallel region (quantized weights).
    const auto up = scratch_floats(rows * hidden);
    linear_forward_many({&ff.gate, &ff.up}, x, rows, {h.get(), up.get()}, lora);
    activate_and_multiply(ff.act, h.get(), up.get(), rows * hidden);
  } else {
    linear_forward(ff.gate, x, rows, h.get(), lora);
    apply_activation(ff.act, h.get(), rows * hidden);
  }
  linear_forward(ff.down, h.get(), rows, y, lora);
}

void KvCache::reset(int64_t batch_size, int64_t max_length, int64_t dim, bool bf16,
                    int64_t by_head_dim) {
  check(by_head_dim >= 0 && (by_head_dim == 0 || dim % by_head_dim == 0),
        "KV cache: {} values per position do not split into heads of {}", dim, by_head_dim);
  batch = batch_size;
  capacity = max_length;
  kv_dim = dim;
  head_dim = by_head_dim;
  length = 0;
  const auto size = static_cast<size_t>(batch * capacity * kv_dim);
  // Resized, not refilled: a cache reset per layer at the same shape keeps its storage, and
  // write_kv writes or zeroes every slot below `length` before attention reads it.
  if (bf16) {
    std::vector<float>().swap(k);
    std::vector<float>().swap(v);
    k16.resize(size);
    v16.resize(size);
  } else {
    std::vector<uint16_t>().swap(k16);
    std::vector<uint16_t>().swap(v16);
    k.resize(size);
    v.resize(size);
  }
}

void write_kv(const float* k, const float* v, const RaggedBatch& rows, KvCache& cache) {
  check(rows.batch == cache.batch && cache.length + rows.len <= cache.capacity,
        "KV cache of {} positions cannot take {} more", cache.capacity, rows.len);
  const int64_t dim = cache.kv_dim;
  // Runs of `n` values from k/v at `from` to the cache at `dst`, and runs of zeros.
  auto copy = [&](size_t from, size_t dst, size_t n) {
    if (cache.bf16()) {
      f32_to_bf16(&k[from], &cache.k16[dst], n);
      f32_to_bf16(&v[from], &cache.v16[dst], n);
    } else {
      std::memcpy(&cache.k[dst], &k[from], n * sizeof(float));
      std::memcpy(&cache.v[dst], &v[from], n * sizeof(float));
    }
  };
  auto zero = [&](size_t dst, size_t n) {
    if (cache.bf16()) {
      std::fill_n(cache.k16.begin() + dst, n, uint16_t{0});
      std::fill_n(cache.v16.begin() + dst, n, uint16_t{0});
    } else {
      std::fill_n(cache.k.begin() + dst, n, 0.0f);
      std::fill_n(cache.v.begin() + dst, n, 0.0f);
    }
  };
  // The step's padding slots of each sequence (before and after its rows) become zeros: masked
  // keys, and 0 in the probability-weighted sum over V (reset() leaves old values there).
  const int64_t step_end = cache.length + rows.len;
  for (int64_t b = 0; b < rows.batch; ++b) {
    const int64_t first = cache.length + rows.first[b], past = first + rows.count[b];
    const auto from = static_cast<size_t>(rows.row0[b] * dim);
    if (cache.head_dim == 0) {  // the rows are the cache's slots as they are
      zero(cache.offset(b, cache.length, 0, 0), static_cast<size_t>((first - cache.length) * dim));
      copy(from, cache.offset(b, first, 0, 0), static_cast<size_t>(rows.count[b] * dim));
      zero(cache.offset(b, past, 0, 0), static_cast<size_t>((step_end - past) * dim));
      continue;
    }
    const int64_t hd = cache.head_dim;
    for (int64_t slot = cache.length; slot < step_end; ++slot)
      for (int64_t h = 0; h < dim / hd; ++h) {
        const size_t dst = cache.offset(b, slot, h, hd);
        if (slot < first || slot >= past)
          zero(dst, static_cast<size_t>(hd));
        else
          copy(from + static_cast<size_t>((slot - first) * dim + h * hd), dst,
               static_cast<size_t>(hd));
      }
  }
  cache.length += rows.len;
}

void append_kv(const AttentionLayer& layer, const float* src, const RaggedBatch& rows,
               KvCache& cache, const LoraRows& lora, const uint16_t* src16) {
  check(layer.kv_dim() == cache.kv_dim, "KV cache holds {} values per position, the layer {}",
        cache.kv_dim, layer.kv_dim());
  const auto k = scratch_floats(rows.rows * cache.kv_dim),
             v = scratch_floats(rows.rows * cache.kv_dim);
  Bf16Input own;  // rounded here when the caller did not (and the weights are bf16)
  if (src16 == nullptr) {
    own = bf16_input(layer.k, src, rows.rows);
    src16 = own.data();
  }
  linear_forward(layer.k, src, rows.rows, k.get(), lora, layer.k.weight_bf16 ? src16 : nullptr);
  linear_forward(layer.v, src, rows.rows, v.get(), lora, layer.v.weight_bf16 ? src16 : nullptr);
  if (layer.rotary) layer.rotary(k.get(), rows, layer.n_kv_heads, layer.head_dim, cache.length);
  write_kv(k.get(), v.get(), rows, cache);
}

namespace {

constexpr float kMasked = -std::numeric_limits<float>::infinity();

// The keys/values and mask one (sequence, head) pair sees, and where its queries and output live.
// T: how the keys and values are held (float, or bf16 bits read in place by the loop path).
template <typename T>
struct HeadViewOf {
  const float* q;  // [q_len] rows of stride q_stride
  float* out;      // same layout as q
  const T *k, *v;  // [k_len] rows of stride kv_stride
  int64_t q_stride, kv_stride, q_len, k_len;
  int64_t q_slot0;           // cache slot of the first query (for the causal mask)
  int64_t window;            // > 0: sliding window (keys in slots > query slot - window)
  const uint8_t* key_valid;  // [k_len] or nullptr
  const float* bias;         // [q_len] rows of stride bias_stride, or nullptr
  int64_t bias_stride;
};
using HeadView = HeadViewOf<float>;

inline float widen(float x) {
  return x;
}
inline float widen(uint16_t x) {
  return bf16_to_f32(x);
}

// scale · score + bias, or -inf where the key is masked, for row i of the scores. Loops without
// branches, so that they vectorize (the per-key condition did not: 1 % of the T5 forward).
template <typename T>
LORAHUB_SIMD void mask_scores(const AttentionLayer& layer, const HeadViewOf<T>& h, bool causal,
                              int64_t i, float* row) {
  const int64_t last_visible = causal ? std::min(h.k_len - 1, h.q_slot0 + i) : h.k_len - 1;
  const int64_t first_visible =
      std::clamp<int64_t>(h.window > 0 ? h.q_slot0 + i - h.window + 1 : 0, 0, h.k_len);
  const float* bias = h.bias ? h.bias + i * h.bias_stride : nullptr;
  const float scale = layer.score_scale;
  if (bias) {
#pragma omp simd
    for (int64_t j = 0; j < h.k_len; ++j) row[j] = row[j] * scale + bias[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < h.k_len; ++j) row[j] = row[j] * scale + 0.0f;
  }
  std::fill(row, row + first_visible, kMasked);
  std::fill(row + std::max(last_visible + 1, first_visible), row + h.k_len, kMasked);
  if (h.key_valid) {
    const uint8_t* valid = h.key_valid;
#pragma omp simd
    for (int64_t j = 0; j < h.k_len; ++j) row[j] = valid[j] ? row[j] : kMasked;
  }
}

// Long queries (prefill, scoring): two BLAS products per head, on the calling thread.
void attend_head_blas(const AttentionLayer& layer, const HeadView& h, bool causal, float* scores) {
  gemm(true, h.q_len, h.k_len, layer.head_dim, h.q, h.q_stride, h.k, h.kv_stride, scores, h.k_len);
  for (int64_t i = 0; i < h.q_len; ++i) {
    mask_scores(layer, h, causal, i, scores + i * h.k_len);
    softmax_row(scores + i * h.k_len, h.k_len);
  }
  gemm(false, h.q_len, layer.head_dim, h.k_len, scores, h.k_len, h.v, h.kv_stride, h.out,
       h.q_stride);
}

// Short queries (a decoding step): plain loops, so that many heads run side by side on the
// threads instead of many tiny BLAS calls one after another. A bf16 cache is read in place (each
// value widened exactly as it is used): widening a (sequence, head)'s whole cache into a buffer
// first cost more than the attention itself at T5's 256 generated tokens.
// Keys (and values) are rows kv_stride apart (all heads of a cache slot side by side), which the
// hardware prefetcher does not follow: at T5's 256 generated tokens the key loads waited on
// memory for most of the attention's time. Rows kPrefetchRows ahead are fetched by hand.
constexpr int64_t kPrefetchRows = 8;

template <typename T>
inline void prefetch_row(const T* row, int64_t values, int hint) {
  const char* p = reinterpret_cast<const char*>(row);
  for (int64_t o = 0; o < values * static_cast<int64_t>(sizeof(T)); o += 64) {
    if (hint == 0)
      __builtin_prefetch(p + o, 0, 3);
    else
      __builtin_prefetch(p + o, 0, 2);
  }
}

template <typename T>
LORAHUB_SIMD void attend_head_loops(const AttentionLayer& layer, const HeadViewOf<T>& h,
                                    bool causal, float* scores) {
  const int64_t hd = layer.head_dim;
  // Keys before the first valid one are a left-padded prompt's padding: masked, never computed.
  int64_t first_key = 0;
  if (h.key_valid)
    while (first_key < h.k_len && !h.key_valid[first_key]) ++first_key;
  // A bf16 cache through the AVX-512 kernels where the CPU has them (the same arithmetic).
  bool kernel = false;
  if constexpr (std::is_same_v<T, uint16_t>) kernel = decode_attention_bf16_available(hd);
  for (int64_t i = 0; i < h.q_len; ++i) {
    const float* q = h.q + i * h.q_stride;
    float* row = scores + i * h.k_len;
    std::fill_n(row, first_key, 0.0f);
    if constexpr (std::is_same_v<T, uint16_t>) {
      if (kernel) {
        dot_rows_bf16(q, h.k + first_key * h.kv_stride, h.kv_stride, h.k_len - first_key, hd,
                      row + first_key);
        mask_scores(layer, h, causal, i, row);
        softmax_row(row, h.k_len);
        continue;
      }
    }
    for (int64_t j = first_key; j < std::min(h.k_len, first_key + kPrefetchRows); ++j)
      prefetch_row(h.k + j * h.kv_stride, hd, 0);
    for (int64_t j = first_key; j < h.k_len; ++j) {
      // This key's row a few keys ahead into L1, its value row into L2 for the loop below.
      if (j + kPrefetchRows < h.k_len) prefetch_row(h.k + (j + kPrefetchRows) * h.kv_stride, hd, 0);
      if (i == 0) prefetch_row(h.v + j * h.kv_stride, hd, 1);
      const T* k = h.k + j * h.kv_stride;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < hd; ++c) dot += q[c] * widen(k[c]);
      row[j] = dot;
    }
    mask_scores(layer, h, causal, i, row);
    softmax_row(row, h.k_len);  // not softmax_rows: this already runs inside a parallel loop
  }
  // Σ_j p_j·v_j, 16 output values at a time held in registers over all keys (adding into `out`
  // key by key waited on a store and a reload per key); each value sums in key order, as before.
  constexpr int64_t kLanes = 16;
  for (int64_t i = 0; i < h.q_len; ++i) {
    float* out = h.out + i * h.q_stride;
    const float* p = scores + i * h.k_len;
    if constexpr (std::is_same_v<T, uint16_t>) {
      if (kernel) {
        weighted_sum_bf16(p + first_key, h.v + first_key * h.kv_stride, h.kv_stride,
                          h.k_len - first_key, hd, out);
        continue;
      }
    }
    for (int64_t c0 = 0; c0 < hd; c0 += kLanes) {
      const int64_t width = std::min(kLanes, hd - c0);
      float acc[kLanes] = {};
      if (width == kLanes) {
        for (int64_t j = first_key; j < h.k_len; ++j) {
          if (p[j] == 0.0f) continue;  // masked keys (exp(-inf)) add nothing
          const T* v = h.v + j * h.kv_stride + c0;
#pragma omp simd
          for (int64_t c = 0; c < kLanes; ++c) acc[c] += p[j] * widen(v[c]);
        }
      } else {
        for (int64_t j = first_key; j < h.k_len; ++j) {
          if (p[j] == 0.0f) continue;
          const T* v = h.v + j * h.kv_stride + c0;
          for (int64_t c = 0; c < width; ++c) acc[c] += p[j] * widen(v[c]);
        }
      }
      std::copy_n(acc, width, out + c0);
    }
  }
}

// Below this many multiply-adds per head the loop path is faster than BLAS.
constexpr int64_t kLoopPathWork = 1 << 16;
// Multiply-adds of q·K over all heads below which attend() runs on one thread: about 2 µs of
// work, what a hand-off to spinning threads costs (a decoding step over 30 keys passes it).
constexpr int64_t kAttendParallelMin = 1 << 14;

}  // namespace

void attention_forward(const AttentionLayer& layer, const float* x, const RaggedBatch& rows,
                       const KvCache& cache, const AttentionMask& mask, float* y,
                       const LoraRows& lora, const uint16_t* x16) {
  const auto q = scratch_floats(rows.rows * layer.q_dim());
  linear_forward(layer.q, x, rows.rows, q.get(), lora, layer.q.weight_bf16 ? x16 : nullptr);
  if (layer.rotary) layer.rotary(q.get(), rows, layer.n_heads, layer.head_dim, mask.q_pos0);
  const auto context = scratch_floats(rows.rows * layer.q_dim());
  attend(layer, q.get(), rows, cache, mask, context.get());
  linear_forward(layer.o, context.get(), rows.rows, y, lora);
}

void attend(const AttentionLayer& layer, const float* q, const RaggedBatch& rows,
            const KvCache& cache, const AttentionMask& mask, float* context) {
  const int64_t qd = layer.q_dim(), kvd = layer.kv_dim(), k_len = cache.length;
  check(kvd == cache.kv_dim, "KV cache holds {} values per position, the layer {}", cache.kv_dim,
        kvd);
  const int64_t group = layer.n_heads / layer.n_kv_heads;  // query heads per key/value head
  // The keys and values of sequence b's key/value head kvh as f32 rows: in place for an f32
  // cache; for a bf16 cache widened once into `buffer` [2, k_len, head_dim] (read as bf16: half
  // the cache traffic), shared by the `group` query heads that use them.
  struct KeysValues {
    const float *k, *v;
    int64_t stride;
  };
  const int64_t hd = layer.head_dim, stride = cache.slot_stride();
  check(cache.head_dim == 0 || cache.head_dim == hd,
        "KV cache laid out by heads of {} values, the layer's are {}", cache.head_dim, hd);
  auto keys_values = [&](int64_t b, int64_t kvh, std::vector<float>& buffer) {
    const size_t kv_off = cache.offset(b, 0, kvh, hd);
    if (!cache.bf16()) return KeysValues{&cache.k[kv_off], &cache.v[kv_off], stride};
    buffer.resize(static_cast<size_t>(2 * k_len * hd));
    // A left-padded prompt's padding slots are masked: zeros (never read as scores, and 0 in
    // the probability-weighted sum over V) instead of widening them.
    int64_t first = 0;
    if (mask.key_valid) {
      const uint8_t* valid = mask.key_valid + b * cache.capacity;
      while (first < k_len && !valid[first]) ++first;
    }
    std::fill_n(buffer.begin(), first * hd, 0.0f);
    std::fill_n(buffer.begin() + k_len * hd, first * hd, 0.0f);
    for (int64_t j = first; j < k_len; ++j) {
      bf16_to_f32(&cache.k16[kv_off + j * stride], &buffer[j * hd], hd);
      bf16_to_f32(&cache.v16[kv_off + j * stride], &buffer[(k_len + j) * hd], hd);
    }
    return KeysValues{buffer.data(), buffer.data() + k_len * hd, hd};
  };
  auto view = [&]<typename T>(int64_t b, int64_t h, const T* k, const T* v, int64_t stride) {
    const size_t q_off = static_cast<size_t>(rows.row0[b] * qd + h * layer.head_dim);
    return HeadViewOf<T>{
        .q = q + q_off,
        .out = context + q_off,
        .k = k,
        .v = v,
        .q_stride = qd,
        .kv_stride = stride,
        .q_len = rows.count[b],
        .k_len = k_len,
        .q_slot0 = mask.q_pos0 + rows.first[b],
        .window = mask.window,
        .key_valid = mask.key_valid ? mask.key_valid + b * cache.capacity : nullptr,
        .bias = mask.bias ? mask.bias + (h * rows.len + rows.first[b]) * k_len : nullptr,
        .bias_stride = k_len};
  };
  const int64_t max_q = rows.batch ? *std::max_element(rows.count.begin(), rows.count.end()) : 0;
  const bool loops = max_q * k_len * layer.head_dim <= kLoopPathWork;
  // A bf16 cache read in place needs no widened copy shared by a group's query heads, so each
  // query head is its own unit: a decoding step's few key/value heads (3 in SmolLM2, 2 in
  // Qwen2.5) would split unevenly over the threads.
  const bool in_place = loops && cache.bf16();
  const int64_t per_sequence = in_place ? layer.n_heads : layer.n_kv_heads;
  const int64_t units = rows.batch * per_sequence;
  // Otherwise (sequence, key/value head) units side by side on the threads, each with its query
  // heads; inside the parallel loop oneDNN's sgemm runs on the calling thread, so small per-head
  // products pay no thread hand-off. A decoding step's few heads over a short cache cost less
  // than the threads' hand-off.
  const bool parallel =
      units > 1 && rows.batch * layer.n_heads * max_q * k_len * layer.head_dim > kAttendParallelMin;
#pragma omp parallel if (parallel)
  {
    std::vector<float> scores(static_cast<size_t>(max_q * k_len)), buffer;
#pragma omp for schedule(dynamic)
    for (int64_t u = 0; u < units; ++u) {
      const int64_t b = u / per_sequence;
      if (in_place) {  // the bf16 cache in place, one query head
        const int64_t h = u % per_sequence;
        const size_t kv_off = cache.offset(b, 0, h / group, hd);
        attend_head_loops(layer, view(b, h, &cache.k16[kv_off], &cache.v16[kv_off], stride),
                          mask.causal, scores.data());
        continue;
      }
      const int64_t kvh = u % per_sequence;
      const KeysValues kv = keys_values(b, kvh, buffer);
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        const HeadView hv = view(b, h, kv.k, kv.v, kv.stride);
        if (loops)
          attend_head_loops(layer, hv, mask.causal, scores.data());
        else
          attend_head_blas(layer, hv, mask.causal, scores.data());
      }
    }
  }
}

void append_kv(const AttentionLayer& layer, const float* src, int64_t batch, int64_t len,
               KvCache& cache) {
  append_kv(layer, src, RaggedBatch::dense(batch, len), cache);
}

void attention_forward(const AttentionLayer& layer, const float* x, int64_t batch, int64_t q_len,
                       const KvCache& cache, const AttentionMask& mask, float* y) {
  attention_forward(layer, x, RaggedBatch::dense(batch, q_len), cache, mask, y);
}

int64_t relative_position_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance) {
  int64_t bucket = 0;
  if (bidirectional) {
    num_buckets /= 2;
    if (relative_position > 0) bucket += num_buckets;
    relative_position = std::abs(relative_position);
  } else {
    relative_position = -std::min<int64_t>(relative_position, 0);
  }
  const int64_t max_exact = num_buckets / 2;
  if (relative_position < max_exact) return bucket + relative_position;
  // Evaluated in float32 and truncated toward zero, as the PyTorch code does.
  const float log_ratio =
      std::log(static_cast<float>(relative_position) / static_cast<float>(max_exact)) /
      static_cast<float>(
          std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)));
  int64_t large =
      max_exact + static_cast<int64_t>(log_ratio * static_cast<float>(num_buckets - max_exact));
  return bucket + std::min(large, num_buckets - 1);
}

std::vector<float> relative_position_bias(const RelativePositionBias& rel, int64_t q_len,
                                          int64_t k_len, int64_t q_pos0) {
  std::vector<float> bias(static_cast<size_t>(rel.heads * q_len * k_len));
  for (int64_t i = 0; i < q_len; ++i) {
    for (int64_t j = 0; j < k_len; ++j) {
      const int64_t bucket = relative_position_bucket(j - (q_pos0 + i), rel.bidirectional,
                                                      rel.num_buckets, rel.max_distance);
      for (int64_t h = 0; h < rel.heads; ++h)
        bias[(h * q_len + i) * k_len + j] = rel.table[bucket * rel.heads + h];
    }
  }
  return bias;
}

}  // namespace lorahub
