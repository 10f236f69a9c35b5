#include "tokenizer/sentencepiece.h"

#include <sentencepiece_processor.h>

#include <charconv>

#include "core/error.h"

namespace lorahub {

namespace {
constexpr int32_t kPad = 0, kEos = 1, kUnk = 2;
constexpr std::string_view kExtraPrefix = "<extra_id_";
}  // namespace

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load(const std::string& model_path,
                                                                     int extra_ids) {
  std::unique_ptr<SentencePieceTokenizer> tok(new SentencePieceTokenizer());
  tok->sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = tok->sp_->Load(model_path);
  check(status.ok(), "{}: cannot load SentencePiece model: {}", model_path, status.ToString());
  tok->path_ = model_path;
  tok->piece_count_ = tok->sp_->GetPieceSize();
  tok->extra_ids_ = extra_ids;
  // T5's ids are fixed by convention; a model with another layout would silently give wrong ids.
  check(tok->piece_count_ > 3 && tok->sp_->pad_id() == kPad && tok->sp_->eos_id() == kEos &&
            tok->sp_->unk_id() == kUnk,
        "{}: not a T5 SentencePiece model (needs pad=0, eos=1, unk=2; has pad={}, eos={}, unk={})",
        model_path, tok->sp_->pad_id(), tok->sp_->eos_id(), tok->sp_->unk_id());
  return tok;
}

bool SentencePieceTokenizer::is_special(int32_t id) const {
  return id == kPad || id == kEos || id == kUnk || id >= piece_count_;
}

int32_t SentencePieceTokenizer::match_special(std::string_view text, size_t pos,
                                              size_t* length) const {
  *length = 0;
  const std::string_view rest = text.substr(pos);
  if (rest.empty() || rest[0] != '<') return -1;
  for (auto [piece, id] :
       {std::pair<std::string_view, int32_t>{"<pad>", kPad}, {"</s>", kEos}, {"<unk>", kUnk}}) {
    if (rest.starts_with(piece)) {
      *length = piece.size();
      return id;
    }
  }
  if (!rest.starts_with(kExtraPrefix)) return -1;
  // "<extra_id_N>": the digits must be a number below extra_ids, written as transformers does.
  const size_t digits_begin = kExtraPrefix.size();
  size_t digits_end = digits_begin;
  while (digits_end < rest.size() && rest[digits_end] >= '0' && rest[digits_end] <= '9')
    ++digits_end;
  if (digits_end == digits_begin || digits_end >= rest.size() || rest[digits_end] != '>') return -1;
  int n = 0;
  const auto [end, ec] = std::from_chars(rest.data() + digits_begin, rest.data() + digits_end, n);
  if (ec != std::errc() || n >= extra_ids_ || std::to_string(n).size() != digits_end - digits_begin)
    return -1;
  *length = digits_end + 1;
  return extra_id(n);
}

void SentencePieceTokenizer::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  check(status.ok(), "{}: SentencePiece encoding failed: {}", path_, status.ToString());
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> ids;
  size_t segment_begin = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t length = 0;
    const int32_t special = match_special(text, pos, &length);
    if (special < 0) {
      ++pos;
      continue;
    }
    encode_plain(text.substr(segment_begin, pos - segment_begin), ids);
    ids.push_back(special);
    pos += length;
    segment_begin = pos;
  }
  encode_plain(text.substr(segment_begin), ids);
  if (add_special) ids.push_back(kEos);
  return ids;
}

std::string SentencePieceTokenizer::special_text(int32_t id) const {
  switch (id) {
    case kPad:
      return "<pad>";
    case kEos:
      return "</s>";
    case kUnk:
      return "<unk>";
    default:
      return "<extra_id_" + std::to_string(vocab_size() - 1 - id) + ">";
  }
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids,
                                           bool skip_special) const {
  std::string text;
  std::vector<int> run;  // consecutive ordinary pieces, decoded together
  auto flush = [&] {
    if (run.empty()) return;
    std::string piece_text;
    const auto status = sp_->Decode(run, &piece_text);
    check(status.ok(), "{}: SentencePiece decoding failed: {}", path_, status.ToString());
    if (!text.empty()) text += ' ';
    text += piece_text;
    run.clear();
  };
  for (int32_t id : ids) {
    check(id >= 0, "{}: negative token id {}", path_, id);
    // Models may have more embedding rows than the tokenizer has tokens (FLAN-T5: 32128 vs
    // 32100); like transformers, ids without a token decode to nothing.
    if (id >= vocab_size()) continue;
    if (!is_special(id)) {
      run.push_back(id);
    } else if (!skip_special) {
      flush();
      text += special_text(id);
    }
  }
  flush();
  return text;
}

}  // namespace lorahub
