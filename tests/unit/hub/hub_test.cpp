// Unit tests of the hub's building blocks: hashes, names, the blob store, the metadata store on
// SQLite (compare-and-swap commits, search), and upload validation.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include "core/error.h"
#include "hub/blob_store.h"
#include "hub/client.h"
#include "hub/commit.h"
#include "hub/gc.h"
#include "hub/hash.h"
#include "hub/meta_store.h"
#include "hub/module_check.h"
#include "hub/names.h"
#include "hub/sql.h"

namespace lorahub::hub {
namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("lorahub-hub-test-" + std::to_string(::getpid()) + "-" + random_hex(4));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(HubHash, KnownVectors) {
  EXPECT_EQ(sha256_hex(std::string_view("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // `printf 'hello\n' | git hash-object --stdin`
  EXPECT_EQ(git_blob_sha1_hex("hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a");
  const std::string a = random_hex(16), b = random_hex(16);
  EXPECT_TRUE(is_lower_hex(a, 32));
  EXPECT_NE(a, b);
  EXPECT_FALSE(is_lower_hex("ABCDEF", 6));
  EXPECT_FALSE(is_lower_hex("abc", 4));
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

TEST(HubHash, ContentHashOfAFileIsItsSha256) {
  TempDir dir;
  write_file(dir.path() / "f", "abc");
  EXPECT_EQ(content_sha256_hex((dir.path() / "f").string()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  write_file(dir.path() / "empty", "");
  EXPECT_EQ(content_sha256_hex((dir.path() / "empty").string()), sha256_hex(std::string_view()));
  // Larger than the 1 MiB read chunk: streamed, same digest as hashing it whole.
  const std::string big(3 * (1 << 20) + 7, 'x');
  write_file(dir.path() / "big", big);
  EXPECT_EQ(content_sha256_hex((dir.path() / "big").string()), sha256_hex(big));
}

TEST(HubHash, ContentHashOfADirectoryIgnoresWhereItLies) {
  TempDir dir;
  const fs::path a = dir.path() / "one" / "module", b = dir.path() / "two" / "other";
  for (const fs::path& root : {a, b}) {
    write_file(root / "adapter_config.json", "{}");
    write_file(root / "sub" / "w.bin", "weights");
  }
  const std::string digest = content_sha256_hex(a.string());
  EXPECT_EQ(digest, content_sha256_hex(b.string()));
  // "relpath\0sha256\n" per file in path order, hashed.
  const std::string listing = "adapter_config.json" + std::string(1, '\0') +
                              sha256_hex(std::string_view("{}")) + "\nsub/w.bin" +
                              std::string(1, '\0') + sha256_hex(std::string_view("weights")) + "\n";
  EXPECT_EQ(digest, sha256_hex(listing));

  write_file(b / "sub" / "w.bin", "weightz");
  EXPECT_NE(content_sha256_hex(b.string()), digest);  // a changed byte
  write_file(b / "sub" / "w.bin", "weights");
  fs::rename(b / "sub" / "w.bin", b / "sub" / "v.bin");
  EXPECT_NE(content_sha256_hex(b.string()), digest);  // a renamed file
}

TEST(HubHashMalformed, ContentHashOfAMissingPathNamesIt) {
  try {
    content_sha256_hex("/nonexistent/lorahub/model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/lorahub/model"), std::string::npos);
  }
}

TEST(HubNames, AcceptsOrdinaryNames) {
  EXPECT_EQ(validate_repo_id("alice/flan-t5_lora.v2"), "alice");
  EXPECT_NO_THROW(validate_file_path("adapter_model.safetensors"));
  EXPECT_NO_THROW(validate_file_path("sub/dir/README.md"));
}

TEST(HubNamesMalformed, RefusesTraversalAndOddBytes) {
  for (const char* repo : {"alice", "alice/", "/x", "alice/..", "../x", "alice/.x", "a/b/c",
                           "al ice/x", "alice/x\n", "-a/x"}) {
    EXPECT_THROW(validate_repo_id(repo), Error) << repo;
  }
  for (const std::string& path : std::vector<std::string>{
           "", "/etc/passwd", "../x", "a/../../x", "a//b", "a/", "./a", ".hidden", "a\\b",
           std::string("a\0b", 3), "a/" + std::string(600, 'x'), std::string(200, 'y')}) {
    EXPECT_THROW(validate_file_path(path), Error) << path;
  }
  std::string deep;
  for (int i = 0; i < 20; ++i) deep += "d/";
  EXPECT_THROW(validate_file_path(deep + "f"), Error);
  try {
    validate_file_path("../evil");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("../evil"), std::string::npos) << e.what();
  }
}

TEST(HubBlobStore, StoresOnceByContent) {
  TempDir dir;
  BlobStore store(dir.path().string());
  const StoredBlob first = store.put("hello");
  EXPECT_TRUE(first.created);
  EXPECT_EQ(first.sha256, sha256_hex(std::string_view("hello")));
  const StoredBlob again = store.put("hello");
  EXPECT_FALSE(again.created);
  EXPECT_TRUE(store.contains(first.sha256));
  const auto mapped = store.open(first.sha256);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(mapped->data()), mapped->size()), "hello");
  EXPECT_TRUE(store.put("").created);  // an empty file is a blob too
  EXPECT_THROW(store.path_of("../../etc/passwd"), Error);
}

// A temp file nobody holds belongs to a writer that died (kill -9): it goes at startup however
// young; one a live writer holds (write_file_atomic keeps a lock until its rename) stays.
TEST(HubBlobStore, RemovesTempFilesOfDeadWritersOnly) {
  TempDir dir;
  const fs::path folder = dir.path() / "blobs" / "ab";
  fs::create_directories(folder);
  std::ofstream(folder / ".abc.tmp1234") << "left by a crash a moment ago";
  std::ofstream(folder / ".abd.tmp5678") << "being written";
  for (const char* name : {".abc.tmp1234", ".abd.tmp5678"})  // half a minute ago, not an hour
    fs::last_write_time(folder / name, fs::file_time_type::clock::now() - std::chrono::seconds(30));
  const int held = ::open((folder / ".abd.tmp5678").c_str(), O_RDONLY);
  ASSERT_EQ(::flock(held, LOCK_EX), 0);
  BlobStore store(dir.path().string());
  EXPECT_FALSE(fs::exists(folder / ".abc.tmp1234"));
  EXPECT_TRUE(fs::exists(folder / ".abd.tmp5678"));
  ::close(held);
  EXPECT_EQ(store.remove_abandoned_temp_files(), 1);
  EXPECT_FALSE(fs::exists(folder / ".abd.tmp5678"));
}

TEST(HubNamesMalformed, ReservedUserNamesAreRefusedInAnyCase) {
  for (const char* name : {"api", "API", "Models", "datasets", "spaces", "resolve"}) {
    EXPECT_THROW(validate_user_name(name), Error) << name;
    EXPECT_THROW(validate_repo_id(std::string(name) + "/x"), Error) << name;
  }
  EXPECT_NO_THROW(validate_repo_id("alice/api"));  // only the namespace is reserved
  EXPECT_NO_THROW(validate_repo_id("lorahub/flan_t5_large-bbh"));
}

Revision make_revision(const std::string& repo, const std::string& sha, const std::string& parent,
                       int64_t rank, std::vector<std::string> tags) {
  Revision rev;
  rev.sha = sha;
  rev.repo = repo;
  rev.parent = parent;
  rev.created = 1000;
  rev.meta.base_model = "base/" + std::to_string(rank);
  rev.meta.rank = rank;
  rev.meta.alpha = 2.5 * rank;
  rev.meta.targets = {"q", "v"};
  rev.meta.task = repo.substr(repo.find('/') + 1);
  rev.meta.tags = std::move(tags);
  rev.files = {{"adapter_config.json", std::string(64, 'a'), std::string(40, 'b'), 10}};
  return rev;
}

TEST(HubMetaStore, RepoIdsAndUsersDifferingInCaseAreOne) {
  TempDir dir;
  auto store = MetaStore::open(dir.path().string(), "");
  const std::string token = store->create_token("Alice");
  EXPECT_EQ(store->user_for_token(store->create_token("alice")), "Alice");
  EXPECT_EQ(store->user_for_token(token), "Alice");
  EXPECT_TRUE(store->commit(make_revision("Alice/Mod", std::string(40, '1'), "", 4, {})));
  EXPECT_FALSE(store->commit(make_revision("alice/mod", std::string(40, '2'), "", 4, {})));
  EXPECT_EQ(store->head_of("ALICE/MOD"), std::string(40, '1'));
  ASSERT_TRUE(store->find_repo("alice/mod"));
  EXPECT_EQ(store->find_repo("alice/mod")->id, "Alice/Mod");
  EXPECT_TRUE(
      store->commit(make_revision("alice/MOD", std::string(40, '3'), std::string(40, '1'), 4, {})));
  const auto rev = store->find_revision("alice/mod", std::string(40, '3'));
  ASSERT_TRUE(rev);
  EXPECT_EQ(rev->repo, "Alice/Mod");  // stored under the first spelling
}

TEST(HubMetaStore, TokensAreHashedAndResolve) {
  TempDir dir;
  auto store = MetaStore::open(dir.path().string(), "");
  const std::string token = store->create_token("alice");
  EXPECT_EQ(store->user_for_token(token).value_or(""), "alice");
  EXPECT_FALSE(store->user_for_token(token + "x").has_value());
  EXPECT_NE(store->create_token("alice"), token);  // a user may hold several tokens
}

TEST(HubMetaStore, RevokedTokensNoLongerResolve) {
  TempDir dir;
  auto store = MetaStore::open(dir.path().string(), "");
  const std::string a1 = store->create_token("alice"), a2 = store->create_token("alice");
  const std::string b = store->create_token("bob");
  EXPECT_TRUE(store->revoke_token(a1));
  EXPECT_FALSE(store->user_for_token(a1).has_value());
  EXPECT_FALSE(store->revoke_token(a1));  // already gone
  EXPECT_FALSE(store->revoke_token("lh_" + std::string(48, '0')));
  EXPECT_EQ(store->user_for_token(a2).value_or(""), "alice");
  EXPECT_EQ(store->revoke_tokens_of("alice"), 1);
  EXPECT_FALSE(store->user_for_token(a2).has_value());
  EXPECT_EQ(store->revoke_tokens_of("alice"), 0);
  EXPECT_EQ(store->user_for_token(b).value_or(""), "bob");  // other users untouched
}

TEST(HubMetaStore, CommitsAreCompareAndSwapOnTheHead) {
  TempDir dir;
  auto store = MetaStore::open(dir.path().string(), "");
  const std::string a(40, '1'), b(40, '2'), c(40, '3');
  EXPECT_TRUE(store->commit(make_revision("u/m", a, "", 4, {"x"})));
  EXPECT_FALSE(store->commit(make_revision("u/m", b, "", 4, {})));  // the repo exists already
  EXPECT_TRUE(store->commit(make_revision("u/m", b, a, 8, {"y"})));
  EXPECT_FALSE(store->commit(make_revision("u/m", c, a, 8, {})));  // a is no longer the head
  EXPECT_EQ(store->head_of("u/m").value_or(""), b);
  EXPECT_FALSE(store->find_revision("u/m", c).has_value());  // the loser left nothing
  const auto old = store->find_revision("u/m", a);
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->meta.rank, 4);
  EXPECT_EQ(old->files.size(), 1u);
  const auto head = store->find_revision("u/m", "main");
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->sha, b);
  EXPECT_EQ(head->parent, a);
  EXPECT_EQ(head->meta.alpha, 20.0);
  EXPECT_EQ(head->meta.targets, (std::vector<std::string>{"q", "v"}));
}

TEST(HubMetaStore, SearchFiltersTheHeads) {
  TempDir dir;
  auto store = MetaStore::open(dir.path().string(), "");
  ASSERT_TRUE(store->commit(make_revision("u/logic", std::string(40, 'a'), "", 4, {"bbh"})));
  ASSERT_TRUE(store->commit(make_revision("u/math", std::string(40, 'b'), "", 8, {"bbh", "m"})));
  ASSERT_TRUE(store->commit(make_revision("v/misc_50%", std::string(40, 'c'), "", 8, {})));
  // The ids found with the filter that `set` fills in, sorted.
  auto ids = [&](auto set) {
    SearchFilter f;
    set(f);
    std::vector<std::string> out;
    for (const auto& r : store->search(f)) out.push_back(r.id);
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(ids([](SearchFilter&) {}).size(), 3u);
  EXPECT_EQ(ids([](SearchFilter& f) { f.tag = "bbh"; }),
            (std::vector<std::string>{"u/logic", "u/math"}));
  EXPECT_EQ(ids([](SearchFilter& f) { f.rank = 8; }),
            (std::vector<std::string>{"u/math", "v/misc_50%"}));
  EXPECT_EQ(ids([](SearchFilter& f) { f.text = "MATH"; }), (std::vector<std::string>{"u/math"}));
  EXPECT_EQ(ids([](SearchFilter& f) { f.text = "_50%"; }),
            (std::vector<std::string>{"v/misc_50%"}));
  EXPECT_EQ(ids([](SearchFilter& f) { f.text = "%"; }),
            (std::vector<std::string>{"v/misc_50%"}));  // literal
  EXPECT_EQ(ids([](SearchFilter& f) { f.base_model = "BASE/4"; }),
            (std::vector<std::string>{"u/logic"}));
  EXPECT_EQ(ids([](SearchFilter& f) { f.author = "v"; }), (std::vector<std::string>{"v/misc_50%"}));
  EXPECT_EQ(ids([](SearchFilter& f) { f.limit = 2; }).size(), 2u);
  EXPECT_EQ(ids([](SearchFilter& f) {
              f.offset = 2;
              f.limit = 2;
            }).size(),
            1u);
}

// A safetensors file with one f32 tensor of `shape` per name.
std::string safetensors_bytes(
    const std::vector<std::pair<std::string, std::vector<int>>>& tensors) {
  std::string header = "{", data;
  for (const auto& [name, shape] : tensors) {
    size_t n = 1;
    std::string dims;
    for (int d : shape) {
      n *= d;
      if (!dims.empty()) dims += ',';  // not `"," + to_string`: GCC 12's -Wrestrict misfires
      dims += std::to_string(d);
    }
    header +=
        fmt::format("{}\"{}\":{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                    header.size() > 1 ? "," : "", name, dims, data.size(), data.size() + 4 * n);
    data += std::string(4 * n, '\0');
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

std::vector<UploadedFile> adapter_files(int config_rank, int weight_rank) {
  const std::string key = "base_model.model.encoder.block.0.layer.0.SelfAttention.q";
  return {{"adapter_config.json",
           fmt::format(R"({{"peft_type": "LORA", "r": {}, "lora_alpha": 16, )"
                       R"("target_modules": ["v", "q"], "base_model_name_or_path": "t5-small"}})",
                       config_rank)},
          {"adapter_model.safetensors",
           safetensors_bytes({{key + ".lora_A.weight", {weight_rank, 8}},
                              {key + ".lora_B.weight", {8, weight_rank}}})}};
}

void age(const BlobStore& store, const std::string& sha, std::chrono::hours by) {
  fs::last_write_time(store.path_of(sha), fs::file_time_type::clock::now() - by);
}

// The race of issue 14: gc's first, unlocked look found a blob unreferenced, then a push
// committed a revision pointing at it. The removal rechecks under the write lock and keeps it.
TEST(HubGc, RemovalRechecksReferencesWhereNoPushCanCommit) {
  TempDir dir;
  const BlobStore blobs(dir.path().string());
  auto meta = MetaStore::open(dir.path().string(), "");
  const std::string raced = blobs.put("committed after gc looked").sha256;
  const std::string orphan = blobs.put("an orphan").sha256;
  Revision rev = make_revision("u/m", std::string(40, '1'), "", 4, {});
  rev.files[0].sha256 = raced;
  ASSERT_TRUE(meta->commit(rev));
  std::vector<std::string> removed;
  const auto kept = meta->remove_unreferenced(
      {raced, orphan}, [&](const std::string& sha) { removed.push_back(sha); });
  EXPECT_EQ(kept, std::vector<std::string>{raced});
  EXPECT_EQ(removed, std::vector<std::string>{orphan});
}

// The guard: gc never runs against a store it would have to create (it would reference nothing,
// so every blob would go), and never creates a hub where there was none.
TEST(HubGcMalformed, RefusesAFolderWithoutBlobsOrMetadata) {
  TempDir dir;
  const std::string root = dir.path().string();
  EXPECT_THROW(collect_garbage_at(root + "/typo", "", std::chrono::seconds(0), false), Error);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "typo"));
  const BlobStore blobs(root);
  const std::string orphan = blobs.put("referenced in PostgreSQL").sha256;
  EXPECT_THROW(collect_garbage_at(root, "", std::chrono::seconds(0), false), Error);
  EXPECT_TRUE(blobs.contains(orphan));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "hub.sqlite3"));
  EXPECT_THROW(MetaStore::open_existing(root, ""), Error);
  MetaStore::open(root, "");  // now the hub exists: gc runs
  EXPECT_EQ(collect_garbage_at(root, "", std::chrono::seconds(0), false).collected.size(), 1u);
  EXPECT_FALSE(blobs.contains(orphan));
}

TEST(HubGc, RemovesOnlyOldUnreferencedBlobs) {
  TempDir dir;
  const BlobStore blobs(dir.path().string());
  auto meta = MetaStore::open(dir.path().string(), "");
  const std::string kept = blobs.put("in a revision").sha256;
  const std::string orphan = blobs.put("left by a failed push").sha256;
  const std::string young = blobs.put("a push in flight").sha256;
  Revision rev = make_revision("u/m", std::string(40, '1'), "", 4, {});
  rev.files[0].sha256 = kept;
  ASSERT_TRUE(meta->commit(rev));
  age(blobs, kept, std::chrono::hours(5));
  age(blobs, orphan, std::chrono::hours(2));
  std::ofstream(dir.path() / "blobs" / "zz-not-a-blob") << "stray";  // never touched

  const GcReport dry = collect_garbage(blobs, *meta, std::chrono::hours(1), true);
  EXPECT_EQ(dry.referenced, 1);
  EXPECT_EQ(dry.young, 1);
  ASSERT_EQ(dry.collected.size(), 1u);
  EXPECT_EQ(dry.collected[0].sha256, orphan);
  EXPECT_EQ(dry.collected_bytes, std::string("left by a failed push").size());
  EXPECT_TRUE(blobs.contains(orphan));  // a dry run removes nothing

  const GcReport done = collect_garbage(blobs, *meta, std::chrono::hours(1), false);
  ASSERT_EQ(done.collected.size(), 1u);
  EXPECT_FALSE(blobs.contains(orphan));
  EXPECT_TRUE(blobs.contains(kept) && blobs.contains(young));
  EXPECT_TRUE(fs::exists(dir.path() / "blobs" / "zz-not-a-blob"));
  EXPECT_TRUE(collect_garbage(blobs, *meta, std::chrono::hours(1), false).collected.empty());
}

TEST(HubGc, StoringAnOrphanAgainProtectsIt) {
  TempDir dir;
  const BlobStore blobs(dir.path().string());
  auto meta = MetaStore::open(dir.path().string(), "");
  const std::string sha = blobs.put("reused").sha256;
  age(blobs, sha, std::chrono::hours(3));
  EXPECT_FALSE(blobs.put("reused").created);  // a new push with the same file: touched
  EXPECT_TRUE(collect_garbage(blobs, *meta, std::chrono::hours(1), false).collected.empty());
  EXPECT_TRUE(blobs.contains(sha));
  // Removed between a push's put and its commit: put stores it again.
  fs::remove(blobs.path_of(sha));
  EXPECT_TRUE(blobs.put("reused").created);
  EXPECT_TRUE(blobs.contains(sha));
}

// ---- the push/gc race (issue 14, finding 4), made deterministic ----------------------------
// A push and a gc each run on their own MetaStore connection to one SQLite file, as a server and
// `lorahub hub gc` do. A SqlDb wrapper stops one side at a chosen point (a push right before its
// commit's transaction; gc right after its first, unlocked look at the references) until the
// other side has got where the race needs it. Both orders with min age 0 must lose no blob.

class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(30), [&] { return open_; }))
        << "the other side of the race never got there";
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Runs `pause` once: before the first write transaction, or after the first query outside one.
class PausingDb : public SqlDb {
 public:
  enum class At { kFirstBegin, kFirstLook };
  PausingDb(std::unique_ptr<SqlDb> db, At at, std::function<void()> pause)
      : db_(std::move(db)), at_(at), pause_(std::move(pause)) {}
  std::vector<SqlRow> query(std::string_view sql, const std::vector<SqlValue>& params) override {
    auto rows = db_->query(sql, params);
    if (at_ == At::kFirstLook && !in_transaction_ &&
        sql.find("SELECT DISTINCT sha256 FROM files") != std::string_view::npos)
      pause_once();
    return rows;
  }
  int64_t execute(std::string_view sql, const std::vector<SqlValue>& params) override {
    return db_->execute(sql, params);
  }
  void begin() override {
    if (at_ == At::kFirstBegin) pause_once();
    db_->begin();
    in_transaction_ = true;
  }
  void commit() override {
    in_transaction_ = false;
    db_->commit();
  }
  void rollback() override {
    in_transaction_ = false;
    db_->rollback();
  }
  void exclude_writers(std::string_view table) override { db_->exclude_writers(table); }
  std::string describe() const override { return db_->describe(); }
  void arm() { armed_ = true; }

