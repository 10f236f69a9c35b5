// Byte-level BPE (GPT-2, Llama 3, SmolLM2, Qwen2) as the HF `tokenizers` library runs it:
//   1. split the text on added tokens (leftmost-longest),
//   2. pre-tokenize each remaining segment (Split with a regex, Digits, ByteLevel's GPT-2 regex),
//   3. map each piece's bytes to the byte-level alphabet and apply the BPE merges by rank,
//   4. add the post-processor's special tokens (e.g. BOS).
// Loaded from tokenizer.json (+ tokenizer_config.json / chat_template.jinja for the chat
// template) or from GGUF metadata (tokenizer.ggml.*), the latter configured the way
// transformers converts a GGUF tokenizer, so that both give the same ids.
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

namespace lorahub {

class Regex;  // PCRE2 pattern in UTF + Unicode-property mode (bpe.cpp)

// One step of the pre-tokenizer; steps run in order, each splitting every piece further.
struct PreTokenizeStep {
  enum class Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous };
  std::shared_ptr<const Regex> pattern;  // delimiters (Split, ByteLevel) or digits (Digits)
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel: prepend " " to pieces not starting with one
};

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
};

class BpeTokenizer : public Tokenizer {
 public:
  // dir/tokenizer.json, with the chat template from dir/tokenizer_config.json or
  // dir/chat_template.jinja when present. Throws Error naming the file and field.
  static std::unique_ptr<BpeTokenizer> from_hf_dir(const std::string& dir);
  static std::unique_ptr<BpeTokenizer> from_tokenizer_json(const std::string& path);
  static std::unique_ptr<BpeTokenizer> from_gguf(const GgufFile& gguf);

  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const override;
  int32_t eos_id() const override { return eos_id_; }
  int32_t pad_id() const override { return pad_id_; }
  int32_t bos_id() const override { return bos_id_; }
  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_token_.size()); }
  std::string apply_chat_template(const std::string& user) const override;

  int32_t token_id(const std::string& token) const;  // -1 when absent
  const std::string& token(int32_t id) const;

 private:
  BpeTokenizer() = default;
  void set_vocab(std::vector<std::string> tokens);
  void add_merge(const std::string& left, const std::string& right, const std::string& where);
  void set_added_tokens(std::vector<AddedToken> added);
  void set_special_ids(const std::string& bos, const std::string& eos, const std::string& pad);
  void parse_post_processor(const nlohmann::json& j, const std::string& where);

  std::vector<std::string_view> split_added(std::string_view text,
                                            std::vector<const AddedToken*>& matched) const;
  std::vector<std::string> pre_tokenize(std::string_view segment) const;
  void bpe_piece(const std::string& piece, std::vector<int32_t>& out) const;

  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int32_t> token_to_id_;
  struct Merge {
    int32_t rank, result;
  };
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> rank, merged id
  std::vector<PreTokenizeStep> steps_;
  bool ignore_merges_ = false;  // Llama 3: a piece that is a whole vocab entry is not merged
  std::vector<AddedToken> added_;
  std::vector<bool> is_special_;                  // by id
  std::vector<int32_t> prefix_ids_, suffix_ids_;  // post-processor, when add_special
  int32_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
  std::string chat_template_;
};

// The generation prompt for one user turn under a ChatML template (SmolLM2, Qwen2): the
// template's default system turn if it has one, the user turn, and "<|im_start|>assistant\n".
// Throws Error for templates of other shapes.
std::string render_chatml_user_turn(const std::string& chat_template, const std::string& user);

}  // namespace lorahub
