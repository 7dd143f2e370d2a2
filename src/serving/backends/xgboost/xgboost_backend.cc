// liblathe_backend_xgboost.so: XGBoost models through the XGBoost 1.7 C API,
// behind the plugin C ABI (serving/backend_abi.h).
//
// A version directory holds model.ubj (preferred: it loads in 2-8 ms against
// 31-53 ms for JSON) or model.json, or the file config model_filename names;
// XGBoost picks the format from the extension. The config has one FP32
// input [batch, n_features] (n_features must match the booster when fixed)
// and one FP32 output: the prediction (probability for binary:logistic,
// margin with parameters.output_margin: "true"), shaped [batch] + the
// output's dims when those are fixed.
//
// Thread-safety: each instance owns its booster (LatheBackendLoad per
// instance), and Execute runs one thread at a time per instance, so the
// booster's prediction cache and the buffer XGBoosterPredictFromDense
// returns (valid until the next call on that booster) are never shared.
// nthread = instances.threads, per booster.
#include <sys/stat.h>
#include <xgboost/c_api.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#pragma GCC visibility push(default)
#include "serving/backend_abi.h"
#pragma GCC visibility pop
#include "serving/backends/model_spec.h"

using lathe::serving::backends::ModelSpec;
namespace lb = lathe::serving::backends;

struct LatheBackendModel {
  ModelSpec spec;
  BoosterHandle booster = nullptr;
  // The XGBoosterPredictFromDense config, built once.
  std::string predict_config;
  int64_t n_features = 0;
  // Aligned copy of the (unaligned) request features.
  std::vector<float> features;

  ~LatheBackendModel() {
    if (booster) XGBoosterFree(booster);
  }
};

namespace {

std::string LastError() {
  const char* e = XGBGetLastError();
  return e && *e ? e : "unknown XGBoost error";
}

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool FixedDims(const std::vector<int64_t>& dims) {
  for (int64_t d : dims) {
    if (d < 0) return false;
  }
  return true;
}

}  // namespace

