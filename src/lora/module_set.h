// The pool of LoRA modules LoraHub composes: N PEFT adapters for the same base model with
// identical tensor keys and shapes (DESIGN §1.1). Loaded once, kept as f32, tensors sorted by key.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace lorahub {

// One tensor of an adapter, by its PEFT key: "base_model.model.<layer>.lora_A.weight" [r, in]
// or "...lora_B.weight" [out, r].
struct LoraTensor {
  std::string key;
  std::string layer;  // "<layer>": the LoraMap key (models/lora_delta.h)
  bool is_a = true;   // lora_A (true) or lora_B (false)
  Shape shape;
  std::vector<float> values;
};

struct LoraModule {
  std::string path;        // the adapter directory
  std::string base_model;  // base_model_name_or_path ("" when unset)
  int64_t rank = 0;
  double alpha = 0;
  bool rslora = false;
  float scale = 1.0f;                       // alpha / r, or alpha / sqrt(r) with rslora
  std::vector<std::string> target_modules;  // sorted
  std::string config_json;                  // adapter_config.json as read, for export
  std::vector<LoraTensor> tensors;          // sorted by key
};

// Splits a PEFT key into layer and A/B; throws Error naming `source` and the key for anything
// that is not a plain LoRA A/B weight (biases, modules_to_save, DoRA magnitudes...).
void parse_lora_key(const std::string& key, const std::string& source, std::string& layer,
                    bool& is_a);

// Loads one PEFT adapter directory (adapter_config.json + adapter_model.safetensors or .bin).
LoraModule load_lora_module(const std::string& dir);

class ModuleSet {
 public:
  // Loads every directory and validates the set; throws Error for zero modules, or naming the
  // first module (and key) that differs from the first one in base model, rank, scaling,
  // target modules, keys or shapes.
  static ModuleSet load(const std::vector<std::string>& dirs);
  // From modules already in memory (tests); validates the same way.
  static ModuleSet from_modules(std::vector<LoraModule> modules);

  size_t size() const { return modules_.size(); }
  const LoraModule& operator[](size_t i) const { return modules_.at(i); }
  const std::vector<LoraModule>& modules() const { return modules_; }
  std::vector<std::string> paths() const;

 private:
  std::vector<LoraModule> modules_;
};

// Throws Error naming `other` and the first thing in which it differs from `first`.
void check_compatible(const LoraModule& first, const LoraModule& other);

// Reads a --lora-list file: one adapter directory per line; blank lines and lines starting
// with '#' are skipped; relative paths are relative to the list file's folder.
std::vector<std::string> read_module_list(const std::string& list_file);

// Draws k of the paths without replacement, deterministically for the seed (k >= size keeps
// all, in order). The reference's reproduce_bbh.py draws with Python's random.sample; we use
// our own generator, so the same seed draws a different but equally random subset.
std::vector<std::string> sample_modules(const std::vector<std::string>& paths, size_t k,
                                        uint64_t seed);

}  // namespace lorahub
