#include "models/decoder_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string_view>

#include "core/error.h"
#include "tokenizer/bpe.h"

namespace lorahub {

// ------------------------------------------------------------------------------ name tables

namespace {

using T = BlockTensor;

// transformers' module names and llama.cpp's (llama-arch.cpp) for each architecture's blocks.
const std::vector<BlockTensorName> kLlamaNames = {
    {T::AttnNorm, "input_layernorm", "attn_norm"},
    {T::FfnNorm, "post_attention_layernorm", "ffn_norm"},
    {T::Q, "self_attn.q_proj", "attn_q"},
    {T::K, "self_attn.k_proj", "attn_k"},
    {T::V, "self_attn.v_proj", "attn_v"},
    {T::O, "self_attn.o_proj", "attn_output"},
    {T::Gate, "mlp.gate_proj", "ffn_gate"},
    {T::Up, "mlp.up_proj", "ffn_up"},
    {T::Down, "mlp.down_proj", "ffn_down"},
};

const std::vector<BlockTensorName> kQwen3Names = {
    {T::AttnNorm, "input_layernorm", "attn_norm"},
    {T::FfnNorm, "post_attention_layernorm", "ffn_norm"},
    {T::QNorm, "self_attn.q_norm", "attn_q_norm"},
    {T::KNorm, "self_attn.k_norm", "attn_k_norm"},
    {T::Q, "self_attn.q_proj", "attn_q"},
    {T::K, "self_attn.k_proj", "attn_k"},
    {T::V, "self_attn.v_proj", "attn_v"},
    {T::O, "self_attn.o_proj", "attn_output"},
    {T::Gate, "mlp.gate_proj", "ffn_gate"},
    {T::Up, "mlp.up_proj", "ffn_up"},
    {T::Down, "mlp.down_proj", "ffn_down"},
};

const std::vector<BlockTensorName> kPhi3Names = {
    {T::AttnNorm, "input_layernorm", "attn_norm"},
    {T::FfnNorm, "post_attention_layernorm", "ffn_norm"},
    {T::Qkv, "self_attn.qkv_proj", "attn_qkv"},
    {T::O, "self_attn.o_proj", "attn_output"},
    {T::GateUp, "mlp.gate_up_proj", "ffn_up"},  // llama.cpp keeps the fused [gate | up] as ffn_up
    {T::Down, "mlp.down_proj", "ffn_down"},
};

// Gemma's post_attention_layernorm is a post-norm (llama.cpp: post_attention_norm); its pre-FFN
// norm is pre_feedforward_layernorm.
const std::vector<BlockTensorName> kGemma3Names = {
    {T::AttnNorm, "input_layernorm", "attn_norm"},
    {T::PostAttnNorm, "post_attention_layernorm", "post_attention_norm"},
    {T::FfnNorm, "pre_feedforward_layernorm", "ffn_norm"},
    {T::PostFfnNorm, "post_feedforward_layernorm", "post_ffw_norm"},
    {T::QNorm, "self_attn.q_norm", "attn_q_norm"},
    {T::KNorm, "self_attn.k_norm", "attn_k_norm"},
    {T::Q, "self_attn.q_proj", "attn_q"},
    {T::K, "self_attn.k_proj", "attn_k"},
    {T::V, "self_attn.v_proj", "attn_v"},
    {T::O, "self_attn.o_proj", "attn_output"},
    {T::Gate, "mlp.gate_proj", "ffn_gate"},
    {T::Up, "mlp.up_proj", "ffn_up"},
    {T::Down, "mlp.down_proj", "ffn_down"},
};

// The model-level tensors, the same in every architecture here.
constexpr std::pair<const char*, const char*> kGlobalNames[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

}  // namespace

const std::vector<BlockTensorName>& DecoderSpec::names() const {
  if (architecture == "qwen3") return kQwen3Names;
  if (architecture == "phi3") return kPhi3Names;
  if (architecture == "gemma3_text") return kGemma3Names;
  return kLlamaNames;
}

std::string DecoderSpec::hf_name(BlockTensor tensor) const {
  for (const auto& n : names())
    if (n.tensor == tensor) return n.hf;
  fail("{} blocks have no tensor #{}", architecture, static_cast<int>(tensor));
}

bool is_decoder_architecture(const std::string& model_type) {
  for (const char* t : {"llama", "mistral", "qwen2", "qwen3", "phi3", "gemma3_text"})
    if (model_type == t) return true;
  return false;
}

// ------------------------------------------------------------------------------ HF config.json

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
  check(j.value("partial_rotary_factor", 1.0) == 1.0,
        "{}: partial_rotary_factor is not supported (rotary over whole heads only)", source);
  return s;
}

RopeSpec rope_from_json(const nlohmann::json& params, double default_theta,
                        const std::string& source) {
  return {params.is_object() ? params.value("rope_theta", default_theta) : default_theta,
          rope_scaling_from_json(params, source)};
}

std::vector<int32_t> eos_ids_from(const HfConfig& hf) {
  if (!hf.has("eos_token_id") || hf.json().at("eos_token_id").is_null()) return {};
  const auto& v = hf.json().at("eos_token_id");
  if (v.is_array()) return v.get<std::vector<int32_t>>();
  return {static_cast<int32_t>(hf.get_int("eos_token_id"))};
}

// RoPE: transformers 5 writes rope_parameters (per layer type for Gemma 3), older configs
// rope_theta + rope_scaling (+ rope_local_base_freq for Gemma 3).
void read_rope(const HfConfig& hf, DecoderSpec& s) {
  const auto& j = hf.json();
  const nlohmann::json params = j.value("rope_parameters", nlohmann::json());
  const double theta = hf.get_double_or("rope_theta", 10000.0);
  if (params.is_object() && params.contains("full_attention")) {
    s.rope = rope_from_json(params.at("full_attention"), theta, hf.source());
    s.rope_local = rope_from_json(params.value("sliding_attention", nlohmann::json()),
                                  hf.get_double_or("rope_local_base_freq", 10000.0), hf.source());
    s.local_rope = true;
  } else if (params.is_object()) {
    s.rope = rope_from_json(params, theta, hf.source());
  } else {
    s.rope = {theta,
              rope_scaling_from_json(j.value("rope_scaling", nlohmann::json()), hf.source())};
    if (hf.has("rope_local_base_freq")) {
      s.rope_local = {hf.get_double_or("rope_local_base_freq", 10000.0), {}};
      s.local_rope = true;
    }
  }
}

// Which layers use the sliding window: layer_types where written; else Qwen's
// use_sliding_window from max_window_layers on, Gemma 3's sliding_window_pattern, or every
// layer (Mistral, Phi-3) when sliding_window is set.
void read_sliding(const HfConfig& hf, DecoderSpec& s) {
  const auto& j = hf.json();
  const auto window = j.value("sliding_window", nlohmann::json());
  s.sliding_window = window.is_number() ? window.get<int64_t>() : 0;
  s.sliding.assign(static_cast<size_t>(s.layers), false);
  const bool qwen = s.architecture == "qwen2" || s.architecture == "qwen3";
  if (qwen && !hf.get_bool_or("use_sliding_window", false)) s.sliding_window = 0;
  if (s.sliding_window <= 0) return;
  if (j.contains("layer_types") && j.at("layer_types").is_array()) {
    const auto types = j.at("layer_types").get<std::vector<std::string>>();
    check(static_cast<int64_t>(types.size()) == s.layers,
          "{}: layer_types has {} entries for {} layers", hf.source(), types.size(), s.layers);
    for (size_t i = 0; i < types.size(); ++i) {
      check(types[i] == "sliding_attention" || types[i] == "full_attention",
            "{}: layer type '{}' is not supported", hf.source(), types[i]);
      s.sliding[i] = types[i] == "sliding_attention";
    }
    return;
  }
  const int64_t pattern = hf.get_int_or("sliding_window_pattern", 0);
  const int64_t first = qwen ? hf.get_int_or("max_window_layers", 0) : 0;
  for (int64_t i = 0; i < s.layers; ++i)
    s.sliding[i] = pattern > 0 ? (i + 1) % pattern != 0 : i >= first;
}

float softcap_of(const HfConfig& hf, const char* key) {
  const auto& j = hf.json();
  return j.contains(key) && j.at(key).is_number() ? j.at(key).get<float>() : 0.0f;
}

}  // namespace

