#include "base/json.h"

#include <gtest/gtest.h>

#include <cmath>

namespace lathe {
namespace {

TEST(JsonWriter, WritesNestedValuesWithEscapes) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject()
      .Field("name", "a\"b\\c\n\x01")
      .Field("n", int64_t{-3})
      .Key("list")
      .BeginArray()
      .Int(1)
      .Double(0.5)
      .Double(std::nan(""))
      .Bool(true)
      .Null()
      .EndArray()
      .Key("empty")
      .BeginObject()
      .EndObject()
      .EndObject();
  EXPECT_EQ(out,
            R"({"name":"a\"b\\c\n\u0001","n":-3,"list":[1,0.5,null,true,null],"empty":{}})");
}

TEST(ParseJson, RoundTripsThroughTheTree) {
  auto v = ParseJson(R"({"a":[1,2.5,"x",true,null],"b":{"c":"d"}})");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Dump(), R"({"a":[1,2.5,"x",true,null],"b":{"c":"d"}})");
}

TEST(ParseJson, MalformedInputNamesTheByte) {
  auto v = ParseJson(R"({"a": 1,, "b": 2})");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("byte 8"), std::string::npos) << v.status().message();
  EXPECT_FALSE(ParseJson("").ok());
  EXPECT_FALSE(ParseJson("{\"a\":").ok());
  EXPECT_FALSE(ParseJson("[1] x").ok());
}

TEST(ParseJson, RejectsDuplicateKeysAndDeepNesting) {
  EXPECT_FALSE(ParseJson(R"({"a":1,"a":2})").ok());
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto v = ParseJson(deep);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("nesting"), std::string::npos);
}

TEST(ObjectReader, DecodesFieldsAndNamesTheBadOne) {
  auto v = ParseJson(R"({"name":"p","size":3,"tags":["a"],"labels":{"k":"v"},"spec":{"x":"1"}})");
  ASSERT_TRUE(v.ok());
  auto r = ObjectReader::Make(*v, "");
  ASSERT_TRUE(r.ok());
  std::string name;
  int64_t size = 0;
  std::vector<std::string> tags;
  std::map<std::string, std::string> labels;
  EXPECT_TRUE(r->String("name", &name, Presence::kRequired).ok());
  EXPECT_TRUE(r->Int("size", &size).ok());
  EXPECT_TRUE(r->StringList("tags", &tags).ok());
  EXPECT_TRUE(r->StringMap("labels", &labels).ok());
  EXPECT_EQ(name, "p");
  EXPECT_EQ(size, 3);
  EXPECT_EQ(tags.size(), 1u);
  EXPECT_EQ(labels["k"], "v");
  // "spec" was never asked for: unknown.
  Status unknown = r->Finish();
  EXPECT_EQ(unknown.field(), "spec");

  auto spec = r->Value("spec");
  ASSERT_TRUE(spec.ok());
  auto nested = ObjectReader::Make(**spec, "spec");
  ASSERT_TRUE(nested.ok());
  int64_t x = 0;
  Status wrong = nested->Int("x", &x);
  EXPECT_EQ(wrong.field(), "spec.x");
  EXPECT_EQ(wrong.message(), "spec.x: expected an integer, got a string");
  EXPECT_TRUE(r->Finish().ok());
}

TEST(ObjectReader, RequiredFieldMissing) {
  auto v = ParseJson(R"({})");
  auto r = ObjectReader::Make(*v, "");
  std::string name;
  Status s = r->String("name", &name, Presence::kRequired);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.field(), "name");
  EXPECT_FALSE(ObjectReader::Make(JsonValue::MakeInt(1), "").ok());
}

}  // namespace
}  // namespace lathe
