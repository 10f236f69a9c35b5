#include "models/llama.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <unordered_map>

#include "core/allocator.h"
#include "core/error.h"
#include "core/half.h"
#include "models/batch.h"
#include "models/blocks.h"
#include "models/gguf_weights.h"
#include "models/weights.h"
#include "tokenizer/bpe.h"

namespace lorahub {

// ------------------------------------------------------------------------------ GGUF weights

GgufWeightSource gguf_weights(const GgufFile& g, const DecoderSpec& c) {
  const bool permuted = c.architecture == "llama";  // the converter permutes only Llama's q/k
  std::map<std::string, GgufWeightSource::Entry> tensors;
  for (const auto& t : g.tensors()) {
    if (t.name == "rope_freqs.weight") continue;  // llama3 factors, recomputed from the config
    const std::string name = hf_name_for_gguf(t.name, c, g.path());
    GgufWeightSource::Entry e{&t};
    // (biases are permuted too, but Llama has none; Qwen2 is not permuted.)
    if (permuted && name.ends_with("q_proj.weight")) e.rope_heads = c.heads;
    if (permuted && name.ends_with("k_proj.weight")) e.rope_heads = c.kv_heads;
    if (c.norm_plus_one && name.ends_with("norm.weight")) e.shift = -1.0f;  // stored as 1 + w
    tensors.emplace(name, e);
  }
  return GgufWeightSource(g, std::move(tensors));
}

// ------------------------------------------------------------------------------ the model

namespace {

struct DecoderBlock {
  NormLayer attn_norm, ffn_norm;
  NormLayer post_attn_norm, post_ffn_norm;  // Gemma's sandwich norms (empty otherwise)
  NormLayer q_norm, k_norm;                 // per head (empty without q/k norm)
  AttentionLayer attn;                      // q, k, v empty when fused into qkv
  Linear qkv;                               // Phi-3's fused [q | k | v] projection
  FeedForward ffn;
  const std::vector<float>* inv_freq = nullptr;  // this layer's RoPE (global or local)
  int64_t window = 0;                            // > 0: sliding-window layer
};

// One batch among the rows of a forward: its ragged view (rows counted from the part's first),
// where its rows start, its KV caches (one per layer) and which of their slots are real.
struct ForwardPart {
  const RaggedBatch* rows = nullptr;
  int64_t row_offset = 0;
  std::vector<KvCache>* caches = nullptr;
  const uint8_t* key_valid = nullptr;
};

class DecoderModel : public Model {
 public:
  DecoderModel(const DecoderSpec& config, const WeightSource& weights, const LoadOptions& options,
               std::unique_ptr<BpeTokenizer> tokenizer)
      : cfg_(config), tokenizer_(std::move(tokenizer)), bf16_(options.bf16) {
    inv_freq_ = rope_inv_freq(cfg_.head_dim, cfg_.rope.theta, cfg_.rope.scaling);
    if (cfg_.local_rope)
      inv_freq_local_ =
          rope_inv_freq(cfg_.head_dim, cfg_.rope_local.theta, cfg_.rope_local.scaling);
    WeightReader r(weights, {options.bf16, options.int8, options.quantized});
    embed_ = r.embedding("model.embed_tokens.weight", cfg_.vocab_size, cfg_.hidden);
    // transformers ties lm_head to the embedding when configured so, or when the file has none.
    const bool tied = cfg_.tied_embeddings || !weights.contains("lm_head.weight");
    lm_head_ = tied ? r.tied_linear(embed_, "model.embed_tokens.weight", "lm_head")
                    : r.linear("lm_head", cfg_.hidden, cfg_.vocab_size);
    tied_head_ = tied;
    for (int64_t i = 0; i < cfg_.layers; ++i) blocks_.push_back(load_block(r, i));
    final_norm_ = norm(r, "model.norm", cfg_.hidden);
    if (cfg_.eos_ids.empty()) cfg_.eos_ids = {tokenizer_->eos_id()};
    std::vector<Linear*> targets;
    for_each_linear([&](Linear& l) { targets.push_back(&l); });
    index_lora_targets(targets);
    check(tokenizer_->vocab_size() <= cfg_.vocab_size,
          "tokenizer has {} tokens but the model's vocab_size is {}", tokenizer_->vocab_size(),
          cfg_.vocab_size);
  }

