// A loaded model version as the batcher sees it: one Execute per batch.
//
// Backends are shared libraries behind the C ABI in backend_abi.h (the
// Triton pattern, DESIGN.md): liblathe_backend_torch.so (backend
// "torchscript") links LibTorch, liblathe_backend_xgboost.so links XGBoost,
// and nothing else in Lathe links either. LoadModelInstance dlopens the
// config's backend's library from BackendOptions::plugin_dir (once per
// process) and wraps the loaded model in a ModelInstance. Tests use their own ModelInstance (a fake) and
// never load a plugin.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "serving/model_config.h"
#include "serving/tensor.h"

namespace lathe::serving {

// One instance of one model version. Execute may be called from one thread
// at a time per instance (the batcher runs `instances.count` of them, each
// on its own thread); it must not be called after destruction begins.
class ModelInstance {
 public:
  virtual ~ModelInstance() = default;

  // Runs one batch. `inputs` are the model's inputs in the order of
  // config.inputs (optional ones absent from the request are left out),
  // each with the batch dimension first when the model batches. Returns
  // the outputs named in `outputs` (all of config.outputs when empty), in
  // that order, with the same leading batch dimension. Errors are
  // INVALID_ARGUMENT for input the model refuses and INTERNAL for a backend
  // failure (the message names the backend).
  virtual StatusOr<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs,
                                                const std::vector<std::string>& outputs) = 0;
};

struct BackendOptions {
  // Where the liblathe_backend_*.so live; "" = the directory "backends"
  // beside the running executable.
  std::string plugin_dir;
};

// Loads instance `index` of the version in `version_dir`
// (<repository>/<model>/<version>) with the config's threads. NOT_FOUND
// when the plugin or the model file is missing, FAILED_PRECONDITION when
// the plugin's ABI version differs, INVALID_ARGUMENT when the model does
// not match the config; the message says which.
StatusOr<std::unique_ptr<ModelInstance>> LoadModelInstance(const ModelConfig& config,
                                                           const std::string& version_dir,
                                                           int index,
                                                           const BackendOptions& options);

}  // namespace lathe::serving
