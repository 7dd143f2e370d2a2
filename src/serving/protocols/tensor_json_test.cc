#include "serving/protocols/tensor_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace lathe::serving::tensor_json {
namespace {

using ::testing::HasSubstr;

TEST(TensorJson, QuotesNonFiniteLiteralsOutsideStrings) {
  std::string out;
  EXPECT_TRUE(QuoteNonFiniteLiterals(R"([NaN, Infinity,-Infinity, 1])", &out));
  EXPECT_EQ(out, R"(["NaN", "Infinity","-Infinity", 1])");
  EXPECT_FALSE(QuoteNonFiniteLiterals(R"({"a": "NaN Infinity", "b\"NaN": 1})", &out));
  EXPECT_TRUE(QuoteNonFiniteLiterals(R"({"NaN": NaN})", &out));
  EXPECT_EQ(out, R"({"NaN": "NaN"})");
  EXPECT_FALSE(QuoteNonFiniteLiterals("[NaNa]", &out));
  EXPECT_FALSE(QuoteNonFiniteLiterals("", &out));
  EXPECT_FALSE(QuoteNonFiniteLiterals("\"unterminated \\", &out));
}

TEST(TensorJson, Base64) {
  for (std::string s : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                        std::string("foob"), std::string("\0\xff\x10\x80", 4)}) {
    std::string back;
    ASSERT_TRUE(Base64Decode(Base64Encode(s), &back)) << s;
    EXPECT_EQ(back, s);
  }
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  std::string out;
  EXPECT_TRUE(Base64Decode("Zm9vYg", &out));  // padding may be left out
  EXPECT_EQ(out, "foob");
  out.clear();
  EXPECT_FALSE(Base64Decode("Zm9v-g==", &out));  // url alphabet
  EXPECT_FALSE(Base64Decode("Z", &out));
  EXPECT_FALSE(Base64Decode("Zm=9", &out));
}

