// Exact-match accuracy as the reference computes it (DESIGN §1.6): both prediction and target
// are normalised with Python's s.strip().lower().replace(".", "") before comparing.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace lorahub {

// strip() of ASCII whitespace, ASCII lower-casing, every '.' removed. (Python also lower-cases
// and strips non-ASCII letters and spaces; BBH targets are ASCII.)
std::string normalize_answer(std::string_view text);

bool exact_match(std::string_view prediction, std::string_view target);

// Percentage (0-100) of exact matches; throws Error when the sizes differ or are zero.
double exact_match_accuracy(const std::vector<std::string>& predictions,
                            const std::vector<std::string>& targets);

}  // namespace lorahub
