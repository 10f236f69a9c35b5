// huggingface_hub's write API on our hub, independent of the HTTP layer: what HfApi's
// create_repo, upload_file, upload_folder, create_commit (and so PeftModel.push_to_hub) send,
// and the read routes that go with them (list_repo_refs, list_repo_commits).
//
//   POST /api/repos/create                          create_repo (409 when it exists)
//   POST /api/validate-yaml                         README.md metadata check before a commit
//   POST /api/models/{repo}/preupload/{rev}         which files go through LFS
//   POST /{repo}.git/info/lfs/objects/batch         LFS batch API, basic transfer: the upload
//   PUT  /api/lorahub/lfs/{repo}/{oid}?...          href is a signed URL (the client sends no
//   POST /api/lorahub/lfs-verify/{repo}             token with the PUT), then verify
//   POST /api/models/{repo}/commit/{rev}            NDJSON: header, file (base64), lfsFile,
//                                                   deletedFile, deletedFolder
//   GET  /api/models/{repo}/xet-{read,write}-token/{rev}   we have no Xet storage: a redirect to
//                                                   kXetNotServedPath, a clear error
//   GET  /api/models/{repo}/refs, /commits/{rev}
//
// Every commit goes through commit_upload (commit.h): the same module check, durability and
// compare-and-swap on the head as `lorahub hub push`. The parsers take hostile input: every
// failure is an HttpError 4xx whose message is printable ASCII.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hub/blob_store.h"
#include "hub/meta_store.h"

namespace lorahub::hub {

// RFC 4648 base64 with padding, nothing else (no whitespace, no URL alphabet); throws HttpError
// 400 naming `what`.
std::string decode_base64_strict(std::string_view text, std::string_view what);

// One line of the commit body that adds a file: inline content, or an LFS object by SHA-256.
struct CommitAddition {
  std::string path;
  std::optional<std::string> content;  // "file" lines
  std::string lfs_oid;                 // "lfsFile" lines
  std::optional<int64_t> size;         // "lfsFile" lines (absent for copies)
};

struct CommitRequest {
  std::string summary;
  std::string description;
  std::optional<std::string> parent;  // header.parentCommit
  // In body order; deletions keep their trailing '/' off (deleted_folders are folder paths).
  std::vector<CommitAddition> additions;
  std::vector<std::string> deleted_files;
  std::vector<std::string> deleted_folders;
};

struct CommitLimits {
  size_t max_operations = 512;
  int64_t max_file_bytes = 512ll << 20;
};

// Parses the application/x-ndjson body of POST /api/models/{repo}/commit/{rev}.
CommitRequest parse_commit_request(std::string_view body, const CommitLimits& limits);

struct PreuploadFile {
  std::string path;
  std::string sample;  // the first bytes (at most 512), decoded
  int64_t size = 0;
};

// Parses the JSON body of POST /api/models/{repo}/preupload/{rev}.
std::vector<PreuploadFile> parse_preupload_request(std::string_view body, size_t max_files,
                                                   int64_t max_file_bytes);

// "lfs" for weights (by extension, NUL bytes in the sample, or size), else "regular".
std::string upload_mode(const PreuploadFile& file);

struct LfsObject {
  std::string oid;  // SHA-256, 64 lowercase hex digits
  int64_t size = 0;
};

// Parses the body of POST /{repo}.git/info/lfs/objects/batch (operation "upload" only).
std::vector<LfsObject> parse_lfs_batch_request(std::string_view body, size_t max_objects);

struct CreateRepoRequest {
  std::string repo;  // "owner/name"; the owner is `user` when the body names no organization
};

// Parses the body of POST /api/repos/create for the authenticated `user` (models only).
CreateRepoRequest parse_create_repo_request(std::string_view body, const std::string& user);

// huggingface_hub's list_models(filter=...): every filter is a tag the model must carry. Ours
// carry "peft", "lora", "lorahub" and "base_model:adapter:<base>" (see the model-info tags)
// besides the pushed tags; narrows `filter` accordingly.
void add_hf_filters(SearchFilter& filter, const std::vector<std::string>& hf_filters);

// Where the Xet token routes redirect to; it answers xet_not_served()'s 400.
inline constexpr std::string_view kXetNotServedPath =
    "/api/xet-storage-is-not-served-here/set-HF_HUB_DISABLE_XET=1-to-upload-through-LFS";
// Throws the HttpError 400 that tells the user to set HF_HUB_DISABLE_XET=1.
[[noreturn]] void xet_not_served();

struct HfUploadOptions {
  std::string root;        // the hub's folder: the LFS URL signing key lives here
  std::string public_url;  // how clients reach this hub, for the URLs in answers
  std::string scratch_root;
  int64_t max_upload_bytes = 512ll << 20;  // per LFS object, and per revision (as a push)
  int64_t lfs_url_seconds = 3600;          // how long a signed upload URL stays valid
};

class HfUploads {
 public:
  HfUploads(MetaStore& meta, const BlobStore& blobs, HfUploadOptions options);
  // For a server that learns its port when it binds.
  void set_public_url(std::string url) { options_.public_url = std::move(url); }

  // The before-body check of every write route: the user of `authorization` ("Bearer ...")
  // may write to `repo`. Throws HttpError 401 / 403.
  std::string authorize(std::string_view authorization, const std::string& repo);
  // The user of `authorization`; throws HttpError 401.
  std::string authenticate(std::string_view authorization);
  // The body limit of each write route (checked before reading).
  int64_t commit_body_limit() const;
  int64_t json_body_limit() const { return 4 << 20; }

  // 200 and {url, name}; 409 with the same and "error" when the repo exists (create_repo's
  // exist_ok reads the url from it).
  std::pair<int, nlohmann::json> create_repo(const std::string& user, std::string_view body);
  nlohmann::json validate_yaml(std::string_view body);
  nlohmann::json preupload(const std::string& repo, const std::string& rev, std::string_view body);
  nlohmann::json lfs_batch(const std::string& repo, std::string_view body);
  // The PUT's before-body check: the URL's signature and expiry, and a declared length that
  // matches. Returns the size the body must have.
  int64_t check_lfs_upload(const std::string& repo, const std::string& oid, const std::string& size,
                           const std::string& expires, const std::string& signature,
                           std::optional<int64_t> content_length);
  void lfs_upload(const std::string& oid, int64_t size, std::string_view body);
  nlohmann::json lfs_verify(const std::string& repo, std::string_view body);
  nlohmann::json commit(const std::string& repo, const std::string& rev, std::string_view body,
                        bool create_pr);

  nlohmann::json refs(const std::string& repo);
  nlohmann::json commits(const std::string& repo, const std::string& rev, int64_t limit);

 private:
  std::string sign(const std::string& repo, const std::string& oid, int64_t size,
                   int64_t expires) const;
  std::optional<Revision> commit_once(const std::string& repo, const CommitRequest& request);
  void require_main(const std::string& rev) const;
  Revision head_or_404(const std::string& repo);

  MetaStore& meta_;
  const BlobStore& blobs_;
  HfUploadOptions options_;
  std::string key_;  // HMAC key of the signed upload URLs
};

// Seconds since the epoch as the HF Hub writes times: "2026-12-01T08:46:02.000Z" (UTC).
std::string iso_time(int64_t seconds);

}  // namespace lorahub::hub
