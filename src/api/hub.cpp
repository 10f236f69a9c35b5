// include/lorahub/hub.h over src/hub: the hub server, its maintenance and its client.
#include "lorahub/hub.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hub/client.h"
#include "hub/gc.h"
#include "hub/meta_store.h"
#include "hub/names.h"
#include "hub/server.h"
#include "lorahub/lorahub.h"

namespace lorahub::api {

// ------------------------------------------------------------------------------ hub server

namespace {

hub::ServerOptions engine_options(const HubServerOptions& o) {
  hub::ServerOptions e;
  e.root = o.root;
  e.db_url = o.db_url;
  e.host = o.host;
  e.port = o.port;
  e.public_url = o.public_url;
  e.max_upload_bytes = o.max_upload_bytes;
  e.page_size = o.page_size;
  e.threads = o.threads;
  const HttpLimits& l = o.limits;
  e.limits = {.max_connections = l.max_connections,
              .max_header_bytes = l.max_header_bytes,
              .max_header_fields = l.max_header_fields,
              .header_timeout = l.header_timeout,
              .idle_timeout = l.idle_timeout,
              .body_timeout = l.body_timeout,
              .min_body_rate = l.min_body_rate,
              .write_timeout = l.write_timeout};
  return e;
}

}  // namespace

struct HubServer::Impl {
  explicit Impl(const HubServerOptions& options) : server(engine_options(options)) {}
  hub::HubServer server;
};

HubServer::HubServer(const HubServerOptions& options) : impl_(std::make_unique<Impl>(options)) {}
HubServer::~HubServer() = default;
int HubServer::bind() {
  return impl_->server.bind();
}
void HubServer::run() {
  impl_->server.run();
}
void HubServer::stop() {
  impl_->server.stop();
}

// ------------------------------------------------------------------------------ maintenance

std::string hub_create_token(const std::string& root, const std::string& db_url,
                             const std::string& user) {
  hub::validate_name(user, "user name");
  return hub::MetaStore::open(root, db_url)->create_token(user);
}

void hub_revoke_token(const std::string& root, const std::string& db_url,
                      const std::string& token) {
  const auto store = hub::MetaStore::open_existing(root, db_url);
  check(store->revoke_token(token), "no such token on {}", store->describe());
}

int64_t hub_revoke_user_tokens(const std::string& root, const std::string& db_url,
                               const std::string& user) {
  const auto store = hub::MetaStore::open_existing(root, db_url);
  hub::validate_name(user, "user name");
  const int64_t n = store->revoke_tokens_of(user);
  check(n > 0, "user '{}' has no tokens on {}", user, store->describe());
  return n;
}

HubGcReport hub_gc(const std::string& root, const HubGcOptions& options) {
  if (options.min_age.count() < 0)
    throw OptionError("min_age", fmt::format("must be >= 0, got {} s", options.min_age.count()));
  const hub::GcReport r =
      hub::collect_garbage_at(root, options.db_url, options.min_age, options.dry_run);
  HubGcReport report{.referenced = r.referenced,
                     .young = r.young,
                     .collected = {},
                     .collected_bytes = r.collected_bytes,
                     .abandoned_temp_files = r.abandoned_temp_files};
  for (const hub::BlobFile& blob : r.collected)
    report.collected.push_back({blob.sha256, blob.size});
  return report;
}

// ------------------------------------------------------------------------------ hub client

std::string hub_default_endpoint() {
  return hub::default_endpoint();
}

namespace {

// The listed fields of a model-info object; absent ones stay empty (info_json has it all).
HubModule to_module(const nlohmann::json& info) {
  HubModule m;
  m.id = info.value("id", "");
  m.sha = info.value("sha", "");
  const nlohmann::json h = info.value("lorahub", nlohmann::json::object());
  m.task = h.value("task", "");
  m.base_model = h.value("base_model", "");
  m.rank = h.value("rank", int64_t{0});
  m.alpha = h.value("alpha", 0.0);
  m.tags = h.value("tags", std::vector<std::string>{});
  m.info_json = info.dump();
  return m;
}

}  // namespace

struct HubClient::Impl {
  Impl(const std::string& endpoint, const std::string& token) : client(endpoint, token) {}
  hub::HubClient client;
};

HubClient::HubClient(const std::string& endpoint, const std::string& token)
    : impl_(std::make_unique<Impl>(endpoint, token)) {}
HubClient::~HubClient() = default;

std::string HubClient::push(const std::string& dir, const HubPushOptions& options) {
  hub::PushOptions push;
  push.repo = options.repo;
  push.task = options.task;
  push.description = options.description;
  push.license = options.license;
  push.message = options.message;
  push.tags = options.tags;
  return impl_->client.push(dir, push);
}

std::vector<HubModule> HubClient::search(const HubQuery& query) {
  const hub::HubFilter filter{.text = query.text,
                              .base_model = query.base_model,
                              .tag = query.tag,
                              .task = query.task,
                              .author = query.author,
                              .rank = query.rank,
                              .limit = query.limit};
  std::vector<HubModule> found;
  for (const nlohmann::json& info : impl_->client.search(filter)) found.push_back(to_module(info));
  return found;
}

std::string HubClient::pull(const std::string& repo, const std::string& rev,
                            const std::string& to_dir) {
  return impl_->client.pull(repo, rev, to_dir);
}

}  // namespace lorahub::api