  std::string architecture() const override { return cfg_.architecture; }
  bool is_encoder_decoder() const override { return false; }
  const Tokenizer& tokenizer() const override { return *tokenizer_; }

  Example make_example(const std::string& input, const std::string& output) const override {
    Example e{tokenizer_->encode(input, true), tokenizer_->encode(" " + output, false)};
    e.label_ids.push_back(cfg_.eos_ids.front());
    // Over the limit, keep the end of the input (nearest the answer) and all of the output.
    const size_t room =
        kMaxInputTokens > e.label_ids.size() ? kMaxInputTokens - e.label_ids.size() : 1;
    if (e.input_ids.size() > room) e.input_ids.erase(e.input_ids.begin(), e.input_ids.end() - room);
    if (e.label_ids.size() > kMaxInputTokens - e.input_ids.size())
      e.label_ids.resize(kMaxInputTokens - e.input_ids.size());
    return e;
  }

  std::vector<ExampleLoss> score(const std::vector<Example>& batch,
                                 const SequenceLora& lora) const override {
    std::vector<ExampleLoss> losses;
    const auto logits = label_logits(batch, lora);
    for (size_t b = 0; b < batch.size(); ++b)
      losses.push_back(cross_entropy(logits[b].f32(), batch[b].label_ids, cfg_.vocab_size));
    return losses;
  }

  std::vector<Tensor> label_logits(const std::vector<Example>& batch,
                                   const SequenceLora& lora) const override;
  std::vector<std::vector<float>> mean_hidden_states(
      const std::vector<std::vector<int32_t>>& inputs, const SequenceLora& lora) const override;
  std::unique_ptr<DecodeState> prefill(const std::vector<std::vector<int32_t>>& prompts,
                                       int max_new_tokens, const SequenceLora& lora) const override;
  void decode_step(DecodeState& state, const std::vector<int32_t>& tokens) const override;
  void decode_steps(const std::vector<DecodeState*>& states,
                    const std::vector<int32_t>& tokens) const override;
  int64_t vocab_size() const override { return cfg_.vocab_size; }
  std::vector<int32_t> end_of_sequence_ids() const override { return cfg_.eos_ids; }

  void merge_lora(const LoraMap& lora) override {
    check_lora_targets(lora, linear_layers(), cfg_.architecture);
    for_each_linear([&](Linear& l) { merge_lora_into(l, lora); });
  }
  std::vector<std::pair<std::string, Tensor>> state_dict() const override;

 protected:
  std::vector<const Linear*> lora_targets() const override {
    std::vector<const Linear*> out;
    const_cast<DecoderModel*>(this)->for_each_linear([&](Linear& l) { out.push_back(&l); });
    return out;
  }

 private:
  // An RMSNorm's weight as the kernels use it: Gemma's (1 + w) folded in.
  NormLayer norm(const WeightReader& r, const std::string& module, int64_t dim) const {
    NormLayer n = r.norm(module, dim, cfg_.eps);
    if (cfg_.norm_plus_one)
      for (float& v : n.weight) v += 1.0f;
    return n;
  }
  // The norm weights as transformers stores them (w, not 1 + w).
  std::vector<float> stored(const NormLayer& n) const {
    std::vector<float> w = n.weight;
    if (cfg_.norm_plus_one)
      for (float& v : w) v -= 1.0f;
    return w;
  }

