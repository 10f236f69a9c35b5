#include "core/utf8.h"

#include <utf8proc.h>

namespace lorahub {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed sequence at the start of `text`, or 0 when it is not one.
size_t sequence_length(std::string_view text) {
  if (static_cast<unsigned char>(text[0]) < 0x80) return 1;  // ASCII, the common case
  utf8proc_int32_t codepoint = 0;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                  static_cast<utf8proc_ssize_t>(text.size()), &codepoint);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

// Appends characters of `text` to `out` while they fit in `max_bytes`; returns whether all did.
bool append_valid(std::string_view text, size_t max_bytes, std::string& out) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = sequence_length(text.substr(i));
    const std::string_view piece = n ? text.substr(i, n) : kReplacement;
    if (out.size() + piece.size() > max_bytes) return false;
    out += piece;
    i += n ? n : 1;
  }
  return true;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = sequence_length(text.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string to_valid_utf8(std::string_view text) {
  if (is_valid_utf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  append_valid(text, std::string::npos, out);
  return out;
}

std::string truncate_utf8(std::string_view text, size_t max_bytes) {
  std::string out;
  append_valid(text, max_bytes, out);
  return out;
}

}  // namespace lorahub
