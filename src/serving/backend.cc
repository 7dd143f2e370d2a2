// The host side of the backend plugin ABI (backend_abi.h): finds and dlopens
// liblathe_backend_<name>.so once per process, loads a model version through
// it and wraps the result in a ModelInstance whose Execute converts tensors
// to and from the ABI's plain structs.
#include "serving/backend.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <map>
#include <mutex>
#include <new>
#include <span>
#include <utility>

#include <fmt/format.h>

#include "base/json.h"
#include "serving/backend_abi.h"

namespace lathe::serving {
namespace {

// LatheDataType is serving::DataType's value (backend_abi.h).
static_assert(static_cast<int>(DataType::kBool) == 0 && static_cast<int>(DataType::kInt64) == 8 &&
              static_cast<int>(DataType::kFp16) == 9 && static_cast<int>(DataType::kFp32) == 11 &&
              static_cast<int>(DataType::kBytes) == 13);
constexpr LatheDataType kLastDataType = static_cast<LatheDataType>(DataType::kBytes);

// One dlopened plugin: its entry points. Never unloaded (LibTorch does not
// survive dlclose, and models may be loaded again later).
struct Plugin {
  std::string path;
  decltype(&LatheBackendLoad) load = nullptr;
  decltype(&LatheBackendExecute) execute = nullptr;
  decltype(&LatheBackendUnload) unload = nullptr;
  decltype(&LatheBackendFreeError) free_error = nullptr;
};

// The plugin file for a backend: "torchscript" is served by the torch plugin.
std::string_view PluginName(Backend backend) {
  switch (backend) {
    case Backend::kTorchScript:
      return "torch";
    case Backend::kXgboost:
      return "xgboost";
  }
  return "unknown";
}

StatusOr<std::string> DefaultPluginDir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return InternalError("cannot find the running executable (/proc/self/exe)");
  std::string exe(buf, static_cast<size_t>(n));
  const size_t slash = exe.rfind('/');
  return (slash == std::string::npos ? std::string(".") : exe.substr(0, slash)) + "/backends";
}

// Opens `path` once per process. A missing file is not remembered (it may
// be built or installed later); every other outcome is, because dlopen would
// return the same handle again anyway.
StatusOr<const Plugin*> OpenPlugin(const std::string& path) {
  static std::mutex mu;
  // Leaked on purpose: plugins must outlive static destruction, since
  // ModelInstances may still be unloading then.
  static auto* opened = new std::map<std::string, StatusOr<const Plugin*>>();
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = opened->find(path); it != opened->end()) return it->second;

  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return NotFoundError(fmt::format("backend plugin {} not found", path));
  }
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* e = dlerror();
    return FailedPreconditionError(
        fmt::format("cannot load backend plugin {}: {}", path, e ? e : "unknown dlopen error"));
  }
  auto remember = [&](StatusOr<const Plugin*> result) {
    opened->emplace(path, result);
    return result;
  };
  auto* version =
      reinterpret_cast<decltype(&LatheBackendAbiVersion)>(dlsym(handle, "LatheBackendAbiVersion"));
  if (version == nullptr) {
    return remember(FailedPreconditionError(
        fmt::format("{} is not a Lathe backend plugin (no LatheBackendAbiVersion)", path)));
  }
  if (const uint32_t v = version(); v != LATHE_BACKEND_ABI_VERSION) {
    return remember(FailedPreconditionError(
        fmt::format("backend plugin {} has ABI version {}, this lathe needs {}: rebuild it with "
                    "this lathe",
                    path, v, LATHE_BACKEND_ABI_VERSION)));
  }
  auto plugin = std::make_unique<Plugin>();
  plugin->path = path;
  plugin->load = reinterpret_cast<decltype(plugin->load)>(dlsym(handle, "LatheBackendLoad"));
  plugin->execute =
      reinterpret_cast<decltype(plugin->execute)>(dlsym(handle, "LatheBackendExecute"));
  plugin->unload = reinterpret_cast<decltype(plugin->unload)>(dlsym(handle, "LatheBackendUnload"));
  plugin->free_error =
      reinterpret_cast<decltype(plugin->free_error)>(dlsym(handle, "LatheBackendFreeError"));
  if (!plugin->load || !plugin->execute || !plugin->unload || !plugin->free_error) {
    return remember(FailedPreconditionError(
        fmt::format("backend plugin {} lacks one of LatheBackendLoad, LatheBackendExecute, "
                    "LatheBackendUnload, LatheBackendFreeError",
                    path)));
  }
  return remember(plugin.release());
}

void WriteTensorConfigs(JsonWriter& w, std::string_view key, const std::vector<TensorConfig>& ts,
                        bool inputs) {
  w.Key(key).BeginArray();
  for (const TensorConfig& t : ts) {
    w.BeginObject().Field("name", t.name).Field("datatype", DataTypeName(t.type));
    w.Key("dims").BeginArray();
    for (int64_t d : t.dims) w.Int(d);
    w.EndArray();
    if (inputs) w.Field("optional", t.optional);
    w.EndObject();
  }
  w.EndArray();
}

