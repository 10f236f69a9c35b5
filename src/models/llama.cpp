#include "models/llama.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "core/error.h"
#include "core/half.h"
#include "kernels/dequant.h"
#include "models/batch.h"
#include "models/blocks.h"
#include "models/weights.h"
#include "tokenizer/bpe.h"

namespace lorahub {

// ------------------------------------------------------------------------------ configuration

bool is_llama_family(const std::string& model_type) {
  return model_type == "llama" || model_type == "mistral" || model_type == "qwen2";
}

namespace {

RopeScaling rope_scaling_from_json(const nlohmann::json& j, const std::string& source) {
  RopeScaling s;
  if (!j.is_object()) return s;
  s.type = j.value("rope_type", j.value("type", std::string()));
  if (s.type == "default") s.type.clear();
  s.factor = j.value("factor", 1.0);
  s.low_freq_factor = j.value("low_freq_factor", 1.0);
  s.high_freq_factor = j.value("high_freq_factor", 4.0);
  s.original_max_position = j.value("original_max_position_embeddings", int64_t{8192});
  check(s.type.empty() || s.type == "linear" || s.type == "llama3",
        "{}: rope type '{}' is not supported (default, linear and llama3 are)", source, s.type);
  return s;
}

std::vector<int32_t> eos_ids_from(const HfConfig& hf) {
  if (!hf.has("eos_token_id")) return {};
  const auto& v = hf.json().at("eos_token_id");
  if (v.is_array()) return v.get<std::vector<int32_t>>();
  return {static_cast<int32_t>(hf.get_int("eos_token_id"))};
}

}  // namespace

LlamaConfig LlamaConfig::from_hf(const HfConfig& hf) {
  LlamaConfig c;
  c.architecture = hf.get_string("model_type");
  check(is_llama_family(c.architecture), "{}: model_type '{}' is not a Llama-family model",
        hf.source(), c.architecture);
  c.vocab_size = hf.get_int("vocab_size");
  c.hidden = hf.get_int("hidden_size");
  c.intermediate = hf.get_int("intermediate_size");
  c.layers = hf.get_int("num_hidden_layers");
  c.heads = hf.get_int("num_attention_heads");
  c.kv_heads = hf.get_int_or("num_key_value_heads", c.heads);
  c.head_dim = hf.get_int_or("head_dim", c.heads > 0 ? c.hidden / c.heads : 0);
  c.eps = static_cast<float>(hf.get_double_or("rms_norm_eps", 1e-6));
  // transformers 5 writes rope_parameters; older configs rope_theta + rope_scaling.
  const auto& j = hf.json();
  const auto params = j.contains("rope_parameters") ? j.at("rope_parameters") : nlohmann::json();
  c.rope_theta = params.is_object() ? params.value("rope_theta", 10000.0)
                                    : hf.get_double_or("rope_theta", 10000.0);
  c.rope_scaling = rope_scaling_from_json(
      params.is_object() ? params : j.value("rope_scaling", nlohmann::json()), hf.source());
  c.qkv_bias = c.architecture == "qwen2" || hf.get_bool_or("attention_bias", false);
  c.tied_embeddings = hf.get_bool_or("tie_word_embeddings", false);
  c.eos_ids = eos_ids_from(hf);
  const std::string act = hf.get_string_or("hidden_act", "silu");
  check(act == "silu", "{}: hidden_act '{}' is not supported (Llama-family uses silu)", hf.source(),
        act);
  check(!hf.get_bool_or("mlp_bias", false), "{}: mlp_bias is not supported", hf.source());
  check(!hf.get_bool_or("use_sliding_window", false),
        "{}: sliding-window attention is not supported", hf.source());
  c.validate(hf.source());
  return c;
}

LlamaConfig LlamaConfig::from_gguf(const GgufFile& g) {
  LlamaConfig c;
  c.architecture = g.get_string("general.architecture");
  check(c.architecture == "llama" || c.architecture == "qwen2",
        "{}: general.architecture '{}' is not supported (llama and qwen2 are)", g.path(),
        c.architecture);
  const std::string a = c.architecture + ".";
  c.layers = g.get_int(a + "block_count");
  c.hidden = g.get_int(a + "embedding_length");
  c.intermediate = g.get_int(a + "feed_forward_length");
  c.heads = g.get_int(a + "attention.head_count");
  c.kv_heads = g.get_int(a + "attention.head_count_kv", c.heads);
  c.head_dim = g.get_int(a + "rope.dimension_count", c.heads > 0 ? c.hidden / c.heads : 0);
  c.rope_theta = g.get_float(a + "rope.freq_base", 10000.0);
  c.eps = static_cast<float>(g.get_float(a + "attention.layer_norm_rms_epsilon", 1e-6));
  if (const auto type = g.get_string(a + "rope.scaling.type", nullptr); type && *type != "none") {
    c.rope_scaling.type = *type;
    c.rope_scaling.factor = g.get_float(a + "rope.scaling.factor", 1.0);
    check(*type == "linear", "{}: rope scaling '{}' in GGUF is not supported (linear is)", g.path(),
          *type);
  }
  const auto* embd = g.find_tensor("token_embd.weight");
  check(embd != nullptr, "{}: tensor 'token_embd.weight' is missing", g.path());
  c.vocab_size = g.get_int(a + "vocab_size", embd->ne.back());
  c.qkv_bias = g.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.tied_embeddings = g.find_tensor("output.weight") == nullptr;
  if (const int64_t eos = g.get_int("tokenizer.ggml.eos_token_id", -1); eos >= 0)
    c.eos_ids = {static_cast<int32_t>(eos)};
  c.validate(g.path());
  return c;
}

void LlamaConfig::validate(const std::string& source) const {
  for (auto [name, value] : {std::pair<const char*, int64_t>{"vocab_size", vocab_size},
                             {"hidden_size", hidden},
                             {"intermediate_size", intermediate},
                             {"num_hidden_layers", layers},
                             {"num_attention_heads", heads},
                             {"num_key_value_heads", kv_heads},
                             {"head_dim", head_dim}})
    check(value > 0 && value < (int64_t{1} << 31), "{}: {} must be positive, got {}", source, name,
          value);
  check(heads % kv_heads == 0, "{}: {} attention heads are not a multiple of {} key/value heads",
        source, heads, kv_heads);
  check(head_dim % 2 == 0, "{}: head_dim {} must be even for rotary embeddings", source, head_dim);
}

// ------------------------------------------------------------------------------ GGUF weights

namespace {

// llama.cpp tensor names -> transformers module names (one table, as llama-arch.cpp has).
constexpr std::pair<const char*, const char*> kGgufBlockNames[] = {
    {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"},
    {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

std::string hf_name_for(const std::string& gguf_name, const std::string& path) {
  if (gguf_name == "token_embd.weight") return "model.embed_tokens.weight";
  if (gguf_name == "output_norm.weight") return "model.norm.weight";
  if (gguf_name == "output.weight") return "lm_head.weight";
  // blk.<n>.<name>.<weight|bias>
  if (gguf_name.starts_with("blk.")) {
    const auto dot1 = gguf_name.find('.', 4);
    const auto dot2 = gguf_name.rfind('.');
    if (dot1 != std::string::npos && dot2 > dot1) {
      const std::string layer = gguf_name.substr(4, dot1 - 4);
      const std::string name = gguf_name.substr(dot1 + 1, dot2 - dot1 - 1);
      for (auto [from, to] : kGgufBlockNames)
        if (name == from) return "model.layers." + layer + "." + to + gguf_name.substr(dot2);
    }
  }
  fail("{}: tensor '{}' has no Llama-family meaning", path, gguf_name);
}

std::vector<float> dequantized(const GgufFile& g, const GgufTensorInfo& t) {
  const auto bytes = g.tensor_bytes(t);
  std::vector<float> out(static_cast<size_t>(t.numel()));
  const auto* u16 = reinterpret_cast<const uint16_t*>(bytes.data());
  switch (t.type) {
    case GgmlType::F32:
      std::memcpy(out.data(), bytes.data(), out.size() * 4);
      break;
    case GgmlType::F16:
      f16_to_f32(u16, out.data(), out.size());
      break;
    case GgmlType::BF16:
      bf16_to_f32(u16, out.data(), out.size());
      break;
    case GgmlType::Q4_0:
      dequantize(BlockFormat::Q4_0, bytes.data(), out.data(), t.numel());
      break;
    case GgmlType::Q4_1:
      dequantize(BlockFormat::Q4_1, bytes.data(), out.data(), t.numel());
      break;
    case GgmlType::Q8_0:
      dequantize(BlockFormat::Q8_0, bytes.data(), out.data(), t.numel());
      break;
  }
  return out;
}

// llama.cpp's converter reorders the rows of each head of q_proj/k_proj from transformers'
// rotate_half layout [first halves | second halves] to interleaved pairs (convert_hf_to_gguf's
// permute). Undo it: GGUF row h·d + 2i + j  ->  HF row h·d + j·d/2 + i.
std::vector<float> unpermute_rows(const std::vector<float>& w, int64_t n_head, int64_t cols) {
  const int64_t rows = static_cast<int64_t>(w.size()) / cols, d = rows / n_head;
  std::vector<float> out(w.size());
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < d / 2; ++i)
      for (int64_t j = 0; j < 2; ++j)
        std::memcpy(&out[(h * d + j * d / 2 + i) * cols], &w[(h * d + 2 * i + j) * cols],
                    cols * sizeof(float));
  return out;
}

}  // namespace

StateDict gguf_to_hf_state_dict(const GgufFile& g, const LlamaConfig& c) {
  StateDict sd(g.path());
  const bool permuted = c.architecture == "llama";  // the converter permutes only Llama
  for (const auto& t : g.tensors()) {
    if (t.name == "rope_freqs.weight") continue;  // llama3 factors, recomputed from the config
    const std::string name = hf_name_for(t.name, g.path());
    std::vector<float> w = dequantized(g, t);
    if (permuted && name.ends_with("q_proj.weight"))
      w = unpermute_rows(w, c.heads, t.ne[0]);
    else if (permuted && name.ends_with("k_proj.weight"))
      w = unpermute_rows(w, c.kv_heads, t.ne[0]);
    // (biases are permuted too, but Llama has none; Qwen2 is not permuted.)
    sd.add(name, Tensor::from_f32(std::move(w), t.shape()));
  }
  return sd;
}

// ------------------------------------------------------------------------------ the model

namespace {

struct LlamaBlock {
  NormLayer attn_norm, ffn_norm;
  AttentionLayer attn;
  FeedForward ffn;
};

class LlamaModel : public Model {
 public:
  LlamaModel(const LlamaConfig& config, const StateDict& weights, bool bf16,
             std::unique_ptr<BpeTokenizer> tokenizer)
      : cfg_(config), tokenizer_(std::move(tokenizer)), bf16_(bf16) {
    inv_freq_ = rope_inv_freq(cfg_.head_dim, cfg_.rope_theta, cfg_.rope_scaling);
    WeightReader r(weights, bf16);
    embed_.rows = cfg_.vocab_size;
    embed_.dim = cfg_.hidden;
    embed_.f32 = r.matrix("model.embed_tokens.weight", cfg_.vocab_size, cfg_.hidden);
    // The vocabulary-sized tensors first (their f32 copies are the largest transients of
    // loading). transformers ties lm_head to the embedding when configured so, or when the file
    // has none.
    const bool tied = cfg_.tied_embeddings || !weights.contains("lm_head.weight");
    lm_head_ = tied ? Linear{"lm_head", cfg_.hidden, cfg_.vocab_size, embed_.f32, {}, nullptr, {}}
                    : r.linear("lm_head", cfg_.hidden, cfg_.vocab_size);
    if (bf16) {
      convert_to_bf16(lm_head_);
      embed_.convert_to_bf16();
    }
    tied_head_ = tied;
    for (int64_t i = 0; i < cfg_.layers; ++i) blocks_.push_back(load_block(r, i));
    final_norm_ = r.norm("model.norm", cfg_.hidden, cfg_.eps);
    if (cfg_.eos_ids.empty()) cfg_.eos_ids = {tokenizer_->eos_id()};
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

  std::vector<ExampleLoss> score(const std::vector<Example>& batch) override {
    std::vector<ExampleLoss> losses;
    const auto logits = label_logits(batch);
    for (size_t b = 0; b < batch.size(); ++b)
      losses.push_back(cross_entropy(logits[b].f32(), batch[b].label_ids, cfg_.vocab_size));
    return losses;
  }

  std::vector<Tensor> label_logits(const std::vector<Example>& batch) override;
  std::vector<std::vector<float>> mean_hidden_states(
      const std::vector<std::vector<int32_t>>& inputs) override;
  std::unique_ptr<DecodeState> prefill(const std::vector<std::vector<int32_t>>& prompts,
                                       int max_new_tokens) override;
  void decode_step(DecodeState& state, const std::vector<int32_t>& tokens) override;
  int64_t vocab_size() const override { return cfg_.vocab_size; }
  std::vector<int32_t> end_of_sequence_ids() const override { return cfg_.eos_ids; }

  void set_lora(const LoraMap* lora) override {
    if (lora) check_lora_targets(*lora, linear_layers(), cfg_.architecture);
    for_each_linear([&](Linear& l) { attach_lora(l, lora); });
  }
  void merge_lora(const LoraMap& lora) override {
    check_lora_targets(lora, linear_layers(), cfg_.architecture);
    for_each_linear([&](Linear& l) { merge_lora_into(l, lora); });
  }
  std::vector<LinearInfo> linear_layers() const override {
    std::vector<LinearInfo> out;
    const_cast<LlamaModel*>(this)->for_each_linear([&](Linear& l) {
      out.push_back({l.name, l.in, l.out});
    });
    return out;
  }
  std::vector<std::pair<std::string, Tensor>> state_dict() const override;

 private:
  LlamaBlock load_block(const WeightReader& r, int64_t i) const {
    const std::string p = fmt::format("model.layers.{}.", i);
    LlamaBlock b;
    b.attn_norm = r.norm(p + "input_layernorm", cfg_.hidden, cfg_.eps);
    b.ffn_norm = r.norm(p + "post_attention_layernorm", cfg_.hidden, cfg_.eps);
    const int64_t q_dim = cfg_.heads * cfg_.head_dim, kv_dim = cfg_.kv_heads * cfg_.head_dim;
    b.attn.q = r.linear(p + "self_attn.q_proj", cfg_.hidden, q_dim, cfg_.qkv_bias);
    b.attn.k = r.linear(p + "self_attn.k_proj", cfg_.hidden, kv_dim, cfg_.qkv_bias);
    b.attn.v = r.linear(p + "self_attn.v_proj", cfg_.hidden, kv_dim, cfg_.qkv_bias);
    b.attn.o = r.linear(p + "self_attn.o_proj", q_dim, cfg_.hidden);
    b.attn.n_heads = cfg_.heads;
    b.attn.n_kv_heads = cfg_.kv_heads;
    b.attn.head_dim = cfg_.head_dim;
    b.attn.score_scale = 1.0f / std::sqrt(static_cast<float>(cfg_.head_dim));
    b.attn.rotary = [this](float* x, const RaggedBatch& rows, int64_t heads, int64_t head_dim,
                           int64_t pos0) {
      const std::vector<int64_t> positions = token_positions(rows, pos0);
      apply_rope(x, rows.rows, heads, head_dim, positions.data(), inv_freq_);
    };
    b.ffn.gated = true;
    b.ffn.act = Activation::Silu;
    b.ffn.gate = r.linear(p + "mlp.gate_proj", cfg_.hidden, cfg_.intermediate);
    b.ffn.up = r.linear(p + "mlp.up_proj", cfg_.hidden, cfg_.intermediate);
    b.ffn.down = r.linear(p + "mlp.down_proj", cfg_.intermediate, cfg_.hidden);
    return b;
  }

  template <typename F>
  void for_each_linear(F f) {
    for (LlamaBlock& b : blocks_) {
      for (Linear* l :
           {&b.attn.q, &b.attn.k, &b.attn.v, &b.attn.o, &b.ffn.gate, &b.ffn.up, &b.ffn.down})
        f(*l);
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
  // Runs the decoder over the packed rows x[rows.rows, hidden] appended to the caches.
  void forward(float* x, const RaggedBatch& rows, std::vector<KvCache>& caches,
               const uint8_t* key_valid) const;
  // Final norm + LM head for the given hidden rows.
  std::vector<float> logits(const float* hidden, int64_t rows) const;
  std::vector<float> embed(const std::vector<int32_t>& ids) const { return embed_.lookup(ids); }

  LlamaConfig cfg_;
  std::unique_ptr<BpeTokenizer> tokenizer_;
  std::vector<float> inv_freq_;
  Embedding embed_;  // [vocab, hidden]
  std::vector<LlamaBlock> blocks_;
  NormLayer final_norm_;
  Linear lm_head_;
  bool tied_head_ = false;
  bool bf16_ = false;  // the fast path (LoadOptions::bf16): bf16 weights and generation caches
};

// A batch being decoded: its caches, which slots are real, and the rows of one step.
struct LlamaDecodeState : DecodeState {
  std::vector<KvCache> caches;
  std::vector<uint8_t> valid;  // [batch, capacity]: 0 for left padding
  RaggedBatch step_rows;       // one new token per sequence
};

void LlamaModel::forward(float* x, const RaggedBatch& rows, std::vector<KvCache>& caches,
                         const uint8_t* key_valid) const {
  const int64_t d = cfg_.hidden;
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const LlamaBlock& block = blocks_[l];
    KvCache& cache = caches[l];
    residual(block.attn_norm, x, rows.rows, d, [&](const float* h, float* out) {
      const int64_t q_pos0 = cache.length;
      append_kv(block.attn, h, rows, cache);
      AttentionMask mask{.key_valid = key_valid, .causal = true, .q_pos0 = q_pos0};
      attention_forward(block.attn, h, rows, cache, mask, out);
    });
    residual(block.ffn_norm, x, rows.rows, d,
             [&](const float* h, float* out) { feed_forward(block.ffn, h, rows.rows, out); });
  }
}

std::vector<float> LlamaModel::logits(const float* hidden, int64_t rows) const {
  std::vector<float> h(static_cast<size_t>(rows * cfg_.hidden));
  norm_forward(final_norm_, hidden, rows, h.data());
  std::vector<float> z(static_cast<size_t>(rows * cfg_.vocab_size));
  linear_forward(lm_head_, h.data(), rows, z.data());
  return z;
}

std::vector<Tensor> LlamaModel::label_logits(const std::vector<Example>& batch) {
  std::vector<Tensor> out;
  if (batch.empty()) return out;
  std::vector<std::vector<int32_t>> seqs;
  for (const Example& e : batch) {
    check(!e.input_ids.empty() && !e.label_ids.empty(),
          "decoder-only example needs input and label tokens");
    seqs.push_back(e.input_ids);
    seqs.back().insert(seqs.back().end(), e.label_ids.begin(), e.label_ids.end());
  }
  const PaddedBatch p = pad_batch(seqs, std::max(tokenizer_->pad_id(), 0), /*left=*/false);
  const RaggedBatch rows_of = RaggedBatch::of(p);
  std::vector<float> x = embed(packed_ids(p));
  std::vector<KvCache> caches(blocks_.size());
  for (auto& c : caches) c.reset(p.batch, p.len, cfg_.kv_heads * cfg_.head_dim);
  forward(x.data(), rows_of, caches, p.valid.data());
  // The logits at position t predict token t + 1: gather the rows before each label token and
  // run the LM head on those alone (the vocabulary is large; the other rows are not needed).
  const int64_t d = cfg_.hidden;
  std::vector<float> rows;
  for (size_t b = 0; b < batch.size(); ++b) {
    const int64_t first = static_cast<int64_t>(batch[b].input_ids.size()) - 1;
    const int64_t n = static_cast<int64_t>(batch[b].label_ids.size());
    const auto from = x.begin() + (rows_of.row0[b] + first) * d;
    rows.insert(rows.end(), from, from + n * d);
  }
  const std::vector<float> z = logits(rows.data(), static_cast<int64_t>(rows.size()) / d);
  size_t row = 0;
  for (const Example& e : batch) {
    const int64_t n = static_cast<int64_t>(e.label_ids.size());
    const auto from = z.begin() + row * cfg_.vocab_size;
    out.push_back(Tensor::from_f32({from, from + n * cfg_.vocab_size}, {n, cfg_.vocab_size}));
    row += n;
  }
  return out;
}

std::vector<std::vector<float>> LlamaModel::mean_hidden_states(
    const std::vector<std::vector<int32_t>>& inputs) {
  if (inputs.empty()) return {};
  for (const auto& ids : inputs) check(!ids.empty(), "mean_hidden_states: an input has no tokens");
  const PaddedBatch p = pad_batch(inputs, std::max(tokenizer_->pad_id(), 0), /*left=*/false);
  const RaggedBatch rows_of = RaggedBatch::of(p);
  std::vector<float> x = embed(packed_ids(p));
  std::vector<KvCache> caches(blocks_.size());
  for (auto& c : caches) c.reset(p.batch, p.len, cfg_.kv_heads * cfg_.head_dim);
  forward(x.data(), rows_of, caches, p.valid.data());
  std::vector<float> h(x.size());
  norm_forward(final_norm_, x.data(), rows_of.rows, h.data());
  return mean_rows(h, rows_of, cfg_.hidden);
}

std::unique_ptr<DecodeState> LlamaModel::prefill(const std::vector<std::vector<int32_t>>& inputs,
                                                 int max_new_tokens) {
  auto state = std::make_unique<LlamaDecodeState>();
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& ids : inputs) {
    check(!ids.empty(), "generate: empty input");
    const size_t keep = std::min(ids.size(), kMaxInputTokens);
    prompts.emplace_back(ids.end() - keep, ids.end());
  }
  const PaddedBatch p = pad_batch(prompts, std::max(tokenizer_->pad_id(), 0), /*left=*/true);
  state->batch = p.batch;
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
  forward(x.data(), prompt_rows, state->caches, state->valid.data());
  std::vector<float> last(static_cast<size_t>(p.batch * cfg_.hidden));
  for (int64_t b = 0; b < p.batch; ++b)
    std::copy_n(x.begin() + (prompt_rows.row0[b] + prompt_rows.count[b] - 1) * cfg_.hidden,
                cfg_.hidden, last.begin() + b * cfg_.hidden);
  state->logits = logits(last.data(), p.batch);
  return state;
}

void LlamaModel::decode_step(DecodeState& base, const std::vector<int32_t>& tokens) {
  auto& state = dynamic_cast<LlamaDecodeState&>(base);
  check(static_cast<int64_t>(tokens.size()) == state.batch,
        "decode step: {} tokens for {} sequences", tokens.size(), state.batch);
  check(state.caches.empty() || state.caches[0].length < state.caches[0].capacity,
        "decode step: the KV cache is full (prefill was given fewer new tokens)");
  std::vector<float> x = embed(tokens);
  forward(x.data(), state.step_rows, state.caches, state.valid.data());
  state.logits = logits(x.data(), state.batch);
}

std::vector<std::pair<std::string, Tensor>> LlamaModel::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> sd;
  auto add = [&](const std::string& name, const std::vector<float>& v, Shape shape) {
    sd.emplace_back(name, Tensor::from_f32(v, std::move(shape)));
  };
  add("model.embed_tokens.weight", embed_.values(), {cfg_.vocab_size, cfg_.hidden});
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    add(p + "input_layernorm.weight", blocks_[i].attn_norm.weight, {cfg_.hidden});
    add(p + "post_attention_layernorm.weight", blocks_[i].ffn_norm.weight, {cfg_.hidden});
  }
  add("model.norm.weight", final_norm_.weight, {cfg_.hidden});
  const_cast<LlamaModel*>(this)->for_each_linear([&](Linear& l) {
    if (&l == &lm_head_ && tied_head_) return;
    add(l.name + ".weight", weight_f32(l), {l.out, l.in});
    if (!l.bias.empty()) add(l.name + ".bias", l.bias, {l.out});
  });
  return sd;
}

}  // namespace

std::unique_ptr<Model> load_llama(const std::string& dir, const HfConfig& config,
                                  const LoadOptions& options) {
  const LlamaConfig cfg = LlamaConfig::from_hf(config);
  check(std::filesystem::is_regular_file(std::filesystem::path(dir) / "tokenizer.json"),
        "{}: no tokenizer: tokenizer.json not found (Llama-family models need it)", dir);
  auto tokenizer = BpeTokenizer::from_hf_dir(dir);
  const StateDict weights = load_model_weights(dir);
  return std::make_unique<LlamaModel>(cfg, weights, options.bf16, std::move(tokenizer));
}

std::unique_ptr<Model> load_llama_gguf(const std::string& path, const LoadOptions& options) {
  const GgufFile gguf = GgufFile::open(path);
  const LlamaConfig cfg = LlamaConfig::from_gguf(gguf);
  auto tokenizer = BpeTokenizer::from_gguf(gguf);
  const StateDict weights = gguf_to_hf_state_dict(gguf, cfg);
  return std::make_unique<LlamaModel>(cfg, weights, options.bf16, std::move(tokenizer));
}

}  // namespace lorahub
