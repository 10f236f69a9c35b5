#include "hub/hf_upload.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/mapped_file.h"
#include "formats/json.h"
#include "hub/commit.h"
#include "hub/hash.h"
#include "hub/http_error.h"
#include "hub/names.h"

namespace lorahub::hub {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t kMaxTextField = 4000;
constexpr size_t kMaxRevisionFiles = 256;  // as a push
constexpr size_t kMaxSample = 512;
constexpr int64_t kRegularMaxBytes = 1 << 20;  // larger files go through LFS
constexpr int kCommitAttempts = 3;             // without parentCommit, a lost race is retried
constexpr int64_t kMaxCommitsListed = 1000;

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void bad_request(std::string message) {
  throw HttpError(400, std::move(message));
}

// The JSON body of a request; its errors echo no client bytes that are not printable.
json parse_body(std::string_view body, std::string_view what) {
  try {
    return parse_json(body, std::string(what));
  } catch (const Error& e) {
    bad_request(printable(std::string_view(e.what()).substr(0, 200)));
  }
}

const json& member(const json& object, const char* key, std::string_view what) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) bad_request(fmt::format("{}: missing '{}'", what, key));
  return *it;
}

std::string string_member(const json& object, const char* key, std::string_view what,
                          size_t max_length = kMaxTextField) {
  const json& value = member(object, key, what);
  if (!value.is_string()) {
    bad_request(fmt::format("{}: '{}' must be a string, not {}", what, key, json_type_name(value)));
  }
  const auto& text = value.get_ref<const std::string&>();
  if (text.size() > max_length) {
    bad_request(fmt::format("{}: '{}' is longer than {} bytes", what, key, max_length));
  }
  return text;
}

std::string optional_string(const json& object, const char* key, std::string_view what) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "";
  return string_member(object, key, what);
}

// A size in bytes: an integer in [0, max] (a float, a negative or a 2^64 is refused).
int64_t size_member(const json& object, const char* key, std::string_view what, int64_t max) {
  const json& value = member(object, key, what);
  if (!value.is_number_integer()) {
    bad_request(
        fmt::format("{}: '{}' must be an integer, not {}", what, key, json_type_name(value)));
  }
  if (value.is_number_unsigned() ? value.get<uint64_t>() > static_cast<uint64_t>(max)
                                 : (value.get<int64_t>() < 0 || value.get<int64_t>() > max)) {
    throw HttpError(413, fmt::format("{}: '{}' must be in [0, {}] bytes", what, key, max));
  }
  return value.get<int64_t>();
}

std::string checked_path(std::string path, std::string_view what) {
  try {
    validate_file_path(path);
  } catch (const Error& e) {
    bad_request(fmt::format("{}: {}", what, e.what()));
  }
  return path;
}

std::string checked_oid(const json& object, std::string_view what) {
  const std::string oid = string_member(object, "oid", what, 200);
  if (!is_lower_hex(oid, 64)) {
    bad_request(fmt::format("{}: 'oid' must be a SHA-256 (64 lowercase hex digits), not '{}'", what,
                            printable(oid)));
  }
  return oid;
}

const json& object_member(const json& object, const char* key, std::string_view what) {
  const json& value = member(object, key, what);
  if (!value.is_object()) {
    bad_request(
        fmt::format("{}: '{}' must be an object, not {}", what, key, json_type_name(value)));
  }
  return value;
}