// LatheBackendLoad's config JSON (backend_abi.h).
std::string ConfigJson(const ModelConfig& config) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject()
      .Field("name", config.name)
      .Field("max_batch_size", config.max_batch_size)
      .Field("model_filename", config.model_filename);
  WriteTensorConfigs(w, "inputs", config.inputs, true);
  WriteTensorConfigs(w, "outputs", config.outputs, false);
  w.Key("parameters").BeginObject();
  for (const auto& [k, v] : config.parameters) w.Field(k, v);
  w.EndObject().EndObject();
  return out;
}

// Takes a plugin's error string, freeing it with the plugin's allocator.
std::string TakeError(const Plugin& plugin, char* error) {
  if (error == nullptr) return "no message";
  std::string s(error);
  plugin.free_error(error);
  return s;
}

// LatheBackendLoad's convention: a "NOT_FOUND: " or "INVALID_ARGUMENT: "
// prefix carries the code, anything else is INTERNAL.
Status LoadError(std::string_view backend, std::string message) {
  constexpr std::string_view kNotFound = "NOT_FOUND: ", kInvalid = "INVALID_ARGUMENT: ";
  if (message.starts_with(kNotFound)) return NotFoundError(message.substr(kNotFound.size()));
  if (message.starts_with(kInvalid)) {
    return InvalidArgumentError(message.substr(kInvalid.size()));
  }
  return InternalError(fmt::format("{} backend: {}", backend, message));
}

// Where LatheAllocOutput puts the outputs of one Execute.
struct OutputSink {
  struct Slot {
    std::shared_ptr<std::string> bytes;  // null until allocated
    DataType type = DataType::kFp32;
    std::vector<int64_t> shape;
  };
  std::vector<Slot> slots;
  // Why the last refused allocation was refused, for the error message.
  std::string refusal;
};

// LatheAllocOutput. Refuses (NULL) an unknown index, a second allocation of
// one output, an unknown datatype, a shape over the tensor limits, or a byte
// size that does not match the shape.
void* AllocOutput(void* ctx, uint32_t index, LatheDataType datatype, const int64_t* shape,
                  uint32_t rank, uint64_t byte_size) {
  auto& sink = *static_cast<OutputSink*>(ctx);
  if (index >= sink.slots.size()) {
    sink.refusal = fmt::format("output index {} out of range", index);
    return nullptr;
  }
  OutputSink::Slot& slot = sink.slots[index];
  if (slot.bytes) {
    sink.refusal = fmt::format("output {} allocated twice", index);
    return nullptr;
  }
  if (datatype < 0 || datatype > kLastDataType) {
    sink.refusal = fmt::format("output {}: unknown datatype {}", index, datatype);
    return nullptr;
  }
  const auto type = static_cast<DataType>(datatype);
  const TensorLimits limits;
  if (rank > limits.max_rank) {
    sink.refusal = fmt::format("output {}: rank {} over {}", index, rank, limits.max_rank);
    return nullptr;
  }
  const std::span<const int64_t> dims(shape, rank);
  StatusOr<int64_t> count = CheckedElementCount(dims, type, limits);
  if (!count.ok()) {
    sink.refusal = fmt::format("output {}: {}", index, count.status().message());
    return nullptr;
  }
  if (type == DataType::kBytes ? byte_size > limits.max_bytes
                               : byte_size != static_cast<uint64_t>(*count) * DataTypeSize(type)) {
    sink.refusal = fmt::format("output {}: {} bytes for {} {}", index, byte_size,
                               DataTypeName(type), FormatShape(dims));
    return nullptr;
  }
  try {
    slot.bytes = std::make_shared<std::string>(byte_size, '\0');
  } catch (const std::bad_alloc&) {
    sink.refusal = fmt::format("output {}: out of memory for {} bytes", index, byte_size);
    return nullptr;
  }
  slot.type = type;
  slot.shape.assign(dims.begin(), dims.end());
  return slot.bytes->data();
}

class PluginInstance final : public ModelInstance {
 public:
  PluginInstance(const Plugin* plugin, LatheBackendModel* model, const ModelConfig& config)
      : plugin_(plugin),
        model_(model),
        backend_(BackendName(config.backend)),
        max_batch_size_(config.max_batch_size),
        outputs_(config.outputs) {}

  ~PluginInstance() override { plugin_->unload(model_); }

