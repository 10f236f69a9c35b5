// `lorahub hub serve|token|push|search|pull|gc`: run a module hub, use one, and collect its
// garbage.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/command.h"
#include "cli/stop_signals.h"
#include "lorahub/hub.h"
#include "lorahub/lorahub.h"

namespace lorahub::cli {
namespace {

// The HTTP limits in the units a user thinks in (seconds, KiB); converted by serve().
struct HttpLimitArgs {
  size_t max_connections = 1024;
  size_t max_header_kib = 16;
  size_t max_header_fields = 100;
  double header_timeout = 10, idle_timeout = 30, body_timeout = 30, write_timeout = 60;
  uint64_t min_body_rate_kib = 64;
};

struct ServeArgs {
  api::HubServerOptions server;
  double max_upload_mib = 512;
  HttpLimitArgs limits;
};

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(std::llround(seconds * 1000));
}

void serve(ServeArgs& args) {
  const HttpLimitArgs& l = args.limits;
  args.server.max_upload_bytes = static_cast<size_t>(args.max_upload_mib * 1024 * 1024);
  args.server.limits = {.max_connections = l.max_connections,
                        .max_header_bytes = l.max_header_kib << 10,
                        .max_header_fields = l.max_header_fields,
                        .header_timeout = to_ms(l.header_timeout),
                        .idle_timeout = to_ms(l.idle_timeout),
                        .body_timeout = to_ms(l.body_timeout),
                        .min_body_rate = l.min_body_rate_kib << 10,
                        .write_timeout = to_ms(l.write_timeout)};
  api::HubServer server(args.server);
  const StopOnSignals stopper([&server] { server.stop(); });
  const int port = server.bind();
  std::printf("lorahub hub: serving %s on http://%s:%d (metadata in %s)\n",
              args.server.root.c_str(), args.server.host.c_str(), port,
              args.server.db_url.empty() ? "SQLite" : "PostgreSQL");
  std::fflush(stdout);
  server.run();
}

// A number in [low, high]; unlike CLI::Range it also refuses nan (every comparison with it is
// false) and inf.
CLI::Validator between(double low, double high) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value) || !(value >= low && value <= high))
          return fmt::format("value {} is not a number from {} to {}", text, low, high);
        return "";
      },
      fmt::format("[{} - {}]", low, high));
}

void add_http_limits(CLI::App& cmd, HttpLimitArgs& l) {
  const char* group = "HTTP limits (per client; a hostile one gets no more)";
  const auto add = [&](const char* name, auto& value, const char* help, double low, double high) {
    cmd.add_option(name, value, help)
        ->check(between(low, high))
        ->capture_default_str()
        ->group(group);
  };
  add("--max-connections", l.max_connections,
      "Sockets open at once; over it a client gets 503 with Retry-After", 1, 1e6);
  add("--max-header-kib", l.max_header_kib,
      "Largest request line + header fields, in KiB (larger: 431)", 1, 1024);
  add("--max-header-fields", l.max_header_fields, "Most header fields in a request (more: 431)", 1,
      10000);
  add("--header-timeout", l.header_timeout,
      "Seconds a client has to send a request's line and headers", 0.001, 86400);
  add("--idle-timeout", l.idle_timeout, "Seconds an idle keep-alive connection stays open", 0.001,
      86400);
  add("--body-timeout", l.body_timeout,
      "Seconds a request body may take, on top of its length at --min-body-rate-kib", 0.001, 86400);
  add("--min-body-rate-kib", l.min_body_rate_kib,
      "Slowest accepted upload, in KiB/s (sets the body's deadline)", 1, 1 << 20);
  add("--write-timeout", l.write_timeout,
      "Seconds a client may take to read each piece of an answer", 0.001, 86400);
}