  DecoderBlock load_block(const WeightReader& r, int64_t i) const {
    const std::string p = fmt::format("model.layers.{}.", i);
    auto name = [&](BlockTensor t) { return p + cfg_.hf_name(t); };
    DecoderBlock b;
    b.attn_norm = norm(r, name(BlockTensor::AttnNorm), cfg_.hidden);
    b.ffn_norm = norm(r, name(BlockTensor::FfnNorm), cfg_.hidden);
    if (cfg_.sandwich_norms) {
      b.post_attn_norm = norm(r, name(BlockTensor::PostAttnNorm), cfg_.hidden);
      b.post_ffn_norm = norm(r, name(BlockTensor::PostFfnNorm), cfg_.hidden);
    }
    if (cfg_.qk_norm) {
      b.q_norm = norm(r, name(BlockTensor::QNorm), cfg_.head_dim);
      b.k_norm = norm(r, name(BlockTensor::KNorm), cfg_.head_dim);
    }
    const int64_t q_dim = cfg_.heads * cfg_.head_dim, kv_dim = cfg_.kv_heads * cfg_.head_dim;
    if (cfg_.fused_qkv) {
      b.qkv = r.linear(name(BlockTensor::Qkv), cfg_.hidden, q_dim + 2 * kv_dim, cfg_.qkv_bias);
    } else {
      b.attn.q = r.linear(name(BlockTensor::Q), cfg_.hidden, q_dim, cfg_.qkv_bias);
      b.attn.k = r.linear(name(BlockTensor::K), cfg_.hidden, kv_dim, cfg_.qkv_bias);
      b.attn.v = r.linear(name(BlockTensor::V), cfg_.hidden, kv_dim, cfg_.qkv_bias);
    }
    b.attn.o = r.linear(name(BlockTensor::O), q_dim, cfg_.hidden, cfg_.o_bias);
    b.attn.n_heads = cfg_.heads;
    b.attn.n_kv_heads = cfg_.kv_heads;
    b.attn.head_dim = cfg_.head_dim;
    b.attn.score_scale = cfg_.attn_scale;
    b.ffn.gated = true;
    b.ffn.act = cfg_.act;
    if (cfg_.fused_gate_up) {
      b.ffn.fused_gate_up = true;
      b.ffn.gate = r.linear(name(BlockTensor::GateUp), cfg_.hidden, 2 * cfg_.intermediate);
    } else {
      b.ffn.gate = r.linear(name(BlockTensor::Gate), cfg_.hidden, cfg_.intermediate);
      b.ffn.up = r.linear(name(BlockTensor::Up), cfg_.hidden, cfg_.intermediate);
    }
    b.ffn.down = r.linear(name(BlockTensor::Down), cfg_.intermediate, cfg_.hidden);
    const bool local = cfg_.local_rope && cfg_.sliding[i];
    b.inv_freq = local ? &inv_freq_local_ : &inv_freq_;
    b.window = cfg_.window_of(i);
    return b;
  }

  template <typename F>
  void for_each_linear(F f) {
    for (DecoderBlock& b : blocks_) {
      for (Linear* l : {&b.qkv, &b.attn.q, &b.attn.k, &b.attn.v, &b.attn.o, &b.ffn.gate, &b.ffn.up,
                        &b.ffn.down})
        if (l->has_weight()) f(*l);  // fused architectures leave q, k, v or up empty
    }
    f(lm_head_);
  }

  // Positions of the packed rows of a step starting at cache slot pos0: slot − left padding.
  static std::vector<int64_t> token_positions(const RaggedBatch& rows, int64_t pos0) {
    std::vector<int64_t> positions;
    positions.reserve(static_cast<size_t>(rows.rows));
    for (int64_t b = 0; b < rows.batch; ++b)
      for (int64_t i = 0; i < rows.count[b]; ++i)
        positions.push_back(pos0 + rows.first[b] + i - rows.left_pad[b]);
    return positions;
  }
  // Runs the decoder over the packed rows x[rows, hidden] of one or more batches (parts), each
  // appended to its own caches; every linear layer runs once over all rows.
  void forward(float* x, int64_t rows, const std::vector<ForwardPart>& parts,
               const LoraRows& lora) const;
  void forward(float* x, const RaggedBatch& rows, std::vector<KvCache>& caches,
               const uint8_t* key_valid, const LoraRows& lora) const {
    forward(x, rows.rows, {ForwardPart{&rows, 0, &caches, key_valid}}, lora);
  }
  // One block's self-attention over the normed rows h of all parts, appended to their caches.
  void self_attention(const DecoderBlock& block, size_t layer, const float* h, int64_t rows,
                      const std::vector<ForwardPart>& parts, const std::vector<int64_t>& positions,
                      const LoraRows& lora, float* out) const;
  // Final norm + LM head for the given hidden rows.
  std::vector<float> logits(const float* hidden, int64_t rows, const LoraRows& lora) const;
  std::vector<float> embed(const std::vector<int32_t>& ids) const {
    std::vector<float> x = embed_.lookup(ids);
    if (cfg_.embed_scale != 1.0f) scale_inplace(x.data(), cfg_.embed_scale, std::ssize(x));
    return x;
  }

