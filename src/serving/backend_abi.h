/* The C ABI between `lathe serve` and a backend plugin
 * (liblathe_backend_<name>.so, DESIGN.md: "Model backends are shared
 * libraries behind a small C ABI"). Plain C so that a plugin built with
 * another compiler, or linking another C++ runtime's libraries (LibTorch),
 * cannot break the host. serving/backend.cc is the host side.
 *
 * Lifetime: Load → Execute* (one thread at a time per model handle) →
 * Unload. Errors come back as a malloc'd message in *error, freed by the
 * host with LatheBackendFreeError (the plugin's allocator).
 *
 * Tensors are the V2 binary layout (serving/tensor.h): little-endian,
 * row-major, no padding; BYTES elements are a 4-byte length + bytes.
 * Input data is NOT aligned: a plugin that needs alignment copies.
 */
#ifndef LATHE_SERVING_BACKEND_ABI_H_
#define LATHE_SERVING_BACKEND_ABI_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LATHE_BACKEND_ABI_VERSION 1u

/* Values of serving::DataType, in its order (BOOL = 0 … BYTES = 13). */
typedef int32_t LatheDataType;

typedef struct LatheBackendTensor {
  const char* name;      /* NUL-terminated */
  LatheDataType datatype;
  const int64_t* shape;  /* rank entries, batch dimension first when batched */
  uint32_t rank;
  const void* data;
  uint64_t byte_size;
} LatheBackendTensor;

/* Asks the host for the buffer of output `index` (the index into the
 * output_names given to Execute). Returns NULL when the host refuses
 * (too large): the plugin then fails the call. */
typedef void* (*LatheAllocOutput)(void* ctx, uint32_t index, LatheDataType datatype,
                                  const int64_t* shape, uint32_t rank, uint64_t byte_size);

typedef struct LatheBackendModel LatheBackendModel;

enum {
  LATHE_BACKEND_OK = 0,
  LATHE_BACKEND_INVALID_ARGUMENT = 1, /* the input does not suit the model */
  LATHE_BACKEND_INTERNAL = 2,         /* the backend failed */
};

/* Every plugin exports these five symbols. */

/* LATHE_BACKEND_ABI_VERSION as the plugin was built. */
uint32_t LatheBackendAbiVersion(void);

/* Loads the model in `version_dir` (<repository>/<model>/<version>).
 * `config_json` describes it:
 *   {"name": str, "max_batch_size": int, "model_filename": str,
 *    "inputs":  [{"name": str, "datatype": "FP32", "dims": [int…], "optional": bool}],
 *    "outputs": [{"name": str, "datatype": "FP32", "dims": [int…]}],
 *    "parameters": {str: str}}
 * (dims without the batch dimension when max_batch_size > 0; -1 = any;
 * model_filename "" = the backend's default file). A plugin ignores keys
 * it does not know. `threads` = intra-op threads. NULL on failure with
 * *error set; an error starting "NOT_FOUND: " (no model file) or
 * "INVALID_ARGUMENT: " (the model or config is unusable) carries that code
 * to the host, any other message is INTERNAL. */
LatheBackendModel* LatheBackendLoad(const char* version_dir, const char* config_json,
                                    int32_t threads, char** error);

/* Runs one batch; see serving::ModelInstance::Execute. Returns a
 * LATHE_BACKEND_* code; on failure *error is set and no output is valid. */
int32_t LatheBackendExecute(LatheBackendModel* model, const LatheBackendTensor* inputs,
                            uint32_t n_inputs, const char* const* output_names,
                            uint32_t n_outputs, LatheAllocOutput alloc, void* alloc_ctx,
                            char** error);

void LatheBackendUnload(LatheBackendModel* model);

void LatheBackendFreeError(char* error);

#ifdef __cplusplus
}
#endif

#endif /* LATHE_SERVING_BACKEND_ABI_H_ */
