#include "http/range.h"

#include <limits>
#include <optional>

namespace lorahub::http {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// 1*DIGIT, saturating at UINT64_MAX (a position past any file is as good as a huge one).
std::optional<uint64_t> digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t value = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
    value = value > (kMax - digit) / 10 ? kMax : value * 10 + digit;
  }
  return value;
}

bool unit_is_bytes(std::string_view unit) {
  constexpr std::string_view kBytes = "bytes";
  if (unit.size() != kBytes.size()) return false;
  for (size_t i = 0; i < unit.size(); ++i) {
    if ((unit[i] | 0x20) != kBytes[i]) return false;
  }
  return true;
}

}  // namespace

RangeAnswer parse_range(std::string_view header, uint64_t size) {
  const RangeAnswer whole;
  const size_t eq = header.find('=');
  if (eq == std::string_view::npos || !unit_is_bytes(trim(header.substr(0, eq)))) return whole;
  const std::string_view spec = trim(header.substr(eq + 1));
  // More than one range (even overlapping or repeated ones) is answered with the whole file:
  // RFC 9110 lets a server ignore Range, and this can never amplify.
  if (spec.find(',') != std::string_view::npos) return whole;
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  const std::string_view first_text = trim(spec.substr(0, dash));
  const std::string_view last_text = trim(spec.substr(dash + 1));
  const RangeAnswer unsatisfiable{RangeAnswer::kUnsatisfiable};
  if (first_text.empty()) {  // suffix-range "-n": the last n bytes
    const auto length = digits(last_text);
    if (!length) return whole;
    if (*length == 0) return unsatisfiable;
    if (size == 0) return whole;  // nothing to select; the (empty) whole is the answer
    return {RangeAnswer::kPartial, *length >= size ? 0 : size - *length, size - 1};
  }
  const auto first = digits(first_text);
  if (!first) return whole;
  uint64_t last = std::numeric_limits<uint64_t>::max();
  if (!last_text.empty()) {
    const auto parsed = digits(last_text);
    if (!parsed || *parsed < *first) return whole;  // an invalid range-spec: ignore the header
    last = *parsed;
  }
  if (*first >= size) return unsatisfiable;
  return {RangeAnswer::kPartial, *first, std::min(last, size - 1)};
}

}  // namespace lorahub::http