  DecoderSpec cfg_;
  std::unique_ptr<BpeTokenizer> tokenizer_;
  std::vector<float> inv_freq_, inv_freq_local_;  // global layers (all by default), local ones
  Embedding embed_;                               // [vocab, hidden]
  std::vector<DecoderBlock> blocks_;
  NormLayer final_norm_;
  Linear lm_head_;
  bool tied_head_ = false;
  bool bf16_ = false;  // the fast path (LoadOptions::bf16): bf16 weights and generation caches
};

// A batch being decoded: its caches, which slots are real, and the rows of one step.
struct DecoderDecodeState : DecodeState {
  std::vector<KvCache> caches;
  std::vector<uint8_t> valid;  // [batch, capacity]: 0 for left padding
  RaggedBatch step_rows;       // one new token per sequence
  std::unique_ptr<DecodeState> clone() const override {
    return std::make_unique<DecoderDecodeState>(*this);
  }
};

void DecoderModel::self_attention(const DecoderBlock& block, size_t layer, const float* h,
                                  int64_t n, const std::vector<ForwardPart>& parts,
                                  const std::vector<int64_t>& positions, const LoraRows& lora,
                                  float* out) const {
  const AttentionLayer& a = block.attn;
  const int64_t q_dim = a.q_dim(), kv_dim = a.kv_dim();
  std::vector<float> q(static_cast<size_t>(n * q_dim)), k(static_cast<size_t>(n * kv_dim)),
      v(k.size());
  if (block.qkv.has_weight()) {  // [q | k | v] per row
    const int64_t width = q_dim + 2 * kv_dim;
    std::vector<float> qkv(static_cast<size_t>(n * width));
    linear_forward(block.qkv, h, n, qkv.data(), lora);
    for (int64_t r = 0; r < n; ++r) {
      const float* row = &qkv[r * width];
      std::copy_n(row, q_dim, &q[r * q_dim]);
      std::copy_n(row + q_dim, kv_dim, &k[r * kv_dim]);
      std::copy_n(row + q_dim + kv_dim, kv_dim, &v[r * kv_dim]);
    }
  } else {
    linear_forward_many({&a.q, &a.k, &a.v}, h, n, {q.data(), k.data(), v.data()}, lora);
  }
  if (!block.q_norm.weight.empty()) {  // over each head: rows·heads rows of head_dim
    norm_forward(block.q_norm, q.data(), n * a.n_heads, q.data());
    norm_forward(block.k_norm, k.data(), n * a.n_kv_heads, k.data());
  }
  apply_rope(q.data(), n, a.n_heads, a.head_dim, positions.data(), *block.inv_freq);
  apply_rope(k.data(), n, a.n_kv_heads, a.head_dim, positions.data(), *block.inv_freq);
  std::vector<float> context(q.size());
  for (const ForwardPart& part : parts) {  // attention is per batch: its own cache and mask
    KvCache& cache = (*part.caches)[layer];
    const int64_t r0 = part.row_offset;
    const int64_t q_pos0 = cache.length;
    write_kv(&k[r0 * kv_dim], &v[r0 * kv_dim], *part.rows, cache);
    const AttentionMask mask{
        .key_valid = part.key_valid, .causal = true, .q_pos0 = q_pos0, .window = block.window};
    attend(a, &q[r0 * q_dim], *part.rows, cache, mask, &context[r0 * q_dim]);
  }
  linear_forward(a.o, context.data(), n, out, lora);
}

void DecoderModel::forward(float* x, int64_t rows, const std::vector<ForwardPart>& parts,
                           const LoraRows& lora) const {
  const int64_t d = cfg_.hidden;
  std::vector<int64_t> positions;
  positions.reserve(static_cast<size_t>(rows));
  for (const ForwardPart& part : parts) {
    const auto p = token_positions(*part.rows, part.caches->front().length);
    positions.insert(positions.end(), p.begin(), p.end());
  }
  check(std::ssize(positions) == rows, "forward: the parts hold {} rows, not {}", positions.size(),
        rows);
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const DecoderBlock& block = blocks_[l];
    residual(block.attn_norm, block.post_attn_norm, x, rows, d, [&](const float* h, float* out) {
      self_attention(block, l, h, rows, parts, positions, lora, out);
    });
    residual(block.ffn_norm, block.post_ffn_norm, x, rows, d,
             [&](const float* h, float* out) { feed_forward(block.ffn, h, rows, out, lora); });
  }
}

std::vector<float> DecoderModel::logits(const float* hidden, int64_t rows,
                                        const LoraRows& lora) const {
  std::vector<float> h(static_cast<size_t>(rows * cfg_.hidden));
  norm_forward(final_norm_, hidden, rows, h.data());
  std::vector<float> z(static_cast<size_t>(rows * cfg_.vocab_size));
  linear_forward(lm_head_, h.data(), rows, z.data(), lora);
  if (const float cap = cfg_.final_softcap; cap > 0.0f)
    for (float& v : z) v = cap * std::tanh(v / cap);
  return z;
}

std::vector<Tensor> DecoderModel::label_logits(const std::vector<Example>& batch,
                                               const SequenceLora& lora) const {
  std::vector<Tensor> out;
  if (batch.empty()) return out;
  std::vector<std::vector<int32_t>> seqs;
  std::vector<int64_t> label_counts;
  for (const Example& e : batch) {
    check(!e.input_ids.empty() && !e.label_ids.empty(),
          "decoder-only example needs input and label tokens");
    seqs.push_back(e.input_ids);
    seqs.back().insert(seqs.back().end(), e.label_ids.begin(), e.label_ids.end());
    label_counts.push_back(std::ssize(e.label_ids));
  }
  const PaddedBatch p = pad_batch(seqs, std::max(tokenizer_->pad_id(), 0), /*left=*/false);
  const RaggedBatch rows_of = RaggedBatch::of(p);
  std::vector<float> x = embed(packed_ids(p));
  std::vector<KvCache> caches(blocks_.size());
  for (auto& c : caches) c.reset(p.batch, p.len, cfg_.kv_heads * cfg_.head_dim);
  forward(x.data(), rows_of, caches, p.valid.data(), lora_rows(lora, rows_of.count));
  // The logits at position t predict token t + 1: gather the rows before each label token and
  // run the LM head on those alone (the vocabulary is large; the other rows are not needed).
  const int64_t d = cfg_.hidden;
  std::vector<float> rows;
  for (size_t b = 0; b < batch.size(); ++b) {
    const int64_t first = static_cast<int64_t>(batch[b].input_ids.size()) - 1;
    const auto from = x.begin() + (rows_of.row0[b] + first) * d;
    rows.insert(rows.end(), from, from + label_counts[b] * d);
  }
  const std::vector<float> z =
      logits(rows.data(), static_cast<int64_t>(rows.size()) / d, lora_rows(lora, label_counts));
  size_t row = 0;
  for (const Example& e : batch) {
    const int64_t n = static_cast<int64_t>(e.label_ids.size());
    const auto from = z.begin() + row * cfg_.vocab_size;
    out.push_back(Tensor::from_f32({from, from + n * cfg_.vocab_size}, {n, cfg_.vocab_size}));
    row += n;
  }
  return out;
}

std::vector<std::vector<float>> DecoderModel::mean_hidden_states(
    const std::vector<std::vector<int32_t>>& inputs, const SequenceLora& lora) const {
  if (inputs.empty()) return {};
  for (const auto& ids : inputs) check(!ids.empty(), "mean_hidden_states: an input has no tokens");
  const PaddedBatch p = pad_batch(inputs, std::max(tokenizer_->pad_id(), 0), /*left=*/false);
  const RaggedBatch rows_of = RaggedBatch::of(p);
  std::vector<float> x = embed(packed_ids(p));
  std::vector<KvCache> caches(blocks_.size());
  for (auto& c : caches) c.reset(p.batch, p.len, cfg_.kv_heads * cfg_.head_dim);
  forward(x.data(), rows_of, caches, p.valid.data(), lora_rows(lora, rows_of.count));
  std::vector<float> h(x.size());
  norm_forward(final_norm_, x.data(), rows_of.rows, h.data());
  return mean_rows(h, rows_of, cfg_.hidden);
}

std::unique_ptr<DecodeState> DecoderModel::prefill(const std::vector<std::vector<int32_t>>& inputs,
                                                   int max_new_tokens,
                                                   const SequenceLora& lora) const {
  auto state = std::make_unique<DecoderDecodeState>();
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& ids : inputs) {
    check(!ids.empty(), "generate: empty input");
    const size_t keep = std::min(ids.size(), kMaxInputTokens);
    prompts.emplace_back(ids.end() - keep, ids.end());
  }
  const PaddedBatch p = pad_batch(prompts, std::max(tokenizer_->pad_id(), 0), /*left=*/true);
  state->batch = p.batch;
  state->lora = lora;
  const int64_t capacity = p.len + std::max(max_new_tokens, 1);
  state->caches.resize(blocks_.size());
  for (auto& c : state->caches) c.reset(p.batch, capacity, cfg_.kv_heads * cfg_.head_dim, bf16_);
  state->valid.assign(static_cast<size_t>(p.batch * capacity), 1);
  for (int64_t b = 0; b < p.batch; ++b)
    std::fill_n(state->valid.begin() + b * capacity, p.offsets[b], 0);
  state->step_rows = RaggedBatch::dense(p.batch, 1);
  state->step_rows.left_pad = p.offsets;

