// The server end to end on a loopback socket: streamed answers and a client that goes away,
// before-body refusals, 100-continue, handler exceptions, files with Range, keep-alive.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "http/server.h"

namespace lorahub::http {
namespace {

using namespace std::chrono_literals;

class Client {
 public:
  explicit Client(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  ~Client() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void send(std::string_view bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), ssize_t(bytes.size()));
  }
  // Reads until `marker` has arrived (or the peer closes / 5 s pass).
  std::string read_until(std::string_view marker) {
    while (received_.find(marker) == std::string::npos) {
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      received_.append(buf, static_cast<size_t>(n));
    }
    const size_t at = received_.find(marker);
    const size_t end = at == std::string::npos ? received_.size() : at + marker.size();
    std::string out = received_.substr(0, end);
    received_.erase(0, end);
    return out;
  }

 private:
  int fd_;
  std::string received_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = std::filesystem::temp_directory_path() / ("http_test_" + std::to_string(::getpid()));
    std::ofstream(file_) << "0123456789";
    Router router;
    router.add({.method = "GET",
                .pattern = "/stream",
                .handler =
                    [this](Request&) {
                      return Response::chunked("text/event-stream", [this](StreamWriter& out) {
                        for (int i = 0; i < 2000 && out.write("data: tick\n\n"); ++i) {
                          std::this_thread::sleep_for(5ms);
                        }
                        writer_saw_gone_ = out.client_gone();
                        writer_done_ = true;
                      });
                    },
                .before_body = nullptr,
                .max_body = 0});
    // Works for up to `ms` milliseconds or until its client is gone; answers what it saw.
    router.add({.method = "GET",
                .pattern = "/work/{ms}",
                .handler =
                    [this](Request& req) {
                      const auto until = std::chrono::steady_clock::now() +
                                         std::chrono::milliseconds(std::stoi(req.capture("ms")));
                      bool gone = false;
                      while (!gone && std::chrono::steady_clock::now() < until) {
                        std::this_thread::sleep_for(5ms);
                        gone = req.client_gone();
                      }
                      handler_saw_gone_ = gone;
                      handler_done_ = true;
                      return Response::json(gone ? "\"gone\"" : "\"there\"");
                    },
                .before_body = nullptr,
                .max_body = 0});
    router.add({.method = "GET",
                .pattern = "/file",
                .handler =
                    [this](Request&) {
                      return Response::from_file(file_.string(), "application/octet-stream");
                    },
                .before_body = nullptr,
                .max_body = 0});
    router.add({.method = "GET",
                .pattern = "/tagged",
                .handler =
                    [this](Request&) {
                      Response res = Response::from_file(file_.string(), "text/plain");
                      res.set_header("ETag", "\"v1\"");
                      return res;
                    },
                .before_body = nullptr,
                .max_body = 0});
    router.add({.method = "GET",
                .pattern = "/throw",
                .handler = [](Request&) -> Response { throw std::logic_error("oops \xFF"); },
                .before_body = nullptr,
                .max_body = 0});
    router.add(
        {.method = "POST",
         .pattern = "/upload/{user}",
         .handler = [](Request& req) { return Response::json(std::to_string(req.body.size())); },
         .before_body =
             [this](const Request& req) {
               ++checks_;
               if (req.header("Authorization") != "ok") throw Error(401, "no token");
             },
         .max_body = 100});
    ServerOptions options;
    options.io_threads = 1;
    options.worker_threads = 2;
    options.limits = limits_;
    server_ = std::make_unique<Server>(options, std::move(router));
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  void TearDown() override {
    server_->stop();
    thread_.join();
    server_.reset();
    std::filesystem::remove(file_);
  }

