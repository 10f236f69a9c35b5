#include "hub/client.h"

#include <httplib.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/json.h"
#include "formats/module_embedding.h"
#include "hub/hash.h"
#include "hub/names.h"

namespace lorahub::hub {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// The server's {"error": ...} message, or the start of the body.
std::string error_detail(const httplib::Result& result) {
  if (!result) {
    if (result.error() == httplib::Error::Connection) return "cannot connect (is the hub running?)";
    return "no answer: " + httplib::to_string(result.error());
  }
  const std::string status = fmt::format("HTTP {}", result->status);
  try {
    const json body = json::parse(result->body);
    if (body.is_object() && body.contains("error") && body["error"].is_string()) {
      return status + ": " + body["error"].get<std::string>();
    }
  } catch (const std::exception&) {
  }
  return status;
}

// Regular files under `dir`, relative paths sorted; hidden files and folders are skipped
// (.git, editor backups) and symlinks refused, so a push sends exactly what the folder holds.
std::vector<std::string> files_to_push(const std::string& dir) {
  check(fs::is_directory(dir), "{}: not a folder", dir);
  std::vector<std::string> paths;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string name = it->path().filename().string();
    if (name.starts_with('.')) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    check(!it->is_symlink(), "{}: symbolic links are not pushed", it->path().string());
    if (!it->is_regular_file()) continue;
    const std::string rel = fs::relative(it->path(), dir).generic_string();
    validate_file_path(rel);
    paths.push_back(rel);
  }
  std::sort(paths.begin(), paths.end());
  check(!paths.empty(), "{}: no files to push", dir);
  return paths;
}

}  // namespace

namespace {

int64_t positive_integer(const std::string& key, const std::string& value) {
  int64_t number = 0;
  size_t used = 0;
  try {
    number = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  check(used == value.size() && used > 0 && number > 0,
        "hub filter: {} must be a positive integer, got '{}'", key, value);
  return number;
}

// Applies one "key=value" to `filter`.
void apply_filter_item(const std::string& item, HubFilter& filter) {
  static const std::map<std::string, std::string HubFilter::*> kTextKeys = {
      {"text", &HubFilter::text},
      {"base", &HubFilter::base_model},
      {"tag", &HubFilter::tag},
      {"task", &HubFilter::task},
      {"author", &HubFilter::author}};
  const size_t eq = item.find('=');
  check(eq != std::string::npos && eq > 0, "hub filter: '{}' is not key=value", item);
  const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
  if (const auto it = kTextKeys.find(key); it != kTextKeys.end()) {
    filter.*(it->second) = value;
  } else if (key == "rank") {
    filter.rank = positive_integer(key, value);
  } else if (key == "limit") {
    filter.limit = positive_integer(key, value);
  } else {
    fail("hub filter: unknown key '{}' (text, base, tag, task, author, rank, limit)", key);
  }
}

}  // namespace

HubFilter parse_hub_filter(const std::vector<std::string>& specs) {
  HubFilter filter;
  for (const auto& spec : specs) {
    std::stringstream items(spec);
    for (std::string item; std::getline(items, item, ',');) {
      if (!item.empty()) apply_filter_item(item, filter);
    }
  }
  return filter;
}

std::string default_cache_dir() {
  const std::string cache = env_or("LORAHUB_CACHE", "");
  if (!cache.empty()) return cache;
  const std::string xdg = env_or("XDG_CACHE_HOME", env_or("HOME", ".") + "/.cache");
  return xdg + "/lorahub/hub";
}

std::string default_endpoint() {
  return env_or("LORAHUB_ENDPOINT", env_or("HF_ENDPOINT", "http://127.0.0.1:8080"));
}

struct HubClient::Impl {
  std::string endpoint;
  std::string token;
  httplib::Client http;

  Impl(std::string e, std::string t)
      : endpoint(std::move(e)), token(std::move(t)), http(check_endpoint(endpoint)) {
    // A server refusing an upload early (401, 413) closes the socket while we still write: that
    // must be an error to report, not SIGPIPE killing the process.
    std::signal(SIGPIPE, SIG_IGN);
    http.set_connection_timeout(10);
    http.set_read_timeout(300);
    http.set_write_timeout(300);
    http.set_keep_alive(true);
  }

  static const std::string& check_endpoint(const std::string& endpoint) {
    check(endpoint.starts_with("http://") || endpoint.starts_with("https://"),
          "hub endpoint '{}' must start with http:// or https://", endpoint);
    const size_t path = endpoint.find('/', endpoint.find("://") + 3);
    check(path == std::string::npos || path == endpoint.size() - 1,
          "hub endpoint '{}' must be scheme://host[:port] without a path", endpoint);
    return endpoint;
  }

