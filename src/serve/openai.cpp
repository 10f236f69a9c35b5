#include "serve/openai.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

#include "core/utf8.h"
#include "http/server.h"

namespace lorahub::serve {

using nlohmann::json;

namespace {

std::string_view error_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string_view default_code(int status) {
  switch (status) {
    case 401:
      return "invalid_api_key";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_exceeded";
    case 503:
      return "unavailable";
    default:
      return "";
  }
}

json null_if_empty(std::string_view s) {
  return s.empty() ? json() : json(std::string(s));
}

[[noreturn]] void bad(std::string param, std::string message) {
  throw ApiError(400, std::move(message), std::move(param));
}

// The request body as an object; unknown fields are refused (a typo must not pass silently).
class Body {
 public:
  Body(std::string_view text, std::set<std::string> known) : known_(std::move(known)) {
    try {
      j_ = json::parse(text);  // also refuses strings that are not valid UTF-8
    } catch (const json::parse_error& e) {
      bad("", fmt::format("the body is not valid JSON: {}", e.what()));
    }
    if (!j_.is_object()) bad("", "the body must be a JSON object");
    for (const auto& [key, value] : j_.items()) {
      if (!known_.count(key)) bad(key, fmt::format("unknown field '{}'", printable_utf8(key)));
    }
  }
  const json* get(const std::string& key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }

  std::string string(const std::string& key, bool required) const {
    const json* v = get(key);
    if (!v) {
      if (required) bad(key, fmt::format("'{}' is required", key));
      return "";
    }
    if (!v->is_string()) bad(key, fmt::format("'{}' must be a string", key));
    return v->get<std::string>();
  }
  std::optional<double> number(const std::string& key, double lo, double hi) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) bad(key, fmt::format("'{}' must be a number", key));
    const double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi)
      bad(key, fmt::format("'{}' must be between {} and {} (got {})", key, lo, hi, x));
    return x;
  }
  std::optional<int64_t> integer(const std::string& key, int64_t lo, int64_t hi) const {
    const json* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) bad(key, fmt::format("'{}' must be an integer", key));
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
      bad(key, fmt::format("'{}' must be between {} and {}", key, lo, hi));
    const int64_t x = v->get<int64_t>();
    if (x < lo || x > hi)
      bad(key, fmt::format("'{}' must be between {} and {} (got {})", key, lo, hi, x));
    return x;
  }
  bool boolean(const std::string& key) const {
    const json* v = get(key);
    if (!v) return false;
    if (!v->is_boolean()) bad(key, fmt::format("'{}' must be true or false", key));
    return v->get<bool>();
  }
  // Fields we accept only at their neutral value (clients send them; we do not implement them).
  void only_neutral(const std::string& key, const json& neutral) const {
    const json* v = get(key);
    if (v && *v != neutral && !(v->is_object() && v->empty()))
      bad(key, fmt::format("'{}' is not supported (only {})", key, neutral.dump()));
  }

 private:
  json j_;
  std::set<std::string> known_;
};

std::vector<std::string> string_list(const json& v, const std::string& param, size_t max_items,
                                     bool allow_empty_strings) {
  if (!v.is_array()) bad(param, fmt::format("'{}' must be a list of strings", param));
  if (v.empty()) bad(param, fmt::format("'{}' must not be empty", param));
  if (v.size() > max_items)
    bad(param, fmt::format("'{}' has more than {} entries", param, max_items));
  std::vector<std::string> out;
  for (const auto& item : v) {
    if (!item.is_string()) bad(param, fmt::format("'{}' must be a list of strings", param));
    out.push_back(item.get<std::string>());
    if (!allow_empty_strings && out.back().empty())
      bad(param, fmt::format("'{}' has an empty string", param));
  }
  return out;
}

// "top_k", "temperature" and "general" of an Arrow "lora" (method "arrow").
void parse_arrow_fields(const json& v, size_t max_modules, LoraSpec& spec) {
  if (v.contains("weights"))
    bad("lora.weights",
        "'lora.weights' must not be given with method 'arrow' (it routes per token)");
  if (v.contains("top_k")) {
    const json& k = v["top_k"];
    if (!k.is_number_integer() || k.get<int64_t>() < 1 ||
        k.get<int64_t>() > static_cast<int64_t>(spec.modules.size()))
      bad("lora.top_k", fmt::format("'lora.top_k' must be an integer between 1 and the number of "
                                    "modules ({})",
                                    spec.modules.size()));
    spec.arrow.top_k = k.get<int64_t>();
  } else {
    spec.arrow.top_k = std::min<int64_t>(spec.arrow.top_k, spec.modules.size());
  }
  if (v.contains("temperature")) {
    const json& t = v["temperature"];
    if (!t.is_number() || !std::isfinite(t.get<double>()) || t.get<double>() <= 0)
      bad("lora.temperature", "'lora.temperature' must be a finite number > 0");
    spec.arrow.temperature = t.get<double>();
  }
  if (v.contains("general"))
    spec.general = string_list(v["general"], "lora.general", max_modules, false);
}

