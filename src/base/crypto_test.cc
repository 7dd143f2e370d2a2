#include "base/crypto.h"

#include <gtest/gtest.h>

namespace lathe {
namespace {

TEST(Crypto, Sha256MatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, Base64UrlRoundTrips) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    std::string decoded;
    ASSERT_TRUE(Base64UrlDecode(Base64UrlEncode(s), &decoded));
    EXPECT_EQ(decoded, s);
  }
  std::string out;
  EXPECT_FALSE(Base64UrlDecode("ab$c", &out));
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
}

TEST(Crypto, RandomBytesDiffer) {
  EXPECT_EQ(SecureRandomBytes(32).size(), 32u);
  EXPECT_NE(SecureRandomBytes(16), SecureRandomBytes(16));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
}

}  // namespace
}  // namespace lathe
