#include "serve/server.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "core/mapped_file.h"
#include "core/utf8.h"
#include "hub/names.h"
#include "serve/openai.h"

namespace lorahub::serve {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string random_id(std::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}", prefix, rng());
}

// Compares without an early exit, so that the time taken says nothing about the key.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i % std::max<size_t>(b.size(), 1)];
  return diff == 0;
}

// How often a waiting handler looks at its client and at shutdown.
constexpr std::chrono::milliseconds kPoll{100};
// Silence on a stream after which it gets an SSE comment (see write_events).
constexpr std::chrono::seconds kHeartbeat{1};
// After the last answer ended: time for its final bytes to leave before the sockets close.
constexpr std::chrono::milliseconds kFlushGrace{200};
// The most modules a learning run composes (as many as a "lora" composition may have).
constexpr size_t kMaxLearnModules = RequestLimits{}.max_lora_modules;

}  // namespace

struct OpenAIServer::Impl {
  std::shared_ptr<const api::Model> model;
  ServeOptions options;
  Metrics metrics;
  AdapterRegistry adapters;
  Scheduler scheduler;
  std::unique_ptr<http::Server> http;
  std::mutex learning;  // one learning run at a time (it takes the cores)
  std::atomic<bool> draining{false};
  std::atomic<int> open_answers{0};  // completion answers still being written
  std::once_flag shutdown_once;

  Impl(std::shared_ptr<const api::Model> m, ServeOptions o)
      : model(std::move(m)),
        options(std::move(o)),
        adapters(options.adapters, model),
        scheduler(model, options.scheduler, metrics) {
    http::ServerOptions http_options;
    http_options.host = options.host;
    http_options.port = options.port;
    // Handlers block while their request decodes: one worker per request the queue and the
    // batch can hold, plus some for /health, /metrics and refusals.
    http_options.worker_threads =
        static_cast<int>(options.scheduler.max_queue + options.scheduler.max_batch + 16);
    http_options.error_body = [](int status, std::string_view message) {
      return error_body(status, message);
    };
    http = std::make_unique<http::Server>(http_options, routes());
  }

  // Counts an answer from the handler until its last byte is handed to the connection.
  struct AnswerSlot {
    explicit AnswerSlot(std::atomic<int>& n) : n(n) { ++n; }
    ~AnswerSlot() { --n; }
    std::atomic<int>& n;
  };

  void check_key(const http::Request& req, const std::string& endpoint) {
    if (options.api_keys.empty()) return;
    const std::string auth = req.header("Authorization");
    bool ok = false;
    if (auth.starts_with("Bearer ")) {
      const std::string_view key = std::string_view(auth).substr(7);
      for (const std::string& k : options.api_keys) ok |= same_secret(key, k);
    }
    if (!ok) {
      metrics.request_done(endpoint, 401);
      throw ApiError(401, auth.empty() ? "an API key is required (Authorization: Bearer KEY)"
                                       : "incorrect API key");
    }
  }

  // Runs a handler: errors become OpenAI error answers; every answer is counted.
  template <typename F>
  http::Response guarded(const std::string& endpoint, F f) {
    http::Response res;
    try {
      if (draining) throw ApiError(503, "the server is shutting down");
      res = f();
    } catch (...) {
      res = error_answer(std::current_exception());
    }
    metrics.request_done(endpoint, res.status);
    return res;
  }

