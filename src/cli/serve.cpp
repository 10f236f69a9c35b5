// lorahub serve: an OpenAI-compatible server whose requests each pick a composition of LoRA
// modules (serve/server.h). Prints "lorahub serve: <model> on http://HOST:PORT" once it listens;
// SIGTERM/SIGINT drain in-flight requests (bounded) and exit 0.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/command.h"
#include "cli/stop_signals.h"
#include "core/error.h"
#include "serve/server.h"

namespace lorahub::cli {
namespace {

struct ServeArgs {
  std::string model;
  std::string name;  // the "model" id of the base ("" = the file or folder name)
  std::vector<std::string> modules;
  std::string hub, hub_token, hub_cache;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key_file;
  size_t max_batch = 8, max_queue = 64;
  double max_body_mib = 1, cache_mib = 256, shutdown_seconds = 10;
  int max_tokens = 4096;
  int threads = 0;
  bool bf16 = false, int8 = false, quantized = false;
};

// One key per line; blank lines and lines starting with '#' are skipped.
std::set<std::string> read_keys(const std::string& path) {
  std::ifstream in(path);
  check(in.good(), "{}: cannot read the API key file", path);
  std::set<std::string> keys;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty() && line[0] != '#') keys.insert(line);
  }
  check(!keys.empty(), "{}: no API keys in the file", path);
  return keys;
}

std::string base_name(const std::string& path) {
  std::filesystem::path p(path);
  while (p.has_relative_path() && p.filename().empty()) p = p.parent_path();  // "dir/"
  return p.extension() == ".gguf" ? p.stem().string() : p.filename().string();
}

void serve(const ServeArgs& a) {
  api::init_runtime({.threads = a.threads});
  serve::ServeOptions o;
  o.host = a.host;
  o.port = a.port;
  if (!a.api_key_file.empty())
    o.api_keys = for_flag("--api-key-file", [&] { return read_keys(a.api_key_file); });
  o.adapters.base_name = a.name.empty() ? base_name(a.model) : a.name;
  o.adapters.module_dirs = a.modules;
  o.adapters.hub_endpoint = a.hub;
  o.adapters.hub_token = a.hub_token;
  o.adapters.hub_cache = a.hub_cache;
  o.adapters.bf16 = a.bf16;
  o.adapters.cache_bytes = static_cast<size_t>(a.cache_mib * (1 << 20));
  o.scheduler.max_batch = a.max_batch;
  o.scheduler.max_queue = a.max_queue;
  o.max_body = static_cast<size_t>(a.max_body_mib * (1 << 20));
  o.max_tokens = a.max_tokens;
  o.shutdown_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.shutdown_seconds * 1000));
  auto model = for_flag("--model", [&] {
    return api::Model::load(
        a.model, {.bf16 = a.bf16, .merge = {}, .int8 = a.int8, .quantized = a.quantized});
  });
  serve::OpenAIServer server(model, o);
  stop_on_signals([&server] { server.shutdown(); });
  const int port = server.bind();
  std::printf("lorahub serve: %s on http://%s:%d\n", o.adapters.base_name.c_str(), a.host.c_str(),
              port);
  std::fflush(stdout);
  server.run();
  server.shutdown();  // waits for a shutdown under way on the signal thread to finish
}

const Registrar reg("serve", 65, [](CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand(
      "serve", "OpenAI-compatible server; each request may compose LoRA modules (\"lora\")");
  cmd->add_option("--model", a->model, "HF model folder or .gguf file")->required();
  cmd->add_option("--name", a->name, "The base model's id in requests (default: its file name)");
  cmd->add_option(
      "--modules", a->modules,
      "Folder of PEFT modules, one subfolder each, named by the subfolder (repeatable)");
  cmd->add_option("--hub", a->hub, "lorahub hub URL: module names user/name are fetched from it");
  cmd->add_option("--hub-token", a->hub_token, "Token for --hub");
  cmd->add_option("--hub-cache", a->hub_cache, "Cache folder for hub modules");
  cmd->add_option("--host", a->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->port, "Port (0 = any free one)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key-file", a->api_key_file,
                  "Require Authorization: Bearer KEY, with the keys of this file (one a line)");
  cmd->add_option("--max-batch", a->max_batch, "Sequences decoded together")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--max-queue", a->max_queue, "Requests waiting for the batch (more: 429)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--max-tokens", a->max_tokens, "Largest max_tokens accepted")
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
  cmd->add_option("--threads", a->threads, "Compute threads (0 = all cores)")
      ->capture_default_str();
  cmd->add_flag("--bf16", a->bf16, "bf16 weights and products (the fast path)");
  cmd->add_flag("--int8", a->int8,
                "int8 weights per output channel, VNNI products (as generate --int8); LoRA "
                "stays an f32 side path");
  cmd->add_flag("--quantized", a->quantized,
                "GGUF models: products in the file's quantized blocks (as generate --quantized)");
  cmd->callback([a] { serve(*a); });
});

}  // namespace
}  // namespace lorahub::cli
