// The `depends` / `when` expression language: a tokenizer, a
// recursive-descent parser into a small tree, and an evaluator over a
// caller-supplied RefResolver. Grammar and semantics: pipeline_expr.h.
#include "spec/pipeline_expr.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace lathe::spec {

enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe };

struct ExprNode {
  enum class Kind { kOr, kAnd, kNot, kCmp, kLiteral, kRef };
  Kind kind = Kind::kLiteral;
  CmpOp cmp = CmpOp::kEq;
  // kOr/kAnd: two or more operands (flat, so long chains do not nest);
  // kNot: one; kCmp: two.
  std::vector<ExprNode> children;
  ExprValue literal;
  std::string ref;
};

namespace {

enum class Tok {
  kEnd,
  kLParen,
  kRParen,
  kNot,
  kAnd,
  kOr,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kNumber,
  kString,
  kTrue,
  kFalse,
  kRef,
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t offset = 0;
  size_t length = 0;
  std::string text;  // kString: decoded; kRef: the reference
  double number = 0;
};

Status SyntaxError(const std::string& field, const std::string& message) {
  return InvalidArgumentError(fmt::format("{}: {}", field, message), field);
}

bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool IsIdentChar(char c) { return IsIdentStart(c) || c == '-'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The length of the JSON number at the start of `s`, or 0 if there is none.
size_t ScanJsonNumber(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size() || !IsDigit(s[i])) return 0;
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  if (i + 1 < s.size() && s[i] == '.' && IsDigit(s[i + 1])) {
    i += 2;
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    if (j < s.size() && IsDigit(s[j])) {
      while (j < s.size() && IsDigit(s[j])) ++j;
      i = j;
    }
  }
  return i;
}

// A whole string that is a JSON number (surrounding whitespace ignored).
std::optional<double> NumericValue(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && IsSpace(s[b])) ++b;
  while (e > b && IsSpace(s[e - 1])) --e;
  s = s.substr(b, e - b);
  if (s.empty() || ScanJsonNumber(s) != s.size()) return std::nullopt;
  std::string copy(s);
  double d = std::strtod(copy.c_str(), nullptr);
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

}  // namespace

bool IsRefText(std::string_view s) {
  if (s.empty()) return false;
  size_t i = 0;
  while (true) {
    if (i >= s.size() || !IsIdentStart(s[i])) return false;
    while (i < s.size() && IsIdentChar(s[i])) ++i;
    if (i == s.size()) return true;
    if (s[i] != '.') return false;
    ++i;
  }
}

namespace {

std::string ShowChar(char c) {
  if (c >= 0x21 && c < 0x7f) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02x}", static_cast<unsigned char>(c));
}

class Tokenizer {
 public:
  Tokenizer(std::string_view text, const std::string& field) : s_(text), field_(field) {}

  StatusOr<std::vector<Token>> Run() {
    std::vector<Token> out;
    // Every token consumes at least one byte, so this loop is bounded by the
    // text length (itself bounded by kMaxExprLength).
    while (true) {
      while (pos_ < s_.size() && IsSpace(s_[pos_])) ++pos_;
      if (pos_ >= s_.size()) break;
      ASSIGN_OR_RETURN(Token t, Next());
      out.push_back(std::move(t));
    }
    Token end;
    end.kind = Tok::kEnd;
    end.offset = s_.size();
    out.push_back(std::move(end));
    return out;
  }

 private:
  Token Simple(Tok kind, size_t length) {
    Token t;
    t.kind = kind;
    t.offset = pos_;
    t.length = length;
    pos_ += length;
    return t;
  }

  Status Error(const std::string& what, size_t offset) const {
    return SyntaxError(field_, fmt::format("{} at offset {}", what, offset));
  }

