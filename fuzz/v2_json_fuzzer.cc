// Fuzzes the KServe V2 JSON request decoder (serving/protocols/v2_codec.h)
// and, on the same bytes, the TF Serving :predict decoder and the model
// config decoder (JSON form). Whatever the bytes: no crash, no sanitizer
// report, no hang, errors are INVALID_ARGUMENT, and a request that decodes
// survives validation, re-encoding (JSON and binary) and decoding back to
// itself, and being echoed as a response (serving_roundtrip.h).
#include <cstdint>
#include <string_view>

#include "base/json.h"
#include "serving/model_config.h"
#include "serving_roundtrip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace serving = lathe::serving;
  std::string_view body(reinterpret_cast<const char*>(data), size);

  lathe::StatusOr<serving::InferRequest> r = serving::DecodeV2Request(body, std::nullopt);
  if (r.ok()) {
    serving::fuzz::CheckV2Request(*r);
  } else {
    serving::fuzz::ExpectInvalidArgument(r.status(), "decode V2 JSON");
  }

  serving::fuzz::CheckTfServing(body);

  lathe::StatusOr<lathe::JsonValue> tree = lathe::ParseJson(body);
  if (tree.ok()) {
    serving::fuzz::ExpectInvalidArgument(serving::ModelConfigFromJson(*tree, "m").status(),
                                         "model config");
  }
  return 0;
}
