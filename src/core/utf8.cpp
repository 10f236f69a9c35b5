#include "core/utf8.h"

#include <utf8proc.h>

namespace lorahub {
namespace {

// Bytes of the well-formed character at the start of `text`, or 0 when it is ill-formed.
// utf8proc rejects overlong forms, surrogates and code points past U+10FFFF.
size_t char_length(std::string_view text) {
  utf8proc_int32_t codepoint = 0;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                  static_cast<utf8proc_ssize_t>(text.size()), &codepoint);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = char_length(text.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = char_length(text.substr(i));
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string_view truncate_utf8(std::string_view text, size_t max_bytes) {
  size_t end = 0;
  while (end < text.size()) {
    const size_t n = std::max<size_t>(char_length(text.substr(end)), 1);
    if (end + n > max_bytes) break;
    end += n;
  }
  return text.substr(0, end);
}

std::string printable_utf8(std::string_view text, size_t max_bytes) {
  const std::string_view kept = truncate_utf8(text, max_bytes);
  return to_valid_utf8(kept) + (kept.size() < text.size() ? "..." : "");
}

}  // namespace lorahub
