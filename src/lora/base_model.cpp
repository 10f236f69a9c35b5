#include "lora/base_model.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

namespace lorahub {
namespace {

std::string short_name(const std::string& name_or_path) {
  std::filesystem::path p(name_or_path);
  if (p.filename().empty()) p = p.parent_path();  // "models/flan-t5-large/"
  std::string name = p.extension() == ".gguf" ? p.stem().string() : p.filename().string();
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

}  // namespace

bool base_model_matches(const std::string& base_model_name_or_path, const std::string& model_path) {
  const std::string base = short_name(base_model_name_or_path);
  const std::string model = short_name(model_path);
  return base.empty() || model.starts_with(base) || base.starts_with(model);
}

}  // namespace lorahub
