#include "base/json.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <fmt/core.h>

namespace lathe {

// ---------------------------------------------------------------- JsonWriter

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending unescaped run
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_element_.empty()) {
    if (has_element_.back()) out_->push_back(',');
    has_element_.back() = true;
  }
}

JsonWriter& JsonWriter::BeginObject() {
  BeforeValue();
  out_->push_back('{');
  has_element_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  out_->push_back('}');
  has_element_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  BeforeValue();
  out_->push_back('[');
  has_element_.push_back(false);
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  out_->push_back(']');
  has_element_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  BeforeValue();
  AppendJsonString(out_, key);
  out_->push_back(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view value) {
  BeforeValue();
  AppendJsonString(out_, value);
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t value) {
  BeforeValue();
  fmt::format_to(std::back_inserter(*out_), "{}", value);
  return *this;
}

JsonWriter& JsonWriter::Uint(uint64_t value) {
  BeforeValue();
  fmt::format_to(std::back_inserter(*out_), "{}", value);
  return *this;
}

JsonWriter& JsonWriter::Double(double value) {
  BeforeValue();
  if (!std::isfinite(value)) {
    out_->append("null");
  } else {
    // Shortest representation that round-trips.
    fmt::format_to(std::back_inserter(*out_), "{}", value);
  }
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  BeforeValue();
  out_->append(value ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::Null() {
  BeforeValue();
  out_->append("null");
  return *this;
}

JsonWriter& JsonWriter::Raw(std::string_view json) {
  BeforeValue();
  out_->append(json);
  return *this;
}

// ----------------------------------------------------------------- JsonValue

JsonValue JsonValue::MakeBool(bool b) {
  JsonValue v;
  v.type_ = Type::kBool;
  v.bool_ = b;
  return v;
}
JsonValue JsonValue::MakeInt(int64_t i) {
  JsonValue v;
  v.type_ = Type::kInt;
  v.int_ = i;
  return v;
}
JsonValue JsonValue::MakeDouble(double d) {
  JsonValue v;
  v.type_ = Type::kDouble;
  v.double_ = d;
  return v;
}
JsonValue JsonValue::MakeString(std::string s) {
  JsonValue v;
  v.type_ = Type::kString;
  v.string_ = std::move(s);
  return v;
}
JsonValue JsonValue::MakeArray(std::vector<JsonValue> items) {
  JsonValue v;
  v.type_ = Type::kArray;
  v.items_ = std::move(items);
  return v;
}
JsonValue JsonValue::MakeObject(std::vector<Member> members) {
  JsonValue v;
  v.type_ = Type::kObject;
  v.members_ = std::move(members);
  return v;
}

const JsonValue* JsonValue::Find(std::string_view key) const {
  for (const Member& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

void JsonValue::Write(JsonWriter& w) const {
  switch (type_) {
    case Type::kNull: w.Null(); break;
    case Type::kBool: w.Bool(bool_); break;
    case Type::kInt: w.Int(int_); break;
    case Type::kDouble: w.Double(double_); break;
    case Type::kString: w.String(string_); break;
    case Type::kArray:
      w.BeginArray();
      for (const JsonValue& item : items_) item.Write(w);
      w.EndArray();
      break;
    case Type::kObject:
      w.BeginObject();
      for (const Member& m : members_) {
        w.Key(m.first);
        m.second.Write(w);
      }
      w.EndObject();
      break;
  }
}

std::string JsonValue::Dump() const {
  std::string out;
  JsonWriter w(&out);
  Write(w);
  return out;
}

std::string_view JsonTypeName(JsonValue::Type type) {
  switch (type) {
    case JsonValue::Type::kNull: return "null";
    case JsonValue::Type::kBool: return "a boolean";
    case JsonValue::Type::kInt: return "an integer";
    case JsonValue::Type::kDouble: return "a number";
    case JsonValue::Type::kString: return "a string";
    case JsonValue::Type::kArray: return "an array";
    case JsonValue::Type::kObject: return "an object";
  }
  return "a value";
}

// ------------------------------------------------------------------- parsing

namespace {

constexpr int kMaxDepth = 64;

// Finds the byte offset of the first syntax error, for error messages only
// (simdjson reports what went wrong but not where). Returns false with
// `offset` and `what` set; true if no error is found.
class SyntaxLocator {
 public:
  explicit SyntaxLocator(std::string_view s) : s_(s) {}
  bool Check(size_t* offset, std::string* what) {
    SkipWs();
    bool ok = Value(0);
    if (ok) {
      SkipWs();
      if (pos_ != s_.size()) ok = Fail("unexpected data after the JSON value");
    }
    *offset = pos_;
    *what = what_;
    return ok;
  }

 private:
  bool Fail(const char* what) {
    what_ = what;
    return false;
  }
  void SkipWs() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool Literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) return Fail("invalid literal");
    pos_ += lit.size();
    return true;
  }
  bool String() {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return Fail("control character in string");
      if (c == '\\') {
        ++pos_;
        if (pos_ >= s_.size()) break;
        char e = s_[pos_];
        if (e == 'u') {
          for (int i = 1; i <= 4; ++i) {
            if (pos_ + i >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[pos_ + i])))
              return Fail("invalid \\u escape");
          }
          pos_ += 4;
        } else if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
          return Fail("invalid escape");
        }
      }
      ++pos_;
    }
    return Fail("unterminated string");
  }
  bool Number() {
    size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    auto digits = [&] {
      size_t d = pos_;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      return pos_ > d;
    };
    if (!digits()) return Fail("invalid number");
    if (s_[start] == '0' || (s_[start] == '-' && s_[start + 1] == '0')) {
      if (pos_ - start > (s_[start] == '-' ? 2u : 1u)) return Fail("leading zero in number");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digits()) return Fail("invalid number");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digits()) return Fail("invalid number");
    }
    return true;
  }
  bool Value(int depth) {
    if (depth > kMaxDepth) return Fail("nesting too deep");
    if (pos_ >= s_.size()) return Fail("unexpected end of input");
    char c = s_[pos_];
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++pos_;
      SkipWs();
      if (pos_ < s_.size() && s_[pos_] == close) {
        ++pos_;
        return true;
      }
      while (true) {
        SkipWs();
        if (c == '{') {
          if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a quoted object key");
          if (!String()) return false;
          SkipWs();
          if (pos_ >= s_.size() || s_[pos_] != ':') return Fail("expected ':'");
          ++pos_;
          SkipWs();
        }
        if (!Value(depth + 1)) return false;
        SkipWs();
        if (pos_ >= s_.size()) return Fail("unexpected end of input");
        if (s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (s_[pos_] == close) {
          ++pos_;
          return true;
        }
        return Fail(c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
    if (c == '"') return String();
    if (c == 't') return Literal("true");
    if (c == 'f') return Literal("false");
    if (c == 'n') return Literal("null");
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return Number();
    return Fail("unexpected character");
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string what_;
};

StatusOr<JsonValue> Convert(simdjson::dom::element e, int depth) {
  if (depth > kMaxDepth) {
    return InvalidArgumentError(fmt::format("malformed JSON: nesting deeper than {}", kMaxDepth));
  }
  switch (e.type()) {
    case simdjson::dom::element_type::NULL_VALUE: return JsonValue();
    case simdjson::dom::element_type::BOOL: return JsonValue::MakeBool(bool(e));
    case simdjson::dom::element_type::INT64: return JsonValue::MakeInt(int64_t(e));
    case simdjson::dom::element_type::UINT64:
      return JsonValue::MakeDouble(static_cast<double>(uint64_t(e)));
    case simdjson::dom::element_type::DOUBLE: return JsonValue::MakeDouble(double(e));
    case simdjson::dom::element_type::STRING:
      return JsonValue::MakeString(std::string(std::string_view(e)));
    case simdjson::dom::element_type::ARRAY: {
      std::vector<JsonValue> items;
      for (simdjson::dom::element item : simdjson::dom::array(e)) {
        ASSIGN_OR_RETURN(JsonValue v, Convert(item, depth + 1));
        items.push_back(std::move(v));
      }
      return JsonValue::MakeArray(std::move(items));
    }
    case simdjson::dom::element_type::OBJECT: {
      std::vector<JsonValue::Member> members;
      for (simdjson::dom::key_value_pair kv : simdjson::dom::object(e)) {
        std::string key(kv.key);
        for (const auto& m : members) {
          if (m.first == key) {
            return InvalidArgumentError(fmt::format("duplicate key \"{}\" in JSON object", key),
                                        key);
          }
        }
        ASSIGN_OR_RETURN(JsonValue v, Convert(kv.value, depth + 1));
        members.emplace_back(std::move(key), std::move(v));
      }
      return JsonValue::MakeObject(std::move(members));
    }
  }
  return InternalError("unknown JSON element type");
}

}  // namespace

StatusOr<JsonValue> ParseJson(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::error_code err = parser.parse(text.data(), text.size(), true).get(root);
  if (err != simdjson::SUCCESS) {
    size_t offset = 0;
    std::string what;
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      return InvalidArgumentError("malformed JSON: empty body");
    }
    if (!SyntaxLocator(text).Check(&offset, &what)) {
      return InvalidArgumentError(fmt::format("malformed JSON at byte {}: {}", offset, what));
    }
    return InvalidArgumentError(
        fmt::format("malformed JSON: {}", simdjson::error_message(err)));
  }
  return Convert(root, 0);
}

// -------------------------------------------------------------- ObjectReader

StatusOr<ObjectReader> ObjectReader::Make(const JsonValue& value, std::string path) {
  if (!value.is_object()) {
    return InvalidArgumentError(
        fmt::format("{}: expected an object, got {}", path.empty() ? "body" : path,
                    JsonTypeName(value.type())),
        path);
  }
  return ObjectReader(&value, std::move(path));
}

std::string ObjectReader::PathOf(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return path_ + "." + std::string(key);
}

StatusOr<const JsonValue*> ObjectReader::Lookup(std::string_view key, Presence p) {
  seen_.emplace_back(key);
  const JsonValue* v = value_->Find(key);
  if (v == nullptr || v->is_null()) {
    if (p == Presence::kRequired) {
      return InvalidArgumentError(fmt::format("{}: required field is missing", PathOf(key)),
                                  PathOf(key));
    }
    return nullptr;
  }
  return v;
}

Status ObjectReader::TypeError(std::string_view key, std::string_view want,
                               const JsonValue& got) const {
  return InvalidArgumentError(
      fmt::format("{}: expected {}, got {}", PathOf(key), want, JsonTypeName(got.type())),
      PathOf(key));
}

Status ObjectReader::String(std::string_view key, std::string* out, Presence p) {
  ASSIGN_OR_RETURN(const JsonValue* v, Lookup(key, p));
  if (v == nullptr) return OkStatus();
  if (!v->is_string()) return TypeError(key, "a string", *v);
  *out = v->as_string();
  return OkStatus();
}

Status ObjectReader::Int(std::string_view key, int64_t* out, Presence p) {
  ASSIGN_OR_RETURN(const JsonValue* v, Lookup(key, p));
  if (v == nullptr) return OkStatus();
  if (v->type() == JsonValue::Type::kInt) {
    *out = v->as_int();
    return OkStatus();
  }
  if (v->type() == JsonValue::Type::kDouble) {
    double d = v->as_double();
    if (std::trunc(d) == d && std::fabs(d) < 9.007199254740992e15) {
      *out = static_cast<int64_t>(d);
      return OkStatus();
    }
  }
  return TypeError(key, "an integer", *v);
}

Status ObjectReader::Double(std::string_view key, double* out, Presence p) {
  ASSIGN_OR_RETURN(const JsonValue* v, Lookup(key, p));
  if (v == nullptr) return OkStatus();
  if (!v->is_number()) return TypeError(key, "a number", *v);
  *out = v->as_double();
  return OkStatus();
}

Status ObjectReader::Bool(std::string_view key, bool* out, Presence p) {
  ASSIGN_OR_RETURN(const JsonValue* v, Lookup(key, p));
  if (v == nullptr) return OkStatus();
  if (v->type() != JsonValue::Type::kBool) return TypeError(key, "a boolean", *v);
  *out = v->as_bool();
  return OkStatus();
}

Status ObjectReader::StringList(std::string_view key, std::vector<std::string>* out, Presence p) {
  ASSIGN_OR_RETURN(const JsonValue* v, Lookup(key, p));
  if (v == nullptr) return OkStatus();
  if (!v->is_array()) return TypeError(key, "an array of strings", *v);
  std::vector<std::string> result;
  for (size_t i = 0; i < v->items().size(); ++i) {
    const JsonValue& item = v->items()[i];
    if (!item.is_string()) {
      std::string path = fmt::format("{}[{}]", PathOf(key), i);
      return InvalidArgumentError(
          fmt::format("{}: expected a string, got {}", path, JsonTypeName(item.type())), path);
    }
    result.push_back(item.as_string());
  }
  *out = std::move(result);
  return OkStatus();
}

Status ObjectReader::StringMap(std::string_view key, std::map<std::string, std::string>* out,
                               Presence p) {
  ASSIGN_OR_RETURN(const JsonValue* v, Lookup(key, p));
  if (v == nullptr) return OkStatus();
  if (!v->is_object()) return TypeError(key, "an object of strings", *v);
  std::map<std::string, std::string> result;
  for (const auto& [k, item] : v->members()) {
    if (!item.is_string()) {
      std::string path = PathOf(key) + "." + k;
      return InvalidArgumentError(
          fmt::format("{}: expected a string, got {}", path, JsonTypeName(item.type())), path);
    }
    result[k] = item.as_string();
  }
  *out = std::move(result);
  return OkStatus();
}

StatusOr<const JsonValue*> ObjectReader::Value(std::string_view key, Presence p) {
  return Lookup(key, p);
}

Status ObjectReader::Finish() const {
  for (const auto& [k, v] : value_->members()) {
    if (std::find(seen_.begin(), seen_.end(), k) == seen_.end()) {
      return InvalidArgumentError(fmt::format("{}: unknown field", PathOf(k)), PathOf(k));
    }
  }
  return OkStatus();
}

}  // namespace lathe