  // The whole prompt, packed; the last position of each sequence predicts its first new token.
  const RaggedBatch prompt_rows = RaggedBatch::of(p);
  std::vector<float> x = embed(packed_ids(p));
  forward(x.data(), prompt_rows, state->caches, state->valid.data(),
          lora_rows(lora, prompt_rows.count));
  std::vector<float> last(static_cast<size_t>(p.batch * cfg_.hidden));
  for (int64_t b = 0; b < p.batch; ++b)
    std::copy_n(x.begin() + (prompt_rows.row0[b] + prompt_rows.count[b] - 1) * cfg_.hidden,
                cfg_.hidden, last.begin() + b * cfg_.hidden);
  state->logits = logits(last.data(), p.batch, lora_rows(lora, state->step_rows.count));
  return state;
}

void DecoderModel::decode_step(DecodeState& state, const std::vector<int32_t>& tokens) const {
  decode_steps({&state}, tokens);
}

void DecoderModel::decode_steps(const std::vector<DecodeState*>& states,
                                const std::vector<int32_t>& tokens) const {
  // A negative token marks a finished sequence: its row is left out of every layer (no
  // activations, no key/value written, its logits row left as it was), so that a batch whose
  // sequences end at different steps costs only its running rows.
  std::vector<RaggedBatch> step_rows(states.size());
  std::vector<ForwardPart> parts;
  SequenceLora lora;                  // per sequence, over all states
  std::vector<int64_t> per_sequence;  // 1 = runs this step, 0 = finished
  std::vector<int32_t> running;       // the tokens of the rows that run
  int64_t rows = 0;
  size_t next = 0;
  for (size_t s = 0; s < states.size(); ++s) {
    auto& state = dynamic_cast<DecoderDecodeState&>(*states[s]);
    check(state.caches.empty() || state.caches[0].length < state.caches[0].capacity,
          "decode step: the KV cache is full (prefill was given fewer new tokens)");
    check(next + static_cast<size_t>(state.batch) <= tokens.size(),
          "decode step: {} tokens for more sequences", tokens.size());
    RaggedBatch& r = step_rows[s];
    r = state.step_rows;
    int64_t row = 0;
    for (int64_t b = 0; b < state.batch; ++b) {
      const int32_t token = tokens[next + static_cast<size_t>(b)];
      r.count[b] = token >= 0 ? 1 : 0;
      r.row0[b] = row;
      row += r.count[b];
      if (token >= 0) running.push_back(token);
      per_sequence.push_back(r.count[b]);
      lora.push_back(state.lora.empty()       ? nullptr
                     : state.lora.size() == 1 ? state.lora[0]
                                              : state.lora.at(static_cast<size_t>(b)));
    }
    r.rows = row;
    parts.push_back({&r, rows, &state.caches, state.valid.data()});
    rows += row;
    next += static_cast<size_t>(state.batch);
  }
  check(next == tokens.size(), "decode step: {} tokens for {} sequences", tokens.size(), next);
  if (rows == 0) {  // every sequence has finished: the step only moves the caches on
    for (DecodeState* base : states)
      for (KvCache& c : dynamic_cast<DecoderDecodeState&>(*base).caches) ++c.length;
    return;
  }
  const LoraRows spans = lora_rows(lora, per_sequence);
  std::vector<float> x = embed(running);
  forward(x.data(), rows, parts, spans);
  const std::vector<float> z = logits(x.data(), rows, spans);
  const auto vocab = static_cast<size_t>(cfg_.vocab_size);
  for (size_t s = 0; s < states.size(); ++s) {
    DecodeState* state = states[s];
    const RaggedBatch& r = step_rows[s];
    state->logits.resize(static_cast<size_t>(state->batch) * vocab);
    for (int64_t b = 0; b < state->batch; ++b)
      if (r.count[b] > 0)
        std::copy_n(z.begin() + static_cast<size_t>(parts[s].row_offset + r.row0[b]) * vocab, vocab,
                    state->logits.begin() + static_cast<size_t>(b) * vocab);
  }
}

