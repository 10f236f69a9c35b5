#include "models/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "kernels/matmul.h"

namespace lorahub {

void norm_forward(const NormLayer& norm, const float* x, int64_t rows, float* y) {
  rms_norm(x, norm.weight.data(), y, rows, static_cast<int64_t>(norm.weight.size()), norm.eps);
}

void feed_forward(const FeedForward& ff, const float* x, int64_t rows, float* y) {
  const int64_t hidden = ff.gate.out;
  std::vector<float> h(static_cast<size_t>(rows * hidden));
  linear_forward(ff.gate, x, rows, h.data());
  apply_activation(ff.act, h.data(), rows * hidden);
  if (ff.gated) {
    std::vector<float> up(h.size());
    linear_forward(ff.up, x, rows, up.data());
    multiply_inplace(h.data(), up.data(), rows * hidden);
  }
  linear_forward(ff.down, h.data(), rows, y);
}

void KvCache::reset(int64_t batch_size, int64_t max_length, int64_t dim) {
  batch = batch_size;
  capacity = max_length;
  kv_dim = dim;
  length = 0;
  k.assign(static_cast<size_t>(batch * capacity * kv_dim), 0.0f);
  v.assign(k.size(), 0.0f);
}

void append_kv(const AttentionLayer& layer, const float* src, int64_t batch, int64_t len,
               KvCache& cache) {
  check(batch == cache.batch && cache.length + len <= cache.capacity,
        "KV cache of {} positions cannot take {} more", cache.capacity, len);
  const int64_t dim = layer.kv_dim();
  std::vector<float> k(static_cast<size_t>(batch * len * dim)), v(k.size());
  linear_forward(layer.k, src, batch * len, k.data());
  linear_forward(layer.v, src, batch * len, v.data());
  if (layer.rotary)
    layer.rotary(k.data(), batch, len, layer.n_kv_heads, layer.head_dim, cache.length);
  for (int64_t b = 0; b < batch; ++b) {
    const size_t dst = static_cast<size_t>((b * cache.capacity + cache.length) * dim);
    const size_t from = static_cast<size_t>(b * len * dim);
    std::memcpy(&cache.k[dst], &k[from], len * dim * sizeof(float));
    std::memcpy(&cache.v[dst], &v[from], len * dim * sizeof(float));
  }
  cache.length += len;
}

namespace {

constexpr float kMasked = -std::numeric_limits<float>::infinity();

// One (sequence, head): scores = scale · q kᵀ + bias (BLAS), masked softmax, context = p v (BLAS).
// q and out: [q_len] rows of stride q_stride; k, v: [k_len] rows of stride kv_stride.
void attend_head(const AttentionLayer& layer, const float* q, int64_t q_stride, const float* k,
                 const float* v, int64_t kv_stride, int64_t q_len, int64_t k_len,
                 const uint8_t* key_valid, const AttentionMask& mask, const float* bias, float* out,
                 float* scores) {
  gemm(true, q_len, k_len, layer.head_dim, q, q_stride, k, kv_stride, scores, k_len);
#pragma omp parallel for schedule(static) if (q_len * k_len > (1 << 14))
  for (int64_t i = 0; i < q_len; ++i) {
    float* row = scores + i * k_len;
    const int64_t last_visible = mask.causal ? std::min(k_len - 1, mask.q_pos0 + i) : k_len - 1;
    for (int64_t j = 0; j < k_len; ++j) {
      const bool visible = j <= last_visible && (key_valid == nullptr || key_valid[j]);
      row[j] = visible ? row[j] * layer.score_scale + (bias ? bias[i * k_len + j] : 0.0f) : kMasked;
    }
  }
  softmax_rows(scores, q_len, k_len);
  gemm(false, q_len, layer.head_dim, k_len, scores, k_len, v, kv_stride, out, q_stride);
}

}  // namespace

void attention_forward(const AttentionLayer& layer, const float* x, int64_t batch, int64_t q_len,
                       const KvCache& cache, const AttentionMask& mask, float* y) {
  const int64_t qd = layer.q_dim(), kvd = layer.kv_dim(), k_len = cache.length;
  std::vector<float> q(static_cast<size_t>(batch * q_len * qd));
  linear_forward(layer.q, x, batch * q_len, q.data());
  if (layer.rotary)
    layer.rotary(q.data(), batch, q_len, layer.n_heads, layer.head_dim, mask.q_pos0);
  std::vector<float> context(q.size());
  std::vector<float> scores(static_cast<size_t>(q_len * k_len));
  const int64_t group = layer.n_heads / layer.n_kv_heads;  // query heads per key/value head
  // Heads run one after another; BLAS and the row loops inside use the threads.
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < layer.n_heads; ++h) {
      const size_t q_off = static_cast<size_t>(b * q_len * qd + h * layer.head_dim);
      const size_t kv_off =
          static_cast<size_t>(b * cache.capacity * kvd + (h / group) * layer.head_dim);
      attend_head(layer, &q[q_off], qd, &cache.k[kv_off], &cache.v[kv_off], kvd, q_len, k_len,
                  mask.key_valid ? mask.key_valid + b * cache.capacity : nullptr, mask,
                  mask.bias ? mask.bias + h * q_len * k_len : nullptr, &context[q_off],
                  scores.data());
    }
  }
  linear_forward(layer.o, context.data(), batch * q_len, y);
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
