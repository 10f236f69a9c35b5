#include "hub/server.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <functional>
#include <set>

#include "core/error.h"
#include "formats/json.h"
#include "hub/blob_store.h"
#include "hub/commit.h"
#include "hub/hash.h"
#include "hub/hf_upload.h"
#include "hub/http_error.h"
#include "hub/meta_store.h"
#include "hub/module_check.h"
#include "hub/names.h"
#include "hub/openapi.h"
#include "hub/web_page.h"

namespace lorahub::hub {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxFilesPerUpload = 256;
constexpr size_t kMaxTextField = 4000;
constexpr size_t kMaxTags = 32;

void send_json(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

std::string iso_time(int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buffer;
}

// An integer query parameter within [low, high], or `fallback` when absent.
int64_t int_param(const httplib::Request& req, const char* key, int64_t fallback, int64_t low,
                  int64_t high) {
  if (!req.has_param(key)) return fallback;
  const std::string value = req.get_param_value(key);
  int64_t parsed = 0;
  try {
    size_t used = 0;
    parsed = std::stoll(value, &used);
    if (used != value.size()) throw std::invalid_argument(value);
  } catch (const std::exception&) {
    throw HttpError(
        400, fmt::format("query parameter '{}' is not an integer: '{}'", key, value.substr(0, 40)));
  }
  if (parsed < low || parsed > high) {
    throw HttpError(400, fmt::format("query parameter '{}' must be in [{}, {}]", key, low, high));
  }
  return parsed;
}

bool true_param(const httplib::Request& req, const char* key) {
  const std::string v = req.get_param_value(key);
  return v == "true" || v == "True" || v == "1";
}

std::string repo_from(const httplib::Request& req) {
  const std::string repo = std::string(req.matches[1]) + "/" + std::string(req.matches[2]);
  try {
    validate_repo_id(repo);
  } catch (const Error& e) {
    throw HttpError(400, e.what());
  }
  return repo;
}

json sibling_json(const FileEntry& f) {
  return {{"rfilename", f.path},
          {"size", f.size},
          {"blobId", f.git_oid},
          {"lfs", {{"sha256", f.sha256}, {"size", f.size}, {"pointerSize", 134}}}};
}

json lorahub_json(const Revision& rev) {
  const ModuleMeta& m = rev.meta;
  return {{"base_model", m.base_model},
          {"rank", m.rank},
          {"alpha", m.alpha},
          {"targets", m.targets},
          {"task", m.task},
          {"description", m.description},
          {"tags", m.tags},
          {"license", m.license},
          {"revision", rev.sha},
          {"parent", rev.parent},
          {"message", rev.message},
          {"created", iso_time(rev.created)}};
}

// The model-info object huggingface_hub's ModelInfo reads, plus our "lorahub" metadata.
json model_json(const RepoSummary& repo, const Revision& rev, bool with_files) {
  const ModuleMeta& m = rev.meta;
  json tags = {"peft", "lora", "lorahub"};
  if (!m.base_model.empty()) tags.push_back("base_model:adapter:" + m.base_model);
  for (const auto& t : m.tags) tags.push_back(t);
  json out = {{"_id", repo.id},
              {"id", repo.id},
              {"modelId", repo.id},
              {"author", repo.owner},
              {"sha", rev.sha},
              {"createdAt", iso_time(repo.created)},
              {"lastModified", iso_time(rev.created)},
              {"private", false},
              {"disabled", false},
              {"gated", false},
              {"downloads", 0},
              {"likes", 0},
              {"library_name", "peft"},
              {"tags", tags},
              {"cardData",
               {{"base_model", m.base_model},
                {"license", m.license},
                {"tags", m.tags},
                {"library_name", "peft"}}},
              {"lorahub", lorahub_json(rev)}};
  if (with_files) {
    json siblings = json::array();
    int64_t used = 0;
    for (const auto& f : rev.files) {
      siblings.push_back(sibling_json(f));
      used += f.size;
    }
    out["siblings"] = siblings;
    out["usedStorage"] = used;
  }
  return out;
}

// The absolute URL of this request's path with `query`, for Link headers.
std::string self_url(const httplib::Request& req, const std::string& query) {
  return fmt::format("http://{}{}?{}", req.get_header_value("Host"), req.path, query);
}

struct TreeEntry {
  std::string path;
  const FileEntry* file = nullptr;  // null for a folder
};

// Files and folders under `prefix` ("" = the root): all of them, or only the direct children.
std::vector<TreeEntry> tree_entries(const Revision& rev, const std::string& prefix,
                                    bool recursive) {
  std::set<std::string> folders;
  std::vector<TreeEntry> entries;
  const std::string base = prefix.empty() ? "" : prefix + "/";
  for (const auto& f : rev.files) {
    if (!f.path.starts_with(base)) continue;
    const std::string rest = f.path.substr(base.size());
    size_t slash = rest.find('/');
    if (!recursive && slash != std::string::npos) {
      folders.insert(base + rest.substr(0, slash));
      continue;
    }
    for (; slash != std::string::npos; slash = rest.find('/', slash + 1)) {
      folders.insert(base + rest.substr(0, slash));
    }
    entries.push_back({f.path, &f});
  }
  for (const auto& folder : folders) entries.push_back({folder, nullptr});
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return entries;
}

json tree_entry_json(const TreeEntry& e, const std::string& revision) {
  if (e.file == nullptr) {
    return {{"type", "directory"},
            {"oid", sha256_hex(revision + ":" + e.path).substr(0, 40)},
            {"size", 0},
            {"path", e.path}};
  }
  return {{"type", "file"},
          {"oid", e.file->git_oid},
          {"size", e.file->size},
          {"path", e.path},
          {"lfs", {{"oid", e.file->sha256}, {"size", e.file->size}, {"pointerSize", 134}}}};
}

// The JSON "meta" part of a push: what the uploader says about the module.
struct PushMeta {
  std::string parent;
  std::string message;
  ModuleMeta meta;
};

std::string text_field(const json& meta, const char* key) {
  const auto it = meta.find(key);
  if (it == meta.end() || it->is_null()) return "";
  if (!it->is_string()) throw HttpError(400, fmt::format("push meta: '{}' must be a string", key));
  const std::string value = it->get<std::string>();
  if (value.size() > kMaxTextField) {
    throw HttpError(400,
                    fmt::format("push meta: '{}' is longer than {} bytes", key, kMaxTextField));
  }
  return value;
}

PushMeta read_push_meta(const httplib::Request& req) {
  if (!req.has_file("meta")) throw HttpError(400, "push: missing the 'meta' form field");
  json meta;
  try {
    meta = parse_json(req.get_file_value("meta").content, "push meta");
  } catch (const Error& e) {
    throw HttpError(400, e.what());
  }
  if (!meta.is_object()) throw HttpError(400, "push meta: expected a JSON object");
  PushMeta out;
  out.parent = text_field(meta, "parent");
  if (!out.parent.empty() && !is_lower_hex(out.parent, 40)) {
    throw HttpError(400, "push meta: 'parent' must be a 40-digit revision sha or null");
  }
  out.message = text_field(meta, "message");
  out.meta.task = text_field(meta, "task");
  out.meta.description = text_field(meta, "description");
  out.meta.license = text_field(meta, "license");
  const auto tags = meta.find("tags");
  if (tags != meta.end() && !tags->is_null()) {
    if (!tags->is_array() || tags->size() > kMaxTags) {
      throw HttpError(400, fmt::format("push meta: 'tags' must be a list of at most {}", kMaxTags));
    }
    for (const auto& t : *tags) {
      if (!t.is_string()) throw HttpError(400, "push meta: every tag must be a string");
      try {
        validate_name(t.get<std::string>(), "tag");
      } catch (const Error& e) {
        throw HttpError(400, fmt::format("push meta: {}", e.what()));
      }
      out.meta.tags.push_back(t.get<std::string>());
    }
  }
  if (!out.meta.task.empty()) {
    try {
      validate_name(out.meta.task, "task name");
    } catch (const Error& e) {
      throw HttpError(400, fmt::format("push meta: {}", e.what()));
    }
  }
  return out;
}

std::vector<UploadedFile> read_push_files(const httplib::Request& req) {
  std::vector<UploadedFile> files;
  std::set<std::string> seen;
  const auto range = req.files.equal_range("file");
  for (auto it = range.first; it != range.second; ++it) {
    const std::string& path = it->second.filename;
    try {
      validate_file_path(path);
    } catch (const Error& e) {
      throw HttpError(400, fmt::format("push: {}", e.what()));
    }
    if (!seen.insert(path).second) throw HttpError(400, fmt::format("push: '{}' sent twice", path));
    if (files.size() >= kMaxFilesPerUpload) {
      throw HttpError(400, fmt::format("push: more than {} files", kMaxFilesPerUpload));
    }
    files.push_back({path, it->second.content});
  }
  if (files.empty()) throw HttpError(400, "push: no files");
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return files;
}

}  // namespace

struct HubServer::Impl {
  ServerOptions options;
  std::unique_ptr<MetaStore> meta;
  BlobStore blobs;
  HfUploads uploads;
  httplib::Server http;
  std::vector<HubRoute> routes;