DecoderSpec DecoderSpec::from_hf(const HfConfig& hf) {
  DecoderSpec s;
  s.architecture = hf.get_string("model_type");
  check(is_decoder_architecture(s.architecture),
        "{}: model_type '{}' is not a decoder-only model this loader knows", hf.source(),
        s.architecture);
  const std::string& a = s.architecture;
  s.vocab_size = hf.get_int("vocab_size");
  s.hidden = hf.get_int("hidden_size");
  s.intermediate = hf.get_int("intermediate_size");
  s.layers = hf.get_int("num_hidden_layers");
  s.heads = hf.get_int("num_attention_heads");
  s.kv_heads = hf.get_int_or("num_key_value_heads", s.heads);
  s.head_dim = hf.get_int_or("head_dim", s.heads > 0 ? s.hidden / s.heads : 0);
  s.eps = static_cast<float>(hf.get_double_or("rms_norm_eps", 1e-6));
  read_rope(hf, s);
  read_sliding(hf, s);
  const bool attention_bias = hf.get_bool_or("attention_bias", false);
  s.qkv_bias = a == "qwen2" || attention_bias;
  s.o_bias = a != "qwen2" && attention_bias;
  s.tied_embeddings = hf.get_bool_or("tie_word_embeddings", a == "gemma3_text");
  s.eos_ids = eos_ids_from(hf);
  s.qk_norm = a == "qwen3" || a == "gemma3_text";
  s.fused_qkv = s.fused_gate_up = a == "phi3";
  s.attn_scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  if (a == "gemma3_text") {
    s.sandwich_norms = s.norm_plus_one = true;
    s.embed_scale = std::sqrt(static_cast<float>(s.hidden));
    s.attn_scale = 1.0f / std::sqrt(static_cast<float>(
                              hf.get_double_or("query_pre_attn_scalar", double(s.head_dim))));
    // attn_logit_softcapping is Gemma 2's: transformers' Gemma 3 attention (and llama.cpp's
    // gemma3 graph) ignore it, so it is not read here either.
    s.final_softcap = softcap_of(hf, "final_logit_softcapping");
    check(!hf.get_bool_or("use_bidirectional_attention", false),
          "{}: bidirectional attention is not supported", hf.source());
  }
  const std::string act =
      hf.get_string_or("hidden_act", hf.get_string_or("hidden_activation", "silu"));
  check(act == "silu" || act == "gelu_pytorch_tanh",
        "{}: hidden_act '{}' is not supported (silu and gelu_pytorch_tanh are)", hf.source(), act);
  s.act = activation_from_name(act);
  check(!hf.get_bool_or("mlp_bias", false), "{}: mlp_bias is not supported", hf.source());
  s.validate(hf.source());
  return s;
}

