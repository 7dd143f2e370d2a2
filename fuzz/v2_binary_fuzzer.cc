// Fuzzes the KServe V2 binary tensor extension decoder
// (serving/protocols/v2_codec.h). Input layout: 4 bytes, little-endian, the
// Inference-Header-Content-Length (0xffffffff = header absent), then the
// body. Whatever the bytes: no crash, no sanitizer report, no hang, errors
// are INVALID_ARGUMENT, tensors are views that stay inside the body, and a
// request that decodes survives validation, re-encoding and decoding back
// to itself (serving_roundtrip.h).
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "serving_roundtrip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace serving = lathe::serving;
  if (size < 4) return 0;
  uint32_t header;
  std::memcpy(&header, data, 4);
  std::optional<uint64_t> header_length;
  if (header != 0xffffffffu) header_length = header;
  // A body of exactly its own size, so ASan sees any read past its end.
  auto body = std::make_shared<const std::string>(reinterpret_cast<const char*>(data) + 4,
                                                  size - 4);

  lathe::StatusOr<serving::InferRequest> r = serving::DecodeV2Request(body, header_length);
  if (!r.ok()) {
    serving::fuzz::ExpectInvalidArgument(r.status(), "decode V2 binary");
    return 0;
  }
  // A binary tensor is a view into the body and must end inside it (JSON
  // tensors own their bytes elsewhere).
  const char* begin = body->data();
  const char* end = begin + body->size();
  for (const serving::Tensor& t : r->inputs) {
    const char* p = t.data.data();
    if (!t.data.empty() && p >= begin && p < end && t.data.size() > size_t(end - p)) {
      serving::fuzz::Fail("binary view", "tensor " + t.name + " runs past the body");
    }
  }
  serving::fuzz::CheckV2Request(*r);
  return 0;
}
