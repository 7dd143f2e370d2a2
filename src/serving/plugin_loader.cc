// The production InstanceLoader: LoadModelInstance through the backend
// plugins. Kept out of model_manager.cc so that code which injects its own
// loader (tests, benchmarks) does not link the plugin host.
#include "serving/model_manager.h"

namespace lathe::serving {

InstanceLoader PluginInstanceLoader(BackendOptions options) {
  return [options = std::move(options)](const ModelConfig& config, const std::string& version_dir,
                                        int index) {
    return LoadModelInstance(config, version_dir, index, options);
  };
}

}  // namespace lathe::serving
