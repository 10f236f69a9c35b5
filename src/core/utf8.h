// UTF-8 hygiene for text that came from outside (request bytes, file names, metadata) before it
// goes into JSON, which must be valid UTF-8 (nlohmann::json's dump() throws on anything else).
#pragma once
#include <string>
#include <string_view>

namespace lorahub {

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view text);

// `text` with every ill-formed byte replaced by U+FFFD; valid text is returned unchanged.
std::string to_valid_utf8(std::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that does not cut a UTF-8 character
// in half (an ill-formed byte counts as one character).
std::string_view truncate_utf8(std::string_view text, size_t max_bytes);

// For messages: to_valid_utf8 of at most `max_bytes` of `text`, with "..." when it was longer.
std::string printable_utf8(std::string_view text, size_t max_bytes = 200);

}  // namespace lorahub