  StatusOr<Token> Next() {
    char c = s_[pos_];
    char d = pos_ + 1 < s_.size() ? s_[pos_ + 1] : '\0';
    switch (c) {
      case '(':
        return Simple(Tok::kLParen, 1);
      case ')':
        return Simple(Tok::kRParen, 1);
      case '!':
        return d == '=' ? Simple(Tok::kNe, 2) : Simple(Tok::kNot, 1);
      case '<':
        return d == '=' ? Simple(Tok::kLe, 2) : Simple(Tok::kLt, 1);
      case '>':
        return d == '=' ? Simple(Tok::kGe, 2) : Simple(Tok::kGt, 1);
      case '=':
        if (d == '=') return Simple(Tok::kEq, 2);
        return Error("unexpected '=' (did you mean '=='?)", pos_);
      case '&':
        if (d == '&') return Simple(Tok::kAnd, 2);
        return Error("unexpected '&' (did you mean '&&'?)", pos_);
      case '|':
        if (d == '|') return Simple(Tok::kOr, 2);
        return Error("unexpected '|' (did you mean '||'?)", pos_);
      case '\'':
      case '"':
        return QuotedString();
      case '{':
        if (d == '{') return BracedRef();
        return Error("unexpected '{'", pos_);
      default:
        break;
    }
    if (c == '-' || IsDigit(c)) {
      size_t n = ScanJsonNumber(s_.substr(pos_));
      bool word_follows =
          pos_ + n < s_.size() && (IsIdentChar(s_[pos_ + n]) || s_[pos_ + n] == '.');
      // "3d.succeeded" is a step named "3d", not the number 3.
      if (n > 0 && !word_follows) {
        Token t;
        t.kind = Tok::kNumber;
        t.offset = pos_;
        t.length = n;
        std::string copy(s_.substr(pos_, n));
        t.number = std::strtod(copy.c_str(), nullptr);
        if (!std::isfinite(t.number))
          return Error(fmt::format("number {} is out of range", copy), pos_);
        pos_ += n;
        return t;
      }
    }
    if (IsIdentStart(c)) return Word();
    return Error(fmt::format("unexpected character {}", ShowChar(c)), pos_);
  }

  StatusOr<Token> Word() {
    size_t start = pos_;
    while (pos_ < s_.size() && (IsIdentChar(s_[pos_]) || s_[pos_] == '.')) ++pos_;
    std::string_view w = s_.substr(start, pos_ - start);
    if (!IsRefText(w)) {
      return Error(fmt::format("'{}' is not a reference (identifiers joined by '.')", w), start);
    }
    Token t;
    t.offset = start;
    t.length = w.size();
    if (w == "true") {
      t.kind = Tok::kTrue;
    } else if (w == "false") {
      t.kind = Tok::kFalse;
    } else {
      t.kind = Tok::kRef;
      t.text = std::string(w);
    }
    return t;
  }

  StatusOr<Token> BracedRef() {
    size_t start = pos_;
    size_t close = s_.find("}}", pos_ + 2);
    if (close == std::string_view::npos) return Error("unterminated '{{'", start);
    std::string_view inner = s_.substr(pos_ + 2, close - pos_ - 2);
    while (!inner.empty() && IsSpace(inner.front())) inner.remove_prefix(1);
    while (!inner.empty() && IsSpace(inner.back())) inner.remove_suffix(1);
    if (!IsRefText(inner)) return Error("expected a reference inside '{{ }}'", start);
    Token t;
    t.kind = Tok::kRef;
    t.offset = start;
    t.length = close + 2 - start;
    t.text = std::string(inner);
    pos_ = close + 2;
    return t;
  }

  StatusOr<Token> QuotedString() {
    size_t start = pos_;
    char quote = s_[pos_++];
    std::string out;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == quote) {
        ++pos_;
        if (out.find("{{") != std::string::npos) {
          return Error(
              "templates are not expanded inside quoted strings (write {{params.x}} or "
              "params.x without quotes)",
              start);
        }
        Token t;
        t.kind = Tok::kString;
        t.offset = start;
        t.length = pos_ - start;
        t.text = std::move(out);
        return t;
      }
      if (c == '\\') {
        if (pos_ + 1 >= s_.size()) break;
        char e = s_[pos_ + 1];
        switch (e) {
          case '\\':
            out.push_back('\\');
            break;
          case '\'':
            out.push_back('\'');
            break;
          case '"':
            out.push_back('"');
            break;
          case 'n':
            out.push_back('\n');
            break;
          case 't':
            out.push_back('\t');
            break;
          default:
            return Error(fmt::format("invalid escape '\\{}' (use \\\\, \\', \\\", \\n or \\t)", e),
                         pos_);
        }
        pos_ += 2;
        continue;
      }
      out.push_back(c);
      ++pos_;
    }
    return Error("unterminated string", start);
  }

  std::string_view s_;
  const std::string& field_;
  size_t pos_ = 0;
};

