// Decoding and encoding a KServe V2 inference request of 256 FP32 values
// (shape [1, 256]), JSON vs the binary tensor extension, in process, on one
// thread. Results in bench/serving_codec.md.
//
//   serving_codec_bench [--seconds=S] [--only=SUBSTRING]   (default 1 s per case)
//
// Each case runs for S seconds of thread CPU time after a calibration, in 5
// rounds; the line gives the median round's ns per call and the body size. The request body is a
// shared string, as the HTTP server will hand it over, so the binary path
// decodes without copying the tensor.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "serving/protocols/v2_codec.h"

namespace {

using lathe::serving::DataType;
using lathe::serving::InferRequest;
using lathe::serving::InferResponse;

// CPU time of this thread: the machine the numbers were taken on is shared,
// and wall time would count the time other processes held the core.
double ThreadSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double NsPerCall(const std::function<void()>& fn, double seconds) {
  // Calibrate a batch that takes about 1/5 of the budget.
  int64_t batch = 1;
  for (;;) {
    double t0 = ThreadSeconds();
    for (int64_t i = 0; i < batch; ++i) fn();
    double s = ThreadSeconds() - t0;
    if (s > seconds / 20) {
      batch = std::max<int64_t>(1, static_cast<int64_t>(batch * (seconds / 5) / s));
      break;
    }
    batch *= 2;
  }
  std::vector<double> rounds;
  for (int r = 0; r < 5; ++r) {
    double t0 = ThreadSeconds();
    for (int64_t i = 0; i < batch; ++i) fn();
    double s = ThreadSeconds() - t0;
    rounds.push_back(s * 1e9 / static_cast<double>(batch));
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[2];
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "serving_codec_bench: %s failed\n", what);
    std::exit(1);
  }
}

// The body Python clients send: json.dumps of a float32 array's tolist()
// writes each value's double with 17 significant digits.
std::string PythonStyleJson(const std::vector<float>& v) {
  std::string s = R"({"inputs":[{"name":"x","shape":[1,256],"datatype":"FP32","data":[)";
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) s += ", ";
    std::snprintf(buf, sizeof buf, "%.17g", static_cast<double>(v[i]));
    s += buf;
  }
  s += "]}]}";
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--seconds=", 10) == 0) seconds = std::atof(argv[i] + 10);
    if (std::strncmp(argv[i], "--only=", 7) == 0) only = argv[i] + 7;
  }
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> values(256);
  for (float& v : values) v = dist(rng);

  InferRequest request;
  request.inputs.push_back(lathe::serving::MakeTensor("x", DataType::kFp32, {1, 256}, values));
  auto json = lathe::serving::EncodeV2Request(request);
  auto binary = lathe::serving::EncodeV2Request(request, {"x"});
  Check(json.ok() && binary.ok(), "encoding the request");
  auto json_body = std::make_shared<const std::string>(json->body);
  auto python_body = std::make_shared<const std::string>(PythonStyleJson(values));
  auto binary_body = std::make_shared<const std::string>(binary->body);
  const uint64_t header = *binary->header_length;

  struct Case {
    const char* name;
    size_t bytes;
    std::function<void()> fn;
  };
  auto decode = [](std::shared_ptr<const std::string> body, std::optional<uint64_t> h) {
    return [body, h] {
      auto r = lathe::serving::DecodeV2Request(body, h);
      Check(r.ok() && r->inputs[0].data.size() == 1024, "decoding");
    };
  };

  InferResponse response;
  response.model_name = "m";
  response.model_version = "1";
  response.outputs = request.inputs;
  InferRequest want_json, want_binary;
  want_binary.binary_data_output = true;
  auto encode = [&response](const InferRequest& req) {
    return [&response, &req] {
      auto e = lathe::serving::EncodeV2Response(response, req);
      Check(e.ok(), "encoding");
    };
  };
  auto sized = [&](const InferRequest& req) {
    return lathe::serving::EncodeV2Response(response, req)->body.size();
  };

  const std::vector<Case> cases = {
      {"decode JSON (shortest float text)", json_body->size(), decode(json_body, std::nullopt)},
      {"decode JSON (17 digits, as Python)", python_body->size(),
       decode(python_body, std::nullopt)},
      {"decode binary", binary_body->size(), decode(binary_body, header)},
      {"encode response JSON", sized(want_json), encode(want_json)},
      {"encode response binary", sized(want_binary), encode(want_binary)},
  };
  std::printf("V2 request, 256 x FP32, shape [1,256]; %.1f s per case, median of 5 rounds\n",
              seconds);
  for (const Case& c : cases) {
    if (!only.empty() && std::string(c.name).find(only) == std::string::npos) continue;
    double ns = NsPerCall(c.fn, seconds);
    std::printf("%-38s %6zu bytes %10.0f ns/call\n", c.name, c.bytes, ns);
  }
  return 0;
}
