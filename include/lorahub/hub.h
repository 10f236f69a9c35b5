// The module hub as a library: run a hub server, manage its write tokens, collect its garbage
// (on the hub's own folder), and use one as a client (push, search, pull). lorahub.h's hub_fetch
// and hub_push are the short forms for fetching modules by id and pushing without metadata.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lorahub/error.h"

namespace lorahub::api {

// ------------------------------------------------------------------------------ hub server

// Per-client limits of the hub's HTTP server: a hostile client gets no more.
struct HttpLimits {
  size_t max_connections = 1024;       // more are answered 503 with Retry-After, then closed
  size_t max_header_bytes = 16 << 10;  // request line + header fields (larger: 431)
  size_t max_header_fields = 100;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{30'000};   // of a keep-alive connection
  std::chrono::milliseconds body_timeout{30'000};   // plus the body's length at min_body_rate
  uint64_t min_body_rate = 64 << 10;                // bytes per second
  std::chrono::milliseconds write_timeout{60'000};  // for each piece of an answer
};

struct HubServerOptions {
  std::string root;    // blobs and (by default) the SQLite metadata live here
  std::string db_url;  // "" = SQLite under root; else postgresql://...
  std::string host = "127.0.0.1";
  int port = 8080;                         // 0 = any free port
  std::string public_url;                  // base of absolute links; "" = http://host:port
  size_t max_upload_bytes = 512ull << 20;  // a larger push is refused with 413
  int page_size = 1000;                    // entries per page of tree and model listings
  int threads = 32;
  HttpLimits limits;
};

// A Hugging Face compatible read API, lorahub's push API (bearer tokens) and a web page at /.
class HubServer {
 public:
  explicit HubServer(const HubServerOptions& options);  // opens (or creates) the hub's store
  ~HubServer();
  int bind();   // returns the port (useful with port 0); throws Error when it cannot listen
  void run();   // serves until stop()
  void stop();  // callable from any thread

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// ------------------------------------------------------------------------------ maintenance
// These work on the hub's folder (root) and metadata (db_url: "" = ROOT's SQLite). Those that
// read or remove never create a hub: a missing store is an Error naming ROOT.

// Creates the user when new; returns a fresh write token (the hub keeps only its SHA-256).
std::string hub_create_token(const std::string& root, const std::string& db_url,
                             const std::string& user);
// Revokes one token, at once also for running servers. Throws Error when there is no such token.
void hub_revoke_token(const std::string& root, const std::string& db_url, const std::string& token);
// Revokes every token of `user`; returns how many. Throws Error when the user has none.
int64_t hub_revoke_user_tokens(const std::string& root, const std::string& db_url,
                               const std::string& user);

struct HubGcOptions {
  std::string db_url;  // "" = ROOT's SQLite
  // Unreferenced blobs touched more recently are kept (pushes in flight). Negative: OptionError
  // "min_age".
  std::chrono::seconds min_age{3600};
  bool dry_run = false;  // report what would go; remove nothing
};
struct HubBlob {
  std::string sha256;
  size_t size = 0;
};
struct HubGcReport {
  int64_t referenced = 0;          // blobs some revision points at (kept)
  int64_t young = 0;               // unreferenced but younger than min_age (kept)
  std::vector<HubBlob> collected;  // unreferenced and older: removed (dry run: would be)
  uint64_t collected_bytes = 0;
  int64_t abandoned_temp_files = 0;  // temp files of writers that died, removed
};
// Removes the blobs no revision points at (left by failed pushes). Safe while servers run. The
// guard: a folder without blobs/ or without existing metadata is an Error, never an empty hub
// (in which no blob is referenced, so every blob would go).
HubGcReport hub_gc(const std::string& root, const HubGcOptions& options = {});

// ------------------------------------------------------------------------------ hub client

// The endpoint to use when none is given: $LORAHUB_ENDPOINT, else $HF_ENDPOINT, else
// http://127.0.0.1:8080.
std::string hub_default_endpoint();

struct HubPushOptions {
  std::string repo;  // user/name
  std::string task;  // the task the module was trained on
  std::string description;
  std::string license;  // e.g. apache-2.0
  std::string message;  // of the revision
  std::vector<std::string> tags;
};

struct HubQuery {
  std::string text;  // in the id, task or description
  std::string base_model;
  std::string tag;
  std::string task;
  std::string author;
  std::optional<int64_t> rank;
  int64_t limit = 1000;  // at most this many modules
};

// A module as the hub lists it.
struct HubModule {
  std::string id;   // user/name
  std::string sha;  // its newest revision
  std::string task, base_model;
  int64_t rank = 0;
  double alpha = 0;
  std::vector<std::string> tags;
  std::string info_json;  // the whole model-info object (the hub's /api/models entry)
};

class HubClient {
 public:
  // `endpoint` is http://host[:port]; `token` may be empty for reads.
  HubClient(const std::string& endpoint, const std::string& token);
  ~HubClient();
  // Uploads every regular file of `dir` (hidden files skipped) as a new revision of
  // options.repo; returns the revision sha.
  std::string push(const std::string& dir, const HubPushOptions& options);
  std::vector<HubModule> search(const HubQuery& query);  // newest first
  // Downloads revision `rev` ("main" or a sha) of `repo` into `to_dir`, verifying each file's
  // size and SHA-256; returns the revision sha.
  std::string pull(const std::string& repo, const std::string& rev, const std::string& to_dir);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorahub::api
