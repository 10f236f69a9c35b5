#include "hub/module_check.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/peft_adapter.h"
#include "hub/hash.h"

namespace lorahub::hub {
namespace fs = std::filesystem;
namespace {

constexpr const char* kConfigName = "adapter_config.json";
constexpr const char* kWeightNames[] = {"adapter_model.safetensors", "adapter_model.bin"};

const UploadedFile* find_file(const std::vector<UploadedFile>& files, const std::string& path) {
  auto it = std::find_if(files.begin(), files.end(), [&](const auto& f) { return f.path == path; });
  return it == files.end() ? nullptr : &*it;
}

// A fresh folder, removed with everything in it when the check ends, however it ends.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& root) : path_(fs::path(root) / random_hex(8)) {
    std::error_code ec;
    fs::create_directories(path_, ec);
    check(!ec, "{}: cannot create a scratch folder: {}", path_.string(), ec.message());
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The reader names files by their scratch path; the uploader knows them by their repo path.
std::string without_prefix(std::string message, const std::string& prefix) {
  for (size_t at; (at = message.find(prefix)) != std::string::npos;)
    message.erase(at, prefix.size());
  return message;
}

ModuleMeta meta_of(const PeftAdapter& adapter) {
  ModuleMeta meta;
  meta.base_model = adapter.config.base_model_name_or_path;
  meta.rank = adapter.config.r;
  meta.alpha = adapter.config.lora_alpha;
  meta.targets = adapter.config.target_modules;
  if (!adapter.config.target_modules_regex.empty()) {
    meta.targets = {adapter.config.target_modules_regex};
  }
  if (meta.targets.empty()) {  // PEFT's defaults by model type: name what the weights adapt
    for (const auto& t : adapter.targets) {
      const std::string leaf = t.module.substr(t.module.rfind('.') + 1);
      if (std::find(meta.targets.begin(), meta.targets.end(), leaf) == meta.targets.end()) {
        meta.targets.push_back(leaf);
      }
    }
  }
  std::sort(meta.targets.begin(), meta.targets.end());
  return meta;
}

}  // namespace

ModuleMeta inspect_module(const std::vector<UploadedFile>& files, const std::string& scratch_root) {
  const UploadedFile* config = find_file(files, kConfigName);
  check(config != nullptr, "the upload has no {}", kConfigName);
  const UploadedFile* weights = nullptr;
  for (const char* name : kWeightNames) {
    if (!weights) weights = find_file(files, name);
  }
  check(weights != nullptr, "the upload has no adapter_model.safetensors or adapter_model.bin");

  const ScratchDir scratch(scratch_root);
  write_file_atomic((scratch.path() / kConfigName).string(), config->content);
  write_file_atomic((scratch.path() / weights->path).string(), weights->content);
  try {
    const PeftAdapter adapter = load_peft_adapter(scratch.path().string());
    check(!adapter.targets.empty(), "{}: no lora_A / lora_B tensors", weights->path);
    return meta_of(adapter);
  } catch (const Error& e) {
    throw Error(without_prefix(e.what(), scratch.path().string() + "/"));
  }
}

void remove_stale_scratch(const std::string& scratch_root) {
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(1);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(scratch_root, ec)) {
    if (entry.last_write_time(ec) < cutoff) fs::remove_all(entry.path(), ec);
  }
}

}  // namespace lorahub::hub
