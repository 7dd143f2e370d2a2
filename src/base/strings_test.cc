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

}  // namespace
}  // namespace lathe
