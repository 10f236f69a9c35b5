// Exact match as the reference normalises (Python's s.strip().lower().replace(".", "")) and the
// JSONL example reader (both key spellings, absent outputs, blank lines, errors by line).
#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/jsonl.h"
#include "eval/metrics.h"

namespace lorahub {
namespace {

TEST(Metrics, NormalizesLikePython) {
  // Python: " Yes.\n".strip().lower().replace(".", "") == "yes"
  EXPECT_EQ(normalize_answer(" Yes.\n"), "yes");
  EXPECT_EQ(normalize_answer("\x1c(A)\x1f\t"), "(a)");  // str.strip() also strips \x1c-\x1f
  EXPECT_EQ(normalize_answer("3.14"), "314");
  EXPECT_EQ(normalize_answer("a b"), "a b");                              // inner spaces stay
  EXPECT_EQ(normalize_answer("\xC3\x89T\xC3\x89"), "\xC3\x89t\xC3\x89");  // non-ASCII untouched
  EXPECT_TRUE(exact_match("  (B). ", "(b)"));
  EXPECT_FALSE(exact_match("(B) because", "(B)"));
  EXPECT_FALSE(exact_match("", "no"));
}

TEST(Metrics, AccuracyIsAPercentage) {
  EXPECT_DOUBLE_EQ(
      exact_match_accuracy({"yes", "No.", "maybe", "True"}, {"Yes", "no", "yes", "true"}), 75.0);
  EXPECT_DOUBLE_EQ(exact_match_accuracy({"x"}, {"y"}), 0.0);
}

TEST(MetricsMalformed, AccuracyNeedsMatchingNonEmptyLists) {
  EXPECT_THROW(exact_match_accuracy({}, {}), Error);
  EXPECT_THROW(exact_match_accuracy({"a"}, {"a", "b"}), Error);
}

TEST(Jsonl, ReadsBothSpellingsOptionalOutputsAndSkipsBlankLines) {
  const auto rows = parse_jsonl_examples(
      "{\"input\": \"a\", \"output\": \"b\"}\n\n  \n{\"context\": \"c\", \"completion\": \"d\"}\n"
      "{\"input\": \"e\"}\n{\"input\": \"f\", \"output\": null}",
      "x.jsonl");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].input, "a");
  EXPECT_EQ(rows[0].output, "b");
  EXPECT_EQ(rows[1].input, "c");
  EXPECT_EQ(rows[1].output, "d");
  EXPECT_EQ(rows[1].line, 4u);  // blank lines count
  EXPECT_FALSE(rows[2].output.has_value());
  EXPECT_FALSE(rows[3].output.has_value());
  EXPECT_EQ(rows[3].line, 6u);
  EXPECT_TRUE(parse_jsonl_examples("", "empty.jsonl").empty());
}

std::string error_of(const std::string& text) {
  try {
    parse_jsonl_examples(text, "x.jsonl");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(JsonlMalformed, NamesFileLineAndProblem) {
  EXPECT_EQ(error_of("{\"input\": \"a\"}\n[1, 2]\n"),
            "x.jsonl:2: expected a JSON object, got array");
  EXPECT_EQ(error_of("{\"output\": \"b\"}\n"), "x.jsonl:1: missing field 'input' (or 'context')");
  EXPECT_EQ(error_of("{\"input\": 3}\n"), "x.jsonl:1: field 'input' must be a string, got integer");
  const std::string bad = error_of("\n{\"input\": \"a\",}\n");
  EXPECT_EQ(bad.rfind("x.jsonl:2: invalid JSON at column ", 0), 0u) << bad;
  EXPECT_EQ(bad.find("json.exception"), std::string::npos) << bad;
}

}  // namespace
}  // namespace lorahub
