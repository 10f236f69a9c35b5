#include "tokenizer/tokenizer.h"

#include "core/error.h"

namespace lorahub {

std::string Tokenizer::apply_chat_template(const std::string&) const {
  fail("this tokenizer has no chat template (--chat needs an instruct model's template)");
}

std::string Tokenizer::render_chat(const nlohmann::ordered_json&, bool, const std::string&) const {
  fail("this tokenizer has no chat template (--chat needs an instruct model's template)");
}

}  // namespace lorahub
