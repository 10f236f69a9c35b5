// The one path every upload takes to become a revision, whichever API brought it (`lorahub hub
// push`, huggingface_hub's commit API): the files are checked as a LoRA module (module_check.h),
// stored durably (blob fsync + rename, blob_store.h), and only then is the revision recorded,
// as the repo's head if its parent still is.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "hub/blob_store.h"
#include "hub/meta_store.h"
#include "hub/module_check.h"

namespace lorahub::hub {

// What the uploader says about a new revision; the module's own metadata (base model, rank,
// alpha, targets) is read from its files and overwrites what `meta` holds for it.
struct NewRevision {
  std::string repo;
  std::string parent;  // the head the upload was made against; "" for a repo's first revision
  std::string message;
  ModuleMeta meta;
};

// Throws HttpError 422 naming the file at fault when `files` are not a valid LoRA module.
// Returns the recorded revision, or nullopt, storing no metadata, when `parent` is no longer
// the repo's head (checked before any blob is written, and again atomically at commit).
std::optional<Revision> commit_upload(MetaStore& meta, const BlobStore& blobs,
                                      const std::string& scratch_root, const NewRevision& upload,
                                      const std::vector<UploadedFile>& files);

}  // namespace lorahub::hub
