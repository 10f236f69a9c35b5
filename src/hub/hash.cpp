#include "hub/hash.h"

#include <openssl/rand.h>

#include <vector>

#include "core/error.h"

namespace lorahub::hub {

std::string git_blob_sha1_hex(std::string_view data) {
  const std::string header = "blob " + std::to_string(data.size());
  return sha1_hex({header, std::string_view("\0", 1), data});
}

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  check(RAND_bytes(buffer.data(), static_cast<int>(bytes)) == 1, "the OS random source failed");
  return to_hex(buffer.data(), bytes);
}

bool is_lower_hex(std::string_view text, size_t length) {
  if (text.size() != length) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace lorahub::hub
