#include "base/strings.h"

#include <gtest/gtest.h>

namespace lathe {
namespace {

TEST(StringsTest, EqualsIgnoreCaseAsciiAndAsciiLower) {
  EXPECT_TRUE(EqualsIgnoreCaseAscii("Content-Type", "content-type"));
  EXPECT_FALSE(EqualsIgnoreCaseAscii("and", "an"));
  EXPECT_EQ(AsciiLower("NaN ÄB"), "nan Äb");  // non-ASCII bytes unchanged
}

TEST(StringsTest, SqlLikeMatchIsCaseSensitiveWithPercentAndUnderscore) {
  EXPECT_TRUE(SqlLikeMatch("fraud-model", "fraud%"));
  EXPECT_TRUE(SqlLikeMatch("fraud-model", "%model"));
  EXPECT_TRUE(SqlLikeMatch("fraud-model", "f_aud%m_del"));
  EXPECT_TRUE(SqlLikeMatch("", "%"));
  EXPECT_TRUE(SqlLikeMatch("abcabc", "%abc"));  // backtracks over the first match
  EXPECT_FALSE(SqlLikeMatch("Fraud", "fraud"));
  EXPECT_FALSE(SqlLikeMatch("abc", "ab"));
  EXPECT_FALSE(SqlLikeMatch("abc", "_"));
  EXPECT_TRUE(SqlLikeMatch(AsciiLower("FRAUD-x"), AsciiLower("fraud%")));  // ILIKE
}

TEST(StringsTest, FirstInvalidUtf8FindsTheFirstBadByte) {
  EXPECT_EQ(FirstInvalidUtf8(""), std::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("breast-c\xe9ncer"), 8u);     // Latin-1, not UTF-8
  EXPECT_EQ(FirstInvalidUtf8("ab\xc3"), 2u);               // truncated
  EXPECT_EQ(FirstInvalidUtf8("\xc0\xaf"), 0u);             // overlong '/'
  EXPECT_EQ(FirstInvalidUtf8("\xe0\x80\xaf"), 0u);         // overlong
  EXPECT_EQ(FirstInvalidUtf8("x\xed\xa0\x80"), 1u);        // a surrogate
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x90\x80\x80"), 0u);     // above U+10FFFF
  EXPECT_EQ(FirstInvalidUtf8("\xf4\x8f\xbf\xbf"), std::string_view::npos);
  EXPECT_EQ(FirstInvalidUtf8("a\x80"), 1u);                // a lone continuation byte
}

}  // namespace
}  // namespace lathe