  Limits limits_;  // a derived fixture may change them in its constructor
  std::filesystem::path file_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> writer_saw_gone_{false}, writer_done_{false};
  std::atomic<bool> handler_saw_gone_{false}, handler_done_{false};
  std::atomic<int> checks_{0};
};

TEST_F(HttpServerTest, StreamsChunksAndTellsTheWriterWhenTheClientLeaves) {
  Client client(port_);
  client.send("GET /stream HTTP/1.1\r\nHost: h\r\n\r\n");
  const std::string head = client.read_until("\r\n\r\n");
  EXPECT_NE(head.find("Transfer-Encoding: chunked"), std::string::npos) << head;
  EXPECT_NE(head.find("X-Content-Type-Options: nosniff"), std::string::npos);
  EXPECT_NE(client.read_until("data: tick\n\n\r\n").find("data: tick"), std::string::npos);
  client.close();
  for (int i = 0; i < 400 && !writer_done_; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(writer_done_) << "the writer kept writing to a closed connection";
  EXPECT_TRUE(writer_saw_gone_);
}

TEST_F(HttpServerTest, AHandlerSeesWhetherItsClientIsGone) {
  {  // The client stays (and pipelines its next request): the handler works to the end.
    Client client(port_);
    client.send("GET /work/150 HTTP/1.1\r\nHost: h\r\n\r\nGET /work/1 HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_NE(client.read_until("\"there\"").find("200 OK"), std::string::npos);
    EXPECT_NE(client.read_until("\"there\"").find("200 OK"), std::string::npos);
  }
  handler_done_ = false;
  Client client(port_);
  client.send("GET /work/5000 HTTP/1.1\r\nHost: h\r\n\r\n");
  std::this_thread::sleep_for(50ms);
  const auto closed = std::chrono::steady_clock::now();
  client.close();
  for (int i = 0; i < 400 && !handler_done_; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(handler_done_);
  EXPECT_TRUE(handler_saw_gone_);
  EXPECT_LT(std::chrono::steady_clock::now() - closed, 1s);  // long before its 5 s of work
}

TEST_F(HttpServerTest, RefusesBeforeTheBodyAndNeverSendsContinue) {
  Client client(port_);
  client.send(
      "POST /upload/a HTTP/1.1\r\nHost: h\r\nContent-Length: 50\r\nExpect: 100-continue\r\n\r\n");
  const std::string answer = client.read_until("}");
  EXPECT_EQ(answer.find("100 Continue"), std::string::npos) << answer;
  EXPECT_NE(answer.find("HTTP/1.1 401"), std::string::npos) << answer;
  EXPECT_NE(answer.find("{\"error\":\"no token\"}"), std::string::npos) << answer;
  EXPECT_EQ(checks_, 1);
}

TEST_F(HttpServerTest, AcceptedBodiesGetContinueAndLimitsHold) {
  Client client(port_);
  client.send(
      "POST /upload/a HTTP/1.1\r\nHost: h\r\nAuthorization: ok\r\nContent-Length: 5\r\n"
      "Expect: 100-continue\r\n\r\n");
  EXPECT_NE(client.read_until("\r\n\r\n").find("100 Continue"), std::string::npos);
  client.send("hello");
  EXPECT_NE(client.read_until("\r\n\r\n5").find("200 OK"), std::string::npos);
  // Chunked: counted against the limit (100) while it is read.
  client.send(
      "POST /upload/a HTTP/1.1\r\nHost: h\r\nAuthorization: ok\r\n"
      "Transfer-Encoding: chunked\r\n\r\n40\r\n" +
      std::string(64, 'x') + "\r\n40\r\n" + std::string(64, 'x') + "\r\n0\r\n\r\n");
  EXPECT_NE(client.read_until("}").find("413"), std::string::npos);
  Client other(port_);
  other.send(
      "POST /upload/a HTTP/1.1\r\nHost: h\r\nAuthorization: ok\r\nContent-Length: 101\r\n\r\n");
  EXPECT_NE(other.read_until("}").find("413"), std::string::npos);
  Client third(port_);
  third.send("POST /upload/a HTTP/1.1\r\nHost: h\r\nAuthorization: ok\r\n\r\n");
  EXPECT_NE(third.read_until("}").find("411"), std::string::npos);
}

TEST_F(HttpServerTest, AHandlerExceptionIsA500InValidJson) {
  Client client(port_);
  client.send("GET /throw HTTP/1.1\r\nHost: h\r\n\r\n");
  const std::string answer = client.read_until("}");
  EXPECT_NE(answer.find("HTTP/1.1 500"), std::string::npos) << answer;
  EXPECT_NE(answer.find("oops \xEF\xBF\xBD"), std::string::npos) << answer;
  client.send("GET /file HTTP/1.1\r\nHost: h\r\nRange: bytes=-3\r\n\r\n");  // same connection
  const std::string file = client.read_until("789");
  EXPECT_NE(file.find("HTTP/1.1 206"), std::string::npos) << file;
  EXPECT_NE(file.find("Content-Range: bytes 7-9/10"), std::string::npos) << file;
}

// If-Range (RFC 9110 §13.1.5) against the ETag the route sends: a part only of that version.
TEST_F(HttpServerTest, IfRangeHonoursTheRangeOnlyForTheSameVersion) {
  Client client(port_);
  client.send("GET /tagged HTTP/1.1\r\nHost: h\r\nRange: bytes=2-3\r\nIf-Range: \"v1\"\r\n\r\n");
  std::string answer = client.read_until("\r\n\r\n23");
  EXPECT_NE(answer.find("HTTP/1.1 206"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Content-Range: bytes 2-3/10"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Date: "), std::string::npos) << answer;
  // Another version, a weak tag, a date (the route sends no Last-Modified): the whole file.
  for (const char* other : {"\"v0\"", "W/\"v1\"", "Sun, 06 Nov 1994 08:49:37 GMT"}) {
    client.send(
        fmt::format("GET /tagged HTTP/1.1\r\nHost: h\r\nRange: bytes=2-3\r\n"
                    "If-Range: {}\r\n\r\n",
                    other));
    answer = client.read_until("0123456789");
    EXPECT_NE(answer.find("HTTP/1.1 200"), std::string::npos) << other << "\n" << answer;
    EXPECT_NE(answer.find("Content-Length: 10"), std::string::npos) << answer;
    EXPECT_EQ(answer.find("Content-Range"), std::string::npos) << answer;
  }
  // An unsatisfiable range of another version is not a 416: that version is sent whole.
  client.send("GET /tagged HTTP/1.1\r\nHost: h\r\nRange: bytes=50-\r\nIf-Range: \"v0\"\r\n\r\n");
  answer = client.read_until("0123456789");
  EXPECT_NE(answer.find("HTTP/1.1 200"), std::string::npos) << answer;
  client.send("GET /tagged HTTP/1.1\r\nHost: h\r\nRange: bytes=50-\r\nIf-Range: \"v1\"\r\n\r\n");
  EXPECT_NE(client.read_until("}").find("HTTP/1.1 416"), std::string::npos);
}

class HttpServerCapTest : public HttpServerTest {
 protected:
  HttpServerCapTest() { limits_.max_connections = 2; }
};

// Over the connection cap a client is told 503 with Retry-After at once (not closed silently,
// not left waiting), and is served again once a connection is free.
TEST_F(HttpServerCapTest, OverTheCapAnswers503WithRetryAfter) {
  auto first = std::make_unique<Client>(port_);
  Client second(port_);
  first->send("GET /file HTTP/1.1\r\nHost: h\r\n\r\n");  // both are counted once served
  second.send("GET /file HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_NE(first->read_until("0123456789").find("200 OK"), std::string::npos);
  EXPECT_NE(second.read_until("0123456789").find("200 OK"), std::string::npos);
  const auto start = std::chrono::steady_clock::now();
  Client third(port_);
  third.send("GET /file HTTP/1.1\r\nHost: h\r\n\r\n");
  const std::string refused = third.read_until("}");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_NE(refused.find("HTTP/1.1 503"), std::string::npos) << refused;
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos) << refused;
  EXPECT_NE(refused.find("Connection: close"), std::string::npos) << refused;
  EXPECT_NE(refused.find("{\"error\":\"the server has 2 connections open"), std::string::npos)
      << refused;
  first.reset();  // a slot frees: served again
  std::string served;
  for (int attempt = 0; attempt < 50 && served.find("200 OK") == std::string::npos; ++attempt) {
    std::this_thread::sleep_for(20ms);
    Client again(port_);
    again.send("GET /file HTTP/1.1\r\nHost: h\r\n\r\n");
    served = again.read_until("0123456789");
  }
  EXPECT_NE(served.find("200 OK"), std::string::npos) << served;
}

}  // namespace
}  // namespace lorahub::http
