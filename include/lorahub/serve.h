// The OpenAI-compatible server of `lorahub serve` as a library: a program configures it with
// ServeOptions, starts it with bind() + run() and ends it with stop() (from any thread, e.g. the
// one that watches for SIGTERM). Requests each pick a composition of LoRA modules ("lora").
// Routes, errors and streaming: src/serve/server.h.
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "lorahub/lorahub.h"

namespace lorahub::api {

struct ServeOptions {
  std::string model;           // HF model folder or .gguf file
  ModelOptions model_options;  // bf16 here also holds the modules as bf16
  std::string name;            // the base model's "model" id ("" = the file or folder name)
  std::vector<std::string> module_dirs;  // folders of PEFT modules, one subfolder each
  std::string hub_endpoint;              // "" = no hub: module ids user/name are errors
  std::string hub_token;
  std::string hub_cache;  // "" = the default cache
  std::string host = "127.0.0.1";
  int port = 8000;  // 0 = any free port
  // Requests need "Authorization: Bearer KEY" with a key of this file (one a line; blank lines
  // and lines starting with '#' skipped). "" = no authentication.
  std::string api_key_file;
  size_t max_batch = 8;                    // sequences decoded together
  size_t max_queue = 64;                   // requests waiting for the batch (more: 429)
  int max_tokens = 4096;                   // largest max_tokens accepted
  size_t max_body_bytes = 1 << 20;         // of a completion request
  size_t adapter_cache_bytes = 256 << 20;  // composed adapters kept (least recently used out)
  std::chrono::milliseconds shutdown_timeout{10'000};  // in-flight requests may run after stop()
};

class Server {
 public:
  // Reads the key file, then loads the model. Throws OptionError naming the field at fault
  // ("api_key_file", "model") for those two; other failures (a module folder) are Errors.
  explicit Server(ServeOptions options);
  ~Server();
  const std::string& model_name() const;  // the base model's id in requests
  int bind();                             // listens; returns the port (useful with port 0)
  void run();                             // serves until stop()
  // Graceful: stops accepting, lets in-flight requests finish within shutdown_timeout (then
  // cancels them) and makes run() return. Callable from any thread, once or more; a second call
  // waits for the first to finish.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lorahub::api
