// The Jinja subset of chat templates: expected strings are what jinja2 (with transformers'
// trim_blocks + lstrip_blocks) renders for the same templates; tests/parity/test_chat_template.py
// compares whole real templates with jinja2 itself.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace lorahub {
namespace {

using Json = nlohmann::ordered_json;

std::string render(const std::string& t, const Json& ctx = Json::object()) {
  return render_jinja(t, ctx);
}

TEST(ChatTemplate, WhitespaceControlAndBlockTrimming) {
  // trim_blocks drops the newline after a block tag, lstrip_blocks the indentation before it.
  EXPECT_EQ(render("{% if true %}\n  a\n  {% endif %}\nb"), "  a\nb");
  EXPECT_EQ(render("x  {%- if true -%}  y  {%- endif -%}  z"), "xyz");
  EXPECT_EQ(render("a {{ 1 }}\n{# c #}\nb"), "a 1\nb");
  EXPECT_EQ(render("{{- ' x ' -}}"), " x ");
  // A close delimiter inside a string literal is text (Qwen2.5's tool-call instructions).
  EXPECT_EQ(render("{{ \"{{\\\"a\\\": 1}}\" }}|{% if '%}' %}y{% endif %}"), "{{\"a\": 1}}|y");
}

TEST(ChatTemplate, LoopsNamespacesAndScopes) {
  const Json ctx = {{"xs", Json::array({"a", "b", "c"})}};
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index0 }}{{ x }}{% if not loop.last %},{% endif %}"
                   "{% endfor %}",
                   ctx),
            "0a,1b,2c");
  // A plain set inside a loop does not leak out; a namespace attribute does.
  EXPECT_EQ(
      render("{% set n = 0 %}{% set ns = namespace(n=0) %}{% for x in xs %}{% set n = n + 1 %}"
             "{% set ns.n = ns.n + 1 %}{% endfor %}{{ n }}/{{ ns.n }}",
             ctx),
      "0/3");
  EXPECT_EQ(render("{% for x in xs[::-1] if x != 'b' %}{{ x }}{{ loop.length }}{% endfor %}", ctx),
            "c2a2");
  EXPECT_EQ(render("{% for x in [] %}y{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"),
            "a=1;b=2;");
  EXPECT_EQ(
      render("{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
      "012");
}

TEST(ChatTemplate, ExpressionsFiltersTestsMethods) {
  EXPECT_EQ(render("{{ '  hi  ' | trim }}|{{ [1, 2] | length }}|{{ 7 // 2 }}{{ -7 % 3 }}"),
            "hi|2|32");
  EXPECT_EQ(render("{{ {'a': [1, 2.5, none, true], 'b': 'é\"'} | tojson }}"),
            R"({"a": [1, 2.5, null, true], "b": "é\""})");
  EXPECT_EQ(render("{{ 'a</think>b'.split('</think>')[-1] }}{{ 'xxhixx'.strip('x') }}"), "bhi");
  EXPECT_EQ(render("{{ x is defined }}{{ none is none }}{{ 'a' is string }}{{ y | default('d') }}"),
            "FalseTrueTrued");
  EXPECT_EQ(render("{{ 'yes' if 'a' in 'cat' else 'no' }}{{ [1, 'a'] }}{{ 1.0 }}"),
            "yes[1, 'a']1.0");
  EXPECT_EQ(render("{{ 'ab'.startswith('a') and not 'ab'.endswith('a') }}"), "True");
  EXPECT_EQ(render("{% if '' %}full{% else %}empty{% endif %}{{ '' or 'x' }}"), "emptyx");
}

TEST(ChatTemplateMalformed, ErrorsNameTheLine) {
  const auto message = [](const std::string& t) {
    try {
      render_jinja(t, Json::object());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("a\nb\n{{ (1 }}").find("chat template line 3"), std::string::npos);
  EXPECT_NE(message("{% for %}").find("expected a name"), std::string::npos);
  EXPECT_NE(message("{% if x %}").find("missing '{% endif %}'"), std::string::npos);
  EXPECT_NE(message("{% endfor %}").find("unexpected '{% endfor %}'"), std::string::npos);
  EXPECT_NE(message("{{ 'a' ").find("unterminated '{{'"), std::string::npos);
  EXPECT_NE(message("{{ x.y.z }}").find("of an undefined value"), std::string::npos);
  EXPECT_NE(message("{% macro m() %}{% endmacro %}").find("unsupported statement"),
            std::string::npos);
  EXPECT_NE(message(std::string(300, '[') + std::string(300, ']')).find("no error"),
            std::string::npos);  // plain text, not an expression
  EXPECT_NE(message("{{ " + std::string(1000, '[') + " }}").find("nested too deeply"),
            std::string::npos);
  EXPECT_NE(message("{% for i in range(10000000) %}{% endfor %}").find("more than 1000000"),
            std::string::npos);
  EXPECT_NE(message("{% for i in range(1000) %}{% for j in range(1001) %}{% endfor %}"
                    "{% endfor %}")
                .find("step limit"),
            std::string::npos);
}

}  // namespace
}  // namespace lorahub
