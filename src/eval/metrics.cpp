#include "eval/metrics.h"

#include "core/error.h"

namespace lorahub {

namespace {
// Python's str.strip() ASCII set: space, \t \n \v \f \r and the separators \x1c-\x1f.
bool is_python_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}
}  // namespace

std::string normalize_answer(std::string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end && is_python_space(text[begin])) ++begin;
  while (end > begin && is_python_space(text[end - 1])) --end;
  std::string out;
  out.reserve(end - begin);
  for (char c : text.substr(begin, end - begin)) {
    if (c == '.') continue;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

bool exact_match(std::string_view prediction, std::string_view target) {
  return normalize_answer(prediction) == normalize_answer(target);
}

double exact_match_accuracy(const std::vector<std::string>& predictions,
                            const std::vector<std::string>& targets) {
  check(predictions.size() == targets.size() && !predictions.empty(),
        "accuracy needs as many predictions as targets (got {} and {})", predictions.size(),
        targets.size());
  size_t hits = 0;
  for (size_t i = 0; i < predictions.size(); ++i) hits += exact_match(predictions[i], targets[i]);
  return 100.0 * static_cast<double>(hits) / static_cast<double>(predictions.size());
}

}  // namespace lorahub
