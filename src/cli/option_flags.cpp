#include "cli/option_flags.h"

#include <string_view>

#include "lorahub/check.h"

namespace lorahub::cli {

void fail_for_flag(const api::OptionError& e, const FlagNames& flags) {
  const auto flag = flags.find(e.option());
  if (flag == flags.end()) throw Error(e.what());
  const bool predicate = std::string_view(e.what()).starts_with("must ");
  throw Error(predicate ? fmt::format("{} {}", flag->second, e.what())
                        : fmt::format("{}: {}", flag->second, e.what()));
}

}  // namespace lorahub::cli
