// The hub's client: push a PEFT adapter folder, search, pull a revision (every file's SHA-256
// verified), and fetch_modules() for `lorahub learn --hub`, which keeps pulled modules in a local
// cache keyed by revision so that a second run downloads nothing.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lorahub::hub {

struct PushOptions {
  std::string repo;  // user/name
  std::string task;
  std::string description;
  std::string license;
  std::string message;
  std::vector<std::string> tags;
};

struct HubFilter {
  std::string text;
  std::string base_model;
  std::string tag;
  std::string task;
  std::string author;
  std::optional<int64_t> rank;
  int64_t limit = 1000;  // at most this many modules
};

// Parses "key=value,key=value" with keys text, base, tag, task, author, rank, limit (as in
// `lorahub learn --hub-filter base=google/flan-t5-large,tag=bbh`); throws Error naming a bad key
// or value. Several filter strings combine; a later value for a key replaces an earlier one.
HubFilter parse_hub_filter(const std::vector<std::string>& specs);

// Where fetch_modules keeps modules by default: $LORAHUB_CACHE, else $XDG_CACHE_HOME/lorahub/hub,
// else ~/.cache/lorahub/hub.
std::string default_cache_dir();

// The endpoint to use when none is given: $LORAHUB_ENDPOINT, else $HF_ENDPOINT, else
// http://127.0.0.1:8080.
std::string default_endpoint();

class HubClient {
 public:
  // `endpoint` is http://host[:port]; `token` may be empty for reads.
  HubClient(std::string endpoint, std::string token);
  ~HubClient();

  // Uploads every regular file in `dir` (hidden files skipped) as a new revision of
  // options.repo; returns the revision sha.
  std::string push(const std::string& dir, const PushOptions& options);
  // Model-info objects (see the server's /api/models), newest first; with `full`, each with its
  // files ("siblings") and, when it has one, its embedding file ("lorahub"."embedding").
  std::vector<nlohmann::json> search(const HubFilter& filter, bool full = false);
  // One file of revision `sha` (40 hex) of `repo`; throws Error unless it has `size` bytes and
  // SHA-256 `sha256`.
  std::string get_file(const std::string& repo, const std::string& sha, const std::string& path,
                       int64_t size, const std::string& sha256);
  // Downloads revision `rev` ("main" or a sha) of `repo` into `to_dir`, verifying each file's
  // size and SHA-256; returns the revision sha.
  std::string pull(const std::string& repo, const std::string& rev, const std::string& to_dir);
  nlohmann::json model_info(const std::string& repo, const std::string& rev);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Searches `endpoint` with `filter` and makes sure every module found is in
// cache_dir/<user>/<name>/<revision>/ (pulling the missing ones); returns those folders in the
// order the hub listed them.
std::vector<std::string> fetch_modules(const std::string& endpoint, const HubFilter& filter,
                                       const std::string& cache_dir);

// A hub module as retrieval lists it: id, revision, and the text of its stored embedding
// (formats/module_embedding.h; "" when the revision has none).
struct ListedModule {
  std::string repo;
  std::string sha;
  std::string embedding;
};
// Searches `endpoint` with `filter` and downloads only each module's embedding file (verified by
// size and SHA-256; no weights), in the order the hub listed them.
std::vector<ListedModule> list_module_embeddings(const std::string& endpoint,
                                                 const HubFilter& filter);
// Makes sure revision `sha` of `repo` is in the cache as fetch_modules keeps it; returns the
// folder.
std::string fetch_module(const std::string& endpoint, const std::string& repo,
                         const std::string& sha, const std::string& cache_dir);

// Makes sure each module id ("user/name", or "user/name@revision"; default main) is in the
// cache as fetch_modules keeps it; returns the folders in the order of `ids`.
std::vector<std::string> fetch_module_ids(const std::string& endpoint, const std::string& token,
                                          const std::vector<std::string>& ids,
                                          const std::string& cache_dir);

}  // namespace lorahub::hub
