#include "models/t5.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "models/batch.h"
#include "models/blocks.h"
#include "models/weights.h"
#include "tokenizer/sentencepiece.h"

namespace lorahub {

T5Config T5Config::from_hf(const HfConfig& hf) {
  T5Config c;
  c.vocab_size = hf.get_int("vocab_size");
  c.d_model = hf.get_int("d_model");
  c.d_kv = hf.get_int("d_kv");
  c.d_ff = hf.get_int("d_ff");
  c.num_heads = hf.get_int("num_heads");
  c.num_layers = hf.get_int("num_layers");
  c.num_decoder_layers = hf.get_int_or("num_decoder_layers", c.num_layers);
  c.num_buckets = hf.get_int_or("relative_attention_num_buckets", 32);
  c.max_distance = hf.get_int_or("relative_attention_max_distance", 128);
  c.eps = static_cast<float>(hf.get_double_or("layer_norm_epsilon", 1e-6));
  const std::string proj = hf.get_string_or("feed_forward_proj", "relu");
  const auto dash = proj.find('-');
  c.gated = dash != std::string::npos && proj.substr(0, dash) == "gated";
  check(dash == std::string::npos || (c.gated && proj.find('-', dash + 1) == std::string::npos),
        "{}: field 'feed_forward_proj' must be '<act>' or 'gated-<act>', got '{}'", hf.source(),
        proj);
  // transformers maps "gated-gelu" to the tanh approximation (gelu_new), for backward
  // compatibility.
  const std::string act = proj == "gated-gelu" ? "gelu_new" : proj.substr(dash + 1);
  c.act = activation_from_name(act);
  // transformers 5 writes scale_decoder_outputs; older configs say it with tie_word_embeddings.
  c.scale_decoder_outputs = hf.has("scale_decoder_outputs")
                                ? hf.get_bool("scale_decoder_outputs")
                                : hf.get_bool_or("tie_word_embeddings", true);
  c.decoder_start_id = static_cast<int32_t>(hf.get_int_or("decoder_start_token_id", 0));
  c.eos_id = static_cast<int32_t>(hf.get_int_or("eos_token_id", 1));
  c.pad_id = static_cast<int32_t>(hf.get_int_or("pad_token_id", 0));
  for (auto [name, value] : {std::pair<const char*, int64_t>{"vocab_size", c.vocab_size},
                             {"d_model", c.d_model},
                             {"d_kv", c.d_kv},
                             {"d_ff", c.d_ff},
                             {"num_heads", c.num_heads},
                             {"num_layers", c.num_layers},
                             {"relative_attention_num_buckets", c.num_buckets},
                             {"relative_attention_max_distance", c.max_distance}})
    check(value > 0, "{}: field '{}' must be positive, got {}", hf.source(), name, value);
  check(c.num_decoder_layers > 0, "{}: field 'num_decoder_layers' must be positive", hf.source());
  return c;
}

namespace {

struct T5Block {
  NormLayer self_norm;
  AttentionLayer self_attn;
  NormLayer cross_norm;  // decoder only
  AttentionLayer cross_attn;
  NormLayer ff_norm;
  FeedForward ff;
};

struct T5Stack {
  std::vector<T5Block> blocks;
  NormLayer final_norm;
  RelativePositionBias rel;
};

class T5Model : public Model {
 public:
  T5Model(const T5Config& config, const StateDict& weights, const LoadOptions& options,
          std::unique_ptr<SentencePieceTokenizer> tokenizer)
      : cfg_(config), tokenizer_(std::move(tokenizer)), bf16_(options.bf16) {
    WeightReader reader(weights, {options.bf16, options.int8, options.quantized});
    const std::string shared_name =
        weights.contains("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight";
    shared_ = reader.embedding(shared_name, cfg_.vocab_size, cfg_.d_model);
    // transformers ties lm_head to shared unless the checkpoint holds its own lm_head.weight.
    untied_head_ = weights.contains("lm_head.weight");
    lm_head_ = untied_head_ ? reader.linear("lm_head", cfg_.d_model, cfg_.vocab_size)
                            : reader.tied_linear(shared_, shared_name, "lm_head");
    encoder_ = load_stack(reader, "encoder", cfg_.num_layers, false);
    decoder_ = load_stack(reader, "decoder", cfg_.num_decoder_layers, true);
    std::vector<Linear*> targets;
    for_each_linear(*this, [&](Linear& l) { targets.push_back(&l); });
    index_lora_targets(targets);
  }

  std::string architecture() const override { return "t5"; }
  bool is_encoder_decoder() const override { return true; }
  const Tokenizer& tokenizer() const override { return *tokenizer_; }

  Example make_example(const std::string& input, const std::string& output) const override {
    return {truncate(tokenizer_->encode(input)), truncate(tokenizer_->encode(output))};
  }

  std::vector<ExampleLoss> score(const std::vector<Example>& batch,
                                 const SequenceLora& lora) const override {
    std::vector<ExampleLoss> losses(batch.size());
    if (batch.empty()) return losses;
    const PaddedBatch labels = padded_labels(batch);
    const std::vector<float> logits = teacher_forced_logits(batch, labels, lora);  // packed
    // Label padding (-100 in transformers) has no row: it is never scored.
    const float* z = logits.data();
    for (size_t b = 0; b < batch.size(); ++b) {
      losses[b] = cross_entropy(z, batch[b].label_ids, cfg_.vocab_size);
      z += batch[b].label_ids.size() * cfg_.vocab_size;
    }
    return losses;
  }

  std::vector<std::vector<float>> mean_hidden_states(
      const std::vector<std::vector<int32_t>>& inputs, const SequenceLora& lora) const override {
    if (inputs.empty()) return {};
    const PaddedBatch in = pad_batch(inputs, cfg_.pad_id);
    return mean_rows(encode(in, lora), RaggedBatch::of(in), cfg_.d_model);
  }

  std::vector<Tensor> label_logits(const std::vector<Example>& batch,
                                   const SequenceLora& lora) const override {
    std::vector<Tensor> out;
    if (batch.empty()) return out;
    const PaddedBatch labels = padded_labels(batch);
    const std::vector<float> logits = teacher_forced_logits(batch, labels, lora);  // packed
    const int64_t vocab = cfg_.vocab_size;
    auto first = logits.begin();
    for (const Example& e : batch) {
      const int64_t n = static_cast<int64_t>(e.label_ids.size());
      out.push_back(Tensor::from_f32(std::vector<float>(first, first + n * vocab), {n, vocab}));
      first += n * vocab;
    }
    return out;
  }

  std::unique_ptr<DecodeState> prefill(const std::vector<std::vector<int32_t>>& prompts,
                                       int max_new_tokens, const SequenceLora& lora) const override;
  void decode_step(DecodeState& state, const std::vector<int32_t>& tokens) const override;
  int64_t vocab_size() const override { return cfg_.vocab_size; }
  std::vector<int32_t> end_of_sequence_ids() const override { return {cfg_.eos_id}; }

  void merge_lora(const LoraMap& lora) override {
    check_lora_targets(lora, linear_layers(), "t5");
    for_each_linear(*this, [&](Linear& l) { merge_lora_into(l, lora); });
  }
  std::vector<std::pair<std::string, Tensor>> state_dict() const override;

 protected:
  std::vector<const Linear*> lora_targets() const override {
    std::vector<const Linear*> out;
    for_each_linear(*this, [&](const Linear& l) { out.push_back(&l); });
    return out;
  }

 private:
  // Over the limit, keep the start and end with EOS, as the reference's tokenizer does.
  std::vector<int32_t> truncate(std::vector<int32_t> ids) const {
    if (ids.size() > kMaxInputTokens) ids.back() = cfg_.eos_id;
    truncate_keep_last(ids, kMaxInputTokens);
    return ids;
  }

  T5Stack load_stack(WeightReader& r, const std::string& prefix, int64_t layers,
                     bool is_decoder) const;
  AttentionLayer load_attention(WeightReader& r, const std::string& prefix) const;
  FeedForward load_feed_forward(WeightReader& r, const std::string& prefix) const;

  // Calls f on every linear layer (the LoRA targets) of `self`, const or not.
  template <typename Self, typename F>
  static void for_each_linear(Self& self, F f) {
    for (auto* stack : {&self.encoder_, &self.decoder_}) {
      for (auto& b : stack->blocks) {
        for (auto* a : {&b.self_attn, &b.cross_attn})
          for (auto* l : {&a->q, &a->k, &a->v, &a->o})
            if (l->has_weight()) f(*l);  // encoder blocks have no cross-attention
        for (auto* l : {&b.ff.gate, &b.ff.up, &b.ff.down})
          if (l->has_weight()) f(*l);  // ungated feed-forward has no `up`
      }
    }
    f(self.lm_head_);
  }

  PaddedBatch padded_labels(const std::vector<Example>& batch) const {
    std::vector<std::vector<int32_t>> seqs;
    for (const Example& e : batch) {
      check(!e.label_ids.empty(), "T5 example without label tokens");
      seqs.push_back(e.label_ids);
    }
    return pad_batch(seqs, cfg_.pad_id);
  }

  // Encoder output for the real tokens of `in`: packed rows [RaggedBatch::of(in).rows, d_model].
  std::vector<float> encode(const PaddedBatch& in, const SequenceLora& lora) const;
  // Decoder hidden states -> logits [rows, vocab] (final norm, optional scaling, LM head).
  std::vector<float> lm_logits(std::vector<float> hidden, int64_t rows, const LoraRows& lora) const;
  // One decoder block over the packed rows x with its caches (self-attention appended to).
  void decoder_block(const T5Block& block, float* x, const RaggedBatch& rows, KvCache& self_cache,
                     const KvCache& cross_cache, const uint8_t* enc_valid, const float* self_bias,
                     const LoraRows& lora) const;
  // Keys/values of the encoder output for one decoder block's cross-attention. A generation
  // cache (kept while the batch decodes) is laid out by head, and bf16 on the fast path.
  // enc16: the encoder output rounded to bf16 once for all blocks (encoder_bf16), or nullptr.
  void fill_cross_cache(const AttentionLayer& cross, const std::vector<float>& enc,
                        const uint16_t* enc16, const PaddedBatch& enc_in, const SequenceLora& lora,
                        KvCache& cache, bool generation = false) const {
    cache.reset(enc_in.batch, enc_in.len, cross.kv_dim(), generation && bf16_,
                generation ? cross.head_dim : 0);
    const RaggedBatch rows = RaggedBatch::of(enc_in);
    append_kv(cross, enc.data(), rows, cache, lora_rows(lora, rows.count), enc16);
  }
  Bf16Input encoder_bf16(const std::vector<float>& enc) const {
    if (decoder_.blocks.empty()) return {};
    return bf16_input(decoder_.blocks[0].cross_attn.k, enc.data(),
                      static_cast<int64_t>(enc.size()) / cfg_.d_model);
  }
  std::vector<float> teacher_forced_logits(const std::vector<Example>& batch,
                                           const PaddedBatch& labels,
                                           const SequenceLora& lora) const;
  std::vector<float> embed(const std::vector<int32_t>& ids) const { return shared_.lookup(ids); }

  T5Config cfg_;
  std::unique_ptr<SentencePieceTokenizer> tokenizer_;
  Embedding shared_;  // [vocab, d_model]
  T5Stack encoder_, decoder_;
  Linear lm_head_;
  bool untied_head_ = false;
  bool bf16_ = false;  // the fast path (LoadOptions::bf16): bf16 weights and generation caches
};

// A batch being decoded: the encoder's padding mask, the decoder's caches, the step reached.
struct T5DecodeState : DecodeState {
  PaddedBatch enc_in;
  std::vector<KvCache> self_caches, cross_caches;
  int64_t step = 0;  // decoder tokens fed so far
  std::unique_ptr<DecodeState> clone() const override {
    return std::make_unique<T5DecodeState>(*this);
  }
};

AttentionLayer T5Model::load_attention(WeightReader& r, const std::string& prefix) const {
  const int64_t inner = cfg_.num_heads * cfg_.d_kv;
  AttentionLayer a;
  a.q = r.linear(prefix + ".q", cfg_.d_model, inner);
  a.k = r.linear(prefix + ".k", cfg_.d_model, inner);
  a.v = r.linear(prefix + ".v", cfg_.d_model, inner);
  a.o = r.linear(prefix + ".o", inner, cfg_.d_model);
  a.n_heads = a.n_kv_heads = cfg_.num_heads;
  a.head_dim = cfg_.d_kv;
  a.score_scale = 1.0f;  // T5 folds the 1/sqrt(d) scaling into its initialisation
  return a;
}

FeedForward T5Model::load_feed_forward(WeightReader& r, const std::string& prefix) const {
  FeedForward ff;
  ff.gated = cfg_.gated;
  ff.act = cfg_.act;
  if (cfg_.gated) {
    ff.gate = r.linear(prefix + ".wi_0", cfg_.d_model, cfg_.d_ff);
    ff.up = r.linear(prefix + ".wi_1", cfg_.d_model, cfg_.d_ff);
  } else {
    ff.gate = r.linear(prefix + ".wi", cfg_.d_model, cfg_.d_ff);
  }
  // wo takes two int8 levels on the int8 path (W ≈ s·(q₁ + q₂/254) per row, about 15 bits;
  // 1.5x its integer products), where transformers keeps it in fp32 under fp16
  // (T5PreTrainedModel._keep_in_fp32_modules = ["wo"]): T5's wo has outlier input columns
  // (trained checkpoints), and one outlier column sets every row's per-channel int8 scale, leaving
  // the row's other weights a few steps of one level (tests/parity/test_quantized.py's planted
  // columns: batch loss 2.5 % off f32 with one level, 0.14 % with two, 0.11 % with wo in f32).
  // Float wo ran a fifth of the products at the f32 rate.
  ff.down =
      r.linear(prefix + ".wo", cfg_.d_ff, cfg_.d_model, false, WeightReader::Quantize::kTwoLevels);
  return ff;
}

T5Stack T5Model::load_stack(WeightReader& r, const std::string& prefix, int64_t layers,
                            bool is_decoder) const {
  T5Stack s;
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = fmt::format("{}.block.{}.layer.", prefix, i);
    T5Block b;
    b.self_norm = r.norm(p + "0.layer_norm", cfg_.d_model, cfg_.eps);
    b.self_attn = load_attention(r, p + "0.SelfAttention");
    const std::string ff_layer = p + (is_decoder ? "2" : "1");
    if (is_decoder) {
      b.cross_norm = r.norm(p + "1.layer_norm", cfg_.d_model, cfg_.eps);
      b.cross_attn = load_attention(r, p + "1.EncDecAttention");
    }
    b.ff_norm = r.norm(ff_layer + ".layer_norm", cfg_.d_model, cfg_.eps);
    b.ff = load_feed_forward(r, ff_layer + ".DenseReluDense");
    s.blocks.push_back(std::move(b));
  }
  s.final_norm = r.norm(prefix + ".final_layer_norm", cfg_.d_model, cfg_.eps);
  s.rel.table = r.matrix(prefix + ".block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                         cfg_.num_buckets, cfg_.num_heads);
  s.rel.num_buckets = cfg_.num_buckets;
  s.rel.max_distance = cfg_.max_distance;
  s.rel.heads = cfg_.num_heads;
  s.rel.bidirectional = !is_decoder;
  return s;
}

std::vector<float> T5Model::encode(const PaddedBatch& in, const SequenceLora& adapters) const {
  const RaggedBatch ragged = RaggedBatch::of(in);
  const LoraRows lora = lora_rows(adapters, ragged.count);
  const int64_t rows = ragged.rows, d = cfg_.d_model;
  std::vector<float> x = embed(packed_ids(in));
  const std::vector<float> bias = relative_position_bias(encoder_.rel, in.len, in.len, 0);
  KvCache cache;
  for (const T5Block& block : encoder_.blocks) {
    residual(block.self_norm, x.data(), rows, d, [&](const float* h, float* out) {
      cache.reset(in.batch, in.len, block.self_attn.kv_dim());
      const Bf16Input h16 = bf16_input(block.self_attn.q, h, rows);  // once for q, k, v
      append_kv(block.self_attn, h, ragged, cache, lora, h16.data());
      AttentionMask mask{.key_valid = in.valid.data(), .bias = bias.data()};
      attention_forward(block.self_attn, h, ragged, cache, mask, out, lora, h16.data());
    });
    residual(block.ff_norm, x.data(), rows, d,
             [&](const float* h, float* out) { feed_forward(block.ff, h, rows, out, lora); });
  }
  std::vector<float> y(x.size());
  norm_forward(encoder_.final_norm, x.data(), rows, y.data());
  return y;
}

void T5Model::decoder_block(const T5Block& block, float* x, const RaggedBatch& rows,
                            KvCache& self_cache, const KvCache& cross_cache,
                            const uint8_t* enc_valid, const float* self_bias,
                            const LoraRows& lora) const {
  const int64_t d = cfg_.d_model;
  residual(block.self_norm, x, rows.rows, d, [&](const float* h, float* out) {
    const int64_t q_pos0 = self_cache.length;
    const Bf16Input h16 = bf16_input(block.self_attn.q, h, rows.rows);  // once for q, k, v
    append_kv(block.self_attn, h, rows, self_cache, lora, h16.data());
    AttentionMask mask{.causal = true, .q_pos0 = q_pos0, .bias = self_bias};
    attention_forward(block.self_attn, h, rows, self_cache, mask, out, lora, h16.data());
  });
  residual(block.cross_norm, x, rows.rows, d, [&](const float* h, float* out) {
    AttentionMask mask{.key_valid = enc_valid};  // no position bias across the two stacks
    attention_forward(block.cross_attn, h, rows, cross_cache, mask, out, lora);
  });
  residual(block.ff_norm, x, rows.rows, d,
           [&](const float* h, float* out) { feed_forward(block.ff, h, rows.rows, out, lora); });
}

std::vector<float> T5Model::lm_logits(std::vector<float> hidden, int64_t rows,
                                      const LoraRows& lora) const {
  std::vector<float> h(hidden.size());
  norm_forward(decoder_.final_norm, hidden.data(), rows, h.data());
  if (cfg_.scale_decoder_outputs)
    scale_inplace(h.data(), 1.0f / std::sqrt(static_cast<float>(cfg_.d_model)),
                  static_cast<int64_t>(h.size()));
  std::vector<float> logits(static_cast<size_t>(rows * cfg_.vocab_size));
  linear_forward(lm_head_, h.data(), rows, logits.data(), lora);
  return logits;
}

std::vector<float> T5Model::teacher_forced_logits(const std::vector<Example>& batch,
                                                  const PaddedBatch& labels,
                                                  const SequenceLora& adapters) const {
  std::vector<std::vector<int32_t>> inputs;
  for (const Example& e : batch) {
    check(!e.input_ids.empty(), "T5 example without input tokens");
    inputs.push_back(e.input_ids);
  }
  const PaddedBatch enc_in = pad_batch(inputs, cfg_.pad_id);
  const std::vector<float> enc = encode(enc_in, adapters);
  // Decoder input = labels shifted right behind the start token (packed: label padding, whose
  // loss transformers ignores, is not computed at all).
  std::vector<int32_t> dec_ids;
  for (const Example& e : batch) {
    dec_ids.push_back(cfg_.decoder_start_id);
    dec_ids.insert(dec_ids.end(), e.label_ids.begin(), e.label_ids.end() - 1);
  }
  const RaggedBatch rows = RaggedBatch::of(labels);
  const LoraRows lora = lora_rows(adapters, rows.count);
  std::vector<float> x = embed(dec_ids);
  const std::vector<float> bias = relative_position_bias(decoder_.rel, labels.len, labels.len, 0);
  KvCache self_cache, cross_cache;
  const Bf16Input enc16 = encoder_bf16(enc);
  for (const T5Block& block : decoder_.blocks) {
    self_cache.reset(labels.batch, labels.len, block.self_attn.kv_dim());
    fill_cross_cache(block.cross_attn, enc, enc16.data(), enc_in, adapters, cross_cache);
    decoder_block(block, x.data(), rows, self_cache, cross_cache, enc_in.valid.data(), bias.data(),
                  lora);
  }
  return lm_logits(std::move(x), rows.rows, lora);
}

std::unique_ptr<DecodeState> T5Model::prefill(const std::vector<std::vector<int32_t>>& inputs,
                                              int max_new_tokens, const SequenceLora& lora) const {
  auto state = std::make_unique<T5DecodeState>();
  state->lora = lora;
  std::vector<std::vector<int32_t>> truncated;
  for (const auto& ids : inputs) {
    check(!ids.empty(), "generate: empty input");
    truncated.push_back(truncate(ids));
  }
  state->enc_in = pad_batch(truncated, cfg_.pad_id);
  state->batch = state->enc_in.batch;
  const std::vector<float> enc = encode(state->enc_in, lora);
  const size_t layers = decoder_.blocks.size();
  state->self_caches.resize(layers);
  state->cross_caches.resize(layers);
  const Bf16Input enc16 = encoder_bf16(enc);
  for (size_t l = 0; l < layers; ++l) {  // cross-attention keys/values: once per input
    // Generation caches live as long as the batch decodes: bf16 on the fast path.
    fill_cross_cache(decoder_.blocks[l].cross_attn, enc, enc16.data(), state->enc_in, lora,
                     state->cross_caches[l], true);
    const AttentionLayer& self = decoder_.blocks[l].self_attn;
    state->self_caches[l].reset(state->batch, std::max(max_new_tokens, 1), self.kv_dim(), bf16_,
                                self.head_dim);
  }
  // The decoder's first input is its start token; its logits predict the first new token.
  decode_step(*state,
              std::vector<int32_t>(static_cast<size_t>(state->batch), cfg_.decoder_start_id));
  return state;
}

void T5Model::decode_step(DecodeState& base, const std::vector<int32_t>& tokens) const {
  auto& state = dynamic_cast<T5DecodeState&>(base);
  check(static_cast<int64_t>(tokens.size()) == state.batch,
        "decode step: {} tokens for {} sequences", tokens.size(), state.batch);
  check(state.self_caches.empty() || state.step < state.self_caches[0].capacity,
        "decode step: the KV cache is full (prefill was given fewer new tokens)");
  // A finished sequence's row (a negative token) is computed on a filler token and ignored.
  std::vector<int32_t> fed = tokens;
  for (int32_t& t : fed) t = t < 0 ? cfg_.pad_id : t;
  std::vector<float> x = embed(fed);
  const std::vector<float> bias =
      relative_position_bias(decoder_.rel, 1, state.step + 1, state.step);
  const RaggedBatch step_rows = RaggedBatch::dense(state.batch, 1);
  const LoraRows lora = lora_rows(state.lora, step_rows.count);
  for (size_t l = 0; l < decoder_.blocks.size(); ++l)
    decoder_block(decoder_.blocks[l], x.data(), step_rows, state.self_caches[l],
                  state.cross_caches[l], state.enc_in.valid.data(), bias.data(), lora);
  state.logits = lm_logits(std::move(x), state.batch, lora);
  ++state.step;
}

std::vector<std::pair<std::string, Tensor>> T5Model::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> sd;
  auto add = [&](const std::string& name, const std::vector<float>& v, Shape shape) {
    sd.emplace_back(name, Tensor::from_f32(v, std::move(shape)));
  };
  add("shared.weight", shared_.values(), {cfg_.vocab_size, cfg_.d_model});
  for (auto [prefix, stack] :
       {std::pair<std::string, const T5Stack*>{"encoder", &encoder_}, {"decoder", &decoder_}}) {
    for (size_t i = 0; i < stack->blocks.size(); ++i) {
      const T5Block& b = stack->blocks[i];
      const bool dec = prefix == "decoder";
      const std::string p = fmt::format("{}.block.{}.layer.", prefix, i);
      const std::string ff_layer = p + (dec ? "2" : "1");
      add(p + "0.layer_norm.weight", b.self_norm.weight, {cfg_.d_model});
      if (dec) add(p + "1.layer_norm.weight", b.cross_norm.weight, {cfg_.d_model});
      add(ff_layer + ".layer_norm.weight", b.ff_norm.weight, {cfg_.d_model});
      if (i == 0)
        add(p + "0.SelfAttention.relative_attention_bias.weight", stack->rel.table,
            {cfg_.num_buckets, cfg_.num_heads});
    }
    add(std::string(prefix) + ".final_layer_norm.weight", stack->final_norm.weight, {cfg_.d_model});
  }
  for_each_linear(*this, [&](const Linear& l) {
    if (&l != &lm_head_ || untied_head_) add(l.name + ".weight", weight_f32(l), {l.out, l.in});
  });
  return sd;
}

std::string find_spiece_model(const std::string& dir) {
  const auto path = std::filesystem::path(dir) / "spiece.model";
  check(std::filesystem::is_regular_file(path),
        "{}: no tokenizer: spiece.model not found (T5 needs its SentencePiece model)", dir);
  return path.string();
}

}  // namespace

std::unique_ptr<Model> load_t5(const std::string& dir, const HfConfig& config,
                               const LoadOptions& options) {
  const T5Config cfg = T5Config::from_hf(config);
  auto tokenizer = SentencePieceTokenizer::load(find_spiece_model(dir));
  const StateDict weights = load_model_weights(dir);
  return std::make_unique<T5Model>(cfg, weights, options, std::move(tokenizer));
}

}  // namespace lorahub
