// The OpenAI request parser: what it accepts, and that every bad body is an ApiError 400 that
// names the field at fault (never another exception, never a crash).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "serve/openai.h"

namespace lorahub::serve {
namespace {

using nlohmann::json;

TEST(OpenAIRequest, ParsesCompletionAndChat) {
  const auto c = parse_completion(
      R"({"model": "m", "prompt": ["hi"], "max_tokens": 5, "temperature": 0, "top_p": 0.5,
          "seed": -3, "stop": "\n", "stream": true, "stream_options": {"include_usage": true},
          "n": 1, "lora": {"modules": ["a", "b"], "weights": [0.5, -1]}})",
      false);
  EXPECT_EQ(c.prompt, "hi");
  EXPECT_EQ(c.max_tokens, 5);
  EXPECT_EQ(c.temperature, 0.0f);
  EXPECT_EQ(c.top_p, 0.5f);
  EXPECT_TRUE(c.has_seed);
  EXPECT_EQ(c.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(c.stream && c.include_usage);
  ASSERT_TRUE(c.lora);
  EXPECT_EQ(c.lora->weights, (std::vector<double>{0.5, -1}));
  EXPECT_EQ(c.lora->method, "lorahub");

  const auto chat = parse_completion(
      R"({"model": "m", "messages": [{"role": "developer", "content": "be brief"},
          {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
          "max_completion_tokens": 7})",
      true);
  ASSERT_EQ(chat.messages.size(), 2u);
  EXPECT_EQ(chat.messages[0].role, "system");
  EXPECT_EQ(chat.messages[1].content, "ab");
  EXPECT_EQ(chat.max_tokens, 7);
  EXPECT_EQ(parse_completion(R"({"model": "m", "prompt": "x"})", false).max_tokens, 16);
}

struct Bad {
  const char* body;
  const char* param;
};

class OpenAIRequestMalformed : public ::testing::TestWithParam<Bad> {};

TEST_P(OpenAIRequestMalformed, IsA400NamingTheField) {
  try {
    parse_completion(GetParam().body, false, {.max_tokens = 100});
    FAIL() << "accepted: " << GetParam().body;
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, GetParam().param) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Bodies, OpenAIRequestMalformed,
    ::testing::Values(
        Bad{"", ""}, Bad{"{", ""}, Bad{"[]", ""}, Bad{"null", ""}, Bad{"{\"model\": \"\xff\"}", ""},
        Bad{R"({"model": "m", "prompt": "\ud800"})", ""}, Bad{R"({"prompt": "x"})", "model"},
        Bad{R"({"model": 1, "prompt": "x"})", "model"}, Bad{R"({"model": "m"})", "prompt"},
        Bad{R"({"model": "m", "prompt": [1]})", "prompt"},
        Bad{R"({"model": "m", "prompt": ["a", "b"]})", "prompt"},
        Bad{R"({"model": "m", "prompt": "x", "max_tokens": -1})", "max_tokens"},
        Bad{R"({"model": "m", "prompt": "x", "max_tokens": 101})", "max_tokens"},
        Bad{R"({"model": "m", "prompt": "x", "max_tokens": 18446744073709551615})", "max_tokens"},
        Bad{R"({"model": "m", "prompt": "x", "max_tokens": true})", "max_tokens"},
        Bad{R"({"model": "m", "prompt": "x", "temperature": 2.5})", "temperature"},
        Bad{R"({"model": "m", "prompt": "x", "top_p": 0})", "top_p"},
        Bad{R"({"model": "m", "prompt": "x", "seed": 1.5})", "seed"},
        Bad{R"({"model": "m", "prompt": "x", "n": 3})", "n"},
        Bad{R"({"model": "m", "prompt": "x", "stop": ""})", "stop"},
        Bad{R"({"model": "m", "prompt": "x", "stop": {}})", "stop"},
        Bad{R"({"model": "m", "prompt": "x", "echo": true})", "echo"},
        Bad{R"({"model": "m", "prompt": "x", "best_of": 2})", "best_of"},
        Bad{R"({"model": "m", "prompt": "x", "presence_penalty": 1})", "presence_penalty"},
        Bad{R"({"model": "m", "prompt": "x", "stream_options": 1})", "stream_options"},
        Bad{R"({"model": "m", "prompt": "x", "lora": []})", "lora"},
        Bad{R"({"model": "m", "prompt": "x", "lora": {"weights": [1]}})", "lora.modules"},
        Bad{R"({"model": "m", "prompt": "x", "lora": {"modules": ["a"]}})", "lora.weights"},
        Bad{R"({"model": "m", "prompt": "x", "lora": {"modules": ["a"], "weights": [1, 2]}})",
            "lora.weights"},
        Bad{R"({"model": "m", "prompt": "x", "lora": {"modules": [""], "weights": [1]}})",
            "lora.modules"},
        Bad{R"({"model": "m", "prompt": "x", "lora": {"modules": ["a"], "weights": [1],
                "method": 3}})",
            "lora.method"},
        Bad{R"({"model": "m", "prompt": "x", "messages": []})", "messages"}));

TEST(OpenAIError, HasOpenAIsShape) {
  const json e = json::parse(error_body(401, "no key"))["error"];
  EXPECT_EQ(e["type"], "authentication_error");
  EXPECT_EQ(e["code"], "invalid_api_key");
  EXPECT_TRUE(e["param"].is_null());
  const json bad = json::parse(error_body(400, "bad \xff", "lora.weights"))["error"];
  EXPECT_EQ(bad["type"], "invalid_request_error");
  EXPECT_EQ(bad["param"], "lora.weights");
  EXPECT_EQ(bad["message"], "bad \xef\xbf\xbd");
  EXPECT_TRUE(bad["code"].is_null());
}

TEST(OpenAIEvents, ChatChunksCarryDeltas) {
  CompletionRequest req;
  req.chat = true;
  req.model = "m";
  const std::string first = chunk_event(req, "id", 1, "", "", true);
  ASSERT_TRUE(first.starts_with("data: ") && first.ends_with("\n\n"));
  const json j = json::parse(first.substr(6));
  EXPECT_EQ(j["object"], "chat.completion.chunk");
  EXPECT_EQ(j["choices"][0]["delta"]["role"], "assistant");
  const json last = json::parse(chunk_event(req, "id", 1, "", "stop").substr(6));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
}

}  // namespace
}  // namespace lorahub::serve