void add_serve(CLI::App& hub) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = hub.add_subcommand("serve", "Run a module hub (Hugging Face compatible read API)");
  cmd->add_option("--root", args->server.root, "Folder for blobs and the SQLite metadata")
      ->required();
  cmd->add_option("--host", args->server.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", args->server.port, "Port (0: any free port)")
      ->check(between(0, 65535))
      ->capture_default_str();
  cmd->add_option("--db", args->server.db_url,
                  "postgresql://... to keep metadata in PostgreSQL (shared by several servers)");
  cmd->add_option("--public-url", args->server.public_url,
                  "Base URL clients reach the hub at, for links and upload URLs (default: "
                  "http://HOST:PORT; set it behind a proxy, e.g. https://hub.example)");
  cmd->add_option("--max-upload-mib", args->max_upload_mib,
                  "Largest accepted upload (push or file), in MiB (larger: 413)")
      ->check(between(0.001, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--page-size", args->server.page_size, "Entries per page of listings")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--threads", args->server.threads, "Worker threads")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  add_http_limits(*cmd, args->limits);
  cmd->callback([args] { serve(*args); });
}

// The maintenance commands never create a hub where there was none: a mistyped --root, or a
// hub whose metadata is in PostgreSQL named without --db, is an error, not an empty hub
// (api::hub_revoke_token, api::hub_gc).
// A token read from stdin when given as "-", so that it need not appear in the process list.
std::string token_argument(const std::string& value) {
  if (value != "-") return value;
  std::string line;
  std::getline(std::cin, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

void add_token_revoke(CLI::App& token) {
  struct Args {
    std::string root, db, token, user;
  };
  auto args = std::make_shared<Args>();
  auto* revoke = token.add_subcommand(
      "revoke", "Revoke a token (or all of a user's); effective at once, also for running servers");
  revoke->add_option("--root", args->root, "The hub's folder")->required();
  revoke->add_option("--db", args->db, "postgresql://... when the hub keeps metadata there");
  auto* by_token = revoke->add_option("--token", args->token, "The token (\"-\": read from stdin)");
  auto* by_user = revoke->add_option("--user", args->user, "Revoke every token of this user");
  by_token->excludes(by_user);
  revoke->callback([args] {
    check(!args->token.empty() || !args->user.empty(), "token revoke: give --token or --user");
    if (!args->user.empty()) {
      const int64_t n = api::hub_revoke_user_tokens(args->root, args->db, args->user);
      std::printf("revoked %lld token%s of %s\n", static_cast<long long>(n), n == 1 ? "" : "s",
                  args->user.c_str());
      return;
    }
    api::hub_revoke_token(args->root, args->db, token_argument(args->token));
    std::printf("revoked 1 token\n");
  });
}

void add_token(CLI::App& hub) {
  struct Args {
    std::string root, db, user;
  };
  auto args = std::make_shared<Args>();
  auto* token = hub.add_subcommand("token", "Manage write tokens");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "Create a token for a user; prints only it");
  create->add_option("--root", args->root, "The hub's folder")->required();
  create->add_option("--db", args->db, "postgresql://... when the hub keeps metadata there");
  create->add_option("--user", args->user, "User name (created when new)")->required();
  create->callback([args] {
    std::printf("%s\n", api::hub_create_token(args->root, args->db, args->user).c_str());
  });
  add_token_revoke(*token);
}

// --endpoint; its default (api::hub_default_endpoint) comes from the environment.
void add_endpoint_option(CLI::App* cmd, std::string& endpoint) {
  cmd->add_option("--endpoint", endpoint, "Hub URL ($LORAHUB_ENDPOINT, $HF_ENDPOINT)")
      ->capture_default_str();
}

std::string token_or_env(const std::string& token) {
  if (!token.empty()) return token;
  const char* env = std::getenv("HF_TOKEN");
  return env ? env : "";
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

void add_push(CLI::App& hub) {
  struct Args {
    std::string dir, endpoint = api::hub_default_endpoint(), token, tags, embed_model;
    api::HubPushOptions push;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = hub.add_subcommand("push", "Upload a PEFT LoRA adapter folder as a new revision");
  cmd->add_option("dir", args->dir, "Adapter folder (adapter_config.json + weights)")->required();
  cmd->add_option("--repo", args->push.repo, "user/name")->required();
  cmd->add_option("--task", args->push.task, "Task the module was trained on");
  cmd->add_option("--tags", args->tags, "Comma-separated tags");
  cmd->add_option("--description", args->push.description, "One-line description");
  cmd->add_option("--license", args->push.license, "License identifier, e.g. apache-2.0");
  cmd->add_option("--message", args->push.message, "Revision message");
  add_endpoint_option(cmd, args->endpoint);
  cmd->add_option("--token", args->token, "Write token (default: $HF_TOKEN)");
  cmd->add_option("--embed-model", args->embed_model,
                  "First write DIR/lorahub_embedding.json: the module's retrieval embedding "
                  "under this base model (from DIR/examples.jsonl), pushed with it");
  cmd->callback([args] {
    args->push.tags = split_commas(args->tags);
    const std::string token = token_or_env(args->token);
    check(!token.empty(), "push needs a token: pass --token or set HF_TOKEN");
    if (!args->embed_model.empty())
      api::write_module_embedding(*api::Model::load(args->embed_model), args->dir);
    api::HubClient client(args->endpoint, token);
    const std::string sha = client.push(args->dir, args->push);
    std::printf("%s %s\n", args->push.repo.c_str(), sha.c_str());
  });
}

void print_module(const nlohmann::json& m) {
  const auto& h = m.at("lorahub");
  std::string tags;
  for (const auto& t : h.at("tags")) tags += (tags.empty() ? "" : ",") + t.get<std::string>();
  std::printf("%s\t%s\ttask=%s\tbase=%s\tr=%lld\talpha=%g\ttags=%s\n",
              m.at("id").get<std::string>().c_str(), m.at("sha").get<std::string>().c_str(),
              h.at("task").get<std::string>().c_str(),
              h.at("base_model").get<std::string>().c_str(),
              static_cast<long long>(h.at("rank").get<int64_t>()), h.at("alpha").get<double>(),
              tags.c_str());
}

void add_search(CLI::App& hub) {
  struct Args {
    std::string endpoint = api::hub_default_endpoint();
    api::HubQuery filter;
    int64_t rank = 0;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = hub.add_subcommand("search", "List modules on a hub (one per line, or --json)");
  cmd->add_option("text", args->filter.text, "Text in the id, task or description");
  cmd->add_option("--base", args->filter.base_model, "Base model, e.g. google/flan-t5-large");
  cmd->add_option("--rank", args->rank, "LoRA rank")->check(CLI::Range(1, 65536));
  cmd->add_option("--tag", args->filter.tag, "Tag");
  cmd->add_option("--task", args->filter.task, "Task name");
  cmd->add_option("--author", args->filter.author, "Owner");
  cmd->add_option("--limit", args->filter.limit, "At most this many")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print the model-info objects as a JSON array");
  add_endpoint_option(cmd, args->endpoint);
  cmd->callback([args] {
    if (args->rank > 0) args->filter.rank = args->rank;
    api::HubClient client(args->endpoint, "");
    nlohmann::json found = nlohmann::json::array();
    for (const api::HubModule& m : client.search(args->filter))
      found.push_back(nlohmann::json::parse(m.info_json));
    if (args->json) {
      std::printf("%s\n", found.dump(2).c_str());
      return;
    }
    for (const auto& m : found) print_module(m);
  });
}

void add_pull(CLI::App& hub) {
  struct Args {
    std::string repo, rev = "main", to, endpoint = api::hub_default_endpoint(), token;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = hub.add_subcommand("pull", "Download a module revision, verifying every SHA-256");
  cmd->add_option("repo", args->repo, "user/name")->required();
  cmd->add_option("--rev", args->rev, "Revision sha, or main")->capture_default_str();
  cmd->add_option("--to", args->to, "Destination folder")->required();
  add_endpoint_option(cmd, args->endpoint);
  cmd->add_option("--token", args->token, "Token (default: $HF_TOKEN)");
  cmd->callback([args] {
    api::HubClient client(args->endpoint, token_or_env(args->token));
    const std::string sha = client.pull(args->repo, args->rev, args->to);
    std::printf("%s %s\n", args->repo.c_str(), sha.c_str());
  });
}

void gc(const std::string& root, const std::string& db, double min_age_minutes, bool dry_run) {
  check(min_age_minutes >= 0, "--min-age-minutes must be >= 0, got {}", min_age_minutes);
  const auto min_age = std::chrono::seconds(static_cast<int64_t>(min_age_minutes * 60));
  const api::HubGcReport r =
      api::hub_gc(root, {.db_url = db, .min_age = min_age, .dry_run = dry_run});
  if (r.abandoned_temp_files > 0)
    std::printf("gc: removed %lld temp files of writers that died\n",
                static_cast<long long>(r.abandoned_temp_files));
  for (const api::HubBlob& blob : r.collected)
    std::printf("%s %s (%zu bytes)\n", dry_run ? "would remove" : "removed", blob.sha256.c_str(),
                blob.size);
  std::printf(
      "gc: %lld referenced blobs kept, %lld unreferenced younger than %g min kept, %zu "
      "unreferenced %s (%llu bytes)\n",
      static_cast<long long>(r.referenced), static_cast<long long>(r.young), min_age_minutes,
      r.collected.size(), dry_run ? "to remove (dry run)" : "removed",
      static_cast<unsigned long long>(r.collected_bytes));
}

void add_gc(CLI::App& hub) {
  struct Args {
    std::string root, db;
    double min_age_minutes = 60;
    bool dry_run = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = hub.add_subcommand(
      "gc", "Remove blobs no revision points at (left by failed pushes); safe while serving");
  cmd->add_option("--root", args->root, "The hub's folder")->required();
  cmd->add_option("--db", args->db, "postgresql://... when the hub keeps metadata there");
  cmd->add_option("--min-age-minutes", args->min_age_minutes,
                  "Keep unreferenced blobs touched more recently (pushes in flight)")
      ->capture_default_str();
  cmd->add_flag("--dry-run", args->dry_run, "List what would be removed; remove nothing");
  cmd->callback([args] { gc(args->root, args->db, args->min_age_minutes, args->dry_run); });
}

const Registrar reg("hub", 70, [](CLI::App& app) {
  auto* hub = app.add_subcommand("hub", "Run or use a LoRA module hub");
  hub->require_subcommand(1);
  add_serve(*hub);
  add_token(*hub);
  add_push(*hub);
  add_search(*hub);
  add_pull(*hub);
  add_gc(*hub);
});

}  // namespace
}  // namespace lorahub::cli
