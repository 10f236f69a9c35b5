#include "hub/hash.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <vector>

#include "core/error.h"

namespace lorahub::hub {
namespace {

std::string to_hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * size, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

// Hashes the concatenation of `parts` with the named EVP digest.
std::string digest_hex(const EVP_MD* md, std::initializer_list<std::string_view> parts) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  check(ctx != nullptr && EVP_DigestInit_ex(ctx.get(), md, nullptr) == 1, "cannot start a digest");
  for (std::string_view part : parts) {
    check(EVP_DigestUpdate(ctx.get(), part.data(), part.size()) == 1, "digest update failed");
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  check(EVP_DigestFinal_ex(ctx.get(), out, &size) == 1, "digest final failed");
  return to_hex(out, size);
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  return digest_hex(EVP_sha256(), {data});
}

std::string sha256_hex(std::span<const std::byte> data) {
  return sha256_hex(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

std::string git_blob_sha1_hex(std::string_view data) {
  const std::string header = "blob " + std::to_string(data.size());
  return digest_hex(EVP_sha1(), {header, std::string_view("\0", 1), data});
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
