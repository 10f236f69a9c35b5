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
#include "formats/module_embedding.h"
#include "http/multipart.h"
#include "http/server.h"
#include "hub/blob_store.h"
#include "hub/commit.h"
#include "hub/hash.h"
#include "hub/hf_upload.h"
#include "hub/http_error.h"
#include "hub/meta_store.h"
#include "hub/module_check.h"
#include "hub/names.h"
#include "hub/openapi.h"
#include "hub/push_meta.h"
#include "hub/web_page.h"

namespace lorahub::hub {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxFilesPerUpload = 256;

http::Response send_json(const json& body, int status = 200) {
  return http::Response::json(body.dump(), status);
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
  json out = {{"base_model", m.base_model},
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
  // The retrieval embedding (validated at push), when the revision has one and its files are
  // loaded (a model's info, or a listing with full=true): clients rank by it without the weights.
  for (const FileEntry& f : rev.files)
    if (f.path == kModuleEmbeddingFile)
      out["embedding"] = {{"file", f.path}, {"sha256", f.sha256}, {"size", f.size}};
  return out;
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
struct PushRequest {
  std::string parent;
  std::string message;
  ModuleMeta meta;
};

const http::FormPart* find_part(const std::vector<http::FormPart>& parts, std::string_view name) {
  const auto it =
      std::find_if(parts.begin(), parts.end(), [&](const auto& p) { return p.name == name; });
  return it == parts.end() ? nullptr : &*it;
}

// The "meta" form part, validated by hub::parse_push_meta (the rules the push fuzzer drives).
PushRequest read_push_meta(const std::vector<http::FormPart>& parts) {
  const http::FormPart* part = find_part(parts, "meta");
  if (part == nullptr) throw HttpError(400, "push: missing the 'meta' form field");
  PushMeta parsed;
  try {
    parsed = parse_push_meta(part->content);
  } catch (const Error& e) {
    throw HttpError(400, e.what());
  }
  PushRequest out{std::move(parsed.parent), std::move(parsed.message), {}};
  out.meta.task = std::move(parsed.task);
  out.meta.description = std::move(parsed.description);
  out.meta.license = std::move(parsed.license);
  out.meta.tags = std::move(parsed.tags);
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

}  // namespace

struct HubServer::Impl {
  ServerOptions options;
  std::unique_ptr<MetaStore> meta;
  BlobStore blobs;
  HfUploads uploads;
  std::vector<HubRoute> documented;  // what routes() serves, as OpenAPI path templates
  std::string csp = web_page_csp();
  std::string base_url;  // for Link headers; options.public_url or the bound address
  std::unique_ptr<http::Server> server;

  explicit Impl(ServerOptions o)
      : options(std::move(o)),
        meta(MetaStore::open(options.root, options.db_url)),
        blobs(options.root),
        uploads(*meta, blobs, upload_options()) {
    remove_stale_scratch(scratch_root());
    http::ServerOptions http_options;
    http_options.host = options.host;
    http_options.port = options.port;
    http_options.worker_threads = options.threads;
    http_options.limits = options.limits;
    server = std::make_unique<http::Server>(http_options, routes());
  }

  // Uploads are laid out here to be checked with the PEFT reader before anything is stored.
  std::string scratch_root() const { return options.root + "/uploads"; }

  HfUploadOptions upload_options() const {
    HfUploadOptions o;
    o.root = options.root;
    o.public_url = options.public_url;  // bind() sets it when empty
    o.scratch_root = scratch_root();
    o.max_upload_bytes = static_cast<int64_t>(options.max_upload_bytes);
    return o;
  }

  http::Router routes() {
    http::Router router;
    // Every route goes through here, so that documented (HubServer::routes(), /openapi.json)
    // is exactly what the router serves.
    auto add = [&](std::string method, std::string pattern,
                   std::function<http::Response(http::Request&)> handler,
                   std::function<void(const http::Request&)> before_body = nullptr,
                   uint64_t max_body = 0) {
      std::string openapi = pattern;
      if (const size_t star = openapi.find("*}"); star != std::string::npos) openapi.erase(star, 1);
      documented.push_back({method, openapi});
      router.add({.method = std::move(method),
                  .pattern = std::move(pattern),
                  .handler = std::move(handler),
                  .before_body = std::move(before_body),
                  .max_body = max_body});
    };
    auto get = [&](std::string pattern, auto member) {
      add("GET", std::move(pattern),
          [this, member](http::Request& req) { return (this->*member)(req); });
    };
    get("/", &Impl::page);
    get("/openapi.json", &Impl::openapi);
    get("/api/models", &Impl::list_models);
    get("/api/whoami-v2", &Impl::whoami);
    get("/api/models/{user}/{name}", &Impl::model_info);
    get("/api/models/{user}/{name}/revision/{rev}", &Impl::model_info);
    get("/api/models/{user}/{name}/tree/{rev}", &Impl::tree);
    get("/api/models/{user}/{name}/tree/{rev}/{path*}", &Impl::tree);
    get("/{user}/{name}/resolve/{rev}/{path*}", &Impl::resolve);
    add(
        "POST", "/api/lorahub/push/{user}/{name}", [this](http::Request& req) { return push(req); },
        // Token, namespace and form type are checked before the upload is read.
        [this](const http::Request& req) { authorize_push(req); }, options.max_upload_bytes);
    add_hf_upload_routes(add);
    return router;
  }

  // huggingface_hub's write API (hf_upload.h) and the read routes that go with it. Every write
  // checks its token (and, for the LFS PUT, the URL's signature) before the body is read.
  template <typename Add>
  void add_hf_upload_routes(Add& add) {
    const uint64_t json_limit = uploads.json_body_limit();
    auto writer = [this](const http::Request& req) { writable_repo(req); };
    add(
        "POST", "/api/repos/create",
        [this](http::Request& req) {
          const auto [status, body] = uploads.create_repo(authenticated(req), req.body);
          return send_json(body, status);
        },
        [this](const http::Request& req) { authenticated(req); }, json_limit);
    add(
        "POST", "/api/validate-yaml",
        [this](http::Request& req) { return send_json(uploads.validate_yaml(req.body)); }, nullptr,
        json_limit);
    add(
        "POST", "/api/models/{user}/{name}/preupload/{rev}",
        [this](http::Request& req) {
          return send_json(uploads.preupload(writable_repo(req), req.capture("rev"), req.body));
        },
        writer, json_limit);
    add(
        "POST", "/api/models/{user}/{name}/commit/{rev}",
        [this](http::Request& req) {
          return send_json(uploads.commit(writable_repo(req), req.capture("rev"), req.body,
                                          true_param(req, "create_pr")));
        },
        writer, static_cast<uint64_t>(uploads.commit_body_limit()));
    // git's LFS URL is <repo>.git/info/lfs/...: the second segment is the name plus ".git".
    add(
        "POST", "/{user}/{git_name}/info/lfs/objects/batch",
        [this](http::Request& req) {
          auto res = http::Response::json(uploads.lfs_batch(lfs_repo(req), req.body).dump());
          res.set_header("Content-Type", "application/vnd.git-lfs+json");
          return res;
        },
        [this](const http::Request& req) { lfs_repo(req); }, json_limit);
    add(
        "PUT", "/api/lorahub/lfs/{user}/{name}/{oid}",
        [this](http::Request& req) {
          uploads.lfs_upload(req.capture("oid"), check_lfs_url(req), req.body);
          return send_json(json::object());
        },
        [this](const http::Request& req) { check_lfs_url(req); },
        static_cast<uint64_t>(options.max_upload_bytes));
    add(
        "POST", "/api/lorahub/lfs-verify/{user}/{name}",
        [this](http::Request& req) {
          return send_json(uploads.lfs_verify(writable_repo(req), req.body));
        },
        writer, 64 << 10);
    // hf_xet shows neither the body nor the headers of a failed token request, only the URL it
    // ended at: the redirect puts the way out (HF_HUB_DISABLE_XET=1) where the user sees it.
    for (const char* kind : {"read", "write"}) {
      add("GET", fmt::format("/api/models/{{user}}/{{name}}/xet-{}-token/{{rev}}", kind),
          [](http::Request& req) {
            repo_from(req);
            http::Response res = http::Response::json(
                http::error_json("this hub has no Xet storage: set HF_HUB_DISABLE_XET=1"), 307);
            res.set_header("Location", std::string(kXetNotServedPath));
            return res;
          });
    }
    add("GET", std::string(kXetNotServedPath),
        [](http::Request&) -> http::Response { xet_not_served(); });
    add("GET", "/api/models/{user}/{name}/refs",
        [this](http::Request& req) { return send_json(uploads.refs(repo_from(req))); });
    add("GET", "/api/models/{user}/{name}/commits/{rev}", [this](http::Request& req) {
      const int64_t limit = int_param(req, "limit", options.page_size, 1, options.page_size);
      return send_json(uploads.commits(repo_from(req), req.capture("rev"), limit));
    });
  }

  http::Response openapi(http::Request&) {
    return http::Response::json(std::string(openapi_json()));
  }

  std::string authenticated(const http::Request& req) {
    return uploads.authenticate(req.header("Authorization"));
  }

  // The repo of a write route, once the request's token may write to it.
  std::string writable_repo(const http::Request& req) {
    const std::string repo = repo_from(req);
    uploads.authorize(req.header("Authorization"), repo);
    return repo;
  }

  std::string lfs_repo(const http::Request& req) {
    const std::string& git_name = req.capture("git_name");
    if (!git_name.ends_with(".git") || git_name.size() == 4) {
      throw HttpError(404, "LFS batch: the URL is /{user}/{name}.git/info/lfs/objects/batch");
    }
    const std::string repo = req.capture("user") + "/" + git_name.substr(0, git_name.size() - 4);
    try {
      validate_repo_id(repo);
    } catch (const Error& e) {
      throw HttpError(400, e.what());
    }
    uploads.authorize(req.header("Authorization"), repo);
    return repo;
  }

  // The signed URL's checks (no token comes with the PUT); returns the object's size.
  int64_t check_lfs_url(const http::Request& req) {
    std::optional<int64_t> length;
    if (const std::string cl = req.header("Content-Length"); !cl.empty()) {
      try {
        length = std::stoll(cl);
      } catch (const std::exception&) {
        throw HttpError(400, "LFS upload: bad Content-Length");
      }
    }
    return uploads.check_lfs_upload(repo_from(req), req.capture("oid"), req.param("size"),
                                    req.param("expires"), req.param("signature"), length);
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
    const auto head = meta->head_of(repo);
    if (!head) throw HttpError(404, fmt::format("repository '{}' not found", repo), "RepoNotFound");
    if (head->empty() && rev == "main") {  // created empty: main exists and holds no file yet
      throw HttpError(404, fmt::format("'{}' has no files yet", repo), "EntryNotFound");
    }
    throw HttpError(404, fmt::format("revision '{}' not found in '{}'", rev, repo),
                    "RevisionNotFound");
  }

  http::Response whoami(http::Request& req) {
    return send_json(
        {{"type", "user"}, {"name", authenticated(req)}, {"auth", {{"type", "access_token"}}}});
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
    filter.tag = req.param("tag");
    std::vector<std::string> hf_filters;
    for (auto [it, end] = req.query.equal_range("filter"); it != end; ++it)
      hf_filters.push_back(it->second);
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
    http::Response res = send_json(out);
    if (static_cast<int64_t>(found.size()) == filter.limit) {
      std::string query = fmt::format("cursor={}&limit={}", filter.offset + filter.limit, limit);
      for (const char* key :
           {"search", "author", "base_model", "task", "tag", "filter", "rank", "full"}) {
        for (auto [it, end] = req.query.equal_range(key); it != end; ++it)
          query += fmt::format("&{}={}", key, percent_encode(it->second));
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
    const std::string repo = writable_repo(req);
    if (!req.header("Content-Type").starts_with("multipart/form-data")) {
      throw HttpError(400, "push: expected multipart/form-data");
    }
    return repo;
  }

  http::Response push(http::Request& req) {
    const std::string repo = authorize_push(req);  // again: a token may be revoked meanwhile
    const auto parts =
        http::parse_multipart(req.header("Content-Type"), req.body, 2 * kMaxFilesPerUpload);
    const PushRequest pm = read_push_meta(parts);
    const std::vector<UploadedFile> files = read_push_files(parts);
    const auto rev =
        commit_upload(*meta, blobs, scratch_root(), {repo, pm.parent, pm.message, pm.meta}, files);
    if (!rev) throw conflict(repo, pm.parent);
    return send_json({{"commit", rev->sha}, {"repo", repo}, {"files", rev->files.size()}});
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
  impl_->uploads.set_public_url(impl_->base_url);
  return port;
}

const std::vector<HubRoute>& HubServer::routes() const {
  return impl_->documented;
}

void HubServer::run() {
  impl_->server->run();
}
void HubServer::stop() {
  impl_->server->stop();
}

}  // namespace lorahub::hub
