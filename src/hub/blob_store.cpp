#include "hub/blob_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <span>

#include "core/error.h"
#include "core/utf8.h"
#include "hub/hash.h"

namespace lorahub::hub {
namespace fs = std::filesystem;
namespace {

// A rename is durable only once its folder is fsync'd.
void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open folder: {}", dir.string(), std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail("{}: fsync failed: {}", dir.string(), std::strerror(err));
}

}  // namespace

int64_t BlobStore::remove_abandoned_temp_files() const {
  int64_t removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(blobs_dir_, ec)) {
    if (entry.is_regular_file(ec) && is_temp_file_name(entry.path().filename().string()) &&
        is_abandoned_temp_file(entry.path().string()) && fs::remove(entry.path(), ec))
      ++removed;
  }
  return removed;
}

BlobStore::BlobStore(std::string root) : blobs_dir_((fs::path(root) / "blobs").string()) {
  std::error_code ec;
  fs::create_directories(blobs_dir_, ec);
  check(!ec, "{}: cannot create the blob folder: {}", blobs_dir_, ec.message());
  remove_abandoned_temp_files();
}

std::string BlobStore::path_of(std::string_view sha256) const {
  check(is_lower_hex(sha256, 64), "'{}' is not a SHA-256 hex digest", truncate_utf8(sha256, 80));
  return (fs::path(blobs_dir_) / sha256.substr(0, 2) / sha256).string();
}

bool BlobStore::contains(std::string_view sha256) const {
  std::error_code ec;
  return fs::is_regular_file(path_of(sha256), ec);
}

bool BlobStore::touch_if_size(std::string_view sha256, int64_t size) const {
  const fs::path path = path_of(sha256);
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) != static_cast<uintmax_t>(size) ||
      ec)
    return false;
  fs::last_write_time(path, fs::file_time_type::clock::now(), ec);
  return !ec;
}

StoredBlob BlobStore::put(std::string_view content) const {
  StoredBlob blob{sha256_hex(content), content.size(), false};
  const fs::path path = path_of(blob.sha256);
  std::error_code ec;
  if (contains(blob.sha256)) {
    fs::last_write_time(path, fs::file_time_type::clock::now(), ec);
    if (!ec) return blob;
    ec.clear();  // removed by garbage collection in between: store it again
  }
  if (fs::create_directories(path.parent_path(), ec)) fsync_dir(blobs_dir_);
  check(!ec, "{}: cannot create folder: {}", path.parent_path().string(), ec.message());
  write_file_atomic(path.string(), std::as_bytes(std::span(content.data(), content.size())));
  fsync_dir(path.parent_path());
  blob.created = true;
  return blob;
}

std::vector<BlobFile> BlobStore::list() const {
  std::vector<BlobFile> blobs;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(blobs_dir_, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code stat_ec;  // a blob removed while listing is simply not listed
    if (!is_lower_hex(name, 64) || it->path().parent_path().filename() != name.substr(0, 2) ||
        !it->is_regular_file(stat_ec))
      continue;
    const auto size = it->file_size(stat_ec);
    if (!stat_ec) blobs.push_back({name, static_cast<size_t>(size)});
  }
  check(!ec, "{}: cannot list the blobs: {}", blobs_dir_, ec.message());
  return blobs;
}

bool BlobStore::remove_if_untouched_since(std::string_view sha256,
                                          fs::file_time_type cutoff) const {
  const fs::path path = path_of(sha256);
  std::error_code ec;
  const auto modified = fs::last_write_time(path, ec);
  if (ec || modified >= cutoff) return false;
  return fs::remove(path, ec) && !ec;
}

std::shared_ptr<const MappedFile> BlobStore::open(std::string_view sha256) const {
  return MappedFile::open(path_of(sha256));
}

}  // namespace lorahub::hub
