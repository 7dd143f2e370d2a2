#include "tracking/search.h"

#include <fmt/core.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "base/strings.h"

namespace lathe::tracking::search {
namespace {

const AttributeSet& RunAttrs() {
  static const AttributeSet* const kRun = new AttributeSet{
      {"status", "run_name", "run_id", "user_id", "artifact_uri"}, {"start_time", "end_time"}};
  return *kRun;
}

bool Contains(const std::vector<std::string_view>& list, std::string_view key) {
  for (std::string_view a : list) {
    if (key == a) return true;
  }
  return false;
}

std::string AttributeList(const AttributeSet& attrs) {
  std::string out;
  for (const auto* list : {&attrs.strings, &attrs.numbers}) {
    for (std::string_view a : *list) {
      if (!out.empty()) out += ", ";
      out += a;
    }
  }
  return out;
}

bool IsKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':' ||
         c == '/' || c == '-';
}

// A recursive-descent parser over one input string; `pos_` is a byte offset.
class Parser {
 public:
  Parser(std::string_view text, std::string_view field, const AttributeSet& attrs)
      : text_(text), field_(field), attrs_(attrs) {}

  Status Error(size_t pos, std::string_view what) const {
    return InvalidArgumentError(fmt::format("{}: {} at position {}", field_, what, pos + 1),
                                std::string(field_));
  }
  Status ErrorHere(std::string_view what) const {
    if (AtEnd()) return Error(pos_, fmt::format("{}, found the end", what));
    return Error(pos_, fmt::format("{}, found '{}'", what, Snippet()));
  }

  void SkipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ >= text_.size();
  }
  bool AtEnd() const {
    size_t p = pos_;
    while (p < text_.size() && std::isspace(static_cast<unsigned char>(text_[p]))) ++p;
    return p >= text_.size();
  }
  std::string_view Snippet() const {
    size_t p = pos_;
    while (p < text_.size() && std::isspace(static_cast<unsigned char>(text_[p]))) ++p;
    size_t end = p;
    while (end < text_.size() && end - p < 20 && !std::isspace(static_cast<unsigned char>(text_[end]))) {
      ++end;
    }
    return text_.substr(p, std::max<size_t>(end - p, 1));
  }

  // A bare word of letters (keywords: and, or, like, in, not, asc, desc).
  std::string_view PeekWord() {
    SkipSpace();
    size_t end = pos_;
    while (end < text_.size() && std::isalpha(static_cast<unsigned char>(text_[end]))) ++end;
    return text_.substr(pos_, end - pos_);
  }
  bool ConsumeWord(std::string_view word) {
    std::string_view w = PeekWord();
    if (!EqualsIgnoreCaseAscii(w, word)) return false;
    size_t end = pos_ + w.size();
    if (end < text_.size() && IsKeyChar(text_[end])) return false;
    pos_ = end;
    return true;
  }

  // identifier := [type "."] key
  Status Identifier(EntityType* type, std::string* key) {
    SkipSpace();
    size_t start = pos_;
    if (AtEnd()) return ErrorHere("expected an identifier");
    std::string first;
    bool first_quoted = false;
    RETURN_IF_ERROR(KeyPart(&first, &first_quoted, /*stop_at_dot=*/true));
    if (!first_quoted && pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (EqualsIgnoreCaseAscii(first, "metrics") || EqualsIgnoreCaseAscii(first, "metric")) {
        *type = EntityType::kMetric;
      } else if (EqualsIgnoreCaseAscii(first, "params") || EqualsIgnoreCaseAscii(first, "param") ||
                 EqualsIgnoreCaseAscii(first, "parameters") || EqualsIgnoreCaseAscii(first, "parameter")) {
        *type = EntityType::kParam;
      } else if (EqualsIgnoreCaseAscii(first, "tags") || EqualsIgnoreCaseAscii(first, "tag")) {
        *type = EntityType::kTag;
      } else if (EqualsIgnoreCaseAscii(first, "attributes") || EqualsIgnoreCaseAscii(first, "attribute") ||
                 EqualsIgnoreCaseAscii(first, "attr") || EqualsIgnoreCaseAscii(first, "run")) {
        *type = EntityType::kAttribute;
      } else {
        return Error(start, fmt::format("unknown identifier type '{}' (expected metrics, params, "
                                        "tags or attributes)",
                                        first));
      }
      bool quoted = false;
      if (pos_ >= text_.size() || std::isspace(static_cast<unsigned char>(text_[pos_]))) {
        return Error(pos_, "expected a key after '.'");
      }
      RETURN_IF_ERROR(KeyPart(key, &quoted, /*stop_at_dot=*/false));
      if (key->empty()) return Error(pos_, "expected a key after '.'");
    } else {
      *type = EntityType::kAttribute;
      *key = first;
    }
    if (*type == EntityType::kAttribute) {
      std::string lower;
      for (char c : *key) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      if (!Contains(attrs_.strings, lower) && !Contains(attrs_.numbers, lower)) {
        return Error(start, fmt::format("unknown attribute '{}' (expected one of {})", *key,
                                        AttributeList(attrs_)));
      }
      *key = lower;
    }
    return OkStatus();
  }

