// api::Server (include/lorahub/serve.h): the public face of OpenAIServer, which it wraps.
#include <filesystem>
#include <fstream>
#include <set>

#include "api/internal.h"
#include "core/error.h"
#include "lorahub/serve.h"
#include "serve/server.h"

namespace lorahub::api {
namespace {

// One key per line; blank lines and lines starting with '#' are skipped.
std::set<std::string> read_keys(const std::string& path) {
  std::ifstream in(path);
  check(in.good(), "{}: cannot read the API key file", path);
  std::set<std::string> keys;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty() && line[0] != '#') keys.insert(line);
  }
  check(!keys.empty(), "{}: no API keys in the file", path);
  return keys;
}

// "models/smol/" -> "smol", "x/model.gguf" -> "model".
std::string base_name(const std::string& path) {
  std::filesystem::path p(path);
  while (p.has_relative_path() && p.filename().empty()) p = p.parent_path();  // "dir/"
  return p.extension() == ".gguf" ? p.stem().string() : p.filename().string();
}

serve::ServeOptions engine_options(const ServeOptions& o) {
  serve::ServeOptions e;
  e.host = o.host;
  e.port = o.port;
  if (!o.api_key_file.empty())
    e.api_keys = as_option("api_key_file", [&] { return read_keys(o.api_key_file); });
  e.adapters.base_name = o.name.empty() ? base_name(o.model) : o.name;
  e.adapters.module_dirs = o.module_dirs;
  e.adapters.hub_endpoint = o.hub_endpoint;
  e.adapters.hub_token = o.hub_token;
  e.adapters.hub_cache = o.hub_cache;
  e.adapters.bf16 = o.model_options.bf16;
  e.adapters.cache_bytes = o.adapter_cache_bytes;
  e.scheduler.max_batch = o.max_batch;
  e.scheduler.max_queue = o.max_queue;
  e.max_body = o.max_body_bytes;
  e.max_tokens = o.max_tokens;
  e.shutdown_timeout = o.shutdown_timeout;
  return e;
}

}  // namespace

struct Server::Impl {
  serve::ServeOptions options;
  std::unique_ptr<serve::OpenAIServer> server;
};

Server::Server(ServeOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = engine_options(options);
  auto model =
      as_option("model", [&] { return Model::load(options.model, options.model_options); });
  impl_->server = std::make_unique<serve::OpenAIServer>(std::move(model), impl_->options);
}

Server::~Server() = default;

const std::string& Server::model_name() const {
  return impl_->options.adapters.base_name;
}
int Server::bind() {
  return impl_->server->bind();
}
void Server::run() {
  impl_->server->run();
}
void Server::stop() {
  impl_->server->shutdown();
}

}  // namespace lorahub::api
