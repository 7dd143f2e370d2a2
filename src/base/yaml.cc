#include "base/yaml.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/core.h>

#include "base/strings.h"

namespace lathe {
namespace {

constexpr int kMaxDepth = 64;

// [-+]?[0-9]+
bool IsInteger(const std::string& s) {
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsFloat(const std::string& s) {
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

JsonValue Scalar(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return JsonValue::MakeString(s);  // quoted
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return JsonValue();
  if (s == "true" || s == "True" || s == "TRUE") return JsonValue::MakeBool(true);
  if (s == "false" || s == "False" || s == "FALSE") return JsonValue::MakeBool(false);
  if (IsInteger(s)) {
    errno = 0;
    long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == 0) return JsonValue::MakeInt(v);
    return JsonValue::MakeDouble(std::strtod(s.c_str(), nullptr));
  }
  if (IsFloat(s)) return JsonValue::MakeDouble(std::strtod(s.c_str(), nullptr));
  if (s == ".inf" || s == "+.inf" || s == ".Inf") return JsonValue::MakeDouble(HUGE_VAL);
  if (s == "-.inf" || s == "-.Inf") return JsonValue::MakeDouble(-HUGE_VAL);
  if (s == ".nan" || s == ".NaN") return JsonValue::MakeDouble(std::nan(""));
  return JsonValue::MakeString(s);
}

StatusOr<JsonValue> Convert(const YAML::Node& node, int depth) {
  if (depth > kMaxDepth) {
    return InvalidArgumentError(fmt::format("YAML nesting deeper than {}", kMaxDepth));
  }
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: return JsonValue();
    case YAML::NodeType::Scalar: return Scalar(node);
    case YAML::NodeType::Sequence: {
      std::vector<JsonValue> items;
      for (const YAML::Node& item : node) {
        ASSIGN_OR_RETURN(JsonValue v, Convert(item, depth + 1));
        items.push_back(std::move(v));
      }
      return JsonValue::MakeArray(std::move(items));
    }
    case YAML::NodeType::Map: {
      std::vector<JsonValue::Member> members;
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return InvalidArgumentError(fmt::format("YAML line {}: mapping keys must be scalars",
                                                  kv.first.Mark().line + 1));
        }
        std::string key = kv.first.Scalar();
        for (const auto& m : members) {
          if (m.first == key) {
            return InvalidArgumentError(
                fmt::format("YAML line {}: duplicate key \"{}\"", kv.first.Mark().line + 1, key),
                key);
          }
        }
        ASSIGN_OR_RETURN(JsonValue v, Convert(kv.second, depth + 1));
        members.emplace_back(std::move(key), std::move(v));
      }
      return JsonValue::MakeObject(std::move(members));
    }
  }
  return InternalError("unknown YAML node type");
}

}  // namespace

StatusOr<JsonValue> ParseYaml(std::string_view text) {
  // JSON bodies are checked by simdjson; YAML must be UTF-8 too, or specs
  // would carry bytes that PostgreSQL's TEXT and JSON readers refuse later.
  if (size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
    size_t line = 1 + std::count(text.begin(), text.begin() + bad, '\n');
    size_t line_start = text.rfind('\n', bad == 0 ? 0 : bad - 1);
    size_t column = line_start == std::string_view::npos || bad == 0 ? bad + 1 : bad - line_start;
    return InvalidArgumentError(fmt::format("malformed YAML at line {}, column {}: byte 0x{:02x} "
                                            "at offset {} is not UTF-8",
                                            line, column, static_cast<unsigned char>(text[bad]),
                                            bad));
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(fmt::format("malformed YAML at line {}, column {}: {}",
                                            e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root.IsDefined() || root.IsNull()) return JsonValue::MakeObject({});
  try {
    return Convert(root, 0);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(fmt::format("malformed YAML at line {}: {}", e.mark.line + 1, e.msg));
  }
}

}  // namespace lathe

namespace lathe {
namespace {

void Emit(YAML::Emitter& out, const JsonValue& v) {
  switch (v.type()) {
    case JsonValue::Type::kNull: out << YAML::Null; break;
    case JsonValue::Type::kBool: out << v.as_bool(); break;
    case JsonValue::Type::kInt: out << v.as_int(); break;
    case JsonValue::Type::kDouble: out << v.as_double(); break;
    case JsonValue::Type::kString: {
      const std::string& s = v.as_string();
      // Quote what the core schema would read as null, bool or number.
      JsonValue back = Scalar(YAML::Node(s));
      if (back.type() != JsonValue::Type::kString) {
        out << YAML::DoubleQuoted << s;
      } else {
        out << s;
      }
      break;
    }
    case JsonValue::Type::kArray:
      out << YAML::BeginSeq;
      for (const JsonValue& item : v.items()) Emit(out, item);
      out << YAML::EndSeq;
      break;
    case JsonValue::Type::kObject:
      out << YAML::BeginMap;
      for (const auto& [k, item] : v.members()) {
        out << YAML::Key << k << YAML::Value;
        Emit(out, item);
      }
      out << YAML::EndMap;
      break;
  }
}

}  // namespace

std::string ToYaml(const JsonValue& value) {
  YAML::Emitter out;
  Emit(out, value);
  std::string text = out.c_str();
  text.push_back('\n');
  return text;
}

}  // namespace lathe
