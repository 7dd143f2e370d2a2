// The host side of the plugin ABI, against fake plugins (no LibTorch):
// testing/fake_backend.cc built as a plugin of this ABI and of another.
#include "serving/backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace lathe::serving {
namespace {

using ::testing::HasSubstr;

// Two inputs the fake echoes back as outputs of the same names.
ModelConfig EchoConfig(std::string mode = "echo") {
  ModelConfig c;
  c.name = "fake";
  c.backend = Backend::kXgboost;  // the fakes are built as liblathe_backend_xgboost.so
  c.max_batch_size = 8;
  c.inputs = {{"a", DataType::kFp32, {2}}, {"b", DataType::kInt64, {-1}}};
  c.outputs = {{"a", DataType::kFp32, {2}}, {"b", DataType::kInt64, {-1}}};
  c.instances.threads = 3;
  c.parameters["fake_mode"] = std::move(mode);
  return c;
}

BackendOptions Fake() { return {.plugin_dir = LATHE_FAKE_PLUGIN_DIR}; }

std::unique_ptr<ModelInstance> MustLoad(const ModelConfig& c, std::string dir = "/models/fake/1") {
  StatusOr<std::unique_ptr<ModelInstance>> m = LoadModelInstance(c, dir, 0, Fake());
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? std::move(m).value() : nullptr;
}

std::vector<Tensor> Inputs() {
  return {MakeTensor<float>("a", DataType::kFp32, {2, 2}, {1.5f, -2.f, 3.f, 4.25f}),
          MakeTensor<int64_t>("b", DataType::kInt64, {2, 3}, {1, 2, 3, 4, 5, 6})};
}

Status ExecuteError(const std::string& mode) {
  std::unique_ptr<ModelInstance> m = MustLoad(EchoConfig(mode));
  if (!m) return InternalError("not loaded");
  StatusOr<std::vector<Tensor>> out = m->Execute(Inputs(), {});
  EXPECT_FALSE(out.ok()) << mode;
  return out.status();
}

Status LoadError(const ModelConfig& c, const BackendOptions& options) {
  StatusOr<std::unique_ptr<ModelInstance>> m = LoadModelInstance(c, "/models/fake/1", 0, options);
  EXPECT_FALSE(m.ok());
  return m.status();
}

TEST(PluginHost, ExecuteCopiesOutputsIntoHostBuffers) {
  std::unique_ptr<ModelInstance> m = MustLoad(EchoConfig());
  ASSERT_TRUE(m);
  std::vector<Tensor> in = Inputs();
  StatusOr<std::vector<Tensor>> out = m->Execute(in, {});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*out)[i].name, in[i].name);
    EXPECT_EQ((*out)[i].type, in[i].type);
    EXPECT_EQ((*out)[i].shape, in[i].shape);
    EXPECT_EQ((*out)[i].data.bytes(), in[i].data.bytes());
    // The host owns the bytes: not a view of the input.
    EXPECT_NE((*out)[i].data.data(), in[i].data.data());
  }
}

TEST(PluginHost, ReturnsTheNamedOutputsInTheirOrder) {
  std::unique_ptr<ModelInstance> m = MustLoad(EchoConfig());
  ASSERT_TRUE(m);
  StatusOr<std::vector<Tensor>> out = m->Execute(Inputs(), {"b"});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].name, "b");
  EXPECT_EQ((*out)[0].shape, (std::vector<int64_t>{2, 3}));

  out = m->Execute(Inputs(), {"b", "a"});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].name, "b");
  EXPECT_EQ((*out)[1].name, "a");

  EXPECT_EQ(m->Execute(Inputs(), {"c"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m->Execute(Inputs(), {"a", "a"}).status().code(), StatusCode::kInvalidArgument);
}

TEST(PluginHost, PassesUnalignedInputViews) {
  std::unique_ptr<ModelInstance> m = MustLoad(EchoConfig());
  ASSERT_TRUE(m);
  // Input bytes at an odd offset into a shared body, as the binary protocol
  // decodes them.
  auto body = std::make_shared<std::string>(1 + 8 + 6 * 8, '\0');
  const float a[2] = {7.f, 8.f};
  const int64_t b[1] = {-9};
  std::memcpy(body->data() + 1, a, sizeof a);
  std::memcpy(body->data() + 1 + sizeof a, b, sizeof b);
  std::vector<Tensor> in = {
      {"a", DataType::kFp32, {1, 2}, TensorData(body, std::string_view(body->data() + 1, 8))},
      {"b", DataType::kInt64, {1, 1}, TensorData(body, std::string_view(body->data() + 9, 8))}};
  StatusOr<std::vector<Tensor>> out = m->Execute(in, {});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].data.bytes(), in[0].data.bytes());
  EXPECT_EQ((*out)[1].data.bytes(), in[1].data.bytes());
}

