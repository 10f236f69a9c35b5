// SHA-256 (and SHA-1) digests, hex encoded: of bytes, of a file, of a directory's content. The
// hub names stored files by them; the evaluation keys cached results by them (eval/bbh_run.h).
#pragma once
#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace lorahub {

std::string sha256_hex(std::span<const std::byte> data);
std::string sha256_hex(std::string_view data);

// SHA-1 of the concatenation of `parts` (git's object ids).
std::string sha1_hex(std::initializer_list<std::string_view> parts);

// SHA-256 of a file's bytes; for a directory, SHA-256 of "relative/path\0<file's sha256>\n" over
// its regular files in path order. Names content independently of where it lies, so results
// keyed by it stay valid in another checkout. Throws Error naming an unreadable path.
std::string content_sha256_hex(const std::string& path);

// Lower-case hex of `size` bytes.
std::string to_hex(const unsigned char* data, size_t size);

}  // namespace lorahub
