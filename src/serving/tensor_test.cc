#include "serving/tensor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

namespace lathe::serving {
namespace {

using ::testing::HasSubstr;

TEST(DataType, NamesRoundTripAndSizes) {
  const DataType all[] = {DataType::kBool,   DataType::kUint8, DataType::kUint16, DataType::kUint32,
                          DataType::kUint64, DataType::kInt8,  DataType::kInt16,  DataType::kInt32,
                          DataType::kInt64,  DataType::kFp16,  DataType::kBf16,   DataType::kFp32,
                          DataType::kFp64,   DataType::kBytes};
  for (DataType t : all) {
    std::optional<DataType> back = ParseDataType(DataTypeName(t));
    ASSERT_TRUE(back.has_value()) << DataTypeName(t);
    EXPECT_EQ(*back, t);
  }
  EXPECT_EQ(DataTypeName(DataType::kFp32), "FP32");
  EXPECT_EQ(DataTypeSize(DataType::kBool), 1u);
  EXPECT_EQ(DataTypeSize(DataType::kUint16), 2u);
  EXPECT_EQ(DataTypeSize(DataType::kBf16), 2u);
  EXPECT_EQ(DataTypeSize(DataType::kInt32), 4u);
  EXPECT_EQ(DataTypeSize(DataType::kFp64), 8u);
  EXPECT_EQ(DataTypeSize(DataType::kBytes), 0u);
}

TEST(DataType, ParseIsExact) {
  EXPECT_FALSE(ParseDataType("fp32"));
  EXPECT_FALSE(ParseDataType("FLOAT"));
  EXPECT_FALSE(ParseDataType("TYPE_FP32"));
  EXPECT_FALSE(ParseDataType(""));
  EXPECT_FALSE(ParseDataType("FP32 "));
}

TEST(ElementCount, MultipliesDimensions) {
  std::vector<int64_t> shape = {2, 3, 4};
  EXPECT_EQ(*CheckedElementCount(shape, DataType::kFp32, {}), 24);
  EXPECT_EQ(*CheckedElementCount({}, DataType::kFp32, {}), 1);  // a scalar
  std::vector<int64_t> empty = {5, 0, 7};
  EXPECT_EQ(*CheckedElementCount(empty, DataType::kFp32, {}), 0);
}

TEST(ElementCount, RejectsNegativeDimensions) {
  std::vector<int64_t> shape = {2, -1};
  Status s = CheckedElementCount(shape, DataType::kFp32, {}).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "shape [2,-1] has negative dimension -1 at index 1");
}

TEST(ElementCount, RejectsAllocationBombsWithoutOverflow) {
  const int64_t big = int64_t{1} << 40;
  std::vector<int64_t> bomb = {big, big};
  Status s = CheckedElementCount(bomb, DataType::kFp32, {}).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("too large"));
  // Products that overflow int64 and uint64.
  std::vector<int64_t> wrap = {std::numeric_limits<int64_t>::max(), 2};
  EXPECT_FALSE(CheckedElementCount(wrap, DataType::kUint8, {}).ok());
  std::vector<int64_t> many(20, 1 << 20);
  EXPECT_FALSE(CheckedElementCount(many, DataType::kUint8, {.max_rank = 64}).ok());
  // 2^20 × 2^20 fits int64 but not the default 1 GiB limit.
  std::vector<int64_t> tera = {1 << 20, 1 << 20};
  EXPECT_FALSE(CheckedElementCount(tera, DataType::kUint8, {}).ok());
  // A zero dimension anywhere makes any shape empty, whatever the others.
  std::vector<int64_t> zero = {big, big, 0};
  EXPECT_EQ(*CheckedElementCount(zero, DataType::kFp32, {}), 0);
}

TEST(ElementCount, ByteLimitIsConfigurableAndCountsElementSize) {
  TensorLimits limits{.max_bytes = 1024};
  std::vector<int64_t> fits = {256};
  std::vector<int64_t> over = {257};
  EXPECT_TRUE(CheckedElementCount(fits, DataType::kFp32, limits).ok());
  EXPECT_FALSE(CheckedElementCount(over, DataType::kFp32, limits).ok());
  EXPECT_TRUE(CheckedElementCount(over, DataType::kUint8, limits).ok());
  std::vector<int64_t> fp64 = {129};
  EXPECT_FALSE(CheckedElementCount(fp64, DataType::kFp64, limits).ok());
  // BYTES elements count at least their 4-byte length.
  EXPECT_TRUE(CheckedElementCount(fits, DataType::kBytes, limits).ok());
  EXPECT_FALSE(CheckedElementCount(over, DataType::kBytes, limits).ok());
}

