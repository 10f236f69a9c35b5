// Unit tests of huggingface_hub's write API (hub/hf_upload.h): the parsers of the commit NDJSON,
// preupload, LFS batch and create-repo bodies take hostile input and refuse it with a 4xx that
// names the field; signed LFS URLs; and /openapi.json documents exactly the server's routes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "hub/hash.h"
#include "hub/hf_upload.h"
#include "hub/http_error.h"
#include "hub/openapi.h"
#include "hub/server.h"

namespace lorahub::hub {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// The HttpError status `body` gets, and that its message holds `fragment` and is printable.
template <typename F>
void expect_refused(F&& call, int status, const std::string& fragment) {
  try {
    call();
    ADD_FAILURE() << "accepted; expected " << status << " with '" << fragment << "'";
  } catch (const http::Error& e) {
    EXPECT_EQ(e.status, status) << e.what();
    const std::string message = e.what();
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
    for (unsigned char c : message) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << message;
  }
}

std::string line(const json& item) {
  return item.dump() + "\n";
}

const std::string kHeader = line({{"key", "header"}, {"value", {{"summary", "s"}}}});

std::string file_line(const std::string& path, const std::string& content) {
  return line(
      {{"key", "file"}, {"value", {{"path", path}, {"encoding", "base64"}, {"content", content}}}});
}

TEST(HfUploadBase64, DecodesRfc4648) {
  EXPECT_EQ(decode_base64_strict("", "t"), "");
  EXPECT_EQ(decode_base64_strict("Zg==", "t"), "f");
  EXPECT_EQ(decode_base64_strict("Zm8=", "t"), "fo");
  EXPECT_EQ(decode_base64_strict("Zm9v", "t"), "foo");
  EXPECT_EQ(decode_base64_strict("AP8A", "t"), std::string("\0\xff\0", 3));
}

TEST(HfUploadBase64Malformed, RefusesWhatIsNotCanonical) {
  for (const char* bad : {"Zg=", "Zg", "Z===", "Zm9v\n", "Zm 9", "Zh==", "Zm9=Zm9v", "=Zm9", "Zm-_",
                          "\xff\xfe\xfd\xfc"}) {
    expect_refused([&] { decode_base64_strict(bad, "field"); }, 400, "field");
  }
}

TEST(HfUploadCommit, ParsesWhatHuggingfaceHubSends) {
  const std::string body =
      line({{"key", "header"},
            {"value",
             {{"summary", "add"}, {"description", "d"}, {"parentCommit", std::string(40, 'a')}}}}) +
      file_line("README.md", "aGk=") +
      line({{"key", "lfsFile"},
            {"value",
             {{"path", "w/adapter_model.safetensors"},
              {"algo", "sha256"},
              {"oid", std::string(64, 'b')},
              {"size", 10}}}}) +
      line({{"key", "lfsFile"}, {"value", {{"path", "copy.bin"}, {"oid", std::string(64, 'c')}}}}) +
      line({{"key", "deletedFile"}, {"value", {{"path", "old.txt"}}}}) +
      line({{"key", "deletedFolder"}, {"value", {{"path", "logs/"}}}});
  const CommitRequest r = parse_commit_request(body, {});
  EXPECT_EQ(r.summary, "add");
  EXPECT_EQ(r.description, "d");
  EXPECT_EQ(r.parent, std::string(40, 'a'));
  ASSERT_EQ(r.additions.size(), 3u);
  EXPECT_EQ(r.additions[0].path, "README.md");
  EXPECT_EQ(r.additions[0].content, "hi");
  EXPECT_EQ(r.additions[1].lfs_oid, std::string(64, 'b'));
  EXPECT_EQ(r.additions[1].size, 10);
  EXPECT_FALSE(r.additions[2].size.has_value());  // a copy names the object only
  EXPECT_EQ(r.deleted_files, std::vector<std::string>{"old.txt"});
  EXPECT_EQ(r.deleted_folders, std::vector<std::string>{"logs"});
}

TEST(HfUploadCommitMalformed, RefusesHostileLines) {
  const std::string oid(64, 'a');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty body"},
      {file_line("a.txt", "aGk="), "must be the header"},
      {kHeader + kHeader, "must be the header"},
      {kHeader + file_line("a.txt", "!!!!"), "invalid base64"},
      {kHeader + file_line("a.txt", "aGk"), "multiple of 4"},
      {kHeader + file_line("../etc/passwd", "aGk="), "may not start with '.'"},
      {kHeader + file_line("/etc/passwd", "aGk="), "empty component"},
      {kHeader + file_line("a\\b", "aGk="), "may only contain"},
      {kHeader + file_line("a.txt", "aGk=") + file_line("a.txt", "aGk="), "appears twice"},
      {kHeader + "{\"key\": \"file\", \"value\": {\"path\": \"\xff\xfe\"}}\n", "invalid JSON"},
      {kHeader + "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
       "nested deeper"},
      {kHeader + "{nope\n", "invalid JSON"},
      {kHeader + line(json::array()), "expected a JSON object"},
      {kHeader + line({{"key", "file"}}), "missing 'value'"},
      {kHeader + line({{"key", "file"}, {"value", {{"encoding", "base64"}, {"content", ""}}}}),
       "missing 'path'"},
      {kHeader + line({{"key", "file"},
                       {"value", {{"path", "a"}, {"encoding", "utf-8"}, {"content", ""}}}}),
       "encoding must be 'base64'"},
      {kHeader + line({{"key", "file"},
                       {"value", {{"path", "a"}, {"encoding", "base64"}, {"content", 5}}}}),
       "'content' must be a string"},
      {kHeader + line({{"key", "lfsFile"}, {"value", {{"path", "w"}, {"oid", "XYZ"}}}}),
       "64 lowercase hex"},
      {kHeader + line({{"key", "lfsFile"}, {"value", {{"path", "w"}, {"oid", oid}, {"size", -1}}}}),
       "must be in [0"},
      {kHeader +
           line({{"key", "lfsFile"}, {"value", {{"path", "w"}, {"oid", oid}, {"size", 1e300}}}}),
       "must be an integer"},
      {kHeader +
           line({{"key", "lfsFile"}, {"value", {{"path", "w"}, {"oid", oid}, {"algo", "md5"}}}}),
       "algo must be 'sha256'"},
      {kHeader + line({{"key", "rm"}, {"value", {{"path", "a"}}}}), "unknown operation"},
      {line({{"key", "header"}, {"value", {{"parentCommit", "main"}}}}), "40-digit"},
      {line({{"key", "header"}, {"value", {{"summary", std::string(5000, 's')}}}}), "longer than"},
  };
  for (const auto& [body, fragment] : cases) {
    SCOPED_TRACE(body.substr(0, 120));
    const int status = fragment == "must be in [0" ? 413 : 400;
    expect_refused([&] { parse_commit_request(body, {}); }, status, fragment);
  }
}

