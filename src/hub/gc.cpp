#include "hub/gc.h"

#include "core/error.h"

#include <algorithm>
#include <filesystem>
#include <unordered_map>

namespace lorahub::hub {
namespace {

// Removals per metadata transaction: pushes wait for their commit while one runs, so keep each
// short.
constexpr size_t kBatch = 256;

}  // namespace

GcReport collect_garbage(const BlobStore& blobs, MetaStore& meta, std::chrono::seconds min_age,
                         bool dry_run) {
  const auto cutoff = std::filesystem::file_time_type::clock::now() - min_age;
  GcReport report;
  report.abandoned_temp_files = dry_run ? 0 : blobs.remove_abandoned_temp_files();
  std::vector<BlobFile> stored = blobs.list();
  // A first, unlocked look sorts out what is referenced now (referenced blobs never go back).
  const auto referenced = meta.referenced_blobs();
  std::unordered_map<std::string, size_t> size_of;
  std::vector<std::string> candidates;
  for (const BlobFile& blob : stored) {
    if (referenced.contains(blob.sha256)) {
      ++report.referenced;
    } else {
      size_of[blob.sha256] = blob.size;
      candidates.push_back(blob.sha256);
    }
  }
  const auto take = [&](const std::string& sha) {
    std::error_code ec;
    const auto modified = std::filesystem::last_write_time(blobs.path_of(sha), ec);
    if (ec) return;  // already gone
    if (modified >= cutoff || (!dry_run && !blobs.remove_if_untouched_since(sha, cutoff))) {
      ++report.young;
      return;
    }
    report.collected.push_back({sha, size_of[sha]});
    report.collected_bytes += size_of[sha];
  };
  for (size_t at = 0; at < candidates.size(); at += kBatch) {
    const std::vector<std::string> batch(
        candidates.begin() + static_cast<std::ptrdiff_t>(at),
        candidates.begin() + static_cast<std::ptrdiff_t>(std::min(at + kBatch, candidates.size())));
    // The removal itself runs where no push can commit: a push that commits before it is seen
    // as a reference; one that commits after it finds its blob gone and stores it again.
    report.referenced += static_cast<int64_t>(meta.remove_unreferenced(batch, take).size());
  }
  return report;
}

GcReport collect_garbage_at(const std::string& root, const std::string& db_url,
                            std::chrono::seconds min_age, bool dry_run) {
  check(std::filesystem::is_directory(std::filesystem::path(root) / "blobs"),
        "{}: not a hub folder (no blobs/ in it)", root);
  const auto meta = MetaStore::open_existing(root, db_url);
  const BlobStore blobs(root);
  return collect_garbage(blobs, *meta, min_age, dry_run);
}

}  // namespace lorahub::hub