  // A plain key (key chars), or one quoted with ` or ".
  Status KeyPart(std::string* out, bool* quoted, bool stop_at_dot) {
    *quoted = false;
    if (pos_ < text_.size() && (text_[pos_] == '`' || text_[pos_] == '"')) {
      char q = text_[pos_];
      size_t start = pos_;
      size_t end = text_.find(q, pos_ + 1);
      if (end == std::string_view::npos) return Error(start, "unterminated quoted key");
      *out = std::string(text_.substr(pos_ + 1, end - pos_ - 1));
      pos_ = end + 1;
      *quoted = true;
      if (out->empty()) return Error(start, "empty key");
      return OkStatus();
    }
    size_t start = pos_;
    while (pos_ < text_.size() && IsKeyChar(text_[pos_]) && !(stop_at_dot && text_[pos_] == '.')) {
      ++pos_;
    }
    if (pos_ == start) return ErrorHere("expected an identifier");
    *out = std::string(text_.substr(start, pos_ - start));
    return OkStatus();
  }

  StatusOr<Op> Operator() {
    SkipSpace();
    auto starts = [&](std::string_view s) { return text_.substr(pos_).starts_with(s); };
    if (starts("!=") || starts("<>")) return pos_ += 2, Op::kNe;
    if (starts("<=")) return pos_ += 2, Op::kLe;
    if (starts(">=")) return pos_ += 2, Op::kGe;
    if (starts("==")) return pos_ += 2, Op::kEq;
    if (starts("=")) return pos_ += 1, Op::kEq;
    if (starts("<")) return pos_ += 1, Op::kLt;
    if (starts(">")) return pos_ += 1, Op::kGt;
    if (ConsumeWord("like")) return Op::kLike;
    if (ConsumeWord("ilike")) return Op::kILike;
    if (ConsumeWord("in")) return Op::kIn;
    size_t save = pos_;
    if (ConsumeWord("not")) {
      if (ConsumeWord("in")) return Op::kNotIn;
      pos_ = save;
    }
    return ErrorHere("expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN)");
  }

