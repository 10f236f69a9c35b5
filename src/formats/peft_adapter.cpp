#include "formats/peft_adapter.h"

#include <cmath>
#include <filesystem>
#include <regex>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"

namespace lorahub {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPeftPrefix = "base_model.model.";
constexpr std::string_view kSuffixA = ".lora_A.weight";
constexpr std::string_view kSuffixB = ".lora_B.weight";

std::regex compile_pattern(const std::string& pattern, const std::string& source) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    fail("{}: invalid regular expression '{}': {}", source, pattern, e.what());
  }
}

// PEFT's get_pattern_key: the first pattern p with re.match(rf"(.*\.)?({p})$", module).
template <typename Value>
const Value* match_pattern(const std::map<std::string, Value>& patterns,
                           const std::string& module) {
  for (const auto& [pattern, value] : patterns)
    if (std::regex_match(module, std::regex("(.*\\.)?(" + pattern + ")"))) return &value;
  return nullptr;
}

template <typename Value, typename Getter>
std::map<std::string, Value> parse_pattern(const HfConfig& c, const std::string& key,
                                           Getter&& get) {
  std::map<std::string, Value> out;
  if (!c.has(key)) return out;
  const auto& obj = c.json().at(key);
  check(obj.is_object(), "{}: field '{}' must be an object, got {}", c.source(), key,
        obj.type_name());
  for (const auto& [pattern, value] : obj.items()) {
    compile_pattern("(.*\\.)?(" + pattern + ")", c.source());
    out[pattern] = get(value, fmt::format("{}['{}']", key, pattern));
  }
  return out;
}

void parse_target_modules(const HfConfig& c, AdapterConfig& a) {
  if (!c.has("target_modules")) return;  // PEFT then picks defaults by model type
  if (c.json().at("target_modules").is_string()) {
    a.target_modules_regex = c.get_string("target_modules");
    compile_pattern(a.target_modules_regex, c.source());
  } else {
    a.target_modules = c.get_string_list("target_modules");
  }
}

std::string strip_prefix(std::string_view key) {
  if (key.starts_with(kPeftPrefix)) key.remove_prefix(kPeftPrefix.size());
  return std::string(key);
}

bool is_float(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64;
}

// Pairs every lora_A with its lora_B and checks shapes against each other and the config.
std::vector<LoraTarget> pair_lora_tensors(const StateDict& weights, const AdapterConfig& config,
                                          const std::string& source) {
  std::vector<LoraTarget> targets;
  for (const auto& name : weights.names()) {
    const bool is_a = name.ends_with(kSuffixA);
    if (!is_a && !name.ends_with(kSuffixB)) continue;
    const std::string stem = name.substr(0, name.size() - kSuffixA.size());
    const std::string other = fmt::format("{}{}", stem, is_a ? kSuffixB : kSuffixA);
    check(weights.contains(other), "{}: tensor '{}' has no matching '{}'", source, name, other);
    if (!is_a) continue;

    LoraTarget t{strip_prefix(stem), weights.get(name), weights.get(other), 1.0};
    const int64_t r = config.rank_for(t.module);
    for (const auto& [tensor, label] : {std::pair{&t.a, "lora_A"}, std::pair{&t.b, "lora_B"}}) {
      check(tensor->shape.size() == 2, "{}: {} of '{}' must be 2-D, got shape {}", source, label,
            t.module, shape_str(tensor->shape));
      check(is_float(tensor->dtype), "{}: {} of '{}' has non-float dtype {}", source, label,
            t.module, dtype_name(tensor->dtype));
    }
    check(t.a.dim(0) == r && t.b.dim(1) == r,
          "{}: '{}' has lora_A {} and lora_B {}, which disagree with r = {} in adapter_config.json",
          source, t.module, shape_str(t.a.shape), shape_str(t.b.shape), r);
    t.scaling = config.scaling_for(t.module);
    targets.push_back(std::move(t));
  }
  check(!targets.empty(), "{}: no lora_A/lora_B tensors", source);
  return targets;
}

std::string find_weights_file(const std::string& dir) {
  for (const char* name : {"adapter_model.safetensors", "adapter_model.bin"})
    if (fs::exists(fs::path(dir) / name)) return (fs::path(dir) / name).string();
  fail("{}: no adapter weights (adapter_model.safetensors or adapter_model.bin)", dir);
}

// JSON null for an empty string or list, as PEFT writes unset options.
template <typename T>
nlohmann::json or_null(const T& value) {
  return value.empty() ? nlohmann::json() : nlohmann::json(value);
}

}  // namespace