 private:
  void pause_once() {
    if (!armed_ || paused_.exchange(true)) return;
    pause_();
  }
  std::unique_ptr<SqlDb> db_;
  At at_;
  std::function<void()> pause_;
  std::atomic<bool> armed_{false}, paused_{false};
  bool in_transaction_ = false;
};

class HubGcRace : public ::testing::Test {
 protected:
  std::unique_ptr<MetaStore> connect(PausingDb::At at, std::function<void()> pause) {
    auto db = std::make_unique<PausingDb>(open_sqlite((dir_.path() / "hub.sqlite3").string()), at,
                                          std::move(pause));
    PausingDb& pausing = *db;
    auto meta = std::make_unique<MetaStore>(std::move(db));
    pausing.arm();  // not while MetaStore creates its schema
    return meta;
  }
  // Runs `gc` on this thread while a push of a new module runs on another, both on their own
  // connection with their pauses; then checks that the acknowledged push kept every blob.
  void race(std::function<void()> push_pause, PausingDb::At gc_at, std::function<void()> gc_pause,
            const std::function<void()>& before_gc, const std::function<void()>& after_gc) {
    auto push_meta = connect(PausingDb::At::kFirstBegin, std::move(push_pause));
    auto gc_meta = connect(gc_at, std::move(gc_pause));
    const auto files = adapter_files(4, 4);
    std::optional<Revision> rev;
    std::thread pusher([&] {
      rev = commit_upload(*push_meta, blobs_, (dir_.path() / "uploads").string(),
                          {"u/m", "", "", {}}, files);
      pushed_.open();
    });
    before_gc();
    collected_ = collect_garbage(blobs_, *gc_meta, std::chrono::seconds(0), false).collected.size();
    after_gc();
    pusher.join();
    ASSERT_TRUE(rev.has_value());
    ASSERT_EQ(rev->files.size(), files.size());
    for (const auto& f : files) {  // the acknowledged revision serves every file it names
      const auto entry = std::find_if(rev->files.begin(), rev->files.end(),
                                      [&](const FileEntry& e) { return e.path == f.path; });
      ASSERT_NE(entry, rev->files.end());
      ASSERT_TRUE(blobs_.contains(entry->sha256)) << "lost the blob of " << f.path;
      EXPECT_EQ(sha256_hex(std::string_view(f.content)), entry->sha256);
    }
  }

