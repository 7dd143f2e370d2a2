#include "tracking/artifacts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace lathe::tracking {
namespace {

namespace fs = std::filesystem;

const ArtifactRun kRun{"7", "0123456789abcdef0123456789abcdef"};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

class ArtifactStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lathe-artifacts-XXXXXX";
    dir_ = mkdtemp(tmpl);
    outside_ = dir_ + "/outside";
    fs::create_directories(outside_);
    store_ = std::make_unique<ArtifactStore>(ArtifactOptions{.root = dir_ + "/root"});
    ASSERT_TRUE(store_->Init().ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A file in the spool directory holding `content`, as the HTTP server
  // leaves an upload body.
  std::string Spool(const std::string& content) {
    std::string path = store_->spool_dir() + "/body-" + std::to_string(next_++);
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  Status Put(const std::string& path, const std::string& content) {
    return store_->Put(kRun, path, Spool(content));
  }
  // Where the run's artifacts live on disk.
  std::string RunDir() const { return dir_ + "/root/7/" + kRun.run_id + "/artifacts"; }

  std::string dir_, outside_;
  std::unique_ptr<ArtifactStore> store_;
  int next_ = 0;
};

// ---- CleanPath

TEST(ArtifactCleanPath, AcceptsRelativePathsAndDropsOneTrailingSlash) {
  EXPECT_EQ(*ArtifactStore::CleanPath("a.txt", "path"), "a.txt");
  EXPECT_EQ(*ArtifactStore::CleanPath("model/MLmodel", "path"), "model/MLmodel");
  EXPECT_EQ(*ArtifactStore::CleanPath("dir/", "path"), "dir");
  EXPECT_EQ(*ArtifactStore::CleanPath("a/.hidden/..x/x..", "path"), "a/.hidden/..x/x..");
  EXPECT_EQ(*ArtifactStore::CleanPath("100%/%2e%2e", "path"), "100%/%2e%2e");  // literal '%'
  EXPECT_EQ(*ArtifactStore::CleanPath("caf\xc3\xa9 \xe2\x9c\x93.txt", "path"),
            "caf\xc3\xa9 \xe2\x9c\x93.txt");
  EXPECT_EQ(*ArtifactStore::CleanPath("", "path", /*allow_empty=*/true), "");
  EXPECT_EQ(*ArtifactStore::CleanPath("/", "path", /*allow_empty=*/true), "");
}

TEST(ArtifactCleanPath, RefusesTraversalAbsoluteEmptyAndOddBytes) {
  const std::string overlong(1025, 'a');
  const std::string long_segment(256, 'b');
  for (std::string bad : {std::string(".."),
                          std::string("../x"),
                          std::string("a/../b"),
                          std::string("a/.."),
                          std::string("/abs"),
                          std::string("/etc/passwd"),
                          std::string("a//b"),
                          std::string("."),
                          std::string("./a"),
                          std::string("a/./b"),
                          std::string("a\\b"),
                          std::string("..\\x"),
                          std::string("a\0b", 3),
                          std::string("a\nb"),
                          std::string("a\x7f"),
                          std::string("a\x1b[31m"),
                          std::string(""),
                          std::string("//"),
                          std::string("a//"),
                          overlong,
                          long_segment,
                          std::string("bad\xff.txt"),
                          std::string("\xc0\xae\xc0\xae/x") /* overlong UTF-8 ".." */}) {
    auto r = ArtifactStore::CleanPath(bad, "path");
    EXPECT_FALSE(r.ok()) << "accepted \"" << bad << "\"";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      EXPECT_EQ(r.status().field(), "path");
    }
  }
  EXPECT_FALSE(ArtifactStore::CleanPath("", "path").ok());
  EXPECT_TRUE(ArtifactStore::CleanPath(std::string(1024, 'a').substr(0, 200), "path").ok());
  EXPECT_FALSE(ArtifactStore::CleanPath("abcdef", "path", false, 5).ok());
}

TEST(ArtifactCleanPath, MessageNamesFieldAndReason) {
  auto r = ArtifactStore::CleanPath("a/../b", "artifact_path");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().field(), "artifact_path");
  EXPECT_NE(r.status().message().find("\"..\""), std::string::npos) << r.status().message();
  auto c = ArtifactStore::CleanPath(std::string("a\0b", 3), "path");
  EXPECT_NE(c.status().message().find("\\x00"), std::string::npos) << c.status().message();
}

