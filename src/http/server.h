// An HTTP/1.1 server for untrusted clients on Boost.Beast/Asio (async I/O: a slow socket holds no
// thread), with its own Request/Response types (http/message.h) and a router.
//
// Limits, all per request: the request line and headers must fit in `max_header_bytes` and
// `max_header_fields` (else 431) and arrive within `header_timeout`; the body must arrive within
// `body_timeout` plus its length at `min_body_rate`; an idle keep-alive connection is closed after
// `idle_timeout`; at most `max_connections` sockets are open at once. Every accepted socket has
// TCP_NODELAY; a connection over the cap gets a 503 with Retry-After. Every answer carries
// `X-Content-Type-Options: nosniff`; every error answer is a JSON object {"error": "..."} in valid
// UTF-8; a handler that throws gets a 500, never a crash.
//
// Adding a route:
//
//   http::Router router;
//   router.add({.method = "POST",
//               .pattern = "/api/things/{user}/{name}",  // {x}: one segment; {x*}: the rest
//               .handler = [&](http::Request& req) {
//                 return http::Response::json(do_it(req.capture("user"), req.body));
//               },
//               // Runs once the headers are in and before any body byte is read (not even
//               // "100 Continue" is sent before it passes): throw http::Error(401/403/...) to
//               // refuse. It sees method, path, captures, query and headers; req.body is empty.
//               .before_body = [&](const http::Request& req) {
//                 if (!token_ok(req.header("Authorization"))) throw http::Error(401, "no token");
//               },
//               .max_body = 4 << 20});  // a longer body is 413 (Content-Length or chunked);
//                                       // POST/PUT with neither is 411; default 0: no body
//   http::Server server(options, std::move(router));
//   int port = server.bind();
//   server.run();  // until stop()
//
// Handlers and before-body checks run on a pool of `worker_threads`, so they may block (a
// database, a file); the sockets are served by `io_threads`. A GET route also answers HEAD.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/message.h"

namespace lorahub::http {

struct Route {
  std::string method;   // "GET", "POST", "PUT", "DELETE", ...
  std::string pattern;  // "/literal/{capture}/..." with an optional last "{rest*}"
  std::function<Response(Request&)> handler;
  std::function<void(const Request&)> before_body;  // optional; throws http::Error to refuse
  uint64_t max_body = 0;                            // bytes accepted in the body
};

class Router {
 public:
  void add(Route route);
  // The first route whose method and pattern match; fills req.captures. Throws http::Error 404
  // (no pattern matches) or 405 (the path matches for other methods only).
  const Route& match(Request& req) const;

 private:
  struct Compiled;
  std::vector<std::shared_ptr<const Compiled>> routes_;
};

// What one client may take of the server. The defaults suit a hub on the open internet (behind
// nginx or not); `lorahub hub serve` has a flag for each.
struct Limits {
  size_t max_connections = 1024;       // more are answered 503 with Retry-After, then closed
  size_t max_header_bytes = 16 << 10;  // request line + header fields
  size_t max_header_fields = 100;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds body_timeout{30'000};   // plus the body's length at min_body_rate
  uint64_t min_body_rate = 64 << 10;                // bytes per second
  std::chrono::milliseconds write_timeout{60'000};  // for each piece of an answer
};

// Throws Error naming the limit when one is nonsense (zero, or too large to be meant).
void validate(const Limits& limits);

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port
  int io_threads = 2;
  int worker_threads = 16;
  Limits limits;
  // The JSON body of the error answers the server makes (no route, limits, framing, refusals in
  // before-body checks, exceptions escaping handlers), from the status and the message (already
  // valid UTF-8). Unset: error_json's {"error": message}. Lets a server speak another API's error
  // format (e.g. OpenAI's {"error": {"message", "type", ...}}).
  std::function<std::string(int status, std::string_view message)> error_body;
};

class Server {
 public:
  Server(ServerOptions options, Router router);
  ~Server();
  // Binds the socket; returns the port (useful with port 0). Throws Error when it cannot.
  int bind();
  // Serves until stop() (callable from any thread, also before run()).
  void run();
  // Closes the listening socket (new connections are refused); open ones are still served.
  // For a graceful shutdown: stop_accepting(), let in-flight answers finish, then stop().
  void stop_accepting();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Builds the answer for an exception escaping a handler: an http::Error keeps its status and
// headers, anything else is a 500. Never throws.
Response error_response(std::exception_ptr error);
Response error_response(int status, std::string_view message);

}  // namespace lorahub::http
