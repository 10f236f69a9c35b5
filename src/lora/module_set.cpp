#include "lora/module_set.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/half.h"
#include "core/mapped_file.h"
#include "core/python_random.h"
#include "lora/gguf_lora.h"

namespace lorahub {
namespace fs = std::filesystem;

LoraModule make_lora_module(const std::string& path, AdapterConfig config,
                            const std::vector<LoraTarget>& targets) {
  LoraModule m;
  m.path = path;
  m.config = std::move(config);
  for (const LoraTarget& target : targets) {
    for (const bool is_a : {true, false}) {
      LoraTensor t;
      t.key = fmt::format("base_model.model.{}.lora_{}.weight", target.module, is_a ? "A" : "B");
      t.layer = target.module;
      t.is_a = is_a;
      const Tensor& tensor = is_a ? target.a : target.b;
      t.shape = tensor.shape;
      t.scale = static_cast<float>(target.scaling);
      t.values = tensor.to_f32();
      for (float v : t.values)
        check(std::isfinite(v), "{}: tensor '{}' holds NaN or inf", path, t.key);
      m.tensors.push_back(std::move(t));
    }
  }
  // Sorted by key, so that files listing the same tensors in another order still line up.
  std::sort(m.tensors.begin(), m.tensors.end(),
            [](const LoraTensor& a, const LoraTensor& b) { return a.key < b.key; });
  return m;
}

LoraModule load_lora_module(const std::string& path, const std::string& base_model) {
  if (is_gguf_lora_path(path)) return load_gguf_lora(path, base_model);
  const PeftAdapter adapter = load_peft_adapter(path);
  const std::string& file = adapter.weights.source();
  check(!adapter.targets.empty(), "{}: the adapter holds no LoRA tensors", file);
  check(adapter.weights.size() == 2 * adapter.targets.size(),
        "{}: the adapter holds {} tensors besides its {} LoRA A/B pairs (biases or "
        "modules_to_save are not supported)",
        file, adapter.weights.size() - 2 * adapter.targets.size(), adapter.targets.size());
  LoraModule m = make_lora_module(file, adapter.config, adapter.targets);
  m.path = path;
  return m;
}

StateDict module_state_dict(const LoraModule& module) {
  StateDict dict(module.path);
  for (const LoraTensor& t : module.tensors) dict.add(t.key, Tensor::from_f32(t.f32(), t.shape));
  return dict;
}

namespace {

std::string targets_of(const AdapterConfig& c) {
  if (!c.target_modules_regex.empty()) return c.target_modules_regex;
  std::vector<std::string> sorted = c.target_modules;
  std::sort(sorted.begin(), sorted.end());
  return fmt::format("{}", fmt::join(sorted, ","));
}

}  // namespace

void check_compatible(const LoraModule& first, const LoraModule& other) {
  const std::string& name = other.path;
  const AdapterConfig &f = first.config, &o = other.config;
  // An adapter that names no base (a GGUF LoRA) goes with any.
  check(o.base_model_name_or_path == f.base_model_name_or_path ||
            o.base_model_name_or_path.empty() || f.base_model_name_or_path.empty(),
        "module {} is for base model '{}', but {} is for '{}'", name, o.base_model_name_or_path,
        first.path, f.base_model_name_or_path);
  check(o.r == f.r, "module {} has rank {}, but {} has rank {}", name, o.r, first.path, f.r);
  check(targets_of(o) == targets_of(f), "module {} targets modules [{}], but {} targets [{}]", name,
        targets_of(o), first.path, targets_of(f));
  const size_t n = std::min(first.tensors.size(), other.tensors.size());
  for (size_t i = 0; i < n; ++i) {
    const LoraTensor& a = first.tensors[i];
    const LoraTensor& b = other.tensors[i];
    check(a.key == b.key, "module {}: key '{}' differs from '{}' in {}", name, b.key, a.key,
          first.path);
    check(a.shape == b.shape, "module {}: key '{}' has shape {}, but {} in {}", name, b.key,
          shape_str(b.shape), shape_str(a.shape), first.path);
    check(a.scale == b.scale, "module {}: key '{}' has scaling {}, but {} in {}", name, b.key,
          b.scale, a.scale, first.path);
  }
  if (first.tensors.size() != other.tensors.size()) {
    const bool longer = other.tensors.size() > first.tensors.size();
    const std::string& key = (longer ? other : first).tensors[n].key;
    fail("module {}: key '{}' is {} (it has {} tensors, {} has {})", name, key,
         longer ? "extra" : "missing", other.tensors.size(), first.path, first.tensors.size());
  }
}

std::vector<float> LoraTensor::f32() const {
  return bf16.empty() ? values : widen_bf16(bf16);
}

namespace {
void hold_as_bf16(LoraModule& module) {
  for (LoraTensor& t : module.tensors) t.bf16 = take_as_bf16(t.values);
}
}  // namespace

ModuleSet ModuleSet::from_modules(std::vector<LoraModule> modules, bool bf16) {
  check(!modules.empty(), "no LoRA modules given");
  for (size_t i = 1; i < modules.size(); ++i) check_compatible(modules[0], modules[i]);
  if (bf16)
    for (LoraModule& m : modules) hold_as_bf16(m);
  ModuleSet set;
  set.modules_ = std::move(modules);
  return set;
}

ModuleSet ModuleSet::load(const std::vector<std::string>& paths, bool bf16,
                          const std::string& base_model) {
  check(!paths.empty(), "no LoRA modules given");
  std::vector<LoraModule> modules;
  for (const std::string& path : paths) {
    modules.push_back(load_lora_module(path, base_model));
    if (bf16) hold_as_bf16(modules.back());  // as we go: the f32 pool is never all in memory
    // Check as we go, so that a bad module is named before the rest are read.
    if (modules.size() > 1) check_compatible(modules[0], modules.back());
  }
  return from_modules(std::move(modules));  // already bf16 when asked
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

SampleRule parse_sample_rule(const std::string& name) {
  if (name == "fisher-yates") return SampleRule::kFisherYates;
  if (name == "python") return SampleRule::kPython;
  throw Error(fmt::format("sampler '{}' is not fisher-yates or python", name));
}

std::vector<std::string> sample_modules(const std::vector<std::string>& paths, size_t k,
                                        uint64_t seed, SampleRule rule) {
  if (k == 0 || k >= paths.size()) return paths;
  std::vector<std::string> out;
  if (rule == SampleRule::kPython) {
    for (size_t i : PythonRandom(seed).sample(paths.size(), k)) out.push_back(paths[i]);
    return out;
  }
  std::vector<size_t> index(paths.size());
  for (size_t i = 0; i < index.size(); ++i) index[i] = i;
  std::mt19937_64 rng(seed);
  // Partial Fisher-Yates: the first k positions are a uniform sample without replacement.
  for (size_t i = 0; i < k; ++i) {
    std::uniform_int_distribution<size_t> pick(i, index.size() - 1);
    std::swap(index[i], index[pick(rng)]);
  }
  for (size_t i = 0; i < k; ++i) out.push_back(paths[index[i]]);
  return out;
}

}  // namespace lorahub

namespace lorahub {

std::vector<std::string> select_modules(const std::vector<std::string>& dirs,
                                        const std::string& list_file, size_t sample, uint64_t seed,
                                        SampleRule rule) {
  std::vector<std::string> paths = dirs;
  if (!list_file.empty()) {
    const std::vector<std::string> listed = read_module_list(list_file);
    paths.insert(paths.end(), listed.begin(), listed.end());
  }
  check(!paths.empty(), "no LoRA modules given");
  return sample_modules(paths, sample, seed, rule);
}

}  // namespace lorahub
