#include "cli/server_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace lathe::cli {
namespace {

using Env = std::map<std::string, std::string>;

std::function<const char*(const char*)> Getenv(const Env& env) {
  return [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
}

class ServerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lathe-config-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text) {
    std::string path = dir_ + "/config.yaml";
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(ServerConfigTest, DefaultsWhenNothingIsSet) {
  Env env;
  auto c = LoadServerConfig({{"home", dir_ + "/none"}}, Getenv(env));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "127.0.0.1:8080");
  EXPECT_EQ(c->store, "sqlite://" + dir_ + "/none/lathe.db");
  EXPECT_EQ(c->host(), "127.0.0.1");
  EXPECT_EQ(c->port(), 8080);
}

TEST_F(ServerConfigTest, FlagsBeatEnvironmentBeatsFileBeatsDefaults) {
  std::string file = Write("listen: 127.0.0.1:1111\nlog_level: warn\nhttp:\n  threads: 3\n  idle_timeout_ms: 5\n");
  Env env{{"LATHE_CONFIG", file}, {"LATHE_LISTEN", "127.0.0.1:2222"}, {"LATHE_HTTP_THREADS", "4"}};
  auto c = LoadServerConfig({{"http.threads", "5"}}, Getenv(env));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->listen, "127.0.0.1:2222");  // env over file
  EXPECT_EQ(c->http_threads, 5);           // flag over env
  EXPECT_EQ(c->log_level, "warn");         // file over default
  EXPECT_EQ(c->http_idle_timeout_ms, 5);
  EXPECT_EQ(c->config_file, file);
}

TEST_F(ServerConfigTest, HomeConfigFileIsPickedUp) {
  Write("listen: 127.0.0.1:3333\n");
  Env env;
  auto c = LoadServerConfig({{"home", dir_}}, Getenv(env));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->listen, "127.0.0.1:3333");
}

TEST_F(ServerConfigTest, BadInputNamesTheSettingAndSource) {
  Env env{{"LATHE_HTTP_THREADS", "many"}};
  auto c = LoadServerConfig({{"home", dir_}}, Getenv(env));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().field(), "http.threads");
  EXPECT_NE(c.status().message().find("LATHE_HTTP_THREADS"), std::string::npos);

  std::string file = Write("http:\n  thread: 2\n");
  auto unknown = LoadServerConfig({{"config", file}}, Getenv({}));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().field(), "http.thread");

  Write("listen: [1, 2\n");
  auto malformed = LoadServerConfig({{"config", dir_ + "/config.yaml"}}, Getenv({}));
  ASSERT_FALSE(malformed.ok());
  EXPECT_NE(malformed.status().message().find("line"), std::string::npos);

  EXPECT_EQ(LoadServerConfig({{"listen", "nope"}}, Getenv({})).status().field(), "listen");
  EXPECT_EQ(LoadServerConfig({{"listen", "h:70000"}}, Getenv({})).status().field(), "listen");
  EXPECT_EQ(LoadServerConfig({{"log_level", "loud"}}, Getenv({})).status().field(), "log_level");
  EXPECT_EQ(LoadServerConfig({{"config", dir_ + "/missing.yaml"}}, Getenv({})).status().field(),
            "config");
}

TEST_F(ServerConfigTest, ArtifactsDefaultUnderHomeAndTakeByteQuantities) {
  auto c = LoadServerConfig({{"home", dir_ + "/h"}}, Getenv({}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->artifacts_root, dir_ + "/h/artifacts");
  EXPECT_EQ(c->artifacts_max_file_bytes, int64_t{5} << 30);

  std::string file = Write("artifacts:\n  root: /data/artifacts\n  max_file_bytes: 512Mi\n");
  c = LoadServerConfig({{"config", file}}, Getenv({}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->artifacts_root, "/data/artifacts");
  EXPECT_EQ(c->artifacts_max_file_bytes, int64_t{512} << 20);

  for (const auto& [text, bytes] : std::vector<std::pair<std::string, int64_t>>{
           {"1048576", 1 << 20}, {"2Ki", 2048}, {"5Gi", int64_t{5} << 30}, {"1Ti", int64_t{1} << 40},
           {"3K", 3000}, {"2M", 2'000'000}, {"1G", 1'000'000'000}}) {
    Env env{{"LATHE_ARTIFACTS_MAX_FILE_BYTES", text}};
    auto q = LoadServerConfig({{"home", dir_}}, Getenv(env));
    ASSERT_TRUE(q.ok()) << text << ": " << q.status().ToString();
    EXPECT_EQ(q->artifacts_max_file_bytes, bytes) << text;
  }
  for (std::string bad : {"", "5GB", "Gi", "-1", "1.5Gi", "0", "99999999999Ti", "5 Gi"}) {
    auto q = LoadServerConfig({{"home", dir_}, {"artifacts.max_file_bytes", bad}}, Getenv({}));
    ASSERT_FALSE(q.ok()) << "accepted \"" << bad << "\"";
    EXPECT_EQ(q.status().field(), "artifacts.max_file_bytes");
    EXPECT_NE(q.status().message().find("--artifacts.max_file_bytes"), std::string::npos)
        << q.status().message();
  }
}

TEST_F(ServerConfigTest, PipelineSettingsDefaultUnderHomeAndComeFromTheFile) {
  auto c = LoadServerConfig({{"home", dir_}}, Getenv({}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->pipelines_data_root, dir_ + "/pipelines");
  EXPECT_EQ(c->pipelines_resync_interval_ms, 200);
  EXPECT_EQ(c->pipelines_max_fan_out, 10'000);
  EXPECT_EQ(c->schedules_resync_interval_ms, 1000);

  std::string file = Write(
      "pipelines:\n  data_root: /srv/steps\n  resync_interval_ms: 50\n  max_fan_out: 64\n"
      "schedules:\n  resync_interval_ms: 250\n");
  auto f = LoadServerConfig({{"home", dir_}, {"config", file}}, Getenv({}));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->pipelines_data_root, "/srv/steps");
  EXPECT_EQ(f->pipelines_resync_interval_ms, 50);
  EXPECT_EQ(f->pipelines_max_fan_out, 64);
  EXPECT_EQ(f->schedules_resync_interval_ms, 250);

  auto bad = LoadServerConfig({{"home", dir_}, {"pipelines.max_fan_out", "0"}}, Getenv({}));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().field(), "pipelines.max_fan_out");
}

}  // namespace
}  // namespace lathe::cli
