// Content hashes and secrets for the hub: SHA-256 names every stored file, git's blob SHA-1 is
// what Hugging Face clients expect as a file's "oid", and tokens come from the OS's CSPRNG.
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "formats/digest.h"

namespace lorahub::hub {

// The digests live in formats/digest.h (the evaluation keys its cache by them too).
using lorahub::content_sha256_hex;
using lorahub::sha256_hex;

// git's object id of a blob: SHA-1 of "blob <size>\0" + data (what `git hash-object` prints).
std::string git_blob_sha1_hex(std::string_view data);

// `bytes` random bytes from OpenSSL's CSPRNG, hex encoded (2 * bytes characters).
std::string random_hex(size_t bytes);

// True when `text` is exactly `length` lowercase hex digits.
bool is_lower_hex(std::string_view text, size_t length);

}  // namespace lorahub::hub
