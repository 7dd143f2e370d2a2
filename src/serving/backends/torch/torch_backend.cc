// liblathe_backend_torch.so: TorchScript models through LibTorch, behind the
// plugin C ABI (serving/backend_abi.h). The only translation unit in Lathe
// that includes LibTorch headers (they cost ~8 s and 700 MB per TU).
//
// A version directory holds model.pt (or config model_filename), saved by
// torch.jit.script/trace(...).save(). Config inputs map, in order, to
// forward()'s arguments (an optional input left out is passed as None);
// forward may return a tensor (one config output), a tuple or list of
// tensors (config outputs in order) or a dict str -> tensor (by name).
//
// Threads. LibTorch's intra-op settings are process-global in name but not
// in effect, and this build (Debian's, ATen on OpenMP, OpenBLAS pthreads)
// gives three knobs:
//  * ATen and oneDNN kernels use OpenMP, whose thread count is per calling
//    thread (an OpenMP ICV). Each Execute sets it on its own thread to the
//    model's instances.threads, once per thread (thread_local), so models
//    and instances with different thread counts do not disturb each other.
//    at::set_num_threads is NOT called: besides omp_set_num_threads it
//    rebuilds the global pthreadpool (QNNPACK/XNNPACK), which would race
//    with other instances and costs a thread start per call.
//  * OpenBLAS (sgemm behind nn.Linear) has one global pool. It is set to
//    the largest instances.threads of any model loaded so far (on first
//    load that lowers it from "all cores" to what the config asks): with
//    the usual threads: 1 every GEMM runs on its caller's thread.
//  * Inter-op threads (torch.jit.fork) are left at LibTorch's default.
// So instances.count × instances.threads should fit the cores (research:
// oversubscribed OpenMP falls onto 4 ms scheduler ticks).
//
// Warmup. Load runs forward `parameters.warmup_runs` times (default 2) on
// zero inputs of batch 1 when every input dim is fixed: the profiling graph
// executor specialises on its first runs, and a model that does not accept
// the config's inputs or returns something that does not map onto its
// outputs is refused at load time (INVALID_ARGUMENT) rather than on the
// first request.
//
// Every exception stops at the ABI functions, cut to its one-line summary:
// IndexError, ValueError and TypeError raised by forward are
// LATHE_BACKEND_INVALID_ARGUMENT; anything else, RuntimeError included
// (which is what an embedding id out of range raises), is
// LATHE_BACKEND_INTERNAL, since it cannot be told from a model bug.
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <torch/script.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#if AT_PARALLEL_OPENMP
#include <omp.h>
#endif

#pragma GCC visibility push(default)
#include "serving/backend_abi.h"
#pragma GCC visibility pop
#include "serving/backends/model_spec.h"

using lathe::serving::backends::ModelSpec;
namespace lb = lathe::serving::backends;

struct LatheBackendModel {
  ModelSpec spec;
  torch::jit::Module module;
  int threads = 1;
};