  StatusOr<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs,
                                        const std::vector<std::string>& outputs) override {
    std::vector<const TensorConfig*> wanted;
    if (outputs.empty()) {
      for (const TensorConfig& t : outputs_) wanted.push_back(&t);
    } else {
      for (const std::string& name : outputs) {
        const TensorConfig* t = FindOutput(name);
        if (t == nullptr) return InvalidArgumentError(fmt::format("unknown output \"{}\"", name));
        for (const TensorConfig* w : wanted) {
          if (w == t) return InvalidArgumentError(fmt::format("output \"{}\" named twice", name));
        }
        wanted.push_back(t);
      }
    }
    std::vector<const char*> names;
    names.reserve(wanted.size());
    for (const TensorConfig* t : wanted) names.push_back(t->name.c_str());

    std::vector<LatheBackendTensor> abi;
    abi.reserve(inputs.size());
    for (const Tensor& t : inputs) {
      abi.push_back(LatheBackendTensor{t.name.c_str(), static_cast<LatheDataType>(t.type),
                                       t.shape.data(), static_cast<uint32_t>(t.shape.size()),
                                       t.data.data(), t.data.size()});
    }

    OutputSink sink;
    sink.slots.resize(wanted.size());
    char* error = nullptr;
    const int32_t code =
        plugin_->execute(model_, abi.data(), static_cast<uint32_t>(abi.size()), names.data(),
                         static_cast<uint32_t>(names.size()), &AllocOutput, &sink, &error);
    if (code != LATHE_BACKEND_OK) {
      std::string message = TakeError(*plugin_, error);
      if (!sink.refusal.empty()) message += " (host: " + sink.refusal + ")";
      if (code == LATHE_BACKEND_INVALID_ARGUMENT) return InvalidArgumentError(std::move(message));
      if (code == LATHE_BACKEND_INTERNAL) {
        return InternalError(fmt::format("{} backend: {}", backend_, message));
      }
      return InternalError(
          fmt::format("{} backend: unknown return code {}: {}", backend_, code, message));
    }
    if (error != nullptr) plugin_->free_error(error);

    const int64_t batch = max_batch_size_ > 0 && !inputs.empty() && !inputs[0].shape.empty()
                              ? inputs[0].shape[0]
                              : -1;
    std::vector<Tensor> result;
    result.reserve(wanted.size());
    for (size_t i = 0; i < wanted.size(); ++i) {
      const TensorConfig& c = *wanted[i];
      OutputSink::Slot& slot = sink.slots[i];
      if (!slot.bytes) {
        return InternalError(fmt::format("{} backend returned no output \"{}\"", backend_, c.name));
      }
      const std::string_view bytes(*slot.bytes);
      Tensor t{c.name, slot.type, std::move(slot.shape), TensorData(std::move(slot.bytes), bytes)};
      RETURN_IF_ERROR(CheckOutput(c, t, batch));
      result.push_back(std::move(t));
    }
    return result;
  }

 private:
  const TensorConfig* FindOutput(std::string_view name) const {
    for (const TensorConfig& t : outputs_) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }

  // An output that does not match its config is a model or config bug:
  // INTERNAL, naming both shapes.
  Status CheckOutput(const TensorConfig& c, const Tensor& t, int64_t batch) const {
    if (t.type != c.type) {
      return InternalError(fmt::format("{} backend: output \"{}\" is {} but the config says {}",
                                       backend_, c.name, DataTypeName(t.type),
                                       DataTypeName(c.type)));
    }
    if (Status s = CheckTensorData(t); !s.ok()) {
      return InternalError(fmt::format("{} backend: {}", backend_, s.message()));
    }
    std::vector<int64_t> want(c.dims);
    if (max_batch_size_ > 0) want.insert(want.begin(), batch);
    bool fits = want.size() == t.shape.size();
    for (size_t d = 0; fits && d < want.size(); ++d) {
      fits = want[d] == -1 || want[d] == t.shape[d];
    }
    if (!fits) {
      return InternalError(
          fmt::format("{} backend: output \"{}\" has shape {} but the config says {}", backend_,
                      c.name, FormatShape(t.shape), FormatShape(want)));
    }
    return OkStatus();
  }

  const Plugin* plugin_;
  LatheBackendModel* model_;  // owned; freed by plugin_->unload
  std::string_view backend_;
  int64_t max_batch_size_;
  std::vector<TensorConfig> outputs_;
};

}  // namespace

StatusOr<std::unique_ptr<ModelInstance>> LoadModelInstance(const ModelConfig& config,
                                                           const std::string& version_dir,
                                                           int index,
                                                           const BackendOptions& options) {
  std::string dir = options.plugin_dir;
  if (dir.empty()) {
    ASSIGN_OR_RETURN(dir, DefaultPluginDir());
  }
  const std::string path =
      fmt::format("{}/liblathe_backend_{}.so", dir, PluginName(config.backend));
  ASSIGN_OR_RETURN(const Plugin* plugin, OpenPlugin(path));

  const std::string json = ConfigJson(config);
  const int32_t threads = static_cast<int32_t>(config.instances.threads);
  char* error = nullptr;
  LatheBackendModel* model = plugin->load(version_dir.c_str(), json.c_str(), threads, &error);
  if (model == nullptr) {
    return LoadError(BackendName(config.backend), TakeError(*plugin, error))
        .WithPrefix(
            fmt::format("model \"{}\" instance {} from {}", config.name, index, version_dir));
  }
  if (error != nullptr) plugin->free_error(error);
  return std::unique_ptr<ModelInstance>(new PluginInstance(plugin, model, config));
}

}  // namespace lathe::serving
