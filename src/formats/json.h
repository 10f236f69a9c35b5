// Parsing JSON from files we do not trust (safetensors headers, config.json, adapter_config.json,
// sharded-weight indexes). One place that bounds nesting and turns parse errors into Error.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace lorahub {

// Deeper nesting than this is refused before parsing: no real config comes close, and a hostile
// "[[[[..." should get a clear error rather than deep recursion somewhere downstream.
inline constexpr int kMaxJsonDepth = 64;

// Parses `text`; throws Error "<source>: invalid JSON: ..." (or "... nested deeper than ...").
nlohmann::json parse_json(std::string_view text, const std::string& source);

// Short description of a JSON value's type for error messages: "string", "array", ...
std::string json_type_name(const nlohmann::json& value);

}  // namespace lorahub