namespace {

constexpr const char* kDefaultModelFile = "model.pt";

std::optional<c10::ScalarType> TorchType(LatheDataType t) {
  switch (t) {
    case lb::kBool:
      return c10::kBool;
    case lb::kUint8:
      return c10::kByte;
    case lb::kInt8:
      return c10::kChar;
    case lb::kInt16:
      return c10::kShort;
    case lb::kInt32:
      return c10::kInt;
    case lb::kInt64:
      return c10::kLong;
    case lb::kFp16:
      return c10::kHalf;
    case lb::kBf16:
      return c10::kBFloat16;
    case lb::kFp32:
      return c10::kFloat;
    case lb::kFp64:
      return c10::kDouble;
    default:
      return std::nullopt;  // UINT16/32/64 and BYTES have no torch type
  }
}

LatheDataType V2Type(c10::ScalarType t) {
  switch (t) {
    case c10::kBool:
      return lb::kBool;
    case c10::kByte:
      return lb::kUint8;
    case c10::kChar:
      return lb::kInt8;
    case c10::kShort:
      return lb::kInt16;
    case c10::kInt:
      return lb::kInt32;
    case c10::kLong:
      return lb::kInt64;
    case c10::kHalf:
      return lb::kFp16;
    case c10::kBFloat16:
      return lb::kBf16;
    case c10::kFloat:
      return lb::kFp32;
    case c10::kDouble:
      return lb::kFp64;
    default:
      return -1;
  }
}

// Sets this thread's intra-op threads (see the file comment).
void UseIntraOpThreads(int threads) {
  thread_local int current = 0;
  if (current == threads) return;
#if AT_PARALLEL_OPENMP
  // ATen sets a thread's OpenMP count once, lazily, on its first parallel
  // call (to its default). at::get_num_threads runs that initialisation
  // inside libtorch (not an inline copy in this TU), so it cannot overwrite
  // ours afterwards.
  (void)at::get_num_threads();
  omp_set_num_threads(threads);
#else
  // Native/TBB backends have one global pool: the largest request wins.
  static std::mutex mu;
  static int global = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (threads > global) {
    global = threads;
    at::set_num_threads(threads);
  }
#endif
  current = threads;
}

// OpenBLAS's global pool: raised to the largest threads any model asks for.
void RaiseBlasThreads(int threads) {
  static std::mutex mu;
  static int largest = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (threads <= largest) return;
  largest = threads;
  // The plugin is loaded RTLD_LOCAL, so look in OpenBLAS itself; absent
  // (another BLAS) means nothing to set.
  void* blas = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
  if (blas == nullptr) return;
  if (auto set = reinterpret_cast<void (*)(int)>(dlsym(blas, "openblas_set_num_threads"))) {
    set(threads);
  }
  dlclose(blas);
}

// The TorchScript interpreter wraps an error raised inside forward in two
// tracebacks (dozens of lines); its last line is the error itself
// ("RuntimeError: mat1 and mat2 shapes cannot be multiplied (1x255 and
// 256x512)"), which is what a client or a log line needs.
std::string Summary(std::string what) {
  if (what.find("The following operation failed in the TorchScript interpreter") ==
      std::string::npos) {
    return what;
  }
  while (!what.empty() && std::isspace(static_cast<unsigned char>(what.back()))) what.pop_back();
  const size_t nl = what.rfind('\n');
  return nl == std::string::npos ? what : what.substr(nl + 1);
}

std::string ErrorText(const c10::Error& e) { return Summary(e.what_without_backtrace()); }
std::string ErrorText(const std::exception& e) { return Summary(e.what()); }

// Errors about argument values (IndexError, ValueError, TypeError, as c10
// types or as the interpreter's summary line) are the caller's; anything
// else (RuntimeError: an embedding id out of range, a shape forward cannot
// multiply) may as well be the model's, so it is INTERNAL.
int32_t CodeOf(const std::exception& e, const std::string& summary) {
  if (dynamic_cast<const c10::IndexError*>(&e) || dynamic_cast<const c10::ValueError*>(&e) ||
      dynamic_cast<const c10::TypeError*>(&e)) {
    return LATHE_BACKEND_INVALID_ARGUMENT;
  }
  for (const char* kind : {"IndexError", "ValueError", "TypeError"}) {
    if (summary.rfind(kind, 0) == 0) return LATHE_BACKEND_INVALID_ARGUMENT;
  }
  return LATHE_BACKEND_INTERNAL;
}

// The model's outputs in config order, from what forward returned.
std::string CollectOutputs(const ModelSpec& spec, const c10::IValue& result,
                           std::vector<at::Tensor>* out) {
  const size_t n = spec.outputs.size();
  out->assign(n, at::Tensor());
  auto from_sequence = [&](const std::vector<c10::IValue>& items, const char* what) {
    if (items.size() != n) {
      return std::string("forward returned a ") + what + " of " + std::to_string(items.size()) +
             " but the config has " + std::to_string(n) + " outputs";
    }
    for (size_t i = 0; i < n; ++i) {
      if (!items[i].isTensor()) {
        return std::string("forward returned a ") + what + " whose element " + std::to_string(i) +
               " is a " + items[i].tagKind() + ", not a tensor";
      }
      (*out)[i] = items[i].toTensor();
    }
    return std::string();
  };
  if (result.isTensor()) {
    if (n != 1) {
      return "forward returned one tensor but the config has " + std::to_string(n) + " outputs";
    }
    (*out)[0] = result.toTensor();
    return {};
  }
  if (result.isTuple()) return from_sequence(result.toTupleRef().elements().vec(), "tuple");
  if (result.isList()) return from_sequence(result.toListRef().vec(), "list");
  if (result.isGenericDict()) {
    c10::Dict<c10::IValue, c10::IValue> dict = result.toGenericDict();
    for (size_t i = 0; i < n; ++i) {
      const std::string& name = spec.outputs[i].name;
      auto it = dict.find(c10::IValue(name));
      if (it == dict.end()) return "forward returned a dict without output \"" + name + "\"";
      if (!it->value().isTensor()) {
        return "forward returned a dict whose \"" + name + "\" is a " + it->value().tagKind() +
               ", not a tensor";
      }
      (*out)[i] = it->value().toTensor();
    }
    return {};
  }
  return std::string("forward returned a ") + result.tagKind() +
         "; expected a tensor, a tuple or list of tensors, or a dict of them";
}

// Runs forward on inputs in config order (nullptr = optional input left
// out) and hands the requested outputs to `alloc`. On failure sets *message.
int32_t Run(LatheBackendModel& m, const std::vector<const LatheBackendTensor*>& ordered,
            const char* const* output_names, uint32_t n_outputs, LatheAllocOutput alloc, void* ctx,
            std::string* message) {
  UseIntraOpThreads(m.threads);
  c10::InferenceMode inference;
  std::vector<c10::IValue> args;
  args.reserve(ordered.size());
  for (const LatheBackendTensor* t : ordered) {
    if (t == nullptr) {
      args.emplace_back();
      continue;
    }
    // Request bytes are not aligned: copy them into a tensor of our own.
    at::Tensor x = at::empty(c10::IntArrayRef(t->shape, t->rank),
                             at::TensorOptions().dtype(*TorchType(t->datatype)));
    if (t->byte_size) std::memcpy(x.data_ptr(), t->data, t->byte_size);
    args.emplace_back(std::move(x));
  }
  c10::IValue result = m.module.forward(std::move(args));

  std::vector<at::Tensor> outputs;
  if (std::string err = CollectOutputs(m.spec, result, &outputs); !err.empty()) {
    *message = err;
    return LATHE_BACKEND_INTERNAL;
  }
  for (uint32_t j = 0; j < n_outputs; ++j) {
    const int k = m.spec.FindOutput(output_names[j]);
    if (k < 0) {
      *message = std::string("unknown output \"") + output_names[j] + "\"";
      return LATHE_BACKEND_INVALID_ARGUMENT;
    }
    const lb::TensorSpec& c = m.spec.outputs[k];
    at::Tensor t = outputs[k];
    const LatheDataType type = V2Type(t.scalar_type());
    if (type != c.datatype) {
      *message = "output \"" + c.name + "\" is " + std::string(c10::toString(t.scalar_type())) +
                 " but the config says " + lb::DataTypeName(c.datatype);
      return LATHE_BACKEND_INTERNAL;
    }
    if (!t.device().is_cpu()) t = t.cpu();
    t = t.contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    void* buf = alloc(ctx, j, type, t.sizes().data(), static_cast<uint32_t>(t.dim()), bytes);
    if (buf == nullptr) {
      *message = "the host refused the buffer for output \"" + c.name + "\" (shape " +
                 lb::FormatShape(t.sizes().data(), t.dim()) + ")";
      return LATHE_BACKEND_INTERNAL;
    }
    if (bytes) std::memcpy(buf, t.data_ptr(), bytes);
  }
  return LATHE_BACKEND_OK;
}

// Forward on zero inputs of batch 1, outputs discarded. "" when it worked
// or was skipped (an input with a -1 dim has no shape to invent).
std::string Warmup(LatheBackendModel& m, int runs) {
  const size_t lead = m.spec.batching() ? 1 : 0;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::string> data;
  for (const lb::TensorSpec& c : m.spec.inputs) {
    std::vector<int64_t> shape(c.dims);
    if (lead) shape.insert(shape.begin(), 1);
    uint64_t count = 1;
    for (int64_t d : shape) {
      if (d < 0) return {};
      count *= static_cast<uint64_t>(d);
    }
    shapes.push_back(std::move(shape));
    data.emplace_back(count * lb::DataTypeSize(c.datatype), '\0');
  }
  std::vector<LatheBackendTensor> tensors(m.spec.inputs.size());
  std::vector<const LatheBackendTensor*> ordered;
  for (size_t i = 0; i < tensors.size(); ++i) {
    tensors[i] = {m.spec.inputs[i].name.c_str(),
                  m.spec.inputs[i].datatype,
                  shapes[i].data(),
                  static_cast<uint32_t>(shapes[i].size()),
                  data[i].data(),
                  data[i].size()};
    ordered.push_back(&tensors[i]);
  }
  std::vector<const char*> names;
  for (const lb::TensorSpec& c : m.spec.outputs) names.push_back(c.name.c_str());
  std::vector<std::string> sink(names.size());
  auto discard = [](void* ctx, uint32_t index, LatheDataType, const int64_t*, uint32_t,
                    uint64_t bytes) -> void* {
    auto& buffers = *static_cast<std::vector<std::string>*>(ctx);
    buffers[index].resize(bytes);
    return buffers[index].data();
  };
  for (int i = 0; i < runs; ++i) {
    std::string message;
    if (Run(m, ordered, names.data(), static_cast<uint32_t>(names.size()), discard, &sink,
            &message) != LATHE_BACKEND_OK) {
      return message;
    }
  }
  return {};
}

}  // namespace