// ------------------------------------------------------------------------------ GGUF metadata

std::string gguf_architecture(const DecoderSpec& spec) {
  if (spec.architecture == "gemma3_text") return "gemma3";
  if (spec.architecture == "mistral") return "llama";
  return spec.architecture;
}

std::string architecture_from_gguf(const std::string& arch, const std::string& source) {
  check(arch == "llama" || arch == "qwen2" || arch == "qwen3" || arch == "phi3" || arch == "gemma3",
        "{}: general.architecture '{}' is not supported (llama, qwen2, qwen3, phi3 and gemma3 are)",
        source, arch);
  return arch == "gemma3" ? "gemma3_text" : arch;
}

// What llama.cpp's llama_vocab_is_eog stops at: the eos, eot, eom and FIM pad/rep/sep ids the
// file names, and every token spelled like an end of turn (<end_of_turn> for Gemma's chat,
// <|im_end|>, <|eot_id|>, ...), whatever its type. eos comes first: it ends training labels.
// A file without an eos id gets none (models/llama.cpp falls back on the tokenizer's).
std::vector<int32_t> end_of_generation_ids(const GgufFile& g) {
  std::vector<int32_t> ids;
  // Without an eos id the tokenizer's own end token stands in (models/llama.cpp), first.
  if (g.get_int("tokenizer.ggml.eos_token_id", -1) < 0) return ids;
  const auto add = [&](int64_t id) {
    if (id >= 0 && id < (int64_t{1} << 31) &&
        std::find(ids.begin(), ids.end(), static_cast<int32_t>(id)) == ids.end())
      ids.push_back(static_cast<int32_t>(id));
  };
  for (const char* key : {"eos", "eot", "eom", "fim_pad", "fim_rep", "fim_sep"})
    add(g.get_int(fmt::format("tokenizer.ggml.{}_token_id", key), -1));
  const std::vector<std::string> tokens = g.get_strings("tokenizer.ggml.tokens");
  for (size_t id = 0; id < tokens.size(); ++id)
    if (llama_cpp_ends_generation(tokens[id])) add(static_cast<int64_t>(id));
  return ids;
}

