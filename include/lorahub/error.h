// The one exception type of lorahub: every failure inside the library throws it, with a message
// that names the file, tensor or field at fault (valid UTF-8 always).
#pragma once
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace lorahub {

std::string to_valid_utf8(std::string_view bytes);  // core/utf8.cpp
// The longest prefix of `text` of at most max_bytes bytes that does not cut a character, for
// quoting input in a message.
std::string truncate_utf8(std::string_view text, size_t max_bytes);

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(to_valid_utf8(what)) {}
};

}  // namespace lorahub