  http::Router routes() {
    http::Router router;
    router.add({.method = "GET", .pattern = "/health", .handler = [this](http::Request&) {
                  if (draining) return http::Response::json(R"({"status":"shutting down"})", 503);
                  return http::Response::json(json{
                      {"status", "ok"},
                      {"running", scheduler.running()},
                      {"waiting",
                       scheduler.waiting()}}.dump());
                }});
    router.add({.method = "GET", .pattern = "/metrics", .handler = [this](http::Request&) {
                  return http::Response::text(metrics.text(), "text/plain; version=0.0.4");
                }});
    auto authed = [this](const std::string& endpoint) {
      return [this, endpoint](const http::Request& req) { check_key(req, endpoint); };
    };
    router.add({.method = "GET",
                .pattern = "/v1/models",
                .handler =
                    [this](http::Request&) {
                      return guarded("models", [&] { return http::Response::json(models_json()); });
                    },
                .before_body = authed("models")});
    router.add({.method = "GET",
                .pattern = "/v1/models/{id*}",
                .handler =
                    [this](http::Request& req) {
                      return guarded("models", [&] { return model_json(req.capture("id")); });
                    },
                .before_body = authed("models")});
    for (const bool chat : {false, true}) {
      const std::string endpoint = chat ? "chat_completions" : "completions";
      router.add({.method = "POST",
                  .pattern = chat ? "/v1/chat/completions" : "/v1/completions",
                  .handler =
                      [this, chat, endpoint](http::Request& req) {
                        return guarded(endpoint, [&] { return complete(req, chat); });
                      },
                  .before_body = authed(endpoint),
                  .max_body = options.max_body});
    }
    router.add(
        {.method = "POST",
         .pattern = "/v1/lorahub/learn",
         .handler =
             [this](http::Request& req) { return guarded("learn", [&] { return learn(req); }); },
         .before_body = authed("learn"),
         .max_body = options.max_learn_body});
    return router;
  }

  std::string models_json() {
    json data = json::array();
    for (const auto& m : adapters.models())
      data.push_back({{"id", m.id},
                      {"object", "model"},
                      {"created", 0},
                      {"owned_by", "lorahub"},
                      {"lorahub", {{"kind", m.kind}}}});
    return json{{"object", "list"}, {"data", data}}.dump();
  }

  http::Response model_json(const std::string& id) {
    for (const auto& m : adapters.models()) {
      if (m.id == id)
        return http::Response::json(json{
            {"id", m.id},
            {"object", "model"},
            {"created", 0},
            {"owned_by", "lorahub"},
            {"lorahub",
             {{"kind", m.kind}}}}.dump());
    }
    throw ApiError(404, fmt::format("the model '{}' does not exist", printable_utf8(id)), "model",
                   "model_not_found");
  }

  std::string prompt_of(const CompletionRequest& req) {
    if (!req.chat) return req.prompt;
    if (!model->has_chat_template())
      throw ApiError(400, "this model has no chat template: use /v1/completions", "messages");
    return model->chat_prompt(req.messages);
  }

  http::Response complete(const http::Request& http_req, bool chat) {
    RequestLimits limits;
    limits.max_tokens = options.max_tokens;
    CompletionRequest req = parse_completion(http_req.body, chat, limits);
    auto adapter = adapters.resolve(req.model, req.lora);
    const std::string prompt = prompt_of(req);
    const size_t prompt_tokens = model->encode(prompt).size();
    if (prompt_tokens == 0)
      throw ApiError(400, "the prompt is empty", chat ? "messages" : "prompt");
    api::GenerationOptions g;
    g.max_new_tokens = req.max_tokens;
    g.temperature = req.temperature;
    g.top_p = req.top_p;
    g.top_k = req.top_k;
    g.seed = req.has_seed ? req.seed : std::random_device{}();
    g.stop = req.stop;
    auto job = scheduler.submit(prompt, std::move(adapter), std::move(g), prompt_tokens);
    const std::string id = random_id(chat ? "chatcmpl-" : "cmpl-");
    return req.stream ? stream_answer(std::move(req), job, id)
                      : whole_answer(req, job, id, http_req);
  }

  static void refuse_unfinished(const Job& job, const std::string& reason, bool client_gone) {
    if (reason == "cancelled" && client_gone) throw client_left();
    if (reason == "cancelled")
      throw ApiError(503, "the request was cancelled: the server is shutting down");
    if (reason == "error") throw ApiError(500, fmt::format("generation failed: {}", job.error()));
  }

  void count_tokens(const Job& job) {
    metrics.tokens(job.prompt_tokens(), job.completion_tokens());
  }

  // What a request whose client closed its connection is counted as (nobody reads it): nginx's
  // 499 "client closed request".
  static ApiError client_left() {
    return ApiError(499, "the client closed the connection: the request was cancelled", "",
                    "client_closed_request");
  }