class Parser {
 public:
  Parser(std::string_view text, std::vector<Token> tokens, const std::string& field)
      : text_(text), tokens_(std::move(tokens)), field_(field) {}

  StatusOr<ExprNode> Parse(std::vector<std::string>* refs, std::vector<size_t>* offsets) {
    refs_ = refs;
    offsets_ = offsets;
    ASSIGN_OR_RETURN(ExprNode root, Or(0));
    const Token& t = Peek();
    if (t.kind != Tok::kEnd) {
      std::string hint;
      if (IsCmp(t.kind)) {
        hint = " (comparisons do not chain; use parentheses and && or ||)";
      } else if (t.kind != Tok::kRParen) {
        hint = " (expected an operator: &&, ||, ==, !=, <, <=, >, >=)";
      }
      return Unexpected(t, hint);
    }
    return root;
  }

 private:
  static bool IsCmp(Tok k) {
    return k == Tok::kEq || k == Tok::kNe || k == Tok::kLt || k == Tok::kLe || k == Tok::kGt ||
           k == Tok::kGe;
  }

  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Take() { return tokens_[pos_++]; }

  std::string Describe(const Token& t) const {
    if (t.kind == Tok::kEnd) return "end of expression";
    std::string_view src = text_.substr(t.offset, t.length);
    if (src.size() > 40) return fmt::format("'{}...'", src.substr(0, 40));
    return fmt::format("'{}'", src);
  }

  Status Unexpected(const Token& t, std::string_view hint = {}) const {
    return SyntaxError(field_,
                       fmt::format("unexpected {} at offset {}{}", Describe(t), t.offset, hint));
  }

  Status CheckDepth(int depth, const Token& t) const {
    if (depth < kMaxExprDepth) return OkStatus();
    return SyntaxError(field_, fmt::format("expression nested deeper than {} levels at offset {}",
                                           kMaxExprDepth, t.offset));
  }

  StatusOr<ExprNode> Chain(int depth, Tok op, ExprNode::Kind kind,
                           StatusOr<ExprNode> (Parser::*operand)(int)) {
    ASSIGN_OR_RETURN(ExprNode first, (this->*operand)(depth));
    if (Peek().kind != op) return first;
    ExprNode node;
    node.kind = kind;
    node.children.push_back(std::move(first));
    while (Peek().kind == op) {
      Take();
      ASSIGN_OR_RETURN(ExprNode next, (this->*operand)(depth));
      node.children.push_back(std::move(next));
    }
    return node;
  }

  StatusOr<ExprNode> Or(int depth) {
    return Chain(depth, Tok::kOr, ExprNode::Kind::kOr, &Parser::And);
  }
  StatusOr<ExprNode> And(int depth) {
    return Chain(depth, Tok::kAnd, ExprNode::Kind::kAnd, &Parser::Not);
  }

  StatusOr<ExprNode> Not(int depth) {
    if (Peek().kind != Tok::kNot) return Cmp(depth);
    RETURN_IF_ERROR(CheckDepth(depth + 1, Peek()));
    Take();
    ExprNode node;
    node.kind = ExprNode::Kind::kNot;
    ASSIGN_OR_RETURN(ExprNode operand, Not(depth + 1));
    node.children.push_back(std::move(operand));
    return node;
  }