TEST(HfUploadCommitMalformed, BoundsSizesAndOperations) {
  const CommitLimits limits{.max_operations = 3, .max_file_bytes = 6};
  std::string many = kHeader;
  for (int i = 0; i < 4; ++i) many += file_line(fmt::format("f{}", i), "aGk=");
  expect_refused([&] { parse_commit_request(many, limits); }, 400, "more than 3 operations");
  expect_refused([&] { parse_commit_request(kHeader + file_line("a", "aGVsbG8gd29y"), limits); },
                 413, "larger than 6 bytes");
  const std::string huge =
      kHeader +
      line(
          {{"key", "lfsFile"},
           {"value", {{"path", "w"}, {"oid", std::string(64, 'a')}, {"size", uint64_t{1} << 63}}}});
  expect_refused([&] { parse_commit_request(huge, limits); }, 413, "[0, 6]");
}

TEST(HfUploadPreupload, ModesFollowNamesSamplesAndSizes) {
  EXPECT_EQ(upload_mode({"adapter_model.safetensors", "{}", 10}), "lfs");
  EXPECT_EQ(upload_mode({"adapter_model.bin", "", 10}), "lfs");
  EXPECT_EQ(upload_mode({"README.md", "# hi", 10}), "regular");
  EXPECT_EQ(upload_mode({"data.raw", std::string("a\0b", 3), 3}), "lfs");
  EXPECT_EQ(upload_mode({"big.txt", "aaaa", 50 << 20}), "lfs");
  const auto files = parse_preupload_request(
      R"({"files": [{"path": "README.md", "sample": "aGk=", "size": 2}], "gitIgnore": ""})", 4,
      100);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].sample, "hi");
}