LoraSpec parse_lora(const json& v, size_t max_modules) {
  if (!v.is_object()) bad("lora", "'lora' must be an object {modules, weights, method}");
  LoraSpec spec;
  for (const auto& [key, value] : v.items()) {
    if (key != "modules" && key != "weights" && key != "method" && key != "top_k" &&
        key != "temperature" && key != "general")
      bad("lora." + key, fmt::format("unknown field 'lora.{}'", printable_utf8(key)));
  }
  if (!v.contains("modules")) bad("lora.modules", "'lora.modules' is required");
  spec.modules = string_list(v["modules"], "lora.modules", max_modules, false);
  if (v.contains("method")) {
    if (!v["method"].is_string()) bad("lora.method", "'lora.method' must be a string");
    spec.method = v["method"].get<std::string>();
  }
  if (spec.routed()) {
    parse_arrow_fields(v, max_modules, spec);
    return spec;
  }
  for (const char* key : {"top_k", "temperature", "general"})
    if (v.contains(key))
      bad(fmt::format("lora.{}", key), fmt::format("'lora.{}' is for method 'arrow' only", key));
  if (!v.contains("weights") || !v["weights"].is_array())
    bad("lora.weights", "'lora.weights' must be a list of numbers, one per module");
  for (const auto& w : v["weights"]) {
    if (!w.is_number() || !std::isfinite(w.get<double>()))
      bad("lora.weights", "'lora.weights' must be finite numbers");
    spec.weights.push_back(w.get<double>());
  }
  if (spec.weights.size() != spec.modules.size())
    bad("lora.weights", fmt::format("'lora.weights' has {} weights for {} modules",
                                    spec.weights.size(), spec.modules.size()));
  return spec;
}

std::string message_content(const json& content, const std::string& param) {
  if (content.is_string()) return content.get<std::string>();
  // The list form: [{"type": "text", "text": "..."}, ...]; only text parts.
  if (!content.is_array())
    bad(param, fmt::format("'{}' must be a string or a list of text parts", param));
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") ||
        !part["text"].is_string())
      bad(param, fmt::format("'{}': only parts {{\"type\": \"text\", \"text\": ...}} are supported",
                             param));
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<api::ChatMessage> parse_messages(const json* v) {
  if (!v) bad("messages", "'messages' is required");
  if (!v->is_array() || v->empty()) bad("messages", "'messages' must be a non-empty list");
  std::vector<api::ChatMessage> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& m = (*v)[i];
    const std::string param = fmt::format("messages[{}]", i);
    if (!m.is_object()) bad(param, fmt::format("'{}' must be an object {{role, content}}", param));
    for (const auto& [key, value] : m.items()) {
      if (key != "role" && key != "content" && key != "name")
        bad(param + "." + key, fmt::format("unknown field '{}.{}'", param, printable_utf8(key)));
    }
    const json role = m.value("role", json());
    if (!role.is_string() ||
        (role != "system" && role != "user" && role != "assistant" && role != "developer"))
      bad(param + ".role",
          fmt::format("'{}.role' must be system, developer, user or assistant", param));
    if (!m.contains("content"))
      bad(param + ".content", fmt::format("'{}.content' is required", param));
    std::string r = role.get<std::string>();
    out.push_back(
        {r == "developer" ? "system" : r, message_content(m["content"], param + ".content")});
  }
  return out;
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json answer_head(const CompletionRequest& req, std::string_view id, int64_t created, bool chunk) {
  const char* object =
      req.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return {{"id", id},
          {"object", object},
          {"created", created},
          {"model", req.model},
          {"system_fingerprint", nullptr}};
}

std::string sse(const json& j) {
  return "data: " + j.dump() + "\n\n";
}

}  // namespace

std::string error_body(int status, std::string_view message, std::string_view param,
                       std::string_view code) {
  if (code.empty()) code = default_code(status);
  return json{{"error",
               {{"message", to_valid_utf8(message)},
                {"type", error_type(status)},
                {"param", null_if_empty(to_valid_utf8(param))},
                {"code", null_if_empty(code)}}}}
      .dump();
}

http::Response error_answer(std::exception_ptr error) {
  int status = 500;
  std::string message, param, code;
  http::Headers headers;
  try {
    std::rethrow_exception(error);
  } catch (const ApiError& e) {
    status = e.status, message = e.what(), param = e.param, code = e.code, headers = e.headers;
  } catch (const http::Error& e) {
    status = e.status, message = e.what(), headers = e.headers;
  } catch (const api::Cancelled&) {
    status = 503, message = "the server is shutting down";
  } catch (const lorahub::Error& e) {  // a module or composition the engine refused
    status = 400, message = e.what();
  } catch (const std::bad_alloc&) {
    status = 503, message = "out of memory";
  } catch (const std::exception& e) {
    message = fmt::format("internal error: {}", e.what());
  } catch (...) {
    message = "internal error";
  }
  http::Response res = http::Response::json(error_body(status, message, param, code), status);
  for (const auto& [k, v] : headers) res.set_header(k, v);
  return res;
}

