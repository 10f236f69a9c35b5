// Example files: JSON Lines with one object per line, {"input": ..., "output": ...} or the
// reference's BBH rows {"context": ..., "completion": ...}. The output may be absent (inputs to
// generate for). Blank lines are skipped; any other bad line is an Error naming file and line.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lorahub {

struct TextExample {
  std::string input;
  std::optional<std::string> output;
  size_t line = 0;  // 1-based line in the file, for messages
};

std::vector<TextExample> read_jsonl_examples(const std::string& path);
// `source` names the text in errors ("<source>:<line>: ...").
std::vector<TextExample> parse_jsonl_examples(std::string_view text, const std::string& source);

}  // namespace lorahub