// ---- Put, ResolveFile, List, Delete

TEST_F(ArtifactStoreTest, PutResolveListDelete) {
  ASSERT_TRUE(Put("notes/hello.txt", "hello").ok());
  ASSERT_TRUE(Put("model/MLmodel", "flavors: {}\n").ok());
  ASSERT_TRUE(Put("model/data/weights.bin", std::string(1000, 'w')).ok());
  ASSERT_TRUE(Put("top.json", "{}").ok());

  auto file = store_->ResolveFile(kRun, "notes/hello.txt");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(*file, RunDir() + "/notes/hello.txt");
  EXPECT_EQ(ReadAll(*file), "hello");

  auto root = store_->List(kRun, "");
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  ASSERT_EQ(root->size(), 3u);
  EXPECT_EQ((*root)[0].path, "model");
  EXPECT_TRUE((*root)[0].is_dir);
  EXPECT_EQ((*root)[1].path, "notes");
  EXPECT_EQ((*root)[2].path, "top.json");
  EXPECT_FALSE((*root)[2].is_dir);
  EXPECT_EQ((*root)[2].file_size, 2u);

  auto model = store_->List(kRun, "model/");
  ASSERT_TRUE(model.ok());
  ASSERT_EQ(model->size(), 2u);
  EXPECT_EQ((*model)[0].path, "model/MLmodel");
  EXPECT_EQ((*model)[1].path, "model/data");
  EXPECT_TRUE((*model)[1].is_dir);
  auto data = store_->List(kRun, "model/data");
  ASSERT_EQ(data->size(), 1u);
  EXPECT_EQ((*data)[0].path, "model/data/weights.bin");
  EXPECT_EQ((*data)[0].file_size, 1000u);

  // A file, an absent directory and an absent run list empty, as MLflow does.
  EXPECT_TRUE(store_->List(kRun, "top.json")->empty());
  EXPECT_TRUE(store_->List(kRun, "nope/deeper")->empty());
  EXPECT_TRUE(store_->List(kRun, "top.json/x")->empty());
  EXPECT_TRUE(store_->List({"7", "ffffffffffffffffffffffffffffffff"}, "")->empty());

  // A directory is not a file; an absent file is NOT_FOUND.
  EXPECT_EQ(store_->ResolveFile(kRun, "model").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ResolveFile(kRun, "absent.txt").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ResolveFile(kRun, "top.json/x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ResolveFile(kRun, "../x").status().code(), StatusCode::kInvalidArgument);

  ASSERT_TRUE(store_->Delete(kRun, "notes/hello.txt").ok());
  EXPECT_EQ(store_->ResolveFile(kRun, "notes/hello.txt").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->List(kRun, "notes")->empty());
  ASSERT_TRUE(store_->Delete(kRun, "model").ok());  // a directory with everything under it
  EXPECT_FALSE(fs::exists(RunDir() + "/model"));
  EXPECT_EQ(store_->Delete(kRun, "model").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Delete(kRun, "a/../b").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->Delete(kRun, "").ok());  // all of the run's artifacts
  EXPECT_FALSE(fs::exists(RunDir()));
  EXPECT_TRUE(store_->List(kRun, "")->empty());
}

TEST_F(ArtifactStoreTest, PutConsumesTheSpooledFileAndPutBytesWorksFromMemory) {
  std::string spooled = Spool("body");
  ASSERT_TRUE(store_->Put(kRun, "a.txt", spooled).ok());
  EXPECT_FALSE(fs::exists(spooled));
  ASSERT_TRUE(store_->PutBytes(kRun, "dir/b.txt", "small").ok());
  EXPECT_EQ(ReadAll(*store_->ResolveFile(kRun, "dir/b.txt")), "small");
  ASSERT_TRUE(store_->PutBytes(kRun, "empty", "").ok());
  EXPECT_EQ((*store_->List(kRun, ""))[1].file_size, 0u);
  // Nothing is left in the spool directory, also after a refused PutBytes.
  EXPECT_FALSE(store_->PutBytes(kRun, "../x", "no").ok());
  EXPECT_TRUE(fs::is_empty(store_->spool_dir()));
}

TEST_F(ArtifactStoreTest, ReplaceIsAtomic) {
  ASSERT_TRUE(Put("f.bin", std::string(1 << 20, 'o')).ok());
  const std::string path = *store_->ResolveFile(kRun, "f.bin");
  // A reader that opened the old file keeps reading the old bytes whole.
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  struct stat before;
  ASSERT_EQ(::fstat(fd, &before), 0);
  ASSERT_TRUE(Put("f.bin", std::string(1 << 20, 'n')).ok());
  std::string old(1 << 20, '\0');
  ASSERT_EQ(::pread(fd, old.data(), old.size(), 0), static_cast<ssize_t>(old.size()));
  ::close(fd);
  EXPECT_EQ(old, std::string(1 << 20, 'o'));
  // Readers opening now see the new file; the inode changed (rename, not an
  // overwrite in place).
  EXPECT_EQ(ReadAll(path), std::string(1 << 20, 'n'));
  struct stat after;
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino);
  EXPECT_EQ(store_->List(kRun, "")->size(), 1u);
}

TEST_F(ArtifactStoreTest, ParentThatIsAFileAndTargetThatIsADirectory) {
  ASSERT_TRUE(Put("a", "file").ok());
  Status st = Put("a/b.txt", "x");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("\"a\" is a file"), std::string::npos) << st.message();
  ASSERT_TRUE(Put("d/x", "x").ok());
  st = Put("d", "over a directory");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_EQ(ReadAll(RunDir() + "/d/x"), "x");
}

