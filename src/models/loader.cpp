// load_model(): picks the model family from config.json's model_type (or a .gguf file) and hands
// the directory to that family's loader. One table, so adding a family is one line.
#include <filesystem>
#include <functional>
#include <map>

#include "core/error.h"
#include "formats/hf_config.h"
#include "kernels/matmul.h"
#include "models/llama.h"
#include "models/model.h"
#include "models/t5.h"

namespace lorahub {

namespace {

using FamilyLoader =
    std::function<std::unique_ptr<Model>(const std::string&, const HfConfig&, const LoadOptions&)>;

const std::map<std::string, FamilyLoader>& families() {
  static const std::map<std::string, FamilyLoader> table = {
      {"t5", load_t5},
      {"llama", load_llama},
      {"mistral", load_llama},
      {"qwen2", load_llama},
      {"qwen3", load_llama},
      {"phi3", load_llama},
      {"gemma3_text", load_llama},
  };
  return table;
}

std::string supported_list() {
  std::string names;
  for (const auto& [name, loader] : families()) names += (names.empty() ? "" : ", ") + name;
  return names;
}

}  // namespace

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options) {
  if (options.threads > 0) set_compute_threads(options.threads);
  if (path.ends_with(".gguf") && !std::filesystem::is_directory(path))
    return load_llama_gguf(path, options);  // GGUF files hold decoder-only models only
  check(std::filesystem::exists(path),
        "{}: no such file or directory (a model is an HF model directory or a .gguf file)", path);
  check(std::filesystem::is_directory(path),
        "{}: not a model directory (config.json, weights, tokenizer) nor a .gguf file", path);
  const HfConfig config = HfConfig::load(path);
  const std::string type = config.get_string("model_type");
  const auto it = families().find(type);
  check(it != families().end(), "{}: unsupported model_type '{}' (supported: {})", config.source(),
        type, supported_list());
  return it->second(path, config, options);
}

}  // namespace lorahub
