#include "core/utf8.h"

#include <gtest/gtest.h>

namespace lorahub {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8, ValidTextIsUnchanged) {
  const std::string text = "plain, caf\xC3\xA9, \xE2\x82\xAC, \xF0\x9F\x98\x80";
  EXPECT_TRUE(is_valid_utf8(text));
  EXPECT_EQ(to_valid_utf8(text), text);
}

TEST(Utf8Malformed, BadSequencesBecomeReplacementCharacters) {
  EXPECT_EQ(to_valid_utf8("a\xFF"
                          "b"),
            "a" + kFffd + "b");
  EXPECT_EQ(to_valid_utf8("\xC0\x80"), kFffd + kFffd);                    // overlong NUL
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);        // a surrogate
  EXPECT_EQ(to_valid_utf8("\xF4\x90\x80\x80").size(), 4 * kFffd.size());  // past U+10FFFF
  EXPECT_EQ(to_valid_utf8("x\xE2\x82"), "x" + kFffd + kFffd);             // cut at the end
  for (const char* bad : {"\xFF", "\xC0\x80", "\xED\xA0\x80", "\xE2\x82"}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << bad;
    EXPECT_TRUE(is_valid_utf8(to_valid_utf8(bad)));
  }
}

TEST(Utf8, TruncateNeverCutsACharacter) {
  const std::string text =
      "ab\xE2\x82\xAC"
      "c";  // a b EURO c
  EXPECT_EQ(truncate_utf8(text, 2), "ab");
  EXPECT_EQ(truncate_utf8(text, 3), "ab");
  EXPECT_EQ(truncate_utf8(text, 4), "ab");
  EXPECT_EQ(truncate_utf8(text, 5), "ab\xE2\x82\xAC");
  EXPECT_EQ(truncate_utf8(text, 100), text);
  EXPECT_EQ(truncate_utf8("\xFF\xFF\xFF", 2), "\xFF\xFF");  // ill-formed bytes count as one
  EXPECT_EQ(printable_utf8("ab\xE2\x82\xAC"
                           "c",
                           4),
            "ab...");
  EXPECT_EQ(printable_utf8("a\xFF", 10), "a" + kFffd);
}

}  // namespace
}  // namespace lorahub
