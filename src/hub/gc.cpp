#include "hub/gc.h"

#include <filesystem>

namespace lorahub::hub {

GcReport collect_garbage(const BlobStore& blobs, MetaStore& meta, std::chrono::seconds min_age,
                         bool dry_run) {
  const auto cutoff = std::filesystem::file_time_type::clock::now() - min_age;
  // Blobs first, references second: a blob stored and committed in between is then seen as
  // referenced; one stored after the listing is not listed at all.
  const std::vector<BlobFile> stored = blobs.list();
  const auto referenced = meta.referenced_blobs();
  GcReport report;
  for (const BlobFile& blob : stored) {
    if (referenced.contains(blob.sha256)) {
      ++report.referenced;
      continue;
    }
    std::error_code ec;
    const auto modified = std::filesystem::last_write_time(blobs.path_of(blob.sha256), ec);
    if (ec) continue;  // already gone
    const bool old = modified < cutoff;
    if (!old || (!dry_run && !blobs.remove_if_untouched_since(blob.sha256, cutoff))) {
      ++report.young;
      continue;
    }
    report.collected.push_back(blob);
    report.collected_bytes += blob.size;
  }
  return report;
}

}  // namespace lorahub::hub
