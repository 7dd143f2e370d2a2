#include "base/status.h"

#include <gtest/gtest.h>

namespace lathe {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd", "x");
  return x / 2;
}

Status Quarter(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(*out, Half(h));
  return OkStatus();
}

Status Check(bool fail) {
  RETURN_IF_ERROR(fail ? NotFoundError("nope") : OkStatus());
  return OkStatus();
}

TEST(Status, OkByDefaultAndCarriesCodeMessageField) {
  EXPECT_TRUE(Status().ok());
  Status s = InvalidArgumentError("bad", "spec.name");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "bad");
  EXPECT_EQ(s.field(), "spec.name");
  EXPECT_EQ(s.ToString(), "INVALID_ARGUMENT: bad (field: spec.name)");
  EXPECT_EQ(s.WithPrefix("decode").message(), "decode: bad");
}

TEST(Status, MacrosPropagate) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status s = Quarter(6, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Check(true).code(), StatusCode::kNotFound);
  EXPECT_TRUE(Check(false).ok());
}

TEST(StatusOr, HoldsValueOrError) {
  StatusOr<std::string> v = std::string("x");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, "x");
  StatusOr<std::string> e = NotFoundError("gone");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(e.value_or("fallback"), "fallback");
}

}  // namespace
}  // namespace lathe
