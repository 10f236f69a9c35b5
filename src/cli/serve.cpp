// lorahub serve: an OpenAI-compatible server whose requests each pick a composition of LoRA
// modules (serve/server.h). Prints "lorahub serve: <model> on http://HOST:PORT" once it listens;
// SIGTERM/SIGINT drain in-flight requests (bounded) and exit 0.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/model_args.h"
#include "cli/stop_signals.h"
#include "lorahub/serve.h"

namespace lorahub::cli {
namespace {

struct ServeArgs {
  api::ServeOptions server;  // all but model and model_options, which come from `model`
  ModelArgs model;           // --model and the compute flags, as generate's
  double max_body_mib = 1, cache_mib = 256, shutdown_seconds = 10;
};

// The flag of each api::ServeOptions field that can be at fault.
const char* flag_of(const std::string& field) {
  return field == "api_key_file" ? "--api-key-file" : "--model";
}

void serve(ServeArgs& a) {
  a.model.set_threads();
  api::ServeOptions& o = a.server;
  o.model = a.model.model;
  o.model_options = a.model.compute_options();
  o.max_body_bytes = static_cast<size_t>(a.max_body_mib * (1 << 20));
  o.adapter_cache_bytes = static_cast<size_t>(a.cache_mib * (1 << 20));
  o.shutdown_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.shutdown_seconds * 1000));
  std::unique_ptr<api::Server> server;
  try {
    server = std::make_unique<api::Server>(o);
  } catch (const api::OptionError& e) {
    fail("{}: {}", flag_of(e.option()), e.what());
  }
  const StopOnSignals stopper([&server] { server->stop(); });
  const int port = server->bind();
  std::printf("lorahub serve: %s on http://%s:%d\n", server->model_name().c_str(), o.host.c_str(),
              port);
  std::fflush(stdout);
  server->run();
  server->stop();  // waits for a stop under way on the signal thread to finish
}

const Registrar reg("serve", 65, [](CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand(
      "serve", "OpenAI-compatible server; each request may compose LoRA modules (\"lora\")");
  a->model.add_model_option(cmd);
  cmd->add_option("--name", a->server.name,
                  "The base model's id in requests (default: its file name)");
  cmd->add_option(
      "--modules", a->server.module_dirs,
      "Folder of PEFT modules, one subfolder each, named by the subfolder (repeatable)");
  cmd->add_option("--hub", a->server.hub_endpoint,
                  "lorahub hub URL: module names user/name are fetched from it");
  cmd->add_option("--hub-token", a->server.hub_token, "Token for --hub");
  cmd->add_option("--hub-cache", a->server.hub_cache, "Cache folder for hub modules");
  cmd->add_option("--host", a->server.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->server.port, "Port (0 = any free one)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key-file", a->server.api_key_file,
                  "Require Authorization: Bearer KEY, with the keys of this file (one a line)");
  cmd->add_option("--max-batch", a->server.max_batch, "Sequences decoded together")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--max-queue", a->server.max_queue, "Requests waiting for the batch (more: 429)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--max-tokens", a->server.max_tokens, "Largest max_tokens accepted")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-body-mib", a->max_body_mib, "Largest completion request body")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1024.0));
  cmd->add_option("--adapter-cache-mib", a->cache_mib, "Memory for composed adapters (LRU)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1048576.0));
  cmd->add_option("--shutdown-timeout", a->shutdown_seconds,
                  "Seconds in-flight requests may still run after SIGTERM (then cancelled)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  a->model.add_compute_options(cmd);
  cmd->callback([a] { serve(*a); });
});

}  // namespace
}  // namespace lorahub::cli
