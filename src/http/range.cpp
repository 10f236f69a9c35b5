#include "http/range.h"

#include <cstdio>

#include <time.h>

#include <array>
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

// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text.
bool is_strong_entity_tag(std::string_view tag) {
  if (tag.size() < 2 || tag.front() != '"' || tag.back() != '"') return false;
  for (const char c : tag.substr(1, tag.size() - 2)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u == '"' || u == 0x7F) return false;
  }
  return true;
}

constexpr std::array<const char*, 7> kDays{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

}  // namespace

std::string http_date(std::chrono::system_clock::time_point when) {
  const time_t t = std::chrono::system_clock::to_time_t(when);
  tm utc{};
  gmtime_r(&t, &utc);
  char text[32];
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[utc.tm_wday],
                utc.tm_mday, kMonths[utc.tm_mon], utc.tm_year + 1900, utc.tm_hour, utc.tm_min,
                utc.tm_sec);
  return text;
}

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  // Strictly the fixed format: 29 characters, and printing the parsed time gives `text` back
  // (which rejects out-of-range fields and a wrong weekday).
  if (text.size() != 29) return std::nullopt;
  const std::string copy(text);
  tm utc{};
  const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &utc);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const auto when = std::chrono::system_clock::from_time_t(timegm(&utc));
  if (http_date(when) != text) return std::nullopt;
  return when;
}

bool if_range_holds(std::string_view if_range, std::string_view etag,
                    std::string_view last_modified, std::chrono::system_clock::time_point now) {
  if_range = trim(if_range);
  if (if_range.empty()) return true;
  if (if_range.front() == '"') return is_strong_entity_tag(if_range) && if_range == etag;
  if (if_range.starts_with("W/") || last_modified.empty() || if_range != last_modified)
    return false;
  const auto modified = parse_http_date(last_modified);
  return modified && *modified + std::chrono::seconds(1) <= now;
}

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
