#include "lora/module_set.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/hf_config.h"
#include "formats/state_dict.h"

namespace lorahub {
namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "base_model.model.";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> target_modules_of(const HfConfig& config) {
  const auto& j = config.json();
  check(j.contains("target_modules"), "{}: missing field 'target_modules'", config.source());
  std::vector<std::string> targets;
  if (j["target_modules"].is_string()) {
    targets.push_back(j["target_modules"].get<std::string>());  // a regex: compared verbatim
  } else {
    targets = config.get_string_list("target_modules");
  }
  std::sort(targets.begin(), targets.end());
  return targets;
}

// Per-layer ranks or alphas would need a scale per layer; the released LoraHub modules and
// everything we write use one rank and alpha, so refuse rather than silently mis-scale.
void refuse_patterns(const HfConfig& config) {
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    const auto& j = config.json();
    check(!j.contains(key) || j[key].is_null() || j[key].empty(),
          "{}: '{}' (per-layer rank or alpha) is not supported", config.source(), key);
  }
  check(!config.get_bool_or("fan_in_fan_out", false),
        "{}: 'fan_in_fan_out' adapters (GPT-2 Conv1D layers) are not supported", config.source());
  const std::string peft_type = config.get_string_or("peft_type", "LORA");
  check(peft_type == "LORA", "{}: peft_type is '{}', expected 'LORA'", config.source(), peft_type);
  check(!config.get_bool_or("use_dora", false), "{}: DoRA adapters are not supported",
        config.source());
}

std::string adapter_weights_file(const std::string& dir) {
  for (const char* name : {"adapter_model.safetensors", "adapter_model.bin"}) {
    const fs::path p = fs::path(dir) / name;
    if (fs::exists(p)) return p.string();
  }
  fail("{}: no adapter_model.safetensors or adapter_model.bin", dir);
}

}  // namespace

void parse_lora_key(const std::string& key, const std::string& source, std::string& layer,
                    bool& is_a) {
  const std::string prefix = kPrefix;
  const bool has_prefix = key.compare(0, prefix.size(), prefix) == 0;
  if (has_prefix && ends_with(key, ".lora_A.weight")) {
    is_a = true;
  } else if (has_prefix && ends_with(key, ".lora_B.weight")) {
    is_a = false;
  } else {
    fail("{}: tensor '{}' is not a LoRA A/B weight (base_model.model.<layer>.lora_A/B.weight)",
         source, key);
  }
  layer =
      key.substr(prefix.size(), key.size() - prefix.size() - std::string(".lora_A.weight").size());
  check(!layer.empty(), "{}: tensor '{}' names no layer", source, key);
}

LoraModule load_lora_module(const std::string& dir) {
  check(fs::is_directory(dir), "{}: not an adapter directory", dir);
  const HfConfig config = HfConfig::load((fs::path(dir) / "adapter_config.json").string());
  refuse_patterns(config);
  LoraModule m;
  m.path = dir;
  m.base_model = config.get_string_or("base_model_name_or_path", "");
  m.rank = config.get_int("r");
  check(m.rank > 0, "{}: 'r' must be positive, got {}", config.source(), m.rank);
  m.alpha = config.get_double("lora_alpha");
  m.rslora = config.get_bool_or("use_rslora", false);
  m.scale = static_cast<float>(m.rslora ? m.alpha / std::sqrt(static_cast<double>(m.rank))
                                        : m.alpha / static_cast<double>(m.rank));
  m.target_modules = target_modules_of(config);
  m.config_json = config.json().dump(2);

  const std::string file = adapter_weights_file(dir);
  const StateDict dict = load_state_dict_file(file);
  check(!dict.empty(), "{}: the adapter holds no tensors", file);
  for (const std::string& key : dict.names()) {
    LoraTensor t;
    t.key = key;
    parse_lora_key(key, file, t.layer, t.is_a);
    const Tensor& tensor = dict.get(key);
    check(tensor.shape.size() == 2, "{}: tensor '{}' has shape {}, expected 2 dimensions", file,
          key, shape_str(tensor.shape));
    const int64_t rank_dim = t.is_a ? tensor.shape[0] : tensor.shape[1];
    check(rank_dim == m.rank, "{}: tensor '{}' has shape {} but r = {}", file, key,
          shape_str(tensor.shape), m.rank);
    t.shape = tensor.shape;
    t.values = tensor.to_f32();
    for (float v : t.values) check(std::isfinite(v), "{}: tensor '{}' holds NaN or inf", file, key);
    m.tensors.push_back(std::move(t));
  }
  // Sorted by key, so that files listing the same tensors in another order still line up.
  std::sort(m.tensors.begin(), m.tensors.end(),
            [](const LoraTensor& a, const LoraTensor& b) { return a.key < b.key; });
  return m;
}

