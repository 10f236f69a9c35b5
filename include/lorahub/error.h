// The one exception type of lorahub: every failure inside the library throws it, with a message
// that names the file, tensor or field at fault (valid UTF-8 always).
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

namespace lorahub {

std::string to_valid_utf8(std::string_view bytes);  // core/utf8.cpp

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(to_valid_utf8(what)) {}
};

}  // namespace lorahub
