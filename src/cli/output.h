// How CLI commands print: a table for people, or -o json / -o yaml for
// scripts (the API's objects as they came, lists as {"items": […]}).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "base/json.h"
#include "base/status.h"

namespace lathe::cli {

enum class OutputFormat { kTable, kJson, kYaml };

// "table" | "json" | "yaml"; INVALID_ARGUMENT naming --output otherwise.
StatusOr<OutputFormat> ParseOutputFormat(const std::string& text);

// One table column: its header and the field of each object it shows
// (dotted paths not supported; booleans print as yes/no, null as "-").
struct Column {
  std::string header;
  std::string field;
};

// Prints `items` (objects) as a table with the given columns, or the whole
// list as JSON/YAML.
void PrintList(std::ostream& out, OutputFormat format, const std::vector<JsonValue>& items,
               const std::vector<Column>& columns);
// Prints one object: as a two-column FIELD/VALUE table of `columns`, or
// entirely as JSON/YAML.
void PrintObject(std::ostream& out, OutputFormat format, const JsonValue& object,
                 const std::vector<Column>& columns);

// The cell text of `field` in `object`.
std::string CellText(const JsonValue& object, const std::string& field);

}  // namespace lathe::cli
