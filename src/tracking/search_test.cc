#include "tracking/search.h"

#include <gtest/gtest.h>

namespace lathe::tracking::search {
namespace {

TEST(SearchFilter, ParsesEveryEntityType) {
  auto f = ParseFilter(
      "metrics.auc > 0.9 and params.lr = '0.01' AND tags.team LIKE 'ad%' and "
      "attributes.status IN ('FINISHED', 'FAILED') and start_time >= 1700000000000");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->size(), 5u);
  EXPECT_EQ((*f)[0].type, EntityType::kMetric);
  EXPECT_EQ((*f)[0].key, "auc");
  EXPECT_EQ((*f)[0].op, Op::kGt);
  EXPECT_DOUBLE_EQ((*f)[0].number, 0.9);
  EXPECT_EQ((*f)[1].type, EntityType::kParam);
  EXPECT_EQ((*f)[1].text, "0.01");
  EXPECT_EQ((*f)[2].op, Op::kLike);
  EXPECT_EQ((*f)[3].type, EntityType::kAttribute);
  EXPECT_EQ((*f)[3].key, "status");
  EXPECT_EQ((*f)[3].list, (std::vector<std::string>{"FINISHED", "FAILED"}));
  EXPECT_EQ((*f)[4].key, "start_time");
  EXPECT_EQ((*f)[4].op, Op::kGe);
}

TEST(SearchFilter, QuotedKeysDottedKeysAndAliases) {
  auto f = ParseFilter("metrics.`val loss` <= -1e-3 and tags.mlflow.runName != \"x\" and "
                       "metric.\"a-b\" = 2 and param.p ILIKE 'A%' and run_name NOT IN ('a')");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)[0].key, "val loss");
  EXPECT_DOUBLE_EQ((*f)[0].number, -1e-3);
  EXPECT_EQ((*f)[1].key, "mlflow.runName");
  EXPECT_EQ((*f)[1].op, Op::kNe);
  EXPECT_EQ((*f)[2].key, "a-b");
  EXPECT_EQ((*f)[3].op, Op::kILike);
  EXPECT_EQ((*f)[4].op, Op::kNotIn);
}

TEST(SearchFilter, EmptyIsNoClauses) {
  EXPECT_TRUE(ParseFilter("")->empty());
  EXPECT_TRUE(ParseFilter("   ")->empty());
}

TEST(SearchFilter, StringsWithQuotesAndSpaces) {
  auto f = ParseFilter("tags.note = 'it''s a  test'");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)[0].text, "it's a  test");
}

void ExpectError(std::string_view filter, std::string_view fragment, std::string_view position = "") {
  auto f = ParseFilter(filter);
  ASSERT_FALSE(f.ok()) << filter;
  EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.status().field(), "filter");
  EXPECT_NE(f.status().message().find(fragment), std::string::npos)
      << filter << " -> " << f.status().message();
  EXPECT_NE(f.status().message().find(position), std::string::npos)
      << filter << " -> " << f.status().message();
}

TEST(SearchFilter, ErrorsNameThePosition) {
  ExpectError("metrics.auc 0.9", "expected an operator", "found '0.9' at position 13");
  ExpectError("metrics.auc > 0.9 or params.a = 'b'", "OR is not supported");
  ExpectError("metrics.auc > 'high'", "expected a number", "at position 15");
  ExpectError("params.lr > '1'", "operator > is not allowed");
  ExpectError("metrics.auc LIKE '1'", "operator LIKE is not allowed");
  ExpectError("params.lr IN ('1')", "operator IN is not allowed");
  ExpectError("foo.bar = 'x'", "unknown identifier type 'foo'", "at position 1");
  ExpectError("attributes.color = 'red'", "unknown attribute 'color'");
  ExpectError("params.lr = 'unterminated", "unterminated string at position 13");
  ExpectError("params.lr = '1' params.x = '2'", "expected AND or the end");
  ExpectError("status IN ('a' 'b')", "expected ',' or ')'");
  ExpectError("metrics. > 1", "expected a key");
  ExpectError("params.lr = '1' and", "expected an identifier, found the end");
  ExpectError("start_time > 'x'", "expected a number");
}

TEST(SearchOrderBy, Parses) {
  auto k = ParseOrderBy("metrics.loss DESC");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->type, EntityType::kMetric);
  EXPECT_FALSE(k->ascending);
  k = ParseOrderBy("attributes.start_time");
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(k->ascending);
  EXPECT_EQ(k->key, "start_time");
  k = ParseOrderBy("params.`my param` asc");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->key, "my param");
  auto bad = ParseOrderBy("metrics.loss DOWN");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().field(), "order_by");
  EXPECT_NE(bad.status().message().find("position 14"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace lathe::tracking::search
