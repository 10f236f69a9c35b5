// One way to report errors inside the library: throw lorahub::Error with a message that names
// the file, tensor or field at fault. The CLI catches it and prints one line.
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

#include "core/utf8.h"

namespace lorahub {

// Messages often quote bytes from untrusted input (names, JSON values, pickle globals); they are
// made valid UTF-8 here, once for every error, so that whoever shows one (a JSON response, a
// log line) never meets invalid text.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(to_valid_utf8(what)) {}
};

// fail("{}: tensor '{}' has shape {}", path, name, shape) -> throws Error.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

// check(cond, "...") -> throws Error when cond is false.
template <typename... Args>
void check(bool cond, fmt::format_string<Args...> f, Args&&... args) {
  if (!cond) throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace lorahub