  // Waits for the whole text. The client cannot be written to meanwhile, so its socket is
  // watched instead: one that closed cancels its sequence (queued or decoding) at once.
  http::Response whole_answer(const CompletionRequest& req, const std::shared_ptr<Job>& job,
                              const std::string& id, const http::Request& http_req) {
    AnswerSlot slot(open_answers);
    std::string text;
    Job::Piece piece;
    bool client_gone = false;
    auto last_look = Clock::now();
    for (;;) {
      const bool got = job->next(piece, kPoll);
      if (!client_gone && Clock::now() - last_look >= kPoll) {  // also while tokens flow
        last_look = Clock::now();
        if (http_req.client_gone()) {
          client_gone = true;
          scheduler.cancel(job);
        }
      }
      if (!got) continue;
      text += piece.text;
      if (piece.done) break;
    }
    count_tokens(*job);
    refuse_unfinished(*job, piece.finish_reason, client_gone);
    return http::Response::json(completion_json(req, id, unix_now(), text, piece.finish_reason,
                                                {job->prompt_tokens(), job->completion_tokens()}));
  }

  // Cancels the job when the stream's writer never runs or stops early (the client is gone).
  struct StreamGuard {
    Impl& server;
    std::shared_ptr<Job> job;
    AnswerSlot slot;
    StreamGuard(Impl& s, std::shared_ptr<Job> j)
        : server(s), job(std::move(j)), slot(s.open_answers) {}
    ~StreamGuard() { server.scheduler.cancel(job); }
  };

  http::Response stream_answer(CompletionRequest req, const std::shared_ptr<Job>& job,
                               const std::string& id) {
    auto guard = std::make_shared<StreamGuard>(*this, job);
    http::Response res = http::Response::chunked(
        "text/event-stream", [this, guard, req = std::move(req), id](http::StreamWriter& out) {
          write_events(req, *guard->job, id, out);
        });
    res.set_header("Cache-Control", "no-cache");
    return res;
  }

  void write_events(const CompletionRequest& req, Job& job, const std::string& id,
                    http::StreamWriter& out) {
    const int64_t created = unix_now();
    if (req.chat && !out.write(chunk_event(req, id, created, "", "", true))) return;
    Job::Piece piece;
    auto last_write = Clock::now();
    for (;;) {
      if (!job.next(piece, kPoll)) {
        // An SSE comment now and then while nothing comes (queued, long prefill): a client that
        // left is noticed (the write fails) and its request cancelled before it decodes.
        if (Clock::now() - last_write >= kHeartbeat) {
          if (!out.write(": waiting\n\n")) return;
          last_write = Clock::now();
        }
        continue;
      }
      last_write = Clock::now();
      if (!piece.text.empty() && !out.write(chunk_event(req, id, created, piece.text, ""))) return;
      if (piece.done) break;
    }
    count_tokens(job);
    if (piece.finish_reason == "cancelled" || piece.finish_reason == "error") {
      out.write(error_event(piece.finish_reason == "error" ? 500 : 503,
                            piece.finish_reason == "error"
                                ? fmt::format("generation failed: {}", job.error())
                                : std::string("cancelled: the server is shutting down")));
      return;
    }
    if (!out.write(chunk_event(req, id, created, "", piece.finish_reason))) return;
    if (req.include_usage &&
        !out.write(usage_event(req, id, created, {job.prompt_tokens(), job.completion_tokens()})))
      return;
    out.write(kDoneEvent);
  }

  // The hub's answer to a push is only known at the end; what can be checked costs nothing and
  // is checked before learning.
  void check_push_target(const LearnRequest& req) {
    if (req.push_repo.empty()) return;
    if (options.adapters.hub_endpoint.empty())
      throw ApiError(400, "'push' needs a server started with --hub URL", "push");
    try {
      hub::validate_repo_id(req.push_repo);
    } catch (const Error& e) {
      throw ApiError(400, fmt::format("push.repo: {}", e.what()), "push");
    }
  }

