#include "cli/output.h"

#include <gtest/gtest.h>

#include <sstream>

#include "cli/commands.h"

namespace lathe::cli {
namespace {

TEST(Output, TableAlignsColumns) {
  auto a = ParseJson(R"({"name":"ads","role":"admin","ok":true})");
  auto b = ParseJson(R"({"name":"search-ranking","role":null,"ok":false})");
  std::ostringstream out;
  PrintList(out, OutputFormat::kTable, {*a, *b}, {{"NAME", "name"}, {"ROLE", "role"}, {"OK", "ok"}});
  EXPECT_EQ(out.str(),
            "NAME             ROLE    OK\n"
            "ads              admin   yes\n"
            "search-ranking   -       no\n");
}

TEST(Output, JsonAndYamlWrapListsInItems) {
  auto a = ParseJson(R"({"name":"ads","n":"1"})");
  std::ostringstream json, yaml;
  PrintList(json, OutputFormat::kJson, {*a}, {});
  EXPECT_EQ(json.str(), "{\"items\":[{\"name\":\"ads\",\"n\":\"1\"}]}\n");
  PrintList(yaml, OutputFormat::kYaml, {*a}, {});
  EXPECT_EQ(yaml.str(), "items:\n  - name: ads\n    n: \"1\"\n");
  EXPECT_FALSE(ParseOutputFormat("xml").ok());
}

TEST(Output, DurationsParse) {
  EXPECT_EQ(*ParseDurationSeconds("90d"), 90 * 86400);
  EXPECT_EQ(*ParseDurationSeconds("12h"), 12 * 3600);
  EXPECT_EQ(*ParseDurationSeconds("45"), 45);
  EXPECT_FALSE(ParseDurationSeconds("soon").ok());
  EXPECT_FALSE(ParseDurationSeconds("5y").ok());
  EXPECT_FALSE(ParseDurationSeconds("-1h").ok());
}

}  // namespace
}  // namespace lathe::cli
