#include "formats/module_embedding.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/utf8.h"

namespace lorahub {
namespace {

using nlohmann::json;

const json& member(const json& j, const char* key, json::value_t type, const char* what) {
  auto it = j.find(key);
  check(it != j.end(), "{}: missing field '{}'", kModuleEmbeddingFile, key);
  const bool ok =
      it->type() == type || (type == json::value_t::number_integer && it->is_number_unsigned());
  check(ok, "{}: '{}' must be {}", kModuleEmbeddingFile, key, what);
  return *it;
}

std::string text_member(const json& j, const char* key, size_t max_bytes) {
  std::string s = member(j, key, json::value_t::string, "a string").get<std::string>();
  check(is_valid_utf8(s), "{}: '{}' is not valid UTF-8", kModuleEmbeddingFile, key);
  check(!s.empty() && s.size() <= max_bytes, "{}: '{}' must have 1 to {} bytes",
        kModuleEmbeddingFile, key, max_bytes);
  return s;
}

std::vector<float> vector_member(const json& j) {
  const json& v = member(j, "vector", json::value_t::array, "a list of numbers");
  check(!v.empty() && v.size() <= kMaxModuleEmbeddingDim,
        "{}: 'vector' must have 1 to {} numbers, got {}", kModuleEmbeddingFile,
        kMaxModuleEmbeddingDim, v.size());
  std::vector<float> out;
  out.reserve(v.size());
  bool nonzero = false;
  for (const json& x : v) {
    check(x.is_number(), "{}: 'vector'[{}] is not a number", kModuleEmbeddingFile, out.size());
    const double d = x.get<double>();
    check(std::isfinite(d) && std::fabs(d) <= std::numeric_limits<float>::max(),
          "{}: 'vector'[{}] is not a finite f32 ({})", kModuleEmbeddingFile, out.size(), d);
    out.push_back(static_cast<float>(d));
    nonzero = nonzero || out.back() != 0.0f;
  }
  check(nonzero, "{}: 'vector' is all zeros (no direction to compare)", kModuleEmbeddingFile);
  return out;
}

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

ModuleEmbedding parse_module_embedding(std::string_view text) {
  check(text.size() <= kMaxModuleEmbeddingBytes, "{}: {} bytes, more than the {} allowed",
        kModuleEmbeddingFile, text.size(), kMaxModuleEmbeddingBytes);
  check(is_valid_utf8(text), "{}: not valid UTF-8", kModuleEmbeddingFile);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", kModuleEmbeddingFile, e.what());
  }
  check(j.is_object(), "{}: expected a JSON object", kModuleEmbeddingFile);
  const std::string format = text_member(j, "format", 100);
  check(format == kModuleEmbeddingFormat, "{}: unknown format '{}' (expected {})",
        kModuleEmbeddingFile, truncate_utf8(format, 60), kModuleEmbeddingFormat);
  ModuleEmbedding e;
  e.method = text_member(j, "method", 100);
  check(e.method == kModuleEmbeddingMethod, "{}: unknown method '{}' (expected {})",
        kModuleEmbeddingFile, truncate_utf8(e.method, 60), kModuleEmbeddingMethod);
  e.base_model = text_member(j, "base_model", 4000);
  e.model_sha256 = text_member(j, "model_sha256", 64);
  check(is_hex64(e.model_sha256), "{}: 'model_sha256' must be 64 lower-case hex digits",
        kModuleEmbeddingFile);
  e.engine = text_member(j, "engine", 100);
  e.examples =
      member(j, "examples", json::value_t::number_integer, "a whole number").get<int64_t>();
  check(e.examples >= 1 && e.examples <= 1000000, "{}: 'examples' must be in [1, 1000000]",
        kModuleEmbeddingFile);
  e.vector = vector_member(j);
  return e;
}

std::string module_embedding_json(const ModuleEmbedding& e) {
  json vector = json::array();
  for (float x : e.vector) vector.push_back(static_cast<double>(x));  // exact; parses back to x
  const json j = {{"format", kModuleEmbeddingFormat},
                  {"method", e.method},
                  {"examples", e.examples},
                  {"base_model", e.base_model},
                  {"model_sha256", e.model_sha256},
                  {"engine", e.engine},
                  {"vector", vector}};
  return j.dump() + "\n";
}

}  // namespace lorahub
