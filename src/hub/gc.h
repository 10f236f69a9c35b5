// Garbage collection of the blob store: removes blobs that no revision points at. They are left
// by a push that lost the race for its parent after storing its files, or by a server that died
// between storing the files and recording the revision.
//
// Safe while servers run, whatever `min_age` (0 included): a blob is removed only inside a
// metadata write transaction that first finds no revision pointing at it (MetaStore::
// remove_unreferenced), so no push commits between that check and the removal. A push stores its
// blobs, commits, and then stores again any blob that is gone (the server's push handler):
// either its commit came first and gc saw the reference, or gc removed the blob before the
// commit and the push finds it missing afterwards. An acknowledged push thus always has its
// blobs. `min_age` additionally keeps unreferenced blobs that pushes in flight just stored
// (BlobStore::put refreshes reused ones), so they are not written twice.
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
  int64_t abandoned_temp_files = 0;  // temp files of writers that died, removed
};

GcReport collect_garbage(const BlobStore& blobs, MetaStore& meta, std::chrono::seconds min_age,
                         bool dry_run);

// collect_garbage on the hub at `root` (metadata in ROOT/hub.sqlite3, or at db_url), with the
// safety guard: a folder without blobs/ or without existing metadata is an error, never an
// empty store (in which no blob is referenced, so every blob would go).
GcReport collect_garbage_at(const std::string& root, const std::string& db_url,
                            std::chrono::seconds min_age, bool dry_run);

}  // namespace lorahub::hub
