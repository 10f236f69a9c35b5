// lorahub tokenize: text -> token ids (and back) with a model's own tokenizer, for checking
// tokenizers against the HF `tokenizers` library and for debugging prompts.
//   stdin: one JSON string per line.  stdout: one JSON array of ids per line
//   (with --decode: stdin JSON arrays of ids, stdout JSON strings).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command.h"
#include "lorahub/lorahub.h"

namespace lorahub::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  bool no_special = false, decode = false, keep_special = false, chat = false, render = false;
  std::string chat_template;  // a template file replacing the model's
};

nlohmann::json parse_line(const std::string& line, size_t number) {
  try {
    return nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    std::string_view what = e.what();  // "[json.exception.parse_error.101] parse error at ..."
    if (what.starts_with("[json.exception.")) what.remove_prefix(what.find("] ") + 2);
    fail("stdin line {}: not JSON: {}", number, what);
  }
}

// --decode's input: a JSON array of token ids (whole numbers that fit an int32).
std::vector<int32_t> token_ids(const nlohmann::json& j, size_t number) {
  check(j.is_array(), "stdin line {}: expected an array of token ids", number);
  std::vector<int32_t> ids;
  for (const auto& id : j) {
    const bool fits = id.is_number_unsigned() ? id.get<uint64_t>() <= INT32_MAX
                      : id.is_number_integer()
                          ? id.get<int64_t>() >= INT32_MIN && id.get<int64_t>() <= INT32_MAX
                          : false;
    check(fits, "stdin line {}: {} is not a token id (a whole number)", number,
          truncate_utf8(id.dump(), 40));
    ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return ids;
}

void run(const TokenizeOptions& o) {
  const auto tok = api::Tokenizer::load(o.model);
  const std::string template_text = o.chat_template.empty() ? "" : read_file(o.chat_template);
  std::string line;
  for (size_t n = 1; std::getline(std::cin, line); ++n) {
    if (line.empty()) continue;
    const auto j = parse_line(line, n);
    if (o.decode) {
      std::cout << nlohmann::json(tok->decode(token_ids(j, n), !o.keep_special))
                       .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                << '\n';
    } else {
      if (o.render) {  // a conversation (or one user turn) through the chat template, as text
        // Reparsed keeping key order: tojson in templates prints keys as given.
        const auto ordered = nlohmann::ordered_json::parse(line);
        const auto messages =
            j.is_string()
                ? nlohmann::ordered_json::array({{{"role", "user"}, {"content", ordered}}})
                : ordered;
        check(messages.is_array(), "stdin line {}: expected a JSON string or messages array", n);
        std::cout << nlohmann::json(
                         tok->render_chat(messages.dump(-1, ' ', false,
                                                        nlohmann::json::error_handler_t::replace),
                                          true, template_text))
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                  << '\n';
        continue;
      }
      check(j.is_string(), "stdin line {}: expected a JSON string", n);
      const std::string text =
          o.chat ? tok->chat_prompt(j.get<std::string>()) : j.get<std::string>();
      std::cout << nlohmann::json(tok->encode(text, !o.no_special)).dump() << '\n';
    }
  }
}

const Registrar reg("tokenize", 90, [](CLI::App& app) {
  auto opts = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand(
      "tokenize", "Text (JSON strings on stdin, one per line) to token ids, or back with --decode");
  cmd->add_option("--model", opts->model, "GGUF file, HF model directory or tokenizer.json")
      ->required();
  cmd->add_flag("--no-special", opts->no_special,
                "Do not add the tokenizer's default special tokens");
  cmd->add_flag("--chat", opts->chat, "Wrap each text in the chat template as a user turn");
  cmd->add_flag("--render-chat", opts->render,
                "Print the chat template rendered for each line (a user turn as a JSON string, or "
                "a JSON array of {role, content} messages) with the generation prompt");
  cmd->add_option("--chat-template", opts->chat_template,
                  "With --render-chat: a Jinja template file to use instead of the model's");
  cmd->add_flag("--decode", opts->decode, "Decode JSON arrays of ids to text");
  cmd->add_flag("--keep-special", opts->keep_special, "With --decode: keep special tokens");
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace lorahub::cli
