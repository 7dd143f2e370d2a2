#include "api/tracking_codec.h"

#include <cmath>

#include <gtest/gtest.h>

namespace lathe::api {
namespace {

TEST(DecodeLogBody, NativeBodyWithDefaultsAndSpecialValues) {
  auto b = DecodeLogBody(
      R"({"metrics":[{"key":"loss","value":0.5,"step":3,"timestamp":7},)"
      R"({"key":"x","value":"NaN"},{"key":"y","value":"-Infinity","step":"4"}],)"
      R"("params":{"lr":"0.1"},"tags":{"team":"ads"}})",
      LogBodyFormat::kNative, 1000);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(b->metrics.size(), 3u);
  EXPECT_EQ(b->metrics[0].key, "loss");
  EXPECT_EQ(b->metrics[0].step, 3);
  EXPECT_EQ(b->metrics[0].timestamp, 7);
  EXPECT_TRUE(std::isnan(b->metrics[1].value));
  EXPECT_EQ(b->metrics[1].timestamp, 1000);
  EXPECT_EQ(b->metrics[1].step, 0);
  EXPECT_TRUE(std::isinf(b->metrics[2].value) && b->metrics[2].value < 0);
  EXPECT_EQ(b->metrics[2].step, 4);
  EXPECT_EQ(b->params, (std::vector<tracking::Param>{{"lr", "0.1"}}));
  EXPECT_EQ(b->tags, (std::vector<tracking::Tag>{{"team", "ads"}}));
}

TEST(DecodeLogBody, NativeRejectsUnknownFieldsAndNamesTheBadOne) {
  auto unknown = DecodeLogBody(R"({"metric":[]})", LogBodyFormat::kNative, 0);
  EXPECT_EQ(unknown.status().field(), "metric");
  auto bad = DecodeLogBody(R"({"metrics":[{"key":"a","value":1},{"key":"b","value":"x"}]})",
                           LogBodyFormat::kNative, 0);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().field(), "metrics[1].value");
  auto missing = DecodeLogBody(R"({"metrics":[{"value":1}]})", LogBodyFormat::kNative, 0);
  EXPECT_EQ(missing.status().field(), "metrics[0].key");
  auto malformed = DecodeLogBody(R"({"metrics":[)", LogBodyFormat::kNative, 0);
  EXPECT_EQ(malformed.status().code(), StatusCode::kInvalidArgument);
}

TEST(DecodeLogBody, MlflowBatchIgnoresUnknownFieldsAndTakesRunUuid) {
  auto b = DecodeLogBody(
      R"({"run_uuid":"abc","metrics":[{"key":"m","value":1,"timestamp":5,"step":0,)"
      R"("run_id":"abc","model_id":null}],"params":[{"key":"p","value":"1"}],)"
      R"("tags":[{"key":"t","value":"v"}],"extra":1})",
      LogBodyFormat::kMlflowBatch, 0);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->run_id, "abc");
  ASSERT_EQ(b->metrics.size(), 1u);
  EXPECT_EQ(b->metrics[0].timestamp, 5);
  EXPECT_EQ(b->params, (std::vector<tracking::Param>{{"p", "1"}}));
  EXPECT_EQ(b->tags, (std::vector<tracking::Tag>{{"t", "v"}}));
}

TEST(DecodeLogBody, MlflowMetricAcceptsABodyThatIsAJsonString) {
  auto b = DecodeLogBody(
      R"("{\"run_id\":\"r1\",\"key\":\"x\",\"value\":\"Infinity\",\"timestamp\":\"9\"}")",
      LogBodyFormat::kMlflowMetric, 0);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->run_id, "r1");
  ASSERT_EQ(b->metrics.size(), 1u);
  EXPECT_TRUE(std::isinf(b->metrics[0].value));
  EXPECT_EQ(b->metrics[0].timestamp, 9);
  auto no_value = DecodeLogBody(R"({"run_id":"r1","key":"x"})", LogBodyFormat::kMlflowMetric, 0);
  EXPECT_EQ(no_value.status().field(), "value");
}

TEST(ParseRfc3339Millis, UtcAndOffsets) {
  EXPECT_EQ(*ParseRfc3339Millis("1970-01-01T00:00:01.250Z", "t"), 1250);
  EXPECT_EQ(*ParseRfc3339Millis("1970-01-01T01:00:00+01:00", "t"), 0);
  EXPECT_EQ(*ParseRfc3339Millis("2026-11-23T01:07:22Z", "t"), 1795396042000);
  EXPECT_EQ(ParseRfc3339Millis("yesterday", "t").status().field(), "t");
}

TEST(WriteMetricValue, SpecialValuesAreStrings) {
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  WriteMetricValue(w, std::nan(""));
  WriteMetricValue(w, INFINITY);
  WriteMetricValue(w, -INFINITY);
  WriteMetricValue(w, 0.5);
  w.EndArray();
  EXPECT_EQ(out, R"(["NaN","Infinity","-Infinity",0.5])");
}

}  // namespace
}  // namespace lathe::api
