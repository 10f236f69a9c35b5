// The hub's metadata: users and their (hashed) tokens, repos with their head revision, and
// immutable revisions with their files and LoRA metadata. One implementation over SqlDb, so the
// same code runs on SQLite and PostgreSQL. Thread-safe (one mutex around the connection).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "hub/sql.h"

namespace lorahub::hub {

// What the hub records about a LoRA module (issue 7): read from adapter_config.json, plus what
// the uploader says.
struct ModuleMeta {
  std::string base_model;
  int64_t rank = 0;
  double alpha = 0;
  std::vector<std::string> targets;
  std::string task;
  std::string description;
  std::vector<std::string> tags;
  std::string license;
};

struct FileEntry {
  std::string path;
  std::string sha256;   // names the blob
  std::string git_oid;  // git blob SHA-1, what Hugging Face clients call "oid"
  int64_t size = 0;
};

// One immutable upload. `sha` is 40 hex digits like a git commit (huggingface_hub treats such a
// revision as a pinned commit).
struct Revision {
  std::string sha;
  std::string repo;
  std::string parent;   // empty for the first revision
  int64_t created = 0;  // unix seconds
  std::string message;
  ModuleMeta meta;
  std::vector<FileEntry> files;  // sorted by path
};

struct RepoSummary {
  std::string id;
  std::string owner;
  int64_t created = 0;
  int64_t updated = 0;
  Revision head;  // without files
};

struct SearchFilter {
  std::string text;  // substring of the id, task or description (case-insensitive)
  std::string base_model;
  std::string tag;
  std::vector<std::string> tags;  // every one must be a tag of the head too
  std::string task;
  std::string author;
  std::optional<int64_t> rank;
  int64_t offset = 0;
  int64_t limit = 100;
};

class MetaStore {
 public:
  // `db_url` empty: SQLite at ROOT/hub.sqlite3; else a postgresql:// URL.
  static std::unique_ptr<MetaStore> open(const std::string& root, const std::string& db_url);
  // As open(), but a SQLite store that does not exist yet is an error naming ROOT, not a new
  // empty one: for tools that read or remove (gc, token revoke), where an empty store would
  // mean "nothing is referenced".
  static std::unique_ptr<MetaStore> open_existing(const std::string& root,
                                                  const std::string& db_url);
  explicit MetaStore(std::unique_ptr<SqlDb> db);

  // Creates the user when new; returns a fresh token (only its SHA-256 is stored).
  std::string create_token(const std::string& user);
  std::optional<std::string> user_for_token(const std::string& token);
  // Revocation takes effect at once, also for running servers (tokens are looked up per request).
  // Returns whether the token existed.
  bool revoke_token(const std::string& token);
  // Revokes every token of `user`; returns how many there were.
  int64_t revoke_tokens_of(const std::string& user);

  // The repo's head revision sha; "" for a repo created empty (create_repo), nullopt when there
  // is no such repo.
  std::optional<std::string> head_of(const std::string& repo);
  // Records an empty repo (no revision yet), as huggingface_hub's create_repo does. Returns false
  // when the repo already exists.
  bool create_repo(const std::string& repo);
  // `rev` is "main" (the head) or a full revision sha of this repo.
  std::optional<Revision> find_revision(const std::string& repo, const std::string& rev);
  std::optional<RepoSummary> find_repo(const std::string& repo);
  std::vector<RepoSummary> search(const SearchFilter& filter);

  // Records `rev` and moves the repo's head to it, atomically, only if the head is still
  // `rev.parent` (empty: the repo must not exist yet, or have been created empty). Returns false,
  // changing nothing, when another upload got there first.
  bool commit(const Revision& rev);

  // The SHA-256 of every blob some revision points at (what garbage collection must keep).
  std::unordered_set<std::string> referenced_blobs();

  // Garbage collection's half of the push/gc protocol (hub/gc.h): in one write transaction, so
  // that no revision can be committed between the check and the removal, calls `remove(sha)`
  // for each candidate no revision references. Returns the candidates found referenced.
  std::vector<std::string> remove_unreferenced(
      const std::vector<std::string>& candidates,
      const std::function<void(const std::string&)>& remove);

  std::string describe() const { return db_->describe(); }

 private:
  void create_schema();
  std::vector<FileEntry> files_of(const std::string& sha);

  std::mutex mutex_;
  std::unique_ptr<SqlDb> db_;
};

}  // namespace lorahub::hub