TEST(ElementCount, RejectsTooManyDimensions) {
  std::vector<int64_t> shape(33, 1);
  Status s = CheckedElementCount(shape, DataType::kFp32, {}).status();
  EXPECT_THAT(s.message(), HasSubstr("33 dimensions; at most 32"));
  EXPECT_TRUE(CheckedElementCount(shape, DataType::kFp32, {.max_rank = 33}).ok());
}

TEST(TensorBytes, FixedSizeMustMatchExactly) {
  EXPECT_TRUE(CheckTensorBytes(DataType::kFp32, 2, std::string(8, '\0')).ok());
  Status s = CheckTensorBytes(DataType::kFp32, 2, std::string(7, '\0'));
  EXPECT_EQ(s.message(), "2 elements of FP32 need 8 bytes but data has 7");
  EXPECT_FALSE(CheckTensorBytes(DataType::kInt64, 1, std::string(9, '\0')).ok());
}

TEST(TensorBytes, BytesElementsMustBeCompleteWithNothingAfter) {
  std::string data;
  ASSERT_TRUE(AppendBytesElement(&data, "ab").ok());
  ASSERT_TRUE(AppendBytesElement(&data, "").ok());
  EXPECT_EQ(data.size(), 4u + 2 + 4);
  EXPECT_TRUE(CheckTensorBytes(DataType::kBytes, 2, data).ok());
  EXPECT_THAT(CheckTensorBytes(DataType::kBytes, 3, data).message(),
              HasSubstr("ends inside the length of element 2"));
  EXPECT_THAT(CheckTensorBytes(DataType::kBytes, 1, data).message(),
              HasSubstr("4 bytes after the last of 1 BYTES elements"));
  // A length that claims more than is there.
  std::string lying(
      "\xff\xff\xff\x7f"
      "abc",
      7);
  EXPECT_THAT(CheckTensorBytes(DataType::kBytes, 1, lying).message(),
              HasSubstr("claims 2147483647 bytes but only 3 remain"));
}

TEST(TensorBytes, SplitBytesElements) {
  Tensor t = MakeBytesTensor("s", {3}, {"hello", "", std::string("a\0b", 3)});
  StatusOr<std::vector<std::string_view>> parts = SplitBytesElements(t.data.bytes());
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0], "hello");
  EXPECT_EQ((*parts)[1], "");
  EXPECT_EQ((*parts)[2], std::string_view("a\0b", 3));
  EXPECT_FALSE(SplitBytesElements(std::string_view("\x05\0\0\0abc", 7)).ok());
  EXPECT_FALSE(SplitBytesElements(std::string_view("\x01\0", 2)).ok());
}

TEST(TensorData, ViewKeepsItsOwnerAlive) {
  auto body = std::make_shared<const std::string>("headerPAYLOAD");
  TensorData view(body, std::string_view(*body).substr(6));
  std::weak_ptr<const std::string> weak = body;
  body.reset();
  ASSERT_FALSE(weak.expired());
  EXPECT_EQ(view.bytes(), "PAYLOAD");
  TensorData copy = view;
  view = TensorData();
  EXPECT_EQ(copy.bytes(), "PAYLOAD");
  copy = TensorData();
  EXPECT_TRUE(weak.expired());
}

TEST(TensorData, OwnedBytesSurviveMoves) {
  std::vector<float> v = {1.5f, -2.0f};
  Tensor t = MakeTensor("x", DataType::kFp32, {2}, v);
  Tensor moved = std::move(t);
  std::vector<Tensor> many(3, moved);
  ASSERT_EQ(many[2].data.size(), 8u);
  float back[2];
  std::memcpy(back, many[2].data.data(), 8);
  EXPECT_EQ(back[0], 1.5f);
  EXPECT_EQ(back[1], -2.0f);
  // Short strings live inside std::string; the view must still be right.
  TensorData small(std::string("ab"));
  TensorData copy = small;
  EXPECT_EQ(copy.bytes(), "ab");
}

TEST(Shape, Formats) {
  std::vector<int64_t> s = {2, -1, 3};
  EXPECT_EQ(FormatShape(s), "[2,-1,3]");
  EXPECT_EQ(FormatShape({}), "[]");
}

}  // namespace
}  // namespace lathe::serving
