#include "tokenizer/tokenizer.h"

#include "core/error.h"

namespace lorahub {

std::string Tokenizer::apply_chat_template(const std::string&) const {
  fail("this tokenizer has no chat template (only instruct models have one)");
}

std::string Tokenizer::render_chat(const nlohmann::ordered_json&, bool, const std::string&) const {
  fail("this tokenizer has no chat template (only instruct models have one)");
}

}  // namespace lorahub
