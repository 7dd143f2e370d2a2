#include "serving/repository.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace lathe::serving {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kConfig = R"(
backend: xgboost
inputs: [{name: x, datatype: FP32, dims: [4]}]
outputs: [{name: y, datatype: FP32, dims: [1]}]
)";

std::vector<DirEntry> Dirs(std::initializer_list<const char*> names) {
  std::vector<DirEntry> out;
  for (const char* n : names) out.push_back({n, true});
  return out;
}

TEST(Repository, VersionDirectoryNames) {
  EXPECT_EQ(ParseVersionDir("1"), 1);
  EXPECT_EQ(ParseVersionDir("17"), 17);
  EXPECT_EQ(ParseVersionDir("9223372036854775807"), INT64_MAX);
  EXPECT_FALSE(ParseVersionDir("9223372036854775808"));  // over int64
  EXPECT_FALSE(ParseVersionDir("99999999999999999999"));
  EXPECT_FALSE(ParseVersionDir("0"));
  EXPECT_FALSE(ParseVersionDir("01"));
  EXPECT_FALSE(ParseVersionDir("007"));
  EXPECT_FALSE(ParseVersionDir("v2"));
  EXPECT_FALSE(ParseVersionDir("2a"));
  EXPECT_FALSE(ParseVersionDir("-1"));
  EXPECT_FALSE(ParseVersionDir("+1"));
  EXPECT_FALSE(ParseVersionDir(""));
  EXPECT_FALSE(ParseVersionDir(" 1"));
}

TEST(Repository, VersionsInListingIgnoreFilesAndOddNames) {
  std::vector<DirEntry> listing = Dirs({"3", "10", "01", "0", "v4", ".git", "2"});
  listing.push_back({"config.yaml", false});
  listing.push_back({"5", false});  // a file named like a version
  EXPECT_THAT(VersionsInListing(listing), ElementsAre(2, 3, 10));
}

TEST(Repository, SelectVersionsByPolicy) {
  const std::vector<int64_t> available = {1, 2, 5, 9};
  VersionPolicy latest;
  EXPECT_THAT(SelectVersions(latest, available).versions, ElementsAre(9));
  latest.latest = 3;
  EXPECT_THAT(SelectVersions(latest, available).versions, ElementsAre(2, 5, 9));
  latest.latest = 100;
  EXPECT_THAT(SelectVersions(latest, available).versions, ElementsAre(1, 2, 5, 9));
  VersionPolicy all{.kind = VersionPolicy::Kind::kAll};
  EXPECT_THAT(SelectVersions(all, available).versions, ElementsAre(1, 2, 5, 9));
  VersionPolicy specific{.kind = VersionPolicy::Kind::kSpecific, .specific = {2, 3, 9}};
  VersionSelection s = SelectVersions(specific, available);
  EXPECT_THAT(s.versions, ElementsAre(2, 9));
  EXPECT_THAT(s.missing, ElementsAre(3));
  EXPECT_TRUE(SelectVersions(latest, {}).versions.empty());
}

TEST(Repository, ResolvesAModel) {
  ModelEntry m = ResolveModel("fraud", "/r/fraud", Dirs({"1", "2", "3"}),
                              std::string(kConfig) +
                                  "version_policy: {latest: 2}\n"
                                  "labels: {stable: 2, canary: 3}\n");
  ASSERT_TRUE(m.status.ok()) << m.status.ToString();
  EXPECT_EQ(m.config.name, "fraud");
  EXPECT_THAT(m.available, ElementsAre(1, 2, 3));
  EXPECT_THAT(m.versions, ElementsAre(2, 3));
  EXPECT_TRUE(m.warnings.empty());
}