  httplib::Headers headers() const {
    if (token.empty()) return {};
    return {{"Authorization", "Bearer " + token}};
  }

  // GET returning the body; a non-200 answer throws Error naming the URL and the server's reason.
  std::string get(const std::string& path, int* status = nullptr) {
    auto result = http.Get(path, headers());
    if (status && result) *status = result->status;
    if (status && result && result->status == 404) return "";
    check(result && result->status == 200, "GET {}{}: {}", endpoint, path, error_detail(result));
    return result->body;
  }

  json get_json(const std::string& path, int* status = nullptr) {
    const std::string body = get(path, status);
    if (status && *status == 404) return nullptr;
    return parse_json(body, endpoint + path);
  }
};

HubClient::HubClient(std::string endpoint, std::string token)
    : impl_(std::make_unique<Impl>(std::move(endpoint), std::move(token))) {}
HubClient::~HubClient() = default;

json HubClient::model_info(const std::string& repo, const std::string& rev) {
  validate_repo_id(repo);
  const std::string path = rev == "main"
                               ? "/api/models/" + repo
                               : "/api/models/" + repo + "/revision/" + percent_encode(rev);
  const json info = impl_->get_json(path);
  check(info.is_object() && info.contains("sha") && info["sha"].is_string() &&
            info.contains("siblings") && info["siblings"].is_array(),
        "{}{}: not a model-info object", impl_->endpoint, path);
  return info;
}

std::string HubClient::push(const std::string& dir, const PushOptions& options) {
  validate_repo_id(options.repo);
  check(!impl_->token.empty(), "push needs a token (none was given and HF_TOKEN is not set)");
  const std::vector<std::string> files = files_to_push(dir);  // a bad folder before the network
  int status = 0;
  const json current = impl_->get_json("/api/models/" + options.repo, &status);
  const json parent = status == 404 ? json(nullptr) : current.at("sha");
  const json meta = {{"parent", parent},
                     {"task", options.task},
                     {"description", options.description},
                     {"license", options.license},
                     {"message", options.message},
                     {"tags", options.tags}};
  httplib::MultipartFormDataItems items{{"meta", meta.dump(), "", "application/json"}};
  for (const auto& rel : files) {
    items.push_back(
        {"file", read_text_file((fs::path(dir) / rel).string()), rel, "application/octet-stream"});
  }
  const std::string path = "/api/lorahub/push/" + options.repo;
  auto result = impl_->http.Post(path, impl_->headers(), items);
  if (result && result->status == 413) {
    fail("push to {}: the upload is larger than the server's limit (HTTP 413)", impl_->endpoint);
  }
  // A server refusing an oversize body may close the connection before we finish sending it.
  check(result, "push to {}: {} (a server also drops uploads over its size limit)", impl_->endpoint,
        error_detail(result));
  check(result->status == 200, "push to {}: {}", impl_->endpoint, error_detail(result));
  const json answer = parse_json(result->body, "push answer");
  check(answer.is_object() && answer.contains("commit") && answer["commit"].is_string(),
        "push to {}: the answer has no commit", impl_->endpoint);
  return answer["commit"].get<std::string>();
}

std::vector<json> HubClient::search(const HubFilter& filter, bool full) {
  std::string query = fmt::format("limit={}{}", filter.limit, full ? "&full=true" : "");
  auto add = [&](const char* key, const std::string& value) {
    if (!value.empty()) query += fmt::format("&{}={}", key, percent_encode(value));
  };
  add("search", filter.text);
  add("base_model", filter.base_model);
  add("tag", filter.tag);
  add("task", filter.task);
  add("author", filter.author);
  if (filter.rank) add("rank", std::to_string(*filter.rank));
  std::vector<json> found;
  // Pages are bounded by the limit; the cursor moves forward each time, so this ends.
  for (int64_t cursor = 0; static_cast<int64_t>(found.size()) < filter.limit;) {
    const json page = impl_->get_json(fmt::format("/api/models?{}&cursor={}", query, cursor));
    check(page.is_array(), "{}/api/models: expected a list", impl_->endpoint);
    for (const auto& m : page) {
      if (static_cast<int64_t>(found.size()) < filter.limit) found.push_back(m);
    }
    if (page.empty()) break;
    cursor += static_cast<int64_t>(page.size());
  }
  return found;
}

std::string HubClient::get_file(const std::string& repo, const std::string& sha,
                                const std::string& path, int64_t size, const std::string& sha256) {
  const std::string body = impl_->get(fmt::format("/{}/resolve/{}/{}", repo, sha, path));
  check(static_cast<int64_t>(body.size()) == size, "{}@{}: {} has {} bytes, expected {}", repo, sha,
        path, body.size(), size);
  const std::string got = sha256_hex(body);
  check(got == sha256, "{}@{}: {} has SHA-256 {}, expected {}", repo, sha, path, got, sha256);
  return body;
}

std::string HubClient::pull(const std::string& repo, const std::string& rev,
                            const std::string& to_dir) {
  const json info = model_info(repo, rev);
  const std::string sha = info["sha"].get<std::string>();
  check(is_lower_hex(sha, 40), "{}: revision '{}' is not a 40-digit sha", repo, sha);
  for (const auto& sibling : info["siblings"]) {
    const std::string path = sibling.at("rfilename").get<std::string>();
    validate_file_path(path);  // never write outside to_dir, whatever the server says
    const std::string body = get_file(repo, sha, path, sibling.at("size").get<int64_t>(),
                                      sibling.at("lfs").at("sha256").get<std::string>());
    const fs::path target = fs::path(to_dir) / path;
    fs::create_directories(target.parent_path());
    write_file_atomic(target.string(), body);
  }
  return sha;
}

namespace {

// Makes sure revision `sha` of `repo` is in cache_dir/<user>/<name>/<sha>/; returns that folder.
std::string cache_module(HubClient& client, const std::string& repo, const std::string& sha,
                         const std::string& cache_dir) {
  validate_repo_id(repo);
  check(is_lower_hex(sha, 40), "{}: revision '{}' is not a 40-digit sha", repo, sha);
  const fs::path target = fs::path(cache_dir) / repo / sha;
  if (fs::is_directory(target)) return target.string();
  // Pull next to the target and rename: the cache never holds a half-pulled module.
  const fs::path partial = fs::path(cache_dir) / repo / fmt::format(".{}.{}", sha, random_hex(4));
  fs::create_directories(partial);
  try {
    client.pull(repo, sha, partial.string());
    std::error_code ec;
    fs::rename(partial, target, ec);
    // Another process may have cached the same revision meanwhile: theirs is as good.
    if (ec) {
      check(fs::is_directory(target), "{}: cannot move into the cache: {}", target.string(),
            ec.message());
      fs::remove_all(partial, ec);
    }
  } catch (...) {
    std::error_code ec;
    fs::remove_all(partial, ec);
    throw;
  }
  return target.string();
}

}  // namespace

std::vector<std::string> fetch_modules(const std::string& endpoint, const HubFilter& filter,
                                       const std::string& cache_dir) {
  HubClient client(endpoint, env_or("HF_TOKEN", ""));
  std::vector<std::string> dirs;
  for (const auto& module : client.search(filter))
    dirs.push_back(cache_module(client, module.at("id").get<std::string>(),
                                module.at("sha").get<std::string>(), cache_dir));
  return dirs;
}

std::vector<ListedModule> list_module_embeddings(const std::string& endpoint,
                                                 const HubFilter& filter) {
  HubClient client(endpoint, env_or("HF_TOKEN", ""));
  std::vector<ListedModule> out;
  for (const json& module : client.search(filter, true)) {
    ListedModule m{module.at("id").get<std::string>(), module.at("sha").get<std::string>(), ""};
    validate_repo_id(m.repo);
    check(is_lower_hex(m.sha, 40), "{}: revision '{}' is not a 40-digit sha", m.repo, m.sha);
    const json embedding = module.value("lorahub", json::object()).value("embedding", json());
    if (embedding.is_object()) {
      const auto size = embedding.at("size").get<int64_t>();
      check(size >= 0 && size <= static_cast<int64_t>(kMaxModuleEmbeddingBytes),
            "{}@{}: the embedding file claims {} bytes", m.repo, m.sha, size);
      m.embedding = client.get_file(m.repo, m.sha, kModuleEmbeddingFile, size,
                                    embedding.at("sha256").get<std::string>());
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::string fetch_module(const std::string& endpoint, const std::string& repo,
                         const std::string& sha, const std::string& cache_dir) {
  HubClient client(endpoint, env_or("HF_TOKEN", ""));
  return cache_module(client, repo, sha, cache_dir);
}

std::vector<std::string> fetch_module_ids(const std::string& endpoint, const std::string& token,
                                          const std::vector<std::string>& ids,
                                          const std::string& cache_dir) {
  HubClient client(endpoint, token);
  std::vector<std::string> dirs;
  for (const std::string& id : ids) {
    const size_t at = id.find('@');
    const std::string repo = id.substr(0, at);
    const std::string rev = at == std::string::npos ? "main" : id.substr(at + 1);
    validate_repo_id(repo);
    const nlohmann::json info = client.model_info(repo, rev);
    check(info.is_object() && info.contains("sha") && info["sha"].is_string(),
          "{}@{}: the hub's answer has no revision sha", repo, rev);
    dirs.push_back(cache_module(client, repo, info["sha"].get<std::string>(), cache_dir));
  }
  return dirs;
}

}  // namespace lorahub::hub
