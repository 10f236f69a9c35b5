// The public API names the option at fault by its field (api::OptionError::option()); the CLI
// says which flag the value came from.
#pragma once
#include <map>
#include <string>

#include "lorahub/lorahub.h"

namespace lorahub::cli {

// Option field -> the flag that sets it, e.g. {"batch_size", "--batch-size"}.
using FlagNames = std::map<std::string, std::string>;

// The error with its flag in front: "--steps must be at least 1, got 0" for a message that is a
// predicate on the value ("must ..."), "--sampler: unknown sample rule 'dice'" otherwise. An
// option without a flag keeps its message.
[[noreturn]] void fail_for_flag(const api::OptionError& e, const FlagNames& flags);

// Runs f, turning an OptionError from it into an Error that names the flag.
template <typename F>
auto with_flags(const FlagNames& flags, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const api::OptionError& e) {
    fail_for_flag(e, flags);
  }
}

}  // namespace lorahub::cli
