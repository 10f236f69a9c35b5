// api::Tokenizer: the engine's tokenizers without a model (tokenizer/).
#include <filesystem>
#include <nlohmann/json.hpp>

#include "api/internal.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/sentencepiece.h"

namespace lorahub::api {

struct Tokenizer::Impl {
  std::unique_ptr<lorahub::Tokenizer> engine;
};

namespace {

std::unique_ptr<lorahub::Tokenizer> open_tokenizer(const std::string& path) {
  // T5-family directories carry a SentencePiece model; the others a byte-level BPE tokenizer.json.
  const auto spiece = std::filesystem::path(path) / "spiece.model";
  if (std::filesystem::is_regular_file(spiece))
    return SentencePieceTokenizer::load(spiece.string());
  if (std::filesystem::is_directory(path)) return BpeTokenizer::from_hf_dir(path);
  if (path.ends_with(".json")) return BpeTokenizer::from_tokenizer_json(path);
  return BpeTokenizer::from_gguf(GgufFile::open(path));
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

std::shared_ptr<const Tokenizer> Tokenizer::load(const std::string& path) {
  auto impl = std::make_shared<Impl>();
  impl->engine = open_tokenizer(path);
  return std::make_shared<const Tokenizer>(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(const std::string& text, bool special_tokens) const {
  return impl_->engine->encode(text, special_tokens);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  return impl_->engine->decode(ids, skip_special);
}

std::string Tokenizer::chat_prompt(const std::string& user) const {
  return impl_->engine->apply_chat_template(user);
}

std::string Tokenizer::render_chat(const std::string& messages_json, bool add_generation_prompt,
                                   const std::string& template_source) const {
  nlohmann::ordered_json messages;
  try {
    messages = nlohmann::ordered_json::parse(messages_json);
  } catch (const nlohmann::json::exception& e) {
    fail("chat messages: not JSON: {}", e.what());
  }
  check(messages.is_array(), "chat messages: expected a JSON array of {{role, content}} objects");
  return impl_->engine->render_chat(messages, add_generation_prompt, template_source);
}

}  // namespace lorahub::api
