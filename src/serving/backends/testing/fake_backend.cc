// A backend plugin without any ML library, for serving_backend_test: it
// exercises the host's side of the ABI (dlopen, version check, config JSON,
// output allocation, error mapping). Built twice, as
// <test dir>/fake/liblathe_backend_xgboost.so and, with
// FAKE_ABI_VERSION=LATHE_BACKEND_ABI_VERSION + 1, as
// <test dir>/abi_mismatch/liblathe_backend_xgboost.so.
//
// parameters.fake_load: "not_found" | "invalid" | "internal" fail the load
// with that kind of error. parameters.fake_mode picks what Execute does:
//   echo (default)  each output = the input of the same name (datatype,
//                   shape and bytes)
//   config          output 0 = BYTES [1]: the config JSON, then
//                   " threads=N dir=<version_dir>"
//   invalid         LATHE_BACKEND_INVALID_ARGUMENT "fake refuses"
//   internal        LATHE_BACKEND_INTERNAL "fake broke"
//   bad_code        returns 42
//   skip_output     returns OK without allocating any output
//   short_bytes     asks for one byte fewer than the shape needs
//   wrong_type      echo, but declares output 0 as INT32
//   twice           allocates output 0 twice
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#pragma GCC visibility push(default)
#include "serving/backend_abi.h"
#pragma GCC visibility pop
#include "serving/backends/model_spec.h"

#ifndef FAKE_ABI_VERSION
#define FAKE_ABI_VERSION LATHE_BACKEND_ABI_VERSION
#endif

namespace lb = lathe::serving::backends;

struct LatheBackendModel {
  lb::ModelSpec spec;
  std::string mode;
  std::string description;  // for mode "config"
};

extern "C" {

uint32_t LatheBackendAbiVersion(void) { return FAKE_ABI_VERSION; }

LatheBackendModel* LatheBackendLoad(const char* version_dir, const char* config_json,
                                    int32_t threads, char** error) {
  *error = nullptr;
  auto* m = new LatheBackendModel;
  if (std::string err = lb::ParseModelSpec(config_json, &m->spec); !err.empty()) {
    *error = lb::LoadInvalid(err);
    delete m;
    return nullptr;
  }
  const std::string load = m->spec.Parameter("fake_load");
  if (!load.empty()) {
    delete m;
    if (load == "not_found")
      *error = lb::LoadNotFound("fake has no model file");
    else if (load == "invalid")
      *error = lb::LoadInvalid("fake dislikes the config");
    else
      *error = lb::ErrorCopy("fake load broke");
    return nullptr;
  }
  m->mode = m->spec.Parameter("fake_mode", "echo");
  m->description =
      std::string(config_json) + " threads=" + std::to_string(threads) + " dir=" + version_dir;
  return m;
}

int32_t LatheBackendExecute(LatheBackendModel* m, const LatheBackendTensor* inputs,
                            uint32_t n_inputs, const char* const* output_names, uint32_t n_outputs,
                            LatheAllocOutput alloc, void* ctx, char** error) {
  *error = nullptr;
  const std::string& mode = m->mode;
  if (mode == "invalid") {
    *error = lb::ErrorCopy("fake refuses");
    return LATHE_BACKEND_INVALID_ARGUMENT;
  }
  if (mode == "internal") {
    *error = lb::ErrorCopy("fake broke");
    return LATHE_BACKEND_INTERNAL;
  }
  if (mode == "bad_code") {
    *error = lb::ErrorCopy("fake returns 42");
    return 42;
  }
  if (mode == "skip_output") return LATHE_BACKEND_OK;
  if (mode == "config") {
    const std::string& d = m->description;
    std::string bytes(4, '\0');
    const uint32_t len = static_cast<uint32_t>(d.size());
    std::memcpy(bytes.data(), &len, 4);
    bytes += d;
    const int64_t shape[1] = {1};
    void* buf = alloc(ctx, 0, lb::kBytes, shape, 1, bytes.size());
    if (!buf) {
      *error = lb::ErrorCopy("host refused");
      return LATHE_BACKEND_INTERNAL;
    }
    std::memcpy(buf, bytes.data(), bytes.size());
    return LATHE_BACKEND_OK;
  }
  for (uint32_t j = 0; j < n_outputs; ++j) {
    const LatheBackendTensor* found = nullptr;
    for (uint32_t i = 0; i < n_inputs; ++i) {
      if (std::strcmp(inputs[i].name, output_names[j]) == 0) found = &inputs[i];
    }
    if (found == nullptr) {
      *error = lb::ErrorCopy(std::string("fake echo: no input named ") + output_names[j]);
      return LATHE_BACKEND_INTERNAL;
    }
    const LatheBackendTensor& in = *found;
    LatheDataType type = in.datatype;
    uint64_t bytes = in.byte_size;
    if (mode == "wrong_type" && j == 0) type = lb::kInt32;
    if (mode == "short_bytes" && j == 0) bytes -= 1;
    void* buf = alloc(ctx, j, type, in.shape, in.rank, bytes);
    if (mode == "twice" && j == 0 && buf) buf = alloc(ctx, j, type, in.shape, in.rank, bytes);
    if (!buf) {
      *error = lb::ErrorCopy("host refused output " + std::to_string(j));
      return LATHE_BACKEND_INTERNAL;
    }
    if (bytes) std::memcpy(buf, in.data, bytes);
  }
  return LATHE_BACKEND_OK;
}

void LatheBackendUnload(LatheBackendModel* m) { delete m; }

void LatheBackendFreeError(char* error) { std::free(error); }

}  // extern "C"