TEST(TensorJson, HalfPrecision) {
  EXPECT_EQ(HalfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xc000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(HalfToFloat(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(HalfToFloat(0x8000), -0.0f);
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_EQ(Bf16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(Bf16ToFloat(0xc040), -3.0f);
}

TEST(TensorJson, NumberSpelling) {
  auto f = [](float v) {
    std::string s;
    AppendFloat(v, &s);
    return s;
  };
  auto d = [](double v) {
    std::string s;
    AppendDouble(v, &s);
    return s;
  };
  EXPECT_EQ(f(1.0f), "1.0");
  EXPECT_EQ(f(0.1f), "0.1");
  EXPECT_EQ(f(-2.5f), "-2.5");
  EXPECT_EQ(f(1e30f), "1e+30");
  EXPECT_EQ(f(std::numeric_limits<float>::quiet_NaN()), "NaN");
  EXPECT_EQ(f(std::numeric_limits<float>::infinity()), "Infinity");
  EXPECT_EQ(f(-std::numeric_limits<float>::infinity()), "-Infinity");
  EXPECT_EQ(d(0.1), "0.1");
  EXPECT_EQ(d(123456789.0), "123456789.0");
  std::string i;
  AppendInt(std::numeric_limits<int64_t>::min(), &i);
  EXPECT_EQ(i, "-9223372036854775808");
}

class LeavesTest : public ::testing::Test {
 protected:
  StatusOr<std::string> Leaves(const std::string& json, DataType type, size_t depth = 4,
                               int64_t max = 100, bool b64 = false) {
    simdjson::dom::element e;
    EXPECT_EQ(parser_.parse(json).get(e), simdjson::SUCCESS) << json;
    std::string out;
    StatusOr<int64_t> n = AppendLeaves(e, type, depth, max, b64, &out);
    if (!n.ok()) return n.status();
    return out;
  }
  template <typename T>
  std::vector<T> As(const std::string& bytes) {
    std::vector<T> v(bytes.size() / sizeof(T));
    std::memcpy(v.data(), bytes.data(), bytes.size());
    return v;
  }
  simdjson::dom::parser parser_;
};

TEST_F(LeavesTest, IntegersInRangeOnly) {
  EXPECT_EQ(As<int8_t>(*Leaves("[-128, 127, 3.0, 1e2]", DataType::kInt8)),
            (std::vector<int8_t>{-128, 127, 3, 100}));
  EXPECT_THAT(Leaves("[128]", DataType::kInt8).status().message(),
              HasSubstr("data[0]: 128 is out of range for INT8"));
  EXPECT_THAT(Leaves("[1, -1]", DataType::kUint32).status().message(),
              HasSubstr("data[1]: -1 is out of range for UINT32"));
  EXPECT_THAT(Leaves("[1.5]", DataType::kInt32).status().message(),
              HasSubstr("data[0]: 1.5 is not an integer"));
  EXPECT_EQ(As<uint64_t>(*Leaves("[18446744073709551615]", DataType::kUint64)),
            (std::vector<uint64_t>{UINT64_MAX}));
  EXPECT_FALSE(Leaves("[9223372036854775808]", DataType::kInt64).ok());
  EXPECT_FALSE(Leaves("[9.3e18]", DataType::kInt64).ok());
  EXPECT_FALSE(Leaves("[1e300]", DataType::kUint64).ok());
  EXPECT_THAT(Leaves("[true]", DataType::kInt32).status().message(),
              HasSubstr("expected an integer, got a boolean"));
  EXPECT_THAT(Leaves("[\"1\"]", DataType::kInt32).status().message(),
              HasSubstr("expected an integer, got a string"));
}

TEST_F(LeavesTest, FloatsAndTheirSpecialValues) {
  std::vector<float> v =
      As<float>(*Leaves(R"([1, 0.5, "NaN", "Infinity", "-inf", -3e38])", DataType::kFp32));
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[0], 1.0f);
  EXPECT_EQ(v[1], 0.5f);
  EXPECT_TRUE(std::isnan(v[2]));
  EXPECT_EQ(v[3], std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[4], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(v[5], -3e38f);
  EXPECT_THAT(Leaves("[1e39]", DataType::kFp32).status().message(),
              HasSubstr("out of range for FP32"));
  // The edge: FLT_MAX's shortest spelling is above it but rounds to it;
  // FLT_MAX + half an ulp rounds to infinity.
  EXPECT_EQ(
      As<float>(*Leaves("[3.4028235e38, -3.4028235e38]", DataType::kFp32)),
      (std::vector<float>{std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()}));
  EXPECT_FALSE(Leaves("[3.4028235677973366e38]", DataType::kFp32).ok());
  EXPECT_TRUE(Leaves("[3.4028235677973362e38]", DataType::kFp32).ok());
  EXPECT_EQ(As<double>(*Leaves("[1e300]", DataType::kFp64))[0], 1e300);
  EXPECT_THAT(Leaves(R"(["one"])", DataType::kFp64).status().message(),
              HasSubstr("expected a number, got a string"));
  EXPECT_THAT(Leaves("[null]", DataType::kFp32).status().message(),
              HasSubstr("expected a number, got null"));
}

TEST_F(LeavesTest, BoolsBytesAndHalfs) {
  EXPECT_EQ(*Leaves("[true, false]", DataType::kBool), std::string("\1\0", 2));
  EXPECT_THAT(Leaves("[1]", DataType::kBool).status().message(),
              HasSubstr("expected true or false, got an integer"));
  std::string bytes = *Leaves(R"(["ab", ""])", DataType::kBytes);
  EXPECT_EQ(bytes, std::string("\2\0\0\0ab\0\0\0\0", 10));
  EXPECT_FALSE(Leaves(R"([{"b64": "YWI="}])", DataType::kBytes).ok());
  EXPECT_EQ(*Leaves(R"([{"b64": "YWI="}])", DataType::kBytes, 4, 100, true),
            std::string("\2\0\0\0ab", 6));
  EXPECT_THAT(Leaves(R"([{"b64": "!!"}])", DataType::kBytes, 4, 100, true).status().message(),
              HasSubstr("not valid base64"));
  EXPECT_THAT(Leaves("[1]", DataType::kFp16).status().message(),
              HasSubstr("FP16 data cannot be sent as JSON"));
  EXPECT_THAT(Leaves("[1]", DataType::kBf16).status().message(), HasSubstr("BF16"));
}

TEST_F(LeavesTest, DepthAndCountLimits) {
  EXPECT_THAT(Leaves("[[[1]]]", DataType::kFp32, 2).status().message(),
              HasSubstr("nested deeper than the shape's 2 dimensions"));
  simdjson::dom::element e;
  ASSERT_EQ(parser_.parse(std::string("[[1,2],[3,4,5]]")).get(e), simdjson::SUCCESS);
  std::string out;
  EXPECT_EQ(*AppendLeaves(e, DataType::kFp32, 2, 3, false, &out), 4);  // stops at max + 1
  EXPECT_EQ(CountLeaves(e, 2), 5);
  EXPECT_EQ(*AppendLeaves(e, DataType::kFp32, 2, 100, false, &out), 5);
}

TEST(ElementWriter, WritesNestedAndFlat) {
  std::vector<int32_t> v = {1, 2, 3, 4, 5, 6};
  Tensor t = MakeTensor("x", DataType::kInt32, {2, 3}, v);
  std::string out;
  ASSERT_TRUE(AppendFlat(t, &out).ok());
  EXPECT_EQ(out, "[1,2,3,4,5,6]");
  out.clear();
  ElementWriter w(t.type, t.data.bytes(), false);
  ASSERT_TRUE(w.AppendNested(t.shape, &out).ok());
  EXPECT_EQ(out, "[[1,2,3],[4,5,6]]");
  EXPECT_TRUE(w.done());
  // A shape that claims more than the bytes hold is a backend bug.
  Tensor bad = t;
  bad.shape = {2, 4};
  out.clear();
  EXPECT_EQ(AppendFlat(bad, &out).code(), StatusCode::kInternal);
  ElementWriter over(bad.type, bad.data.bytes(), false);
  EXPECT_EQ(over.AppendNested(bad.shape, &out).code(), StatusCode::kInternal);
}

TEST(ElementWriter, BytesAsStringsOrBase64) {
  Tensor t = MakeBytesTensor("s", {2}, {"a\"b", std::string("\0\xff", 2)});
  std::string out;
  ElementWriter w(t.type, t.data.bytes(), true);
  ASSERT_TRUE(w.AppendNested(t.shape, &out).ok());
  EXPECT_EQ(out, R"([{"b64":"YSJi"},{"b64":"AP8="}])");
  out.clear();
  ASSERT_TRUE(AppendFlat(MakeBytesTensor("s", {1}, {"a\"b"}), &out).ok());
  EXPECT_EQ(out, R"(["a\"b"])");
}

TEST(ParseDocument, AcceptsNonFiniteLiteralsAndLocatesErrors) {
  std::string scratch;
  StatusOr<simdjson::dom::element> e = ParseDocument("[NaN, -Infinity]", &scratch);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  Status s = ParseDocument("{\"a\": [1, 2}", &scratch).status();
  EXPECT_THAT(s.message(), HasSubstr("malformed JSON at byte"));
  std::string deep(5000, '[');
  s = ParseDocument(deep + std::string(5000, ']'), &scratch).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("nested deeper"));
}

}  // namespace
}  // namespace lathe::serving::tensor_json
