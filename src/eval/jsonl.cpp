#include "eval/jsonl.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/json.h"

namespace lorahub {

namespace {

// The first of `keys` present in the row, which must be a string; nullopt when none is present.
std::optional<std::string> string_field(const nlohmann::json& row,
                                        std::initializer_list<const char*> keys,
                                        const std::string& where) {
  for (const char* key : keys) {
    const auto it = row.find(key);
    if (it == row.end() || it->is_null()) continue;
    check(it->is_string(), "{}: field '{}' must be a string, got {}", where, key,
          json_type_name(*it));
    return it->get<std::string>();
  }
  return std::nullopt;
}

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

std::vector<TextExample> parse_jsonl_examples(std::string_view text, const std::string& source) {
  std::vector<TextExample> examples;
  size_t line_number = 0;
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_number;
    if (is_blank(line)) continue;
    const std::string where = fmt::format("{}:{}", source, line_number);
    const nlohmann::json row = parse_json(line, where);
    check(row.is_object(), "{}: expected a JSON object, got {}", where, json_type_name(row));
    auto input = string_field(row, {"input", "context"}, where);
    check(input.has_value(), "{}: missing field 'input' (or 'context')", where);
    examples.push_back(
        {std::move(*input), string_field(row, {"output", "completion"}, where), line_number});
  }
  return examples;
}

std::vector<TextExample> read_jsonl_examples(const std::string& path) {
  return parse_jsonl_examples(read_text_file(path), path);
}

}  // namespace lorahub