  explicit Impl(ServerOptions o)
      : options(std::move(o)),
        meta(MetaStore::open(options.root, options.db_url)),
        blobs(options.root),
        uploads(*meta, blobs,
                {.root = options.root,
                 .public_url = options.public_url,
                 .scratch_root = scratch_root(),
                 .max_upload_bytes = static_cast<int64_t>(options.max_upload_bytes)}) {
    remove_stale_scratch(scratch_root());
    install_routes();
  }

  // Uploads are laid out here to be checked with the PEFT reader before anything is stored.
  std::string scratch_root() const { return options.root + "/uploads"; }

  void install_routes() {
    const int threads = options.threads;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http.set_payload_max_length(options.max_upload_bytes);
    http.set_keep_alive_max_count(1000);
    http.set_read_timeout(60);
    http.set_write_timeout(60);
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                  std::exception_ptr ep) { report(res, ep); });
    route("GET", "/", [](const auto&, auto& res) {
      const std::string_view page = web_page_html();
      res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
    });
    route("GET", "/openapi.json", [](const auto&, auto& res) {
      const std::string_view doc = openapi_json();
      res.set_content(doc.data(), doc.size(), "application/json");
    });
    route("GET", "/api/models", [this](const auto& req, auto& res) { list_models(req, res); });
    route("GET", "/api/whoami-v2", [this](const auto& req, auto& res) { whoami(req, res); });
    route("GET", "/api/models/{user}/{name}",
          [this](const auto& req, auto& res) { model_info(req, res, "main"); });
    route("GET", "/api/models/{user}/{name}/revision/{rev}",
          [this](const auto& req, auto& res) { model_info(req, res, req.matches[3]); });
    route("GET", "/api/models/{user}/{name}/tree/{rev}",
          [this](const auto& req, auto& res) { tree(req, res); });
    route("GET", "/api/models/{user}/{name}/tree/{rev}/{path}",
          [this](const auto& req, auto& res) { tree(req, res); });
    route("GET", "/{user}/{name}/resolve/{rev}/{path}",
          [this](const auto& req, auto& res) { resolve(req, res); });
    route("POST", "/api/lorahub/push/{user}/{name}",
          [this](const auto& req, auto& res) { push(req, res); });
    install_hf_upload_routes();
  }

  // huggingface_hub's write API (hf_upload.h) and the routes that go with it.
  void install_hf_upload_routes() {
    route("POST", "/api/repos/create", [this](const auto& req, auto& res) {
      const std::string user = uploads.authenticate(req.get_header_value("Authorization"));
      send_json(res, uploads.create_repo(user, req.body));
    });
    route("POST", "/api/validate-yaml",
          [this](const auto& req, auto& res) { send_json(res, uploads.validate_yaml(req.body)); });
    route("POST", "/api/models/{user}/{name}/preupload/{rev}", [this](const auto& req, auto& res) {
      const std::string repo = writable_repo(req);
      send_json(res, uploads.preupload(repo, req.matches[3], req.body));
    });
    route("POST", "/api/models/{user}/{name}/commit/{rev}", [this](const auto& req, auto& res) {
      const std::string repo = writable_repo(req);
      send_json(res, uploads.commit(repo, req.matches[3], req.body, true_param(req, "create_pr")));
    });
    route("POST", "/{user}/{name}.git/info/lfs/objects/batch", [this](const auto& req, auto& res) {
      const std::string repo = writable_repo(req);
      res.status = 200;
      res.set_content(uploads.lfs_batch(repo, req.body).dump(), "application/vnd.git-lfs+json");
    });
    route("PUT", "/api/lorahub/lfs/{user}/{name}/{oid}", [this](const auto& req, auto& res) {
      const std::string repo = repo_from(req);
      const int64_t size = uploads.check_lfs_upload(
          repo, req.matches[3], req.get_param_value("size"), req.get_param_value("expires"),
          req.get_param_value("signature"), std::nullopt);
      uploads.lfs_upload(req.matches[3], size, req.body);
      send_json(res, json::object());
    });
    route("POST", "/api/lorahub/lfs-verify/{user}/{name}", [this](const auto& req, auto& res) {
      const std::string repo = writable_repo(req);
      send_json(res, uploads.lfs_verify(repo, req.body));
    });
    // hf_xet shows neither the body nor the headers of a failed token request, only the URL it
    // ended at: the redirect puts the way out (HF_HUB_DISABLE_XET=1) where the user sees it.
    for (const char* kind : {"read", "write"}) {
      route("GET", fmt::format("/api/models/{{user}}/{{name}}/xet-{}-token/{{rev}}", kind),
            [this](const auto& req, auto& res) {
              repo_from(req);
              res.set_redirect(std::string(kXetNotServedPath), 307);
            });
    }
    route("GET", std::string(kXetNotServedPath), [](const auto&, auto&) { xet_not_served(); });
    route("GET", "/api/models/{user}/{name}/refs",
          [this](const auto& req, auto& res) { send_json(res, uploads.refs(repo_from(req))); });
    route("GET", "/api/models/{user}/{name}/commits/{rev}", [this](const auto& req, auto& res) {
      const int64_t limit = int_param(req, "limit", options.page_size, 1, options.page_size);
      send_json(res, uploads.commits(repo_from(req), req.matches[3], limit));
    });
  }

  // Serves `path`, an OpenAPI path template: {path} (the last parameter) may hold '/', every
  // other {parameter} is one segment. Records the route for HubServer::routes().
  void route(const std::string& method, const std::string& path,
             std::function<void(const httplib::Request&, httplib::Response&)> handler) {
    routes.push_back({method, path});
    std::string pattern;
    for (size_t i = 0; i < path.size(); ++i) {
      if (path[i] == '{') {
        const size_t close = path.find('}', i);
        pattern += path.substr(i, close - i + 1) == "{path}" ? "(.+)" : "([^/]+)";
        i = close;
      } else {
        if (path[i] == '.') pattern += '\\';
        pattern += path[i];
      }
    }
    if (method == "GET")
      http.Get(pattern, std::move(handler));
    else if (method == "POST")
      http.Post(pattern, std::move(handler));
    else if (method == "PUT")
      http.Put(pattern, std::move(handler));
    else
      fail("route {}: unsupported method {}", path, method);
  }

  // The repo of a write route, once the request's token may write to it.
  std::string writable_repo(const httplib::Request& req) {
    const std::string repo = repo_from(req);
    uploads.authorize(req.get_header_value("Authorization"), repo);
    return repo;
  }

  static void report(httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const HttpError& e) {
      if (!e.code.empty()) res.set_header("X-Error-Code", e.code);
      if (!e.commit.empty()) res.set_header("X-Repo-Commit", e.commit);
      json body = e.extra;
      body["error"] = e.what();
      send_json(res, body, e.status);
    } catch (const std::exception& e) {  // bad requests are HttpErrors; anything else is ours
      send_json(res, {{"error", fmt::format("internal error: {}", e.what())}}, 500);
    } catch (...) {
      send_json(res, {{"error", "internal error"}}, 500);
    }
  }

  // The revision `rev` of `repo`, or the 404 that huggingface_hub maps to the right exception.
  Revision revision_or_404(const std::string& repo, const std::string& rev) {
    if (auto found = meta->find_revision(repo, rev)) return *std::move(found);
    const auto head = meta->head_of(repo);
    if (!head) throw HttpError(404, fmt::format("repository '{}' not found", repo), "RepoNotFound");
    if (head->empty() && rev == "main") {  // created empty: main exists and holds no file yet
      throw HttpError(404, fmt::format("'{}' has no files yet", repo), "EntryNotFound");
    }
    throw HttpError(404, fmt::format("revision '{}' not found in '{}'", rev, repo),
                    "RevisionNotFound");
  }

  void whoami(const httplib::Request& req, httplib::Response& res) {
    const std::string user = uploads.authenticate(req.get_header_value("Authorization"));
    send_json(res, {{"type", "user"}, {"name", user}, {"auth", {{"type", "access_token"}}}});
  }

  void model_info(const httplib::Request& req, httplib::Response& res, const std::string& rev) {
    const std::string repo = repo_from(req);
    const Revision revision = revision_or_404(repo, rev);
    const auto summary = meta->find_repo(repo);
    if (!summary)
      throw HttpError(404, fmt::format("repository '{}' not found", repo), "RepoNotFound");
    send_json(res, model_json(*summary, revision, true));
  }

  void list_models(const httplib::Request& req, httplib::Response& res) {
    SearchFilter filter;
    filter.text = req.get_param_value("search");
    filter.author = req.get_param_value("author");
    filter.base_model = req.get_param_value("base_model");
    filter.task = req.get_param_value("task");
    filter.tag = req.get_param_value("tag");
    std::vector<std::string> hf_filters;
    for (size_t i = 0; i < req.get_param_value_count("filter"); ++i)
      hf_filters.push_back(req.get_param_value("filter", i));
    add_hf_filters(filter, hf_filters);
    if (req.has_param("rank")) filter.rank = int_param(req, "rank", 0, 1, 65536);
    const int64_t limit = int_param(req, "limit", options.page_size, 1, 100000);
    filter.limit = std::min<int64_t>(limit, options.page_size);
    filter.offset = int_param(req, "cursor", 0, 0, INT64_MAX / 2);
    const bool full = true_param(req, "full");
    json out = json::array();
    std::vector<RepoSummary> found = meta->search(filter);
    for (const auto& repo : found) {
      std::optional<Revision> head;
      if (full) head = meta->find_revision(repo.id, repo.head.sha);
      out.push_back(model_json(repo, head ? *head : repo.head, head.has_value()));
    }
    if (static_cast<int64_t>(found.size()) == filter.limit) {
      std::string query = fmt::format("cursor={}&limit={}", filter.offset + filter.limit, limit);
      for (const char* key :
           {"search", "author", "base_model", "task", "tag", "filter", "rank", "full"}) {
        for (size_t i = 0; i < req.get_param_value_count(key); ++i)
          query += fmt::format("&{}={}", key, percent_encode(req.get_param_value(key, i)));
      }
      res.set_header("Link", fmt::format("<{}>; rel=\"next\"", self_url(req, query)));
    }
    send_json(res, out);
  }

  void tree(const httplib::Request& req, httplib::Response& res) {
    const std::string repo = repo_from(req);
    const Revision rev = revision_or_404(repo, req.matches[3]);
    std::string prefix = req.matches.size() > 4 ? std::string(req.matches[4]) : "";
    while (prefix.ends_with('/')) prefix.pop_back();
    const bool recursive = true_param(req, "recursive");
    const auto entries = tree_entries(rev, prefix, recursive);
    if (!prefix.empty() && entries.empty()) {
      throw HttpError(404, fmt::format("'{}' not found in {}@{}", prefix, repo, rev.sha),
                      "EntryNotFound", rev.sha);
    }
    const int64_t limit = int_param(req, "limit", options.page_size, 1, options.page_size);
    const int64_t cursor = int_param(req, "cursor", 0, 0, INT64_MAX / 2);
    json out = json::array();
    for (int64_t i = cursor; i < static_cast<int64_t>(entries.size()) && i < cursor + limit; ++i) {
      out.push_back(tree_entry_json(entries[i], rev.sha));
    }
    if (cursor + limit < static_cast<int64_t>(entries.size())) {
      const std::string query = fmt::format("recursive={}&expand=false&limit={}&cursor={}",
                                            recursive ? "true" : "false", limit, cursor + limit);
      res.set_header("Link", fmt::format("<{}>; rel=\"next\"", self_url(req, query)));
    }
    send_json(res, out);
  }

  void resolve(const httplib::Request& req, httplib::Response& res) {
    const std::string repo = repo_from(req);
    const std::string path = req.matches[4];
    try {
      validate_file_path(path);
    } catch (const Error& e) {
      throw HttpError(400, e.what());
    }
    const Revision rev = revision_or_404(repo, req.matches[3]);
    const auto file = std::find_if(rev.files.begin(), rev.files.end(),
                                   [&](const auto& f) { return f.path == path; });
    if (file == rev.files.end()) {
      throw HttpError(404, fmt::format("'{}' not found in {}@{}", path, repo, rev.sha),
                      "EntryNotFound", rev.sha);
    }
    // A missing or resized blob means the store was damaged outside the hub: a server fault.
    if (!blobs.contains(file->sha256)) {
      throw HttpError(
          500, fmt::format("{}@{}: the store has lost the blob of '{}'", repo, rev.sha, path));
    }
    const auto blob = blobs.open(file->sha256);
    if (blob->size() != static_cast<size_t>(file->size)) {
      throw HttpError(500, fmt::format("{}: stored blob has {} bytes, expected {}", blob->path(),
                                       blob->size(), file->size));
    }
    res.set_header("X-Repo-Commit", rev.sha);
    res.set_header("ETag", "\"" + file->sha256 + "\"");
    res.set_header("X-Linked-Etag", "\"" + file->sha256 + "\"");
    res.set_header("X-Linked-Size", std::to_string(file->size));
    res.set_header("Accept-Ranges", "bytes");
    // A revision sha names fixed content; "main" moves with every push.
    const bool pinned = std::string(req.matches[3]) == rev.sha;
    res.set_header("Cache-Control", pinned ? "public, max-age=31536000, immutable" : "no-cache");
    if (blob->size() == 0) {
      res.set_content("", "application/octet-stream");
      return;
    }
    res.set_content_provider(blob->size(), "application/octet-stream",
                             [blob](size_t offset, size_t length, httplib::DataSink& sink) {
                               const size_t chunk = std::min<size_t>(length, 1 << 20);
                               return sink.write(
                                   reinterpret_cast<const char*>(blob->data()) + offset, chunk);
                             });
  }

  void push(const httplib::Request& req, httplib::Response& res) {
    const std::string repo = writable_repo(req);
    if (!req.is_multipart_form_data()) throw HttpError(400, "push: expected multipart/form-data");
    const PushMeta pm = read_push_meta(req);
    const std::vector<UploadedFile> files = read_push_files(req);
    const auto rev =
        commit_upload(*meta, blobs, scratch_root(), {repo, pm.parent, pm.message, pm.meta}, files);
    if (!rev) throw conflict(repo, pm.parent);
    send_json(res, {{"commit", rev->sha}, {"repo", repo}, {"files", rev->files.size()}});
  }

  HttpError conflict(const std::string& repo, const std::string& parent) {
    return HttpError(409, fmt::format("'{}' has moved on: its head is '{}', not '{}' (pull, then "
                                      "push again)",
                                      repo, meta->head_of(repo).value_or("none"),
                                      parent.empty() ? "none" : parent));
  }
};

HubServer::HubServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
HubServer::~HubServer() = default;

int HubServer::bind() {
  const auto& o = impl_->options;
  const int port = o.port == 0 ? impl_->http.bind_to_any_port(o.host)
                               : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
  check(port > 0, "cannot listen on {}:{} (in use, or not a local address?)", o.host, o.port);
  if (o.public_url.empty())
    impl_->uploads.set_public_url(fmt::format("http://{}:{}", o.host, port));
  return port;
}

const std::vector<HubRoute>& HubServer::routes() const {
  return impl_->routes;
}

void HubServer::run() {
  impl_->http.listen_after_bind();
}
void HubServer::stop() {
  impl_->http.stop();
}

}  // namespace lorahub::hub
