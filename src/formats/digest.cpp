#include "formats/digest.h"

#include <openssl/evp.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "core/error.h"

namespace lorahub {
namespace {

// One EVP digest computation: update() with the parts in order, then hex() once.
class Digest {
 public:
  explicit Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    check(ctx_ != nullptr && EVP_DigestInit_ex(ctx_.get(), md, nullptr) == 1,
          "cannot start a digest");
  }
  void update(std::string_view part) {
    check(EVP_DigestUpdate(ctx_.get(), part.data(), part.size()) == 1, "digest update failed");
  }
  std::string hex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    check(EVP_DigestFinal_ex(ctx_.get(), out, &size) == 1, "digest final failed");
    return to_hex(out, size);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// Hashes the concatenation of `parts` with the named EVP digest.
std::string digest_hex(const EVP_MD* md, std::initializer_list<std::string_view> parts) {
  Digest digest(md);
  for (std::string_view part : parts) digest.update(part);
  return digest.hex();
}

// Streams the file through SHA-256 (models are hundreds of MB; no need to hold them).
std::string file_sha256_hex(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "{}: cannot open to hash", path.string());
  Digest digest(EVP_sha256());
  std::vector<char> chunk(1 << 20);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    digest.update({chunk.data(), static_cast<size_t>(in.gcount())});
  }
  check(in.eof(), "{}: read error while hashing", path.string());
  return digest.hex();
}

}  // namespace

std::string to_hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * size, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

std::string content_sha256_hex(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  check(!ec && fs::exists(status), "{}: no such file or directory", path);
  if (!fs::is_directory(status)) return file_sha256_hex(path);
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec))
    if (it->is_regular_file()) files.push_back(it->path());
  check(!ec, "{}: cannot list: {}", path, ec.message());
  std::ranges::sort(files);
  std::string listing;
  for (const fs::path& file : files)
    listing += fs::relative(file, path).generic_string() + '\0' + file_sha256_hex(file) + '\n';
  return sha256_hex(listing);
}

std::string sha256_hex(std::string_view data) {
  return digest_hex(EVP_sha256(), {data});
}

std::string sha256_hex(std::span<const std::byte> data) {
  return sha256_hex(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

std::string sha1_hex(std::initializer_list<std::string_view> parts) {
  return digest_hex(EVP_sha1(), parts);
}

}  // namespace lorahub