DecoderSpec DecoderSpec::from_gguf(const GgufFile& g) {
  DecoderSpec s;
  const std::string arch = g.get_string("general.architecture");
  s.architecture = architecture_from_gguf(arch, g.path());
  const std::string a = arch + ".";
  s.layers = g.get_int(a + "block_count");
  s.hidden = g.get_int(a + "embedding_length");
  s.intermediate = g.get_int(a + "feed_forward_length");
  s.heads = g.get_int(a + "attention.head_count");
  s.kv_heads = g.get_int(a + "attention.head_count_kv", s.heads);
  s.head_dim = g.get_int(a + "attention.key_length", s.heads > 0 ? s.hidden / s.heads : 0);
  const int64_t rotary = g.get_int(a + "rope.dimension_count", s.head_dim);
  check(rotary == s.head_dim,
        "{}: rope.dimension_count {} is not the head size {} (partial "
        "rotary embeddings are not supported)",
        g.path(), rotary, s.head_dim);
  s.rope.theta = g.get_float(a + "rope.freq_base", 10000.0);
  s.eps = static_cast<float>(g.get_float(a + "attention.layer_norm_rms_epsilon", 1e-6));
  if (const auto type = g.get_string(a + "rope.scaling.type", nullptr); type && *type != "none") {
    s.rope.scaling.type = *type;
    s.rope.scaling.factor = g.get_float(a + "rope.scaling.factor", 1.0);
    check(*type == "linear", "{}: rope scaling '{}' in GGUF is not supported (linear is)", g.path(),
          *type);
  }
  const auto* embd = g.find_tensor("token_embd.weight");
  check(embd != nullptr, "{}: tensor 'token_embd.weight' is missing", g.path());
  s.vocab_size = g.get_int(a + "vocab_size", embd->ne.back());
  s.qkv_bias = g.find_tensor("blk.0.attn_q.bias") || g.find_tensor("blk.0.attn_qkv.bias");
  s.o_bias = g.find_tensor("blk.0.attn_output.bias") != nullptr;
  s.tied_embeddings = g.find_tensor("output.weight") == nullptr;
  s.qk_norm = arch == "qwen3" || arch == "gemma3";
  s.fused_qkv = s.fused_gate_up = arch == "phi3";
  s.attn_scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  s.sliding.assign(static_cast<size_t>(s.layers), false);
  if (arch == "gemma3") {
    // What llama.cpp's gemma3 graph fixes rather than stores: (1 + w) norms folded in by the
    // converter, sqrt(hidden) embedding scale, GELU, every 6th layer global, local RoPE base
    // 10000, and the attention scale of gemma_pytorch (hidden/heads for the 27B, 62 layers).
    s.sandwich_norms = s.norm_plus_one = true;
    s.embed_scale = std::sqrt(static_cast<float>(s.hidden));
    s.act = Activation::GeluNew;
    s.sliding_window = g.get_int(a + "attention.sliding_window", 0);
    for (int64_t i = 0; i < s.layers && s.sliding_window > 0; ++i) s.sliding[i] = i % 6 < 5;
    s.local_rope = true;
    s.rope_local = {10000.0, {}};
    if (s.layers == 62) s.attn_scale = 1.0f / std::sqrt(static_cast<float>(s.hidden / s.heads));
    s.final_softcap = static_cast<float>(g.get_float(a + "final_logit_softcapping", 0.0));
  }
  s.eos_ids = end_of_generation_ids(g);
  s.validate(g.path());
  return s;
}

void DecoderSpec::validate(const std::string& source) const {
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
  check(sliding_window >= 0, "{}: sliding_window {} is negative", source, sliding_window);
}

// ------------------------------------------------------------------------------ GGUF weights

std::string hf_name_for_gguf(const std::string& gguf_name, const DecoderSpec& spec,
                             const std::string& path) {
  for (auto [from, to] : kGlobalNames)
    if (gguf_name == from) return to;
  // blk.<n>.<name>.<weight|bias>
  if (gguf_name.starts_with("blk.")) {
    const auto dot1 = gguf_name.find('.', 4);
    const auto dot2 = gguf_name.rfind('.');
    if (dot1 != std::string::npos && dot2 > dot1) {
      const std::string layer = gguf_name.substr(4, dot1 - 4);
      const std::string name = gguf_name.substr(dot1 + 1, dot2 - dot1 - 1);
      for (const auto& n : spec.names())
        if (name == n.gguf) return "model.layers." + layer + "." + n.hf + gguf_name.substr(dot2);
    }
  }
  fail("{}: tensor '{}' has no meaning in a {} model", path, gguf_name, spec.architecture);
}

std::string gguf_name_for_hf(const std::string& hf_name, const DecoderSpec& spec,
                             const std::string& source) {
  for (auto [to, from] : kGlobalNames)
    if (hf_name == from) return to;
  // model.layers.<n>.<module>.<weight|bias>
  const std::string prefix = "model.layers.";
  if (hf_name.starts_with(prefix)) {
    const auto dot1 = hf_name.find('.', prefix.size());
    const auto dot2 = hf_name.rfind('.');
    if (dot1 != std::string::npos && dot2 > dot1) {
      const std::string layer = hf_name.substr(prefix.size(), dot1 - prefix.size());
      const std::string module = hf_name.substr(dot1 + 1, dot2 - dot1 - 1);
      for (const auto& n : spec.names())
        if (module == n.hf) return "blk." + layer + "." + n.gguf + hf_name.substr(dot2);
    }
  }
  fail("{}: tensor '{}' has no llama.cpp name in a {} model", source, hf_name, spec.architecture);
}

}  // namespace lorahub