  TempDir dir_;
  BlobStore blobs_{dir_.path().string()};
  Gate stored_, looked_, pushed_, collected_gate_;
  size_t collected_ = 0;
};

// The push stored its blobs, then gc looked (none referenced), then the push committed, then gc
// removed: the removal must re-read the references where no push can commit (remove_unreferenced).
TEST_F(HubGcRace, APushCommittingBetweenGcsLookAndItsRemovalKeepsItsBlobs) {
  race(
      [&] {
        stored_.open();
        looked_.wait();
      },
      PausingDb::At::kFirstLook,
      [&] {
        looked_.open();
        pushed_.wait();
      },
      [&] { stored_.wait(); }, [] {});
  EXPECT_EQ(collected_, 0u);
}

// gc ran entirely between the push's put and its commit, and removed the (then unreferenced)
// blobs: the push must find them gone after its commit and store them again (commit_upload).
TEST_F(HubGcRace, AGcBetweenAPushsPutAndItsCommitCostsThePushNoBlob) {
  race(
      [&] {
        stored_.open();
        collected_gate_.wait();
      },
      PausingDb::At::kFirstLook, [] {}, [&] { stored_.wait(); }, [&] { collected_gate_.open(); });
  EXPECT_EQ(collected_, 2u);  // gc did remove both files' blobs: the race was hit
}