int64_t AdapterConfig::rank_for(const std::string& module) const {
  const int64_t* r = match_pattern(rank_pattern, module);
  return r ? *r : this->r;
}

double AdapterConfig::alpha_for(const std::string& module) const {
  const double* alpha = match_pattern(alpha_pattern, module);
  return alpha ? *alpha : lora_alpha;
}

double AdapterConfig::scaling_for(const std::string& module) const {
  const double r = static_cast<double>(rank_for(module));
  return alpha_for(module) / (use_rslora ? std::sqrt(r) : r);
}

AdapterConfig parse_adapter_config(const std::string& text, const std::string& source) {
  const HfConfig c = HfConfig::parse(text, source);
  AdapterConfig a;
  a.raw = c.json();
  a.peft_type = c.get_string_or("peft_type", "LORA");
  check(a.peft_type == "LORA", "{}: peft_type '{}' is not supported (only LORA)", source,
        a.peft_type);
  check(!c.get_bool_or("use_dora", false), "{}: DoRA adapters (use_dora) are not supported",
        source);
  a.r = c.get_int("r");
  check(a.r > 0, "{}: field 'r' must be positive, got {}", source, a.r);
  a.lora_alpha = c.get_double_or("lora_alpha", 8.0);  // PEFT's default
  parse_target_modules(c, a);
  a.fan_in_fan_out = c.get_bool_or("fan_in_fan_out", false);
  a.use_rslora = c.get_bool_or("use_rslora", false);
  a.base_model_name_or_path = c.get_string_or("base_model_name_or_path", "");
  a.task_type = c.get_string_or("task_type", "");
  a.bias = c.get_string_or("bias", "none");
  if (c.has("modules_to_save")) a.modules_to_save = c.get_string_list("modules_to_save");
  a.rank_pattern = parse_pattern<int64_t>(c, "rank_pattern", [&](const auto& v, const auto& w) {
    check(v.is_number_integer() && v.template get<int64_t>() > 0,
          "{}: {} must be a positive integer", source, w);
    return v.template get<int64_t>();
  });
  a.alpha_pattern = parse_pattern<double>(c, "alpha_pattern", [&](const auto& v, const auto& w) {
    check(v.is_number(), "{}: {} must be a number", source, w);
    return v.template get<double>();
  });
  return a;
}

std::string adapter_config_to_json(const AdapterConfig& a) {
  nlohmann::json j = a.raw.is_object() ? a.raw : nlohmann::json::object();
  j["peft_type"] = a.peft_type;
  j["r"] = a.r;
  if (a.lora_alpha == std::floor(a.lora_alpha) && std::fabs(a.lora_alpha) < 1e15)
    j["lora_alpha"] = static_cast<int64_t>(a.lora_alpha);  // PEFT declares it an int
  else
    j["lora_alpha"] = a.lora_alpha;
  j["target_modules"] = a.target_modules_regex.empty() ? or_null(a.target_modules)
                                                       : nlohmann::json(a.target_modules_regex);
  j["fan_in_fan_out"] = a.fan_in_fan_out;
  j["use_rslora"] = a.use_rslora;
  j["base_model_name_or_path"] = or_null(a.base_model_name_or_path);
  j["task_type"] = or_null(a.task_type);
  j["bias"] = a.bias;
  j["modules_to_save"] = or_null(a.modules_to_save);
  j["rank_pattern"] = a.rank_pattern;
  j["alpha_pattern"] = a.alpha_pattern;
  if (!j.contains("inference_mode")) j["inference_mode"] = true;
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

PeftAdapter load_peft_adapter(const std::string& dir) {
  check(fs::is_directory(dir), "{}: not a directory (expected a PEFT adapter directory)", dir);
  const std::string config_path = (fs::path(dir) / "adapter_config.json").string();
  check(fs::exists(config_path), "{}: no adapter_config.json (not a PEFT adapter directory)", dir);
  PeftAdapter adapter;
  adapter.dir = dir;
  adapter.config = parse_adapter_config(read_text_file(config_path), config_path);
  const std::string weights_path = find_weights_file(dir);
  adapter.weights = load_state_dict_file(weights_path);
  adapter.targets = pair_lora_tensors(adapter.weights, adapter.config, weights_path);
  return adapter;
}

void save_peft_adapter(const std::string& dir, const AdapterConfig& config,
                       const StateDict& weights) {
  check(!weights.empty(), "{}: refusing to save an adapter without tensors", dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec, "{}: cannot create directory: {}", dir, ec.message());
  write_file_atomic((fs::path(dir) / "adapter_config.json").string(),
                    adapter_config_to_json(config));
  save_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), weights,
                   {{"format", "pt"}});
}

}  // namespace lorahub