const json& array_member(const json& object, const char* key, std::string_view what, size_t max) {
  const json& value = member(object, key, what);
  if (!value.is_array()) {
    bad_request(fmt::format("{}: '{}' must be a list, not {}", what, key, json_type_name(value)));
  }
  if (value.size() > max) bad_request(fmt::format("{}: more than {} '{}'", what, max, key));
  return value;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string hex(const unsigned char* data, size_t size) {
  std::string out;
  for (size_t i = 0; i < size; ++i) out += fmt::format("{:02x}", data[i]);
  return out;
}

// A random key made once per hub folder (servers sharing the folder share it), so that an
// upload URL signed by one server is accepted by another. Created with link(2): atomic, and the
// loser of a race reads the winner's key.
std::string load_or_create_key(const std::string& root) {
  const fs::path path = fs::path(root) / "lfs-url-key";
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    const fs::path temp = fs::path(root) / (".lfs-url-key.tmp" + random_hex(8));
    write_file_atomic(temp.string(), random_hex(32));
    fs::permissions(temp, fs::perms::owner_read | fs::perms::owner_write, ec);
    if (::link(temp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
      const int err = errno;
      fs::remove(temp, ec);
      fail("{}: cannot create the upload URL key: {}", path.string(), std::strerror(err));
    }
    fs::remove(temp, ec);
  }
  std::ifstream in(path);
  std::string key;
  in >> key;
  check(is_lower_hex(key, 64), "{}: not an upload URL key (64 hex digits)", path.string());
  return key;
}

// The revision's files by path, to apply a commit's operations to.
std::map<std::string, FileEntry> files_by_path(const Revision* rev) {
  std::map<std::string, FileEntry> files;
  if (rev)
    for (const auto& f : rev->files) files[f.path] = f;
  return files;
}

json git_ref(const std::string& name, const std::string& sha) {
  return {{"name", name}, {"ref", "refs/heads/" + name}, {"targetCommit", sha}};
}

}  // namespace

std::string decode_base64_strict(std::string_view text, std::string_view what) {
  if (text.size() % 4 != 0) {
    bad_request(fmt::format("{}: base64 length {} is not a multiple of 4", what, text.size()));
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int padding =
        last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    uint32_t group = 0;
    for (int j = 0; j < 4; ++j) {
      const int v = j >= 4 - padding ? 0 : base64_value(text[i + j]);
      if (v < 0) {
        bad_request(fmt::format("{}: invalid base64 character at offset {}", what, i + j));
      }
      group = group << 6 | static_cast<uint32_t>(v);
    }
    // Bits under the padding must be zero, or two encodings would decode to the same bytes.
    if ((padding == 1 && (group & 0xff)) || (padding == 2 && (group & 0xffff))) {
      bad_request(fmt::format("{}: non-canonical base64 padding", what));
    }
    out += static_cast<char>(group >> 16);
    if (padding < 2) out += static_cast<char>(group >> 8 & 0xff);
    if (padding < 1) out += static_cast<char>(group & 0xff);
  }
  return out;
}

CommitRequest parse_commit_request(std::string_view body, const CommitLimits& limits) {
  CommitRequest request;
  std::set<std::string> seen;
  size_t line_number = 0;
  for (size_t start = 0; start < body.size();) {
    size_t end = body.find('\n', start);
    if (end == std::string_view::npos) end = body.size();
    const std::string_view line = body.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line == "\r") continue;
    ++line_number;
    const std::string where = fmt::format("commit line {}", line_number);
    if (line_number > limits.max_operations + 1) {
      bad_request(fmt::format("commit: more than {} operations", limits.max_operations));
    }
    const json item = parse_body(line, where);
    if (!item.is_object()) bad_request(where + ": expected a JSON object");
    const std::string key = string_member(item, "key", where, 64);
    const json& value = object_member(item, "value", where);
    const std::string what = fmt::format("{} ({})", where, printable(key));
    if ((line_number == 1) != (key == "header")) {
      bad_request(fmt::format("{}: the first line, and only it, must be the header", what));
    }
    if (key == "header") {
      request.summary = optional_string(value, "summary", what);
      request.description = optional_string(value, "description", what);
      if (value.contains("parentCommit") && !value["parentCommit"].is_null()) {
        const std::string parent = string_member(value, "parentCommit", what, 200);
        if (!is_lower_hex(parent, 40)) {
          bad_request(fmt::format("{}: 'parentCommit' must be a 40-digit revision sha, not '{}'",
                                  what, printable(parent)));
        }
        request.parent = parent;
      }
      continue;
    }
    std::string path = string_member(value, "path", what, 1024);
    const bool folder = key == "deletedFolder";
    if (folder)
      while (path.ends_with('/')) path.pop_back();
    checked_path(path, what);
    if (!seen.insert(path).second) {
      bad_request(fmt::format("{}: '{}' appears twice in one commit", what, path));
    }
    if (key == "file") {
      const std::string encoding = string_member(value, "encoding", what, 64);
      if (encoding != "base64") {
        bad_request(
            fmt::format("{}: encoding must be 'base64', not '{}'", what, printable(encoding)));
      }
      const json& content = member(value, "content", what);
      if (!content.is_string()) {
        bad_request(
            fmt::format("{}: 'content' must be a string, not {}", what, json_type_name(content)));
      }
      const auto& encoded = content.get_ref<const std::string&>();
      if (static_cast<int64_t>(encoded.size() / 4 * 3) > limits.max_file_bytes) {
        throw HttpError(413, fmt::format("{}: '{}' is larger than {} bytes", what, path,
                                         limits.max_file_bytes));
      }
      request.additions.push_back({path, decode_base64_strict(encoded, what), "", std::nullopt});
    } else if (key == "lfsFile") {
      const std::string algo = optional_string(value, "algo", what);
      if (!algo.empty() && algo != "sha256") {
        bad_request(fmt::format("{}: algo must be 'sha256', not '{}'", what, printable(algo)));
      }
      CommitAddition addition{path, std::nullopt, checked_oid(value, what), std::nullopt};
      if (value.contains("size") && !value["size"].is_null()) {
        addition.size = size_member(value, "size", what, limits.max_file_bytes);
      }
      request.additions.push_back(std::move(addition));
    } else if (key == "deletedFile") {
      request.deleted_files.push_back(path);
    } else if (folder) {
      request.deleted_folders.push_back(path);
    } else {
      bad_request(
          fmt::format("{}: unknown operation '{}' (file, lfsFile, deletedFile or "
                      "deletedFolder)",
                      where, printable(key)));
    }
  }
  if (line_number == 0) bad_request("commit: empty body (expected a header line)");
  return request;
}

