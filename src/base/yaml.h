// YAML documents as JsonValue trees, so specs and config files decode with
// the same ObjectReader as JSON bodies. Scalars follow the YAML 1.2 core
// schema: unquoted null/~, true/false, integers and floats get their types;
// quoted scalars are always strings. Anchors and aliases are expanded.
#pragma once

#include <string_view>

#include "base/json.h"
#include "base/status.h"

namespace lathe {

// Parses one YAML document. An empty document is an empty object. Errors are
// INVALID_ARGUMENT naming the line and column.
StatusOr<JsonValue> ParseYaml(std::string_view text);

}  // namespace lathe

namespace lathe {
// Block-style YAML text for `value` (CLI output, `-o yaml`). Strings that
// would read back as another type are quoted.
std::string ToYaml(const JsonValue& value);
}  // namespace lathe
