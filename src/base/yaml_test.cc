#include "base/yaml.h"

#include <gtest/gtest.h>

namespace lathe {
namespace {

TEST(ParseYaml, TypesScalarsLikeTheCoreSchema) {
  auto v = ParseYaml("a: 1\nb: 2.5\nc: true\nd: ~\ne: '7'\nf: hello\ng: [x, 3]\nh: -4e2\n");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->Dump(), R"({"a":1,"b":2.5,"c":true,"d":null,"e":"7","f":"hello","g":["x",3],"h":-400})");
}

TEST(ParseYaml, EmptyDocumentIsAnEmptyObject) {
  auto v = ParseYaml("");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->is_object());
}

TEST(ParseYaml, MalformedNamesTheLine) {
  auto v = ParseYaml("a: 1\nb: [1, 2\n");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("line"), std::string::npos) << v.status().message();
  EXPECT_FALSE(ParseYaml("a: 1\na: 2\n").ok());
}

TEST(YamlTest, RejectsBytesThatAreNotUtf8WithTheirPlace) {
  auto v = ParseYaml("name: ok\nexperiment: breast-c\xe9ncer\n");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("line 2, column 21"), std::string::npos)
      << v.status().message();
  EXPECT_NE(v.status().message().find("0xe9"), std::string::npos) << v.status().message();
  EXPECT_TRUE(ParseYaml("name: caf\xc3\xa9\n").ok());
}

}  // namespace
}  // namespace lathe
