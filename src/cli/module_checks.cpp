#include "cli/module_checks.h"

#include <fmt/format.h>

namespace lorahub::cli {

void warn_if_sample_exceeds(size_t sample, size_t available) {
  if (sample > available)
    fmt::print(stderr,
               "lorahub: warning: --sample {} but only {} modules are available; using all {}\n",
               sample, available, available);
}

}  // namespace lorahub::cli