TEST(HubModuleCheck, ReadsTheMetadata) {
  TempDir scratch;
  const ModuleMeta meta = inspect_module(adapter_files(4, 4), scratch.path().string());
  EXPECT_EQ(meta.rank, 4);
  EXPECT_EQ(meta.alpha, 16);
  EXPECT_EQ(meta.base_model, "t5-small");
  EXPECT_EQ(meta.targets, (std::vector<std::string>{"q", "v"}));
}

TEST(HubModuleCheck, NamesTheAdaptedModulesWhenTheConfigDoesNot) {
  TempDir scratch;
  auto files = adapter_files(4, 4);
  files[0].content = R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8})";
  EXPECT_EQ(inspect_module(files, scratch.path().string()).targets,
            (std::vector<std::string>{"q"}));
}

void expect_refused(const std::vector<UploadedFile>& files, const std::string& fragment) {
  TempDir scratch;
  try {
    inspect_module(files, scratch.path().string());
    ADD_FAILURE() << "accepted; expected an error containing " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    // Messages name the uploaded file, never the server's scratch folder.
    EXPECT_EQ(std::string(e.what()).find(scratch.path().string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(scratch.path()));  // the scratch folder was removed
}

TEST(HubModuleCheckMalformed, RefusesBrokenAdapters) {
  expect_refused(adapter_files(8, 4), "disagree with r = 8");
  auto files = adapter_files(4, 4);
  expect_refused({files[1]}, "adapter_config.json");
  expect_refused({files[0]}, "adapter_model.safetensors");
  expect_refused({{"adapter_config.json", "{\"r\": 4"}, files[1]}, "adapter_config.json");
  expect_refused(
      {{"adapter_config.json", "{\"r\": 4, \"lora_alpha\": 1, \"target_modules\": 3}"}, files[1]},
      "target_modules");
  expect_refused({files[0], {"adapter_model.safetensors", files[1].content.substr(0, 20)}},
                 "adapter_model.safetensors");
  expect_refused({files[0], {"adapter_model.safetensors", safetensors_bytes({{"x.weight", {2}}})}},
                 "no lora_A");
  expect_refused({files[0], {"adapter_model.safetensors", std::string(8, '\xff')}},
                 "adapter_model.safetensors");
}

TEST(HubFilter, ParsesKeyValueLists) {
  const HubFilter f = parse_hub_filter({"base=google/flan-t5-large,tag=bbh", "rank=16,limit=20"});
  EXPECT_EQ(f.base_model, "google/flan-t5-large");
  EXPECT_EQ(f.tag, "bbh");
  EXPECT_EQ(f.rank.value_or(0), 16);
  EXPECT_EQ(f.limit, 20);
  EXPECT_EQ(parse_hub_filter({"text=a,text=b"}).text, "b");  // later wins
  EXPECT_FALSE(parse_hub_filter({}).rank.has_value());
}

TEST(HubFilterMalformed, RefusesUnknownKeysAndBadNumbers) {
  for (const char* spec :
       {"colour=red", "rank=abc", "rank=-1", "rank=", "limit=0", "noequals", "=x", "rank=4x"}) {
    EXPECT_THROW(parse_hub_filter({spec}), Error) << spec;
  }
}

}  // namespace
}  // namespace lorahub::hub
