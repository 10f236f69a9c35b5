// Content hashes and secrets for the hub: SHA-256 names every stored file, git's blob SHA-1 is
// what Hugging Face clients expect as a file's "oid", and tokens come from the OS's CSPRNG.
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace lorahub::hub {

std::string sha256_hex(std::span<const std::byte> data);
std::string sha256_hex(std::string_view data);

// SHA-256 of a file's bytes; for a directory, SHA-256 of "relative/path\0<file's sha256>\n" over
// its regular files in path order. Names content independently of where it lies, so results
// keyed by it stay valid in another checkout. Throws Error naming an unreadable path.
std::string content_sha256_hex(const std::string& path);

// git's object id of a blob: SHA-1 of "blob <size>\0" + data (what `git hash-object` prints).
std::string git_blob_sha1_hex(std::string_view data);

// `bytes` random bytes from OpenSSL's CSPRNG, hex encoded (2 * bytes characters).
std::string random_hex(size_t bytes);

// True when `text` is exactly `length` lowercase hex digits.
bool is_lower_hex(std::string_view text, size_t length);

}  // namespace lorahub::hub
