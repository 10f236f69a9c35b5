// A Hugging Face style JSON config (config.json, adapter_config.json, generation_config.json)
// with typed getters. Every getter names the file and the field when the field is missing or
// has the wrong type, so a model loader can just ask for what it needs.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lorahub {

class HfConfig {
 public:
  // `path` is the JSON file itself, or a directory holding config.json.
  static HfConfig load(const std::string& path);
  // From text; `source` names it in errors (usually the file path).
  static HfConfig parse(const std::string& text, const std::string& source);

  const std::string& source() const { return source_; }
  const nlohmann::json& json() const { return json_; }

  // True when the field is present and not null (HF writes unset options as null).
  bool has(const std::string& key) const;

  // Required fields: throw "<file>: missing field 'key'" or "<file>: field 'key' must be ...".
  int64_t get_int(const std::string& key) const;  // integral floats such as 16.0 are accepted
  double get_double(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::vector<std::string> get_string_list(const std::string& key) const;

  // Optional fields: the default when absent or null, an error when present with a wrong type.
  int64_t get_int_or(const std::string& key, int64_t fallback) const;
  double get_double_or(const std::string& key, double fallback) const;
  bool get_bool_or(const std::string& key, bool fallback) const;
  std::string get_string_or(const std::string& key, const std::string& fallback) const;

 private:
  const nlohmann::json& require(const std::string& key) const;
  [[noreturn]] void wrong_type(const std::string& key, const char* expected) const;

  std::string source_;
  nlohmann::json json_;
};

}  // namespace lorahub
