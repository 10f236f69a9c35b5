#include "lora/export.h"

#include <filesystem>

#include "core/error.h"
#include "formats/peft_adapter.h"
#include "formats/state_dict.h"
#include "lora/compose.h"

namespace lorahub {
namespace fs = std::filesystem;

void save_composed_adapter(const LoraModule& composed, const std::string& dir) {
  save_peft_adapter(dir, composed.config, module_state_dict(composed));
}

void save_merged_model(Model& model, const LoraModule& composed, const std::string& base_dir,
                       const std::string& out_dir) {
  model.merge_lora(to_lora_map(composed));
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  check(!ec, "{}: cannot create directory: {}", out_dir, ec.message());
  StateDict dict(out_dir);
  for (auto& [name, tensor] : model.state_dict()) dict.add(name, std::move(tensor));
  save_safetensors((fs::path(out_dir) / "model.safetensors").string(), dict, {{"format", "pt"}});
  // Everything transformers needs besides the weights: config and tokenizer, unchanged.
  for (const char* name : {"config.json", "generation_config.json", "spiece.model",
                           "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                           "added_tokens.json", "vocab.json", "merges.txt"}) {
    const fs::path src = fs::path(base_dir) / name;
    if (!fs::exists(src)) continue;
    fs::copy_file(src, fs::path(out_dir) / name, fs::copy_options::overwrite_existing, ec);
    check(!ec, "{}: cannot copy into {}: {}", src.string(), out_dir, ec.message());
  }
}

}  // namespace lorahub
