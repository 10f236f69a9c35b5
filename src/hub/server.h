// The hub's HTTP server: a read API that huggingface_hub's clients understand (resolve, model
// info, tree, listing), a write API for our own client (POST /api/lorahub/push/{user}/{name},
// bearer tokens) and a web page at /.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http/server.h"

namespace lorahub::hub {

struct ServerOptions {
  std::string root;    // blobs and (by default) the SQLite metadata live here
  std::string db_url;  // empty: SQLite under root; else postgresql://...
  std::string host = "127.0.0.1";
  int port = 8080;                         // 0: any free port
  std::string public_url;                  // base of absolute links; "" = http://host:port
  size_t max_upload_bytes = 512ull << 20;  // a larger push is refused with 413
  int page_size = 1000;                    // entries per page of tree and model listings
  int threads = 32;
  http::Limits limits;  // per client: connections, header size and count, deadlines, body rate
};

// A route the server answers: its method and its OpenAPI path template (/openapi.json documents
// exactly these).
struct HubRoute {
  std::string method;  // "GET", "POST", "PUT"
  std::string path;    // e.g. "/api/models/{user}/{name}/commit/{rev}"
};

class HubServer {
 public:
  explicit HubServer(ServerOptions options);
  ~HubServer();
  // Binds the socket; returns the port (useful with port 0). Throws Error when it cannot.
  int bind();
  // Serves until stop() (callable from another thread).
  void run();
  void stop();
  const std::vector<HubRoute>& routes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorahub::hub