TEST(HfUploadPreuploadMalformed, RefusesHostileBodies) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[]", "expected a JSON object"},
      {"{}", "missing 'files'"},
      {R"({"files": {}})", "must be a list"},
      {R"({"files": [1]})", "expected an object"},
      {R"({"files": [{"path": "../x", "sample": "", "size": 1}]})", "may not start"},
      {R"({"files": [{"path": "a", "sample": "***", "size": 1}]})", "base64"},
      {R"({"files": [{"path": "a", "sample": "", "size": "1"}]})", "must be an integer"},
      {R"({"files": [{"path": "a", "sample": ""}]})", "missing 'size'"},
      {R"({"files": [{"path": "a", "size": 1}]})", "missing 'sample'"},
      {"{\"files\": [{\"path\": \"\xc3\x28\", \"sample\": \"\", \"size\": 1}]}", "invalid JSON"},
      {R"({"files": [{}, {}, {}, {}, {}]})", "more than 4"},
  };
  for (const auto& [body, fragment] : cases) {
    SCOPED_TRACE(body);
    expect_refused([&] { parse_preupload_request(body, 4, 100); }, 400, fragment);
  }
  expect_refused(
      [&] {
        parse_preupload_request(R"({"files": [{"path": "a", "sample": "", "size": 101}]})", 4, 100);
      },
      413, "[0, 100]");
}

TEST(HfUploadLfsBatchMalformed, RefusesHostileBodies) {
  const std::string oid(64, 'e');
  EXPECT_EQ(parse_lfs_batch_request(
                fmt::format(R"({{"operation": "upload", "transfers": ["basic", "multipart"],
                    "objects": [{{"oid": "{}", "size": 3}}], "hash_algo": "sha256",
                    "ref": {{"name": "main"}}}})",
                            oid),
                4)[0]
                .size,
            3);
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {R"({"operation": "download", "objects": []})", 422, "only the 'upload'"},
      {R"({"operation": "upload", "transfers": ["multipart"], "objects": []})", 422, "'basic'"},
      {R"({"operation": "upload", "hash_algo": "md5", "objects": []})", 422, "sha256"},
      {R"({"operation": "upload", "objects": [{"oid": "../../x", "size": 1}]})", 400,
       "64 lowercase"},
      {R"({"operation": "upload", "objects": [{"oid": ")" + oid + R"(", "size": -5}]})", 413,
       "[0,"},
      {R"({"operation": "upload", "objects": [1, 2, 3, 4, 5]})", 400, "more than 4"},
      {R"({"objects": []})", 400, "missing 'operation'"},
      {"\"upload\"", 400, "expected a JSON object"},
  };
  for (const auto& [body, status, fragment] : cases) {
    SCOPED_TRACE(body);
    expect_refused([&] { parse_lfs_batch_request(body, 4); }, status, fragment);
  }
}

TEST(HfUploadCreateRepo, NamesTheOwner) {
  EXPECT_EQ(parse_create_repo_request(R"({"name": "mod", "organization": null})", "alice").repo,
            "alice/mod");
  EXPECT_EQ(parse_create_repo_request(R"({"name": "mod", "organization": "bob", "type": "model"})",
                                      "alice")
                .repo,
            "bob/mod");
}

TEST(HfUploadCreateRepoMalformed, RefusesBadNames) {
  for (const auto& [body, fragment] : std::vector<std::pair<std::string, std::string>>{
           {R"({"name": "../x"})", "may only contain"},
           {R"({"name": ".x"})", "may not start"},
           {R"({"name": "a/b"})", "may only contain"},
           {R"({"name": "x", "type": "dataset"})", "models only"},
           {R"({"organization": "x"})", "missing 'name'"},
           {R"({"name": 7})", "must be a string"},
           {"{\"name\": \"\xff\"}", "invalid JSON"}}) {
    SCOPED_TRACE(body);
    expect_refused([&] { parse_create_repo_request(body, "alice"); }, 400, fragment);
  }
}

TEST(HfUploadFilters, MapHuggingFaceTagsOntoTheSearch) {
  SearchFilter f;
  add_hf_filters(f, {"peft", "lora", "base_model:adapter:google/flan-t5-large", "bbh"});
  EXPECT_EQ(f.base_model, "google/flan-t5-large");
  EXPECT_EQ(f.tags, std::vector<std::string>{"bbh"});
}