CompletionRequest parse_completion(std::string_view text, bool chat, const RequestLimits& limits) {
  std::set<std::string> known{"model",
                              "stream",
                              "stream_options",
                              "max_tokens",
                              "temperature",
                              "top_p",
                              "top_k",
                              "seed",
                              "stop",
                              "n",
                              "lora",
                              "user",
                              "presence_penalty",
                              "frequency_penalty",
                              "logit_bias",
                              "logprobs"};
  if (chat) {
    known.insert({"messages", "max_completion_tokens", "top_logprobs", "response_format"});
  } else {
    known.insert({"prompt", "echo", "suffix", "best_of"});
  }
  const Body body(text, known);
  CompletionRequest req;
  req.chat = chat;
  req.model = body.string("model", true);
  if (req.model.empty()) bad("model", "'model' must not be empty");
  if (chat) {
    req.messages = parse_messages(body.get("messages"));
  } else {
    const json* p = body.get("prompt");
    if (!p) bad("prompt", "'prompt' is required");
    if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      req.prompt = (*p)[0].get<std::string>();
    } else if (p->is_string()) {
      req.prompt = p->get<std::string>();
    } else {
      bad("prompt",
          "'prompt' must be a string (or a list of one string; token ids are not supported)");
    }
  }
  req.stream = body.boolean("stream");
  if (const json* o = body.get("stream_options")) {
    if (!o->is_object()) bad("stream_options", "'stream_options' must be an object");
    const json u = o->value("include_usage", json(false));
    if (!u.is_boolean())
      bad("stream_options.include_usage", "'include_usage' must be true or false");
    req.include_usage = u.get<bool>();
  }
  req.max_tokens = chat ? 256 : 16;  // OpenAI's default for completions; chat: until EOS, bounded
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (!chat && std::string_view(key) == "max_completion_tokens") continue;
    if (auto v = body.integer(key, 1, limits.max_tokens)) req.max_tokens = static_cast<int>(*v);
  }
  req.temperature = static_cast<float>(body.number("temperature", 0.0, 2.0).value_or(1.0));
  req.top_p = static_cast<float>(body.number("top_p", 0.0, 1.0).value_or(1.0));
  if (req.top_p <= 0.0f) bad("top_p", "'top_p' must be greater than 0");
  req.top_k = static_cast<int>(body.integer("top_k", -1, 1 << 30).value_or(0));
  if (req.top_k < 0) req.top_k = 0;  // -1: vLLM's "all tokens"
  if (auto seed = body.integer("seed", std::numeric_limits<int64_t>::min(),
                               std::numeric_limits<int64_t>::max())) {
    req.seed = static_cast<uint64_t>(*seed), req.has_seed = true;
  }
  if (const json* s = body.get("stop")) {
    req.stop = s->is_string() ? std::vector<std::string>{s->get<std::string>()}
                              : string_list(*s, "stop", limits.max_stop, false);
    if (req.stop.size() == 1 && req.stop[0].empty()) bad("stop", "'stop' has an empty string");
  }
  if (auto n = body.integer("n", 1, std::numeric_limits<int64_t>::max()); n && *n != 1)
    bad("n", "only n=1 is supported");
  if (!chat) {
    body.only_neutral("echo", false);
    body.only_neutral("suffix", nullptr);
    if (auto b = body.integer("best_of", 1, std::numeric_limits<int64_t>::max()); b && *b != 1)
      bad("best_of", "only best_of=1 is supported");
  } else {
    body.only_neutral("top_logprobs", nullptr);
    if (const json* f = body.get("response_format"); f && f->value("type", json()) != "text")
      bad("response_format", "only response_format {\"type\": \"text\"} is supported");
  }
  body.only_neutral("logprobs", chat ? json(false) : json(nullptr));
  body.only_neutral("logit_bias", json::object());
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    if (auto v = body.number(key, -2.0, 2.0); v && *v != 0.0)
      bad(key, fmt::format("'{}' is not supported (only 0)", key));
  }
  body.string("user", false);
  if (const json* l = body.get("lora")) req.lora = parse_lora(*l, limits.max_lora_modules);
  return req;
}

