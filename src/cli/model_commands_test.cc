#include "cli/model_commands.h"

#include <gtest/gtest.h>

#include "cli/output.h"

namespace lathe::cli {
namespace {

JsonValue Parse(std::string_view text) {
  auto v = ParseJson(text);
  EXPECT_TRUE(v.ok()) << v.status().message();
  return v.ok() ? *v : JsonValue();
}

TEST(ParseModelVersion, AcceptsOnlyPositiveIntegers) {
  EXPECT_EQ(*ParseModelVersion("1"), 1);
  EXPECT_EQ(*ParseModelVersion("42"), 42);
  for (const char* bad : {"", "0", "-1", "v3", "3.0", "1e3", " 3", "99999999999999999999"}) {
    auto v = ParseModelVersion(bad);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(v.status().field(), "version");
  }
  EXPECT_EQ(ParseModelVersion("x", "VERSION").status().field(), "VERSION");
}

TEST(AliasesText, JoinsAVersionsListAndAModelsMapSorted) {
  JsonValue list = Parse(R"(["prod", "champion"])");
  EXPECT_EQ(AliasesText(&list), "champion,prod");
  JsonValue map = Parse(R"({"prod": 2, "champion": 3})");
  EXPECT_EQ(AliasesText(&map), "champion=3,prod=2");
  JsonValue empty = Parse("[]");
  EXPECT_EQ(AliasesText(&empty), "-");
  EXPECT_EQ(AliasesText(nullptr), "-");
}

TEST(VersionRow, KeepsTheColumnsOfTheVersionsTable) {
  JsonValue v = Parse(R"({"name": "m", "version": 3, "stage": "Production",
                          "aliases": ["champion"], "status": "READY", "run_id": "abc",
                          "source": "mlflow-artifacts:/1/abc/artifacts/model",
                          "created_at": "2026-01-02T03:04:05.000Z", "tags": {}})");
  JsonValue row = VersionRow(v);
  EXPECT_EQ(CellText(row, "version"), "3");
  EXPECT_EQ(CellText(row, "stage"), "Production");
  EXPECT_EQ(CellText(row, "aliases"), "champion");
  EXPECT_EQ(CellText(row, "run_id"), "abc");
  EXPECT_EQ(CellText(row, "source"), "mlflow-artifacts:/1/abc/artifacts/model");
  EXPECT_EQ(row.Find("tags"), nullptr);
  // A version not linked to a run prints "-".
  JsonValue bare = VersionRow(Parse(R"({"version": 1, "run_id": null})"));
  EXPECT_EQ(CellText(bare, "run_id"), "-");
  EXPECT_EQ(CellText(bare, "aliases"), "-");
}

TEST(LineageRows, FixedOrderWithUnknownValuesAsDashes) {
  JsonValue lineage = Parse(R"({"run_id": "r1", "run_name": "train", "job_id": null,
                                "code_digest": "sha256:ab"})");
  std::vector<JsonValue> rows = LineageRows(&lineage);
  ASSERT_EQ(rows.size(), 10u);
  EXPECT_EQ(CellText(rows[0], "key"), "run_id");
  EXPECT_EQ(CellText(rows[0], "value"), "r1");
  EXPECT_EQ(CellText(rows[1], "value"), "train");
  EXPECT_EQ(CellText(rows[5], "key"), "job_id");
  EXPECT_EQ(CellText(rows[5], "value"), "-");
  EXPECT_EQ(CellText(rows[9], "key"), "code_digest");
  EXPECT_EQ(CellText(rows[9], "value"), "sha256:ab");
  JsonValue null_lineage;
  EXPECT_TRUE(LineageRows(&null_lineage).empty());
  EXPECT_TRUE(LineageRows(nullptr).empty());
}

TEST(ParseRunsUri, SplitsRunIdAndPath) {
  auto u = ParseRunsUri("runs:/0123abcd/model");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->run_id, "0123abcd");
  EXPECT_EQ(u->path, "model");
  u = ParseRunsUri("runs:/r1/a/b/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->path, "a/b");
  u = ParseRunsUri("runs:/r1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->run_id, "r1");
  EXPECT_EQ(u->path, "");
  u = ParseRunsUri("runs:///r1/m");  // MLflow tolerates extra slashes
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->run_id, "r1");
  for (const char* bad : {"runs:/", "runs://", "s3://b/k", "runs"}) {
    auto v = ParseRunsUri(bad);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.status().field(), "source");
  }
  EXPECT_TRUE(IsRunsUri("runs:/x/y"));
  EXPECT_FALSE(IsRunsUri("mlflow-artifacts:/1/x/artifacts"));
}

TEST(JoinArtifactUri, OneSlashBetween) {
  EXPECT_EQ(JoinArtifactUri("mlflow-artifacts:/1/r/artifacts", "model"),
            "mlflow-artifacts:/1/r/artifacts/model");
  EXPECT_EQ(JoinArtifactUri("mlflow-artifacts:/1/r/artifacts/", "/model"),
            "mlflow-artifacts:/1/r/artifacts/model");
  EXPECT_EQ(JoinArtifactUri("mlflow-artifacts:/1/r/artifacts", ""),
            "mlflow-artifacts:/1/r/artifacts");
}

}  // namespace
}  // namespace lathe::cli
