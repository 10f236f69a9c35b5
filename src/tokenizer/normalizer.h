// The normalizers of HF `tokenizer.json` ("normalizer"), applied to the text between added
// tokens before pre-tokenization: Unicode forms (NFC, NFD, NFKC, NFKD, via libutf8proc),
// Lowercase, Replace (string or regex), Prepend, Strip, Sequence; null is the identity.
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lorahub {

class Regex;

class Normalizer {
 public:
  // `j` is the "normalizer" value (null allowed); throws Error naming `where` and the type for
  // unsupported normalizers (BertNormalizer, Precompiled, ...).
  static Normalizer from_json(const nlohmann::json& j, const std::string& where);
  // Replace(" ", "▁") then, when `prepend`, Prepend("▁"): SentencePiece's whitespace handling.
  void add_replace(std::string from, std::string to);
  void add_prepend(std::string prefix);

  bool empty() const { return steps_.empty(); }
  std::string apply(std::string_view text) const;

 private:
  struct Step {
    enum class Kind { Unicode, Lowercase, Replace, Prepend, Strip } kind;
    int unicode_options = 0;               // Unicode: utf8proc option bits
    std::string from, to;                  // Replace: literal pattern (when no regex) / content
    std::shared_ptr<const Regex> pattern;  // Replace with a regex
    bool left = false, right = false;      // Strip
  };
  void parse(const nlohmann::json& j, const std::string& where);
  std::vector<Step> steps_;
};

// Unicode normalization of valid UTF-8 (`options`: utf8proc bits); throws Error on bad UTF-8.
std::string utf8_normalize(std::string_view text, int options);

}  // namespace lorahub