std::vector<PreuploadFile> parse_preupload_request(std::string_view body, size_t max_files,
                                                   int64_t max_file_bytes) {
  const json request = parse_body(body, "preupload");
  if (!request.is_object()) bad_request("preupload: expected a JSON object");
  std::vector<PreuploadFile> files;
  for (const auto& item : array_member(request, "files", "preupload", max_files)) {
    const std::string what = fmt::format("preupload file {}", files.size());
    if (!item.is_object()) bad_request(what + ": expected an object");
    PreuploadFile file;
    file.path = checked_path(string_member(item, "path", what, 1024), what);
    file.size = size_member(item, "size", what, max_file_bytes);
    file.sample = decode_base64_strict(string_member(item, "sample", what, 1024), what);
    if (file.sample.size() > kMaxSample) {
      bad_request(fmt::format("{}: 'sample' is longer than {} bytes", what, kMaxSample));
    }
    files.push_back(std::move(file));
  }
  return files;
}

std::string upload_mode(const PreuploadFile& file) {
  // Hugging Face's default .gitattributes sends these through LFS, and anything large.
  static constexpr const char* kLfsSuffixes[] = {
      ".safetensors", ".bin", ".pt",  ".pth", ".ckpt",   ".gguf", ".onnx", ".h5",
      ".msgpack",     ".npy", ".npz", ".pkl", ".pickle", ".zip",  ".gz",   ".tar"};
  for (const char* suffix : kLfsSuffixes) {
    if (file.path.ends_with(suffix)) return "lfs";
  }
  const bool binary = file.sample.find('\0') != std::string::npos;
  return binary || file.size > kRegularMaxBytes ? "lfs" : "regular";
}

std::vector<LfsObject> parse_lfs_batch_request(std::string_view body, size_t max_objects) {
  const json request = parse_body(body, "LFS batch");
  if (!request.is_object()) bad_request("LFS batch: expected a JSON object");
  const std::string operation = string_member(request, "operation", "LFS batch", 64);
  if (operation != "upload") {
    throw HttpError(422, fmt::format("LFS batch: only the 'upload' operation is served, not '{}' "
                                     "(download files with /{{repo}}/resolve/...)",
                                     printable(operation)));
  }
  if (request.contains("transfers") && !request["transfers"].is_null()) {
    const json& transfers = array_member(request, "transfers", "LFS batch", 16);
    if (std::find(transfers.begin(), transfers.end(), json("basic")) == transfers.end()) {
      throw HttpError(422, "LFS batch: only the 'basic' transfer is served");
    }
  }
  const std::string algo = request.contains("hash_algo") && !request["hash_algo"].is_null()
                               ? string_member(request, "hash_algo", "LFS batch", 64)
                               : "sha256";
  if (algo != "sha256") throw HttpError(422, "LFS batch: hash_algo must be sha256");
  std::vector<LfsObject> objects;
  for (const auto& item : array_member(request, "objects", "LFS batch", max_objects)) {
    const std::string what = fmt::format("LFS batch object {}", objects.size());
    if (!item.is_object()) bad_request(what + ": expected an object");
    objects.push_back({checked_oid(item, what), size_member(item, "size", what, INT64_MAX)});
  }
  return objects;
}

