// Tiny random models and PEFT modules written by the engine's own writers, for the API tests (no
// Python, nothing downloaded): a 2-layer Llama with a byte-level BPE tokenizer (one token per
// byte, so any text encodes) and LoRA modules on its q/v projections.
#pragma once
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "formats/peft_adapter.h"
#include "formats/safetensors.h"
#include "formats/state_dict.h"
#include "support/random_values.h"

namespace lorahub::api_test {

constexpr int64_t kHidden = 32, kHeads = 4, kKvHeads = 2, kFfn = 48, kLayers = 2;
constexpr int64_t kVocab = 257;  // 256 bytes + <|endoftext|>
constexpr int32_t kEos = 256;

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// GPT-2's byte -> printable code point table (the ByteLevel pre-tokenizer's alphabet), as UTF-8.
inline std::vector<std::string> byte_level_alphabet() {
  std::vector<std::string> out(256);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    out[b] = s;
  }
  return out;
}

inline Tensor random_tensor(Shape shape, std::mt19937& rng, float stddev) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return Tensor::from_f32(test_support::random_values(n, rng, stddev), shape);
}

// A random Llama in `dir` (config.json, model.safetensors, tokenizer.json/_config.json).
inline std::string make_tiny_llama(const std::filesystem::path& dir, unsigned seed = 1) {
  std::filesystem::create_directories(dir);
  const int64_t head_dim = kHidden / kHeads;
  const nlohmann::json config = {
      {"model_type", "llama"},          {"architectures", {"LlamaForCausalLM"}},
      {"vocab_size", kVocab},           {"hidden_size", kHidden},
      {"intermediate_size", kFfn},      {"num_hidden_layers", kLayers},
      {"num_attention_heads", kHeads},  {"num_key_value_heads", kKvHeads},
      {"rms_norm_eps", 1e-6},           {"rope_theta", 10000.0},
      {"max_position_embeddings", 512}, {"eos_token_id", kEos},
      {"tie_word_embeddings", false},   {"hidden_act", "silu"}};
  write_text(dir / "config.json", config.dump(2));

  std::mt19937 rng(seed);
  std::vector<NamedTensor> tensors;
  auto add = [&](const std::string& name, Shape shape, float stddev) {
    tensors.push_back({name, random_tensor(std::move(shape), rng, stddev)});
  };
  add("model.embed_tokens.weight", {kVocab, kHidden}, 1.0f);
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    tensors.push_back({p + "input_layernorm.weight",
                       Tensor::from_f32(std::vector<float>(kHidden, 1.0f), {kHidden})});
    add(p + "self_attn.q_proj.weight", {kHeads * head_dim, kHidden}, 0.2f);
    add(p + "self_attn.k_proj.weight", {kKvHeads * head_dim, kHidden}, 0.2f);
    add(p + "self_attn.v_proj.weight", {kKvHeads * head_dim, kHidden}, 0.2f);
    add(p + "self_attn.o_proj.weight", {kHidden, kHeads * head_dim}, 0.2f);
    tensors.push_back({p + "post_attention_layernorm.weight",
                       Tensor::from_f32(std::vector<float>(kHidden, 1.0f), {kHidden})});
    add(p + "mlp.gate_proj.weight", {kFfn, kHidden}, 0.2f);
    add(p + "mlp.up_proj.weight", {kFfn, kHidden}, 0.2f);
    add(p + "mlp.down_proj.weight", {kHidden, kFfn}, 0.2f);
  }
  tensors.push_back(
      {"model.norm.weight", Tensor::from_f32(std::vector<float>(kHidden, 1.0f), {kHidden})});
  add("lm_head.weight", {kVocab, kHidden}, 0.5f);
  write_safetensors((dir / "model.safetensors").string(), tensors, {{"format", "pt"}});

  nlohmann::json vocab = nlohmann::json::object();
  const std::vector<std::string> alphabet = byte_level_alphabet();
  for (int b = 0; b < 256; ++b) vocab[alphabet[b]] = b;
  vocab["<|endoftext|>"] = kEos;
  const nlohmann::json tokenizer = {
      {"version", "1.0"},
      {"added_tokens", {{{"id", kEos}, {"content", "<|endoftext|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
  write_text(dir / "tokenizer.json", tokenizer.dump());
  const nlohmann::json tokenizer_config = {
      {"eos_token", "<|endoftext|>"},
      {"chat_template",
       "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
       "{% if add_generation_prompt %}<|assistant|>{% endif %}"}};
  write_text(dir / "tokenizer_config.json", tokenizer_config.dump());
  return dir.string();
}

// A PEFT LoRA module (r = 4, alpha = 8) on q_proj/v_proj with random A and B; `targets` and the
// shapes can be changed to make incompatible modules.
inline std::string make_module(const std::filesystem::path& dir, unsigned seed,
                               const std::vector<std::string>& targets = {"q_proj", "v_proj"},
                               int64_t rank = 4, float stddev = 0.5f) {
  const int64_t head_dim = kHidden / kHeads;
  AdapterConfig config;
  config.r = rank;
  config.lora_alpha = 8;
  config.target_modules = targets;
  config.task_type = "CAUSAL_LM";
  config.base_model_name_or_path = "tiny-llama";
  std::mt19937 rng(seed);
  StateDict dict((dir / "adapter_model.safetensors").string());
  for (int64_t i = 0; i < kLayers; ++i)
    for (const std::string& t : targets) {
      const int64_t out = t == "q_proj" ? kHeads * head_dim : kKvHeads * head_dim;
      const std::string key = fmt::format("base_model.model.model.layers.{}.self_attn.{}", i, t);
      dict.add(key + ".lora_A.weight", random_tensor({rank, kHidden}, rng, stddev));
      dict.add(key + ".lora_B.weight", random_tensor({out, rank}, rng, stddev));
    }
  save_peft_adapter(dir.string(), config, dict);
  return dir.string();
}

}  // namespace lorahub::api_test
