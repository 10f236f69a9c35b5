// A compiled PCRE2 pattern in UTF + Unicode-property mode, so that \p{L}, \s and friends follow
// Unicode as the Rust/Oniguruma regexes of `tokenizers` (and llama.cpp's pre-tokenizers) do.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace lorahub {

class Regex {
 public:
  // Throws Error naming `where` and the pattern when it does not compile.
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches, left to right, as [begin, end) byte offsets; empty matches are
  // skipped. Throws Error on invalid UTF-8.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  pcre2_real_code_8* code_ = nullptr;
};

// Escapes a literal for PCRE2 (\Q...\E would break on a literal "\E").
std::string regex_escape(std::string_view s);

}  // namespace lorahub