// "hub_filter": {"tag": "bbh", "rank": 4} as the "key=value" items of --hub-filter (the keys
// and values are checked where the filter is used, by the hub client's parser).
std::vector<std::string> parse_hub_filter_object(const json& v) {
  if (!v.is_object())
    bad("hub_filter", "'hub_filter' must be an object such as {\"tag\": \"bbh\", \"rank\": 4}");
  std::vector<std::string> items;
  for (const auto& [key, value] : v.items()) {
    const std::string param = "hub_filter." + printable_utf8(key);
    std::string text;
    if (value.is_string())
      text = value.get<std::string>();
    else if (value.is_number_integer())
      text = value.dump();
    else
      bad(param, fmt::format("'{}' must be a string or an integer", param));
    // One item per key: a comma or '=' in the key, or a comma in the value, would make more.
    if (key.find_first_of(",=") != std::string::npos || text.find(',') != std::string::npos)
      bad(param, fmt::format("'{}': no commas in hub filter keys or values", param));
    items.push_back(key + "=" + text);
  }
  return items;
}

LearnRequest parse_learn(std::string_view text, size_t max_examples) {
  const Body body(text, {"modules", "hub_filter", "examples", "steps", "seed", "optimizer", "l1",
                         "method", "push"});
  LearnRequest req;
  const json* m = body.get("modules");
  const json* filter = body.get("hub_filter");
  if (!m && !filter) bad("modules", "'modules' (or 'hub_filter') is required");
  if (m && filter) bad("hub_filter", "give 'modules' or 'hub_filter', not both");
  if (m) req.modules = string_list(*m, "modules", 64, false);
  if (filter) req.hub_filter = parse_hub_filter_object(*filter);
  if (const json* push = body.get("push")) {
    if (!push->is_object() || push->size() != 2 || !push->contains("repo") ||
        !push->contains("token") || !(*push)["repo"].is_string() || !(*push)["token"].is_string())
      bad("push", "'push' must be {\"repo\": \"user/name\", \"token\": \"<hub token>\"}");
    req.push_repo = (*push)["repo"].get<std::string>();
    req.push_token = (*push)["token"].get<std::string>();
    if (req.push_repo.empty() || req.push_token.empty())
      bad("push", "'push.repo' and 'push.token' must not be empty");
  }
  const json* ex = body.get("examples");
  if (!ex || !ex->is_array() || ex->empty())
    bad("examples", "'examples' must be a non-empty list of {input, output}");
  if (ex->size() > max_examples) bad("examples", fmt::format("at most {} examples", max_examples));
  for (size_t i = 0; i < ex->size(); ++i) {
    const json& e = (*ex)[i];
    const std::string param = fmt::format("examples[{}]", i);
    if (!e.is_object() || e.size() != 2 || !e.contains("input") || !e.contains("output") ||
        !e["input"].is_string() || !e["output"].is_string())
      bad(param, fmt::format("'{}' must be {{\"input\": string, \"output\": string}}", param));
    req.inputs.push_back(e["input"].get<std::string>());
    req.outputs.push_back(e["output"].get<std::string>());
  }
  req.options.steps = static_cast<int>(body.integer("steps", 1, 1000).value_or(20));
  if (auto seed = body.integer("seed", 0, std::numeric_limits<int64_t>::max()))
    req.options.seed = static_cast<uint64_t>(*seed);
  if (auto l1 = body.number("l1", 0.0, 100.0)) req.options.l1 = *l1;
  if (std::string o = body.string("optimizer", false); !o.empty()) req.options.optimizer = o;
  if (std::string mth = body.string("method", false); !mth.empty())
    req.options.compose.method = mth;
  return req;
}

std::string completion_json(const CompletionRequest& req, std::string_view id, int64_t created,
                            std::string_view text, std::string_view finish_reason,
                            const Usage& usage) {
  json j = answer_head(req, id, created, false);
  json choice{{"index", 0}, {"finish_reason", finish_reason}, {"logprobs", nullptr}};
  if (req.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  j["usage"] = usage_json(usage);
  return j.dump();
}

std::string chunk_event(const CompletionRequest& req, std::string_view id, int64_t created,
                        std::string_view text, std::string_view finish_reason, bool role_only) {
  json j = answer_head(req, id, created, true);
  json choice{{"index", 0}, {"finish_reason", null_if_empty(finish_reason)}, {"logprobs", nullptr}};
  if (req.chat) {
    json delta = json::object();
    if (role_only)
      delta = {{"role", "assistant"}, {"content", ""}};
    else if (!text.empty())
      delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  if (req.include_usage) j["usage"] = nullptr;
  return sse(j);
}

std::string usage_event(const CompletionRequest& req, std::string_view id, int64_t created,
                        const Usage& usage) {
  json j = answer_head(req, id, created, true);
  j["choices"] = json::array();
  j["usage"] = usage_json(usage);
  return sse(j);
}

std::string error_event(int status, std::string_view message) {
  return "data: " + error_body(status, message) + "\n\n";
}

}  // namespace lorahub::serve
