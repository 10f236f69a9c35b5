// Text <-> token ids. SentencePiece (T5) and byte-level BPE (Llama family) implement this.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lorahub {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // add_special: the special tokens the HF tokenizer adds by default (T5: EOS; Llama: BOS if any).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special = true) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const = 0;
  virtual int32_t eos_id() const = 0;
  virtual int32_t pad_id() const = 0;
  virtual int32_t bos_id() const { return -1; }  // -1 = none
  virtual int64_t vocab_size() const = 0;
  // Chat template for instruct models: wraps `user` as a user turn plus the generation prompt,
  // ready for encode() with its default special tokens. Models without a template throw Error.
  virtual std::string apply_chat_template(const std::string& user) const;
  // The chat template rendered for `messages` (a JSON array of {"role", "content"} objects),
  // as transformers' apply_chat_template(tokenize=False) does; `template_source` replaces the
  // model's template when not empty.
  virtual std::string render_chat(const nlohmann::ordered_json& messages,
                                  bool add_generation_prompt,
                                  const std::string& template_source = "") const;
};

}  // namespace lorahub
