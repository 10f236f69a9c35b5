// api::Server (include/lorahub/serve.h): configured by ServeOptions, started with bind() + run()
// and ended with stop() from another thread (what a SIGTERM handler does); option errors name
// the field at fault.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "api/tiny_models.h"
#include "lorahub/serve.h"

namespace lorahub::api_test {
namespace {

namespace fs = std::filesystem;

class ServeApi : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        fs::temp_directory_path() / ("lorahub-serve-api-" + std::to_string(std::random_device()()));
    model_ = make_tiny_llama(root_ / "tiny-llama");
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
  std::string model_;
};
class ServeApiMalformed : public ServeApi {};

// The whole answer of one HTTP/1.1 request to 127.0.0.1:port ("" when it cannot connect).
std::string http_get(int port, const std::string& path, const std::string& headers = "") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request =
        "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + "\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) answer.append(buf, n);
    }
  }
  ::close(fd);
  return answer;
}

TEST_F(ServeApi, ServesUntilStopAndChecksKeys) {
  write_text(root_ / "keys", "# keys\n\nsecret-1\n");
  api::Server server({.model = model_, .port = 0, .api_key_file = (root_ / "keys").string()});
  EXPECT_EQ(server.model_name(), "tiny-llama");  // the folder's name
  const int port = server.bind();
  std::thread serving([&] { server.run(); });
  EXPECT_NE(http_get(port, "/v1/models").find("HTTP/1.1 401"), std::string::npos);
  const std::string models = http_get(port, "/v1/models", "Authorization: Bearer secret-1\r\n");
  EXPECT_NE(models.find("HTTP/1.1 200"), std::string::npos) << models;
  EXPECT_NE(models.find("\"tiny-llama\""), std::string::npos) << models;
  const auto start = std::chrono::steady_clock::now();
  server.stop();  // run() returns: nothing was in flight
  serving.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(http_get(port, "/health"), "");  // no longer listening
  server.stop();                             // again: harmless
}

TEST_F(ServeApi, TheNameDefaultsToTheFileOrFolder) {
  EXPECT_EQ(api::Server({.model = model_ + "/", .name = ""}).model_name(), "tiny-llama");
  EXPECT_EQ(api::Server({.model = model_, .name = "base"}).model_name(), "base");
}

// The option at fault, or "" when the constructor did not throw OptionError.
std::string failing_option(const api::ServeOptions& options, std::string* message = nullptr) {
  try {
    api::Server server(options);
  } catch (const api::OptionError& e) {
    if (message) *message = e.what();
    return e.option();
  }
  return "";
}

TEST_F(ServeApiMalformed, OptionErrorsNameTheField) {
  std::string message;
  const std::string keys = (root_ / "no-keys").string();
  EXPECT_EQ(failing_option({.model = model_, .api_key_file = keys}, &message), "api_key_file");
  EXPECT_EQ(message, keys + ": cannot read the API key file");
  write_text(root_ / "empty-keys", "# none\n\n");
  EXPECT_EQ(
      failing_option({.model = model_, .api_key_file = (root_ / "empty-keys").string()}, &message),
      "api_key_file");
  EXPECT_NE(message.find("no API keys in the file"), std::string::npos) << message;
  // The key file is read first: both wrong names the keys.
  EXPECT_EQ(failing_option({.model = (root_ / "none").string(), .api_key_file = keys}),
            "api_key_file");
  EXPECT_EQ(failing_option({.model = (root_ / "none").string()}, &message), "model");
  EXPECT_NE(message.find("none"), std::string::npos) << message;
}

}  // namespace
}  // namespace lorahub::api_test
