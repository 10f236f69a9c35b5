// The hub's public API (include/lorahub/hub.h): a HubServer started and stopped by the program,
// its tokens, a push/search/pull round trip through HubClient, and gc with its safety guard.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "lorahub/hub.h"
#include "lorahub/lorahub.h"
#include "tiny_models.h"

namespace lorahub::api_test {
namespace {

namespace fs = std::filesystem;

class HubApi : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        fs::temp_directory_path() / ("lorahub-hub-api-" + std::to_string(std::random_device()()));
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

// A hub server on a free port, serving on a thread of its own until the fixture ends.
struct RunningHub {
  explicit RunningHub(const fs::path& root)
      : server(api::HubServerOptions{.root = root.string(), .port = 0, .threads = 2}) {
    port = server.bind();
    thread = std::thread([this] { server.run(); });
  }
  ~RunningHub() {
    server.stop();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }

  api::HubServer server;
  int port = 0;
  std::thread thread;
};

// Bad input: suites named *Malformed* run under ASan too (scripts/test.sh).
class HubApiMalformed : public HubApi {};

TEST_F(HubApi, PushSearchPullAndGcThroughThePublicApi) {
  const std::string module = make_module(root_ / "module", 7);
  const fs::path hub_root = root_ / "hub";
  std::string sha;
  {
    RunningHub hub(hub_root);
    const std::string token = api::hub_create_token(hub_root.string(), "", "alice");
    api::HubClient writer(hub.url(), token);
    sha = writer.push(module, {.repo = "alice/qv", .task = "boolean_expressions", .tags = {"bbh"}});
    EXPECT_EQ(sha.size(), 40u) << sha;

    api::HubClient reader(hub.url(), "");
    const std::vector<api::HubModule> found = reader.search({.tag = "bbh"});
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].id, "alice/qv");
    EXPECT_EQ(found[0].sha, sha);
    EXPECT_EQ(found[0].task, "boolean_expressions");
    EXPECT_EQ(found[0].base_model, "tiny-llama");
    EXPECT_EQ(found[0].rank, 4);
    EXPECT_EQ(found[0].alpha, 8.0);
    EXPECT_EQ(found[0].tags, std::vector<std::string>{"bbh"});
    EXPECT_EQ(nlohmann::json::parse(found[0].info_json).at("id"), "alice/qv");
    EXPECT_TRUE(reader.search({.tag = "other"}).empty());

    const fs::path pulled = root_ / "pulled";
    EXPECT_EQ(reader.pull("alice/qv", "main", pulled.string()), sha);
    EXPECT_EQ(api::Adapter::load(pulled.string())->rank(), 4);

    // Revoked at once, also for the running server.
    api::hub_revoke_token(hub_root.string(), "", token);
    EXPECT_THROW(writer.push(module, {.repo = "alice/qv2"}), Error);
  }
  // The pushed blobs are referenced and stay; a blob no revision names goes (dry run: listed).
  const std::string orphan = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";
  fs::create_directories(hub_root / "blobs" / "2d");
  std::ofstream(hub_root / "blobs" / "2d" / orphan) << "x";  // sha256("x")
  const auto now = std::chrono::seconds(0);
  const api::HubGcReport dry = api::hub_gc(hub_root.string(), {.min_age = now, .dry_run = true});
  EXPECT_GT(dry.referenced, 0);
  ASSERT_EQ(dry.collected.size(), 1u);
  EXPECT_EQ(dry.collected[0].sha256, orphan);
  EXPECT_EQ(dry.collected[0].size, 1u);
  EXPECT_TRUE(fs::exists(hub_root / "blobs" / "2d" / orphan));
  const api::HubGcReport done = api::hub_gc(hub_root.string(), {.min_age = now});
  EXPECT_EQ(done.collected_bytes, 1u);
  EXPECT_FALSE(fs::exists(hub_root / "blobs" / "2d" / orphan));
  EXPECT_EQ(api::hub_gc(hub_root.string(), {.min_age = now}).referenced, dry.referenced);
}

TEST_F(HubApi, RevokingAUsersTokensCountsThem) {
  const std::string root = (root_ / "hub").string();
  api::hub_create_token(root, "", "bob");
  api::hub_create_token(root, "", "bob");
  EXPECT_EQ(api::hub_revoke_user_tokens(root, "", "bob"), 2);
  try {
    api::hub_revoke_user_tokens(root, "", "bob");
    FAIL() << "no tokens left to revoke";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("user 'bob' has no tokens on"), std::string::npos)
        << e.what();
  }
}

TEST_F(HubApiMalformed, GcRefusesAFolderThatIsNoHub) {
  // The guard: an empty store has no references, so every blob would go.
  fs::create_directories(root_ / "blobs");
  EXPECT_THROW(api::hub_gc(root_.string()), Error);
  EXPECT_THROW(api::hub_gc((root_ / "missing").string()), Error);
  try {
    api::hub_gc(root_.string(), {.min_age = std::chrono::seconds(-1)});
    FAIL() << "a negative min_age is refused";
  } catch (const api::OptionError& e) {
    EXPECT_EQ(e.option(), "min_age");
  }
}

TEST_F(HubApiMalformed, TokenToolsRefuseBadNamesAndMissingHubs) {
  EXPECT_THROW(api::hub_create_token(root_.string(), "", "../evil"), Error);
  EXPECT_FALSE(fs::exists(root_ / "hub.sqlite3"));  // the name is checked before the store opens
  EXPECT_THROW(api::hub_revoke_token((root_ / "missing").string(), "", "t"), Error);
  EXPECT_FALSE(fs::exists(root_ / "missing"));  // revoking never creates a hub
  api::hub_create_token(root_.string(), "", "carol");
  EXPECT_THROW(api::hub_revoke_token(root_.string(), "", "not-a-token"), Error);
}

}  // namespace
}  // namespace lorahub::api_test
