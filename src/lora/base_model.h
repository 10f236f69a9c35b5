// Whether an adapter was made for the model it is applied to, judged by name: PEFT records the
// base model as a hub id or a path (base_model_name_or_path), we know the model by its path.
#pragma once
#include <string>

namespace lorahub {

// True when the names agree (last path component, case-insensitive; a model file or folder
// named after the base with a suffix such as GGUF's "-Q8_0" agrees), or when the adapter names
// no base model.
bool base_model_matches(const std::string& base_model_name_or_path, const std::string& model_path);

}  // namespace lorahub