std::vector<std::pair<std::string, Tensor>> DecoderModel::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> sd;
  auto add = [&](const std::string& name, const std::vector<float>& v, Shape shape) {
    sd.emplace_back(name, Tensor::from_f32(v, std::move(shape)));
  };
  add("model.embed_tokens.weight", embed_.values(), {cfg_.vocab_size, cfg_.hidden});
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    const DecoderBlock& b = blocks_[i];
    auto add_norm = [&](BlockTensor t, const NormLayer& n) {
      if (!n.weight.empty())
        add(p + cfg_.hf_name(t) + ".weight", stored(n), {std::ssize(n.weight)});
    };
    add_norm(BlockTensor::AttnNorm, b.attn_norm);
    add_norm(BlockTensor::FfnNorm, b.ffn_norm);
    add_norm(BlockTensor::PostAttnNorm, b.post_attn_norm);
    add_norm(BlockTensor::PostFfnNorm, b.post_ffn_norm);
    add_norm(BlockTensor::QNorm, b.q_norm);
    add_norm(BlockTensor::KNorm, b.k_norm);
  }
  add("model.norm.weight", stored(final_norm_), {cfg_.hidden});
  const_cast<DecoderModel*>(this)->for_each_linear([&](Linear& l) {
    if (&l == &lm_head_ && tied_head_) return;
    add(l.name + ".weight", weight_f32(l), {l.out, l.in});
    if (!l.bias.empty()) add(l.name + ".bias", l.bias, {l.out});
  });
  return sd;
}

}  // namespace

