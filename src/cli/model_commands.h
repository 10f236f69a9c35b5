// generate_with_progress: eval/generate.h's generation with the CLI's progress bar.
#pragma once
#include <string>
#include <vector>

#include "eval/generate.h"
#include "models/model.h"

namespace lorahub::cli {

std::vector<Decoded> generate_with_progress(const Model& model,
                                            const std::vector<std::string>& inputs,
                                            GenerateOptions options);

}  // namespace lorahub::cli
