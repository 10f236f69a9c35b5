// fail/check: throw lorahub::Error with a {fmt}-formatted message. The engine's own helpers,
// public for programs on the API that use {fmt} too (this header needs it; lorahub.h does not).
#pragma once
#include <fmt/format.h>

#include <utility>

#include "lorahub/error.h"

namespace lorahub {

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
