#include "hub/commit.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>

#include "hub/hash.h"
#include "hub/http_error.h"

namespace lorahub::hub {
namespace {

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// 40 hex digits naming the revision: the hash of everything it records plus a nonce, so two
// identical uploads still get distinct, never-reused revisions.
std::string revision_sha(const Revision& rev) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : rev.files) files.push_back({f.path, f.sha256});
  const ModuleMeta& m = rev.meta;
  const nlohmann::json content = {
      {"repo", rev.repo},
      {"parent", rev.parent},
      {"created", rev.created},
      {"files", files},
      {"message", rev.message},
      {"meta",
       {m.base_model, m.rank, m.alpha, m.targets, m.task, m.description, m.tags, m.license}},
      {"nonce", random_hex(16)}};
  return sha256_hex(content.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
      .substr(0, 40);
}

}  // namespace

std::optional<Revision> commit_upload(MetaStore& meta, const BlobStore& blobs,
                                      const std::string& scratch_root, const NewRevision& upload,
                                      const std::vector<UploadedFile>& files) {
  Revision rev;
  rev.repo = upload.repo;
  rev.parent = upload.parent;
  rev.message = upload.message;
  rev.meta = upload.meta;
  try {
    const ModuleMeta found = inspect_module(files, scratch_root);
    rev.meta.base_model = found.base_model;
    rev.meta.rank = found.rank;
    rev.meta.alpha = found.alpha;
    rev.meta.targets = found.targets;
  } catch (const Error& e) {
    throw HttpError(422, fmt::format("invalid LoRA module: {}", e.what()));
  }
  // Refuses early, before any blob is written, an upload whose parent is no longer the head.
  if (meta.head_of(rev.repo).value_or("") != rev.parent) return std::nullopt;
  rev.created = now_seconds();
  std::vector<std::string> stored;  // stored[i]: the blob of files[i]
  for (const auto& f : files) {     // durable before the metadata that points at them
    const StoredBlob blob = blobs.put(f.content);
    stored.push_back(blob.sha256);
    rev.files.push_back(
        {f.path, blob.sha256, git_blob_sha1_hex(f.content), static_cast<int64_t>(blob.size)});
  }
  std::sort(rev.files.begin(), rev.files.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  rev.sha = revision_sha(rev);
  if (!meta.commit(rev)) return std::nullopt;
  // A garbage collection (hub/gc.h) may have removed a reused, long-unreferenced blob between
  // put and commit; now that the revision points at it, store it again.
  for (size_t i = 0; i < files.size(); ++i)
    if (!blobs.contains(stored[i])) blobs.put(files[i].content);
  return rev;
}

}  // namespace lorahub::hub
