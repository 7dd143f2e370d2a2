// Warmup requests from a model's config (Triton's model_warmup,
// protocols.md §2): a version is not READY until every instance has run
// every warmup sample `count` times.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "serving/backend.h"
#include "serving/model_config.h"
#include "serving/tensor.h"

namespace lathe::serving {

// The inputs of one warmup sample, in config.inputs order: batch_size rows
// (a leading batch dimension when the model batches) of the warmup's dims,
// zero-filled or random (floats in [0, 1), integers in 0..9, BOOL 0/1,
// BYTES: empty strings for zero, 1-8 digits for random). `seed` makes
// random data reproducible.
std::vector<Tensor> WarmupInputs(const ModelConfig& config, const Warmup& warmup, uint64_t seed);

// Runs every warmup of `config` on `instance` (each `count` times). The
// first failure is returned, prefixed with the warmup's name.
Status RunWarmup(const ModelConfig& config, ModelInstance& instance);

}  // namespace lathe::serving
