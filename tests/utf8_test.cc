// Tests of common/utf8.h: validation, cleaning, and cutting text at a character
// boundary.
#include "common/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace sweep {
namespace {

const std::string kE = "\xC3\xA9";             // é, 2 bytes
const std::string kEuro = "\xE2\x82\xAC";      // €, 3 bytes
const std::string kFace = "\xF0\x9F\x98\x80";  // 😀, 4 bytes

TEST(Utf8Test, ValidTextHasNoInvalidByte) {
  EXPECT_EQ(FirstInvalidUtf8(""), std::string::npos);
  EXPECT_EQ(FirstInvalidUtf8("plain ascii"), std::string::npos);
  EXPECT_EQ(FirstInvalidUtf8(kE + kEuro + kFace), std::string::npos);
  EXPECT_EQ(FirstInvalidUtf8("\xF4\x8F\xBF\xBF"), std::string::npos);  // U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8(std::string("a\0b", 3)), std::string::npos);  // NUL is valid
}

TEST(Utf8Test, TheFirstInvalidByteIsFound) {
  EXPECT_EQ(FirstInvalidUtf8("ab\xFF"), 2u);
  EXPECT_EQ(FirstInvalidUtf8("a\x80"), 1u);                     // a lone continuation
  EXPECT_EQ(FirstInvalidUtf8("a" + kEuro.substr(0, 2)), 1u);    // cut at the end
  EXPECT_EQ(FirstInvalidUtf8(kE + "\xC3" "x"), 2u);             // lead byte, no continuation
  EXPECT_EQ(FirstInvalidUtf8("\xC0\xAF"), 0u);                  // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("\xE0\x80\xAF"), 0u);              // overlong, 3 bytes
  EXPECT_EQ(FirstInvalidUtf8("\xF0\x80\x80\xAF"), 0u);          // overlong, 4 bytes
  EXPECT_EQ(FirstInvalidUtf8("x\xED\xA0\x80"), 1u);             // a surrogate (U+D800)
  EXPECT_EQ(FirstInvalidUtf8("\xF4\x90\x80\x80"), 0u);          // beyond U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8("\xF5\x80\x80\x80"), 0u);
}

TEST(Utf8Test, CleanTextIsValidWithoutNuls) {
  EXPECT_TRUE(IsCleanUtf8(""));
  EXPECT_TRUE(IsCleanUtf8("loss " + kEuro));
  EXPECT_FALSE(IsCleanUtf8(std::string("a\0b", 3)));
  EXPECT_FALSE(IsCleanUtf8("a\xFF"));
}

TEST(Utf8Test, CleanUtf8DropsInvalidBytesAndNulsAndKeepsTheRest) {
  EXPECT_EQ(CleanUtf8("fine " + kFace), "fine " + kFace);
  EXPECT_EQ(CleanUtf8("a\xFF" "b\x80" "c"), "abc");
  EXPECT_EQ(CleanUtf8(std::string("a\0b", 3)), "ab");
  EXPECT_EQ(CleanUtf8(kEuro.substr(0, 2) + "x" + kE), "x" + kE);
  EXPECT_EQ(CleanUtf8("\xED\xA0\x80"), "");
  for (const std::string& s : {std::string("\xC3"), std::string("x\xF0\x9F\x98"),
                               std::string("\x80\x80\xFF\0", 4)}) {
    EXPECT_TRUE(IsCleanUtf8(CleanUtf8(s))) << s;
  }
}

TEST(Utf8Test, HeadKeepsTheFirstBytesWithoutACutCharacter) {
  EXPECT_EQ(Utf8Head("abcdef", 3), "abc");
  EXPECT_EQ(Utf8Head("abc", 10), "abc");
  EXPECT_EQ(Utf8Head("abc", 0), "");
  const std::string text = "ab" + kEuro + "cd";  // € at bytes 2..4
  EXPECT_EQ(Utf8Head(text, 2), "ab");
  EXPECT_EQ(Utf8Head(text, 3), "ab");  // € cut after its first byte
  EXPECT_EQ(Utf8Head(text, 4), "ab");  // and after its second
  EXPECT_EQ(Utf8Head(text, 5), "ab" + kEuro);
  EXPECT_EQ(Utf8Head(kFace + kFace, 7), kFace);
  EXPECT_EQ(Utf8Head("a\xFF" "bc", 3), "ab");  // what it keeps is cleaned
}

TEST(Utf8Test, TailKeepsTheLastBytesWithoutACutCharacter) {
  EXPECT_EQ(Utf8Tail("abcdef", 3), "def");
  EXPECT_EQ(Utf8Tail("abc", 10), "abc");
  EXPECT_EQ(Utf8Tail("abc", 0), "");
  const std::string text = "ab" + kEuro + "cd";  // € at bytes 2..4
  EXPECT_EQ(Utf8Tail(text, 2), "cd");
  EXPECT_EQ(Utf8Tail(text, 3), "cd");  // € cut before its last byte
  EXPECT_EQ(Utf8Tail(text, 4), "cd");  // and before its last two
  EXPECT_EQ(Utf8Tail(text, 5), kEuro + "cd");
  EXPECT_EQ(Utf8Tail(kFace + kFace, 7), kFace);
  EXPECT_EQ(Utf8Tail(std::string("ab\0c", 4), 3), "bc");  // what it keeps is cleaned
}

TEST(Utf8Test, HeadAndTailNeverReturnMoreThanAsked) {
  const std::string text = kE + "x" + kEuro + kFace + "y" + kE;
  for (size_t max = 0; max <= text.size() + 1; ++max) {
    EXPECT_LE(Utf8Head(text, max).size(), max);
    EXPECT_LE(Utf8Tail(text, max).size(), max);
    EXPECT_TRUE(IsCleanUtf8(Utf8Head(text, max))) << max;
    EXPECT_TRUE(IsCleanUtf8(Utf8Tail(text, max))) << max;
    EXPECT_EQ(text.substr(0, Utf8Head(text, max).size()), Utf8Head(text, max));
    const std::string tail = Utf8Tail(text, max);
    EXPECT_EQ(text.substr(text.size() - tail.size()), tail);
  }
}

}  // namespace
}  // namespace sweep