  StatusOr<ExprNode> Cmp(int depth) {
    ASSIGN_OR_RETURN(ExprNode left, Primary(depth));
    Tok k = Peek().kind;
    if (!IsCmp(k)) return left;
    Take();
    ExprNode node;
    node.kind = ExprNode::Kind::kCmp;
    switch (k) {
      case Tok::kEq:
        node.cmp = CmpOp::kEq;
        break;
      case Tok::kNe:
        node.cmp = CmpOp::kNe;
        break;
      case Tok::kLt:
        node.cmp = CmpOp::kLt;
        break;
      case Tok::kLe:
        node.cmp = CmpOp::kLe;
        break;
      case Tok::kGt:
        node.cmp = CmpOp::kGt;
        break;
      default:
        node.cmp = CmpOp::kGe;
        break;
    }
    ASSIGN_OR_RETURN(ExprNode right, Primary(depth));
    node.children.push_back(std::move(left));
    node.children.push_back(std::move(right));
    return node;
  }

  StatusOr<ExprNode> Primary(int depth) {
    const Token& t = Peek();
    ExprNode node;
    switch (t.kind) {
      case Tok::kLParen: {
        RETURN_IF_ERROR(CheckDepth(depth + 1, t));
        Take();
        ASSIGN_OR_RETURN(ExprNode inner, Or(depth + 1));
        if (Peek().kind != Tok::kRParen) {
          std::string hint = IsCmp(Peek().kind)
                                 ? " (comparisons do not chain; use parentheses and && or ||)"
                                 : " (expected ')')";
          return Unexpected(Peek(), hint);
        }
        Take();
        return inner;
      }
      case Tok::kNumber:
        node.literal = ExprValue::Number(t.number);
        break;
      case Tok::kString:
        node.literal = ExprValue::String(t.text);
        break;
      case Tok::kTrue:
      case Tok::kFalse:
        node.literal = ExprValue::Bool(t.kind == Tok::kTrue);
        break;
      case Tok::kRef:
        node.kind = ExprNode::Kind::kRef;
        node.ref = t.text;
        refs_->push_back(t.text);
        offsets_->push_back(t.offset);
        break;
      default:
        return Unexpected(t, t.kind == Tok::kEnd ? " (expected a value)" : "");
    }
    Take();
    return node;
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  const std::string& field_;
  size_t pos_ = 0;
  std::vector<std::string>* refs_ = nullptr;
  std::vector<size_t>* offsets_ = nullptr;
};

std::string StringForm(const ExprValue& v) {
  switch (v.kind) {
    case ExprValue::Kind::kBool:
      return v.b ? "true" : "false";
    case ExprValue::Kind::kNumber:
      // The shortest text that reads back as the same double, as JSON writes it.
      return fmt::format("{}", v.n);
    case ExprValue::Kind::kString:
      return v.s;
  }
  return {};
}

std::optional<double> AsNumber(const ExprValue& v) {
  switch (v.kind) {
    case ExprValue::Kind::kNumber:
      return v.n;
    case ExprValue::Kind::kString:
      return NumericValue(v.s);
    case ExprValue::Kind::kBool:
      return std::nullopt;
  }
  return std::nullopt;
}

bool Compare(const ExprValue& a, CmpOp op, const ExprValue& b) {
  std::optional<double> x = AsNumber(a), y = AsNumber(b);
  int c;
  if (x && y) {
    c = *x < *y ? -1 : (*x > *y ? 1 : 0);
  } else {
    c = StringForm(a).compare(StringForm(b));
  }
  switch (op) {
    case CmpOp::kEq:
      return c == 0;
    case CmpOp::kNe:
      return c != 0;
    case CmpOp::kLt:
      return c < 0;
    case CmpOp::kLe:
      return c <= 0;
    case CmpOp::kGt:
      return c > 0;
    case CmpOp::kGe:
      return c >= 0;
  }
  return false;
}

}  // namespace

// ------------------------------------------------------------------ ExprValue

ExprValue ExprValue::Bool(bool v) {
  ExprValue x;
  x.kind = Kind::kBool;
  x.b = v;
  return x;
}

ExprValue ExprValue::Number(double v) {
  ExprValue x;
  x.kind = Kind::kNumber;
  x.n = v;
  return x;
}

ExprValue ExprValue::String(std::string v) {
  ExprValue x;
  x.kind = Kind::kString;
  x.s = std::move(v);
  return x;
}

