#include "core/utf8.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace lorahub {
namespace {

TEST(Utf8, ValidTextIsKept) {
  for (const char* text : {"", "ascii", "caf\xc3\xa9", "\xe4\xb8\xad\xe6\x96\x87",
                           "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"}) {
    EXPECT_TRUE(is_valid_utf8(text)) << text;
    EXPECT_EQ(to_valid_utf8(text), text);
  }
}

TEST(Utf8Malformed, BadSequencesBecomeReplacementCharacters) {
  const std::string fffd = "\xef\xbf\xbd";
  struct Case {
    std::string in, out;
  };
  for (const Case& c : std::vector<Case>{
           {"\xff", fffd},
           {"a\xc3", "a" + fffd},                            // truncated two-byte sequence
           {"\xc0\xaf", fffd + fffd},                        // overlong '/'
           {"\xed\xa0\x80", fffd + fffd + fffd},             // UTF-16 surrogate
           {"\xf4\x90\x80\x80", fffd + fffd + fffd + fffd},  // past U+10FFFF
           {"\xe2\x82x", fffd + fffd + "x"},
       }) {
    EXPECT_FALSE(is_valid_utf8(c.in));
    const std::string fixed = to_valid_utf8(c.in);
    EXPECT_EQ(fixed, c.out);
    EXPECT_TRUE(is_valid_utf8(fixed));
    EXPECT_NO_THROW((void)nlohmann::json(fixed).dump());
  }
}

TEST(Utf8, TruncationNeverCutsACharacter) {
  const std::string text = "ab\xc3\xa9\xe4\xb8\xad";  // a b é 中: 1+1+2+3 bytes
  EXPECT_EQ(truncate_utf8(text, 0), "");
  EXPECT_EQ(truncate_utf8(text, 2), "ab");
  EXPECT_EQ(truncate_utf8(text, 3), "ab");  // é does not fit whole
  EXPECT_EQ(truncate_utf8(text, 4), "ab\xc3\xa9");
  EXPECT_EQ(truncate_utf8(text, 6), "ab\xc3\xa9");
  EXPECT_EQ(truncate_utf8(text, 7), text);
  EXPECT_EQ(truncate_utf8(text, 100), text);
  EXPECT_EQ(truncate_utf8("\xff\xff", 4), "\xef\xbf\xbd");  // never past max_bytes
}

TEST(Utf8Malformed, EveryErrorMessageIsValidUtf8) {
  try {
    fail("bad name '{}'", std::string("x\xff\xfe", 3));
  } catch (const Error& e) {
    EXPECT_TRUE(is_valid_utf8(e.what()));
    EXPECT_NO_THROW((void)nlohmann::json(e.what()).dump());
  }
}

}  // namespace
}  // namespace lorahub
