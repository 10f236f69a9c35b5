#include "formats/json.h"

#include <algorithm>

#include "core/error.h"

namespace lorahub {
namespace {

// Scans brackets outside strings; parse_json runs it first so that the parser never sees more
// than kMaxJsonDepth levels.
void check_json_depth(std::string_view text, const std::string& source) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // skip the escaped character, which may be a quote
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        fail("{}: invalid JSON: nested deeper than {} levels", source, kMaxJsonDepth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// " at line L, column C" for the byte the parser stopped at (1-based; "line" only when the
// text has more than one).
std::string where_in(std::string_view text, size_t byte) {
  const size_t at = std::min(byte > 0 ? byte - 1 : 0, text.size());
  const size_t line = 1 + std::count(text.begin(), text.begin() + at, '\n');
  const size_t line_start = text.rfind('\n', at == 0 ? 0 : at - 1);
  const size_t column =
      at - (line_start == std::string_view::npos || at == 0 ? 0 : line_start + 1) + 1;
  if (text.find('\n') == std::string_view::npos || text.find('\n') + 1 == text.size())
    return fmt::format(" at column {}", column);
  return fmt::format(" at line {}, column {}", line, column);
}

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1,
// column 2: " prefix (we say where ourselves, in the user's terms).
std::string parser_reason(std::string_view what) {
  if (what.starts_with("[json.exception.")) {
    const size_t bracket = what.find("] ");
    if (bracket != std::string_view::npos) what.remove_prefix(bracket + 2);
  }
  if (const size_t colon = what.find(": ");
      what.starts_with("parse error") && colon != std::string_view::npos)
    what.remove_prefix(colon + 2);
  return std::string(what);
}

}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& source) {
  check_json_depth(text, source);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON{}: {}", source, where_in(text, e.byte), parser_reason(e.what()));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", source, parser_reason(e.what()));
  }
}

std::string json_type_name(const nlohmann::json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number_float()) return "number";
  return value.type_name();
}

}  // namespace lorahub
