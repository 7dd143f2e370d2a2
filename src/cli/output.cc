#include "cli/output.h"

#include <algorithm>

#include "base/yaml.h"

namespace lathe::cli {

StatusOr<OutputFormat> ParseOutputFormat(const std::string& text) {
  if (text == "table" || text.empty()) return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  if (text == "yaml") return OutputFormat::kYaml;
  return InvalidArgumentError("--output: \"" + text + "\" is not one of table, json, yaml",
                              "output");
}

std::string CellText(const JsonValue& object, const std::string& field) {
  const JsonValue* v = object.Find(field);
  if (v == nullptr || v->is_null()) return "-";
  switch (v->type()) {
    case JsonValue::Type::kString: return v->as_string().empty() ? "-" : v->as_string();
    case JsonValue::Type::kBool: return v->as_bool() ? "yes" : "no";
    default: return v->Dump();
  }
}

namespace {

void PrintRows(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 3, ' ');
    }
    out << line << "\n";
  }
}

void PrintDocument(std::ostream& out, OutputFormat format, const JsonValue& doc) {
  if (format == OutputFormat::kJson) {
    out << doc.Dump() << "\n";
  } else {
    out << ToYaml(doc);
  }
}

}  // namespace

void PrintList(std::ostream& out, OutputFormat format, const std::vector<JsonValue>& items,
               const std::vector<Column>& columns) {
  if (format != OutputFormat::kTable) {
    PrintDocument(out, format, JsonValue::MakeObject({{"items", JsonValue::MakeArray(items)}}));
    return;
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  for (const Column& c : columns) header.push_back(c.header);
  rows.push_back(header);
  for (const JsonValue& item : items) {
    std::vector<std::string> row;
    for (const Column& c : columns) row.push_back(CellText(item, c.field));
    rows.push_back(std::move(row));
  }
  PrintRows(out, rows);
}

void PrintObject(std::ostream& out, OutputFormat format, const JsonValue& object,
                 const std::vector<Column>& columns) {
  if (format != OutputFormat::kTable) {
    PrintDocument(out, format, object);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const Column& c : columns) rows.push_back({c.header + ":", CellText(object, c.field)});
  PrintRows(out, rows);
}

}  // namespace lathe::cli
