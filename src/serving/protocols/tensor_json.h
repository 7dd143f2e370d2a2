// Tensor elements in JSON, shared by the V2 and TF Serving codecs: reading
// them from a simdjson tree with the datatype's coercion rules, writing them
// without a DOM, and the small text helpers both protocols need.
//
// Coercion when reading (the rules documented in docs/serving.md):
//   BOOL                 true / false only
//   UINT*, INT*          integers in the type's range; a number with no
//                        fraction (3.0, 1e3) counts as an integer
//   FP32, FP64           any number; "NaN", "Infinity", "-Infinity" (also
//                        "Inf", "-Inf", any case) as strings; FP32 rejects
//                        finite values beyond its range instead of making
//                        them infinite
//   FP16, BF16           rejected (no JSON spelling; use binary data)
//   BYTES                strings (and, where allowed, {"b64": "..."})
// Writing: integers in decimal, floats in the shortest text that reads back
// to the same value with a ".0" when it would otherwise read as an integer,
// non-finite values as the bare literals NaN, Infinity, -Infinity (as
// Triton and TF Serving write them; Python's json reads them, strict
// parsers do not: such clients should ask for binary data), FP16/BF16
// converted exactly to their float value, BYTES as JSON strings.
//
// Internal to src/serving/protocols: the header includes simdjson.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "serving/tensor.h"

namespace lathe::serving::tensor_json {

// Parses `json` with the calling thread's simdjson parser; the tree is valid
// until the thread parses again. On a syntax error, retries once with the
// non-standard literals NaN, Infinity, -Infinity quoted
// (QuoteNonFiniteLiterals; `scratch` holds that text), then reports where
// the JSON is malformed (INVALID_ARGUMENT). Nesting is limited to
// simdjson's default depth (1024).
StatusOr<simdjson::dom::element> ParseDocument(std::string_view json, std::string* scratch);

// Put one on the stack before ParseDocument: when it goes out of scope (after
// the tree is used) it frees the thread's parser buffers if one large body
// grew them past 16 MiB, so a thread does not keep them forever.
struct ParserTrim {
  ~ParserTrim();
};

// Appends the leaves of `value` — a scalar, or arrays nested at most
// `max_depth` deep (max_depth 0 = a scalar only) — converted to `type`, to
// `out` in row-major order. Stops after max_count + 1 leaves. Returns the
// number appended (max_count + 1 means "more than max_count"). For
// fixed-size types it reserves room for max_count elements first: callers
// bound max_count by what the document can hold. Errors (INVALID_ARGUMENT)
// name the leaf's flat index, not the tensor (callers prefix it):
// `data[3]: expected a number, got a string`.
StatusOr<int64_t> AppendLeaves(simdjson::dom::element value, DataType type, size_t max_depth,
                               int64_t max_count, bool allow_b64, std::string* out);

// Scalar leaves under `value` (arrays nested at most max_depth deep are
// descended; deeper ones count as one leaf). For error messages.
int64_t CountLeaves(simdjson::dom::element value, size_t max_depth);

// "an array", "a string", ... for error messages.
std::string_view TypeName(simdjson::dom::element e);

// Writes a tensor's elements as JSON, in order, from its bytes (the tensor
// layout). Running past the end of the bytes, or a malformed BYTES element,
// is INTERNAL: the tensor came from a backend, so it is a bug, not bad input.
// A BYTES element that is not valid UTF-8 cannot be a JSON string: written
// as a string (not b64) it fails with INVALID_ARGUMENT — the client has to
// ask for that output in binary (or base64) form.
class ElementWriter {
 public:
  // With `b64`, BYTES elements are written as {"b64": "<base64>"}, else as
  // JSON strings.
  ElementWriter(DataType type, std::string_view bytes, bool b64)
      : type_(type), bytes_(bytes), b64_(b64) {}

  // Appends the next `count` elements separated by commas (no brackets).
  Status AppendRun(int64_t count, std::string* out);
  // Appends the next elements as arrays nested as `shape` (a bare value for
  // rank 0).
  Status AppendNested(std::span<const int64_t> shape, std::string* out);
  // Whether every byte has been written.
  bool done() const { return pos_ == bytes_.size(); }

 private:
  Status AppendOne(std::string* out);

  DataType type_;
  std::string_view bytes_;
  bool b64_;
  size_t pos_ = 0;
  int64_t bytes_index_ = 0;  // BYTES elements written, for errors
};

// Appends `t` as a flat JSON array, after checking that its bytes hold its
// shape's elements (INTERNAL otherwise). Errors start with the tensor's
// quoted name.
Status AppendFlat(const Tensor& t, std::string* out);

void AppendInt(int64_t v, std::string* out);
void AppendUint(uint64_t v, std::string* out);
void AppendFloat(float v, std::string* out);
void AppendDouble(double v, std::string* out);

float HalfToFloat(uint16_t h);
float Bf16ToFloat(uint16_t h);

// When `json` fails to parse, it may hold the non-standard literals NaN,
// Infinity or -Infinity: returns true and sets `out` to `json` with each
// such literal outside a string quoted ("NaN"), which the coercion rules
// read as the value. Returns false when there is none.
bool QuoteNonFiniteLiterals(std::string_view json, std::string* out);

// RFC 4648 base64 with the standard alphabet, padded. Decoding accepts
// missing padding and rejects anything else that is not base64.
std::string Base64Encode(std::string_view data);
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace lathe::serving::tensor_json