extern "C" {

uint32_t LatheBackendAbiVersion(void) { return LATHE_BACKEND_ABI_VERSION; }

LatheBackendModel* LatheBackendLoad(const char* version_dir, const char* config_json,
                                    int32_t threads, char** error) {
  *error = nullptr;
  try {
    auto m = std::make_unique<LatheBackendModel>();
    if (std::string err = lb::ParseModelSpec(config_json, &m->spec); !err.empty()) {
      *error = lb::LoadInvalid(err);
      return nullptr;
    }
    for (const auto* list : {&m->spec.inputs, &m->spec.outputs}) {
      for (const lb::TensorSpec& c : *list) {
        if (!TorchType(c.datatype)) {
          *error = lb::LoadInvalid("\"" + c.name + "\": datatype " + lb::DataTypeName(c.datatype) +
                                   " is not supported by the torchscript backend");
          return nullptr;
        }
      }
    }
    const std::string file =
        m->spec.model_filename.empty() ? kDefaultModelFile : m->spec.model_filename;
    const std::string path = std::string(version_dir) + "/" + file;
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      *error = lb::LoadNotFound("no TorchScript model file " + path);
      return nullptr;
    }
    m->threads = std::max(1, static_cast<int>(threads));
    RaiseBlasThreads(m->threads);
    UseIntraOpThreads(m->threads);
    try {
      m->module = torch::jit::load(path, c10::Device(c10::kCPU));
    } catch (const c10::Error& e) {
      *error = lb::LoadInvalid(path + " is not a TorchScript model: " + ErrorText(e));
      return nullptr;
    }
    m->module.eval();

    const auto method = m->module.find_method("forward");
    if (!method) {
      *error = lb::LoadInvalid(path + " has no forward method");
      return nullptr;
    }
    const size_t args = method->function().getSchema().arguments().size() - 1;  // self
    if (args != m->spec.inputs.size()) {
      *error = lb::LoadInvalid(path + ": forward takes " + std::to_string(args) +
                               " arguments but the config has " +
                               std::to_string(m->spec.inputs.size()) + " inputs");
      return nullptr;
    }

    const std::string runs_text = m->spec.Parameter("warmup_runs", "2");
    char* end = nullptr;
    const long runs = std::strtol(runs_text.c_str(), &end, 10);
    if (runs_text.empty() || *end != '\0' || runs < 0 || runs > 1000) {
      *error = lb::LoadInvalid("parameters.warmup_runs: \"" + runs_text +
                               "\" is not a number in 0..1000");
      return nullptr;
    }
    std::string warmup_error;
    try {
      warmup_error = Warmup(*m, static_cast<int>(runs));
    } catch (const c10::Error& e) {
      warmup_error = ErrorText(e);
    } catch (const std::exception& e) {
      warmup_error = ErrorText(e);
    }
    if (!warmup_error.empty()) {
      *error = lb::LoadInvalid(path +
                               ": forward on zero inputs of the config's shapes failed "
                               "(parameters.warmup_runs: 0 skips this check): " +
                               warmup_error);
      return nullptr;
    }
    return m.release();
  } catch (const c10::Error& e) {
    *error = lb::ErrorCopy("torchscript load: " + ErrorText(e));
  } catch (const std::exception& e) {
    *error = lb::ErrorCopy("torchscript load: " + ErrorText(e));
  }
  return nullptr;
}

