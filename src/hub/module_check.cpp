#include "hub/module_check.h"

#include <algorithm>

#include "core/error.h"
#include "formats/json.h"
#include "formats/safetensors.h"

namespace lorahub::hub {
namespace {

constexpr const char* kConfigName = "adapter_config.json";
constexpr const char* kSafetensorsName = "adapter_model.safetensors";

const UploadedFile* find_file(const std::vector<UploadedFile>& files, const std::string& path) {
  auto it = std::find_if(files.begin(), files.end(), [&](const auto& f) { return f.path == path; });
  return it == files.end() ? nullptr : &*it;
}

std::vector<std::string> read_targets(const nlohmann::json& config) {
  const auto it = config.find("target_modules");
  check(it != config.end(), "{}: missing field 'target_modules'", kConfigName);
  if (it->is_string()) return {it->get<std::string>()};  // a regex, as PEFT allows
  check(it->is_array() && !it->empty(), "{}: 'target_modules' must be a non-empty list, not {}",
        kConfigName, json_type_name(*it));
  std::vector<std::string> targets;
  for (const auto& t : *it) {
    check(t.is_string(), "{}: 'target_modules' holds a {}, not a string", kConfigName,
          json_type_name(t));
    targets.push_back(t.get<std::string>());
  }
  std::sort(targets.begin(), targets.end());
  return targets;
}

struct AdapterConfig {
  ModuleMeta meta;
  bool per_module_ranks = false;  // a non-empty rank_pattern gives some targets another rank
};

AdapterConfig read_config(const UploadedFile& file) {
  const nlohmann::json config = parse_json(file.content, kConfigName);
  check(config.is_object(), "{}: expected a JSON object, got {}", kConfigName,
        json_type_name(config));
  const std::string peft_type = config.value("peft_type", std::string("LORA"));
  check(peft_type == "LORA", "{}: peft_type is '{}', only LORA modules are accepted", kConfigName,
        peft_type);
  ModuleMeta meta;
  const auto r = config.find("r");
  check(r != config.end() && r->is_number_integer() && r->get<int64_t>() > 0 &&
            r->get<int64_t>() <= 65536,
        "{}: 'r' must be a positive integer", kConfigName);
  meta.rank = r->get<int64_t>();
  const auto alpha = config.find("lora_alpha");
  check(alpha != config.end() && alpha->is_number(), "{}: 'lora_alpha' must be a number",
        kConfigName);
  meta.alpha = alpha->get<double>();
  const auto base = config.find("base_model_name_or_path");
  check(base == config.end() || base->is_string() || base->is_null(),
        "{}: 'base_model_name_or_path' must be a string", kConfigName);
  if (base != config.end() && base->is_string()) meta.base_model = base->get<std::string>();
  meta.targets = read_targets(config);
  const auto pattern = config.find("rank_pattern");
  const bool per_module_ranks =
      pattern != config.end() && pattern->is_object() && !pattern->empty();
  return {std::move(meta), per_module_ranks};
}

// Every LoRA pair must have the config's rank unless rank_pattern overrides it; we only insist
// on the shapes being 2-D and the inner dimensions agreeing.
void check_weights(const UploadedFile& file, const AdapterConfig& config) {
  const auto bytes =
      std::span(reinterpret_cast<const std::byte*>(file.content.data()), file.content.size());
  const SafetensorsHeader header = parse_safetensors_header(bytes, file.path);
  size_t lora_tensors = 0;
  for (const auto& entry : header.entries) {
    const bool is_a = entry.name.find(".lora_A.") != std::string::npos;
    const bool is_b = entry.name.find(".lora_B.") != std::string::npos;
    if (!is_a && !is_b) continue;
    ++lora_tensors;
    check(entry.shape.size() == 2, "{}: tensor '{}' is not 2-D", file.path, entry.name);
    const int64_t rank = static_cast<int64_t>(is_a ? entry.shape[0] : entry.shape[1]);
    check(config.per_module_ranks || rank == config.meta.rank,
          "{}: tensor '{}' has rank {} but adapter_config.json says r = {}", file.path, entry.name,
          rank, config.meta.rank);
  }
  check(lora_tensors > 0, "{}: no lora_A / lora_B tensors", file.path);
}

}  // namespace

ModuleMeta inspect_module(const std::vector<UploadedFile>& files) {
  const UploadedFile* config = find_file(files, kConfigName);
  check(config != nullptr, "the upload has no {}", kConfigName);
  AdapterConfig adapter = read_config(*config);
  const UploadedFile* weights = find_file(files, kSafetensorsName);
  check(weights != nullptr, "the upload has no {} (PEFT's weight file)", kSafetensorsName);
  check_weights(*weights, adapter);
  return adapter.meta;
}

}  // namespace lorahub::hub
