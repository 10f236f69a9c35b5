// The OpenAI wire format of `lorahub serve`: strict parsing of /v1/completions and
// /v1/chat/completions bodies into one CompletionRequest, OpenAI's error objects, and the JSON
// of answers and server-sent-event chunks.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "lorahub/lorahub.h"

namespace lorahub::serve {

// A refused request: status and OpenAI's {"error": {"message", "type", "param", "code"}}.
struct ApiError : http::Error {
  ApiError(int status, std::string message, std::string param = "", std::string code = "")
      : http::Error(status, std::move(message)), param(std::move(param)), code(std::move(code)) {}
  std::string param;  // the body field at fault ("" = null)
  std::string code;   // a machine-readable reason ("" = derived from the status)
};

// OpenAI's error object for `status` ("type" from the status; empty param/code become null).
std::string error_body(int status, std::string_view message, std::string_view param = "",
                       std::string_view code = "");
// The answer for an exception from a handler: ApiError keeps its param and code, a
// lorahub::Error (bad adapter, bad composition) is a 400, anything else goes the server's way.
http::Response error_answer(std::exception_ptr error);

// "lora": {"modules": [...], "weights": [...], "method": "lorahub"}, or Arrow routing (as
// `lorahub generate --arrow TOP_K,TEMPERATURE --gks-lora ...`): {"modules": [...], "method":
// "arrow", "top_k": K, "temperature": T, "general": [...]} (no weights: the router mixes the
// modules per token; "general" are GenKnowSub's general modules, optional).
struct LoraSpec {
  std::vector<std::string> modules;
  std::vector<double> weights;  // empty for "arrow"
  std::string method = "lorahub";
  api::ArrowOptions arrow;           // "arrow" only
  std::vector<std::string> general;  // "arrow" only
  bool routed() const { return method == "arrow"; }
};

struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::string prompt;                      // completions
  std::vector<api::ChatMessage> messages;  // chat completions
  std::optional<LoraSpec> lora;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int max_tokens = 16;
  float temperature = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;  // an extension (vLLM and llama.cpp have it too)
  uint64_t seed = 0;
  bool has_seed = false;
  std::vector<std::string> stop;
};

struct RequestLimits {
  int max_tokens = 4096;  // the largest max_tokens accepted
  size_t max_stop = 4;    // OpenAI's limit on stop sequences
  size_t max_lora_modules = 64;
};

// Parses and validates a body; throws ApiError 400 naming the field.
CompletionRequest parse_completion(std::string_view body, bool chat,
                                   const RequestLimits& limits = {});

// The body of /v1/lorahub/learn: the module pool is "modules" (names) or "hub_filter" (every
// module of the server's hub that matches: {"tag": "bbh", "rank": 4, ...}, the keys of
// `lorahub learn --hub-filter`); "push": {"repo": "user/name", "token": T} also pushes the
// learned composition to the hub with the caller's token.
struct LearnRequest {
  std::vector<std::string> modules;
  // "key=value" items, as hub::parse_hub_filter reads them ({} = every module of the hub)
  std::optional<std::vector<std::string>> hub_filter;
  std::vector<std::string> inputs, outputs;
  api::LearnOptions options;
  std::string push_repo, push_token;  // "" = no push
};
LearnRequest parse_learn(std::string_view body, size_t max_examples = 256);

// Answers. `id` is "cmpl-..." or "chatcmpl-...", `created` Unix seconds.
struct Usage {
  size_t prompt_tokens = 0;
  size_t completion_tokens = 0;
};
std::string completion_json(const CompletionRequest& req, std::string_view id, int64_t created,
                            std::string_view text, std::string_view finish_reason,
                            const Usage& usage);
// One SSE chunk "data: {...}\n\n". `finish_reason` "" = null; `role_only`: the chat stream's first
// chunk (delta {"role": "assistant", "content": ""}).
std::string chunk_event(const CompletionRequest& req, std::string_view id, int64_t created,
                        std::string_view text, std::string_view finish_reason,
                        bool role_only = false);
std::string usage_event(const CompletionRequest& req, std::string_view id, int64_t created,
                        const Usage& usage);
std::string error_event(int status, std::string_view message);
inline constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";

}  // namespace lorahub::serve