bool ExprValue::Truthy() const {
  switch (kind) {
    case Kind::kBool:
      return b;
    case Kind::kNumber:
      return n != 0;
    case Kind::kString: {
      std::string_view t = s;
      while (!t.empty() && IsSpace(t.front())) t.remove_prefix(1);
      while (!t.empty() && IsSpace(t.back())) t.remove_suffix(1);
      if (t.empty()) return false;
      if (t.size() == 5) {
        std::string lower(t);
        std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
          return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        });
        if (lower == "false") return false;
      }
      std::optional<double> d = NumericValue(t);
      return !(d && *d == 0);
    }
  }
  return false;
}

// ----------------------------------------------------------------------- Expr

Expr::Expr() = default;
Expr::~Expr() = default;
Expr::Expr(const Expr&) = default;
Expr& Expr::operator=(const Expr&) = default;
Expr::Expr(Expr&&) noexcept = default;
Expr& Expr::operator=(Expr&&) noexcept = default;

StatusOr<Expr> ParseExpr(std::string_view text, const std::string& field) {
  if (text.size() > kMaxExprLength) {
    return SyntaxError(field, fmt::format("expression is longer than {} bytes", kMaxExprLength));
  }
  if (std::all_of(text.begin(), text.end(), IsSpace)) {
    return SyntaxError(field, "empty expression");
  }
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenizer(text, field).Run());
  Expr e;
  Parser parser(text, std::move(tokens), field);
  ASSIGN_OR_RETURN(ExprNode root, parser.Parse(&e.refs_, &e.ref_offsets_));
  e.text_ = std::string(text);
  e.root_ = std::make_shared<const ExprNode>(std::move(root));
  return e;
}

// ------------------------------------------------------------------ evaluation

class ExprEvaluator {
 public:
  ExprEvaluator(const RefResolver& resolve, const std::string& field)
      : resolve_(resolve), field_(field) {}

  static const ExprNode* Root(const Expr& e) { return e.root_.get(); }

  // Recursion depth is the tree's depth, bounded by kMaxExprDepth at parse.
  StatusOr<ExprValue> Eval(const ExprNode& n) {
    switch (n.kind) {
      case ExprNode::Kind::kLiteral:
        return n.literal;
      case ExprNode::Kind::kRef: {
        StatusOr<ExprValue> v = resolve_(n.ref);
        if (!v.ok()) {
          return Status(v.status().code(), fmt::format("{}: {}", field_, v.status().message()),
                        field_);
        }
        return std::move(v).value();
      }
      case ExprNode::Kind::kNot: {
        ASSIGN_OR_RETURN(ExprValue v, Eval(n.children[0]));
        return ExprValue::Bool(!v.Truthy());
      }
      case ExprNode::Kind::kAnd:
      case ExprNode::Kind::kOr: {
        bool is_or = n.kind == ExprNode::Kind::kOr;
        for (const ExprNode& child : n.children) {
          ASSIGN_OR_RETURN(ExprValue v, Eval(child));
          if (v.Truthy() == is_or) return ExprValue::Bool(is_or);
        }
        return ExprValue::Bool(!is_or);
      }
      case ExprNode::Kind::kCmp: {
        ASSIGN_OR_RETURN(ExprValue a, Eval(n.children[0]));
        ASSIGN_OR_RETURN(ExprValue b, Eval(n.children[1]));
        return ExprValue::Bool(Compare(a, n.cmp, b));
      }
    }
    return InternalError("unknown expression node");
  }

 private:
  const RefResolver& resolve_;
  const std::string& field_;
};

StatusOr<bool> EvalExpr(const Expr& e, const RefResolver& resolve, const std::string& field) {
  const ExprNode* root = ExprEvaluator::Root(e);
  if (root == nullptr) return SyntaxError(field, "no expression to evaluate");
  ExprEvaluator ev(resolve, field);
  ASSIGN_OR_RETURN(ExprValue v, ev.Eval(*root));
  return v.Truthy();
}

}  // namespace lathe::spec