CreateRepoRequest parse_create_repo_request(std::string_view body, const std::string& user) {
  const json request = parse_body(body, "create repo");
  if (!request.is_object()) bad_request("create repo: expected a JSON object");
  const std::string type = optional_string(request, "type", "create repo");
  if (!type.empty() && type != "model") {
    bad_request(
        fmt::format("create repo: this hub holds models only, not '{}' repos", printable(type)));
  }
  const std::string name = string_member(request, "name", "create repo", 200);
  const std::string organization = optional_string(request, "organization", "create repo");
  CreateRepoRequest out{(organization.empty() ? user : organization) + "/" + name};
  try {
    validate_repo_id(out.repo);
  } catch (const Error& e) {
    bad_request(fmt::format("create repo: {}", e.what()));
  }
  return out;
}

void add_hf_filters(SearchFilter& filter, const std::vector<std::string>& hf_filters) {
  for (const auto& f : hf_filters) {
    if (f.empty() || f == "peft" || f == "lora" || f == "lorahub") continue;  // every module's
    for (const char* prefix : {"base_model:adapter:", "base_model:"}) {
      if (f.starts_with(prefix)) {
        const std::string base = f.substr(std::string_view(prefix).size());
        if (!filter.base_model.empty() && filter.base_model != base) {
          filter.tags.push_back(f);  // two base models: matches nothing, as on the HF Hub
        }
        filter.base_model = base;
        break;
      }
    }
    if (!f.starts_with("base_model:")) filter.tags.push_back(f);
  }
}

HfUploads::HfUploads(MetaStore& meta, const BlobStore& blobs, HfUploadOptions options)
    : meta_(meta),
      blobs_(blobs),
      options_(std::move(options)),
      key_(load_or_create_key(options_.root)) {}

std::string HfUploads::authenticate(std::string_view authorization) {
  std::optional<std::string> user;
  if (authorization.starts_with("Bearer ")) {
    user = meta_.user_for_token(std::string(authorization.substr(7)));
  }
  if (!user) throw HttpError(401, "this needs a valid token (Authorization: Bearer ...)");
  return *user;
}

std::string HfUploads::authorize(std::string_view authorization, const std::string& repo) {
  const std::string user = authenticate(authorization);
  const std::string owner = repo.substr(0, repo.find('/'));
  if (lower_ascii(user) != lower_ascii(owner)) {  // names are case-insensitive, as on the HF Hub
    throw HttpError(
        403, fmt::format("user '{}' may not write to '{}' (owned by '{}')", user, repo, owner));
  }
  return user;
}

int64_t HfUploads::commit_body_limit() const {
  // Inline files are base64 (4 bytes per 3), plus one JSON line per operation.
  return options_.max_upload_bytes / 3 * 4 + (1 << 20);
}

std::pair<int, nlohmann::json> HfUploads::create_repo(const std::string& user,
                                                      std::string_view body) {
  const std::string repo = parse_create_repo_request(body, user).repo;
  if (repo.substr(0, repo.find('/')) != user) {
    throw HttpError(403, fmt::format("user '{}' may not create repos under '{}'", user,
                                     repo.substr(0, repo.find('/'))));
  }
  const json answer = {{"url", options_.public_url + "/" + repo}, {"name", repo}};
  if (meta_.create_repo(repo)) return {200, answer};
  // With exist_ok, huggingface_hub reads the url from the 409 answer.
  json exists = answer;
  exists["error"] = fmt::format("You already created this model repo: '{}'", repo);
  return {409, exists};
}