TEST_F(ArtifactStoreTest, OverTheSizeLimitIsRefused) {
  ArtifactStore small(ArtifactOptions{.root = dir_ + "/root", .max_file_bytes = 4});
  ASSERT_TRUE(small.Init().ok());
  EXPECT_EQ(small.PutBytes(kRun, "big", "12345").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(small.PutBytes(kRun, "ok", "1234").ok());
  EXPECT_FALSE(fs::exists(RunDir() + "/big"));
}

TEST_F(ArtifactStoreTest, SymlinkToADirectoryOutsideIsNeverFollowed) {
  ASSERT_TRUE(Put("keep.txt", "k").ok());
  std::ofstream(outside_ + "/secret.txt") << "secret";
  fs::create_directory_symlink(outside_, RunDir() + "/escape");

  Status st = Put("escape/planted.txt", "x");
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  st = Put("escape/deeper/planted.txt", "x");
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_FALSE(fs::exists(outside_ + "/planted.txt"));
  EXPECT_FALSE(fs::exists(outside_ + "/deeper"));

  EXPECT_EQ(store_->ResolveFile(kRun, "escape/secret.txt").status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->List(kRun, "escape").status().code(), StatusCode::kFailedPrecondition);
  // Not listed.
  auto root = store_->List(kRun, "");
  ASSERT_EQ(root->size(), 1u);
  EXPECT_EQ((*root)[0].path, "keep.txt");

  // Deleting through it is refused; deleting the link removes the link only.
  EXPECT_EQ(store_->Delete(kRun, "escape/secret.txt").code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->Delete(kRun, "escape").ok());
  EXPECT_FALSE(fs::is_symlink(RunDir() + "/escape"));
  EXPECT_EQ(ReadAll(outside_ + "/secret.txt"), "secret");
}

TEST_F(ArtifactStoreTest, SymlinkAsTheFinalFileIsRefused) {
  ASSERT_TRUE(Put("dir/real.txt", "r").ok());
  std::ofstream(outside_ + "/secret.txt") << "secret";
  fs::create_symlink(outside_ + "/secret.txt", RunDir() + "/dir/link.txt");

  EXPECT_EQ(store_->ResolveFile(kRun, "dir/link.txt").status().code(),
            StatusCode::kFailedPrecondition);
  Status st = Put("dir/link.txt", "overwrite");
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_EQ(ReadAll(outside_ + "/secret.txt"), "secret");
  auto list = store_->List(kRun, "dir");
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].path, "dir/real.txt");
}

