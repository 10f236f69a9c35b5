#include "hub/module_check.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/utf8.h"
#include "formats/module_embedding.h"
#include "formats/peft_adapter.h"
#include "formats/state_dict.h"
#include "hub/hash.h"

namespace lorahub::hub {
namespace fs = std::filesystem;
namespace {

constexpr const char* kConfigName = "adapter_config.json";
constexpr const char* kWeightNames[] = {"adapter_model.safetensors", "adapter_model.bin"};

// What the hub accepts as LoRA hyper-parameters. Ranks past 65536 exceed every published model
// width; alpha is a positive scale, and a subnormal or huge one is a mistake or an attack (it
// cannot round-trip through every SQL driver and makes scaling meaningless).
constexpr int64_t kMaxRank = 65536;
constexpr double kMaxAlpha = 1e6;

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

void check_rank(int64_t r, std::string_view field) {
  check(r >= 1 && r <= kMaxRank, "{}: '{}' must be in [1, {}], got {}", kConfigName, field,
        kMaxRank, r);
}

void check_alpha(double alpha, std::string_view field) {
  check(std::isfinite(alpha) && std::isnormal(alpha) && alpha > 0 && alpha <= kMaxAlpha,
        "{}: '{}' must be a positive normal number of at most {:g}, got {}", kConfigName, field,
        kMaxAlpha, alpha);
}

void check_numbers(const AdapterConfig& c) {
  check_rank(c.r, "r");
  check_alpha(c.lora_alpha, "lora_alpha");
  for (const auto& [pattern, r] : c.rank_pattern)
    check_rank(r, fmt::format("rank_pattern['{}']", truncate_utf8(pattern, 80)));
  for (const auto& [pattern, alpha] : c.alpha_pattern)
    check_alpha(alpha, fmt::format("alpha_pattern['{}']", truncate_utf8(pattern, 80)));
}

// NaN or infinite weights would poison every composition that includes the module.
void check_finite(const StateDict& weights, const std::string& file) {
  for (const auto& name : weights.names()) {
    const Tensor& t = weights.get(name);
    if (!is_float_dtype(t.dtype)) continue;
    const std::vector<float> values = t.to_f32();
    const auto bad =
        std::find_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); });
    check(bad == values.end(), "{}: tensor '{}' holds {} at element {}", file,
          truncate_utf8(name, 200), *bad, bad - values.begin());
  }
}

// Text the hub records and serves as JSON; it must be valid UTF-8 (a pickle may hold anything).
void check_text(const ModuleMeta& meta) {
  check(is_valid_utf8(meta.base_model), "{}: base_model_name_or_path is not valid UTF-8",
        kConfigName);
  for (const auto& t : meta.targets)
    check(is_valid_utf8(t), "target module name '{}' is not valid UTF-8", truncate_utf8(t, 200));
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

namespace {

struct InspectedAdapter {
  ModuleMeta meta;
  std::set<int64_t> input_widths;  // of the lora_A tensors: the hidden size is among them
};

// Reads `weights` together with the config exactly as `lorahub learn` would, in a scratch folder
// of its own, and checks what the hub records about it.
InspectedAdapter inspect_adapter(const UploadedFile& config, const UploadedFile& weights,
                                 const std::string& scratch_root) {
  check_numbers(parse_adapter_config(config.content, kConfigName));  // before reading weights
  const ScratchDir scratch(scratch_root);
  write_file_atomic((scratch.path() / kConfigName).string(), config.content);
  write_file_atomic((scratch.path() / weights.path).string(), weights.content);
  try {
    const PeftAdapter adapter = load_peft_adapter(scratch.path().string());
    check(!adapter.targets.empty(), "{}: no lora_A / lora_B tensors", weights.path);
    check_finite(adapter.weights, weights.path);
    InspectedAdapter out{meta_of(adapter), {}};
    check_text(out.meta);
    for (const LoraTarget& t : adapter.targets) out.input_widths.insert(t.a.shape.back());
    return out;
  } catch (const Error& e) {
    throw Error(without_prefix(e.what(), scratch.path().string() + "/"));
  }
}

// Any other safetensors file is served to clients that will load it: it must parse too.
void inspect_other_safetensors(const UploadedFile& file, const std::string& scratch_root) {
  const ScratchDir scratch(scratch_root);
  const std::string path = (scratch.path() / "weights.safetensors").string();
  write_file_atomic(path, file.content);
  try {
    check_finite(load_state_dict_file(path), file.path);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", file.path, without_prefix(e.what(), path + ": ")));
  }
}

// A retrieval embedding (formats/module_embedding.h) is served to clients that rank modules by it:
// it must parse, name the base model the adapter declares, and be as wide as the base model's
// hidden states, which are the input of some adapted layer (attention's q/k/v).
void inspect_embedding(const UploadedFile& file, const InspectedAdapter& adapter) {
  const ModuleEmbedding e = parse_module_embedding(file.content);
  check(e.base_model == adapter.meta.base_model,
        "{}: 'base_model' is '{}' but adapter_config.json names '{}'", kModuleEmbeddingFile,
        truncate_utf8(e.base_model, 200), truncate_utf8(adapter.meta.base_model, 200));
  const auto width = static_cast<int64_t>(e.vector.size());
  check(adapter.input_widths.count(width) > 0,
        "{}: the vector has {} numbers, but no adapted layer of the module takes {} inputs (the "
        "base model's hidden size is the input width of its attention projections)",
        kModuleEmbeddingFile, width, width);
}

bool is_adapter_weights(const std::string& path) {
  return std::find(std::begin(kWeightNames), std::end(kWeightNames), path) !=
         std::end(kWeightNames);
}

}  // namespace

ModuleMeta inspect_module(const std::vector<UploadedFile>& files, const std::string& scratch_root) {
  const UploadedFile* config = find_file(files, kConfigName);
  check(config != nullptr, "the upload has no {}", kConfigName);
  std::optional<InspectedAdapter> adapter;  // the file PEFT loads: safetensors first
  for (const char* name : kWeightNames) {   // every one sent is validated, not only the first
    if (const UploadedFile* weights = find_file(files, name)) {
      InspectedAdapter found = inspect_adapter(*config, *weights, scratch_root);
      if (!adapter) adapter = std::move(found);
    }
  }
  check(adapter.has_value(), "the upload has no adapter_model.safetensors or adapter_model.bin");
  for (const auto& f : files)
    if (f.path.ends_with(".safetensors") && !is_adapter_weights(f.path))
      inspect_other_safetensors(f, scratch_root);
  if (const UploadedFile* embedding = find_file(files, kModuleEmbeddingFile))
    inspect_embedding(*embedding, *adapter);
  return std::move(adapter->meta);
}

void remove_stale_scratch(const std::string& scratch_root) {
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(1);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(scratch_root, ec)) {
    if (entry.last_write_time(ec) < cutoff) fs::remove_all(entry.path(), ec);
  }
}

}  // namespace lorahub::hub
