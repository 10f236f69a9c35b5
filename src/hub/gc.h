// Garbage collection of the blob store: removes blobs that no revision points at. They are left
// by a push that lost the race for its parent after storing its files, or by a server that died
// between storing the files and recording the revision.
//
// Safe while servers run: only blobs unreferenced AND untouched for `min_age` go. A push touches
// every blob it stores (BlobStore::put refreshes reused ones), and after recording its revision
// it stores again any blob that vanished in between, so a collection running concurrently never
// leaves a revision without its files.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "hub/blob_store.h"
#include "hub/meta_store.h"

namespace lorahub::hub {

struct GcReport {
  int64_t referenced = 0;           // blobs some revision points at (kept)
  int64_t young = 0;                // unreferenced but touched within min_age (kept)
  std::vector<BlobFile> collected;  // unreferenced and older: removed (or, dry run, would be)
  uint64_t collected_bytes = 0;
};

GcReport collect_garbage(const BlobStore& blobs, MetaStore& meta, std::chrono::seconds min_age,
                         bool dry_run);

}  // namespace lorahub::hub