std::unique_ptr<Model> load_llama(const std::string& dir, const HfConfig& config,
                                  const LoadOptions& options) {
  const DecoderSpec cfg = DecoderSpec::from_hf(config);
  check(std::filesystem::is_regular_file(std::filesystem::path(dir) / "tokenizer.json"),
        "{}: no tokenizer: tokenizer.json not found (decoder-only models need it)", dir);
  auto tokenizer = BpeTokenizer::from_hf_dir(dir);
  const StateDict weights = load_model_weights(dir);
  return std::make_unique<DecoderModel>(cfg, StateDictSource(weights), options,
                                        std::move(tokenizer));
}

std::unique_ptr<Model> load_llama_gguf(const std::string& path, const LoadOptions& options) {
  GgufFile gguf = GgufFile::open(path);
  const DecoderSpec cfg = DecoderSpec::from_gguf(gguf);
  auto tokenizer = BpeTokenizer::from_gguf(gguf);
  // The vocabulary's key/values (tens of MB as parsed) are done with: their memory goes to the
  // weights instead of adding to the peak (a quarter of it for SmolLM2-135M).
  gguf.forget_metadata();
  release_freed_memory();
  return std::make_unique<DecoderModel>(cfg, gguf_weights(gguf, cfg), options,
                                        std::move(tokenizer));
}

}  // namespace lorahub
