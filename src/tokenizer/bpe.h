// BPE tokenizers as the HF `tokenizers` library and llama.cpp run them:
//   1. split the text on added tokens (leftmost-longest),
//   2. normalize each remaining segment (NFC, Replace, Prepend, ... see normalizer.h),
//   3. pre-tokenize it (Split with a regex, Digits, ByteLevel, Metaspace),
//   4. merge each piece's symbols: by merge rank (HF BPE, GGUF 'gpt2') or by piece score
//      (SentencePiece vocabularies in GGUF, tokenizer.ggml.model = 'llama', as llama.cpp's SPM
//      tokenizer does); byte-level pieces map bytes to GPT-2's alphabet first, others fall back
//      to <0xNN> byte tokens for characters outside the vocab,
//   5. add the post-processor's special tokens (e.g. BOS).
// Loaded from tokenizer.json (+ tokenizer_config.json / chat_template.jinja for the chat
// template) or from GGUF metadata (tokenizer.ggml.*), the latter configured as llama.cpp reads
// it (tokenizer.ggml.pre names the pre-tokenizer regexes), so that both give llama.cpp's ids.
#pragma once
#include <nlohmann/json.hpp>

#include <array>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "formats/gguf.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/tokenizer.h"

namespace lorahub {

class Regex;

// One step of the pre-tokenizer; steps run in order, each splitting every piece further.
struct PreTokenizeStep {
  enum class Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous };
  enum class Prepend { Never, First, Always };  // Metaspace's prepend_scheme
  std::shared_ptr<const Regex> pattern;         // delimiters (Split, ByteLevel) or digits
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel: prepend " " to pieces not starting with one
  std::string metaspace;          // Metaspace: the replacement for ' ' (e.g. "▁"); "" = not one
  Prepend prepend = Prepend::Never;
};

// Whether llama.cpp ends generation at a token spelled `piece` (llama-vocab.cpp's list of end of
// turn texts, as of the llama-cpp-python the tests run), whatever its type in the file. llama.cpp
// also makes such a token a control token, so it is matched in the text as a special token.
bool llama_cpp_ends_generation(std::string_view piece);

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
  // tokenizer.ggml.model 'gpt2' (byte-level BPE) or 'llama' (SentencePiece scores).
  static std::unique_ptr<BpeTokenizer> from_gguf(const GgufFile& gguf);

  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const override;
  int32_t eos_id() const override { return eos_id_; }
  int32_t pad_id() const override { return pad_id_; }
  int32_t bos_id() const override { return bos_id_; }
  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_token_.size()); }
  std::string apply_chat_template(const std::string& user) const override;
  std::string render_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                          const std::string& template_source = "") const override;
  const std::string& chat_template() const { return chat_template_; }

  int32_t token_id(const std::string& token) const;  // -1 when absent
  const std::string& token(int32_t id) const;

 private:
  BpeTokenizer() = default;
  void set_vocab(std::vector<std::string> tokens);
  void add_merge(const std::string& left, const std::string& right, const std::string& where);
  void set_added_tokens(std::vector<AddedToken> added);
  void set_special_ids(const std::string& bos, const std::string& eos, const std::string& pad);
  void parse_post_processor(const nlohmann::json& j, const std::string& where);
  void parse_decoder(const nlohmann::json& j);
  void find_byte_tokens();
  void gguf_byte_level(const GgufFile& g, const std::string& where);
  void gguf_sentencepiece(const GgufFile& g, const std::string& where);

  std::vector<std::string_view> split_added(std::string_view text,
                                            std::vector<const AddedToken*>& matched) const;
  std::vector<std::string> pre_tokenize(std::string_view segment, bool first_section) const;
  void merge_piece(const std::string& piece, std::vector<int32_t>& out) const;
  void push_bytes(std::string_view text, std::vector<int32_t>& out) const;

  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int32_t> token_to_id_;
  struct Merge {
    int32_t rank, result;
  };
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> rank, merged id
  std::vector<float> scores_;                   // by id; non-empty = merge by score (SPM)
  Normalizer normalizer_;
  std::vector<PreTokenizeStep> steps_;
  bool byte_level_ = true;            // pieces are mapped to GPT-2's byte alphabet before merging
  bool byte_fallback_ = false;        // characters outside the vocab become <0xNN> tokens
  bool fuse_unk_ = false;             // consecutive unknown characters give one unk token
  bool ignore_merges_ = false;        // Llama 3: a piece that is a whole vocab entry is not merged
  bool space_prefix_ = false;         // llama.cpp SPM: " " before every text segment
  bool strip_leading_space_ = false;  // decoding: drop the space the prefix added
  bool metaspace_first_token_ = false;     // decoding: drop every "▁" of the first token
  bool bos_after_space_kept_ = false;      // decoding: no strip after a leading BOS (llama.cpp)
  std::array<int32_t, 256> byte_token_{};  // <0xNN> ids, -1 when absent
  std::vector<AddedToken> added_;
  std::array<std::vector<const AddedToken*>, 256> added_by_byte_;  // by first byte, longest first
  std::vector<bool> is_special_;                                   // by id
  std::vector<bool> is_added_;                                     // by id
  std::vector<int32_t> prefix_ids_, suffix_ids_;                   // post-processor
  int32_t bos_id_ = -1, eos_id_ = -1, pad_id_ = -1, unk_id_ = -1;
  std::string chat_template_;
};

// GGUF tokenizer.ggml.pre names -> the pre-tokenizer regexes llama.cpp applies in order, each
// splitting the pieces of the previous one (empty when the name is unknown).
std::vector<std::string> gguf_pre_tokenizer_regexes(const std::string& pre);

}  // namespace lorahub
