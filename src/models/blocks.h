// The shared transformer blocks: RMS norm, attention (optional T5 relative position bias, a hook
// for rotary embeddings, grouped-query heads, causal and padding masks, a KV cache) and the
// gated/ungated feed-forward. T5 and the Llama family are configurations of these blocks
// (CTranslate2's approach), never copies of them.
//
// Activations are row-major [batch, len, features] buffers of f32; rows = batch · len.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/ops.h"
#include "models/linear.h"

namespace lorahub {

struct NormLayer {  // RMSNorm without bias (T5LayerNorm, LlamaRMSNorm)
  std::vector<float> weight;
  float eps = 1e-6f;
};
// y[rows, d] = rms_norm(x) · weight
void norm_forward(const NormLayer& norm, const float* x, int64_t rows, float* y);

struct FeedForward {
  bool gated = false;  // gated: wo(act(gate x) · up x)   ungated: wo(act(gate x))
  Activation act = Activation::Relu;
  Linear gate;  // T5 wi (ungated) or wi_0; Llama gate_proj
  Linear up;    // T5 wi_1; Llama up_proj; unused when ungated
  Linear down;  // T5 wo; Llama down_proj
};
// y[rows, d_model] = feed-forward(x[rows, d_model])
void feed_forward(const FeedForward& ff, const float* x, int64_t rows, float* y);

// Rotary position embedding applied in place to projected heads: x is [batch, len, heads·head_dim],
// token t of every sequence at position pos0 + t. Filled in by the Llama family (kernels/rope.h);
// empty for T5, whose positions enter through the relative bias instead.
using RotaryHook = std::function<void(float* x, int64_t batch, int64_t len, int64_t heads,
                                      int64_t head_dim, int64_t pos0)>;

struct AttentionLayer {
  Linear q, k, v, o;
  int64_t n_heads = 0, n_kv_heads = 0, head_dim = 0;  // n_kv_heads < n_heads: grouped-query
  float score_scale = 1.0f;                           // T5: 1 (none); Llama: 1/sqrt(head_dim)
  RotaryHook rotary;
  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
};

// Keys and values of `length` positions for each of `batch` sequences: [batch, capacity, kv_dim].
// Self-attention appends as decoding goes; cross-attention fills it once from the encoder output.
// Scoring uses the same cache, filled with the whole sequence at once.
struct KvCache {
  int64_t batch = 0, capacity = 0, kv_dim = 0, length = 0;
  std::vector<float> k, v;
  void reset(int64_t batch_size, int64_t max_length, int64_t dim);
};

struct AttentionMask {
  const uint8_t* key_valid = nullptr;  // [batch, cache capacity], 0 = padding (never attended)
  bool causal = false;                 // query at position p sees keys at positions <= p
  int64_t q_pos0 = 0;                  // position of the first query (cached decoding)
  const float* bias = nullptr;         // [heads, q_len, cache length], added to scores (T5)
};

// Projects src[batch, len, d] through k and v (with the rotary hook on k) and appends them.
void append_kv(const AttentionLayer& layer, const float* src, int64_t batch, int64_t len,
               KvCache& cache);

// y[batch, q_len, d] = o(softmax(scale · q(x) kᵀ + bias + mask) v) over the cached keys/values.
void attention_forward(const AttentionLayer& layer, const float* x, int64_t batch, int64_t q_len,
                       const KvCache& cache, const AttentionMask& mask, float* y);

// T5's relative position bias: a learned [num_buckets, heads] table indexed by the bucket of
// (key position - query position); bidirectional in the encoder, causal in the decoder.
struct RelativePositionBias {
  std::vector<float> table;  // [num_buckets, heads]
  int64_t num_buckets = 32, max_distance = 128, heads = 0;
  bool bidirectional = true;
};

// transformers' T5Attention._relative_position_bucket for one relative position.
int64_t relative_position_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance);

// bias[h, i, j] for queries at positions q_pos0 + i (i < q_len) and keys at j (j < k_len).
std::vector<float> relative_position_bias(const RelativePositionBias& rel, int64_t q_len,
                                          int64_t k_len, int64_t q_pos0);

}  // namespace lorahub
