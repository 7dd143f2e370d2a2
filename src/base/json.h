// JSON for the control plane.
//
// * JsonWriter appends JSON text to a string without building a tree; it is
//   what every response encoder uses.
// * JsonValue is a small immutable tree for request bodies and specs.
//   ParseJson builds it with simdjson; ParseYaml (yaml.h) builds the same tree
//   from YAML, so one decoder serves both.
// * ObjectReader decodes one object field by field, names the offending field
//   in every error ("roles[0].replicas: expected an integer, got a string")
//   and rejects unknown fields in Finish().
// Hot data paths (metric batches, inference bodies) use simdjson directly.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace lathe {

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // Inside an object: the next value's key.
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Uint(uint64_t value);
  // NaN and infinities are written as null (JSON has no spelling for them).
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // Appends already-encoded JSON as one value.
  JsonWriter& Raw(std::string_view json);

  // Key + value shorthands.
  JsonWriter& Field(std::string_view key, std::string_view value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, const char* value) { return Key(key).String(value); }
  JsonWriter& Field(std::string_view key, int64_t value) { return Key(key).Int(value); }
  JsonWriter& Field(std::string_view key, int value) { return Key(key).Int(value); }
  JsonWriter& Field(std::string_view key, bool value) { return Key(key).Bool(value); }

 private:
  void BeforeValue();
  std::string* out_;
  // One entry per open container: true once it holds an element.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

// Appends `s` as a quoted JSON string with escapes.
void AppendJsonString(std::string* out, std::string_view s);

class JsonValue {
 public:
  enum class Type { kNull, kBool, kInt, kDouble, kString, kArray, kObject };
  using Member = std::pair<std::string, JsonValue>;

  JsonValue() = default;
  static JsonValue MakeBool(bool b);
  static JsonValue MakeInt(int64_t i);
  static JsonValue MakeDouble(double d);
  static JsonValue MakeString(std::string s);
  static JsonValue MakeArray(std::vector<JsonValue> items);
  static JsonValue MakeObject(std::vector<Member> members);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_object() const { return type_ == Type::kObject; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_number() const { return type_ == Type::kInt || type_ == Type::kDouble; }

  bool as_bool() const { return bool_; }
  int64_t as_int() const { return int_; }
  double as_double() const { return type_ == Type::kInt ? static_cast<double>(int_) : double_; }
  const std::string& as_string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::vector<Member>& members() const { return members_; }
  // The member named `key`, or nullptr.
  const JsonValue* Find(std::string_view key) const;

  // Compact JSON text.
  void Write(JsonWriter& w) const;
  std::string Dump() const;

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  int64_t int_ = 0;
  double double_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<Member> members_;
};

// "a string", "an integer", ... for error messages.
std::string_view JsonTypeName(JsonValue::Type type);

// Parses a JSON document. Errors are INVALID_ARGUMENT naming the byte offset.
// Objects with a duplicate key are rejected. Nesting is limited to 64 levels.
StatusOr<JsonValue> ParseJson(std::string_view text);

enum class Presence { kOptional, kRequired };

class ObjectReader {
 public:
  // Fails unless `value` is an object. `path` names the value in errors
  // ("" for the document root, "spec", "roles[0]").
  static StatusOr<ObjectReader> Make(const JsonValue& value, std::string path);

  // Each getter leaves `out` untouched when the key is absent (or null) and
  // optional. A present key of the wrong type is an error naming the field.
  Status String(std::string_view key, std::string* out, Presence p = Presence::kOptional);
  Status Int(std::string_view key, int64_t* out, Presence p = Presence::kOptional);
  Status Double(std::string_view key, double* out, Presence p = Presence::kOptional);
  Status Bool(std::string_view key, bool* out, Presence p = Presence::kOptional);
  Status StringList(std::string_view key, std::vector<std::string>* out,
                    Presence p = Presence::kOptional);
  Status StringMap(std::string_view key, std::map<std::string, std::string>* out,
                   Presence p = Presence::kOptional);
  // A nested object or array, for decoders of nested types. nullptr if absent.
  StatusOr<const JsonValue*> Value(std::string_view key, Presence p = Presence::kOptional);

  // The error path of `key`: "spec.name", or "name" at the root.
  std::string PathOf(std::string_view key) const;
  // INVALID_ARGUMENT for the first key no getter asked for.
  Status Finish() const;

 private:
  ObjectReader(const JsonValue* value, std::string path) : value_(value), path_(std::move(path)) {}
  StatusOr<const JsonValue*> Lookup(std::string_view key, Presence p);
  Status TypeError(std::string_view key, std::string_view want, const JsonValue& got) const;

  const JsonValue* value_;
  std::string path_;
  std::vector<std::string> seen_;
};

}  // namespace lathe