extern "C" {

uint32_t LatheBackendAbiVersion(void) { return LATHE_BACKEND_ABI_VERSION; }

LatheBackendModel* LatheBackendLoad(const char* version_dir, const char* config_json,
                                    int32_t threads, char** error) {
  *error = nullptr;
  try {
    auto m = std::make_unique<LatheBackendModel>();
    ModelSpec& spec = m->spec;
    if (std::string err = lb::ParseModelSpec(config_json, &spec); !err.empty()) {
      *error = lb::LoadInvalid(err);
      return nullptr;
    }
    const size_t lead = spec.batching() ? 1 : 0;
    if (spec.inputs.size() != 1 || spec.inputs[0].datatype != lb::kFp32 ||
        spec.inputs[0].dims.size() + lead != 2) {
      *error = lb::LoadInvalid(
          "the xgboost backend takes one FP32 input of shape [batch, n_features] (dims "
          "[n_features] when max_batch_size > 0)");
      return nullptr;
    }
    if (spec.outputs.size() != 1 || spec.outputs[0].datatype != lb::kFp32) {
      *error = lb::LoadInvalid("the xgboost backend returns one FP32 output");
      return nullptr;
    }
    const std::string margin = spec.Parameter("output_margin", "false");
    if (margin != "true" && margin != "false") {
      *error = lb::LoadInvalid("parameters.output_margin: expected \"true\" or \"false\"");
      return nullptr;
    }

    std::string path;
    if (!spec.model_filename.empty()) {
      path = std::string(version_dir) + "/" + spec.model_filename;
    } else {
      for (const char* f : {"model.ubj", "model.json"}) {
        path = std::string(version_dir) + "/" + f;
        if (IsFile(path)) break;
      }
    }
    if (!IsFile(path)) {
      *error = lb::LoadNotFound(spec.model_filename.empty()
                                    ? "no model.ubj or model.json in " + std::string(version_dir)
                                    : "no XGBoost model file " + path);
      return nullptr;
    }

    if (XGBoosterCreate(nullptr, 0, &m->booster) != 0) {
      *error = lb::ErrorCopy("XGBoosterCreate: " + LastError());
      return nullptr;
    }
    if (XGBoosterLoadModel(m->booster, path.c_str()) != 0) {
      *error = lb::LoadInvalid(path + " is not an XGBoost model: " + LastError());
      return nullptr;
    }
    const std::string nthread = std::to_string(threads < 1 ? 1 : threads);
    if (XGBoosterSetParam(m->booster, "nthread", nthread.c_str()) != 0) {
      *error = lb::ErrorCopy("XGBoosterSetParam nthread: " + LastError());
      return nullptr;
    }
    bst_ulong n_features = 0;
    if (XGBoosterGetNumFeature(m->booster, &n_features) != 0) {
      *error = lb::ErrorCopy("XGBoosterGetNumFeature: " + LastError());
      return nullptr;
    }
    const int64_t want = spec.inputs[0].dims.back();
    if (want != -1 && static_cast<bst_ulong>(want) != n_features) {
      *error =
          lb::LoadInvalid(path + " has " + std::to_string(n_features) + " features but input \"" +
                          spec.inputs[0].name + "\" has " + std::to_string(want));
      return nullptr;
    }
    m->n_features = static_cast<int64_t>(n_features);
    // 1.7 needs "cache_id" (else "Invalid cast, from Null to Integer").
    m->predict_config = std::string("{\"type\": ") + (margin == "true" ? "1" : "0") +
                        ", \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
                        "\"strict_shape\": false, \"cache_id\": 0, \"missing\": NaN}";
    return m.release();
  } catch (const std::exception& e) {
    *error = lb::ErrorCopy(std::string("xgboost load: ") + e.what());
  }
  return nullptr;
}

int32_t LatheBackendExecute(LatheBackendModel* model, const LatheBackendTensor* inputs,
                            uint32_t n_inputs, const char* const* output_names, uint32_t n_outputs,
                            LatheAllocOutput alloc, void* alloc_ctx, char** error) {
  *error = nullptr;
  try {
    const ModelSpec& spec = model->spec;
    std::vector<const LatheBackendTensor*> ordered;
    int64_t batch = 0;
    if (std::string err = lb::MatchInputs(spec, inputs, n_inputs, &ordered, &batch); !err.empty()) {
      *error = lb::ErrorCopy(err);
      return LATHE_BACKEND_INVALID_ARGUMENT;
    }
    const LatheBackendTensor& x = *ordered[0];
    const int64_t rows = x.shape[0], cols = x.shape[1];
    if (cols != model->n_features) {
      *error = lb::ErrorCopy("input \"" + spec.inputs[0].name + "\": " + std::to_string(cols) +
                             " features but the model has " + std::to_string(model->n_features));
      return LATHE_BACKEND_INVALID_ARGUMENT;
    }
    model->features.resize(static_cast<size_t>(rows * cols));
    if (x.byte_size) std::memcpy(model->features.data(), x.data, x.byte_size);

    char array[160];
    std::snprintf(
        array, sizeof array,
        "{\"data\": [%llu, true], \"shape\": [%lld, %lld], \"typestr\": \"<f4\", "
        "\"version\": 3}",
        static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(model->features.data())),
        static_cast<long long>(rows), static_cast<long long>(cols));
    const bst_ulong* shape = nullptr;
    bst_ulong dim = 0;
    const float* result = nullptr;
    if (XGBoosterPredictFromDense(model->booster, array, model->predict_config.c_str(), nullptr,
                                  &shape, &dim, &result) != 0) {
      *error = lb::ErrorCopy("XGBoosterPredictFromDense: " + LastError());
      return LATHE_BACKEND_INTERNAL;
    }
    uint64_t count = 1;
    std::vector<int64_t> xgb_shape;
    for (bst_ulong i = 0; i < dim; ++i) {
      xgb_shape.push_back(static_cast<int64_t>(shape[i]));
      count *= shape[i];
    }

    // The config's shape when its dims are fixed, else XGBoost's.
    const lb::TensorSpec& out = spec.outputs[0];
    std::vector<int64_t> out_shape = xgb_shape;
    if (FixedDims(out.dims)) {
      out_shape = out.dims;
      if (spec.batching()) out_shape.insert(out_shape.begin(), rows);
      uint64_t want = 1;
      for (int64_t d : out_shape) want *= static_cast<uint64_t>(d);
      if (want != count) {
        *error = lb::ErrorCopy("XGBoost returned shape " +
                               lb::FormatShape(xgb_shape.data(), xgb_shape.size()) +
                               ", which does not fit output \"" + out.name + "\" " +
                               lb::FormatShape(out_shape.data(), out_shape.size()));
        return LATHE_BACKEND_INTERNAL;
      }
    }
    for (uint32_t j = 0; j < n_outputs; ++j) {
      if (out.name != output_names[j]) {
        *error = lb::ErrorCopy(std::string("unknown output \"") + output_names[j] + "\"");
        return LATHE_BACKEND_INVALID_ARGUMENT;
      }
      const uint64_t bytes = count * sizeof(float);
      void* buf = alloc(alloc_ctx, j, lb::kFp32, out_shape.data(),
                        static_cast<uint32_t>(out_shape.size()), bytes);
      if (buf == nullptr) {
        *error = lb::ErrorCopy("the host refused the buffer for output \"" + out.name + "\"");
        return LATHE_BACKEND_INTERNAL;
      }
      if (bytes) std::memcpy(buf, result, bytes);
    }
    return LATHE_BACKEND_OK;
  } catch (const std::exception& e) {
    *error = lb::ErrorCopy(std::string("xgboost: ") + e.what());
    return LATHE_BACKEND_INTERNAL;
  }
}

void LatheBackendUnload(LatheBackendModel* model) { delete model; }

void LatheBackendFreeError(char* error) { std::free(error); }

}  // extern "C"
