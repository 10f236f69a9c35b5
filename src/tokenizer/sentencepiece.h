// SentencePiece tokenizer with T5's conventions, giving the ids of transformers' T5Tokenizer:
// pad = 0, eos = 1, unk = 2; <extra_id_N> = vocab_size - 1 - N after the model's pieces;
// the special tokens ("<pad>", "</s>", "<unk>", "<extra_id_N>") are recognised in the text as
// whole tokens (transformers' added tokens, leftmost-longest), the text between them is encoded
// by SentencePiece; EOS is appended. Decoding can skip the special tokens.
#pragma once
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace lorahub {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // `model_path`: a spiece.model file. Throws Error naming the file when it cannot be loaded.
  static std::unique_ptr<SentencePieceTokenizer> load(const std::string& model_path,
                                                      int extra_ids = 100);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const override;
  int32_t eos_id() const override { return 1; }
  int32_t pad_id() const override { return 0; }
  int32_t unk_id() const { return 2; }
  int64_t vocab_size() const override { return piece_count_ + extra_ids_; }
  int32_t extra_id(int n) const { return static_cast<int32_t>(vocab_size() - 1 - n); }
  bool is_special(int32_t id) const;

 private:
  SentencePieceTokenizer() = default;
  // The special token starting at text[pos] (longest match), or -1 and length 0.
  int32_t match_special(std::string_view text, size_t pos, size_t* length) const;
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
  std::string special_text(int32_t id) const;

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string path_;
  int64_t piece_count_ = 0;
  int extra_ids_ = 0;
};

}  // namespace lorahub
