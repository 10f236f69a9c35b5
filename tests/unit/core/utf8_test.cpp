// UTF-8 repair against Python's bytes.decode("utf-8", errors="replace") (values below were
// printed by CPython 3.11), truncation at character boundaries, and the streaming prefix.
#include <gtest/gtest.h>

#include "core/utf8.h"

namespace lorahub {
namespace {

const std::string R = "\xEF\xBF\xBD";  // U+FFFD

TEST(Utf8, ValidTextIsUnchanged) {
  for (std::string s : {"", "abc", "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x98\x80!"}) {
    EXPECT_TRUE(is_valid_utf8(s)) << s;
    EXPECT_EQ(to_valid_utf8(s), s);
  }
}

TEST(Utf8Malformed, ReplacesMaximalSubpartsLikePython) {
  // b"\xe2\x82".decode(errors="replace") == "\ufffd": one mark for a cut character.
  EXPECT_EQ(to_valid_utf8("a\xE2\x82"), "a" + R);
  // b"\xe2(\xa1" -> "\ufffd(\ufffd"
  EXPECT_EQ(to_valid_utf8("\xE2(\xA1"), R + "(" + R);
  // b"\xf0\x80\x80" -> three marks: F0 80 is never the start of a character.
  EXPECT_EQ(to_valid_utf8("\xF0\x80\x80"), R + R + R);
  // b"\xed\xa0\x80" (a surrogate) -> three marks.
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), R + R + R);
  // b"\xc0\xaf" (overlong) -> two marks; b"\xff" -> one.
  EXPECT_EQ(to_valid_utf8("\xC0\xAF"), R + R);
  EXPECT_EQ(to_valid_utf8("x\xFFy"), "x" + R + "y");
  // b"\xf0\x9f\x98" + b"!" -> "\ufffd!"
  EXPECT_EQ(to_valid_utf8("\xF0\x9F\x98!"), R + "!");
  // The byte the crash report named (0xBC, a lone continuation byte).
  EXPECT_EQ(to_valid_utf8("yes \xBC"), "yes " + R);
  for (std::string s : {"a\xE2\x82", "\xBC", "\xF4\x90\x80\x80", "\xC3"}) {
    EXPECT_FALSE(is_valid_utf8(s));
    EXPECT_TRUE(is_valid_utf8(to_valid_utf8(s)));
  }
}

TEST(Utf8, TruncateNeverCutsACharacter) {
  const std::string s =
      "a\xE2\x82\xAC"
      "b";  // a € b
  EXPECT_EQ(truncate_utf8(s, 0), "");
  EXPECT_EQ(truncate_utf8(s, 1), "a");
  EXPECT_EQ(truncate_utf8(s, 2), "a");
  EXPECT_EQ(truncate_utf8(s, 3), "a");
  EXPECT_EQ(truncate_utf8(s, 4), "a\xE2\x82\xAC");
  EXPECT_EQ(truncate_utf8(s, 99), s);
}

TEST(Utf8, CompletePrefixHoldsBackOnlyWhatCanStillComplete) {
  EXPECT_EQ(utf8_complete_prefix("ab"), 2u);
  EXPECT_EQ(utf8_complete_prefix("ab\xE2\x82"), 2u);  // € may still come
  EXPECT_EQ(utf8_complete_prefix("ab\xE2\x82\xAC"), 5u);
  EXPECT_EQ(utf8_complete_prefix("ab\xBC"), 3u);   // never becomes a character
  EXPECT_EQ(utf8_complete_prefix("ab\xE2("), 4u);  // already broken
  EXPECT_EQ(utf8_complete_prefix("\xF0\x9F\x98"), 0u);
  // Converting the complete prefix and the rest apart equals converting the whole.
  const std::string s = "x\xBC\xE2\x82\xAC\xF0\x9F";
  const size_t cut = utf8_complete_prefix(s);
  EXPECT_EQ(to_valid_utf8(s.substr(0, cut)) + to_valid_utf8(s.substr(cut)), to_valid_utf8(s));
}

TEST(Utf8Malformed, PrintableIsValidAndMarksTheCut) {
  const std::string euro = "\xE2\x82\xAC";  // a 3-byte character the cut at 4 bytes would halve
  EXPECT_EQ(printable_utf8("ab" + euro + "c", 4), "ab...");
  EXPECT_EQ(printable_utf8("a\xFF", 10), "a\xEF\xBF\xBD");
  EXPECT_EQ(printable_utf8("abc", 3), "abc");
}

}  // namespace
}  // namespace lorahub
