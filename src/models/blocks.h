// The shared transformer blocks: RMS norm, attention (optional T5 relative position bias, a hook
// for rotary embeddings, grouped-query heads, causal and padding masks, a KV cache) and the
// gated/ungated feed-forward. T5 and the Llama family are configurations of these blocks
// (CTranslate2's approach), never copies of them.
//
// Activations are row-major [rows, features] buffers of f32: the real tokens of a step, packed
// (RaggedBatch, models/batch.h); attention alone maps rows to the slots of its KV cache.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/ops.h"
#include "models/batch.h"
#include "models/linear.h"

namespace lorahub {

// A token embedding table [rows, dim]: f32 (the reference path) or, after convert_to_bf16(), bf16
// (the fast path: half the memory; rows are widened to f32 as they are looked up). The bf16 table
// is shared with a tied LM head (weights.h: tied_head).
struct Embedding {
  int64_t rows = 0, dim = 0;
  std::vector<float> f32;
  std::shared_ptr<const std::vector<uint16_t>> bf16;

  // x[ids.size(), dim]; throws Error for an id outside the table.
  std::vector<float> lookup(const std::vector<int32_t>& ids) const;
  std::vector<float> values() const;  // the table as f32, however it is held
  void convert_to_bf16();
};

struct NormLayer {  // RMSNorm without bias (T5LayerNorm, LlamaRMSNorm)
  std::vector<float> weight;
  float eps = 1e-6f;
};
// y[rows, d] = rms_norm(x) · weight
void norm_forward(const NormLayer& norm, const float* x, int64_t rows, float* y);

// An activation buffer of n floats, uninitialized: for results written in full before they are
// read (zero-filled vectors cost a memset each: 2.6 % of the T5 forward's CPU time).
inline std::unique_ptr<float[]> scratch_floats(int64_t n) {
  return std::make_unique_for_overwrite<float[]>(static_cast<size_t>(n));
}

// Residual sub-layer: x[rows, d] += f(norm(x)), f(h, out) writing all of out[rows, d]; with a
// post-norm (Gemma's sandwich norms; an empty one is none) x += post(f(norm(x))).
template <typename F>
void residual(const NormLayer& norm, const NormLayer& post, float* x, int64_t rows, int64_t d,
              F f) {
  const auto h = scratch_floats(rows * d), out = scratch_floats(rows * d);
  norm_forward(norm, x, rows, h.get());
  f(h.get(), out.get());
  if (!post.weight.empty()) norm_forward(post, out.get(), rows, out.get());
  add_inplace(x, out.get(), rows * d);
}
template <typename F>
void residual(const NormLayer& norm, float* x, int64_t rows, int64_t d, F f) {
  residual(norm, NormLayer{}, x, rows, d, f);
}

struct FeedForward {
  bool gated = false;  // gated: wo(act(gate x) · up x)   ungated: wo(act(gate x))
  // Gated with one fused projection (Phi-3's gate_up_proj): `gate` gives [gate | up] halves.
  bool fused_gate_up = false;
  Activation act = Activation::Relu;
  Linear gate;  // T5 wi (ungated) or wi_0; Llama gate_proj; Phi-3 gate_up_proj (fused)
  Linear up;    // T5 wi_1; Llama up_proj; unused when ungated or fused
  Linear down;  // T5 wo; Llama down_proj
};
// y[rows, d_model] = feed-forward(x[rows, d_model]), each span of rows with its LoRA.
void feed_forward(const FeedForward& ff, const float* x, int64_t rows, float* y,
                  const LoraRows& lora = {});

// Rotary position embedding applied in place to projected heads: x is [rows.rows, heads·head_dim],
// the packed rows of a step whose first slot is cache slot pos0. Filled in by the Llama family
// (kernels/rope.h), which maps slots to positions; empty for T5, whose positions enter through the
// relative bias instead.
using RotaryHook = std::function<void(float* x, const RaggedBatch& rows, int64_t heads,
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
// Every slot below `length` holds a written key/value or zeros (write_kv zeroes a step's padding
// slots); slots at or above it are never read, so reset() keeps whatever storage it reuses.
// Self-attention appends as decoding goes; cross-attention fills it once from the encoder output.
// Scoring uses the same cache, filled with the whole sequence at once.
// With bf16 (the fast path's generation caches) k16/v16 hold the values instead of k/v: half the
// memory of a cache that grows with batch × generated length (0.7 GB for T5-large, 10 × 256).
// Generation caches (reset with head_dim > 0) are laid out by head instead,
// [batch, kv_dim / head_dim, capacity, head_dim]: a decoding step reads each (sequence, head)'s
// keys and values as one contiguous run, where the slot-major layout puts successive keys of a
// head kv_dim values apart (every key on its own page at T5's 1024), which kept the attention
// loads waiting on memory.
struct KvCache {
  int64_t batch = 0, capacity = 0, kv_dim = 0, length = 0;
  int64_t head_dim = 0;  // > 0: laid out by head (see above)
  std::vector<float> k, v;
  std::vector<uint16_t> k16, v16;
  bool bf16() const { return !k16.empty(); }
  void reset(int64_t batch_size, int64_t max_length, int64_t dim, bool bf16 = false,
             int64_t by_head_dim = 0);
  // Where value 0 of (sequence b, cache slot, key/value head h) lies in k/v (k16/v16), for heads
  // of `hd` values, and the distance between successive slots of one head.
  size_t offset(int64_t b, int64_t slot, int64_t h, int64_t hd) const {
    return static_cast<size_t>(head_dim > 0
                                   ? ((b * (kv_dim / head_dim) + h) * capacity + slot) * head_dim
                                   : (b * capacity + slot) * kv_dim + h * hd);
  }
  int64_t slot_stride() const { return head_dim > 0 ? head_dim : kv_dim; }
};

struct AttentionMask {
  const uint8_t* key_valid = nullptr;  // [batch, cache capacity], 0 = padding (never attended)
  bool causal = false;                 // query in slot p sees keys in slots <= p
  int64_t q_pos0 = 0;                  // cache slot of the step's first slot (cached decoding)
  int64_t window = 0;  // > 0: sliding window, a query in slot p sees keys in slots > p - window
  const float* bias = nullptr;  // [heads, step len, cache length], added to scores (T5)
};

// Projects the packed rows src[rows.rows, d] through k and v (with the rotary hook on k) and
// writes them to their slots after the cache's current length, which grows by rows.len. Slots
// of padding become zeros (write_kv): masks keep every query away from them.
// `src16`: src rounded to bf16 (bf16_input of layer.k), shared with other products, or nullptr.
void append_kv(const AttentionLayer& layer, const float* src, const RaggedBatch& rows,
               KvCache& cache, const LoraRows& lora = {}, const uint16_t* src16 = nullptr);

// y[rows.rows, d] = o(softmax(scale · q(x) kᵀ + bias + mask) v) over the cached keys/values, for
// the packed rows of one step (`lora`: the adapters of those rows, models/lora_delta.h).
// `x16`: x rounded to bf16 (bf16_input of layer.q), or nullptr.
void attention_forward(const AttentionLayer& layer, const float* x, const RaggedBatch& rows,
                       const KvCache& cache, const AttentionMask& mask, float* y,
                       const LoraRows& lora = {}, const uint16_t* x16 = nullptr);

// The two halves of the above on projections the caller made (fused projections, q/k norms and
// rotary embeddings applied by the model): write_kv stores k, v [rows.rows, kv_dim] after the
// cache's length (which grows by rows.len); attend writes the attention context [rows.rows,
// q_dim] of the queries q [rows.rows, q_dim] (before the output projection).
void write_kv(const float* k, const float* v, const RaggedBatch& rows, KvCache& cache);
void attend(const AttentionLayer& layer, const float* q, const RaggedBatch& rows,
            const KvCache& cache, const AttentionMask& mask, float* context);

// The same for a step where every slot is real (x, y: [batch, len, d]).
void append_kv(const AttentionLayer& layer, const float* src, int64_t batch, int64_t len,
               KvCache& cache);
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