void check_compatible(const LoraModule& first, const LoraModule& other) {
  const std::string& name = other.path;
  check(other.base_model == first.base_model,
        "module {} is for base model '{}', but {} is for '{}'", name, other.base_model, first.path,
        first.base_model);
  check(other.rank == first.rank, "module {} has rank {}, but {} has rank {}", name, other.rank,
        first.path, first.rank);
  check(other.scale == first.scale, "module {} has scaling {} (lora_alpha {}), but {} has {}", name,
        other.scale, other.alpha, first.path, first.scale);
  check(other.target_modules == first.target_modules, "module {} targets different modules than {}",
        name, first.path);
  const size_t n = std::min(first.tensors.size(), other.tensors.size());
  for (size_t i = 0; i < n; ++i) {
    const LoraTensor& a = first.tensors[i];
    const LoraTensor& b = other.tensors[i];
    check(a.key == b.key, "module {}: key '{}' differs from '{}' in {}", name, b.key, a.key,
          first.path);
    check(a.shape == b.shape, "module {}: key '{}' has shape {}, but {} in {}", name, b.key,
          shape_str(b.shape), shape_str(a.shape), first.path);
  }
  if (first.tensors.size() != other.tensors.size()) {
    const bool longer = other.tensors.size() > first.tensors.size();
    const std::string& key = (longer ? other : first).tensors[n].key;
    fail("module {}: key '{}' is {} (it has {} tensors, {} has {})", name, key,
         longer ? "extra" : "missing", other.tensors.size(), first.path, first.tensors.size());
  }
}

ModuleSet ModuleSet::from_modules(std::vector<LoraModule> modules) {
  check(!modules.empty(), "no LoRA modules given (use --lora DIR... or --lora-list FILE)");
  for (size_t i = 1; i < modules.size(); ++i) check_compatible(modules[0], modules[i]);
  ModuleSet set;
  set.modules_ = std::move(modules);
  return set;
}

ModuleSet ModuleSet::load(const std::vector<std::string>& dirs) {
  check(!dirs.empty(), "no LoRA modules given (use --lora DIR... or --lora-list FILE)");
  std::vector<LoraModule> modules;
  for (const std::string& dir : dirs) {
    modules.push_back(load_lora_module(dir));
    // Check as we go, so that a bad module is named before the rest are read.
    if (modules.size() > 1) check_compatible(modules[0], modules.back());
  }
  return from_modules(std::move(modules));
}

std::vector<std::string> ModuleSet::paths() const {
  std::vector<std::string> out;
  for (const LoraModule& m : modules_) out.push_back(m.path);
  return out;
}

std::vector<std::string> read_module_list(const std::string& list_file) {
  const std::string text = read_text_file(list_file);
  const fs::path base = fs::path(list_file).parent_path();
  std::vector<std::string> paths;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
    const fs::path p(line);
    paths.push_back(p.is_absolute() ? p.string() : (base / p).lexically_normal().string());
  }
  check(!paths.empty(), "{}: the module list names no modules", list_file);
  return paths;
}

std::vector<std::string> sample_modules(const std::vector<std::string>& paths, size_t k,
                                        uint64_t seed) {
  if (k == 0 || k >= paths.size()) return paths;
  std::vector<size_t> index(paths.size());
  for (size_t i = 0; i < index.size(); ++i) index[i] = i;
  std::mt19937_64 rng(seed);
  // Partial Fisher-Yates: the first k positions are a uniform sample without replacement.
  for (size_t i = 0; i < k; ++i) {
    std::uniform_int_distribution<size_t> pick(i, index.size() - 1);
    std::swap(index[i], index[pick(rng)]);
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < k; ++i) out.push_back(paths[index[i]]);
  return out;
}

}  // namespace lorahub
