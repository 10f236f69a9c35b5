// UTF-8 hygiene for text that came from outside (uploads, file names, pickles, query strings).
// JSON encoders refuse invalid UTF-8, so every message or field that quotes user bytes goes
// through these before it is shown: invalid sequences become U+FFFD and shortening never cuts
// a character in half. Decoding is libutf8proc's (strict: no overlongs, surrogates or > U+10FFFF).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace lorahub {

// Whether `text` is well-formed UTF-8 (RFC 3629).
bool is_valid_utf8(std::string_view text);

// `text` with every byte that does not start a well-formed sequence replaced by U+FFFD.
std::string to_valid_utf8(std::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character boundary
// (invalid bytes count as one character each and come out as U+FFFD, which may make the result
// longer than the input prefix by at most 2 bytes per invalid byte; it never exceeds max_bytes).
std::string truncate_utf8(std::string_view text, size_t max_bytes);

}  // namespace lorahub