nlohmann::json HfUploads::validate_yaml(std::string_view body) {
  const json request = parse_body(body, "validate-yaml");
  if (!request.is_object()) bad_request("validate-yaml: expected a JSON object");
  string_member(request, "content", "validate-yaml", 16 << 20);
  // The model card is stored as any other file; there is nothing in it the hub relies on.
  return {{"errors", json::array()}, {"warnings", json::array()}};
}

void HfUploads::require_main(const std::string& rev) const {
  if (rev != "main") {
    throw HttpError(
        404,
        fmt::format("revision '{}' not found: uploads go to the branch 'main'", printable(rev)),
        "RevisionNotFound");
  }
}

Revision HfUploads::head_or_404(const std::string& repo) {
  const auto head = meta_.head_of(repo);
  if (!head) throw HttpError(404, fmt::format("repository '{}' not found", repo), "RepoNotFound");
  if (head->empty()) {  // created empty: no files, no metadata yet
    Revision empty;
    empty.repo = repo;
    return empty;
  }
  auto rev = meta_.find_revision(repo, *head);
  if (!rev) throw HttpError(404, fmt::format("repository '{}' not found", repo), "RepoNotFound");
  return *std::move(rev);
}

nlohmann::json HfUploads::preupload(const std::string& repo, const std::string& rev,
                                    std::string_view body) {
  require_main(rev);
  const Revision head = head_or_404(repo);
  const auto existing = files_by_path(&head);
  json files = json::array();
  for (const auto& file :
       parse_preupload_request(body, kMaxRevisionFiles, options_.max_upload_bytes)) {
    const std::string mode = upload_mode(file);
    const auto found = existing.find(file.path);
    json oid = nullptr;  // lets the client skip a file that did not change
    if (found != existing.end()) oid = mode == "lfs" ? found->second.sha256 : found->second.git_oid;
    files.push_back(
        {{"path", file.path}, {"uploadMode", mode}, {"shouldIgnore", false}, {"oid", oid}});
  }
  return {{"files", files}, {"commitOid", head.sha}};
}

std::string HfUploads::sign(const std::string& repo, const std::string& oid, int64_t size,
                            int64_t expires) const {
  const std::string message = fmt::format("lfs-upload\n{}\n{}\n{}\n{}", repo, oid, size, expires);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  check(HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac.data(),
             &length) != nullptr,
        "HMAC-SHA256 failed");
  return hex(mac.data(), length);
}

nlohmann::json HfUploads::lfs_batch(const std::string& repo, std::string_view body) {
  json objects = json::array();
  const int64_t expires = now_seconds() + options_.lfs_url_seconds;
  for (const auto& object : parse_lfs_batch_request(body, kMaxRevisionFiles)) {
    json entry = {{"oid", object.oid}, {"size", object.size}, {"authenticated", true}};
    if (object.size > options_.max_upload_bytes) {
      entry["error"] = {{"code", 413},
                        {"message", fmt::format("larger than this hub's limit of {} bytes",
                                                options_.max_upload_bytes)}};
    } else if (!blobs_.touch_if_size(object.oid, object.size)) {
      // Stored already (touched, so that garbage collection keeps it until the commit): no
      // actions, and the client skips the upload.
      const std::string href = fmt::format(
          "{}/api/lorahub/lfs/{}/{}?size={}&expires={}&signature={}", options_.public_url, repo,
          object.oid, object.size, expires, sign(repo, object.oid, object.size, expires));
      entry["actions"] = {
          {"upload", {{"href", href}, {"expires_at", iso_time(expires)}}},
          {"verify",
           {{"href", fmt::format("{}/api/lorahub/lfs-verify/{}", options_.public_url, repo)}}}};
    }
    objects.push_back(std::move(entry));
  }
  return {{"transfer", "basic"}, {"objects", objects}, {"hash_algo", "sha256"}};
}

