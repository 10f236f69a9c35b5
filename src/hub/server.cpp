#include "hub/server.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>

#include "core/error.h"
#include "core/utf8.h"
#include "formats/json.h"
#include "http/multipart.h"
#include "http/server.h"
#include "hub/blob_store.h"
#include "hub/hash.h"
#include "hub/meta_store.h"
#include "hub/module_check.h"
#include "hub/names.h"
#include "hub/web_page.h"

namespace lorahub::hub {
namespace {

using json = nlohmann::json;

// A failure with its HTTP status and, for huggingface_hub, its X-Error-Code (RepoNotFound,
// RevisionNotFound, EntryNotFound decide which Python exception the client raises).
http::Error HttpError(int status, std::string message, std::string code = "",
                      std::string commit = "") {
  http::Headers headers;
  if (!code.empty()) headers.emplace("X-Error-Code", std::move(code));
  if (!commit.empty()) headers.emplace("X-Repo-Commit", std::move(commit));
  return http::Error(status, std::move(message), std::move(headers));
}

constexpr size_t kMaxFilesPerUpload = 256;
constexpr size_t kMaxTextField = 4000;
constexpr size_t kMaxTags = 32;

http::Response send_json(const json& body, int status = 200) {
  return http::Response::json(body.dump(), status);
}

std::string iso_time(int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buffer;
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// An integer query parameter within [low, high], or `fallback` when absent.
int64_t int_param(const http::Request& req, const char* key, int64_t fallback, int64_t low,
                  int64_t high) {
  if (!req.has_param(key)) return fallback;
  const std::string value = req.param(key);
  int64_t parsed = 0;
  try {
    size_t used = 0;
    parsed = std::stoll(value, &used);
    if (used != value.size()) throw std::invalid_argument(value);
  } catch (const std::exception&) {
    throw HttpError(400, fmt::format("query parameter '{}' is not an integer: '{}'", key,
                                     printable_utf8(value, 40)));
  }
  if (parsed < low || parsed > high) {
    throw HttpError(400, fmt::format("query parameter '{}' must be in [{}, {}]", key, low, high));
  }
  return parsed;
}

bool true_param(const http::Request& req, const char* key) {
  const std::string v = req.param(key);
  return v == "true" || v == "True" || v == "1";
}

std::string repo_from(const http::Request& req) {
  const std::string repo = req.capture("user") + "/" + req.capture("name");
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

// A Link header to the next page. huggingface_hub fetches it as it is, so it must be absolute;
// it is built on the configured base URL and checked names, never on the client's Host header.
std::string next_link(const std::string& base_url, const std::string& path,
                      const std::string& query) {
  return fmt::format("<{}{}?{}>; rel=\"next\"", base_url, path, query);
}

// base64 of SHA-256: the form of a Content-Security-Policy source hash.
std::string sha256_base64(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  std::string out(4 * ((length + 2) / 3) + 1, '\0');
  out.resize(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), digest, length));
  return out;
}

// The text between `open` and `close` in `page` (the page's one inline script or style).
std::string_view inline_block(std::string_view page, std::string_view open,
                              std::string_view close) {
  const size_t start = page.find(open);
  const size_t end = page.find(close, start);
  check(start != std::string_view::npos && end != std::string_view::npos, "web page: no {} block",
        open);
  return page.substr(start + open.size(), end - start - open.size());
}

// A strict policy for the web page: only its own inline script and style (by hash) run, it
// talks only to this server, and nothing may frame it.
std::string web_page_csp() {
  const std::string_view page = web_page_html();
  return fmt::format(
      "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; "
      "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      sha256_base64(inline_block(page, "<script>", "</script>")),
      sha256_base64(inline_block(page, "<style>", "</style>")));
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

const http::FormPart* find_part(const std::vector<http::FormPart>& parts, std::string_view name) {
  const auto it =
      std::find_if(parts.begin(), parts.end(), [&](const auto& p) { return p.name == name; });
  return it == parts.end() ? nullptr : &*it;
}

PushMeta read_push_meta(const std::vector<http::FormPart>& parts) {
  const http::FormPart* part = find_part(parts, "meta");
  if (part == nullptr) throw HttpError(400, "push: missing the 'meta' form field");
  json meta;
  try {
    meta = parse_json(part->content, "push meta");
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

std::vector<UploadedFile> read_push_files(const std::vector<http::FormPart>& parts) {
  std::vector<UploadedFile> files;
  std::set<std::string> seen;
  for (const auto& part : parts) {
    if (part.name != "file") continue;
    const std::string& path = part.filename;
    try {
      validate_file_path(path);
    } catch (const Error& e) {
      throw HttpError(400, fmt::format("push: {}", e.what()));
    }
    if (!seen.insert(path).second) throw HttpError(400, fmt::format("push: '{}' sent twice", path));
    if (files.size() >= kMaxFilesPerUpload) {
      throw HttpError(400, fmt::format("push: more than {} files", kMaxFilesPerUpload));
    }
    files.push_back({path, std::string(part.content)});
  }
  if (files.empty()) throw HttpError(400, "push: no files");
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  return files;
}

// 40 hex digits naming the revision: the hash of everything it records plus a nonce, so two
// identical uploads still get distinct, never-reused revisions.
std::string revision_sha(const Revision& rev) {
  json files = json::array();
  for (const auto& f : rev.files) files.push_back({f.path, f.sha256});
  const json content = {{"repo", rev.repo}, {"parent", rev.parent},      {"created", rev.created},
                        {"files", files},   {"meta", lorahub_json(rev)}, {"nonce", random_hex(16)}};
  return sha256_hex(content.dump()).substr(0, 40);
}

}  // namespace

struct HubServer::Impl {
  ServerOptions options;
  std::unique_ptr<MetaStore> meta;
  BlobStore blobs;
  std::string csp = web_page_csp();
  std::string base_url;  // for Link headers; options.public_url or the bound address
  std::unique_ptr<http::Server> server;

  explicit Impl(ServerOptions o)
      : options(std::move(o)),
        meta(MetaStore::open(options.root, options.db_url)),
        blobs(options.root) {
    remove_stale_scratch(scratch_root());
    http::ServerOptions http_options;
    http_options.host = options.host;
    http_options.port = options.port;
    http_options.worker_threads = options.threads;
    server = std::make_unique<http::Server>(http_options, routes());
  }

  // Uploads are laid out here to be checked with the PEFT reader before anything is stored.
  std::string scratch_root() const { return options.root + "/uploads"; }

  http::Router routes() {
    http::Router router;
    auto get = [&](std::string pattern, auto member) {
      router.add({.method = "GET",
                  .pattern = std::move(pattern),
                  .handler = [this, member](http::Request& req) { return (this->*member)(req); },
                  .before_body = nullptr,
                  .max_body = 0});
    };
    get("/", &Impl::page);
    get("/api/models", &Impl::list_models);
    get("/api/whoami-v2", &Impl::whoami);
    get("/api/models/{user}/{name}", &Impl::model_info);
    get("/api/models/{user}/{name}/revision/{rev}", &Impl::model_info);
    get("/api/models/{user}/{name}/tree/{rev}", &Impl::tree);
    get("/api/models/{user}/{name}/tree/{rev}/{path*}", &Impl::tree);
    get("/{user}/{name}/resolve/{rev}/{path*}", &Impl::resolve);
    router.add({.method = "POST",
                .pattern = "/api/lorahub/push/{user}/{name}",
                .handler = [this](http::Request& req) { return push(req); },
                // Token, namespace and form type are checked before the upload is read.
                .before_body = [this](const http::Request& req) { authorize_push(req); },
                .max_body = options.max_upload_bytes});
    return router;
  }

  http::Response page(http::Request&) {
    auto res = http::Response::text(std::string(web_page_html()), "text/html; charset=utf-8");
    res.set_header("Content-Security-Policy", csp);
    res.set_header("Referrer-Policy", "no-referrer");
    return res;
  }

  // The revision `rev` of `repo`, or the 404 that huggingface_hub maps to the right exception.
  Revision revision_or_404(const std::string& repo, const std::string& rev) {
    if (auto found = meta->find_revision(repo, rev)) return *std::move(found);
    if (!meta->head_of(repo)) {
      throw HttpError(404, fmt::format("repository '{}' not found", repo), "RepoNotFound");
    }
    throw HttpError(404, fmt::format("revision '{}' not found in '{}'", rev, repo),
                    "RevisionNotFound");
  }

  std::optional<std::string> user_of(const http::Request& req) {
    const std::string header = req.header("Authorization");
    if (!header.starts_with("Bearer ")) return std::nullopt;
    return meta->user_for_token(header.substr(7));
  }

  http::Response whoami(http::Request& req) {
    const auto user = user_of(req);
    if (!user) throw HttpError(401, "missing or invalid token");
    return send_json({{"type", "user"}, {"name", *user}, {"auth", {{"type", "access_token"}}}});
  }

  http::Response model_info(http::Request& req) {
    const std::string repo = repo_from(req);
    const std::string rev = req.captures.count("rev") ? req.capture("rev") : "main";
    const Revision revision = revision_or_404(repo, rev);
    const auto summary = meta->find_repo(repo);
    if (!summary)
      throw HttpError(404, fmt::format("repository '{}' not found", repo), "RepoNotFound");
    return send_json(model_json(*summary, revision, true));
  }

  http::Response list_models(http::Request& req) {
    SearchFilter filter;
    filter.text = req.param("search");
    filter.author = req.param("author");
    filter.base_model = req.param("base_model");
    filter.task = req.param("task");
    filter.tag = req.has_param("tag") ? req.param("tag") : req.param("filter");
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
    http::Response res = send_json(out);
    if (static_cast<int64_t>(found.size()) == filter.limit) {
      std::string query = fmt::format("cursor={}&limit={}", filter.offset + filter.limit, limit);
      for (const char* key :
           {"search", "author", "base_model", "task", "tag", "filter", "rank", "full"}) {
        if (req.has_param(key)) query += fmt::format("&{}={}", key, percent_encode(req.param(key)));
      }
      res.set_header("Link", next_link(base_url, "/api/models", query));
    }
    return res;
  }

  http::Response tree(http::Request& req) {
    const std::string repo = repo_from(req);
    const Revision rev = revision_or_404(repo, req.capture("rev"));
    std::string prefix = req.capture("path");
    while (prefix.ends_with('/')) prefix.pop_back();
    if (!prefix.empty()) {
      try {
        validate_file_path(prefix);
      } catch (const Error& e) {
        throw HttpError(400, e.what());
      }
    }
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
    http::Response res = send_json(out);
    if (cursor + limit < static_cast<int64_t>(entries.size())) {
      const std::string query = fmt::format("recursive={}&expand=false&limit={}&cursor={}",
                                            recursive ? "true" : "false", limit, cursor + limit);
      std::string path =
          fmt::format("/api/models/{}/tree/{}", repo, percent_encode(req.capture("rev")));
      if (!prefix.empty()) path += "/" + percent_encode(prefix);
      res.set_header("Link", next_link(base_url, path, query));
    }
    return res;
  }

  http::Response resolve(http::Request& req) {
    const std::string repo = repo_from(req);
    const std::string path = req.capture("path");
    try {
      validate_file_path(path);
    } catch (const Error& e) {
      throw HttpError(400, e.what());
    }
    const Revision rev = revision_or_404(repo, req.capture("rev"));
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
    http::Response res =
        http::Response::from_file(blobs.path_of(file->sha256), "application/octet-stream");
    if (res.file->size != static_cast<uint64_t>(file->size)) {
      throw HttpError(500, fmt::format("{}: stored blob has {} bytes, expected {}",
                                       blobs.path_of(file->sha256), res.file->size, file->size));
    }
    res.set_header("X-Repo-Commit", rev.sha);
    res.set_header("ETag", "\"" + file->sha256 + "\"");
    res.set_header("X-Linked-Etag", "\"" + file->sha256 + "\"");
    res.set_header("X-Linked-Size", std::to_string(file->size));
    // A revision sha names fixed content; "main" moves with every push.
    const bool pinned = req.capture("rev") == rev.sha;
    res.set_header("Cache-Control", pinned ? "public, max-age=31536000, immutable" : "no-cache");
    return res;
  }

  // The checks of a push that need no body: valid repo id, a token of the repo's owner, a form.
  std::string authorize_push(const http::Request& req) {
    const std::string repo = repo_from(req);
    const auto user = user_of(req);
    if (!user) throw HttpError(401, "push needs a valid token (Authorization: Bearer ...)");
    const std::string owner = repo.substr(0, repo.find('/'));
    if (*user != owner) {
      throw HttpError(
          403, fmt::format("user '{}' may not write to '{}' (owned by '{}')", *user, repo, owner));
    }
    if (!req.header("Content-Type").starts_with("multipart/form-data")) {
      throw HttpError(400, "push: expected multipart/form-data");
    }
    return repo;
  }

  http::Response push(http::Request& req) {
    const std::string repo = authorize_push(req);  // again: a token may be revoked meanwhile
    const auto parts =
        http::parse_multipart(req.header("Content-Type"), req.body, 2 * kMaxFilesPerUpload);
    PushMeta pm = read_push_meta(parts);
    const std::vector<UploadedFile> files = read_push_files(parts);
    try {
      const ModuleMeta found = inspect_module(files, scratch_root());
      pm.meta.base_model = found.base_model;
      pm.meta.rank = found.rank;
      pm.meta.alpha = found.alpha;
      pm.meta.targets = found.targets;
    } catch (const Error& e) {
      throw HttpError(422, fmt::format("invalid LoRA module: {}", e.what()));
    }
    check_parent(repo, pm.parent);
    Revision rev;
    rev.repo = repo;
    rev.parent = pm.parent;
    rev.created = now_seconds();
    rev.message = pm.message;
    rev.meta = pm.meta;
    for (const auto& f : files) {  // durable before the metadata that points at them
      const StoredBlob blob = blobs.put(f.content);
      rev.files.push_back(
          {f.path, blob.sha256, git_blob_sha1_hex(f.content), static_cast<int64_t>(blob.size)});
    }
    rev.sha = revision_sha(rev);
    if (!meta->commit(rev)) throw conflict(repo, pm.parent);
    // A garbage collection (hub/gc.h) may have removed a reused, long-unreferenced blob between
    // put and commit; now that the revision points at it, store it again.
    for (size_t i = 0; i < files.size(); ++i)  // rev.files[i] was stored from files[i]
      if (!blobs.contains(rev.files[i].sha256)) blobs.put(files[i].content);
    return send_json({{"commit", rev.sha}, {"repo", repo}, {"files", rev.files.size()}});
  }

  // Refuses early, before any blob is written, a push whose parent is no longer the head.
  void check_parent(const std::string& repo, const std::string& parent) {
    if (meta->head_of(repo).value_or("") != parent) throw conflict(repo, parent);
  }

  http::Error conflict(const std::string& repo, const std::string& parent) {
    return HttpError(409, fmt::format("'{}' has moved on: its head is '{}', not '{}' (pull, then "
                                      "push again)",
                                      repo, meta->head_of(repo).value_or("none"),
                                      parent.empty() ? "none" : parent));
  }
};

HubServer::HubServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
HubServer::~HubServer() = default;

int HubServer::bind() {
  const int port = impl_->server->bind();
  const auto& o = impl_->options;
  impl_->base_url = o.public_url.empty() ? fmt::format("http://{}:{}", o.host, port) : o.public_url;
  while (impl_->base_url.ends_with('/')) impl_->base_url.pop_back();
  return port;
}

void HubServer::run() {
  impl_->server->run();
}
void HubServer::stop() {
  impl_->server->stop();
}

}  // namespace lorahub::hub