int32_t LatheBackendExecute(LatheBackendModel* model, const LatheBackendTensor* inputs,
                            uint32_t n_inputs, const char* const* output_names, uint32_t n_outputs,
                            LatheAllocOutput alloc, void* alloc_ctx, char** error) {
  *error = nullptr;
  try {
    std::vector<const LatheBackendTensor*> ordered;
    int64_t batch = 0;
    if (std::string err = lb::MatchInputs(model->spec, inputs, n_inputs, &ordered, &batch);
        !err.empty()) {
      *error = lb::ErrorCopy(err);
      return LATHE_BACKEND_INVALID_ARGUMENT;
    }
    std::string message;
    const int32_t code = Run(*model, ordered, output_names, n_outputs, alloc, alloc_ctx, &message);
    if (code != LATHE_BACKEND_OK) *error = lb::ErrorCopy(message);
    return code;
  } catch (const c10::Error& e) {
    const std::string text = ErrorText(e);
    *error = lb::ErrorCopy(text);
    return CodeOf(e, text);
  } catch (const std::exception& e) {
    const std::string text = ErrorText(e);
    *error = lb::ErrorCopy(text);
    return CodeOf(e, text);
  }
}

void LatheBackendUnload(LatheBackendModel* model) { delete model; }

void LatheBackendFreeError(char* error) { std::free(error); }

}  // extern "C"