TEST_F(ArtifactStoreTest, SymlinkedRunDirectoryAndDeleteOfATreeWithLinks) {
  // The run's own directory replaced by a link: nothing goes through it.
  const ArtifactRun other{"8", "fedcba9876543210fedcba9876543210"};
  fs::create_directories(dir_ + "/root/8");
  fs::create_directory_symlink(outside_, dir_ + "/root/8/" + other.run_id);
  EXPECT_EQ(store_->PutBytes(other, "x.txt", "x").code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(outside_ + "/artifacts"));
  EXPECT_EQ(store_->List(other, "").status().code(), StatusCode::kFailedPrecondition);

  // Deleting a directory that holds a link unlinks the link, not its target.
  ASSERT_TRUE(Put("tree/a/b.txt", "b").ok());
  std::ofstream(outside_ + "/victim.txt") << "v";
  fs::create_directory_symlink(outside_, RunDir() + "/tree/a/out");
  ASSERT_TRUE(store_->Delete(kRun, "tree").ok());
  EXPECT_FALSE(fs::exists(RunDir() + "/tree"));
  EXPECT_EQ(ReadAll(outside_ + "/victim.txt"), "v");
}

TEST_F(ArtifactStoreTest, OddEntriesOnDiskAreNotListed) {
  ASSERT_TRUE(Put("ok.txt", "ok").ok());
  std::ofstream(RunDir() + "/bad\x01name") << "x";
  ASSERT_EQ(::mkfifo((RunDir() + "/fifo").c_str(), 0600), 0);
  auto list = store_->List(kRun, "");
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].path, "ok.txt");
  EXPECT_EQ(store_->ResolveFile(kRun, "fifo").status().code(), StatusCode::kNotFound);
}

TEST_F(ArtifactStoreTest, InitMakesTheRootAbsoluteAndRemovesStaleSpoolFiles) {
  const std::string stale = store_->spool_dir() + "/stale";
  std::ofstream(stale) << "x";
  struct timespec times[2] = {{1, 0}, {1, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, stale.c_str(), times, 0), 0);
  const std::string fresh = Spool("fresh");
  ArtifactStore again(ArtifactOptions{.root = dir_ + "/root/"});
  ASSERT_TRUE(again.Init().ok());
  EXPECT_EQ(again.options().root, dir_ + "/root");
  EXPECT_EQ(again.spool_dir(), dir_ + "/root/.spool");
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(fresh));
  EXPECT_EQ(fs::status(again.spool_dir()).permissions() & fs::perms::all, fs::perms::owner_all);
}

TEST_F(ArtifactStoreTest, LoggedModelFilesLiveUnderModelsAndKeepTheRules) {
  const ArtifactRun model{"7", "", "m-0123456789abcdef0123456789abcdef"};
  ASSERT_TRUE(store_->PutBytes(model, "MLmodel", "flavors: {}").ok());
  ASSERT_TRUE(store_->PutBytes(model, "data/model.pkl", "pkl").ok());
  const std::string root = dir_ + "/root/7/models/" + model.model_id + "/artifacts";
  EXPECT_EQ(ReadAll(root + "/MLmodel"), "flavors: {}");
  auto file = store_->ResolveFile(model, "data/model.pkl");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(*file, root + "/data/model.pkl");
  auto list = store_->List(model, "");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].path, "MLmodel");
  EXPECT_EQ((*list)[1].path, "data");
  // The run's own artifacts are elsewhere and unaffected.
  EXPECT_TRUE(store_->List(kRun, "")->empty());
  // A link planted in the model's tree is refused as in a run's.
  fs::create_directory_symlink(outside_, root + "/escape");
  EXPECT_EQ(store_->PutBytes(model, "escape/x", "x").code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(outside_ + "/x"));
  // Model ids are one plain segment.
  EXPECT_EQ(store_->PutBytes({"7", "", "../m"}, "x", "x").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->Delete(model, "").ok());
  EXPECT_FALSE(store_->ResolveFile(model, "MLmodel").ok());
}

TEST_F(ArtifactStoreTest, BadRunIdsAreRefused) {
  EXPECT_EQ(store_->PutBytes({"7", "../x"}, "a", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->List({"", kRun.run_id}, "").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lathe::tracking
