// The pool of LoRA modules LoraHub composes: N PEFT adapters for the same base model with
// identical tensor keys and shapes (DESIGN §1.1). Loaded once, kept as f32, tensors sorted by key.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/peft_adapter.h"
#include "formats/state_dict.h"

namespace lorahub {

// One tensor of an adapter, by its PEFT key: "base_model.model.<layer>.lora_A.weight" [r, in]
// or "...lora_B.weight" [out, r].
struct LoraTensor {
  std::string key;
  std::string layer;  // "<layer>": the LoraMap key (models/lora_delta.h)
  bool is_a = true;   // lora_A (true) or lora_B (false)
  Shape shape;
  float scale = 1.0f;  // the layer's scaling (alpha / r, or alpha / sqrt(r) with rslora)
  std::vector<float> values;
  // With the bf16 fast path the values are held here instead (and `values` is empty): a pool of
  // 20 FLAN-T5-large modules is 377 MB in f32, more than the base model's activations.
  std::vector<uint16_t> bf16;

  // The values as f32, however they are held.
  std::vector<float> f32() const;
};

struct LoraModule {
  std::string path;                 // the adapter directory
  AdapterConfig config;             // as read; written back with the composed adapter
  std::vector<LoraTensor> tensors;  // sorted by key
};

// Loads one module as f32 tensors: a PEFT adapter directory (formats/peft_adapter.h) or, for a
// path ending in .gguf, a llama.cpp GGUF LoRA (lora/gguf_lora.h; base_model as there). Throws
// Error naming the file and key for tensors that are not LoRA A/B weights (biases,
// modules_to_save) and for NaN/inf values.
LoraModule load_lora_module(const std::string& path, const std::string& base_model = "");

// A module from A/B pairs read from `path` (any format), keyed as PEFT keys them; throws for
// NaN/inf values.
LoraModule make_lora_module(const std::string& path, AdapterConfig config,
                            const std::vector<LoraTarget>& targets);

// A module's tensors in PEFT's layout, for save_peft_adapter.
StateDict module_state_dict(const LoraModule& module);

class ModuleSet {
 public:
  // Loads every module (load_lora_module, with base_model for GGUF LoRAs) and validates the
  // set; throws Error for zero modules, or naming the first module (and key) that differs from
  // the first one in base model, rank, scaling, target modules, keys or shapes.
  // bf16: hold the tensors as bf16 (the bf16 fast path; values rounded as torch's
  // .to(bfloat16)), f32 otherwise.
  static ModuleSet load(const std::vector<std::string>& paths, bool bf16 = false,
                        const std::string& base_model = "");
  // From modules already in memory (tests); validates the same way.
  static ModuleSet from_modules(std::vector<LoraModule> modules, bool bf16 = false);

  size_t size() const { return modules_.size(); }
  const LoraModule& operator[](size_t i) const { return modules_.at(i); }
  const std::vector<LoraModule>& modules() const { return modules_; }
  std::vector<std::string> paths() const;

 private:
  std::vector<LoraModule> modules_;
};

// Throws Error naming `other` and the first thing in which it differs from `first`.
void check_compatible(const LoraModule& first, const LoraModule& other);

// Reads a --lora-list file: one adapter directory (or GGUF LoRA file) per line; blank lines and
// lines starting with '#' are skipped; relative paths are relative to the list file's folder.
std::vector<std::string> read_module_list(const std::string& list_file);

// How --sample draws modules for a seed.
//   kFisherYates: a partial Fisher-Yates shuffle on std::mt19937_64 with the standard
//                 library's uniform_int_distribution (fixed for libstdc++ builds; the default,
//                 and the draw behind the results cached by earlier runs).
//   kPython:      CPython's random.seed(seed); random.sample(paths, k), as the reference's
//                 reproduce_bbh.py draws: with the reference's module order, the same modules.
enum class SampleRule { kFisherYates, kPython };

// "fisher-yates" or "python"; throws naming the option otherwise.
SampleRule parse_sample_rule(const std::string& name);

// Draws k of the paths without replacement, deterministically for the seed and rule
// (k == 0 or k >= size keeps all, in order).
std::vector<std::string> sample_modules(const std::vector<std::string>& paths, size_t k,
                                        uint64_t seed, SampleRule rule = SampleRule::kFisherYates);

}  // namespace lorahub

namespace lorahub {

// The modules a command works on: the --lora directories plus those of the --lora-list file,
// then, with sample > 0, `sample` of them drawn with the seed (as reproduce_bbh.py draws 20).
std::vector<std::string> select_modules(const std::vector<std::string>& dirs,
                                        const std::string& list_file, size_t sample, uint64_t seed,
                                        SampleRule rule = SampleRule::kFisherYates);

}  // namespace lorahub
