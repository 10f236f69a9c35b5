// Files stored once, named by their SHA-256: ROOT/blobs/ab/abcdef... Each blob is written to a
// temp file, fsync'd, renamed into place and its folder fsync'd, so a blob that exists is whole
// and durable; metadata only ever points at blobs that already exist (crash safety, issue 7).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"

namespace lorahub::hub {

struct BlobFile {
  std::string sha256;
  size_t size = 0;
};

struct StoredBlob {
  std::string sha256;
  size_t size = 0;
  bool created = false;  // false when identical content was already stored
};

class BlobStore {
 public:
  // Creates ROOT/blobs when missing and removes temp files that a crash left behind.
  explicit BlobStore(std::string root);

  // Removes temp files whose writer died (no lock held on them: see write_file_atomic), however
  // young; those of live writers, in this or another process, stay. Returns how many went.
  int64_t remove_abandoned_temp_files() const;

  // Stores `content` durably (idempotent: identical content is stored once). Storing content
  // that is already there refreshes the blob's modification time: garbage collection keeps
  // blobs touched within its grace period, so a push reusing an unreferenced blob keeps it.
  StoredBlob put(std::string_view content) const;

  // Every stored blob (temp files and stray names are not blobs and are skipped).
  std::vector<BlobFile> list() const;
  // Removes the blob unless it was modified after `cutoff` (checked just before removing).
  // Returns whether it was removed.
  bool remove_if_untouched_since(std::string_view sha256,
                                 std::filesystem::file_time_type cutoff) const;

  bool contains(std::string_view sha256) const;
  // When the blob is stored with `size` bytes, refreshes its modification time (so garbage
  // collection keeps it for its grace period, as put() does) and returns true.
  bool touch_if_size(std::string_view sha256, int64_t size) const;
  std::string path_of(std::string_view sha256) const;
  // The blob mapped read-only; throws Error when it is missing.
  std::shared_ptr<const MappedFile> open(std::string_view sha256) const;

 private:
  std::string blobs_dir_;
};

}  // namespace lorahub::hub