int64_t HfUploads::check_lfs_upload(const std::string& repo, const std::string& oid,
                                    const std::string& size, const std::string& expires,
                                    const std::string& signature,
                                    std::optional<int64_t> content_length) {
  int64_t size_value = -1, expires_value = -1;
  try {
    size_t used = 0;
    size_value = std::stoll(size, &used);
    if (used != size.size()) size_value = -1;
    expires_value = std::stoll(expires, &used);
    if (used != expires.size()) expires_value = -1;
  } catch (const std::exception&) {
  }
  if (!is_lower_hex(oid, 64) || size_value < 0 || expires_value < 0 ||
      !is_lower_hex(signature, 64)) {
    throw HttpError(403, "LFS upload: not a signed upload URL (ask the LFS batch API for one)");
  }
  const std::string expected = sign(repo, oid, size_value, expires_value);
  if (CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) != 0) {
    throw HttpError(403, "LFS upload: the URL's signature does not match");
  }
  if (expires_value < now_seconds()) {
    throw HttpError(403, "LFS upload: the URL has expired (ask the LFS batch API for a new one)");
  }
  if (size_value > options_.max_upload_bytes) {
    throw HttpError(413,
                    fmt::format("LFS upload: larger than {} bytes", options_.max_upload_bytes));
  }
  if (content_length && *content_length != size_value) {
    bad_request(fmt::format("LFS upload: Content-Length {} is not the object's size {}",
                            *content_length, size_value));
  }
  return size_value;
}

void HfUploads::lfs_upload(const std::string& oid, int64_t size, std::string_view body) {
  if (static_cast<int64_t>(body.size()) != size) {
    bad_request(fmt::format("LFS upload: got {} bytes, the object has {}", body.size(), size));
  }
  if (sha256_hex(body) != oid) bad_request("LFS upload: the content's SHA-256 is not the oid");
  blobs_.put(body);
}

nlohmann::json HfUploads::lfs_verify(const std::string& repo, std::string_view body) {
  const json request = parse_body(body, "LFS verify");
  if (!request.is_object()) bad_request("LFS verify: expected a JSON object");
  const std::string oid = checked_oid(request, "LFS verify");
  const int64_t size = size_member(request, "size", "LFS verify", options_.max_upload_bytes);
  if (!blobs_.touch_if_size(oid, size)) {
    throw HttpError(404, fmt::format("LFS verify: object {} of {} bytes was not uploaded to {}",
                                     oid, size, repo));
  }
  return json::object();
}

