// Warnings about the LoRA modules a command was given, printed on stderr (the command goes on).
#pragma once
#include <cstddef>

namespace lorahub::cli {

// --sample K with fewer than K modules available: says that all of them are used.
void warn_if_sample_exceeds(size_t sample, size_t available);

}  // namespace lorahub::cli
