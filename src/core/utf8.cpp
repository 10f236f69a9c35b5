#include "core/utf8.h"

#include <cstdint>

namespace lorahub {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// How the character starting at text[i] scans: `length` bytes form a well-formed character, or
// (length 0) the first `bad` bytes are a maximal ill-formed subpart; `incomplete` when the text
// ends while the bytes so far could still become a character.
struct Scan {
  size_t length = 0, bad = 0;
  bool incomplete = false;
};

// The range of the second byte after a lead byte (Unicode Table 3-7); the others are 80..BF.
bool second_byte_ok(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xE0:
      return b >= 0xA0 && b <= 0xBF;
    case 0xED:
      return b >= 0x80 && b <= 0x9F;
    case 0xF0:
      return b >= 0x90 && b <= 0xBF;
    case 0xF4:
      return b >= 0x80 && b <= 0x8F;
    default:
      return b >= 0x80 && b <= 0xBF;
  }
}

size_t sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;  // continuation byte, C0, C1, F5..FF: never starts a character
}

Scan scan(std::string_view text, size_t i) {
  const auto lead = static_cast<uint8_t>(text[i]);
  const size_t need = sequence_length(lead);
  if (need == 0) return {0, 1, false};
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= text.size()) return {0, k, true};
    const auto b = static_cast<uint8_t>(text[i + k]);
    const bool ok = k == 1 ? second_byte_ok(lead, b) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return {0, k, false};
  }
  return {need, 0, false};
}

}  // namespace

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const Scan s = scan(text, i);
    if (s.length > 0) {
      out.append(text.substr(i, s.length));
      i += s.length;
    } else {
      out.append(kReplacement);
      i += s.bad;
    }
  }
  return out;
}

bool is_valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const Scan s = scan(text, i);
    if (s.length == 0) return false;
    i += s.length;
  }
  return true;
}

std::string truncate_utf8(std::string_view text, size_t max_bytes) {
  size_t end = 0;
  for (size_t i = 0; i < text.size();) {
    const Scan s = scan(text, i);
    const size_t step = s.length > 0 ? s.length : s.bad;
    if (i + step > max_bytes) break;
    i += step;
    end = i;
  }
  return std::string(text.substr(0, end));
}

size_t utf8_complete_prefix(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const Scan s = scan(text, i);
    if (s.incomplete) return i;
    i += s.length > 0 ? s.length : s.bad;
  }
  return text.size();
}

std::string printable_utf8(std::string_view text, size_t max_bytes) {
  const std::string kept = truncate_utf8(text, max_bytes);
  return to_valid_utf8(kept) + (kept.size() < text.size() ? "..." : "");
}

}  // namespace lorahub