TEST(PluginHost, SendsTheConfigAsJson) {
  ModelConfig c;
  c.name = "fake";
  c.backend = Backend::kXgboost;
  c.model_filename = "weights.bin";
  c.inputs = {{"x", DataType::kBf16, {4, -1}, /*optional=*/true}};
  c.outputs = {{"desc", DataType::kBytes, {1}}};
  c.instances.threads = 3;
  c.parameters = {{"fake_mode", "config"}, {"quote", "a\"b"}};
  std::unique_ptr<ModelInstance> m = MustLoad(c, "/models/fake/7");
  ASSERT_TRUE(m);
  StatusOr<std::vector<Tensor>> out = m->Execute({}, {});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  StatusOr<std::vector<std::string_view>> desc = SplitBytesElements((*out)[0].data.bytes());
  ASSERT_TRUE(desc.ok());
  ASSERT_EQ(desc->size(), 1u);
  EXPECT_EQ(std::string((*desc)[0]),
            R"({"name":"fake","max_batch_size":0,"model_filename":"weights.bin",)"
            R"("inputs":[{"name":"x","datatype":"BF16","dims":[4,-1],"optional":true}],)"
            R"("outputs":[{"name":"desc","datatype":"BYTES","dims":[1]}],)"
            R"("parameters":{"fake_mode":"config","quote":"a\"b"}})"
            " threads=3 dir=/models/fake/7");
}

TEST(PluginHost, InstancesOfOnePluginAreIndependent) {
  std::unique_ptr<ModelInstance> first = MustLoad(EchoConfig());
  std::unique_ptr<ModelInstance> second = MustLoad(EchoConfig());
  ASSERT_TRUE(first && second);
  first.reset();
  EXPECT_TRUE(second->Execute(Inputs(), {}).ok());
}

TEST(PluginHost, MissingPluginIsNotFound) {
  Status s = LoadError(EchoConfig(), {.plugin_dir = "/nonexistent/backends"});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("/nonexistent/backends/liblathe_backend_xgboost.so"));
}

TEST(PluginHost, DefaultPluginDirIsBesideTheExecutable) {
  // The test binary has no backends/ beside it.
  Status s = LoadError(EchoConfig(), {});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("/backends/liblathe_backend_xgboost.so"));
}

TEST(PluginHost, OtherAbiVersionIsFailedPrecondition) {
  for (int attempt = 0; attempt < 2; ++attempt) {  // the second from the cache
    Status s = LoadError(EchoConfig(), {.plugin_dir = LATHE_ABI_MISMATCH_PLUGIN_DIR});
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
    EXPECT_THAT(s.message(), HasSubstr("ABI version 2, this lathe needs 1"));
  }
}

TEST(PluginHost, LoadErrorsKeepTheirCode) {
  ModelConfig c = EchoConfig();
  c.parameters["fake_load"] = "not_found";
  Status s = LoadError(c, Fake());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "model \"fake\" instance 0 from /models/fake/1: fake has no model file");

  c.parameters["fake_load"] = "invalid";
  s = LoadError(c, Fake());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("fake dislikes the config"));

  c.parameters["fake_load"] = "internal";
  s = LoadError(c, Fake());
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("xgboost backend: fake load broke"));
}

TEST(PluginHost, ExecuteErrorsMapToStatus) {
  Status s = ExecuteError("invalid");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "fake refuses");

  s = ExecuteError("internal");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "xgboost backend: fake broke");

  s = ExecuteError("bad_code");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("unknown return code 42"));
}

TEST(PluginHost, RefusesBadOutputs) {
  Status s = ExecuteError("skip_output");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("returned no output \"a\""));

  s = ExecuteError("short_bytes");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("host: output 0: 15 bytes for FP32 [2,2]"));

  s = ExecuteError("twice");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("output 0 allocated twice"));

  s = ExecuteError("wrong_type");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("output \"a\" is INT32 but the config says FP32"));
}

TEST(PluginHost, OutputShapeMustFitTheConfig) {
  ModelConfig c = EchoConfig();
  c.outputs[0].dims = {3};
  std::unique_ptr<ModelInstance> m = MustLoad(c);
  ASSERT_TRUE(m);
  Status s = m->Execute(Inputs(), {}).status();
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("output \"a\" has shape [2,2] but the config says [2,3]"));
}

}  // namespace
}  // namespace lathe::serving