std::optional<Revision> HfUploads::commit_once(const std::string& repo,
                                               const CommitRequest& request) {
  const Revision head = head_or_404(repo);
  if (request.parent && *request.parent != head.sha) {
    throw HttpError(412, fmt::format("'{}' has moved on: its head is '{}', not parentCommit '{}'",
                                     repo, head.sha.empty() ? "none" : head.sha, *request.parent));
  }
  auto files = files_by_path(&head);
  for (const auto& path : request.deleted_files) {
    if (files.erase(path) == 0) {
      throw HttpError(404, fmt::format("A file with this name doesn't exist: '{}'", path),
                      "EntryNotFound");
    }
  }
  for (const auto& folder : request.deleted_folders) {
    const size_t before = files.size();
    std::erase_if(files, [&](const auto& f) { return f.first.starts_with(folder + "/"); });
    if (files.size() == before) {
      throw HttpError(404, fmt::format("A folder with this name doesn't exist: '{}'", folder),
                      "EntryNotFound");
    }
  }
  std::map<std::string, const CommitAddition*> added;
  for (const auto& a : request.additions) {
    added[a.path] = &a;
    files.erase(a.path);
  }
  if (files.size() + added.size() > kMaxRevisionFiles) {
    bad_request(fmt::format("commit: a revision holds at most {} files", kMaxRevisionFiles));
  }
  // The whole revision is checked and stored as a push would be: its content, read from the
  // commit body, from LFS uploads, and from the parent for the files it keeps.
  std::vector<UploadedFile> contents;
  int64_t total = 0;
  auto read_blob = [&](const std::string& path, const std::string& sha,
                       std::optional<int64_t> size) {
    if (!blobs_.contains(sha)) {
      throw HttpError(422,
                      fmt::format("commit: '{}': no uploaded object {} (upload it with the LFS "
                                  "batch API first)",
                                  path, sha));
    }
    const auto blob = blobs_.open(sha);
    if (size && static_cast<int64_t>(blob->size()) != *size) {
      bad_request(fmt::format("commit: '{}': object {} has {} bytes, not {}", path, sha,
                              blob->size(), *size));
    }
    total += static_cast<int64_t>(blob->size());
    if (total > options_.max_upload_bytes) {
      throw HttpError(413, fmt::format("commit: the revision is larger than {} bytes",
                                       options_.max_upload_bytes));
    }
    contents.push_back(
        {path, std::string(reinterpret_cast<const char*>(blob->data()), blob->size())});
  };
  for (const auto& [path, entry] : files) read_blob(path, entry.sha256, entry.size);
  for (const auto& [path, a] : added) {
    if (!a->content) {
      read_blob(path, a->lfs_oid, a->size);
      continue;
    }
    total += static_cast<int64_t>(a->content->size());
    if (total > options_.max_upload_bytes) {
      throw HttpError(413, fmt::format("commit: the revision is larger than {} bytes",
                                       options_.max_upload_bytes));
    }
    contents.push_back({path, *a->content});
  }
  std::sort(contents.begin(), contents.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  NewRevision upload{repo, head.sha, request.summary, head.meta};
  if (!request.description.empty()) upload.message += "\n\n" + request.description;
  return commit_upload(meta_, blobs_, options_.scratch_root, upload, contents);
}

nlohmann::json HfUploads::commit(const std::string& repo, const std::string& rev,
                                 std::string_view body, bool create_pr) {
  require_main(rev);
  if (create_pr) throw HttpError(422, "this hub has no pull requests (commit to main)");
  const CommitRequest request = parse_commit_request(
      body, {.max_operations = 2 * kMaxRevisionFiles, .max_file_bytes = options_.max_upload_bytes});
  if (request.summary.empty()) bad_request("commit: the header needs a 'summary'");
  for (int attempt = 1;; ++attempt) {
    // Without parentCommit the operations apply to whatever the head is: a lost race is retried
    // on the new head. With it, the client asked for exactly that parent.
    if (const auto done = commit_once(repo, request)) {
      return {{"commitOid", done->sha},
              {"commitUrl", fmt::format("{}/{}/commit/{}", options_.public_url, repo, done->sha)},
              {"success", true},
              {"pullRequestUrl", nullptr}};
    }
    if (request.parent || attempt == kCommitAttempts) {
      throw HttpError(409, fmt::format("'{}' has moved on while committing (commit again)", repo));
    }
  }
}

void xet_not_served() {
  throw HttpError(400,
                  "This hub has no Xet storage: set HF_HUB_DISABLE_XET=1 and upload again "
                  "(huggingface_hub then uploads through the LFS protocol, which this hub serves)",
                  "XetNotServed");
}

nlohmann::json HfUploads::refs(const std::string& repo) {
  const Revision head = head_or_404(repo);
  json branches = json::array();
  if (!head.sha.empty()) branches.push_back(git_ref("main", head.sha));
  return {{"branches", branches},
          {"converts", json::array()},
          {"tags", json::array()},
          {"pullRequests", json::array()}};
}

nlohmann::json HfUploads::commits(const std::string& repo, const std::string& rev, int64_t limit) {
  auto current = meta_.find_revision(repo, rev);
  if (!current) {
    if (!meta_.head_of(repo))
      throw HttpError(404, fmt::format("repository '{}' not found", repo), "RepoNotFound");
    throw HttpError(404, fmt::format("revision '{}' not found in '{}'", printable(rev), repo),
                    "RevisionNotFound");
  }
  json out = json::array();
  const std::string owner = repo.substr(0, repo.find('/'));
  for (int64_t n = 0; current && n < std::min(limit, kMaxCommitsListed); ++n) {
    const std::string& message = current->message;
    const size_t blank = message.find("\n\n");
    out.push_back({{"id", current->sha},
                   {"authors", {{{"user", owner}}}},
                   {"date", iso_time(current->created)},
                   {"title", message.substr(0, blank)},
                   {"message", blank == std::string::npos ? "" : message.substr(blank + 2)},
                   {"parents", current->parent.empty() ? json::array() : json{current->parent}}});
    current = current->parent.empty() ? std::nullopt : meta_.find_revision(repo, current->parent);
  }
  return out;
}

std::string iso_time(int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
  return buffer;
}

}  // namespace lorahub::hub
