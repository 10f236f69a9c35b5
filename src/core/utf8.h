// UTF-8 validity for text that leaves the engine. Byte-level BPE (and SentencePiece byte
// fallback) can decode to any bytes: a generation may stop inside a multi-byte character or emit
// byte tokens that never form one. JSON writers and callers expect valid UTF-8, so every text
// the decoding loop returns goes through to_valid_utf8(), which replaces ill-formed bytes the way
// Python's bytes.decode("utf-8", errors="replace") (and so transformers' decode) does: one U+FFFD
// per maximal ill-formed subpart (Unicode §3.9, "U+FFFD Substitution of Maximal Subparts").
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace lorahub {

// `text` with each maximal ill-formed subsequence replaced by U+FFFD (EF BF BD).
std::string to_valid_utf8(std::string_view text);

bool is_valid_utf8(std::string_view text);

// The longest prefix of `text` of at most max_bytes bytes that does not cut a character
// (ill-formed bytes count as one-byte characters).
std::string truncate_utf8(std::string_view text, size_t max_bytes);

// For streaming: the length of the longest prefix of `text` that does not end inside a character
// that later bytes could still complete. Everything before it converts the same way now as it
// will once more bytes arrive; the rest is held back.
size_t utf8_complete_prefix(std::string_view text);

// For messages that quote outside bytes: to_valid_utf8 of at most `max_bytes` of `text`, with
// "..." when it was longer.
std::string printable_utf8(std::string_view text, size_t max_bytes = 200);

}  // namespace lorahub