TEST(Repository, ReportsWhatIsWrongWithAModel) {
  ModelEntry m = ResolveModel("fraud", "/r/fraud", Dirs({"1"}), std::nullopt);
  EXPECT_EQ(m.status.code(), StatusCode::kNotFound);
  EXPECT_THAT(m.status.message(), HasSubstr("/r/fraud/config.yaml: missing"));

  m = ResolveModel("fraud", "/r/fraud", Dirs({"1"}),
                   "backend: xgboost\ninputs: [{name: x, datatype: FP32, dims: [0]}]\n"
                   "outputs: [{name: y, datatype: FP32, dims: [1]}]\n");
  EXPECT_EQ(m.status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m.status.field(), "inputs[0].dims[0]");
  EXPECT_THAT(m.status.message(), HasSubstr("/r/fraud/config.yaml: inputs[0].dims[0]: "));

  m = ResolveModel("fraud", "/r/fraud", Dirs({"v1", "01"}), std::string(kConfig));
  EXPECT_EQ(m.status.code(), StatusCode::kNotFound);
  EXPECT_THAT(m.status.message(), HasSubstr("no version directories"));

  m = ResolveModel("fraud", "/r/fraud", Dirs({"1", "2"}),
                   std::string(kConfig) + "version_policy: {specific: [3, 4]}\n");
  EXPECT_EQ(m.status.code(), StatusCode::kNotFound);
  EXPECT_THAT(m.status.message(), HasSubstr("selects none of the versions present (1, 2)"));

  m = ResolveModel("fraud", "/r/fraud", Dirs({"1", "2"}),
                   std::string(kConfig) + "labels: {stable: 1}\n");
  EXPECT_EQ(m.status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(m.status.field(), "labels.stable");
  EXPECT_THAT(m.status.message(),
              HasSubstr("version 1 is not loaded (the version policy loads 2)"));

  m = ResolveModel("fraud", "/r/fraud", Dirs({"1", "2"}),
                   std::string(kConfig) + "canary: {version: 1, weight: 5}\n");
  EXPECT_EQ(m.status.field(), "canary.version");

  m = ResolveModel("bad name", "/r/bad name", Dirs({"1"}), std::string(kConfig));
  EXPECT_EQ(m.status.code(), StatusCode::kInvalidArgument);
}

TEST(Repository, WarnsAboutSpecificVersionsThatAreAbsent) {
  ModelEntry m = ResolveModel("fraud", "/r/fraud", Dirs({"1", "2"}),
                              std::string(kConfig) + "version_policy: {specific: [2, 7]}\n");
  ASSERT_TRUE(m.status.ok()) << m.status.ToString();
  EXPECT_THAT(m.versions, ElementsAre(2));
  ASSERT_EQ(m.warnings.size(), 1u);
  EXPECT_THAT(m.warnings[0], HasSubstr("7"));
}

TEST(Repository, ControlModes) {
  EXPECT_EQ(*ParseModelControlMode("poll"), ModelControlMode::kPoll);
  EXPECT_EQ(*ParseModelControlMode("explicit"), ModelControlMode::kExplicit);
  EXPECT_EQ(*ParseModelControlMode("none"), ModelControlMode::kNone);
  EXPECT_EQ(ModelControlModeName(ModelControlMode::kPoll), "poll");
  EXPECT_THAT(ParseModelControlMode("Poll").status().message(),
              HasSubstr("none, poll or explicit"));
}

class ScanRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lathe-repo-test-XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text) {
    fs::path p = fs::path(root_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void Mkdir(const std::string& rel) { fs::create_directories(fs::path(root_) / rel); }
  std::string root_;
};

TEST_F(ScanRepositoryTest, OneBadModelDoesNotHideTheOthers) {
  Write("good/config.yaml", kConfig);
  Mkdir("good/1");
  Mkdir("good/2");
  Write("good/2/model.json", "{}");
  Write("good/notes.txt", "x");
  Write("broken/config.yaml", "backend: onnx\n");
  Mkdir("broken/1");
  Mkdir("noconfig/1");
  Mkdir(".cache/1");
  Mkdir("bad name/1");
  Write("README.md", "not a model");
  // A linked model directory counts.
  Mkdir("elsewhere/linked/1");
  Write("elsewhere/linked/config.yaml", kConfig);
  fs::create_directory_symlink(fs::path(root_) / "elsewhere/linked", fs::path(root_) / "linked");

  StatusOr<RepositoryScan> scan = ScanRepository(root_);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  std::map<std::string, const ModelEntry*> by_name;
  for (const ModelEntry& m : scan->models) by_name[m.name] = &m;
  ASSERT_TRUE(by_name.count("good"));
  EXPECT_TRUE(by_name["good"]->status.ok()) << by_name["good"]->status.ToString();
  EXPECT_THAT(by_name["good"]->versions, ElementsAre(2));
  ASSERT_TRUE(by_name.count("broken"));
  EXPECT_EQ(by_name["broken"]->status.field(), "backend");
  ASSERT_TRUE(by_name.count("noconfig"));
  EXPECT_EQ(by_name["noconfig"]->status.code(), StatusCode::kNotFound);
  ASSERT_TRUE(by_name.count("linked"));
  EXPECT_TRUE(by_name["linked"]->status.ok());
  EXPECT_FALSE(by_name.count(".cache"));
  EXPECT_FALSE(by_name.count("README.md"));
  EXPECT_FALSE(by_name.count("bad name"));
  ASSERT_EQ(scan->warnings.size(), 1u);
  EXPECT_THAT(scan->warnings[0], HasSubstr("bad name"));
  // "elsewhere" is a directory without a config: reported, not fatal.
  ASSERT_TRUE(by_name.count("elsewhere"));
  EXPECT_FALSE(by_name["elsewhere"]->status.ok());
}

TEST_F(ScanRepositoryTest, OversizedConfigIsRejectedUnread) {
  Write("big/config.yaml", std::string(kMaxConfigBytes + 1, '#'));
  Mkdir("big/1");
  StatusOr<RepositoryScan> scan = ScanRepository(root_);
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->models.size(), 1u);
  EXPECT_THAT(scan->models[0].status.message(), HasSubstr("over the"));
}

TEST_F(ScanRepositoryTest, MissingRootIsAnError) {
  EXPECT_FALSE(ScanRepository(root_ + "/nope").ok());
}

}  // namespace
}  // namespace lathe::serving