  Status QuotedString(std::string* out) {
    SkipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      return ErrorHere("expected a quoted string");
    }
    char q = text_[pos_];
    size_t start = pos_;
    ++pos_;
    out->clear();
    while (true) {
      if (pos_ >= text_.size()) return Error(start, "unterminated string");
      char c = text_[pos_++];
      if (c == q) {
        // SQL style: a doubled quote is one quote character.
        if (pos_ < text_.size() && text_[pos_] == q) {
          out->push_back(q);
          ++pos_;
          continue;
        }
        return OkStatus();
      }
      out->push_back(c);
    }
  }

  Status Number(double* out) {
    SkipSpace();
    size_t start = pos_;
    size_t end = pos_;
    if (end < text_.size() && (text_[end] == '-' || text_[end] == '+')) ++end;
    while (end < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '.' ||
            ((text_[end] == '-' || text_[end] == '+') && (text_[end - 1] == 'e' || text_[end - 1] == 'E')))) {
      ++end;
    }
    std::string token(text_.substr(start, end - start));
    if (token.empty()) return ErrorHere("expected a number");
    char* parsed_end = nullptr;
    double v = std::strtod(token.c_str(), &parsed_end);
    if (parsed_end != token.c_str() + token.size() || token == "+" || token == "-") {
      return Error(start, fmt::format("expected a number, found '{}'", token));
    }
    *out = v;
    pos_ = end;
    return OkStatus();
  }

  Status List(std::vector<std::string>* out) {
    SkipSpace();
    if (pos_ >= text_.size() || text_[pos_] != '(') return ErrorHere("expected '(' starting a list");
    ++pos_;
    while (true) {
      std::string item;
      RETURN_IF_ERROR(QuotedString(&item));
      out->push_back(std::move(item));
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ')') {
        ++pos_;
        return OkStatus();
      }
      return ErrorHere("expected ',' or ')' in a list");
    }
  }

  StatusOr<Comparison> Clause() {
    Comparison c;
    SkipSpace();
    RETURN_IF_ERROR(Identifier(&c.type, &c.key));
    SkipSpace();
    size_t op_pos = pos_;
    ASSIGN_OR_RETURN(c.op, Operator());
    auto bad_op = [&](std::string_view allowed) {
      return Error(op_pos, fmt::format("operator {} is not allowed here; {} takes {}", OpName(c.op),
                                       Describe(c), allowed));
    };
    const bool numeric =
        c.type == EntityType::kMetric || (c.type == EntityType::kAttribute && Contains(attrs_.numbers, c.key));
    if (numeric) {
      if (c.op == Op::kLike || c.op == Op::kILike || c.op == Op::kIn || c.op == Op::kNotIn) {
        return bad_op("=, !=, <, <=, >, >=");
      }
      RETURN_IF_ERROR(Number(&c.number));
      return c;
    }
    if (c.op == Op::kLt || c.op == Op::kLe || c.op == Op::kGt || c.op == Op::kGe) {
      return bad_op(c.type == EntityType::kAttribute ? "=, !=, LIKE, ILIKE, IN, NOT IN"
                                                     : "=, !=, LIKE, ILIKE");
    }
    if (c.op == Op::kIn || c.op == Op::kNotIn) {
      if (c.type != EntityType::kAttribute) return bad_op("=, !=, LIKE, ILIKE");
      RETURN_IF_ERROR(List(&c.list));
      return c;
    }
    RETURN_IF_ERROR(QuotedString(&c.text));
    return c;
  }

  static std::string Describe(const Comparison& c) {
    switch (c.type) {
      case EntityType::kMetric: return "metrics." + c.key;
      case EntityType::kParam: return "params." + c.key;
      case EntityType::kTag: return "tags." + c.key;
      case EntityType::kAttribute: return "attributes." + c.key;
    }
    return c.key;
  }

  StatusOr<std::vector<Comparison>> Filter() {
    std::vector<Comparison> out;
    if (AtEnd()) return out;
    while (true) {
      ASSIGN_OR_RETURN(Comparison c, Clause());
      out.push_back(std::move(c));
      if (AtEnd()) return out;
      if (ConsumeWord("and")) continue;
      if (EqualsIgnoreCaseAscii(PeekWord(), "or")) {
        return ErrorHere("OR is not supported (only AND joins clauses, as in MLflow)");
      }
      return ErrorHere("expected AND or the end of the filter");
    }
  }

  StatusOr<OrderKey> Order() {
    OrderKey k;
    if (AtEnd()) return ErrorHere("expected an identifier");
    RETURN_IF_ERROR(Identifier(&k.type, &k.key));
    if (AtEnd()) return k;
    if (ConsumeWord("asc")) {
      k.ascending = true;
    } else if (ConsumeWord("desc")) {
      k.ascending = false;
    } else {
      return ErrorHere("expected ASC, DESC or the end");
    }
    if (!AtEnd()) return ErrorHere("expected the end after ASC/DESC");
    return k;
  }

 private:
  std::string_view text_;
  std::string_view field_;
  const AttributeSet& attrs_;
  size_t pos_ = 0;
};

}  // namespace

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kEq: return "=";
    case Op::kNe: return "!=";
    case Op::kLt: return "<";
    case Op::kLe: return "<=";
    case Op::kGt: return ">";
    case Op::kGe: return ">=";
    case Op::kLike: return "LIKE";
    case Op::kILike: return "ILIKE";
    case Op::kIn: return "IN";
    case Op::kNotIn: return "NOT IN";
  }
  return "?";
}

bool IsNumericAttribute(std::string_view key) { return Contains(RunAttrs().numbers, key); }

StatusOr<std::vector<Comparison>> ParseFilter(std::string_view filter) {
  return Parser(filter, "filter", RunAttrs()).Filter();
}

StatusOr<OrderKey> ParseOrderBy(std::string_view order_by) {
  return Parser(order_by, "order_by", RunAttrs()).Order();
}

StatusOr<std::vector<Comparison>> ParseFilter(std::string_view filter, const AttributeSet& attrs) {
  return Parser(filter, "filter", attrs).Filter();
}

StatusOr<OrderKey> ParseOrderBy(std::string_view order_by, std::string_view field,
                                const AttributeSet& attrs) {
  return Parser(order_by, field, attrs).Order();
}

}  // namespace lathe::tracking::search
