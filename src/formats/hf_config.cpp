#include "formats/hf_config.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/utf8.h"
#include "formats/json.h"

namespace lorahub {

HfConfig HfConfig::load(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "config.json");
  return parse(read_text_file(file), file);
}

HfConfig HfConfig::parse(const std::string& text, const std::string& source) {
  HfConfig c;
  c.source_ = source;
  c.json_ = parse_json(text, source);
  check(c.json_.is_object(), "{}: must hold a JSON object, got {}", source,
        json_type_name(c.json_));
  return c;
}

bool HfConfig::has(const std::string& key) const {
  const auto it = json_.find(key);
  return it != json_.end() && !it->is_null();
}

const nlohmann::json& HfConfig::require(const std::string& key) const {
  check(has(key), "{}: missing field '{}'", source_, key);
  return json_.at(key);
}

void HfConfig::wrong_type(const std::string& key, const char* expected) const {
  const auto& v = json_.at(key);
  fail("{}: field '{}' must be {}, got {} {}", source_, key, expected, json_type_name(v),
       truncate_utf8(v.dump(), 80));
}

int64_t HfConfig::get_int(const std::string& key) const {
  const auto& v = require(key);
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) wrong_type(key, "a 64-bit integer");
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    // 2^63 is exactly representable; anything at or past it does not fit.
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2233720368547758e18)
      return static_cast<int64_t>(d);
  }
  wrong_type(key, "an integer");
}

double HfConfig::get_double(const std::string& key) const {
  const auto& v = require(key);
  if (!v.is_number()) wrong_type(key, "a number");
  return v.get<double>();
}

bool HfConfig::get_bool(const std::string& key) const {
  const auto& v = require(key);
  if (!v.is_boolean()) wrong_type(key, "true or false");
  return v.get<bool>();
}

std::string HfConfig::get_string(const std::string& key) const {
  const auto& v = require(key);
  if (!v.is_string()) wrong_type(key, "a string");
  return v.get<std::string>();
}

std::vector<std::string> HfConfig::get_string_list(const std::string& key) const {
  const auto& v = require(key);
  if (!v.is_array()) wrong_type(key, "a list of strings");
  std::vector<std::string> out;
  for (const auto& item : v) {
    if (!item.is_string()) wrong_type(key, "a list of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

int64_t HfConfig::get_int_or(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}
double HfConfig::get_double_or(const std::string& key, double fallback) const {
  return has(key) ? get_double(key) : fallback;
}
bool HfConfig::get_bool_or(const std::string& key, bool fallback) const {
  return has(key) ? get_bool(key) : fallback;
}
std::string HfConfig::get_string_or(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

}  // namespace lorahub
