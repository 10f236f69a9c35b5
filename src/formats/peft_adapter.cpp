#include "formats/peft_adapter.h"

#include <re2/re2.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/utf8.h"
#include "formats/hf_config.h"
#include "formats/json.h"
#include "formats/safetensors.h"

namespace lorahub {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPeftPrefix = "base_model.model.";
constexpr std::string_view kSuffixA = ".lora_A.weight";
constexpr std::string_view kSuffixB = ".lora_B.weight";

// RE2 with Python re's defaults where they differ from RE2's ('.' never matches a newline in
// both); memory per compiled pattern is capped, so a pattern that explodes fails to compile.
RE2::Options python_like_options() {
  RE2::Options o;
  o.set_log_errors(false);
  o.set_max_mem(8 << 20);
  return o;
}

// re.match(rf"(.*\.)?({key})$", name) as a full match ($ before a final newline aside: module
// names have none).
std::string full_match_form(const std::string& pattern) {
  return "(.*\\.)?(" + pattern + ")";
}

// The full-match form of a PEFT key, compiled once per process (configs repeat their keys for
// every module). A bounded cache: a hostile stream of distinct patterns cannot grow it forever.
std::shared_ptr<const RE2> compiled_key(const std::string& pattern) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::shared_ptr<const RE2>> cache;
  std::lock_guard lock(mutex);
  if (auto it = cache.find(pattern); it != cache.end()) return it->second;
  if (cache.size() >= 1024) cache.clear();
  auto re = std::make_shared<const RE2>(full_match_form(pattern), python_like_options());
  cache.emplace(pattern, re);
  return re;
}

// Refuses what RE2 cannot run or what could never be a real module pattern.
void check_pattern(const std::string& pattern, const std::string& source, std::string_view key) {
  check(pattern.size() <= kMaxPatternLength, "{}: {} key '{}...' is longer than {} bytes", source,
        key, truncate_utf8(pattern, 60), kMaxPatternLength);
  const auto re = compiled_key(pattern);
  check(re->ok(),
        "{}: {} key '{}' is an invalid regular expression (RE2 syntax: no lookaround or "
        "backreferences): {}",
        source, key, truncate_utf8(pattern, 200), re->error());
}

template <typename Value>
const Value* match_pattern(const PatternMap<Value>& patterns, const std::string& module) {
  for (const auto& [pattern, value] : patterns)
    if (peft_pattern_matches(pattern, module)) return &value;
  return nullptr;
}

// The object `key` of adapter_config.json in the file's order (HfConfig's JSON sorts keys, and
// PEFT takes the first matching key of the dict as written).
template <typename Value, typename Getter>
PatternMap<Value> parse_pattern(const HfConfig& c, const std::string& text, const std::string& key,
                                Getter&& get) {
  PatternMap<Value> out;
  if (!c.has(key)) return out;
  const auto& obj = c.json().at(key);
  check(obj.is_object(), "{}: field '{}' must be an object, got {}", c.source(), key,
        obj.type_name());
  const auto ordered = nlohmann::ordered_json::parse(text).at(key);  // valid: parsed before
  for (const auto& [pattern, value] : ordered.items()) {
    check_pattern(pattern, c.source(), key);
    out.emplace_back(pattern,
                     get(value, fmt::format("{}['{}']", key, truncate_utf8(pattern, 200))));
  }
  return out;
}

void parse_target_modules(const HfConfig& c, AdapterConfig& a) {
  if (!c.has("target_modules")) return;  // PEFT then picks defaults by model type
  if (c.json().at("target_modules").is_string()) {
    a.target_modules_regex = c.get_string("target_modules");
    check_pattern(a.target_modules_regex, c.source(), "target_modules");
  } else {
    a.target_modules = c.get_string_list("target_modules");
  }
}

std::string strip_prefix(std::string_view key) {
  if (key.starts_with(kPeftPrefix)) key.remove_prefix(kPeftPrefix.size());
  return std::string(key);
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
      check(is_float_dtype(tensor->dtype), "{}: {} of '{}' has non-float dtype {}", source, label,
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

bool peft_pattern_matches(const std::string& pattern, const std::string& module) {
  check(module.size() <= kMaxModuleNameLength, "module name '{}...' is longer than {} bytes",
        truncate_utf8(module, 60), kMaxModuleNameLength);
  const auto re = compiled_key(pattern);
  check(re->ok(), "pattern '{}' is an invalid regular expression: {}", truncate_utf8(pattern, 200),
        re->error());
  return RE2::FullMatch(module, *re);
}

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
  a.rank_pattern =
      parse_pattern<int64_t>(c, text, "rank_pattern", [&](const auto& v, const auto& w) {
        check(v.is_number_integer() && v.template get<int64_t>() > 0,
              "{}: {} must be a positive integer", source, w);
        return v.template get<int64_t>();
      });
  a.alpha_pattern =
      parse_pattern<double>(c, text, "alpha_pattern", [&](const auto& v, const auto& w) {
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