class TempRoot {
 public:
  TempRoot()
      : path_(fs::temp_directory_path() /
              ("lorahub-hf-upload-" + std::to_string(::getpid()) + "-" + random_hex(4))) {}
  ~TempRoot() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

TEST(HfUploadLfsUrlsMalformed, OnlyTheSignedUrlIsAccepted) {
  TempRoot root;
  auto meta = MetaStore::open(root.str(), "");
  BlobStore blobs(root.str());
  HfUploadOptions options;
  options.root = root.str();
  options.public_url = "http://hub";
  HfUploads uploads(*meta, blobs, options);
  const std::string oid = sha256_hex(std::string_view("abc"));
  const json batch = uploads.lfs_batch(
      "alice/mod",
      fmt::format(R"({{"operation": "upload", "objects": [{{"oid": "{}", "size": 3}}]}})", oid));
  const std::string href = batch["objects"][0]["actions"]["upload"]["href"];
  ASSERT_TRUE(href.starts_with("http://hub/api/lorahub/lfs/alice/mod/" + oid + "?size=3&expires="))
      << href;
  const std::string expires =
      href.substr(href.find("expires=") + 8, href.find("&signature") - href.find("expires=") - 8);
  const std::string signature = href.substr(href.find("signature=") + 10);
  EXPECT_EQ(uploads.check_lfs_upload("alice/mod", oid, "3", expires, signature, 3), 3);
  expect_refused([&] { uploads.check_lfs_upload("bob/mod", oid, "3", expires, signature, 3); }, 403,
                 "signature");
  expect_refused([&] { uploads.check_lfs_upload("alice/mod", oid, "4", expires, signature, 4); },
                 403, "signature");
  expect_refused([&] { uploads.check_lfs_upload("alice/mod", oid, "3", "1", signature, 3); }, 403,
                 "signature");
  expect_refused([&] { uploads.check_lfs_upload("alice/mod", oid, "3", expires, "nothex", 3); },
                 403, "signed");
  expect_refused([&] { uploads.check_lfs_upload("alice/mod", oid, "3x", expires, signature, 3); },
                 403, "signed");
  expect_refused([&] { uploads.check_lfs_upload("alice/mod", oid, "3", expires, signature, 9); },
                 400, "Content-Length");
  // The content must be what the oid names; only then is a blob stored.
  expect_refused([&] { uploads.lfs_upload(oid, 3, "abd"); }, 400, "SHA-256");
  expect_refused([&] { uploads.lfs_upload(oid, 3, "abcd"); }, 400, "got 4 bytes");
  EXPECT_TRUE(blobs.list().empty());
  uploads.lfs_upload(oid, 3, "abc");
  EXPECT_TRUE(blobs.contains(oid));
  // Stored: the next batch for it has no actions, so the client skips the upload.
  const json again = uploads.lfs_batch(
      "alice/mod",
      fmt::format(R"({{"operation": "upload", "objects": [{{"oid": "{}", "size": 3}}]}})", oid));
  EXPECT_FALSE(again["objects"][0].contains("actions"));
}

TEST(HubOpenApi, DocumentsExactlyTheServersRoutes) {
  TempRoot root;
  ServerOptions options;
  options.root = root.str();
  HubServer server(options);
  const json doc = json::parse(openapi_json());
  EXPECT_EQ(doc["openapi"], "3.0.3");
  std::set<std::pair<std::string, std::string>> served, documented;
  for (const auto& r : server.routes()) {
    std::string method = r.method;
    for (auto& c : method) c = static_cast<char>(std::tolower(c));
    EXPECT_TRUE(served.insert({method, r.path}).second) << "served twice: " << r.path;
  }
  for (const auto& [path, operations] : doc["paths"].items()) {
    for (const auto& [method, operation] : operations.items()) {
      documented.insert({method, path});
      // Every parameter of the path template is declared, and every operation says what its
      // answers look like, errors included.
      EXPECT_TRUE(operation.contains("responses") && operation["responses"].contains("default"))
          << method << " " << path;
    }
  }
  EXPECT_EQ(served, documented);
}

}  // namespace
}  // namespace lorahub::hub
