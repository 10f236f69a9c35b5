// `lorahub serve`: an OpenAI-compatible HTTP server (on src/http) whose requests each choose a
// composition of LoRA modules. Routes:
//   GET  /health, /metrics (Prometheus), /v1/models, /v1/models/{id}
//   POST /v1/completions, /v1/chat/completions (stream: true = server-sent events)
//   POST /v1/lorahub/learn (LoraHub weights from few-shot examples; the result is a "model";
//        the modules by name or by a hub filter; optionally pushed to the hub)
// A request whose client closes its connection is cancelled (streamed: the write fails; whole
// answers: the handler watches the socket, http::Request::client_gone).
// Every error is OpenAI's {"error": {"message", "type", "param", "code"}}.
#pragma once
#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "http/server.h"
#include "lorahub/lorahub.h"
#include "serve/adapters.h"
#include "serve/scheduler.h"

namespace lorahub::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::set<std::string> api_keys;  // empty: no authentication
  AdapterOptions adapters;
  SchedulerOptions scheduler;
  size_t max_body = 1 << 20;  // bytes of a completion request
  size_t max_learn_body = 8 << 20;
  int max_tokens = 4096;
  std::chrono::milliseconds shutdown_timeout{10'000};  // to finish in-flight requests
};

class OpenAIServer {
 public:
  OpenAIServer(std::shared_ptr<const api::Model> model, ServeOptions options);
  ~OpenAIServer();
  int bind();  // returns the port
  void run();  // until shutdown()
  // Graceful: stops accepting, lets in-flight requests finish within shutdown_timeout (then
  // cancels them), and makes run() return. Callable from any thread, once or more.
  void shutdown();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorahub::serve
