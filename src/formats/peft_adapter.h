// PEFT LoRA adapter directories: adapter_config.json + adapter_model.safetensors (or the legacy
// adapter_model.bin). Tensor keys are "base_model.model.<module>.lora_A.weight" [r, in] and
// "...lora_B.weight" [out, r]; PEFT applies y = W x + scaling * B (A x) with
// scaling = alpha / r (alpha / sqrt(r) with use_rslora), r and alpha per module from
// rank_pattern / alpha_pattern when those match.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "formats/state_dict.h"

namespace lorahub {

// rank_pattern / alpha_pattern: regex key -> value, in the order the file lists them.
template <typename Value>
struct PatternMap : std::vector<std::pair<std::string, Value>> {
  using std::vector<std::pair<std::string, Value>>::vector;
};

// As a JSON object, the way PEFT writes it.
template <typename Value>
void to_json(nlohmann::json& j, const PatternMap<Value>& patterns) {
  j = nlohmann::json::object();
  for (const auto& [key, value] : patterns) j[key] = value;
}

// Patterns and module names longer than this are refused: no real config comes close, and
// bounding both bounds the matching work (RE2 is linear in the name, and its memory is capped).
inline constexpr size_t kMaxPatternLength = 1024;
inline constexpr size_t kMaxModuleNameLength = 1024;

// PEFT's get_pattern_key: whether re.match(rf"(.*\.)?({pattern})$", module) matches. Runs on
// RE2 (linear time, no recursion), so a hostile pattern cannot backtrack or overflow the stack;
// patterns RE2 cannot express (backreferences, lookaround) are refused when a config is parsed.
bool peft_pattern_matches(const std::string& pattern, const std::string& module);

struct AdapterConfig {
  int64_t r = 8;
  double lora_alpha = 8;
  // PEFT accepts a list of module-name suffixes or one regex (matched against the full name).
  std::vector<std::string> target_modules;
  std::string target_modules_regex;  // set instead of target_modules when the file has a string
  bool fan_in_fan_out = false;
  bool use_rslora = false;
  std::string base_model_name_or_path;
  std::string task_type;  // e.g. "SEQ_2_SEQ_LM", "CAUSAL_LM"; may be empty
  std::string peft_type = "LORA";
  std::string bias = "none";
  std::vector<std::string> modules_to_save;
  // regex key -> r / alpha, in the file's order: PEFT takes the first key that matches.
  PatternMap<int64_t> rank_pattern;
  PatternMap<double> alpha_pattern;
  // The file as read, so that fields we do not model (lora_dropout, revision, ...) survive a
  // load/save round trip. Empty for configs built in code.
  nlohmann::json raw = nlohmann::json::object();

  // r and alpha for one module ("encoder.block.0.layer.0.SelfAttention.q"), as PEFT picks them.
  int64_t rank_for(const std::string& module) const;
  double alpha_for(const std::string& module) const;
  double scaling_for(const std::string& module) const;
};

// Parses adapter_config.json text; `source` names the file in errors. Throws for a missing or
// ill-typed `r`, a non-LoRA peft_type, DoRA, and other things we would apply wrongly.
AdapterConfig parse_adapter_config(const std::string& text, const std::string& source);
std::string adapter_config_to_json(const AdapterConfig& config);  // what PEFT reads

// One adapted linear layer.
struct LoraTarget {
  std::string module;  // model path without PEFT's "base_model.model." prefix
  Tensor a;            // [r, in]
  Tensor b;            // [out, r]
  double scaling = 1;
};

struct PeftAdapter {
  std::string dir;
  AdapterConfig config;
  StateDict weights;                // every tensor of the file, keys as stored
  std::vector<LoraTarget> targets;  // the lora_A/lora_B pairs, in file order
};

// Throws naming the directory/file for: no adapter_config.json, no weights file, a lora_A
// without its lora_B (or the reverse), shapes that disagree with each other or with r.
PeftAdapter load_peft_adapter(const std::string& dir);

// Writes adapter_config.json and adapter_model.safetensors (creating `dir`); PEFT's
// PeftModel.from_pretrained loads the result unchanged.
void save_peft_adapter(const std::string& dir, const AdapterConfig& config,
                       const StateDict& weights);

}  // namespace lorahub