  // Pushes the composition (the PEFT adapter and weights.json) to the hub with the caller's
  // token; returns the revision.
  std::string push_composition(const LearnRequest& req, const api::Adapter& adapter,
                               const json& record, const std::string& id) {
    const fs::path dir = fs::temp_directory_path() / random_id("lorahub-serve-push-");
    struct Cleanup {
      fs::path dir;
      ~Cleanup() {
        std::error_code ec;
        fs::remove_all(dir, ec);
      }
    } cleanup{dir};
    try {
      adapter.save(dir.string());
      write_file_atomic((dir / "weights.json").string(), record.dump(2) + "\n");
      return api::hub_push(dir.string(), req.push_repo,
                           {options.adapters.hub_endpoint, req.push_token, ""});
    } catch (const Error& e) {
      throw ApiError(502,
                     fmt::format("the composition was learned (model '{}') but pushing it to "
                                 "the hub failed: {}",
                                 id, e.what()),
                     "push", "hub_push_failed");
    }
  }

  http::Response learn(const http::Request& http_req) {
    LearnRequest req = parse_learn(http_req.body);
    if (req.hub_filter) req.modules = adapters.hub_modules(*req.hub_filter, kMaxLearnModules);
    check_push_target(req);
    const std::vector<std::string> paths =
        adapters.module_paths(req.modules, req.hub_filter ? "hub_filter" : "modules");
    std::unique_lock lock(learning, std::try_to_lock);
    if (!lock.owns_lock()) throw ApiError(429, "another learning run is under way; retry later");
    api::ModuleSetOptions set_options;
    set_options.bf16 = options.adapters.bf16;
    api::LearnResult result;
    try {
      const api::ModuleSet set = api::ModuleSet::load(paths, set_options);
      req.options.on_step = [this, &http_req](const api::LearnStep&) {
        return !draining.load() && !http_req.client_gone();
      };
      result = api::learn(model, set, req.inputs, req.outputs, req.options);
    } catch (const api::Cancelled&) {
      if (!draining) throw client_left();
      throw ApiError(503, "learning was cancelled: the server is shutting down");
    } catch (const Error& e) {
      throw ApiError(400, fmt::format("learn: {}", e.what()));
    }
    LoraSpec spec{req.modules, result.weights, req.options.compose.method};
    const std::string id = adapters.store(spec, result.adapter);
    json history = json::array();
    for (const api::LearnStep& s : result.history)
      history.push_back({{"evaluation", s.evaluation},
                         {"weights", s.weights},
                         {"objective", s.objective},
                         {"loss", s.loss}});
    json answer{{"id", id},
                {"object", "lorahub.composition"},
                {"modules", req.modules},
                {"weights", result.weights},
                {"method", spec.method},
                {"objective", result.objective},
                {"history", history},
                {"seconds", result.seconds}};
    if (!req.push_repo.empty()) {
      json record = answer;  // weights.json on the hub: what was learned, and how
      record.erase("id");
      record.erase("object");
      record["optimizer"] = req.options.optimizer;
      record["seed"] = req.options.seed;
      record["steps"] = req.options.steps;
      record["examples"] = req.inputs.size();
      answer["push"] = {{"repo", req.push_repo},
                        {"revision", push_composition(req, *result.adapter, record, id)}};
    }
    return http::Response::json(answer.dump());
  }

  void shutdown() {
    std::call_once(shutdown_once, [this] {
      draining = true;
      http->stop_accepting();
      scheduler.drain(options.shutdown_timeout);
      // Every job has ended; the handlers write their last events and return.
      const auto deadline = Clock::now() + std::chrono::seconds(5);
      while (open_answers > 0 && Clock::now() < deadline) std::this_thread::sleep_for(kPoll / 10);
      std::this_thread::sleep_for(kFlushGrace);
      http->stop();
    });
  }
};

OpenAIServer::OpenAIServer(std::shared_ptr<const api::Model> model, ServeOptions options)
    : impl_(std::make_unique<Impl>(std::move(model), std::move(options))) {}

OpenAIServer::~OpenAIServer() {
  impl_->scheduler.drain(std::chrono::milliseconds(0));
}

int OpenAIServer::bind() {
  return impl_->http->bind();
}
void OpenAIServer::run() {
  impl_->http->run();
}
void OpenAIServer::shutdown() {
  impl_->shutdown();
}

}  // namespace lorahub::serve
